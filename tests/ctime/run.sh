#!/bin/sh
# Runs tests/ctime/ctime_eth under valgrind's memcheck with the private key
# marked undefined: any conditional jump or memory index that depends on the
# key fails the test (see ctime_eth.c).  Exit 77 (skipped) when valgrind is
# not installed or the build is sanitized (SIGNER_SANITIZED set: an ASan
# binary cannot run under valgrind).
set -u

if ! command -v valgrind >/dev/null 2>&1; then
    echo "ctime: valgrind not found: skipped (apt-get install -y valgrind)"
    exit 77
fi
case ${SIGNER_SANITIZED:-} in
    "" | 0) ;;
    *) echo "ctime: sanitized build: skipped"; exit 77 ;;
esac

builddir=${top_builddir:-${SIGNER_BUILDDIR:-.}}
srcdir=${top_srcdir:-${SIGNER_SRCDIR:-$(dirname "$0")/../..}}
bin=$builddir/tests/ctime/ctime_eth
supp=$srcdir/tests/ctime/valgrind.supp
if [ ! -x "$bin" ]; then
    echo "ctime: $bin is not built" >&2
    exit 99
fi

log=$(mktemp "${TMPDIR:-/tmp}/ctime-vg.XXXXXX")
out=$(mktemp "${TMPDIR:-/tmp}/ctime-out.XXXXXX")
trap 'rm -f "$log" "$out"' EXIT INT TERM

valgrind -v --error-exitcode=1 --track-origins=yes --num-callers=30 \
    --suppressions="$supp" --log-file="$log" "$bin" >"$out" 2>&1
rc=$?
cat "$out"
if [ "$rc" -eq 77 ]; then
    exit 77
fi
# the memcheck report, without valgrind's -v chatter
grep -v -E '^--[0-9]+-- ' "$log" | grep -v -E '^==[0-9]+== *$' |
    grep -E -A40 'uninitialised|Uninitialised|Invalid|ERROR SUMMARY' || true
if [ "$rc" -ne 0 ]; then
    echo "ctime: FAILED (exit $rc): a branch or memory index depends on the key, or an answer is wrong" >&2
    exit 1
fi

# the one suppression must account for the two declassify points of each
# signature in libsecp256k1, no more (or none, if the library did it)
sigs=$(sed -n 's/^ctime_eth: \([0-9]*\) signatures$/\1/p' "$out")
used=$(sed -n 's/.*used_suppression: *\([0-9]*\) libsecp256k1-sign-declassify.*/\1/p' "$log")
used=${used:-0}
if [ -z "$sigs" ] || [ "$sigs" -eq 0 ]; then
    echo "ctime: FAILED: no signatures made" >&2
    exit 1
fi
if [ "$used" -ne 0 ] && [ "$used" -ne $((2 * sigs)) ]; then
    echo "ctime: FAILED: the libsecp256k1 suppression matched $used times for $sigs signatures (expected $((2 * sigs)))" >&2
    exit 1
fi
echo "ctime: passed ($sigs signatures; libsecp256k1 declassify suppression used $used times)"
exit 0
