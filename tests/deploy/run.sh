#!/bin/sh
# The long deployment checks, run by `scripts/test.sh deploy` (after the
# normal build in build/):
#   tests/enclave/reproducible.sh  two clean clones build identical images
#   tests/enclave/boot.sh          that image boots under qemu and signs
#   tests/deploy/newman.sh         the Postman collection against
#                                  scripts/topology.sh (HTTPS, mTLS; SigV4)
#   tests/deploy/load_test.sh      short scripts/load_test.sh runs against
#                                  the topology and a standalone signerd
#   tests/deploy/k8s_gateway.sh    the prod overlay's rendered gateway
#                                  config, run next to the topology
# The topology is started once, after the boot test, for the last three
# (DEPLOY_TOPOLOGY_ENV), and stopped by its recorded PIDs at the end.
# Prints "deploy: N passed, M failed" (N, M = scripts; a script that exits
# 77 is skipped, counted in neither) and the time taken.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export SIGNER_SRCDIR=${SIGNER_SRCDIR:-$src} SIGNER_BUILDDIR=${SIGNER_BUILDDIR:-$src/build}
export ENCLAVE_BUILD_DIR=${ENCLAVE_BUILD_DIR:-$src/build-enclave}
passed=0 failed=0 failed_names=
start=$(date +%s)
topo=$(mktemp -d /tmp/deploy-run.XXXXXX)
export DEPLOY_TOPOLOGY_ENV=$topo/env
stop_topology() {
    TOPOLOGY_DIR=$topo/state "$src/scripts/topology.sh" down >/dev/null 2>&1
    rm -rf "$topo"
}
trap stop_topology EXIT
trap 'exit 1' INT TERM

for t in "ENCLAVE_KEEP_OUT=$ENCLAVE_BUILD_DIR/out $src/tests/enclave/reproducible.sh" \
         "$src/tests/enclave/boot.sh" topology-up "$src/tests/deploy/newman.sh" "$src/tests/deploy/load_test.sh" \
         "$src/tests/deploy/k8s_gateway.sh"; do
    t0=$(date +%s)
    if [ "$t" = topology-up ]; then
        # A failure here is counted by the two scripts after it (each tries
        # to start its own topology when DEPLOY_TOPOLOGY_ENV is empty).
        TOPOLOGY_DIR=$topo/state "$src/scripts/topology.sh" up >"$topo/env" 2>"$topo/up.err" ||
            { echo "==== topology.sh up failed:"; tail -20 "$topo/up.err"; : >"$topo/env"; }
        echo "==== topology up: $(( $(date +%s) - t0 )) s"
        continue
    fi
    echo "==== ${t##*/}"
    env $t
    case $? in
    0) passed=$((passed + 1)) ;;
    77) echo "==== ${t##*/}: skipped" ;;
    *) failed=$((failed + 1)); failed_names="$failed_names ${t##*/}" ;;
    esac
    echo "==== ${t##*/}: $(( $(date +%s) - t0 )) s"
done
echo "deploy checks took $(( $(date +%s) - start )) s${failed_names:+; failed:$failed_names}"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
