"""Where thumbnails go, what they are, and how the output tree follows the
input tree (collisions, presets, mtimes, source actions, mirroring)."""

import os
import shutil

from conftest import (drop_atomic, image_info, jpeg_bytes, make_jpeg,
                      make_png, make_webp, sample, temp_leftovers,
                      tree)

PRESETS_INI = """\
[preset small]
width = 100
height = 100
fit = inside
format = jpeg
quality = 80

[preset sq]
width = 120
height = 120
fit = cover
gravity = centre
format = webp
quality = 70

[preset big]
width = 400
height = 300
format = png

[preset fill]
width = 50
height = 200
fit = fill
format = jpeg
progressive = true
strip = true
"""


def test_collision_same_folder_at_once(daemons, tmp_path):
    d = daemons.start()
    stage = tmp_path / "stage" / "c"
    make_jpeg(stage / "photo.jpg", 640, 480)
    make_png(stage / "photo.png", 480, 640)
    make_webp(stage / "photo.webp", 400, 400)
    make_jpeg(stage / "photo.jpeg", 320, 160)
    os.rename(stage, d.input / "c")
    files = ["c/photo.jpg", "c/photo.png", "c/photo.webp", "c/photo.jpeg"]
    got = d.wait_outcomes(files)
    assert all(e["event"] == "done" for e in got.values()), got
    # byte order: photo.jpeg < photo.jpg < photo.png < photo.webp
    expect = {
        "c/photo.jpeg": ("c/photo_thumb.jpg", (300, 150)),
        "c/photo.jpg": ("c/photo.jpg_thumb.jpg", (300, 225)),
        "c/photo.png": ("c/photo.png_thumb.jpg", (225, 300)),
        "c/photo.webp": ("c/photo.webp_thumb.jpg", (300, 300)),
    }
    for f, (out, size) in expect.items():
        assert got[f]["outputs"] == [out], got[f]
        assert image_info(d.output / out)[:2] == size, (f, out)
    d.quiet(1.0)
    assert sorted(tree(d.output / "c")) == sorted(
        os.path.basename(o) for o, _ in expect.values())
    for f in files:
        d.assert_one_outcome(f)


def test_collision_later_arrival_sorting_first(daemons):
    """photo.png arrives alone, then photo.jpg (which sorts first): in the
    end photo.jpg owns photo_thumb.jpg and photo.png has
    photo.png_thumb.jpg; nothing is silently overwritten."""
    d = daemons.start()
    make_png(d.input / "photo.png", 480, 640)
    d.wait_done("photo.png")
    make_jpeg(d.input / "photo.jpg", 640, 480)
    d.wait_done("photo.jpg")

    def final(_ev):
        try:
            a = image_info(d.output / "photo_thumb.jpg")[:2]
            b = image_info(d.output / "photo.png_thumb.jpg")[:2]
        except AssertionError:
            return False
        return a == (300, 225) and b == (225, 300)
    d.wait_for(final, what="photo_thumb.jpg from photo.jpg and "
               "photo.png_thumb.jpg from photo.png")
    d.quiet(0.5)
    assert sorted(tree(d.output)) == ["photo.png_thumb.jpg",
                                      "photo_thumb.jpg"], tree(d.output)


def test_presets_sizes_and_formats(daemons):
    d = daemons.start(ini=PRESETS_INI)
    start = d.by_event("start")[0]
    assert sorted(start["presets"]) == ["big", "fill", "small", "sq"]
    make_jpeg(d.input / "a.jpg", 640, 480)
    shutil.copyfile(sample("alpha.png"), d.input / "alpha.png")
    e = d.wait_done("a.jpg")
    assert sorted(e["outputs"]) == ["a_big.png", "a_fill.jpg",
                                    "a_small.jpg", "a_sq.webp"], e
    assert image_info(d.output / "a_small.jpg") == (100, 75, 3, "jpegload")
    assert image_info(d.output / "a_sq.webp")[:2] == (120, 120)
    assert image_info(d.output / "a_sq.webp")[3] == "webpload"
    assert image_info(d.output / "a_big.png")[:2] == (400, 300)
    assert image_info(d.output / "a_big.png")[3] == "pngload"
    assert image_info(d.output / "a_fill.jpg")[:2] == (50, 200)
    e = d.wait_done("alpha.png")
    # alpha kept where the format has it, flattened for JPEG
    w, h, bands, loader = image_info(d.output / "alpha_big.png")
    assert (w, h, bands, loader) == (400, 300, 4, "pngload")
    w, h, bands, _ = image_info(d.output / "alpha_small.jpg")
    assert (w, h, bands) == (100, 75, 3)
    assert not temp_leftovers(d.output), temp_leftovers(d.output)


