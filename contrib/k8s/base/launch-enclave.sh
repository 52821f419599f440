#!/bin/sh
# Starts the enclave (nitro-cli run-enclave) and stays while it runs: the
# container exits, and Kubernetes restarts it, when the enclave stops.
# SIGTERM (pod deletion) terminates the enclave.  Environment: ENCLAVE_EIF,
# ENCLAVE_CID, ENCLAVE_CPU_COUNT, ENCLAVE_MEMORY_MIB, ENCLAVE_DEBUG (1 =
# --debug-mode: PCR0 reads as zeros; dev overlay only).
set -eu
debug=
[ "${ENCLAVE_DEBUG:-0}" = 1 ] && debug=--debug-mode
nitro-cli terminate-enclave --all >/dev/null 2>&1 || true
nitro-cli run-enclave --eif-path "$ENCLAVE_EIF" --enclave-cid "$ENCLAVE_CID" \
    --cpu-count "$ENCLAVE_CPU_COUNT" --memory "$ENCLAVE_MEMORY_MIB" $debug
trap 'nitro-cli terminate-enclave --all; exit 0' TERM INT
while nitro-cli describe-enclaves | grep -q '"State": "RUNNING"'; do
    sleep 5 &
    wait $!
done
echo "launch-enclave: the enclave stopped" >&2
exit 1
