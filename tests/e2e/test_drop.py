"""Files dropped into a running daemon's input tree (inotify back-end)."""

import os
import shutil
import signal
import threading
import time

from conftest import (REPO, SCALE, assert_decodes, drop_atomic, image_info,
                      images_info, jpeg_bytes, jpeg_complete, make_jpeg,
                      make_png, sample, temp_leftovers, write_file)


def test_start_line_and_workers(daemons):
    d = daemons.start()
    start = d.by_event("start")
    assert len(start) == 1, start
    s = start[0]
    assert s["version"] == (REPO / "VERSION").read_text().strip()
    assert s["pid"] == d.pid
    assert os.path.realpath(s["input_dir"]) == os.path.realpath(d.input)
    assert os.path.realpath(s["output_dir"]) == os.path.realpath(d.output)
    assert s["workers"] == 2
    assert s["presets"] == ["thumb"]
    assert s["backend"] == "inotify"
    assert s["mode"] == "run"
    d.wait_for(lambda ev: len(d.live_workers()) == 2, what="2 workers")
    for pid, e in d.live_workers().items():
        assert isinstance(e["worker"], int)
        with open(f"/proc/{pid}/status") as f:
            ppid = [ln for ln in f if ln.startswith("PPid:")][0].split()[1]
        assert int(ppid) == d.pid, "a worker is not the supervisor's child"
    scan = d.by_event("scan")[0]
    assert scan["files"] == 0 and scan["queued"] == 0, scan


def test_copy_top_and_nested(daemons):
    d = daemons.start()
    make_jpeg(d.input / "a.jpg", 640, 480)
    (d.input / "x" / "y" / "z").mkdir(parents=True)
    make_jpeg(d.input / "x" / "b.jpg", 480, 640)
    make_png(d.input / "x" / "y" / "z" / "c.png", 640, 480)
    # folders created after start, file written right after the mkdir
    make_jpeg(d.input / "new1" / "new2" / "d.jpeg", 320, 240)
    files = ["a.jpg", "x/b.jpg", "x/y/z/c.png", "new1/new2/d.jpeg"]
    got = d.wait_outcomes(files)
    for f in files:
        assert got[f]["event"] == "done", got[f]
    e = got["a.jpg"]
    assert e["outputs"] == ["a_thumb.jpg"], e
    assert isinstance(e["ms"], (int, float)) and e["ms"] >= 0
    assert isinstance(e["worker"], int)
    assert (e["width"], e["height"]) in ((640, 480), (300, 225)), e
    assert got["x/y/z/c.png"]["outputs"] == ["x/y/z/c_thumb.jpg"]
    assert image_info(d.output / "a_thumb.jpg")[:2] == (300, 225)
    assert image_info(d.output / "x/b_thumb.jpg")[:2] == (225, 300)
    w, h, bands, loader = image_info(d.output / "x/y/z/c_thumb.jpg")
    assert (w, h, bands, loader) == (300, 225, 3, "jpegload")
    assert image_info(d.output / "new1/new2/d_thumb.jpg")[:2] == (300, 225)
    d.quiet(0.5)
    for f in files:
        d.assert_one_outcome(f)


def test_mv_whole_tree(daemons, tmp_path):
    d = daemons.start()
    src = tmp_path / "staging" / "album"
    files = []
    for sub in ("", "2019", "2019/summer", "2020"):
        for i in range(3):
            rel = f"{sub}/p{i}.jpg".lstrip("/")
            make_jpeg(src / rel, 320, 240)
            files.append("album/" + rel)
    os.rename(src, d.input / "album")
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values()), got
    for f in files:
        out = d.output / (f[:-4] + "_thumb.jpg")
        assert out.is_file(), out
    d.quiet(0.5)
    for f in files:
        d.assert_one_outcome(f)


