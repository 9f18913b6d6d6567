#!/bin/sh
# Installs what building, running and testing thumbwatch needs on Debian,
# only when something is missing (a no-op on a ready machine).
set -eu
need=""
for pc in vips libuv inih cmocka; do
	pkg-config --exists "$pc" 2>/dev/null || need=yes
done
# mandoc, man (man-db) and systemd-analyze (systemd): the service tests
# lint the man pages and verify the systemd unit.
for cmd in cc clang vips vipsheader jq python3 pkg-config mandoc man \
    systemd-analyze; do
	command -v "$cmd" >/dev/null 2>&1 || need=yes
done
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need=yes
[ -z "$need" ] && exit 0

pkgs="build-essential pkg-config clang libclang-rt-14-dev libvips-dev libvips-tools
    libuv1-dev libinih-dev libcmocka-dev jq python3 python3-pytest
    mandoc man-db systemd"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "thumbwatch: installing build and test dependencies: $pkgs" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
