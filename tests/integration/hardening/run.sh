#!/bin/sh
# Hardening tests: malformed input, limits, signals,
# logs and secret hygiene, crash safety -- against the real signerd.
#
# Used by `make check` (TESTS) and runnable by hand:
#   SIGNER_BUILDDIR=/path/to/build tests/integration/hardening/run.sh
#
# Exit 77 (skip) when node is missing.  Runs each script under `timeout`,
# within an overall budget of HARDENING_BUDGET seconds (default 260), and
# prints `hardening: N passed, M failed` last; exits non-zero on any failure.
#
# Environment: SIGNER_SRCDIR, SIGNER_BUILDDIR (set by make check; default:
# the tree this script is in), HARDENING_ONLY=bad_input|limits|signals_logs|crash
# (comma-separated), HARDENING_VERBOSE=1, HARDENING_KEEP=1 (keep temp dirs),
# The sqlite3 command-line tool is used when present (keys.db checks).

set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib/suite.sh"
suite_init hardening
suite_paths "$here/../../.."
suite_need_node
if [ ! -x "$SIGNER_BUILDDIR/signerd" ]; then
    echo "hardening: $SIGNER_BUILDDIR/signerd not found (build first, or set SIGNER_BUILDDIR)"
    echo "hardening: 0 passed, 1 failed"
    exit 1
fi
command -v sqlite3 >/dev/null 2>&1 ||
    echo "hardening: note: sqlite3 CLI not found; keys.db checks are skipped"

budget=${HARDENING_BUDGET:-260}
start=$(date +%s)
tests="bad_input:40 limits:55 signals_logs:50 crash:60 auth_regress:90"

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
    suite_run "$t" "$here/$t.mjs" "$limit"
done
echo "hardening: took $(( $(date +%s) - start ))s"
suite_finish
exit $?
