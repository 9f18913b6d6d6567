"""Issue 12 ("what a new user trips over"): what the running daemon tells
a person: the folder count in `status`, ignored names, when it is ready."""

import json
import os
import shutil
import time

from conftest import TIMEOUT, make_jpeg, run_tw


def status(d):
    r = run_tw(["status", "--json", "--runtime-dir", d.root / "run"],
               cwd=d.root)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_status(d, pred, what):
    deadline = time.monotonic() + TIMEOUT
    while True:
        st = status(d)
        if pred(st):
            return st
        assert time.monotonic() < deadline, f"{what}: {st}"
        time.sleep(0.1)


def test_status_folder_count_follows_folders_between_walks(daemons):
    """Item 11: folders made, moved out and removed after the start-up
    walk count at once, not at the next full walk."""
    d = daemons.make(args=["--runtime-dir", "RUN"])
    d.cmd[d.cmd.index("RUN")] = str(d.root / "run")
    (d.input / "old").mkdir()
    d.start()
    assert status(d)["watched_dirs"] == 2
    (d.input / "a" / "b" / "c").mkdir(parents=True)
    (d.input / "x").mkdir()
    wait_status(d, lambda s: s["watched_dirs"] == 6, "after mkdir")
    r = run_tw(["status", "--runtime-dir", d.root / "run"], cwd=d.root)
    assert b"(6 folders watched" in r.stdout, r.stdout
    shutil.rmtree(d.input / "a")
    wait_status(d, lambda s: s["watched_dirs"] == 3, "after rmtree")
    os.rename(d.input / "x", d.root / "x-moved-out")
    wait_status(d, lambda s: s["watched_dirs"] == 2, "after a move out")
    # No full walk happened meanwhile: only the start-up one.
    assert len(d.by_event("scan")) == 1, d.describe()


def test_ignored_names_get_a_debug_line_and_a_count(daemons):
    """Item 17: a .mp4 or a .CR2 is seen and said so at debug level, and
    counted in stats and status; a temp name is said so too, but still
    made once renamed (rsync's .name.XXXXXX)."""
    d = daemons.make(args=["--runtime-dir", "RUN", "--stats-interval-s",
                           "1"])
    d.cmd[d.cmd.index("RUN")] = str(d.root / "run")
    (d.input / "clip.mp4").write_bytes(b"not ours")
    d.start()
    (d.input / "sub").mkdir()
    (d.input / "sub" / "IMG_1.CR2").write_bytes(b"raw")
    (d.input / "shot.dng").write_bytes(b"raw")
    make_jpeg(d.root / "staged.jpg", 320, 240)
    os.rename(d.root / "staged.jpg", d.input / ".photo.jpg.Ab12Cd")
    os.rename(d.input / ".photo.jpg.Ab12Cd", d.input / "photo.jpg")
    d.wait_done("photo.jpg")
    d.wait_for(lambda ev: {e.get("file") for e in ev
                           if e["event"] == "ignored"} >=
               {"clip.mp4", "sub/IMG_1.CR2", "shot.dng"}, what="3 ignored")
    ign = {e["file"]: e for e in d.by_event("ignored")}
    for f in ("clip.mp4", "sub/IMG_1.CR2", "shot.dng"):
        assert f in ign, d.describe()
        assert ign[f]["level"] == "debug"
        assert "EXTENSIONS" in ign[f]["reason"], ign[f]
    assert "photo.jpg" not in ign, ign
    assert "temporary" in ign[".photo.jpg.Ab12Cd"]["reason"], ign
    st = d.wait_event("stats", lambda e: e.get("ignored") == 3)
    assert st, d.describe()
    s = status(d)
    assert s["ignored"] == 3, s
    assert "ignored   3 files" in s["text"], s["text"]


def test_ready_line_after_the_first_walk(daemons):
    """Item 2: one `ready` line, after the start-up walk, naming the
    folders; nothing extra on a stderr that is not a terminal."""
    d = daemons.make()
    (d.input / "a" / "b").mkdir(parents=True)
    d.start()
    r = d.wait_event("ready")[0]
    ev = d.events()
    names = [e["event"] for e in ev]
    assert names.index("scan") < names.index("ready"), names
    assert names.count("ready") == 1, names
    assert r["input_dir"] == str(d.input.resolve())
    assert r["output_dir"] == str(d.output.resolve())
    assert r["log_file"] == str(d.log) and r["dirs"] == 3, r
    # Every watch is in place: a file dropped deep now is seen.
    make_jpeg(d.input / "a" / "b" / "x.jpg", 320, 240)
    d.wait_done("a/b/x.jpg")
    d.stop()
    assert b"watching" not in d.stderr(), d.stderr()
    assert len(d.by_event("ready")) == 1, d.describe()


def test_ignored_names_counted_in_metrics(daemons):
    """Item 17: the ignored count is in /metrics too."""
    from test_http import req, start
    d = start(daemons)
    (d.input / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    (d.input / "raw.CR2").write_bytes(b"II*\0")
    deadline = time.monotonic() + TIMEOUT
    while True:
        r = req(d, "GET", "/metrics")
        text = r[2].decode()
        if "thumbwatch_ignored_total 2\n" in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
