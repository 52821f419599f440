#!/bin/sh
# Tests of the test-only KMS stand-in (tests/kms/kms_standin.py).
#
# Used by `make check` (TESTS) and runnable by hand:
#   tests/kms/run.sh            (KMS_SKIP_SDK=1 skips the AWS SDK part)
#
# 1. test_sigv4.py   - the SigV4 verifier against the AWS suite (tests/vectors/sigv4)
# 2. test_standin.py - the stand-in over HTTPS: KMS calls, refusals, Recipient
#                      flow checked with `openssl cms`, counters, throttle, and
#                      the AWS SDK for JavaScript v3 (npm ci from package-lock.json)
#
# Needs Debian's python3 with python3-cryptography and python3-cbor2 and the
# openssl CLI (exit 77, skip, when absent), node and npm for the SDK part.
# Prints "kms: N passed, M failed" last; exits non-zero on any failure.

set -u

here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR}
export SIGNER_SRCDIR SIGNER_BUILDDIR

# Debian's interpreter first: a python3 earlier on PATH (pyenv, venv) may
# lack the Debian modules.
py=
for cand in ${KMS_PYTHON:-} /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import cryptography, cbor2' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "kms: no python3 with the cryptography and cbor2 modules; skipping"
    echo "kms: (apt-get install python3-cryptography python3-cbor2, or ./scripts/deps.sh)"
    exit 77
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "kms: the openssl CLI is missing; skipping"
    exit 77
fi

failed=0
passed=0
run_py() {
    name=$1
    shift
    echo "kms: running $name"
    if timeout --kill-after=10 300 "$py" "$here/$name" "$@"; then
        passed=$((passed + 1))
    else
        echo "kms: $name FAILED"
        failed=$((failed + 1))
    fi
}

# The AWS SDK for JavaScript v3, installed from the lock file when
# node_modules is missing or stale (next to the sources when writable,
# otherwise in the build tree).
KMS_SDK_WORKDIR=
if [ "${KMS_SKIP_SDK:-0}" = 1 ]; then
    echo "kms: KMS_SKIP_SDK=1: not running the AWS SDK test"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "kms: node/npm missing: the AWS SDK test FAILS (set KMS_SKIP_SDK=1 to skip it)"
    failed=$((failed + 1))
else
    workdir=$here
    if [ ! -w "$here" ]; then
        workdir=$SIGNER_BUILDDIR/tests/kms
        mkdir -p "$workdir" &&
            cp -f "$here/package.json" "$here/package-lock.json" "$here/sdk_client.mjs" "$workdir/"
    fi
    lock_sum=$(cksum < "$workdir/package-lock.json" | tr -d ' \t')
    stamp=$workdir/node_modules/.kms-lock-cksum
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ] ||
       [ ! -d "$workdir/node_modules/@aws-sdk/client-kms" ]; then
        echo "kms: npm ci in $workdir"
        if timeout 300 npm ci --prefix "$workdir" --no-audit --no-fund --prefer-offline \
                --ignore-scripts --loglevel=error; then
            echo "$lock_sum" > "$stamp"
        else
            echo "kms: npm ci failed (offline without a populated npm cache?)"
            failed=$((failed + 1))
            workdir=
        fi
    fi
    KMS_SDK_WORKDIR=$workdir
fi
export KMS_SDK_WORKDIR
# Keep the source tree free of __pycache__.
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE

run_py test_sigv4.py
run_py test_standin.py -v

echo "kms: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
