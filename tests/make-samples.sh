#!/bin/sh
# Regenerates samples/: small synthetic images for the thumb unit tests and
# manual runs, made with the vips CLI only (plus a few lines of python3 to
# set the EXIF orientation, which the CLI cannot).  Everything is derived
# from coordinates, text and seeded noise, so a rerun on the same libvips
# gives the same pictures.
#
#   sh tests/make-samples.sh [OUTDIR]      (default: samples)
set -eu

out=${1:-samples}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t=$tmp

# circle MASK W H CX CY R: uchar mask, 255 inside the circle.
circle() {
	vips xyz "$t/cxy.v" "$2" "$3"
	vips linear "$t/cxy.v" "$t/cd.v" "1 1" " -$4 -$5"
	vips multiply "$t/cd.v" "$t/cd.v" "$t/cd2.v"
	vips bandmean "$t/cd2.v" "$t/cm.v"
	vips relational_const "$t/cm.v" "$1" less "$(($6 * $6 / 2))"
}

# paint MASK COLOUR IN OUT: IN with COLOUR ("r g b") where MASK is set.
# ifthenelse takes no constants on the command line, so build a plane.
paint() {
	w=$(vipsheader -f width "$3")
	h=$(vipsheader -f height "$3")
	vips black "$t/pb.v" "$w" "$h" --bands 3
	vips linear "$t/pb.v" "$t/pl.v" "0 0 0" "$2"
	vips cast "$t/pl.v" "$t/pc.v" uchar
	vips ifthenelse "$1" "$t/pc.v" "$3" "$4" --blend
}

# sky OUT W H [SIGMA]: a vertical blue-to-orange gradient with a faint
# seeded grain (none by default: PNG does not compress noise).
sky() {
	vips xyz "$t/xy.v" "$2" "$3"
	vips extract_band "$t/xy.v" "$t/y.v" 1
	vips linear "$t/y.v" "$t/r.v" "$(awk "BEGIN { print 200 / $3 }")" 40
	vips linear "$t/y.v" "$t/g.v" "$(awk "BEGIN { print 120 / $3 }")" 90
	vips linear "$t/y.v" "$t/b.v" " $(awk "BEGIN { print -150 / $3 }")" 230
	vips bandjoin "$t/r.v $t/g.v $t/b.v" "$t/rgb.v"
	vips gaussnoise "$t/n.v" "$2" "$3" --sigma "${4:-0}" --mean 0 --seed 42
	vips add "$t/rgb.v" "$t/n.v" "$t/rgbn.v"
	vips cast "$t/rgbn.v" "$t/sky.v" uchar
	vips copy "$t/sky.v" "$1" --interpretation srgb
}

# label IN OUT X Y TEXT: paints white text onto IN.
label() {
	w=$(vipsheader -f width "$1")
	h=$(vipsheader -f height "$1")
	vips text "$t/txt.v" "$5" --dpi 200
	vips embed "$t/txt.v" "$t/txte.v" "$3" "$4" "$w" "$h"
	paint "$t/txte.v" "255 255 255" "$1" "$2"
}

# stack OUT IN...: IN images one above the other (a multi-page strip).
# vips join pairwise: the arrayjoin CLI of 8.14.1 crashes on its image list.
stack() {
	o=$1
	shift
	cp "$1" "$t/stack0.v"
	shift
	n=0
	for f in "$@"; do
		vips join "$t/stack$n.v" "$f" "$t/stack$((n + 1)).v" vertical
		n=$((n + 1))
	done
	cp "$t/stack$n.v" "$o"
}

