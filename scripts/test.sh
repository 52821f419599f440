#!/usr/bin/env bash
# Runs every test.  Installs what is missing, then, by default, three ways:
#   normal    build/       make check (unit, plugin, integration, interop,
#                          hardening, constant-time tests)
#   asan      build-asan/  make check built with -fsanitize=address,undefined;
#                          any report (leaks included) fails
#   valgrind  build/       the CUnit programs under valgrind --leak-check=full
#                          (zero errors, nothing definitely lost)
#   fuzz      build/       each libFuzzer target for FUZZ_SECONDS (default 10)
#   deploy    build/       the enclave image built twice from clean clones
#                          (identical bytes), booted under qemu and signing;
#                          the Postman collection with newman; a load test
# Usage: scripts/test.sh [normal|asan|valgrind|fuzz|deploy|all]   (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 1
mode=${1:-all}
total_pass=0
total_fail=0
failed_modes=()

summarise() { # $1 = label, $2 = build dir, $3 = exit status
    local log="$2/test-suite.log" p=0 f=0 e=0
    if [ -f "$log" ]; then
        p=$(awk '/^# PASS:/{print $3}' "$log" | tail -1)
        f=$(awk '/^# FAIL:/{print $3}' "$log" | tail -1)
        e=$(awk '/^# ERROR:/{print $3}' "$log" | tail -1)
    fi
    f=$(( ${f:-0} + ${e:-0} ))
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "$1: ${p:-0} passed, $f failed"
    total_pass=$(( total_pass + ${p:-0} ))
    total_fail=$(( total_fail + f ))
    if [ "$3" -ne 0 ]; then
        failed_modes+=("$1")
        for t in $(find "$2/tests" -name '*.trs' 2>/dev/null); do
            if grep -qE '^:test-result: (FAIL|ERROR)' "$t"; then
                echo "==== ${t%.trs}.log"; tail -n 80 "${t%.trs}.log"
            fi
        done
    fi
}

run_normal() {
    ./scripts/build.sh || { failed_modes+=(build); total_fail=$((total_fail+1)); return; }
    local rc=0
    make -C build -j"$(nproc)" check >build/check.out 2>&1 || rc=$?
    summarise "normal" build "$rc"
}

run_asan() {
    local san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    BUILD_DIR=build-asan CFLAGS="-O1 -g $san" LDFLAGS="$san" ./scripts/build.sh \
        || { failed_modes+=(asan-build); total_fail=$((total_fail+1)); return; }
    local rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=1:strict_string_checks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    SIGNER_SANITIZED=1 \
        make -C build-asan -j"$(nproc)" check >build-asan/check.out 2>&1 || rc=$?
    summarise "asan" build-asan "$rc"
}

run_valgrind() {
    ./scripts/build.sh || { failed_modes+=(build); total_fail=$((total_fail+1)); return; }
    make -C build -j"$(nproc)" check TESTS= >/dev/null 2>&1   # build test programs only
    local p=0 f=0 t
    for t in build/tests/unit/test_* build/tests/plugins/test_*; do
        case "$t" in *.o|*.log|*.trs|*.c) continue;; esac
        [ -x "$t" ] || continue
        if SIGNER_BUILDDIR="$PWD/build" SIGNER_SRCDIR="$PWD" SIGNER_VALGRIND=1 \
           valgrind -q --error-exitcode=1 --leak-check=full \
                    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                    --suppressions=tests/valgrind.supp \
                    "$t" >"$t.valgrind.log" 2>&1; then
            p=$((p+1))
        else
            f=$((f+1)); echo "==== valgrind: $t"; tail -n 60 "$t.valgrind.log"
        fi
    done
    echo "valgrind: $p passed, $f failed"
    total_pass=$((total_pass+p)); total_fail=$((total_fail+f))
    [ "$f" -eq 0 ] || failed_modes+=(valgrind)
}

run_fuzz() {
    ./scripts/build.sh || return
    if [ -x tests/fuzz/run.sh ]; then
        if SIGNER_BUILDDIR="$PWD/build" SIGNER_SRCDIR="$PWD" FUZZ_SECONDS="${FUZZ_SECONDS:-10}" \
           tests/fuzz/run.sh >build/fuzz.out 2>&1; then
            echo "fuzz: 1 passed, 0 failed"; total_pass=$((total_pass+1))
        else
            echo "fuzz: 0 passed, 1 failed"; tail -n 60 build/fuzz.out
            total_fail=$((total_fail+1)); failed_modes+=(fuzz)
        fi
    fi
}

run_deploy() {
    ./scripts/build.sh || { failed_modes+=(build); total_fail=$((total_fail+1)); return; }
    if tests/deploy/run.sh >build/deploy.out 2>&1; then
        tail -n 1 build/deploy.out; total_pass=$((total_pass+1))
    else
        cat build/deploy.out | tail -n 120
        total_fail=$((total_fail+1)); failed_modes+=(deploy)
    fi
}

case "$mode" in
    normal) run_normal ;;
    asan) run_asan ;;
    valgrind) run_valgrind ;;
    fuzz) run_fuzz ;;
    deploy) run_deploy ;;
    all) run_normal; run_asan; run_valgrind; run_fuzz; run_deploy ;;
    *) echo "usage: $0 [normal|asan|valgrind|fuzz|deploy|all]" >&2; exit 2 ;;
esac

echo "all tests: $total_pass passed, $total_fail failed"
[ ${#failed_modes[@]} -eq 0 ] || { echo "failed: ${failed_modes[*]}"; exit 1; }
exit 0
