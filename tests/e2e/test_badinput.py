"""Bad input gets one `failed` line with a clear reason; odd names work; the
daemon keeps running through all of it."""

import os

from conftest import (drop_atomic, image_info, jpeg_bytes, make_jpeg,
                      temp_leftovers, tree, write_file)


def assert_failed(d, file, *words):
    e = d.wait_outcome(file)
    assert e["event"] == "failed", f"{file}: {e}\n" + d.describe()
    err = e.get("error")
    assert isinstance(err, str) and err.strip(), e
    assert "\n" not in err, f"error is not one line: {err!r}"
    for w in words:
        assert w in err, f"{file}: {w!r} not in error {err!r}"
    return e


def test_bad_images_fail_and_daemon_goes_on(daemons, tmp_path):
    d = daemons.start()
    data = jpeg_bytes(640, 480)
    write_file(d.input / "zero.jpg", b"")
    write_file(d.input / "text.jpg", b"hello, I am not an image\n" * 10)
    write_file(d.input / "trunc.jpg", data[:len(data) // 2])
    write_file(d.input / "png-garbage.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    for f in ("zero.jpg", "text.jpg", "trunc.jpg", "png-garbage.png"):
        assert_failed(d, f)
    make_jpeg(d.input / "good.jpg")
    d.wait_done("good.jpg")
    d.quiet(0.5)
    for f in ("zero.jpg", "text.jpg", "trunc.jpg", "png-garbage.png"):
        d.assert_one_outcome(f, "failed")
    assert tree(d.output) == ["good_thumb.jpg"], tree(d.output)
    assert not temp_leftovers(d.output)
    # the truncated file written again, complete: redone
    write_file(d.input / "trunc.jpg", data)
    d.wait_for(lambda ev: [e for e in ev if e["event"] == "done"
                           and e.get("file") == "trunc.jpg"],
               what="trunc.jpg done once complete")
    assert image_info(d.output / "trunc_thumb.jpg")[:2] == (300, 225)


def test_fifo_does_not_block(daemons, tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    # one FIFO present at start-up (found by the scan) ...
    d = daemons.make()
    os.mkfifo(d.input / "early.jpg")
    d.start()
    assert_failed(d, "early.jpg")
    # ... and one moved in while running
    os.mkfifo(stage / "x.jpg")
    os.rename(stage / "x.jpg", d.input / "x.jpg")
    assert_failed(d, "x.jpg")
    make_jpeg(d.input / "after.jpg")
    d.wait_done("after.jpg")
    d.quiet(0.5)
    d.assert_one_outcome("early.jpg", "failed")
    d.assert_one_outcome("x.jpg", "failed")


def test_symlink_out_of_tree_fails(daemons, tmp_path):
    outside = tmp_path / "secret.jpg"
    make_jpeg(outside)
    stage = tmp_path / "stage"
    stage.mkdir()
    d = daemons.start()
    os.symlink(outside, stage / "link.jpg")
    os.rename(stage / "link.jpg", d.input / "link.jpg")
    assert_failed(d, "link.jpg")
    os.symlink("../../secret.jpg", stage / "rel.jpg")
    os.makedirs(d.input / "sub")
    d.quiet(0.3)
    os.rename(stage / "rel.jpg", d.input / "sub" / "rel.jpg")
    assert_failed(d, "sub/rel.jpg")
    assert not (d.output / "link_thumb.jpg").exists()
    assert not (d.output / "sub" / "rel_thumb.jpg").exists()
    d.quiet(0.5)
    d.assert_one_outcome("link.jpg", "failed")


def test_max_file_size(daemons):
    d = daemons.start(args=["--max-file-size", "20K"])
    big = jpeg_bytes(640, 480)
    small = jpeg_bytes(64, 48)
    assert len(big) > 20 * 1024 > len(small)
    write_file(d.input / "big.jpg", big)
    write_file(d.input / "small.jpg", small)
    assert_failed(d, "big.jpg", "MAX_FILE_SIZE")
    d.wait_done("small.jpg")
    assert not (d.output / "big_thumb.jpg").exists()


def test_max_pixels(daemons):
    d = daemons.start(args=["--max-pixels", "100000"])
    make_jpeg(d.input / "large.jpg", 640, 480)
    make_jpeg(d.input / "fine.jpg", 320, 240)
    assert_failed(d, "large.jpg")
    d.wait_done("fine.jpg")


def test_folder_named_like_an_image(daemons):
    d = daemons.start()
    os.mkdir(d.input / "folder.jpg")
    make_jpeg(d.input / "folder.jpg" / "inner.jpg")
    d.wait_done("folder.jpg/inner.jpg")
    d.quiet(0.5)
    assert [e["file"] for e in d.outcomes()] == ["folder.jpg/inner.jpg"]


NAMES = [
    "with space.jpg",
    "  leading and trailing  .jpg",
    "quote's.jpg",
    'double"quote.jpg',
    "back\\slash.jpg",
    "new\nline.jpg",
    "tab\there.jpg",
    "café ☕ 写真.jpg",
    "UPPER.JPG",
    "semi;colon & amp$(x).jpeg",
    "many.dots.in.name.jpg",
]


def test_odd_file_names(daemons):
    d = daemons.start()
    data = jpeg_bytes(320, 240)
    for n in NAMES:
        write_file(d.input / n, data)
    got = d.wait_outcomes(NAMES)
    for n in NAMES:
        assert got[n]["event"] == "done", got[n]
        stem = n.rsplit(".", 1)[0]
        out = d.output / f"{stem}_thumb.jpg"
        assert got[n]["outputs"] == [f"{stem}_thumb.jpg"], got[n]
        assert image_info(out)[:2] == (300, 225), out
    d.quiet(0.5)
    for n in NAMES:
        d.assert_one_outcome(n)
    # the same names one folder down, and a folder with an odd name
    for n in NAMES[:4]:
        write_file(d.input / "odd dir \"x\"" / n, data)
    got = d.wait_outcomes([f"odd dir \"x\"/{n}" for n in NAMES[:4]])
    assert all(e["event"] == "done" for e in got.values())


def test_non_utf8_name(daemons):
    """A name that is not UTF-8: processed, one outcome line, and the log
    stays valid (UTF-8) JSON (every read of the log checks that)."""
    d = daemons.start()
    data = jpeg_bytes(320, 240)
    name = b"bad\xff\xfe name\xc3.jpg"
    write_file(os.fsencode(d.input) + b"/" + name, data)
    write_file(os.fsencode(d.input) + b"/sub\xe9/" + b"x.jpg", data)
    d.wait_for(lambda ev: len([e for e in ev if e["event"] in
                               ("done", "failed", "skipped")]) >= 2,
               what="two outcome lines")
    make_jpeg(d.input / "sentinel.jpg")
    d.wait_done("sentinel.jpg")
    d.quiet(0.5)
    oc = d.outcomes()
    assert len(oc) == 3, oc
    assert all(e["event"] == "done" for e in oc), oc
    out = os.fsencode(d.output)
    assert b"bad\xff\xfe name\xc3_thumb.jpg" in os.listdir(out), \
        os.listdir(out)
    assert os.path.isfile(out + b"/sub\xe9/x_thumb.jpg")
    # the log names them in some escaped form, not as the raw bytes
    raw = d.log.read_bytes()
    assert b"\xff\xfe" not in raw
    # deletion of the non-UTF-8 name is mirrored too
    os.unlink(os.fsencode(d.input) + b"/" + name)
    d.wait_for(lambda ev: not os.path.exists(
        out + b"/bad\xff\xfe name\xc3_thumb.jpg"), what="thumbnail removed")


def test_unsupported_format_content(daemons, tmp_path):
    """A PDF named .jpg must not reach a blocked loader: one failed."""
    d = daemons.start()
    write_file(d.input / "doc.jpg",
               b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n")
    assert_failed(d, "doc.jpg")
    # an SVG named .png
    write_file(d.input / "vec.png",
               b'<svg xmlns="http://www.w3.org/2000/svg" width="10" '
               b'height="10"><rect width="10" height="10"/></svg>')
    assert_failed(d, "vec.png")
    drop_atomic(d.input / "ok.jpg", jpeg_bytes(), tmp_path / "stage")
    d.wait_done("ok.jpg")
