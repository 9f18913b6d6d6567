# thumbwatch — see README.md.  `make` builds build/thumbwatch;
# `make run` and `make test` first install what is missing (Debian).

PKGS     := vips lcms2 libheif libuv inih libmicrohttpd hiredis zlib
CC       ?= cc
BUILD    ?= build
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -Iinclude -I$(BUILD)/gen -D_GNU_SOURCE -DTHUMBWATCH_VERSION='"$(VERSION)"'
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) $(SANITIZE)
LDLIBS   = $(PKG_LIBS) -lm $(SANITIZE)

# One folder per process or layer (docs/ARCHITECTURE.md); include/ holds
# only the headers that cross folders.
SRC      := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
HDRS     := $(wildcard include/*.h src/*/*.h)
OBJ      := $(SRC:src/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libthumbwatch.a
BIN      := $(BUILD)/thumbwatch
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps deps-run run test unit e2e asan fuzz bench bench-cluster clean \
    check-config check-headers

all: $(BIN)

$(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -c -o $@ $<

# The web page (GET /) is compiled in: no file to install, no CDN.
$(BUILD)/gen/http_index.h: src/front/http_index.html | $(BUILD)/gen
	{ echo 'static const unsigned char http_index_html[] = {'; \
	    xxd -i < src/front/http_index.html; echo '};'; \
	    echo 'static const size_t http_index_html_len ='; \
	    echo '    sizeof(http_index_html);'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/front/http_page.o: $(BUILD)/gen/http_index.h

$(LIB): $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/cli/main.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# A unit test may reach a folder's private header, as libuv's tests do.
# test_pool spawns the real binary as its workers: THUMBWATCH_TEST_BIN
# names the one built beside it (THUMBWATCH_BIN overrides it at run time).
$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h tests/unit/loop.h $(LIB) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Itests/unit $(patsubst %,-I%,$(wildcard src/*)) \
	    -DTHUMBWATCH_TEST_BIN='"$(abspath $(BIN))"' -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/obj $(BUILD)/tests $(BUILD)/gen:
	mkdir -p $@

# Install the Debian packages that are missing: deps-run what building
# and running the daemon needs, deps that plus what the tests need.
deps-run:
	@sh tests/install-deps.sh run

deps:
	@sh tests/install-deps.sh test

run: deps-run
	$(MAKE) all
	./$(BIN) run

check-config: deps-run all
	./$(BIN) check-config

unit: $(BIN) $(UNIT_BIN)

# The pure headers and src/common compile without libuv, libvips, glib,
# hiredis or libmicrohttpd (part of `make test`).
check-headers:
	sh tests/check-headers.sh

# The whole suite: header purity and unit tests (cmocka), then end-to-end
# tests (pytest) on the real binary.  Prints one "N passed, N failed" line
# at the end.
test: deps
	$(MAKE) all unit
	BUILD=$(BUILD) sh tests/run.sh

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	$(MAKE) BUILD=build-asan CC=clang CFLAGS='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=undefined' all unit
	BUILD=build-asan ASAN=1 sh tests/run.sh

fuzz: deps
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: deps all
	sh tests/bench/run.sh

# The Redis Streams queue against the local one, 1 to 3 worker processes.
bench-cluster: deps all
	/usr/bin/python3 tests/bench/cluster.py

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJ:.o=.d) $(BUILD)/obj/cli/main.d

# ---- install / uninstall ------------------------------------------------
# `make install` (as root), or `make install DESTDIR=/tmp/pkg PREFIX=/usr`
# for a package.  Files outside PREFIX (/etc) follow DESTDIR only.  After a
# real install: `systemctl daemon-reload`, then see thumbwatch(8).
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/thumbwatch
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install
# The folders the unit may write (ReadWritePaths=, LogsDirectory=,
# RuntimeDirectory=), set in the live INI file rather than by Environment=
# in the unit, so an edit of that file wins.
SERVICE_FOLDERS := \
    -e 's|^; input_dir = .*|input_dir = /var/lib/thumbwatch/input|' \
    -e 's|^; output_dir = .*|output_dir = /var/lib/thumbwatch/output|' \
    -e 's|^; done_dir = .*|done_dir = /var/lib/thumbwatch/done|' \
    -e 's|^; log_file = .*|log_file = /var/log/thumbwatch/thumbwatch.log|' \
    -e 's|^; runtime_dir = .*|runtime_dir = /run/thumbwatch|'
MANPAGES   := config/man/thumbwatch.8 config/man/thumbwatch.ini.5

.PHONY: install uninstall lint-man

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/thumbwatch $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/thumbwatch
	$(INSTALL) -m 0644 config/man/thumbwatch.8 $(DESTDIR)$(MANDIR)/man8/thumbwatch.8
	$(INSTALL) -m 0644 config/man/thumbwatch.ini.5 \
	    $(DESTDIR)$(MANDIR)/man5/thumbwatch.ini.5
	$(INSTALL) -m 0644 config/thumbwatch.ini $(DESTDIR)$(DATADIR)/thumbwatch.ini
	$(INSTALL) -m 0644 sample.env $(DESTDIR)$(DATADIR)/sample.env
# The live configuration is the administrator's: never overwritten.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini ]; then \
	    echo "keeping $(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini" \
	        "(the shipped one is $(DATADIR)/thumbwatch.ini)"; \
	    grep -q '^input_dir' $(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini || \
	        echo "warning: it sets no input_dir: the unit no longer sets" \
	            "the folders; add input_dir, output_dir, done_dir," \
	            "log_file and runtime_dir (see thumbwatch(8))"; \
	else \
	    echo "$(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini:" \
	        "config/thumbwatch.ini with the service's folders"; \
	    sed $(SERVICE_FOLDERS) config/thumbwatch.ini \
	        > $(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini && \
	    chmod 0644 $(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini; \
	fi
# The unit names the binary where it was installed.
	sed 's|/usr/local/bin/thumbwatch|$(BINDIR)/thumbwatch|g' \
	    config/thumbwatch.service > $(DESTDIR)$(UNITDIR)/thumbwatch.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/thumbwatch.service
	$(INSTALL) -m 0644 config/logrotate.conf \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d/thumbwatch
	@if [ -z "$(DESTDIR)" ]; then \
	    echo "installed; next: useradd --system --user-group --home-dir" \
	        "/var/lib/thumbwatch --no-create-home --shell /usr/sbin/nologin" \
	        "thumbwatch; systemctl daemon-reload; systemctl enable --now" \
	        "thumbwatch (see thumbwatch(8))"; \
	fi

# Leaves $(SYSCONFDIR)/thumbwatch/thumbwatch.ini (it may hold local edits)
# and the data and log folders.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/thumbwatch \
	    $(DESTDIR)$(MANDIR)/man8/thumbwatch.8 \
	    $(DESTDIR)$(MANDIR)/man5/thumbwatch.ini.5 \
	    $(DESTDIR)$(DATADIR)/thumbwatch.ini $(DESTDIR)$(DATADIR)/sample.env \
	    $(DESTDIR)$(UNITDIR)/thumbwatch.service \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d/thumbwatch
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/thumbwatch/thumbwatch.ini;" \
	    "run systemctl daemon-reload if the unit was enabled"

# mandoc's own checks (warnings and errors; "referenced manual not found"
# style notes depend on the machine), then a groff render through man.
lint-man:
	mandoc -T lint -W warning $(MANPAGES)
	@command -v man >/dev/null || { echo "lint-man: no man (man-db)"; exit 0; }; \
	for m in $(MANPAGES); do \
	    out=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $$m 2>&1 >/dev/null); \
	    if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done

# ---- container -----------------------------------------------------------
# The Dockerfile and compose files for real, with podman and podman-compose
# (as root; installs them when missing): build, run on temporary folders,
# then the Redis cluster with 3 workers.  Prints "N passed, N failed".
.PHONY: container-test
container-test:
	sh tests/container/run.sh

# ---- torture -------------------------------------------------------------
# Fault injection at scale (tests/e2e/test_torture.py): a burst of 2000
# files while random workers, then the supervisor, are killed with -9;
# every input counted, every output checked.  Prints the counts, which the
# tests also leave in build/torture-summary.json.
.PHONY: torture
torture: all
	@rm -f build/torture-summary.json
	THUMBWATCH_BIN=$(PWD)/build/thumbwatch TORTURE_FILES=2000 /usr/bin/python3 -m pytest -q tests/e2e/test_torture.py; \
	    rc=$$?; cat build/torture-summary.json 2>/dev/null; exit $$rc
