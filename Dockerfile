# thumbwatch in a container: see "Run in a container" in README.md.
#
#   docker build -t thumbwatch .          # podman: add --format docker
#   docker run -d --name tw -v "$PWD/data/input:/data/input:ro" \
#       -v "$PWD/data/output:/data/output" thumbwatch
#   docker logs -f tw                     # one JSON line per file
#
# Configuration: THUMBWATCH_* environment variables (see sample.env); the
# presets are in /etc/thumbwatch/thumbwatch.ini (mount your own there).
# (podman build drops HEALTHCHECK unless given --format docker.)

# ---- build ---------------------------------------------------------------
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config xxd libvips-dev libuv1-dev libinih-dev \
        libmicrohttpd-dev libhiredis-dev zlib1g-dev liblcms2-dev libheif-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile VERSION ./
COPY include include
COPY src src
RUN make -j"$(nproc)" CFLAGS='-O2' \
 && install -D -s -m 0755 build/thumbwatch /out/usr/local/bin/thumbwatch

# ---- run -----------------------------------------------------------------
FROM debian:bookworm-slim
# Only what `ldd thumbwatch` names (libvips brings its format libraries,
# libheif1 among them: thumbwatch reads HEIF nclx boxes with it too).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libvips42 liblcms2-2 libuv1 libinih1 libmicrohttpd12 libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# uid/gid 1000: the owner of ./data on most single-user machines.  Another
# id works as well (docker run --user, compose's TW_UID/TW_GID): nothing
# below needs this user's name or home.
RUN groupadd --gid 1000 thumbwatch \
 && useradd --uid 1000 --gid 1000 --home-dir /var/lib/thumbwatch \
        --no-create-home --shell /usr/sbin/nologin thumbwatch \
 && install -d -o 1000 -g 1000 -m 0755 /data/input /data/output \
        /var/lib/thumbwatch /var/log/thumbwatch

COPY --from=build /out/ /
COPY config/thumbwatch.ini /etc/thumbwatch/thumbwatch.ini

# The log goes to standard output (`docker logs`); the control socket to
# /tmp, writable whatever the uid.  The drain stays inside docker's and
# podman's default 10 s stop timeout (raise both together).
ENV THUMBWATCH_INPUT_DIR=/data/input \
    THUMBWATCH_OUTPUT_DIR=/data/output \
    THUMBWATCH_DONE_DIR=/data/done \
    THUMBWATCH_LOG_FILE=- \
    THUMBWATCH_RUNTIME_DIR=/tmp/thumbwatch \
    THUMBWATCH_DRAIN_TIMEOUT_MS=8000

# A log file instead: mount a volume on /var/log/thumbwatch (owned by uid
# 1000 here) and set THUMBWATCH_LOG_FILE=/var/log/thumbwatch/thumbwatch.log.
# Not a VOLUME: on stdout it would stay empty, one volume per container.
VOLUME ["/data/input", "/data/output"]
WORKDIR /var/lib/thumbwatch
USER 1000:1000
# HTTP upload API and page, when THUMBWATCH_HTTP_LISTEN=0.0.0.0:8080.
EXPOSE 8080

# SIGTERM: the supervisor stops taking files, lets the workers finish what
# they hold (DRAIN_TIMEOUT_MS), logs `shutdown` and exits 0.
STOPSIGNAL SIGTERM
# `thumbwatch status` asks the daemon over RUNTIME_DIR/thumbwatch.sock:
# it answers once its loop runs, whatever the role.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["thumbwatch", "status", "--config", "/etc/thumbwatch/thumbwatch.ini"]

ENTRYPOINT ["thumbwatch"]
CMD ["run", "--config", "/etc/thumbwatch/thumbwatch.ini"]
