#!/bin/sh
# Header purity: every header in include/ compiles alone (a one-line file
# that includes it and nothing else) with no pkg-config flags, and every
# source in src/common/ compiles without libuv, libvips, glib, hiredis or
# libmicrohttpd.  Leaving the flags out is not enough: uv.h and hiredis
# sit in /usr/include, so each library's headers are shadowed by ones that
# stop the compiler with an #error naming it.
#
# A short list of loop-side headers may include a library (their API takes
# its handles); they compile with that library alone, and one that no
# longer needs it is reported, so the list stays true.
#
# Prints one TAP line per file (tests/run.sh counts them); exits 1 when
# any failed.
set -u
cd "$(dirname "$0")/.." || exit 2
cc=${CC:-cc}
LC_ALL=C
export LC_ALL
warn="-Wall -Wextra -Werror -Wstrict-prototypes"

# The loop side: the libraries each such header may include.
loop_side() {
	case "$1" in
	control_server.h|http.h|redisq.h) echo libuv ;;
	esac
}

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# Shadows lib's headers (named as the sources include them) with #errors;
# lib is its pkg-config name.
libs=""
shadow() {
	lib=$1
	shift
	libs="$libs $lib"
	for h in "$@"; do
		mkdir -p "$tmp/$lib/$(dirname "$h")"
		printf '#error "<%s> (%s) reached from a pure file"\n' "$h" \
		    "$lib" >"$tmp/$lib/$h"
	done
}
shadow libuv uv.h
shadow hiredis hiredis.h async.h hiredis/hiredis.h hiredis/async.h \
    hiredis/read.h hiredis/sds.h
shadow libmicrohttpd microhttpd.h
shadow vips vips/vips.h
shadow glib-2.0 glib.h glib-object.h gio/gio.h
shadow inih ini.h
shadow zlib zlib.h

n=0
failed=0

# check LABEL FILE ALLOWED: compiles FILE with the libraries in ALLOWED
# (pkg-config names) and every other one shadowed.
check() {
	label=$1 file=$2 allowed=$3
	flags=""
	for l in $libs; do
		case " $allowed " in
		*" $l "*) flags="$flags $(pkg-config --cflags "$l" 2>/dev/null)" ;;
		*) flags="$flags -I$tmp/$l" ;;
		esac
	done
	n=$((n + 1))
	# shellcheck disable=SC2086 # word lists on purpose
	if out=$($cc -fsyntax-only -std=c11 -D_GNU_SOURCE $warn $flags \
	    -Iinclude "$file" 2>&1); then
		echo "ok $n - $label"
		return 0
	fi
	echo "not ok $n - $label"
	echo "$out" | sed 's/^/# /'
	failed=$((failed + 1))
	return 1
}

mkdir -p "$tmp/tu"
for h in include/*.h; do
	name=${h#include/}
	tu=$tmp/tu/${name%.h}.c
	printf '#include "%s"\n' "$name" >"$tu"
	allowed=$(loop_side "$name")
	if [ -z "$allowed" ]; then
		check "$name is pure" "$tu" ""
		continue
	fi
	# A loop-side header must need its library, or leave the list.
	if $cc -fsyntax-only -std=c11 -D_GNU_SOURCE -Iinclude \
	    $(for l in $libs; do printf ' -I%s/%s' "$tmp" "$l"; done) \
	    "$tu" >/dev/null 2>&1; then
		n=$((n + 1))
		echo "not ok $n - $name is listed as loop side but is pure:" \
		    "take it off loop_side in $0"
		failed=$((failed + 1))
		continue
	fi
	check "$name is self-contained with only $allowed (loop side)" \
	    "$tu" "$allowed"
done

# The common layer's sources: libc, inih and zlib only.
for c in src/common/*.c; do
	check "$c uses no libuv, libvips, glib, hiredis or libmicrohttpd" \
	    "$c" "inih zlib"
done

echo "1..$n"
[ "$failed" -eq 0 ]
