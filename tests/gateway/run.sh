#!/bin/sh
# The gateway on the production path (tests/gateway/gateway.mjs): brings
# scripts/topology.sh up in a temporary directory, runs the checks, and
# brings it down again (every process stopped by its PID).
#
# Used by `make check` (TESTS) and runnable by hand:
#   SIGNER_BUILDDIR=/path/to/build tests/gateway/run.sh
# Exit 77 (skip) only when node or Debian's python3 with cryptography (for
# the KMS stand-in) is missing.

set -u
here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR/build}
export SIGNER_SRCDIR SIGNER_BUILDDIR

if ! command -v node >/dev/null 2>&1; then
    echo "gateway: node not found; skipping (install nodejs >= 20 and npm)"
    exit 77
fi
if ! /usr/bin/python3 -c 'import cryptography, cbor2' >/dev/null 2>&1; then
    echo "gateway: /usr/bin/python3 lacks cryptography/cbor2 (KMS stand-in); skipping"
    exit 77
fi
. "$here/../lib/suite.sh"
suite_init gateway
suite_npm_ci "$here" || { echo "gateway: 0 passed, 1 failed"; exit 1; }
export NODE_NO_WARNINGS=1
suite_run gateway "$here/gateway.mjs" 300
suite_finish
exit $?
