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
. "$here/../lib/suite.sh"
suite_init interop
suite_paths "$here/../.."
suite_need_node

# Where node_modules lives: next to the sources when we may write there,
# otherwise (read-only source tree, e.g. make distcheck) a copy in the build
# tree.  --ignore-scripts (suite_npm_ci): anvil's binary comes in the
# optional dependency @foundry-rs/anvil-<os>-<arch>; its postinstall would
# only try the network.
suite_workdir "$here" interop || exit 1
suite_npm_ci "$workdir" || { echo "interop: 0 passed, 1 failed"; exit 1; }

for t in ethers_compare anvil_e2e eth_breadth anvil_breadth userop_vectors userop_e2e jcs_hmac \
         rpc_ethers rpc_viem; do
    if [ -n "${INTEROP_ONLY:-}" ] && [ "$INTEROP_ONLY" != "$t" ]; then
        continue
    fi
    suite_run "$t" "$workdir/$t.mjs" 300
done
suite_finish
exit $?
