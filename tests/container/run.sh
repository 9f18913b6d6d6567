#!/bin/sh
# The container test: builds the image from ./Dockerfile with podman, runs
# it on temporary folders (input read-only), then the cluster of
# compose.cluster.yaml with podman-compose (tests/container/check.py says
# what is checked).  Prints "N passed, N failed" last; exit 0 when all pass.
#
# Root only (rootful podman).  Installs podman, podman-compose, runc,
# mmdebstrap and vips when missing.  No registry is needed: the base image
# debian:bookworm-slim is made with mmdebstrap and cached as a tarball in
# $THUMBWATCH_CI_CACHE (default /var/cache/thumbwatch-ci, kept between
# runs); the Redis image is built from Debian's redis-server.  An image
# already present locally (a real debian:bookworm-slim or redis:7-bookworm)
# is used as it is.
#
# Podman quirks of these machines, set for this test only through
# CONTAINERS_CONF: runtime runc (crun fails on cgroups hybrid mode) and
# explicit ulimits (raising them is refused).
set -eu
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/container/run.sh: needs root (rootful podman)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

need=""
for c in podman podman-compose runc mmdebstrap vips vipsheader python3; do
	command -v "$c" >/dev/null 2>&1 || need=yes
done
if [ -n "$need" ]; then
	echo "container test: installing podman podman-compose runc mmdebstrap libvips-tools" >&2
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends podman podman-compose \
	    runc mmdebstrap libvips-tools python3 uidmap slirp4netns \
	    containernetworking-plugins iptables >/dev/null
fi

cache=${THUMBWATCH_CI_CACHE:-/var/cache/thumbwatch-ci}
mkdir -p "$cache"
work=$(mktemp -d /tmp/thumbwatch-container.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$work/containers.conf"

t0=$(date +%s)
# Base image: Debian's minbase with the docs, man pages and locales left
# out the way the official -slim image does; rebuilt after 30 days.
base=docker.io/library/debian:bookworm-slim
tarball="$cache/bookworm-slim-rootfs.tar"
if ! podman image exists "$base"; then
	if [ ! -s "$tarball" ] || [ -n "$(find "$tarball" -mtime +30)" ]; then
		echo "container test: mmdebstrap bookworm -> $tarball" >&2
		nice -n 10 mmdebstrap --variant=minbase --format=tar \
		    --dpkgopt='path-exclude=/usr/share/doc/*' \
		    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		    --dpkgopt='path-exclude=/usr/share/man/*' \
		    --dpkgopt='path-exclude=/usr/share/info/*' \
		    --dpkgopt='path-exclude=/usr/share/locale/*' \
		    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
		    --dpkgopt='path-exclude=/usr/share/lintian/*' \
		    bookworm "$tarball.part" >"$work/mmdebstrap.log" 2>&1 ||
		    { tail -20 "$work/mmdebstrap.log" >&2;
		      echo "0 passed, 1 failed"; exit 1; }
		mv "$tarball.part" "$tarball"
	fi
	podman import --change 'CMD ["bash"]' "$tarball" "$base" >/dev/null
fi
redis=docker.io/library/redis:7-bookworm
if ! podman image exists "$redis"; then
	cat >"$work/Dockerfile.redis" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
EOF
	nice -n 10 podman build --network=host -q -t "$redis" \
	    -f "$work/Dockerfile.redis" "$work" >/dev/null
fi
echo "container test: base images ready in $(($(date +%s) - t0)) s" >&2

# The image under test, under the name compose.yaml gives it.  --format
# docker keeps HEALTHCHECK (the OCI format has none).
t1=$(date +%s)
if ! nice -n 10 podman build --format docker --network=host \
    -t localhost/thumbwatch:latest . >"$work/build.log" 2>&1; then
	tail -40 "$work/build.log" >&2
	echo "container test: podman build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "container test: image built in $(($(date +%s) - t1)) s" >&2

rc=0
/usr/bin/python3 tests/container/check.py --image localhost/thumbwatch:latest \
    --work "$work" || rc=$?
echo "container test: $(($(date +%s) - t0)) s in all" >&2
exit $rc
