"""Worker faults (THUMBWATCH_TEST_HOOKS=1): a worker aborts on a name with
__crash__ and hangs on one with __hang__.  The worker is replaced, the rest
of its batch requeued, and a file that kills workers twice is poison."""

import os

from conftest import SCALE, jpeg_bytes, make_jpeg, pid_alive, write_file


def drop_batch(d, stage, names):
    """All names land at once (a folder renamed in), so the start-up walk
    of the new folder queues them together and they share batches."""
    data = jpeg_bytes(320, 240)
    for n in names:
        write_file(stage / n, data)
    os.rename(stage, d.input / stage.name)
    return [f"{stage.name}/{n}" for n in names]


def assert_pool_back(d, n=2):
    def ok(_ev):
        live = d.live_workers()
        if len(live) != n:
            return False
        for pid in live:
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = f.read()
            except OSError:
                return False
            if f"PPid:\t{d.pid}\n" not in st or not pid_alive(pid):
                return False
        return True
    d.wait_for(ok, what=f"{n} live workers")


def test_crash_is_poison_after_two(daemons, tmp_path):
    d = daemons.start(hooks=True, args=["--batch-size", "4",
                                        "--batch-wait-ms", "300"])
    names = ["a1.jpg", "a2.jpg", "boom__crash__.jpg", "a3.jpg", "a4.jpg",
             "a5.jpg", "a6.jpg"]
    files = drop_batch(d, tmp_path / "batch", names)
    got = d.wait_outcomes(files)
    crash = "batch/boom__crash__.jpg"
    assert got[crash]["event"] == "failed", got[crash]
    assert "poison" in got[crash]["error"], got[crash]
    for f in files:
        if f != crash:
            assert got[f]["event"] == "done", got[f]
    d.quiet(1.0)
    for f in files:
        d.assert_one_outcome(f, "failed" if f == crash else "done")
    exited = d.by_event("worker_exited")
    assert len(exited) == 2, exited
    assert all(e["reason"] == "crashed" for e in exited), exited
    assert all("signal" in e or "status" in e for e in exited), exited
    spawned = d.by_event("worker_spawned")
    assert len(spawned) == 4, spawned
    assert_pool_back(d)
    # the pool still works
    make_jpeg(d.input / "later.jpg")
    d.wait_done("later.jpg")


def test_hang_times_out_and_is_replaced(daemons, tmp_path):
    d = daemons.start(hooks=True, args=["--image-timeout-ms", "1500",
                                        "--batch-size", "4"])
    names = ["h1.jpg", "stuck__hang__.jpg", "h2.jpg", "h3.jpg", "h4.jpg"]
    files = drop_batch(d, tmp_path / "hb", names)
    got = d.wait_outcomes(files, timeout=40 * SCALE)
    hang = "hb/stuck__hang__.jpg"
    assert got[hang]["event"] == "failed", got[hang]
    assert "poison" in got[hang]["error"], got[hang]
    for f in files:
        if f != hang:
            assert got[f]["event"] == "done", got[f]
    exited = d.by_event("worker_exited")
    assert len(exited) == 2 and all(e["reason"] == "timeout"
                                    for e in exited), exited
    # the hung workers are really gone
    for e in exited:
        pid = e["pid"]
        d.wait_for(lambda ev: not pid_alive(pid),
                   what=f"hung worker {pid} killed")
    assert_pool_back(d)
    d.quiet(0.5)
    for f in files:
        d.assert_one_outcome(f, "failed" if f == hang else "done")


def test_hooks_off_by_default(daemons):
    """Without THUMBWATCH_TEST_HOOKS the magic names are plain files."""
    d = daemons.start()
    make_jpeg(d.input / "x__crash__.jpg")
    make_jpeg(d.input / "y__hang__.jpg")
    d.wait_done("x__crash__.jpg")
    d.wait_done("y__hang__.jpg")
    assert not d.by_event("worker_exited")


def test_worker_killed_from_outside(daemons):
    """A worker killed by someone else (OOM killer) is replaced."""
    d = daemons.start()
    d.wait_for(lambda ev: len(d.live_workers()) == 2, what="2 workers")
    victim = next(iter(d.live_workers()))
    os.kill(victim, 9)
    d.wait_event("worker_exited", lambda e: e["pid"] == victim)
    assert_pool_back(d)
    files = [f"k{i}.jpg" for i in range(6)]
    for f in files:
        make_jpeg(d.input / f, 320, 240)
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values()), got
