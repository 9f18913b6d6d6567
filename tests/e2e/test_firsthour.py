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
