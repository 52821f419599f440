#!/bin/sh
# DynamoDB keystore tests: the C client (through tests/dynamodb/ddb_tool)
# against dynalite, a DynamoDB-compatible server, with the AWS SDK for
# JavaScript v3 as the reference for the protocol and the SigV4 signature.
#
# Used by `make check` (TESTS) and runnable by hand:
#   SIGNER_BUILDDIR=/path/to/build tests/dynamodb/run.sh
# Exit 77 (skip) only when node is missing.

set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/suite.sh"
suite_init dynamodb
suite_paths "$here/../.."
suite_need_node
suite_workdir "$here" dynamodb || exit 1
suite_npm_ci "$workdir" || { echo "dynamodb: 0 passed, 1 failed"; exit 1; }

export NODE_NO_WARNINGS=1  # the AWS SDK's notice about future node versions
suite_run keystore "$workdir/keystore.mjs" 180
suite_finish
exit $?
