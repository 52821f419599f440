#!/bin/sh
# scripts/load_test.sh against a standalone signerd started here: a short
# run (LOAD_RUNNERS x LOAD_ROUNDS, default 4 x 10) must report 80
# signatures, no errors and percentiles; against a port where nothing
# listens it must fail; bad arguments exit 2.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }
r=${LOAD_RUNNERS:-4} n=${LOAD_ROUNDS:-10}
start_signerd || { echo "load-test: 0 passed, 1 failed"; exit 1; }
if "$src/scripts/load_test.sh" "$r" "$n" "$SIGNER_URL" >"$tmp/out" 2>&1; then
    cat "$tmp/out"
    grep -q "signatures $((2 * r * n))), errors: 0" "$tmp/out" && grep -q '^all .*p99' "$tmp/out" \
        && ok "$r runners x $n rounds: $((2 * r * n)) signatures, no errors, percentiles" \
        || ko "unexpected report"
else
    cat "$tmp/out"; ko "load test against signerd failed"
fi
dead=$(free_port)
if "$src/scripts/load_test.sh" 2 2 "http://127.0.0.1:$dead" >"$tmp/dead" 2>&1; then
    ko "a load test against a closed port succeeded"
else
    grep -q 'errors: 2' "$tmp/dead" && ok "nothing listening: errors reported, non-zero exit" || { cat "$tmp/dead"; ko "wrong report for a closed port"; }
fi
"$src/scripts/load_test.sh" x 2 >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad arguments: exit 2" || ko "bad arguments not refused"
echo "load-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
