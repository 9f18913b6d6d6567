"""The portable back-end (uv_fs_event + settle timer) passes the basic drop
tests too."""

import os
import shutil
import time

from conftest import (image_info, jpeg_bytes, make_jpeg, sample, write_file)

ARGS = ["--watch-backend", "fsevent", "--settle-ms", "300"]


def test_fsevent_basic_drop(daemons):
    d = daemons.start(args=ARGS)
    assert d.by_event("start")[0]["backend"] == "fsevent"
    make_jpeg(d.input / "a.jpg", 640, 480)
    e = d.wait_done("a.jpg")
    assert e["outputs"] == ["a_thumb.jpg"]
    assert image_info(d.output / "a_thumb.jpg")[:2] == (300, 225)
    shutil.copyfile(sample("landscape.jpg"), d.input / "land.jpg")
    d.wait_done("land.jpg")
    assert image_info(d.output / "land_thumb.jpg")[:2] == (200, 300)
    d.quiet(1.0)
    d.assert_one_outcome("a.jpg")
    d.assert_one_outcome("land.jpg")


def test_fsevent_nested_and_moved_tree(daemons, tmp_path):
    d = daemons.start(args=ARGS)
    make_jpeg(d.input / "x" / "y" / "b.jpg", 320, 240)
    stage = tmp_path / "stage" / "album"
    for rel in ("p.jpg", "q/r.jpg", "q/s/t.jpg"):
        make_jpeg(stage / rel, 320, 240)
    os.rename(stage, d.input / "album")
    files = ["x/y/b.jpg", "album/p.jpg", "album/q/r.jpg", "album/q/s/t.jpg"]
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values()), got
    # a folder that appears later is watched too
    make_jpeg(d.input / "x" / "y" / "z" / "c.jpg", 320, 240)
    d.wait_done("x/y/z/c.jpg")
    d.quiet(1.0)
    for f in files + ["x/y/z/c.jpg"]:
        d.assert_one_outcome(f)


def test_fsevent_slow_writer_settles(daemons):
    """Pieces 100 ms apart, SETTLE_MS 300: not processed before the end."""
    d = daemons.start(args=ARGS)
    data = jpeg_bytes(640, 480)
    n = len(data)
    with open(d.input / "slow.jpg", "wb") as f:
        for i in range(4):
            f.write(data[i * n // 4:(i + 1) * n // 4])
            f.flush()
            time.sleep(0.1)
            assert d.outcomes("slow.jpg") == [], \
                "processed before it settled\n" + d.describe()
    d.wait_done("slow.jpg")
    d.quiet(1.0)
    d.assert_one_outcome("slow.jpg")


def test_fsevent_ignored_names_and_rsync(daemons):
    d = daemons.start(args=ARGS)
    for name in (".tmp.jpg", "a.jpg.part", "b.txt", "c.jpg~"):
        make_jpeg(d.input / name)
    write_file(d.input / ".real.jpg.X1b2", jpeg_bytes())
    os.rename(d.input / ".real.jpg.X1b2", d.input / "real.jpg")
    d.wait_done("real.jpg")
    d.quiet(1.0)
    assert [e["file"] for e in d.outcomes()] == ["real.jpg"], d.outcomes()


def test_fsevent_burst(daemons):
    d = daemons.start(args=ARGS)
    data = jpeg_bytes(320, 240)
    files = [f"{'d/' if i % 2 else ''}b{i:02d}.jpg" for i in range(40)]
    for f in files:
        write_file(d.input / f, data)
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values())
    d.quiet(1.0)
    assert len(d.outcomes()) == len(files)