def test_slow_writer_not_processed_early(daemons):
    d = daemons.start()
    data = jpeg_bytes(640, 480)
    path = d.input / "slow.jpg"
    n = len(data)
    cuts = [0, n // 4, n // 2, 3 * n // 4, n]
    with open(path, "wb") as f:
        for i in range(4):
            f.write(data[cuts[i]:cuts[i + 1]])
            f.flush()
            os.fsync(f.fileno())
            time.sleep(0.5)
            assert d.outcomes("slow.jpg") == [], \
                "processed while still being written\n" + d.describe()
    d.wait_done("slow.jpg")
    d.quiet(0.5)
    d.assert_one_outcome("slow.jpg")
    assert image_info(d.output / "slow_thumb.jpg")[:2] == (300, 225)


def test_rsync_style_temp_then_rename(daemons):
    d = daemons.start()
    tmp = d.input / "sub" / ".photo.jpg.Xa9fQ2"
    make_jpeg(tmp)
    time.sleep(0.3)
    os.rename(tmp, d.input / "sub" / "photo.jpg")
    d.wait_done("sub/photo.jpg")
    d.quiet(0.5)
    d.assert_one_outcome("sub/photo.jpg")
    assert len(d.outcomes()) == 1, d.outcomes()
    assert (d.output / "sub" / "photo_thumb.jpg").is_file()


def test_ignored_names_then_renamed(daemons):
    d = daemons.start()
    ignored = [".hidden.jpg", "upload.jpg.tmp", "x.jpg.part",
               "dl.jpg.crdownload", "edit.jpg~", "notes.txt", "README",
               "image.bmp", "UPLOAD.JPG.TMP"]
    for name in ignored:
        make_jpeg(d.input / name)
    make_jpeg(d.input / "sentinel.jpg")
    d.wait_done("sentinel.jpg")
    d.quiet(1.0)
    assert [e["file"] for e in d.outcomes()] == ["sentinel.jpg"], \
        d.outcomes()
    visible = [n for n in os.listdir(d.output) if not n.startswith(".")]
    assert visible == ["sentinel_thumb.jpg"], visible
    # renamed to a real name: picked up
    os.rename(d.input / "x.jpg.part", d.input / "x.jpg")
    os.rename(d.input / "UPLOAD.JPG.TMP", d.input / "UPLOAD.JPG")
    d.wait_done("x.jpg")
    d.wait_done("UPLOAD.JPG")
    assert (d.output / "x_thumb.jpg").is_file()


def test_orientation_auto_rotated(daemons):
    d = daemons.start()
    src = sample("landscape.jpg")
    w, h, _, _ = image_info(src)
    assert (w, h) == (800, 533)
    shutil.copyfile(src, d.input / "landscape.jpg")
    d.wait_done("landscape.jpg")
    tw, th, _, _ = image_info(d.output / "landscape_thumb.jpg")
    assert (tw, th) == (200, 300), \
        f"thumbnail is {tw}x{th}: EXIF orientation 6 was not applied"


def test_png_with_alpha_becomes_jpeg(daemons):
    d = daemons.start()
    shutil.copyfile(sample("alpha.png"), d.input / "alpha.png")
    d.wait_done("alpha.png")
    w, h, bands, loader = image_info(d.output / "alpha_thumb.jpg")
    assert (w, h, bands, loader) == (300, 225, 3, "jpegload")
    assert_decodes(d.output / "alpha_thumb.jpg")


def test_burst_of_300(daemons):
    d = daemons.start(args=["--batch-size", "8"])
    data = jpeg_bytes(320, 240)
    files = []
    for i in range(300):
        sub = f"b{i % 3}/" if i % 2 else ""
        rel = f"{sub}img{i:03d}.jpg"
        write_file(d.input / rel, data)
        files.append(rel)
    t0 = time.monotonic()
    got = d.wait_outcomes(files, timeout=120 * SCALE)
    elapsed = time.monotonic() - t0
    bad = {f: e for f, e in got.items() if e["event"] != "done"}
    assert not bad, bad
    d.quiet(1.0)
    counts = {}
    for e in d.outcomes():
        counts[e["file"]] = counts.get(e["file"], 0) + 1
    dup = {f: n for f, n in counts.items() if n != 1}
    assert not dup, f"files with several outcome lines: {dup}"
    assert set(counts) == set(files)
    outs = [d.output / (f[:-4] + "_thumb.jpg") for f in files]
    info = images_info(outs)
    for p in outs:
        w, h, bands, loader = info[os.fsencode(p)]
        assert loader == "jpegload" and w <= 300 and h <= 300 \
            and max(w, h) == 300, (p, info[os.fsencode(p)])
        assert jpeg_complete(p.read_bytes()), f"{p} is not a complete JPEG"
    for p in outs[::50]:
        assert_decodes(p)
    assert not temp_leftovers(d.output), temp_leftovers(d.output)
    # both workers took part
    assert len({e["worker"] for e in got.values()}) == 2, \
        "only one worker processed 300 files"
    print(f"300 files in {elapsed:.1f}s")


def test_stats_line(daemons):
    d = daemons.start(args=["--stats-interval-s", "1"])
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    d.wait_event("stats", count=2, timeout=10 * SCALE)


def test_up_to_date_event_is_skipped(daemons, tmp_path):
    """Re-writing the same bytes with the same mtime (cp -p) is an event
    for a file whose thumbnails are up to date: one `skipped` line."""
    d = daemons.start()
    mtime = 1_600_000_000_123_456_789
    data = jpeg_bytes()
    write_file(d.input / "same.jpg", data, mtime_ns=mtime)
    d.wait_done("same.jpg")
    ino = os.stat(d.output / "same_thumb.jpg").st_ino
    write_file(d.input / "same.jpg", data, mtime_ns=mtime)
    e = d.wait_for(lambda ev: [x for x in ev if x.get("file") == "same.jpg"
                                and x["event"] in ("done", "failed",
                                                   "skipped")][1:],
                   what="a second outcome for same.jpg")[0]
    assert e["event"] == "skipped" and e["reason"] == "up to date", e
    assert os.stat(d.output / "same_thumb.jpg").st_ino == ino
    # a real change (new mtime) is redone
    write_file(d.input / "same.jpg", jpeg_bytes(480, 640))
    d.wait_for(lambda ev: len([x for x in ev if x.get("file") == "same.jpg"
                               and x["event"] == "done"]) == 2,
               what="same.jpg redone")
    assert image_info(d.output / "same_thumb.jpg")[:2] == (225, 300)


def test_sigint_also_stops(daemons):
    d = daemons.start()
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    d.stop(signal.SIGINT)


def test_concurrent_writers(daemons):
    """Eight threads writing files at once into eight folders."""
    d = daemons.start()
    data = jpeg_bytes(320, 240)
    files = [f"t{t}/f{i}.jpg" for t in range(8) for i in range(10)]

    def writer(t):
        for i in range(10):
            write_file(d.input / f"t{t}/f{i}.jpg", data)
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values())
    d.quiet(0.5)
    assert len(d.outcomes()) == len(files), \
        [e for e in d.outcomes() if e["event"] != "done"][:5]


