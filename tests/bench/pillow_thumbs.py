#!/usr/bin/python3
"""Peer 4: Pillow thumbnails, the method of a high-volume Python processor.

    pillow_thumbs.py --workers N --out DIR --presets SPEC (--list FILE | FILE...)

SPEC as vloop's: comma-separated WxH[:cover[:GRAVITY]].  Each preset is a
pass of its own (the file is opened and decoded again), as the peers
emulate workload B.  Per image and preset: Image.open, draft mode for JPEG
(Image.thumbnail's reducing_gap=2.0 asks the decoder for a DCT-scaled image
at least twice the box), LANCZOS resampling, EXIF orientation applied
(ImageOps.exif_transpose, done on the small image: the careful user's best
case), alpha laid over white, JPEG quality 85 with no metadata.  Pillow does
no colour management (embedded ICC profiles are dropped, not converted).

--workers 1 runs in this process (the single-process figure); N > 1 uses a
ProcessPoolExecutor(N) handing out one file at a time.  With --times FILE
(single process only) one "ms<TAB>file" line per image is written.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from PIL import Image, ImageOps

ORIENTATION = 0x0112
SWAPS = {5, 6, 7, 8}


def parse_presets(spec):
    out = []
    for tok in spec.split(","):
        parts = tok.split(":")
        w, h = (int(v) for v in parts[0].split("x"))
        cover = len(parts) > 1 and parts[1] == "cover"
        name = "%dx%d%s" % (w, h, "c" if cover else "")
        out.append((w, h, cover, name))
    return out


def flatten(im):
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.getchannel("A"))
        return bg
    if im.mode != "RGB":
        return im.convert("RGB")
    return im


def one(path, outdir, preset):
    w, h, cover, name = preset
    stem = os.path.splitext(os.path.basename(path))[0]
    with Image.open(path) as im:
        orient = im.getexif().get(ORIENTATION, 1)
        bw, bh = (h, w) if orient in SWAPS else (w, h)
        if cover:
            sw, sh = im.size
            scale = min(1.0, max(bw / sw, bh / sh))
            # draft to at least twice the covering size, as thumbnail() does
            im.draft("RGB" if im.mode != "L" else None,
                     (int(sw * scale * 2), int(sh * scale * 2)))
            sw, sh = im.size
            scale = min(1.0, max(bw / sw, bh / sh))
            cw, ch = min(sw, bw / scale), min(sh, bh / scale)
            box = ((sw - cw) / 2, (sh - ch) / 2, (sw + cw) / 2, (sh + ch) / 2)
            size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
            small = im.resize(size, Image.LANCZOS, box=box, reducing_gap=2.0)
        else:
            im.thumbnail((bw, bh), Image.LANCZOS)  # draft + reduce + LANCZOS
            small = im
        if orient != 1:
            small = ImageOps.exif_transpose(small)
        small = flatten(small)
        small.save(os.path.join(outdir, "%s_%s.jpg" % (stem, name)), "JPEG",
                   quality=85)


def job(args):
    path, outdir, presets = args
    for p in presets:
        one(path, outdir, p)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--out", required=True)
    ap.add_argument("--presets", default="300x300")
    ap.add_argument("--list")
    ap.add_argument("--times")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = list(a.files)
    if a.list:
        with open(a.list) as f:
            files += [l.rstrip("\n") for l in f if l.strip()]
    presets = parse_presets(a.presets)
    os.makedirs(a.out, exist_ok=True)
    if a.workers <= 1:
        tf = open(a.times, "w") if a.times else None
        for path in files:
            t0 = time.monotonic()
            job((path, a.out, presets))
            if tf:
                tf.write("%.3f\t%s\n" % ((time.monotonic() - t0) * 1e3, path))
        if tf:
            tf.close()
        return 0
    with ProcessPoolExecutor(a.workers) as ex:
        for _ in ex.map(job, [(p, a.out, presets) for p in files], chunksize=1):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
