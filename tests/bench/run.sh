#!/bin/sh
# thumbwatch benchmark (`make bench`): thumbwatch against vipsthumbnail,
# ImageMagick and Pillow on the same corpus, cores and output settings.
# Never part of `make test`.  See tests/bench/README.md.
#
# Environment:
#   BENCH_CORPUS=/dir   your own photos instead of plasma-workspace-wallpapers
#   BENCH_CACHE=/dir    where the corpus is fetched and unpacked
#                       (default ~/.cache/thumbwatch-bench; never the repo)
#   BENCH_QUICK=1       small counts, one run each (about 5 minutes)
#   BENCH_RUNS=3        runs per figure (median)
#   BENCH_N=<nproc>     processes for every peer and thumbwatch workers
#   BENCH_WORKLOADS=A,B,C,F,P,D,E which parts run (F = A per format,
#                       P = embedded colour profiles)
#   BENCH_E_BURST, BENCH_E_RESTART, BENCH_D_DROPS, BENCH_E_SIZE   scale knobs
#   BENCH_KEEP=1        keep build/bench/work (inputs, outputs, logs)
set -eu

cd "$(dirname "$0")/../.."
REPO=$(pwd)
BUILD=${BUILD:-build}
OUT=$BUILD/bench
mkdir -p "$OUT"

say() { printf 'bench: %s\n' "$*"; }

# ---- peers and tools (Debian packages; only what is missing, only as root)
have_pkg() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
missing=""
for p in libvips-tools python3-pil imagemagick gnuplot-nox; do
	have_pkg "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq $missing >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 &&
		  apt-get install -y -qq $missing >/dev/null 2>&1; } ||
		say "could not install$missing: those peers are skipped"
	else
		say "not root: not installing$missing; peers that need them are skipped"
	fi
fi
command -v vips >/dev/null 2>&1 || { say "the vips tool (libvips-tools) is required"; exit 1; }
[ -x /usr/bin/python3 ] || { say "/usr/bin/python3 is required"; exit 1; }

# ---- cache folder (corpus, binaries, scratch)
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thumbwatch-bench}
case "$(cd "$(dirname "$CACHE")" 2>/dev/null && pwd)/$(basename "$CACHE")/" in
"$REPO"/*) say "BENCH_CACHE must be outside the repository"; exit 1 ;;
esac
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

# ---- the thumbwatch under test (a snapshot: a rebuild or `make clean`
# mid-run changes nothing) and the C helpers, outside the repository
[ -x "$BUILD/thumbwatch" ] && [ -f "$BUILD/libthumbwatch.a" ] ||
	{ say "build first: make all"; exit 1; }
BIN=$CACHE/bin
mkdir -p "$BIN"
cp "$BUILD/thumbwatch" "$BIN/thumbwatch.new" && mv "$BIN/thumbwatch.new" "$BIN/thumbwatch"
cc -O2 -g -Wall -Wextra -o "$BIN/vloop" tests/bench/vloop.c $(pkg-config --cflags --libs vips)
rm -f "$BIN/twloop"
# the project's own pkg-config list (the Makefile's PKGS), so a new library
# the daemon links does not break this helper
PKGS=$(sed -n 's/^PKGS[[:space:]]*:=[[:space:]]*//p' Makefile)
cc -O2 -g -Wall -Wextra -Iinclude -Isrc/worker -D_GNU_SOURCE -o "$BIN/twloop" tests/bench/twloop.c \
	"$BUILD/libthumbwatch.a" $(pkg-config --cflags --libs ${PKGS:-vips libuv inih}) -lm ||
	say "twloop (thumb.c without the daemon) did not build: its rows are skipped"

# ---- corpus
if [ -n "${BENCH_CORPUS:-}" ]; then
	[ -d "$BENCH_CORPUS" ] || { say "BENCH_CORPUS=$BENCH_CORPUS is not a folder"; exit 1; }
	# flat, unique names (peers write <stem>_<preset>.jpg into one folder)
	FLAT=$CACHE/user-corpus
	rm -rf "$FLAT" && mkdir -p "$FLAT"
	BENCH_CORPUS_SRC=$BENCH_CORPUS FLAT=$FLAT /usr/bin/python3 - <<'EOF'
import os, re, shutil
src, flat, i = os.environ["BENCH_CORPUS_SRC"], os.environ["FLAT"], 0
for root, dirs, files in os.walk(src):
    dirs.sort()
    for f in sorted(files):
        if not f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) or f.startswith("."):
            continue
        rel = os.path.relpath(os.path.join(root, f), src)
        dst = os.path.join(flat, "%04d_%s" % (i, re.sub(r"[^A-Za-z0-9._-]", "_", rel.replace("/", "_"))))
        try:
            os.link(os.path.join(root, f), dst)
        except OSError:
            shutil.copyfile(os.path.join(root, f), dst)
        i += 1
EOF
	CORPUS_DIR=$FLAT
	DESC="BENCH_CORPUS=$BENCH_CORPUS"
else
	CORPUS_DIR=$CACHE/wallpapers
	if [ ! -f "$CACHE/wallpapers.ok" ]; then
		deb=$(ls "$CACHE"/plasma-workspace-wallpapers_*.deb 2>/dev/null | head -n 1 || true)
		if [ -z "$deb" ]; then
			say "fetching plasma-workspace-wallpapers into $CACHE"
			( cd "$CACHE" && apt-get download plasma-workspace-wallpapers >/dev/null 2>&1 ) ||
			{ [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 &&
			  ( cd "$CACHE" && apt-get download plasma-workspace-wallpapers >/dev/null 2>&1 ); } ||
			{ say "cannot apt-get download plasma-workspace-wallpapers; set BENCH_CORPUS"; exit 1; }
			deb=$(ls "$CACHE"/plasma-workspace-wallpapers_*.deb | head -n 1)
		fi
		rm -rf "$CACHE/pkg" "$CORPUS_DIR"
		dpkg-deb -x "$deb" "$CACHE/pkg"
		mkdir -p "$CORPUS_DIR"
		# Flow/contents/images_dark/5120x2880.jpg -> Flow_images_dark_5120x2880.jpg
		find "$CACHE/pkg/usr/share/wallpapers" -type f \
		    \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) |
		while IFS= read -r f; do
			rel=${f#"$CACHE"/pkg/usr/share/wallpapers/}
			name=$(printf '%s' "$rel" | sed 's#/contents/#_#; s#/#_#g')
			ln "$f" "$CORPUS_DIR/$name" 2>/dev/null || cp -p "$f" "$CORPUS_DIR/$name"
		done
		touch "$CACHE/wallpapers.ok"
	fi
	DESC="Debian $(basename "$(ls "$CACHE"/plasma-workspace-wallpapers_*.deb | head -n 1)" .deb | sed 's/%3a/:/')"
fi

export BUILD BENCH_CORPUS_DIR="$CORPUS_DIR" BENCH_CACHE_DIR="$CACHE" BENCH_CORPUS_DESC="$DESC" \
	BENCH_BIN_DIR="$BIN" BENCH_WORK_DIR="${BENCH_WORK:-$CACHE/work}"
exec /usr/bin/python3 tests/bench/bench.py
