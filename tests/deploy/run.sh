#!/bin/sh
# The long deployment checks, run by `scripts/test.sh deploy` (after the
# normal build in build/):
#   tests/enclave/reproducible.sh  two clean clones build identical images
#   tests/enclave/boot.sh          that image boots under qemu and signs
#   tests/deploy/newman.sh         the Postman collection (plain and SigV4)
#   tests/deploy/load_test.sh      a short scripts/load_test.sh run
# Prints "deploy: N passed, M failed" (N, M = scripts) and the time taken.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export SIGNER_SRCDIR=${SIGNER_SRCDIR:-$src} SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$src/build}
export ENCLAVE_BUILD_DIR=${ENCLAVE_BUILD_DIR:-$src/build-enclave}
passed=0 failed=0 failed_names=
start=$(date +%s)
for t in "ENCLAVE_KEEP_OUT=$ENCLAVE_BUILD_DIR/out $src/tests/enclave/reproducible.sh" \
         "$src/tests/enclave/boot.sh" "$src/tests/deploy/newman.sh" "$src/tests/deploy/load_test.sh"; do
    t0=$(date +%s)
    echo "==== ${t##*/}"
    if env $t; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failed_names="$failed_names ${t##*/}"
    fi
    echo "==== ${t##*/}: $(( $(date +%s) - t0 )) s"
done
echo "deploy checks took $(( $(date +%s) - start )) s${failed_names:+; failed:$failed_names}"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
