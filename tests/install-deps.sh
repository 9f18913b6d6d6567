#!/bin/sh
# Installs what thumbwatch needs on Debian, only when something is missing
# (a no-op on a ready machine).
#   install-deps.sh run    what building and running the daemon needs
#                          (`make run`): a compiler and the -dev packages
#   install-deps.sh [test] that plus what the tests need (`make test`):
#                          clang, cmocka, pytest, redis-server, mandoc,
#                          systemd, and the browser test's Chromium
# --list prints the Debian packages the mode would install, and exits.
set -eu
mode=test list=""
for a in "$@"; do
	case "$a" in
	run|test) mode=$a ;;
	--list) list=yes ;;
	*) echo "usage: install-deps.sh [run|test] [--list]" >&2; exit 64 ;;
	esac
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

run_pkgs="build-essential pkg-config xxd libvips-dev libuv1-dev libinih-dev
    libmicrohttpd-dev libhiredis-dev zlib1g-dev liblcms2-dev libheif-dev"
test_pkgs="$run_pkgs clang libclang-rt-14-dev libvips-tools libcmocka-dev
    jq python3 python3-pytest redis-server redis-tools mandoc man-db systemd
    colord-data icc-profiles-free libgs-common libavif-bin"
if [ -n "$list" ]; then
	if [ "$mode" = run ]; then echo $run_pkgs; else echo $test_pkgs chromium nodejs npm; fi
	exit 0
fi

# The browser test (tests/e2e/test_http_browser.py): Debian's chromium and
# playwright-core from npm.  Optional: the test skips without them, so a
# failure here is a warning.
browser_deps() {
	bp=""
	[ -x /usr/bin/chromium ] || bp="chromium"
	command -v node >/dev/null 2>&1 || bp="$bp nodejs"
	command -v npm >/dev/null 2>&1 || bp="$bp npm"
	if [ -n "$bp" ]; then
		echo "thumbwatch: installing browser test dependencies: $bp" >&2
		{ $sudo apt-get update -qq &&
		    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		    --no-install-recommends $bp >/dev/null; } ||
		    echo "thumbwatch: could not install $bp (browser test skipped)" >&2
	fi
	bdir="$(dirname "$0")/browser"
	if [ ! -d "$bdir/node_modules/playwright-core" ] &&
	    command -v npm >/dev/null 2>&1; then
		(cd "$bdir" && npm ci --no-audit --no-fund >/dev/null 2>&1) ||
		    echo "thumbwatch: npm ci in tests/browser failed (browser test skipped)" >&2
	fi
	return 0
}

need=""
for pc in vips lcms2 libheif libuv inih libmicrohttpd hiredis zlib; do
	pkg-config --exists "$pc" 2>/dev/null || need=yes
done
for cmd in cc pkg-config xxd; do
	command -v "$cmd" >/dev/null 2>&1 || need=yes
done
if [ "$mode" = run ]; then
	[ -z "$need" ] && exit 0
	echo "thumbwatch: installing build dependencies: $run_pkgs" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
	    --no-install-recommends $run_pkgs >/dev/null
	exit 0
fi
pkg-config --exists cmocka 2>/dev/null || need=yes
# mandoc, man (man-db) and systemd-analyze (systemd): the service tests
# lint the man pages and verify the systemd unit.  xxd embeds the HTTP
# page in the binary.  redis-server: the scaling-out tests start their own.
# avifenc (libavif-bin): test_colour.py's AVIFs told by an nclx box alone.
for cmd in cc clang vips vipsheader jq python3 pkg-config mandoc man \
    systemd-analyze xxd redis-server redis-cli avifenc; do
	command -v "$cmd" >/dev/null 2>&1 || need=yes
done
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need=yes
# ICC profiles for tests/e2e/test_colour.py: colord-data's Adobe RGB,
# icc-profiles-free's grey, libgs-common's CMYK.
for f in colord/AdobeRGB1998.icc Gray.icc ghostscript/default_cmyk.icc; do
	[ -f "/usr/share/color/icc/$f" ] || need=yes
done
if [ -z "$need" ]; then
	browser_deps
	exit 0
fi

echo "thumbwatch: installing build and test dependencies: $test_pkgs" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $test_pkgs >/dev/null
browser_deps
