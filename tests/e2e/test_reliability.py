"""Faults the daemon must live through: a full disk, its input folder
deleted and recreated, a network filesystem (polled), worker recycling and
memory limits, and an inotify queue overflow."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SCALE, TIMEOUT, jpeg_bytes, make_jpeg, vips, write_file

ASAN = bool(os.environ.get("ASAN"))


def is_root():
    return os.geteuid() == 0


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (root only): a disk that can really be full."""
    if not is_root():
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def fill(path):
    """Fills the filesystem of path's folder; returns the filler."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def outputs_of(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and ".thumbwatch" not in p.parts)


def test_disk_full_fails_cleanly_then_resumes(daemons, small_fs):
    out = small_fs / "out"
    d = daemons.start(output_dir=out, args=["--retry-interval-s", "1"])
    filler = fill(small_fs)
    names = [f"f{i}.jpg" for i in range(3)]
    for n in names:
        make_jpeg(d.input / n, 800, 600)
    d.wait_for(lambda ev: sum(e["event"] == "failed" for e in ev) >= 3,
               what="three failed lines while the disk is full")
    for e in d.by_event("failed"):
        assert "cannot write thumbnail" in e["error"], e
        assert "No space left" in e["error"] or "space" in e["error"], e
    # Never a partial thumbnail, never a stray temp file.
    left = [p.name for p in out.rglob("*") if p.is_file()
            and ".thumbwatch" not in p.parts]
    assert left == [], left
    assert d.alive()
    # Space comes back: the retry makes them without anyone touching them.
    filler.unlink()
    d.wait_for(lambda ev: all(any(e["event"] == "done" and e["file"] == n
                                  for e in ev) for n in names),
               what="every file done after space returned")
    assert outputs_of(out) == sorted(f"f{i}_thumb.jpg" for i in range(3))
    # The sources were never touched.
    for n in names:
        assert (d.input / n).stat().st_size > 0


def test_input_folder_deleted_and_recreated(daemons):
    d = daemons.start()
    make_jpeg(d.input / "before.jpg")
    d.wait_done("before.jpg")
    shutil.rmtree(d.input)
    d.wait_event("input_gone")
    time.sleep(1.0)
    assert d.alive()
    # No busy loop while it waits: the supervisor is asleep.
    t0 = os.times()
    cpu0 = _cpu_seconds(d.pid)
    time.sleep(2.0)
    assert _cpu_seconds(d.pid) - cpu0 < 0.2, "supervisor spins while waiting"
    del t0
    d.input.mkdir()
    d.wait_event("input_back")
    make_jpeg(d.input / "after.jpg")
    d.wait_done("after.jpg")
    d.assert_one_outcome("after.jpg")


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_network_filesystem_is_polled(daemons):
    d = daemons.start(env={"THUMBWATCH_TEST_FSTYPE": "NFS"},
                      args=["--rescan-interval-s", "1"])
    start = d.by_event("start")[0]
    assert start["backend"] == "poll", start
    mode = d.by_event("watch_mode")
    assert mode and "NFS" in mode[0]["message"], mode
    make_jpeg(d.input / "remote.jpg")
    sub = d.input / "new" / "deeper"
    sub.mkdir(parents=True)
    make_jpeg(sub / "nested.jpg")
    d.wait_done("remote.jpg")
    d.wait_done("new/deeper/nested.jpg")
    d.quiet(2.5)
    d.assert_one_outcome("remote.jpg")
    d.assert_one_outcome("new/deeper/nested.jpg")


def test_local_filesystem_uses_inotify(daemons):
    d = daemons.start(env={"THUMBWATCH_TEST_FSTYPE": "local"})
    assert d.by_event("start")[0]["backend"] == "inotify"
    assert not d.by_event("watch_mode")


def test_workers_are_recycled_after_max_images(daemons, tmp_path):
    d = daemons.start(args=["--worker-max-images", "3"])
    stage = tmp_path / "stage"
    stage.mkdir()
    data = jpeg_bytes(320, 240)
    files = [f"r{i:02}.jpg" for i in range(14)]
    for n in files:
        write_file(stage / n, data)
    os.rename(stage, d.input / "burst")
    files = [f"burst/{n}" for n in files]
    d.wait_outcomes(files)
    for f in files:
        d.assert_one_outcome(f)
    recycled = d.by_event("recycled") + d.by_event("worker_recycled")
    assert len(recycled) >= 3, d.describe()
    assert all(e["images"] == 3 for e in recycled), recycled
    # Recycling is not a crash.
    assert not [e for e in d.by_event("worker_exited")
                if e.get("reason") in ("crashed", "timeout")]

    def live(_ev):
        alive = {}
        for e in d.events():
            if e["event"] == "worker_spawned":
                alive[e["pid"]] = True
            elif e["event"] in ("worker_exited", "worker_recycled"):
                alive.pop(e["pid"], None)
        return len(alive) == 2 and all(os.path.exists(f"/proc/{p}")
                                       for p in alive)
    d.wait_for(live, what="two live workers after recycling")


@pytest.mark.skipif(ASAN, reason="sanitizer builds cannot limit address "
                    "space (their shadow memory is terabytes)")
def test_memory_limit_turns_a_runaway_image_into_failed(daemons, tmp_path):
    # A progressive JPEG cannot shrink on load: libjpeg keeps every
    # coefficient, about 6 bytes a pixel: 48 MP wants far over 200 MiB.
    big = tmp_path / "big.jpg"
    vips("black", str(tmp_path / "big.v"), "8000", "6000", "--bands", "3")
    vips("copy", str(tmp_path / "big.v"),
         str(big) + "[Q=40,interlace=true,strip=true]")
    d = daemons.start(args=["--worker-memory-mb", "200"])
    shutil.copy(big, d.input / "huge_progressive.jpg")
    make_jpeg(d.input / "fine.jpg")
    d.wait_outcome("huge_progressive.jpg", timeout=TIMEOUT * 2)
    assert d.outcomes("huge_progressive.jpg")[0]["event"] == "failed"
    d.wait_done("fine.jpg")
    d.assert_one_outcome("huge_progressive.jpg", event="failed")
    assert d.alive()


def _sysctl(name, value=None):
    path = Path("/proc/sys/fs/inotify") / name
    if value is None:
        return int(path.read_text())
    path.write_text(str(value))


def test_queue_overflow_rescans_and_finds_everything(daemons, tmp_path):
    if not is_root():
        pytest.skip("lowering fs.inotify.max_queued_events needs root")
    old = _sysctl("max_queued_events")
    try:
        # Read when the inotify instance is made: only this daemon's
        # instance gets the tiny queue.
        _sysctl("max_queued_events", 16)
        d = daemons.start()
    finally:
        _sysctl("max_queued_events", old)
    data = jpeg_bytes(160, 120)
    # Stop the supervisor so events pile up past the queue's 16.
    os.kill(d.pid, signal.SIGSTOP)
    try:
        files = [f"o{i:03}.jpg" for i in range(120)]
        for n in files:
            write_file(d.input / n, data)
    finally:
        os.kill(d.pid, signal.SIGCONT)
    d.wait_for(lambda ev: any(e["event"] == "scan" and
                              e.get("reason") == "overflow" for e in ev),
               what="a rescan after the overflow")
    d.wait_outcomes(files, timeout=TIMEOUT + 120 * 0.2 * SCALE)
    for n in files:
        d.assert_one_outcome(n)


def test_stale_temps_of_a_crashed_run_are_removed(daemons, tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = out / "sub" / ".pic_thumb.jpg.tw-Ab12Cd"
    stale.write_bytes(b"\xff\xd8 half a jpeg")
    keep = out / "sub" / ".not_ours.jpg"
    keep.write_bytes(b"x")
    d = daemons.start(output_dir=out)
    assert not stale.exists()
    assert keep.exists(), "only thumbwatch's own temp names are removed"
    assert d.by_event("temp_cleaned"), d.describe()


def test_watch_limit_reached_falls_back_to_rescans(daemons):
    """inotify_add_watch fails with ENOSPC past the watch limit.  The limit
    is lowered in a user namespace of the daemon's own, so nothing else on
    the machine is affected."""
    probe = subprocess.run(
        ["unshare", "-Ur", "sh", "-c",
         "echo 4 > /proc/sys/user/max_inotify_watches"],
        capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no user namespaces here: "
                    + probe.stderr.decode(errors="replace"))
    d = daemons.make(args=["--retry-interval-s", "1"])
    for i in range(8):
        (d.input / f"d{i}").mkdir()
    d.cmd = ["unshare", "-Ur", "sh", "-c",
             'echo 4 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"'
             ] + d.cmd
    d.start()
    failed = d.by_event("watch_failed")
    assert failed, d.describe()
    assert "fs.inotify.max_user_watches" in failed[0]["error"], failed[0]
    assert d.alive()
    # A folder it could not watch is still served, by the rescans.
    make_jpeg(d.input / "d7" / "late.jpg", mtime_ns=10**18)
    d.wait_done("d7/late.jpg")
    d.quiet(1.5)
    d.assert_one_outcome("d7/late.jpg")
