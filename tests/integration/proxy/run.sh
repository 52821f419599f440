#!/bin/sh
# Integration tests of the proxy role (docs/proxy.md): the real signerd
# relaying to local upstreams on 127.0.0.1 (echo, TLS, slow peers, a DNS
# server of the test's own).  Used by `make check`; runnable by hand:
#   tests/integration/proxy/run.sh [test_name ...]
# Needs python3 and the openssl CLI (exit 77, skip, when absent).
# The KMS stand-in test needs Debian's python3-cryptography and python3-cbor2.
set -u
here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR/build}
export SIGNER_SRCDIR SIGNER_BUILDDIR
# Debian's interpreter first (python3-cryptography and python3-cbor2, which
# the KMS stand-in needs; without them that one test is skipped).
py=
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import cryptography, cbor2' >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
[ -n "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ] || ! command -v openssl >/dev/null 2>&1; then
    echo "proxy: python3 or the openssl CLI is missing; skipping"
    exit 77
fi
# The script stops every process it starts by PID; the time limit is a
# backstop (--kill-after for one that ignores SIGTERM).
exec timeout --kill-after=10 600 "$py" "$here/test_proxy.py" "$@"