# landscape.jpg: stored 800x533 with EXIF Orientation 6 (rotate 90 CW to
# view), so a correct thumbnail is portrait.  "TOP" marks the stored top.
sky "$t/l0.v" 800 533 4
circle "$t/sun.v" 800 533 620 140 70
paint "$t/sun.v" "255 230 120" "$t/l0.v" "$t/l1.v"
vips xyz "$t/lxy.v" 800 533
vips extract_band "$t/lxy.v" "$t/ly.v" 1
vips relational_const "$t/ly.v" "$t/ground.v" more 400
paint "$t/ground.v" "40 110 50" "$t/l1.v" "$t/l2.v"
label "$t/l2.v" "$t/l3.v" 30 30 "TOP  landscape 800x533"
vips jpegsave "$t/l3.v" "$t/landscape.jpg" --Q 80
python3 - "$t/landscape.jpg" "$out/landscape.jpg" <<'EOF'
# Sets EXIF IFD0 Orientation (tag 0x0112) to 6 in the APP1 vips wrote.
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
app1 = data.find(b"Exif\0\0")
assert app1 > 0, "no EXIF block"
tiff = app1 + 6
end = "<" if data[tiff:tiff + 2] == b"II" else ">"
ifd = tiff + struct.unpack(end + "I", data[tiff + 4:tiff + 8])[0]
n = struct.unpack(end + "H", data[ifd:ifd + 2])[0]
for i in range(n):
    e = ifd + 2 + 12 * i
    if struct.unpack(end + "H", data[e:e + 2])[0] == 0x0112:
        data[e + 8:e + 10] = struct.pack(end + "H", 6)
        break
else:
    sys.exit("no Orientation tag")
open(sys.argv[2], "wb").write(data)
EOF

# alpha.png: 400x300 RGBA, an opaque disc on a fully transparent ground.
sky "$t/a0.v" 400 300
label "$t/a0.v" "$t/a1.v" 120 140 "alpha"
circle "$t/disc.v" 400 300 200 150 130
vips bandjoin "$t/a1.v $t/disc.v" "$t/a2.v"
vips pngsave "$t/a2.v" "$out/alpha.png" --compression 9 --filter all

# cmyk.jpg: 500x350 CMYK JPEG with no embedded profile (libvips imports
# it with its fallback CMYK profile).
sky "$t/c0.v" 500 350 4
circle "$t/cmask.v" 500 350 250 175 120
paint "$t/cmask.v" "200 30 60" "$t/c0.v" "$t/c1.v"
label "$t/c1.v" "$t/c2.v" 20 20 "cmyk"
vips colourspace "$t/c2.v" "$t/c3.v" cmyk
vips jpegsave "$t/c3.v" "$out/cmyk.jpg" --Q 75 --strip

# deep16.png: 320x240 16-bit RGB (no grain: it would not compress).
vips xyz "$t/dxy.v" 320 240
vips extract_band "$t/dxy.v" "$t/dx.v" 0
vips extract_band "$t/dxy.v" "$t/dy.v" 1
vips linear "$t/dx.v" "$t/dr.v" 204 0
vips linear "$t/dy.v" "$t/dg.v" 273 0
vips linear "$t/dx.v" "$t/db.v" " -204" 65535
vips bandjoin "$t/dr.v $t/dg.v $t/db.v" "$t/d0.v"
vips cast "$t/d0.v" "$t/d1.v" ushort
vips copy "$t/d1.v" "$t/d2.v" --interpretation rgb16
vips pngsave "$t/d2.v" "$out/deep16.png" --bitdepth 16 --compression 9 --filter all

# anim.gif: 4 frames of 200x150, a disc moving left to right.
for i in 1 2 3 4; do
	sky "$t/f$i.v" 200 150
	circle "$t/fm$i.v" 200 150 $((i * 40)) 75 25
	paint "$t/fm$i.v" "255 60 60" "$t/f$i.v" "$t/fa$i.v"
	label "$t/fa$i.v" "$t/fb$i.v" 10 10 "frame $i"
done
stack "$t/strip.v" "$t/fb1.v" "$t/fb2.v" "$t/fb3.v" "$t/fb4.v"
vips gifsave "$t/strip.v" "$out/anim.gif" --page-height 150

# pages.tif: 3 pages of 300x200, JPEG-compressed to stay small.
for i in 1 2 3; do
	sky "$t/p$i.v" 300 200
	label "$t/p$i.v" "$t/pl$i.v" 40 80 "page $i of 3"
done
stack "$t/pstrip.v" "$t/pl1.v" "$t/pl2.v" "$t/pl3.v"
vips tiffsave "$t/pstrip.v" "$out/pages.tif" --page-height 200 \
    --compression jpeg --Q 75

# photo.webp: 640x427 lossy WebP.
sky "$t/w0.v" 640 427 4
circle "$t/wd.v" 640 427 200 250 90
paint "$t/wd.v" "250 200 40" "$t/w0.v" "$t/w1.v"
label "$t/w1.v" "$t/w2.v" 300 60 "photo.webp"
vips webpsave "$t/w2.v" "$out/photo.webp" --Q 70

ls -l "$out"
