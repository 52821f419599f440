#!/usr/bin/env bash
# One command that runs every test: installs what is missing, builds, and
# runs `make check` (CUnit unit and plugin tests, integration tests against
# a real signerd, interop tests against ethers v6 and anvil).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
status=0
make -j"$(nproc)" check || status=$?
if [ -f test-suite.log ]; then
    pass=$(grep -h '^# PASS:' test-suite.log | awk '{print $3}' | tail -1)
    fail=$(grep -h '^# FAIL:' test-suite.log | awk '{print $3}' | tail -1)
    err=$(grep -h '^# ERROR:' test-suite.log | awk '{print $3}' | tail -1)
    echo "make check: ${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed"
fi
if [ "$status" -ne 0 ]; then
    for f in $(find tests -name '*.log' ! -name 'test-suite.log' 2>/dev/null); do
        if grep -qE '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then
            echo "==== $f"; tail -n 60 "$f"
        fi
    done
fi
exit "$status"
