"""Restarts: an up-to-date tree is left alone, a changed preset redoes only
its own outputs, and kill -9 at any moment loses nothing."""

import os
import time

from conftest import (SCALE, image_info, images_info, jpeg_bytes,
                      jpeg_complete, make_jpeg, parse_log, pid_alive,
                      png_bytes, temp_leftovers, tree, write_file)

TWO_PRESETS = """\
[preset a]
width = 200
height = 200
format = jpeg

[preset b]
width = 100
height = 100
format = webp
"""


def snapshot(root):
    return {p: (os.stat(os.path.join(root, p)).st_ino,
                os.stat(os.path.join(root, p)).st_mtime_ns)
            for p in tree(root)}


def test_up_to_date_tree_redoes_nothing(daemons):
    d = daemons.start()
    files = ["a.jpg", "b.jpg", "s/c.jpg", "s/t/d.jpg", "s/t/e.png", "f.jpeg"]
    # photos copied with their dates kept (cp -p): mtimes in the past, so
    # the start-up scan has nothing left to settle
    old = (int(time.time()) - 3600) * 1_000_000_000 + 123_456_789
    for i, f in enumerate(files):
        data = png_bytes(320, 240) if f.endswith(".png") else \
            jpeg_bytes(320, 240)
        write_file(d.input / f, data, mtime_ns=old + i)
    d.wait_outcomes(files)
    before = snapshot(d.output)
    assert len(before) == len(files)
    d.stop()

    d.start()
    scan = d.by_event("scan")[0]
    assert scan["files"] == len(files), scan
    assert scan["uptodate"] == len(files), scan
    assert scan["queued"] == 0, scan
    d.quiet(1.5)
    assert d.outcomes() == [], d.outcomes()
    assert snapshot(d.output) == before
    d.stop()

    # one source changed while stopped: only it is redone
    os.utime(d.input / "s" / "c.jpg", ns=(old - 10**12,) * 2)
    d.start()
    scan = d.by_event("scan")[0]
    assert (scan["queued"], scan["uptodate"]) == (1, len(files) - 1), scan
    d.wait_done("s/c.jpg")
    d.quiet(1.0)
    assert [e["file"] for e in d.outcomes()] == ["s/c.jpg"]
    after = snapshot(d.output)
    for p, v in before.items():
        if p != "s/c_thumb.jpg":
            assert after[p] == v, p


def test_quick_restart_after_fresh_writes(daemons):
    """Restarted right after files were written (within SETTLE_MS, so the
    scan settles them first): still nothing is redone, and the scan line
    accounts for every file it found (queued + uptodate, plus `settling` if
    it reports such a count)."""
    d = daemons.start()
    files = [f"q{i}.jpg" for i in range(4)] + ["sub/q.jpg"]
    for f in files:
        make_jpeg(d.input / f, 320, 240)
    written = time.monotonic()
    d.wait_outcomes(files)
    before = snapshot(d.output)
    d.stop()
    settle = 3.0 * SCALE
    d.cmd += ["--settle-ms", str(int(settle * 1000))]
    d.start()
    assert time.monotonic() - written < settle - 0.5, \
        "restart too slow for the test"
    d.wait_for(lambda ev: time.monotonic() - written > settle + 1.0,
               what="the settle time to pass")
    d.quiet(0.5)
    assert d.outcomes() == [], d.outcomes()
    assert snapshot(d.output) == before
    scan = d.by_event("scan")[0]
    assert scan["files"] == len(files), scan
    assert scan["queued"] + scan["uptodate"] + scan.get("settling", 0) \
        == len(files), f"scan line leaves files unaccounted for: {scan}"


def test_preset_change_redoes_only_that_preset(daemons):
    d = daemons.start(ini=TWO_PRESETS)
    files = ["p1.jpg", "sub/p2.jpg", "sub/p3.png"]
    old = (int(time.time()) - 3600) * 1_000_000_000
    for f in files:
        write_file(d.input / f, jpeg_bytes(640, 480), mtime_ns=old)
    d.wait_outcomes(files)
    before = snapshot(d.output)
    assert image_info(d.output / "p1_b.webp")[:2] == (100, 75)
    d.stop()

    d.ini.write_text(TWO_PRESETS.replace("width = 100\nheight = 100",
                                         "width = 160\nheight = 160"))
    d.start()
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values()), got
    d.quiet(1.0)
    assert len(d.outcomes()) == len(files)
    after = snapshot(d.output)
    assert set(after) == set(before)
    for p, (ino, mtime) in before.items():
        if p.endswith("_a.jpg"):
            assert after[p] == (ino, mtime), \
                f"{p} was rewritten though preset a did not change"
        else:
            assert after[p][0] != ino, f"{p} was not redone"
    assert image_info(d.output / "p1_b.webp")[:2] == (160, 120)
    assert image_info(d.output / "sub/p3_b.webp")[:2] == (160, 120)
    d.stop()

    # and once redone, a restart is a no-op again
    d.start()
    scan = d.by_event("scan")[0]
    assert scan["uptodate"] == len(files) and scan["queued"] == 0, scan


def test_kill_9_mid_burst_then_restart(daemons):
    d = daemons.start(args=["--batch-size", "4"])
    data = jpeg_bytes(640, 480)
    files = [f"{'k/' if i % 2 else ''}f{i:02d}.jpg" for i in range(80)]
    for f in files:
        write_file(d.input / f, data)
    d.wait_for(lambda ev: len([e for e in ev if e["event"] == "done"]) >= 6,
               what="a few done lines")
    workers = list(d.live_workers())
    d.kill9()
    # the orphaned workers must notice and go away on their own
    deadline = time.monotonic() + 15 * SCALE
    while [p for p in workers if pid_alive(p)]:
        assert time.monotonic() < deadline, \
            f"workers {workers} outlived their supervisor"
        time.sleep(0.05)
    done_before = {e["file"] for e in parse_log(d.log)
                   if e["event"] == "done"}
    assert len(done_before) < len(files), "the kill came too late"

    d.start()
    outs = [d.output / (f[:-4] + "_thumb.jpg") for f in files]

    def all_there(_ev):
        return all(p.exists() for p in outs)
    d.wait_for(all_there, timeout=90 * SCALE, what="every thumbnail")
    d.quiet(1.5)
    scan = d.by_event("scan")[0]
    assert scan["files"] == len(files), scan
    oc = d.outcomes()
    assert all(e["event"] == "done" for e in oc), \
        [e for e in oc if e["event"] != "done"]
    redone = [e["file"] for e in oc]
    assert len(redone) == len(set(redone)), "a file done twice after restart"
    assert not set(redone) & done_before, \
        f"files done before the kill were redone: {set(redone) & done_before}"
    info = images_info(outs)
    for p in outs:
        assert info[os.fsencode(p)][:2] == (300, 225), p
        assert jpeg_complete(p.read_bytes()), f"{p} is truncated"
    assert sorted(tree(d.output)) == sorted(
        f[:-4] + "_thumb.jpg" for f in files)
    assert not temp_leftovers(d.output), temp_leftovers(d.output)
    d.stop()
    parse_log(d.log, 0, allow_partial=False)
