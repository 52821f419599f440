#!/bin/sh
# Interop tests: signerd against ethers v6 and a local anvil node.
#
# Used by `make check` (TESTS) and runnable by hand:
#   SIGNER_BUILDDIR=/path/to/build tests/interop/run.sh
#
# Exit 77 (skip) only when node is missing.  Installs the pinned npm packages
# with `npm ci` from package-lock.json when node_modules is missing or stale
# (lock file changed), then runs each test script under `timeout`.  Prints
# `interop: N passed, M failed` last; exits non-zero on any failure.
#
# Environment: SIGNER_SRCDIR, SIGNER_BUILDDIR (set by make check; default: the
# tree this script is in), INTEROP_SEED, INTEROP_CASES, INTEROP_VERBOSE=1,
# INTEROP_ONLY=ethers_compare|anvil_e2e|eth_breadth|anvil_breadth|userop_vectors|userop_e2e|jcs_hmac|rpc_ethers|rpc_viem.

set -u

here=$(cd "$(dirname "$0")" && pwd)
SIGNER_SRCDIR=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$SIGNER_SRCDIR}
export SIGNER_SRCDIR SIGNER_BUILDDIR

if ! command -v node >/dev/null 2>&1; then
    echo "interop: node not found; skipping (install nodejs >= 20 and npm)"
    exit 77
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 18 ] 2>/dev/null; then
    echo "interop: node $(node --version) is too old (need >= 18; tested with 20)"
    echo "interop: 0 passed, 1 failed"
    exit 1
fi

# Where node_modules lives: next to the sources when we may write there,
# otherwise (read-only source tree, e.g. make distcheck) a copy in the build tree.
workdir=$here
if [ ! -w "$here" ]; then
    workdir=$SIGNER_BUILDDIR/tests/interop
    mkdir -p "$workdir" || exit 1
    for f in package.json package-lock.json lib.mjs ethers_compare.mjs anvil_e2e.mjs \
             eth_breadth.mjs anvil_breadth.mjs userop_lib.mjs userop_vectors.mjs userop_e2e.mjs \
             jcs_hmac.mjs hmac_client.py rpc_lib.mjs rpc_ethers.mjs rpc_viem.mjs; do
        cp -f "$here/$f" "$workdir/$f" || exit 1
    done
fi

# Install from the lock file when node_modules is missing or was installed
# from another lock file.  --ignore-scripts: anvil's binary comes in the
# optional dependency @foundry-rs/anvil-<os>-<arch>; its postinstall would
# only try the network.
lock_sum=$(cksum < "$workdir/package-lock.json" | tr -d ' \t')
stamp=$workdir/node_modules/.interop-lock-cksum
if [ ! -f "$stamp" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ] ||
   [ ! -d "$workdir/node_modules/ethers" ] || [ ! -d "$workdir/node_modules/viem" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "interop: npm not found and $workdir/node_modules is missing or stale"
        echo "interop: 0 passed, 1 failed"
        exit 1
    fi
    echo "interop: npm ci in $workdir"
    if ! timeout 300 npm ci --prefix "$workdir" --no-audit --no-fund --prefer-offline \
            --ignore-scripts --loglevel=error; then
        echo "interop: npm ci failed (offline without a populated npm cache?)"
        echo "interop: 0 passed, 1 failed"
        exit 1
    fi
    echo "$lock_sum" > "$stamp"
fi

. "$here/../lib/suite.sh"
suite_init interop
for t in ethers_compare anvil_e2e eth_breadth anvil_breadth userop_vectors userop_e2e jcs_hmac \
         rpc_ethers rpc_viem; do
    if [ -n "${INTEROP_ONLY:-}" ] && [ "$INTEROP_ONLY" != "$t" ]; then
        continue
    fi
    suite_run "$t" "$workdir/$t.mjs" 300
done
suite_finish
exit $?
