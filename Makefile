# thumbwatch — see README.md.  `make` builds build/thumbwatch;
# `make run` and `make test` first install what is missing (Debian).

PKGS     := vips libuv inih
CC       ?= cc
BUILD    ?= build
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DTHUMBWATCH_VERSION='"$(VERSION)"'
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) $(SANITIZE)
LDLIBS   = $(PKG_LIBS) -lm $(SANITIZE)

SRC      := $(filter-out src/main.c,$(wildcard src/*.c))
OBJ      := $(SRC:src/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libthumbwatch.a
BIN      := $(BUILD)/thumbwatch
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test unit e2e asan fuzz bench clean check-config

all: $(BIN)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -c -o $@ $<

$(LIB): $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/main.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

# Installs the Debian packages the build, the daemon and the tests need,
# only when something is missing.
deps:
	@sh tests/install-deps.sh

run: deps
	$(MAKE) all
	./$(BIN) run

check-config: all
	./$(BIN) check-config

unit: $(UNIT_BIN)

# The whole suite: unit tests (cmocka) then end-to-end tests (pytest) on
# the real binary.  Prints one "N passed, N failed" line at the end.
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

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJ:.o=.d) $(BUILD)/obj/main.d
