"""Security, the worker's side (issue 18, cases 1, 7 and 8): a dropper
who swaps a folder for a symlink while a worker is busy, plants one in
the output tree, names a gzip stream or any other format x.jpg, or packs
a small PNG with text chunks that inflate to gigabytes.

Each test is the attack as a dropper would run it against the real
binary; the secret is a folder outside every tree."""

import gzip
import os
import struct
import time
import zlib

from conftest import (TIMEOUT, child_pids, image_info, jpeg_bytes,
                      write_file)

SLOW_S = 4          # the worker's __slow__ test hook sleeps this long


def worker_in_hook(d, timeout=TIMEOUT):
    """Waits until a worker sleeps in the __slow__ hook: it has the job,
    and has not opened the source yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in child_pids(d.pid):
            try:
                with open(f"/proc/{pid}/syscall") as f:
                    nr = f.read().split()[0]
            except (OSError, IndexError):
                continue
            # clock_nanosleep, nanosleep (x86-64, aarch64)
            if nr in ("230", "35", "115", "101"):
                return pid
        time.sleep(0.02)
    raise AssertionError("no worker ever slept in the __slow__ hook\n"
                         + d.describe())


def outputs_of(root):
    """(relative path, (w, h)) of every image file under root."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if f.startswith("."):
                continue
            p = os.path.join(dirpath, f)
            found.append((os.path.relpath(p, root), image_info(p)[:2]))
    return found


def test_input_folder_swapped_for_symlink_mid_job(daemons, tmp_path):
    """mkdir in/sub; cp a.jpg in/sub/x.jpg; while the worker is busy:
    mv in/sub in/sub.old; ln -s /secret in/sub.  The secret x.jpg (a
    200x100 image) is never read: no thumbnail of that size anywhere."""
    secret = tmp_path / "secret"
    secret.mkdir()
    name = "x__slow__.jpg"
    write_file(secret / name, jpeg_bytes(200, 100))
    d = daemons.start(hooks=True, workers=1)

    sub = d.input / "sub"
    sub.mkdir()
    write_file(sub / name, jpeg_bytes(640, 480))
    worker_in_hook(d)
    os.rename(sub, d.input / "sub.old")
    os.symlink(secret, sub)

    e = d.wait_outcome(f"sub/{name}", timeout=TIMEOUT + SLOW_S)
    made = outputs_of(d.output)
    assert not [m for m in made if m[1] == (200, 100)], \
        f"a thumbnail was made from the secret image: {made}\n" \
        + d.describe()
    assert e["event"] != "done", f"{e}\n" + d.describe()
    assert (secret / name).exists()
    assert sorted(os.listdir(secret)) == [name]


def test_output_folder_symlink_is_not_followed(daemons, tmp_path):
    """A folder of the output tree replaced by a symlink to a folder
    elsewhere: the worker never writes through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    d = daemons.make(workers=1)
    d.output.mkdir(parents=True)
    os.symlink(elsewhere, d.output / "sub")
    d.start()

    write_file(d.input / "sub" / "x.jpg", jpeg_bytes(640, 480))
    e = d.wait_outcome("sub/x.jpg")
    assert os.listdir(elsewhere) == [], \
        f"written outside OUTPUT_DIR: {os.listdir(elsewhere)}\n" \
        + d.describe()
    assert e["event"] == "failed", f"{e}\n" + d.describe()
    assert "symbolic link" in e["error"], e
    # the daemon goes on: a file elsewhere in the tree is made
    write_file(d.input / "ok.jpg", jpeg_bytes(640, 480))
    d.wait_done("ok.jpg")


def test_output_folder_swapped_mid_job(daemons, tmp_path):
    """The output folder exists when the job starts and is swapped for a
    symlink while the worker decodes: nothing lands outside."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = "y__slow__.jpg"
    d = daemons.start(hooks=True, workers=1)
    (d.output / "sub").mkdir(parents=True)

    write_file(d.input / "sub" / name, jpeg_bytes(640, 480))
    worker_in_hook(d)
    os.rename(d.output / "sub", d.output / "sub.old")
    os.symlink(elsewhere, d.output / "sub")

    d.wait_outcome(f"sub/{name}", timeout=TIMEOUT + SLOW_S)
    assert os.listdir(elsewhere) == [], \
        f"written outside OUTPUT_DIR: {os.listdir(elsewhere)}\n" \
        + d.describe()


