#!/bin/sh
# Builds every tests/fuzz/fuzz_*.c with libFuzzer, ASan and UBSan into
# build-fuzz/, runs each for ${1:-60} seconds on a scratch copy of its seed
# corpus (the committed seeds never grow), keeps crashing inputs in
# tests/fuzz/findings/ (git-ignored), prints the executions per harness,
# and exits non-zero when a harness crashed or did not build.
set -u
cd "$(dirname "$0")/../.." || exit 2

secs=${1:-60}
out=build-fuzz
findings=tests/fuzz/findings
cc=${FUZZ_CC:-clang}
# no-recover: an undefined-behaviour report must stop the run like a crash.
cflags="-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude -D_GNU_SOURCE"
# A harness may reach a folder's private header, as the unit tests do.
for d in src/*/; do
	cflags="$cflags -I${d%/}"
done

# What each harness links besides itself; by default src/common/NAME.c.
deps() {
	case "$1" in
	ipc) echo "src/common/ipc.c" ;;
	pathmap) echo "src/common/pathmap.c" ;;
	sniff) echo "src/common/sniff.c -lz" ;;
	config) echo "src/common/config.c src/common/config_parse.c src/common/config_load.c src/common/cluster.c src/common/pathmap.c src/common/httputil.c src/common/sniff.c src/common/errfmt.c -linih -lz" ;;
	cluster) echo "src/common/cluster.c src/queue/cluster_reply.c src/common/config.c src/common/config_parse.c src/common/config_load.c src/common/pathmap.c src/common/httputil.c src/common/sniff.c src/common/errfmt.c -linih -lhiredis -lz" ;;
	multipart) echo "src/common/httputil.c src/common/json.c src/common/sniff.c -lz" ;;
	nclx) echo "src/worker/nclx.c $(pkg-config --cflags --libs libheif lcms2 glib-2.0)" ;;
	*) echo "src/common/$1.c" ;;
	esac
}

mkdir -p "$out" "$findings"
status=0
summary=""

# Known harnesses first (reported as skipped when absent), then any other.
names="ipc pathmap config cluster multipart sniff nclx"
for f in tests/fuzz/fuzz_*.c; do
	[ -e "$f" ] || continue
	n=${f#tests/fuzz/fuzz_}
	n=${n%.c}
	case " $names " in *" $n "*) ;; *) names="$names $n" ;; esac
done

for name in $names; do
	src=tests/fuzz/fuzz_$name.c
	bin=$out/fuzz_$name
	log=$out/fuzz_$name.log
	if [ ! -e "$src" ]; then
		summary="$summary
fuzz_$name: skipped ($src missing)"
		continue
	fi
	missing=""
	for d in $(deps "$name"); do
		case "$d" in -*) continue ;; esac
		[ -e "$d" ] || missing="$missing $d"
	done
	if [ -n "$missing" ]; then
		summary="$summary
fuzz_$name: skipped (missing:$missing)"
		continue
	fi

	echo "== building fuzz_$name" >&2
	# shellcheck disable=SC2086,SC2046 # word lists on purpose
	if ! $cc $cflags -o "$bin" "$src" $(deps "$name"); then
		summary="$summary
fuzz_$name: BUILD FAILED"
		status=1
		continue
	fi

	work=$out/corpus-$name
	rm -rf "$work"
	mkdir -p "$work"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$work/"
	fi

	echo "== running fuzz_$name for ${secs}s" >&2
	"$bin" -max_total_time="$secs" -timeout=30 \
	    -artifact_prefix="$findings/$name-" "$work" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^Done \([0-9][0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$log" >&2
		summary="$summary
fuzz_$name: CRASHED (exit $rc) after ${runs:-?} runs; input in $findings/, log in $log"
		status=1
	else
		summary="$summary
fuzz_$name: ${runs:-?} executions in ${secs}s"
	fi
done

echo "$summary" | sed '/^$/d'
exit "$status"
