#!/bin/sh
# Integration tests of the proxy role (docs/proxy.md): the real signerd
# relaying to local upstreams on 127.0.0.1 (echo, TLS, slow peers, a DNS
# server of the test's own).  Used by `make check`; runnable by hand:
#   tests/integration/proxy/run.sh [test_name ...]
# Needs python3 and the openssl CLI (exit 77, skip, when absent).
set -u
here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR/build}
export SIGNER_SRCDIR SIGNER_BUILDDIR
if ! command -v python3 >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    echo "proxy: python3 or the openssl CLI is missing; skipping"
    exit 77
fi
# The script stops every process it starts by PID; the time limit is a
# backstop (--kill-after for one that ignores SIGTERM).
exec timeout --kill-after=10 600 python3 "$here/test_proxy.py" "$@"