def svgz_trailing():
    """A complete gzip stream of a tiny SVG followed by stray bytes: the
    shape of libvips' own test file truncated.svgz that made svgload's
    sniffer call inflate() forever (Z_STREAM_END, input left)."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'
    return gzip.compress(svg) + b"\0" * 16


def test_gzip_named_jpg_fails_at_once(daemons):
    """An SVGZ named x.jpg (svg not enabled): one failure naming the
    format, at once, on the first try; no worker time-out, no restart."""
    d = daemons.start(workers=1, args=["--image-timeout-ms", "3000"])
    t0 = time.monotonic()
    write_file(d.input / "x.jpg", svgz_trailing())
    e = d.wait_outcome("x.jpg")
    assert e["event"] == "failed", e
    assert "format not enabled: svgz" in e["error"], e
    assert "timed out" not in e["error"] and "poison" not in e["error"], e
    assert time.monotonic() - t0 < 3 + 2, "the failure was not at once"
    assert not d.by_event("worker_timeout") and \
        not d.by_event("worker_exited"), d.describe()
    write_file(d.input / "ok.jpg", jpeg_bytes(320, 240))
    d.wait_done("ok.jpg")


def test_unknown_bytes_and_other_formats_named(daemons):
    """Whatever a .jpg really is, the failure says so from its magic
    bytes, and a .png that is really a JPEG is read as the JPEG it is."""
    d = daemons.start(workers=1)
    write_file(d.input / "doc.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" * 4)
    write_file(d.input / "noise.jpg", b"\x01\x02\x03\x04hello" * 8)
    write_file(d.input / "photo.png", jpeg_bytes(320, 240))
    assert "format not enabled: pdf" in d.wait_outcome("doc.jpg")["error"]
    e = d.wait_outcome("noise.jpg")
    assert e["event"] == "failed" and \
        "first bytes 01 02 03 04" in e["error"], e
    d.wait_done("photo.png")


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


def png_text_bomb(chunks, inflated=7_500_000):
    """A 64x64 RGB PNG with `chunks` zTXt chunks that each inflate to
    `inflated` bytes (under libpng's 8 MB per-chunk cap): 7 KB on disk
    per chunk."""
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    raw = b"".join(b"\0" + b"\x80" * (64 * 3) for _ in range(64))
    z = zlib.compress(b"a" * inflated, 9)
    parts = [b"\x89PNG\r\n\x1a\n", png_chunk(b"IHDR", ihdr)]
    for i in range(chunks):
        parts.append(png_chunk(b"zTXt", b"Comment%d\0\0" % i + z))
    parts += [png_chunk(b"IDAT", zlib.compress(raw)),
              png_chunk(b"IEND", b"")]
    return b"".join(parts)


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_png_text_chunk_bomb_refused(daemons):
    """40 zTXt chunks of 7.5 MB each (300 KB on disk): one failed line
    saying why, the worker never grows past 200 MB, the next file is
    made by the same worker."""
    d = daemons.start(workers=1)
    write_file(d.input / "bomb.png", png_text_bomb(40))
    e = d.wait_outcome("bomb.png")
    assert e["event"] == "failed", e
    assert "metadata" in e["error"], e
    assert "poison" not in e["error"], e
    workers = child_pids(d.pid)
    peak = max([vm_hwm_kb(p) for p in workers] or [0])
    assert peak < 200 * 1024, f"a worker reached {peak} KB"
    assert not d.by_event("worker_exited"), d.describe()
    write_file(d.input / "ok.png", png_text_bomb(2, 1000))
    d.wait_done("ok.png")
    assert image_info(d.output / "ok_thumb.jpg")[:2] == (64, 64)


def test_svg_never_reaches_imagemagick(daemons):
    """EXTENSIONS with a format only ImageMagick reads (bmp) enables it;
    an SVG named x.jpg must still not be rendered (ImageMagick would hand
    it to its own SVG renderer, which fetches what the file links to)."""
    d = daemons.start(workers=1, args=["--extensions", "jpg,bmp"])
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" '
           b'xmlns:xlink="http://www.w3.org/1999/xlink" width="8" '
           b'height="8"><image xlink:href="file:///etc/hostname" '
           b'width="8" height="8"/></svg>')
    write_file(d.input / "vector.jpg", svg)
    e = d.wait_outcome("vector.jpg")
    assert e["event"] == "failed", e
    assert "format not enabled: svg" in e["error"], e
    assert not (d.output / "vector_thumb.jpg").exists()


def test_jpeg_metadata_segments_bounded(daemons):
    """libjpeg keeps every APP1/APP2 segment in memory and libvips copies
    them again: a small image behind 300 APP1 segments of 64 KB (20 MB,
    the way to make MAX_FILE_SIZE worth of metadata) is refused with its
    reason; the same image with its own few segments is made."""
    d = daemons.start(workers=1)
    jpg = jpeg_bytes(64, 64)
    seg = b"\xff\xe1\xff\xff" + b"\0" * 65533
    write_file(d.input / "meta.jpg", jpg[:2] + seg * 300 + jpg[2:])
    e = d.wait_outcome("meta.jpg")
    assert e["event"] == "failed", e
    assert "JPEG metadata" in e["error"], e
    write_file(d.input / "fine.jpg", jpg[:2] + seg * 4 + jpg[2:])
    d.wait_done("fine.jpg")


def test_file_swapped_after_inspection_is_inspected_again(daemons, tmp_path):
    """A small file passes the supervisor's checks; while its job waits in
    the worker, a file over MAX_FILE_SIZE is renamed over it.  The worker
    reads neither (the name holds another inode than the one inspected):
    the first version ends `skipped`, and the new file gets its own checks
    and fails them.  Without the check the big file was decoded."""
    name = "x__slow__.jpg"
    d = daemons.start(hooks=True, workers=1, args=["--max-file-size", "40K"])
    small, big = jpeg_bytes(160, 120), jpeg_bytes(1600, 1200)
    assert len(small) < 40 * 1024 < len(big)
    write_file(d.input / name, small)
    worker_in_hook(d)
    write_file(tmp_path / "big.jpg", big)
    os.rename(tmp_path / "big.jpg", d.input / name)
    deadline = time.monotonic() + TIMEOUT + SLOW_S
    while True:
        mine = [e for e in d.outcomes() if e["file"] == name]
        if len(mine) >= 2:
            break
        assert time.monotonic() < deadline, f"{mine}\n" + d.describe()
        time.sleep(0.1)
    d.quiet(0.5)
    mine = [e for e in d.outcomes() if e["file"] == name]
    assert [e["event"] for e in mine] == ["skipped", "failed"], mine
    assert "replaced" in mine[0]["reason"], mine
    assert "MAX_FILE_SIZE" in mine[1]["error"], mine
    assert outputs_of(d.output) == [], outputs_of(d.output)


def test_nested_output_root_swapped_for_a_link_mid_job(daemons, tmp_path):
    """OUTPUT_DIR inside INPUT_DIR is the dropper's to rename: while a job
    waits in the worker, in/out becomes a link to a folder elsewhere.  The
    worker opens the output root by its path, so it checks it is still the
    folder the supervisor holds; nothing is written through the link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    d = daemons.make(hooks=True, workers=1,
                     output_dir=tmp_path / "root" / "in" / "out")
    d.input = tmp_path / "root" / "in"
    d.cmd[d.cmd.index("--input-dir") + 1] = str(d.input)
    d.input.mkdir(parents=True, exist_ok=True)
    d.start()
    write_file(d.input / "x__slow__.jpg", jpeg_bytes(640, 480))
    worker_in_hook(d)
    os.rename(d.input / "out", d.input / "out.old")
    os.symlink(elsewhere, d.input / "out")
    e = d.wait_outcome("x__slow__.jpg", timeout=TIMEOUT + SLOW_S)
    assert os.listdir(elsewhere) == [], \
        f"written through the link: {os.listdir(elsewhere)}\n" + d.describe()
    assert e["event"] == "failed" and "OUTPUT_DIR was replaced" in \
        e["error"], f"{e}\n" + d.describe()