def test_output_mtime_equals_source_mtime(daemons, tmp_path):
    d = daemons.start(ini=PRESETS_INI)
    mtime = 1_600_000_000_123_456_789
    drop_atomic(d.input / "sub" / "m.jpg", jpeg_bytes(), tmp_path / "stage",
                mtime_ns=mtime)
    make_jpeg(d.input / "now.jpg")
    d.wait_done("sub/m.jpg")
    d.wait_done("now.jpg")
    for name in ("m_small.jpg", "m_sq.webp", "m_big.png", "m_fill.jpg"):
        st = os.stat(d.output / "sub" / name)
        assert st.st_mtime_ns == mtime, (name, st.st_mtime_ns)
    src = os.stat(d.input / "now.jpg").st_mtime_ns
    assert os.stat(d.output / "now_small.jpg").st_mtime_ns == src


def test_output_dir_inside_input_dir_not_watched(daemons, tmp_path):
    inp = tmp_path / "in"
    d = daemons.start(output_dir=inp / "thumbs")
    make_jpeg(inp / "a.jpg")
    make_jpeg(inp / "sub" / "b.jpg")
    d.wait_done("a.jpg")
    d.wait_done("sub/b.jpg")
    assert (inp / "thumbs" / "a_thumb.jpg").is_file()
    assert (inp / "thumbs" / "sub" / "b_thumb.jpg").is_file()
    d.quiet(1.5)
    assert sorted(e["file"] for e in d.outcomes()) == ["a.jpg", "sub/b.jpg"]
    assert not (inp / "thumbs" / "thumbs").exists()
    # a file written into the output dir by someone else is not picked up
    make_jpeg(inp / "thumbs" / "foreign.jpg")
    make_jpeg(inp / "c.jpg")
    d.wait_done("c.jpg")
    d.quiet(0.5)
    assert not [e for e in d.outcomes() if "thumbs" in e["file"]]
    d.stop()
    # and the start-up scan does not walk it either
    d.start()
    scan = d.by_event("scan")[0]
    assert scan["files"] == 3 and scan["uptodate"] == 3, scan
    d.quiet(1.0)
    assert d.outcomes() == [], d.outcomes()


def test_source_action_move(daemons, tmp_path):
    done = tmp_path / "done"
    d = daemons.start(args=["--source-action", "move", "--done-dir", done])
    make_jpeg(d.input / "sub" / "a.jpg")
    d.wait_done("sub/a.jpg")
    d.wait_for(lambda ev: (done / "sub" / "a.jpg").is_file()
               and not (d.input / "sub" / "a.jpg").exists(),
               what="the source moved to DONE_DIR")
    assert image_info(done / "sub" / "a.jpg")[:2] == (640, 480)
    d.quiet(1.0)
    # moving the source away must not mirror-delete its thumbnail
    assert (d.output / "sub" / "a_thumb.jpg").is_file()
    assert not d.by_event("deleted"), d.by_event("deleted")
    d.assert_one_outcome("sub/a.jpg")


def test_source_action_delete(daemons):
    d = daemons.start(args=["--source-action=delete"])
    make_jpeg(d.input / "a.jpg")
    make_jpeg(d.input / "s" / "b.jpg")
    d.wait_done("a.jpg")
    d.wait_done("s/b.jpg")
    d.wait_for(lambda ev: not (d.input / "a.jpg").exists()
               and not (d.input / "s" / "b.jpg").exists(),
               what="the sources deleted")
    d.quiet(1.0)
    assert (d.output / "a_thumb.jpg").is_file()
    assert (d.output / "s" / "b_thumb.jpg").is_file()
    assert not d.by_event("deleted")
    d.assert_one_outcome("a.jpg")


def test_source_action_keep_is_default(daemons):
    d = daemons.start()
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    d.quiet(0.5)
    assert (d.input / "a.jpg").is_file()


def test_delete_mirrored(daemons):
    d = daemons.start(ini=PRESETS_INI)
    make_jpeg(d.input / "a.jpg")
    make_jpeg(d.input / "sub" / "b.jpg")
    make_jpeg(d.input / "sub" / "c.jpg")
    for f in ("a.jpg", "sub/b.jpg", "sub/c.jpg"):
        d.wait_done(f)
    os.unlink(d.input / "a.jpg")
    e = d.wait_event("deleted", lambda e: e.get("file") == "a.jpg")[0]
    assert sorted(e["outputs"]) == ["a_big.png", "a_fill.jpg",
                                    "a_small.jpg", "a_sq.webp"], e
    assert not [n for n in os.listdir(d.output) if n.startswith("a_")]
    shutil.rmtree(d.input / "sub")
    d.wait_for(lambda ev: not [n for n in tree(d.output)
                               if n.startswith("sub/") and
                               not os.path.basename(n).startswith(".")],
               what="sub's thumbnails removed")
    d.quiet(0.5)
    assert len(d.outcomes()) == 3, d.outcomes()


