#!/bin/sh
# Hardening tests (DESIGN.md section 6): malformed input, limits, signals,
# logs and secret hygiene, crash safety -- against the real signerd.
#
# Used by `make check` (TESTS) and runnable by hand:
#   SIGNER_BUILDDIR=/path/to/build tests/integration/hardening/run.sh
#
# Exit 77 (skip) when node is missing.  Runs each script under `timeout`,
# within an overall budget of HARDENING_BUDGET seconds (default 200), and
# prints `hardening: N passed, M failed` last; exits non-zero on any failure.
#
# Environment: SIGNER_SRCDIR, SIGNER_BUILDDIR (set by make check; default:
# the tree this script is in), HARDENING_ONLY=bad_input|limits|signals_logs|crash
# (comma-separated), HARDENING_VERBOSE=1, HARDENING_KEEP=1 (keep temp dirs),
# The sqlite3 command-line tool is used when present (keys.db checks).

set -u

here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR}
export SIGNER_SRCDIR SIGNER_BUILDDIR

if ! command -v node >/dev/null 2>&1; then
    echo "hardening: node not found; skipping (install nodejs >= 20)"
    exit 77
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 18 ] 2>/dev/null; then
    echo "hardening: node $(node --version) is too old (need >= 18; tested with 20)"
    echo "hardening: 0 passed, 1 failed"
    exit 1
fi
if [ ! -x "$SIGNER_BUILDDIR/signerd" ]; then
    echo "hardening: $SIGNER_BUILDDIR/signerd not found (build first, or set SIGNER_BUILDDIR)"
    echo "hardening: 0 passed, 1 failed"
    exit 1
fi
command -v sqlite3 >/dev/null 2>&1 ||
    echo "hardening: note: sqlite3 CLI not found; keys.db checks are skipped"

budget=${HARDENING_BUDGET:-200}
start=$(date +%s)
tests="bad_input:40 limits:55 signals_logs:50 crash:60 auth_regress:60"

passed=0
failed=0
status=0
for entry in $tests; do
    t=${entry%%:*}
    limit=${entry#*:}
    if [ -n "${HARDENING_ONLY:-}" ]; then
        case ",$HARDENING_ONLY," in *",$t,"*) ;; *) continue ;; esac
    fi
    left=$((budget - ($(date +%s) - start)))
    if [ "$left" -lt 5 ]; then
        echo "hardening: overall budget of ${budget}s used up before $t"
        failed=$((failed + 1))
        status=1
        continue
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "hardening: running $t"
    log=$(mktemp "${TMPDIR:-/tmp}/hardening-$t.XXXXXX") || exit 1
    # Each script kills its own signerd processes (by PID) on any exit;
    # --kill-after: one that ignores SIGTERM is killed 5 s later.
    timeout --kill-after=5 "$limit" node "$here/$t.mjs" > "$log" 2>&1
    rc=$?
    cat "$log"
    line=$(grep -E "^$t: [0-9]+ passed, [0-9]+ failed\$" "$log" | tail -n 1)
    rm -f "$log"
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed$/\1/')
        f=$(echo "$line" | sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed$/\2/')
    else
        p=0
        f=0
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then
        status=1
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "hardening: $t timed out after ${limit}s"
        else
            echo "hardening: $t exited with status $rc"
        fi
        # A crash or time-out counts as a failure even if no check failed.
        if [ -z "$line" ] || [ "$f" -eq 0 ]; then
            failed=$((failed + 1))
        fi
    fi
done

if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "hardening: no test ran"
    failed=1
    status=1
fi
echo "hardening: took $(( $(date +%s) - start ))s"
echo "hardening: $passed passed, $failed failed"
exit $status