def test_file_landing_in_new_folder_before_watch(daemons, tmp_path):
    """mkdir + immediate writes: files can land before the new folder's
    watch exists; the scan after adding the watch must find them."""
    d = daemons.start()
    data = jpeg_bytes(320, 240)
    files = []
    for k in range(5):
        base = d.input / f"n{k}" / "deep"
        os.makedirs(base)
        for i in range(4):
            write_file(base / f"{i}.jpg", data)
            files.append(f"n{k}/deep/{i}.jpg")
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values())
    d.quiet(0.5)
    assert len(d.outcomes()) == len(files)


def test_atomic_drop(daemons, tmp_path):
    d = daemons.start()
    drop_atomic(d.input / "moved-in.jpg", jpeg_bytes(), tmp_path / "stage")
    d.wait_done("moved-in.jpg")


def test_periodic_rescan_is_silent(daemons):
    """A periodic rescan of an up-to-date tree writes no outcome lines."""
    d = daemons.start(args=["--rescan-interval-s", "1"])
    files = ["r1.jpg", "sub/r2.jpg", "sub/deeper/r3.png"]
    for f in files:
        (make_png if f.endswith("png") else make_jpeg)(d.input / f, 320, 240)
    d.wait_outcomes(files)
    d.wait_for(lambda ev: len([e for e in ev if e["event"] in
                               ("rescan", "scan")]) >= 4,
               timeout=15 * SCALE, what="periodic rescans")
    d.quiet(0.5)
    assert sorted(e["file"] for e in d.outcomes()) == sorted(files)
    assert all(e["event"] == "done" for e in d.outcomes())


def test_walk_backlog_biggest_first(daemons):
    """The start-up walk's backlog goes out biggest file first, whatever
    the listing order: a large image found last would keep one worker busy
    while the others idle."""
    d = daemons.make(mode="once", workers=1)
    dims = [(200, 150), (1600, 1200), (400, 300), (2400, 1800), (800, 600),
            (1200, 900)]
    old = time.time_ns() - 3600 * 10**9    # settled long ago
    for i, (w, h) in enumerate(dims):
        make_jpeg(d.input / f"img{i}.jpg", w, h, mtime_ns=old)
    d.start(ready=False)
    assert d.proc.wait(60 * SCALE) == 0, d.describe()
    d.stopped = True
    done = [e["file"] for e in d.events() if e["event"] == "done"]
    by_size = sorted((f"img{i}.jpg" for i in range(len(dims))),
                     key=lambda n: os.path.getsize(d.input / n),
                     reverse=True)
    assert done == by_size, (done, by_size)
