#!/usr/bin/env bash
# Configures (once) and builds enclave-signer out of tree.
#   BUILD_DIR   build directory (default: build)
#   CFLAGS, LDFLAGS, CONFIGURE_FLAGS   passed to configure on first use
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${BUILD_DIR:-build}
if [ ! -x configure ] || [ ! -f build-aux/ltmain.sh ] || [ configure.ac -nt configure ] \
   || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$src/configure" -nt config.status ]; then
    "$src/configure" -q ${CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)" >/dev/null
