#!/bin/sh
# Runs the header purity check (tests/check-headers.sh) and every unit test
# binary (cmocka), both TAP, and the end-to-end suite (pytest on the real
# binary), then prints one "N passed, N failed" line.
set -u
BUILD=${BUILD:-build}
passed=0 failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Counts the TAP lines in $out; exit status $1 without a "not ok" line
# counts as one failure of $2.
count_tap() {
	cat "$out"
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if [ "$1" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "# $2 exited $1"
		f=1
	fi
	passed=$((passed + p)); failed=$((failed + f))
}

sh tests/check-headers.sh >"$out" 2>&1
count_tap $? tests/check-headers.sh

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$out" 2>&1
	count_tap $? "$t"
done

THUMBWATCH_BIN="$PWD/$BUILD/thumbwatch" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    ${PYTEST_ARGS:-} tests/e2e 2>&1 | tee "$out"
line=$(grep -E '[0-9]+ (passed|failed)' "$out" | tail -n 1)
p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
e=$(echo "$line" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+' || echo 0)
if [ -z "$line" ]; then
	echo "# the end-to-end suite printed no summary"
	f=1
fi
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
