#!/bin/sh
# Integration test of the enclave role: signerd (role = "enclave", emulated
# NSM, frames on 127.0.0.1) reaching the KMS stand-in over HTTPS through a
# second signerd with role = "proxy" (enclave -> proxy -> stand-in, TLS end
# to end).  See enclave.mjs for what it checks and docs/enclave.md for the
# role.
#
# Used by `make check` (TESTS) and runnable by hand:
#   SIGNER_BUILDDIR=/path/to/build tests/integration/enclave/run.sh
# Exit 77 (skip) without node, curl, openssl or /usr/bin/python3 with
# cryptography and cbor2.  ethers comes from tests/interop (npm ci from its
# package-lock.json when missing).  ENCLAVE_TEST_TTL (key cache TTL, default
# 15 s) and ENCLAVE_VERBOSE=1 for a look at the processes' output.

set -u
here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR}
export SIGNER_SRCDIR SIGNER_BUILDDIR

py=${KMS_PYTHON:-/usr/bin/python3}
for tool in node npm curl openssl; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "enclave: $tool not found; skipping"
        exit 77
    fi
done
if ! "$py" -c 'import cryptography, cbor2' >/dev/null 2>&1; then
    echo "enclave: $py lacks cryptography or cbor2; skipping (./scripts/deps.sh)"
    exit 77
fi
interop=$SIGNER_SRCDIR/tests/interop
if [ ! -d "$interop/node_modules/ethers" ]; then
    if [ ! -w "$interop" ]; then
        echo "enclave: $interop/node_modules missing and not writable"
        echo "enclave: 0 passed, 1 failed"
        exit 1
    fi
    echo "enclave: npm ci in $interop (ethers)"
    timeout 300 npm ci --prefix "$interop" --no-audit --no-fund --prefer-offline \
        --ignore-scripts --loglevel=error || {
        echo "enclave: npm ci failed"
        echo "enclave: 0 passed, 1 failed"
        exit 1
    }
fi

. "$SIGNER_SRCDIR/tests/lib/suite.sh"
suite_init enclave
suite_run enclave "$here/enclave.mjs" 240
suite_finish
exit $?
