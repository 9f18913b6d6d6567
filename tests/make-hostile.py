#!/usr/bin/python3
"""Generates thumbwatch's hostile input fixtures into a folder.

    tests/make-hostile.py OUT [--seed N] [--count N] [--outside DIR]
                          [--svg-port N] [--no-big] [--manifest FILE]

Nothing large is committed: every fixture is made here, at test time, from
a few small valid images drawn by the `vips` CLI and from bytes written by
this script (standard library only).  The same seed gives the same bytes.

What OUT holds afterwards (every name relative to OUT):

  corrupt/<fmt>/...   --count variants (default 300) of small valid JPEG
                      (baseline, progressive), PNG (RGB, palette), WebP
                      (lossy, lossless), GIF, TIFF (deflate, LZW, JPEG) and
                      HEIC (when `vips` can write it) files: bytes flipped at
                      random offsets, truncated at random lengths, a range
                      zeroed, or random bytes spliced in
  good/               the untouched base images (must all end `done`)
  empty/, text/       zero-byte files; text, HTML, JSON, random bytes named
                      as images
  mismatch/           valid images under another format's extension
  blocked/            PDF, PPM, Radiance, CSV content under image names
                      (loaders not in EXTENSIONS)
  flood/              tiny files whose header declares 64000x64000 (PNG with
                      IHDR + CRC patched, JPEG SOF patched, GIF logical
                      screen, TIFF tags, WebP VP8L 16383x16383, HEIC ispe),
                      and a 16000x16000 PNG header over a few rows of data
  big/                a 16000x16000 single-colour PNG (~750 KB), progressive
                      JPEGs of 12000x9000 (over the progressive cap) and
                      9000x9000 (under it) -- skipped with --no-big
  anim/               a GIF of 2000 16x16 frames (written byte by byte)
  pages/              a TIFF of 5000 16x16 pages
  svg/                SVGs referring to file:///etc/passwd, to the outside
                      folder, to http://127.0.0.1:PORT/ (href, xlink:href,
                      CSS @import, XInclude, external XML entities), named
                      .svg and .jpg
  names/              a valid JPEG under hostile names: spaces, quotes,
                      backslashes, newline, CR, tab, ESC, other control
                      bytes, printf directives, JSON fragments, non-UTF-8
                      bytes, 255-byte names (ASCII and multi-byte)
  ignored/            temporary names (.x.jpg, x.jpg.part, ...) and
                      extensions that are not enabled: never picked up
  links/              symlinks: to a file inside the tree (followed), to
                      files, folders and devices outside it, dangling, loops
  special/            a FIFO named x.jpg, a UNIX socket named sock.jpg and
                      (root only) special/dev/x.jpg, a character device
                      with /dev/null's numbers (1, 3)

The outside folder (--outside, default OUT/../outside) gets secret.jpg and
secret.png, which links/ and svg/ point at; they must never change.
Relative links in links/ resolve to it as long as OUT's replacement (the
folder the fixtures are moved to) sits next to it, like OUT does.

The manifest (JSON, to --manifest or stdout) lists every fixture:
  {"path": "names/a b.jpg", "kind": "name-space", "expect": "done",
   "size": [w, h], "error": "too large"}
path is relative to OUT; non-UTF-8 bytes are kept as surrogate escapes
(os.fsencode(path) gives the bytes back).  expect is one of
  done     must end `done` (size: the source's width and height)
  failed   must end `failed` (error: words the message must contain)
  either   corrupted data: `done` with a valid thumbnail, or `failed`
  ignored  never picked up (temporary name, extension not enabled,
           a symlink to a folder)
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib

W, H = 128, 96          # base image size: small on disk, quick to decode
# progressive JPEGs cannot shrink on load; thumbwatch refuses those over
# 100 megapixels from the header (src/worker/thumb.c, PROGRESSIVE_MAX_PIXELS)
PROGRESSIVE = ((12000, 9000), (9000, 9000))
PROGRESSIVE_CAP = 100_000_000

# --------------------------------------------------------------------------
# helpers


def vips(*args):
    r = subprocess.run(["vips"] + [str(a) for a in args], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"vips {' '.join(map(str, args))}: "
                           f"{r.stderr.decode(errors='replace').strip()}")


def vips_all(cmds, jobs=4):
    """Runs many vips commands, a few at a time (each is one process)."""
    cmds = list(cmds)
    running = []
    while cmds or running:
        while cmds and len(running) < jobs:
            args = [str(a) for a in cmds.pop(0)]
            running.append((args, subprocess.Popen(
                ["vips"] + args, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)))
        args, p = running.pop(0)
        err = p.communicate()[1]
        if p.returncode != 0:
            raise RuntimeError(f"vips {' '.join(args)}: "
                               f"{err.decode(errors='replace').strip()}")


def can_save(saver):
    r = subprocess.run(["vips", "-l"], capture_output=True)
    return (f"({saver})").encode() in r.stdout


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


class Out:
    """Writes fixtures below root and records them in the manifest."""

    def __init__(self, root):
        self.root = os.fsencode(root)
        self.entries = []

    def path(self, rel):
        return os.path.join(self.root, os.fsencode(rel))

    def record(self, rel, kind, expect, **kw):
        e = {"path": os.fsdecode(os.fsencode(rel)), "kind": kind,
             "expect": expect}
        e.update(kw)
        self.entries.append(e)
        return e

    def write(self, rel, data, kind, expect, **kw):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return self.record(rel, kind, expect, **kw)


# --------------------------------------------------------------------------
# base images (vips CLI)


def base_images(work, heic, seed):
    """{name: (ext, bytes)} of small valid images, all W x H."""
    noise = os.path.join(work, "noise.v")
    srgb = os.path.join(work, "srgb.v")
    vips("gaussnoise", noise, W, H, "--sigma", 40, "--mean", 128,
         "--seed", seed)
    vips("colourspace", noise, srgb, "srgb")
    specs = [
        ("jpeg", "jpg", "[Q=85,strip=true]"),
        ("jpeg-progressive", "jpg", "[Q=80,interlace=true,strip=true]"),
        ("png", "png", "[compression=6]"),
        ("png-palette", "png", "[palette=true]"),
        ("webp", "webp", "[Q=70]"),
        ("webp-lossless", "webp", "[lossless=true]"),
        ("gif", "gif", ""),
        ("tiff-deflate", "tif", "[compression=deflate]"),
        ("tiff-lzw", "tiff", "[compression=lzw]"),
        ("tiff-jpeg", "tif", "[compression=jpeg]"),
    ]
    if heic:
        specs.append(("heic", "heic", "[Q=50]"))
    out = {}
    # formats no enabled loader reads (saved by extension)
    vips_all([["copy", srgb, os.path.join(work, "blk.ppm")],
              ["copy", srgb, os.path.join(work, "blk.hdr")],
              ["extract_band", srgb, os.path.join(work, "blk.csv"), 0]])
    try:
        vips_all(["copy", srgb, os.path.join(work, f"{name}.{ext}") + opts]
                 for name, ext, opts in specs)
    except RuntimeError:          # no libimagequant: no palette PNG
        specs = [sp for sp in specs if sp[0] != "png-palette"]
        vips_all(["copy", srgb, os.path.join(work, f"{name}.{ext}") + opts]
                 for name, ext, opts in specs)
    for name, ext, _ in specs:
        with open(os.path.join(work, f"{name}.{ext}"), "rb") as f:
            out[name] = (ext, f.read())
    return out


# --------------------------------------------------------------------------
# corruption


def mutate(rng, data):
    """(mutation name, bytes) of one seeded corruption of data."""
    b = bytearray(data)
    r = rng.random()
    if r < 0.45:
        n = rng.choice([1, 1, 1, 2, 3, 5, 8, 16, 64])
        head = rng.random() < 0.5     # half in the header region
        for _ in range(n):
            lim = min(len(b), 256) if head else len(b)
            off = rng.randrange(lim)
            b[off] ^= rng.randrange(1, 256)
        return f"flip{n}{'h' if head else ''}", bytes(b)
    if r < 0.80:
        cut = rng.randrange(1, len(b))
        return f"trunc{cut}", bytes(b[:cut])
    if r < 0.90:
        n = rng.randrange(16, 513)
        off = rng.randrange(len(b))
        b[off:off + n] = b"\0" * len(b[off:off + n])
        return f"zero{off}", bytes(b)
    n = rng.randrange(1, 257)
    off = rng.randrange(len(b))
    junk = bytes(rng.randrange(256) for _ in range(n))
    return f"splice{off}", bytes(b[:off] + junk + b[off:])


# --------------------------------------------------------------------------
# hand-written files


def flat_png(w, h, rgb):
    """A w x h PNG of one colour, small on disk and quick to write: the
    rows after the first use the Up filter (all zero bytes), compressed
    one block at a time after a full flush, so one compressed block is
    repeated rather than 3*w*h bytes deflated."""
    first = b"\x01" + bytes(rgb) + b"\0" * (3 * w - 3)
    row = b"\x02" + b"\0" * (3 * w)
    per = 64
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    parts = [c.compress(first) + c.flush(zlib.Z_FULL_FLUSH)]
    block = c.compress(row * per) + c.flush(zlib.Z_FULL_FLUSH)
    left = h - 1
    parts.append(block * (left // per))
    tail = c.compress(row * (left % per)) + c.flush(zlib.Z_FINISH)
    # the trailer's Adler-32 must cover every byte: recompute it
    adler = zlib.adler32(first)
    for _ in range(left):
        adler = zlib.adler32(row, adler)
    tail = tail[:-4] + struct.pack(">I", adler & 0xffffffff)
    idat = b"".join(parts) + tail
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def png_partial(w, h, rows):
    """A PNG header declaring w x h over only `rows` rows of data."""
    raw = (b"\x00" + b"\x80" * (3 * w)) * rows
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_with_size(png, w, h):
    """png with its IHDR width and height replaced (CRC recomputed)."""
    assert png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", w, h) + png[24:29]
    return png[:8] + png_chunk(b"IHDR", ihdr) + png[33:]


def jpeg_with_size(jpg, w, h):
    """jpg with the dimensions of its SOFn segment replaced."""
    b = bytearray(jpg)
    i = 2
    while i < len(b) - 9:
        if b[i] != 0xFF:
            raise ValueError("no SOF marker")
        m = b[i + 1]
        seglen = struct.unpack(">H", b[i + 2:i + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", b, i + 5, h, w)
            return bytes(b)
        i += 2 + seglen
    raise ValueError("no SOF marker")


def webp_with_size(webp, w, h):
    """A lossless (VP8L) webp with its declared size replaced."""
    i = webp.find(b"VP8L")
    if i < 0:
        raise ValueError("not VP8L")
    b = bytearray(webp)
    bits = struct.unpack("<I", b[i + 9:i + 13])[0]
    bits = (bits & ~0x0FFFFFFF) | (w - 1) | ((h - 1) << 14)
    struct.pack_into("<I", b, i + 9, bits)
    x = webp.find(b"VP8X")
    if 0 <= x < i:      # the extended header's canvas must agree
        b[x + 12:x + 15] = (w - 1).to_bytes(3, "little")
        b[x + 15:x + 18] = (h - 1).to_bytes(3, "little")
    return bytes(b)


def heic_with_size(heic, w, h):
    """Every `ispe` (image spatial extent) property set to w x h."""
    b = bytearray(heic)
    i = b.find(b"ispe")
    n = 0
    while i >= 0:
        struct.pack_into(">II", b, i + 8, w, h)
        n += 1
        i = b.find(b"ispe", i + 4)
    if not n:
        raise ValueError("no ispe box")
    return bytes(b)


def lzw_single_colour(index, npix):
    """GIF LZW data (min code size 2) of npix pixels of one palette index:
    a clear code every two literals keeps the code size at 3 bits, so no
    string table is needed (the 'uncompressed GIF' trick)."""
    clear, eoi = 4, 5
    codes = []
    for k in range(npix):
        if k % 2 == 0:
            codes.append(clear)
        codes.append(index)
    codes.append(eoi)
    acc = nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += 3
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    blocks = bytearray()
    for k in range(0, len(out), 255):
        part = out[k:k + 255]
        blocks += bytes([len(part)]) + part
    return bytes([2]) + bytes(blocks) + b"\0"


def gif(frames, w=16, h=16, screen=None):
    """An animated GIF of `frames` w x h frames cycling through three
    colours, on a logical screen of `screen` (default w x h)."""
    sw, sh = screen or (w, h)
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", sw, sh, 0xF1, 0, 0))
    out += bytes([0, 0, 0, 230, 40, 40, 40, 200, 60, 40, 60, 220])
    if frames > 1:
        out += b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00"
    data = {c: lzw_single_colour(c, w * h) for c in (1, 2, 3)}
    for k in range(frames):
        out += b"\x21\xF9\x04\x04" + struct.pack("<H", 2) + b"\x00\x00"
        out += b"\x2C" + struct.pack("<HHHHB", 0, 0, w, h, 0)
        out += data[1 + k % 3]
    out += b"\x3B"
    return bytes(out)


def tiff_header_only(w, h):
    """A little-endian TIFF declaring w x h 8-bit grey, with one 16-byte
    strip."""
    tags = [  # tag, type (3 SHORT, 4 LONG), value
        (256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 1),
        (273, 4, 0), (277, 3, 1), (278, 4, h), (279, 4, 16)]
    ifd_off = 8
    data_off = ifd_off + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_off))
    out += struct.pack("<H", len(tags))
    for tag, typ, val in tags:
        if tag == 273:
            val = data_off
        if typ == 3:
            out += struct.pack("<HHIHH", tag, typ, 1, val, 0)
        else:
            out += struct.pack("<HHII", tag, typ, 1, val)
    out += struct.pack("<I", 0)
    out += b"\x80" * 16
    return bytes(out)


def tiff_pages(n, w=16, h=16):
    """A little-endian TIFF of n pages of w x h 8-bit grey (PackBits),
    each page its own IFD (NewSubfileType page, PageNumber k of n); the
    pages cycle through three shades and share their strips."""
    assert w <= 128
    shades = (40, 128, 220)
    strip = {v: (bytes([257 - w, v]) * h) for v in shades}
    out = bytearray(b"II*\0\0\0\0\0")
    offs = {}
    for v in shades:
        offs[v] = len(out)
        out += strip[v]
    if len(out) % 2:
        out += b"\0"
    struct.pack_into("<I", out, 4, len(out))
    ntags = 11
    for k in range(n):
        v = shades[k % 3]
        here = len(out)
        nxt = here + 2 + 12 * ntags + 4 if k < n - 1 else 0
        out += struct.pack("<H", ntags)
        for tag, typ, val in (
                (254, 4, 2), (256, 3, w), (257, 3, h), (258, 3, 8),
                (259, 3, 32773), (262, 3, 1), (273, 4, offs[v]),
                (277, 3, 1), (278, 3, h), (279, 4, len(strip[v])),
                (297, 3, k | (n << 16))):
            if tag == 297:      # PageNumber: two SHORTs
                out += struct.pack("<HHIHH", tag, typ, 2, k, n)
            elif typ == 3:
                out += struct.pack("<HHIHH", tag, typ, 1, val, 0)
            else:
                out += struct.pack("<HHII", tag, typ, 1, val)
        out += struct.pack("<I", nxt)
    return bytes(out)


def svg(refs_port, outside):
    """{name: text} of SVGs referring outside themselves."""
    http = f"http://127.0.0.1:{refs_port}"
    head = ('<?xml version="1.0"?>\n'
            '<svg xmlns="http://www.w3.org/2000/svg" '
            'xmlns:xlink="http://www.w3.org/1999/xlink" '
            'xmlns:xi="http://www.w3.org/2001/XInclude" '
            'width="64" height="64">\n'
            '<rect width="64" height="64" fill="#36c"/>\n')
    return {
        "href": head +
        '<image href="file:///etc/passwd" width="64" height="64"/>\n'
        f'<image href="{http}/x.png" width="64" height="64"/>\n'
        f'<image xlink:href="{http}/y.png" width="64" height="64"/>\n'
        f'<image href="file://{outside}/secret.png" width="64" '
        'height="64"/>\n</svg>\n',
        "style": head +
        f'<style>@import url("{http}/s.css"); rect {{ fill: '
        f'url("{http}/f.svg#p") }}</style>\n'
        f'<use href="{http}/u.svg#x"/>\n</svg>\n',
        "xinclude": head +
        '<text y="20"><xi:include href="file:///etc/passwd" parse="text"/>'
        f'<xi:include href="{http}/inc.txt" parse="text"/></text>\n</svg>\n',
        "entity": '<?xml version="1.0"?>\n<!DOCTYPE svg [\n'
        '<!ENTITY passwd SYSTEM "file:///etc/passwd">\n'
        f'<!ENTITY remote SYSTEM "{http}/ent.xml">\n]>\n' +
        head[len('<?xml version="1.0"?>\n'):] +
        '<text y="20">&passwd;&remote;</text>\n</svg>\n',
    }


# --------------------------------------------------------------------------
# the fixture set


NAMES = [
    ("space", b"with space.jpg"),
    ("leading-trailing", b"  padded  .jpg"),
    ("single-quote", b"it's.jpg"),
    ("double-quote", b'say "cheese".jpg'),
    ("backslash", b"back\\slash\\.jpg"),
    ("newline", b"new\nline.jpg"),
    ("carriage-return", b"carriage\rreturn.jpg"),
    ("tab", b"tab\there.jpg"),
    ("escape", b"\x1b[31mred\x1b[0m.jpg"),
    ("control", b"ctl\x01\x02\x7f.jpg"),
    ("printf", b"%s%n%x%p%99999d.jpg"),
    ("json", b'"},{"event":"done","file":"x.jpg.jpg'),
    ("shell", b"$(touch pwned)`id`;rm -rf x|y&.jpg"),
    ("dash", b"-rf --help.jpg"),
    ("double-dots", b"mid..dots..jpg"),
    ("bidi", "evil\u202egpj.exe.jpg".encode()),
    ("emoji", "📷 写真 café.jpg".encode()),
    ("non-utf8", b"latin1 caf\xe9.jpg"),
    ("non-utf8-mixed", b"bad\xff\xfe\xc3(\xa0\xa1.jpg"),
    ("overlong-utf8", b"overlong\xc0\xaf.jpg"),
    ("surrogate-utf8", b"surrogate\xed\xa0\x80.jpg"),
    ("upper-ext", b"SHOUT.JPG"),
    ("255-ascii", b"a" * 251 + b".jpg"),
    ("255-multibyte", "é".encode() * 125 + b"x.jpg"),
    ("254-bytes", b"b" * 250 + b".jpg"),
    ("200-bytes", b"c" * 196 + b".jpg"),
]

IGNORED = [
    ("dot-name", b".hidden.jpg"),
    ("dot-dot-name", b"..foo..jpg"),
    ("part", b"upload.jpg.part"),
    ("tmp", b"upload.jpg.tmp"),
    ("crdownload", b"upload.jpg.crdownload"),
    ("tilde", b"upload.jpg~"),
    ("tw-temp", b".upload_thumb.jpg.tw-Ab12Cd"),
    ("rsync-temp", b".upload.jpg.Xy12Zw"),
    ("ext-trailing-space", b"space-after.jpg "),
    ("ext-svg", b"plain.svg"),
    ("ext-pdf", b"doc.pdf"),
    ("no-ext", b"noextension"),
    ("ext-only-dot", b"dot."),
]


def build(out_dir, seed, count, outside, svg_port, big):
    rng = random.Random(seed)
    o = Out(out_dir)
    heic = can_save("heifsave")
    work = tempfile.mkdtemp(prefix="tw-hostile-")
    bg = []
    try:
        if big:     # the slow ones, in the background meanwhile
            for w, h in PROGRESSIVE:
                bg.append(((w, h), subprocess.Popen(
                    ["vips", "black", os.path.join(work, f"prog-{w}.jpg") +
                     "[Q=40,interlace=true,strip=true]", str(w), str(h),
                     "--bands", "3"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)))
        bases = base_images(work, heic, seed)
        if heic:
            try:           # writable is not enough: it must read back
                subprocess.run(["vipsheader", os.path.join(work, "heic.heic")],
                               check=True, capture_output=True)
            except subprocess.CalledProcessError:
                bases.pop("heic")
                heic = False
        _build(o, rng, bases, count, outside, svg_port, big, work)
        for (w, h), p in bg:
            err = p.communicate()[1]
            if p.returncode != 0:
                raise RuntimeError(f"vips black {w}x{h}: {err.decode()}")
            cap = w * h > PROGRESSIVE_CAP
            with open(os.path.join(work, f"prog-{w}.jpg"), "rb") as f:
                o.write(f"big/progressive-{w}x{h}.jpg", f.read(),
                        "progressive-jpeg-" + ("over" if cap else "under") +
                        "-cap", "failed" if cap else "done",
                        **({"error": "progressive"} if cap else
                           {"size": [w, h]}))
    finally:
        for _, p in bg:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    return o.entries, heic


def _build(o, rng, bases, count, outside, svg_port, big, work):
    jpg = bases["jpeg"][1]
    png = bases["png"][1]
    size = [W, H]

    # good/: the untouched bases
    for name, (ext, data) in bases.items():
        o.write(f"good/{name}.{ext}", data, f"good-{name}", "done",
                size=size)

    # corrupt/: seeded variants, round robin over the bases
    names = sorted(bases)
    for k in range(count):
        name = names[k % len(names)]
        ext, data = bases[name]
        how, bad = mutate(rng, data)
        o.write(f"corrupt/{name}/{k:04d}-{how}.{ext}", bad,
                f"corrupt-{name}-{how.rstrip('0123456789h')}", "either",
                format=name, mutation=how, size_of_valid=len(data),
                size_now=len(bad))

    # empty/ and text/
    for ext in ("jpg", "png", "webp", "gif", "tif", "heic"):
        o.write(f"empty/zero.{ext}", b"", "zero-bytes", "failed",
                error="empty")
    o.write("text/notes.jpg", b"hello, I am not an image\n" * 20,
            "text", "failed")
    o.write("text/page.png", b"<!doctype html><html><body>hi</body>"
            b"</html>\n", "html", "failed")
    o.write("text/data.webp", b'{"not": "an image"}\n', "json", "failed")
    o.write("text/script.gif", b"#!/bin/sh\necho pwned > /tmp/pwned\n",
            "script", "failed")
    o.write("text/random.tiff", bytes(rng.randrange(256)
                                      for _ in range(4096)),
            "random-bytes", "failed")
    o.write("text/magic-only.jpg", b"\xff\xd8\xff", "jpeg-magic-only",
            "failed")
    o.write("text/magic-only.png", b"\x89PNG\r\n\x1a\n", "png-magic-only",
            "failed")
    o.write("text/gif-header-only.gif", b"GIF89a\x10\x00\x10\x00\x00\x00\x00",
            "gif-header-only", "failed")
    o.write("text/riff-only.webp", b"RIFF\x04\x00\x00\x00WEBP",
            "webp-riff-only", "failed")
    o.write("text/tiff-bad-ifd.tif", b"II*\0\xff\xff\xff\x7f",
            "tiff-bad-ifd-offset", "failed")
    o.write("text/tiff-ifd-loop.tif", b"II*\0\x08\0\0\0\x00\x00\x08\0\0\0",
            "tiff-ifd-loop", "failed")

    # mismatch/: valid content, another format's name: allowed by content
    o.write("mismatch/png-content.jpg", png, "png-named-jpg", "done",
            size=size)
    o.write("mismatch/jpeg-content.png", jpg, "jpeg-named-png", "done",
            size=size)
    o.write("mismatch/webp-content.gif", bases["webp"][1], "webp-named-gif",
            "done", size=size)
    o.write("mismatch/gif-content.tiff", bases["gif"][1], "gif-named-tiff",
            "done", size=size)

    # blocked/: formats whose loaders EXTENSIONS does not allow
    o.write("blocked/doc.jpg", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R"
            b">>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n", "pdf-named-jpg", "failed")
    for ext, name in (("ppm", "netpbm.png"), ("hdr", "radiance.webp"),
                      ("csv", "numbers.tif")):
        with open(os.path.join(work, f"blk.{ext}"), "rb") as f:
            data = f.read()
        if ext == "ppm":    # vips dates its PPM header: drop the comment
            data = re.sub(rb"\n#[^\n]*", b"", data, count=1)
        o.write(f"blocked/{name}", data, f"{ext}-content", "failed")

    # flood/: tiny files declaring huge sizes
    o.write("flood/png-64000.png", png_with_size(png, 64000, 64000),
            "pixel-flood-png", "failed", error="too large")
    o.write("flood/jpeg-64000.jpg", jpeg_with_size(jpg, 64000, 64000),
            "pixel-flood-jpeg", "failed", error="too large")
    o.write("flood/jpeg-progressive-64000.jpg",
            jpeg_with_size(bases["jpeg-progressive"][1], 64000, 64000),
            "pixel-flood-jpeg-progressive", "failed", error="too large")
    # libvips 8.14 (libnsgif) sizes a GIF by its frames, not the logical
    # screen: this one may well be a plain 16x16 image
    o.write("flood/gif-screen-64000.gif", gif(1, screen=(64000, 64000)),
            "pixel-flood-gif-screen", "either")
    o.write("flood/tiff-64000.tif", tiff_header_only(64000, 64000),
            "pixel-flood-tiff", "failed", error="too large")
    # WebP cannot declare more than 16383x16383, which is exactly the
    # default MAX_PIXELS: this one passes the header check and must fail
    # on its (tiny) data without allocating the canvas
    o.write("flood/webp-16383.webp",
            webp_with_size(bases["webp-lossless"][1], 16383, 16383),
            "pixel-flood-webp-at-limit", "failed")
    if "heic" in bases:
        o.write("flood/heic-64000.heic",
                heic_with_size(bases["heic"][1], 64000, 64000),
                "pixel-flood-heic", "failed")
    o.write("flood/png-16000-few-rows.png", png_partial(16000, 16000, 4),
            "huge-header-little-data", "failed")

    # big/: large images that are small on disk (the progressive JPEGs
    # are written by vips in the background: see build)
    if big:
        o.write("big/flat-16000.png", flat_png(16000, 16000, (200, 30, 30)),
                "huge-flat-png", "done", size=[16000, 16000])

    # anim/ and pages/
    o.write("anim/frames-2000.gif", gif(2000), "gif-2000-frames", "done",
            size=[16, 16])
    o.write("pages/pages-5000.tif", tiff_pages(5000), "tiff-5000-pages",
            "done", size=[16, 16])

    # svg/
    for name, text in svg(svg_port, outside).items():
        data = text.encode()
        o.write(f"svg/{name}.svg", data, f"svg-{name}", "ignored")
        o.write(f"svg/{name}-svg.jpg", data, f"svg-{name}-named-jpg",
                "failed", error="not enabled")

    # names/
    for kind, name in NAMES:
        rel = b"names/" + name
        expect = "done"
        extra = {"size": size}
        if len(name) > 255 - len("_thumb.jpg") + len(".jpg"):
            # <stem>_thumb.jpg no longer fits in NAME_MAX
            expect = "either"
            extra = {}
        o.write(rel, jpg, f"name-{kind}", expect, **extra)
    o.write(b"names/odd dir \"q\" \\ \n\xe9x/inner.jpg", jpg,
            "name-odd-folder", "done", size=size)

    # ignored/
    for kind, name in IGNORED:
        o.write(b"ignored/" + name, jpg, f"ignored-{kind}", "ignored")

    # links/
    os.makedirs(outside, exist_ok=True)
    secret_jpg = os.path.join(outside, "secret.jpg")
    with open(secret_jpg, "wb") as f:
        f.write(jpg)
    with open(os.path.join(outside, "secret.png"), "wb") as f:
        f.write(png)
    links = o.path("links")
    os.makedirs(links, exist_ok=True)
    rel_out = os.path.relpath(os.fsencode(secret_jpg), o.path("links"))

    def link(name, target, kind, expect, **kw):
        os.symlink(target, os.path.join(links, os.fsencode(name)))
        o.record(f"links/{name}", kind, expect, **kw)

    with open(os.path.join(links, b"real.jpg"), "wb") as f:
        f.write(jpg)
    o.record("links/real.jpg", "link-target-inside", "done", size=size)
    # The threat model: no symlink is followed, even one that stays inside.
    link("inside.jpg", "real.jpg", "symlink-inside", "failed",
         error="symbolic link")
    link("outside-abs.jpg", secret_jpg, "symlink-outside-absolute",
         "failed", error="outside")
    link("outside-rel.jpg", os.fsdecode(rel_out), "symlink-outside-relative",
         "failed", error="outside")
    link("etc-passwd.jpg", "/etc/passwd", "symlink-etc-passwd", "failed",
         error="outside")
    link("dev-zero.jpg", "/dev/zero", "symlink-dev-zero", "failed")
    link("proc-mem.jpg", "/proc/self/mem", "symlink-proc-self-mem", "failed")
    link("root.jpg", "/", "symlink-to-root-folder", "failed")
    link("dangling.jpg", "no-such-file.jpg", "symlink-dangling", "failed")
    link("loop-a.jpg", "loop-b.jpg", "symlink-loop", "failed")
    link("loop-b.jpg", "loop-a.jpg", "symlink-loop", "failed")
    link("self.jpg", "self.jpg", "symlink-self-loop", "failed")
    link("dir-loop", ".", "symlink-dir-loop", "ignored")
    link("up-loop.jpg", "..", "symlink-to-folder-inside", "failed",
         error="symbolic link")

    # special/
    sp = o.path("special")
    os.makedirs(sp, exist_ok=True)
    os.mkfifo(os.path.join(sp, b"x.jpg"))
    o.record("special/x.jpg", "fifo", "failed", error="regular file")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(os.path.join(sp, b"sock.jpg"))
        o.record("special/sock.jpg", "socket", "failed",
                 error="regular file")
    except OSError:
        pass
    finally:
        s.close()
    if os.geteuid() == 0:
        os.makedirs(os.path.join(sp, b"dev"), exist_ok=True)
        try:
            os.mknod(os.path.join(sp, b"dev", b"x.jpg"),
                     0o666 | stat.S_IFCHR, os.makedev(1, 3))
            o.record("special/dev/x.jpg", "char-device", "failed",
                     error="regular file")
        except OSError:
            pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="folder to fill (created; must be empty)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300,
                    help="corrupted variants (default 300)")
    ap.add_argument("--outside", help="folder outside the tree that links "
                    "point at (default OUT/../outside)")
    ap.add_argument("--svg-port", type=int, default=9,
                    help="127.0.0.1 port the SVGs' http references name")
    ap.add_argument("--no-big", action="store_true",
                    help="leave out big/ (the large-dimension images)")
    ap.add_argument("--manifest", help="write the manifest here "
                    "(default: stdout)")
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out)
    if os.path.exists(out) and os.listdir(out):
        ap.error(f"{out} is not empty")
    os.makedirs(out, exist_ok=True)
    outside = os.path.abspath(a.outside or os.path.join(out, "..",
                                                        "outside"))
    t0 = time.monotonic()
    entries, heic = build(out, a.seed, a.count, outside, a.svg_port,
                          not a.no_big)
    man = {"seed": a.seed, "count": a.count, "heic": heic,
           "outside": outside, "entries": entries}
    text = json.dumps(man, indent=1)
    if a.manifest:
        with open(a.manifest, "w") as f:
            f.write(text)
    else:
        print(text)
    by = {}
    for e in entries:
        by[e["expect"]] = by.get(e["expect"], 0) + 1
    du = 0
    for d, _, files in os.walk(out):
        for f in files:
            try:
                st = os.lstat(os.path.join(d, f))
                if stat.S_ISREG(st.st_mode):
                    du += st.st_size
            except OSError:
                pass
    print(f"make-hostile: {len(entries)} fixtures in {out} ({du >> 10} KiB; "
          + ", ".join(f"{n} {k}" for k, n in sorted(by.items()))
          + f"; heic {'yes' if heic else 'no'}) in "
          f"{time.monotonic() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
