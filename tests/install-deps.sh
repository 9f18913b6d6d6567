#!/bin/sh
# Installs what building, running and testing thumbwatch needs on Debian,
# only when something is missing (a no-op on a ready machine).
set -eu
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

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
for pc in vips libuv inih libmicrohttpd hiredis cmocka zlib; do
	pkg-config --exists "$pc" 2>/dev/null || need=yes
done
# mandoc, man (man-db) and systemd-analyze (systemd): the service tests
# lint the man pages and verify the systemd unit.  xxd embeds the HTTP
# page in the binary.  redis-server: the scaling-out tests start their own.
for cmd in cc clang vips vipsheader jq python3 pkg-config mandoc man \
    systemd-analyze xxd redis-server redis-cli; do
	command -v "$cmd" >/dev/null 2>&1 || need=yes
done
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need=yes
if [ -z "$need" ]; then
	browser_deps
	exit 0
fi

pkgs="build-essential pkg-config clang libclang-rt-14-dev libvips-dev libvips-tools
    libuv1-dev libinih-dev libmicrohttpd-dev libhiredis-dev libcmocka-dev zlib1g-dev
    xxd jq python3 redis-server redis-tools
    python3-pytest
    mandoc man-db systemd"
echo "thumbwatch: installing build and test dependencies: $pkgs" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
browser_deps
