#!/usr/bin/env bash
# Configures (once) and builds enclave-signer in the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    autoreconf -fi >/dev/null
fi
if [ ! -f Makefile ] || [ configure -nt config.status ]; then
    ./configure -q ${CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)" >/dev/null