def test_delete_not_mirrored_when_off(daemons):
    d = daemons.start(args=["--mirror-deletes", "false"])
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    os.unlink(d.input / "a.jpg")
    d.quiet(1.0)
    assert (d.output / "a_thumb.jpg").is_file()
    assert not d.by_event("deleted")


def test_rename_mirrored_without_rerender(daemons):
    d = daemons.start()
    make_jpeg(d.input / "sub" / "a.jpg")
    make_jpeg(d.input / "album" / "x.jpg")
    make_jpeg(d.input / "album" / "deep" / "y.jpg")
    for f in ("sub/a.jpg", "album/x.jpg", "album/deep/y.jpg"):
        d.wait_done(f)
    ino = os.stat(d.output / "sub" / "a_thumb.jpg").st_ino
    os.rename(d.input / "sub" / "a.jpg", d.input / "sub" / "b.jpg")
    e = d.wait_event("moved", lambda e: e.get("from") == "sub/a.jpg")[0]
    assert e["to"] == "sub/b.jpg", e
    d.wait_for(lambda ev: (d.output / "sub" / "b_thumb.jpg").exists(),
               what="sub/b_thumb.jpg")
    assert os.stat(d.output / "sub" / "b_thumb.jpg").st_ino == ino
    assert not (d.output / "sub" / "a_thumb.jpg").exists()
    # into another folder
    (d.input / "other").mkdir()
    d.quiet(0.3)
    os.rename(d.input / "sub" / "b.jpg", d.input / "other" / "c.jpg")
    d.wait_for(lambda ev: (d.output / "other" / "c_thumb.jpg").exists(),
               what="other/c_thumb.jpg")
    assert os.stat(d.output / "other" / "c_thumb.jpg").st_ino == ino
    assert not (d.output / "sub" / "b_thumb.jpg").exists()
    # a whole folder
    inos = {p: os.stat(d.output / "album" / p).st_ino
            for p in ("x_thumb.jpg", "deep/y_thumb.jpg")}
    os.rename(d.input / "album", d.input / "album2")
    d.wait_for(lambda ev: all((d.output / "album2" / p).exists()
                              for p in inos),
               what="album2's thumbnails")
    for p, i in inos.items():
        assert os.stat(d.output / "album2" / p).st_ino == i, p
    assert not [n for n in tree(d.output) if n.startswith("album/")]
    d.quiet(1.0)
    # no re-render: only the three first outcomes
    assert sorted(e["file"] for e in d.outcomes()) == \
        ["album/deep/y.jpg", "album/x.jpg", "sub/a.jpg"], d.outcomes()
    # the moved folder is still watched under its new name
    make_jpeg(d.input / "album2" / "deep" / "z.jpg")
    d.wait_done("album2/deep/z.jpg")


def test_rename_out_of_tree_is_a_delete(daemons, tmp_path):
    d = daemons.start()
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    os.rename(d.input / "a.jpg", tmp_path / "elsewhere.jpg")
    d.wait_event("deleted", lambda e: e.get("file") == "a.jpg")
    assert not (d.output / "a_thumb.jpg").exists()


def test_rename_to_ignored_name_is_a_delete(daemons):
    """Renamed to a name that is no longer an input (another extension, a
    temp name): its thumbnails go, like a delete; renamed back: redone."""
    d = daemons.start()
    make_jpeg(d.input / "a.jpg")
    make_jpeg(d.input / "b.jpg")
    d.wait_done("a.jpg")
    d.wait_done("b.jpg")
    os.rename(d.input / "a.jpg", d.input / "a.jpg.bak")
    os.rename(d.input / "b.jpg", d.input / ".b.jpg")
    d.wait_for(lambda ev: not (d.output / "a_thumb.jpg").exists()
               and not (d.output / "b_thumb.jpg").exists(),
               what="both thumbnails removed")
    assert not d.by_event("moved"), d.by_event("moved")
    os.rename(d.input / "a.jpg.bak", d.input / "a.jpg")
    d.wait_for(lambda ev: len([e for e in ev if e["event"] == "done"
                               and e.get("file") == "a.jpg"]) == 2,
               what="a.jpg redone")
    assert (d.output / "a_thumb.jpg").is_file()
