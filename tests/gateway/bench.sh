#!/bin/sh
# The gateway row of `make bench`: signer-bench over HTTPS (mTLS,
# keep-alive, closed loop) through the whole path of scripts/topology.sh --
# gateway, two enclaves, DynamoDB (dynalite) -- signing one key's seed
# transaction.  Printed beside bench/run.sh's standalone rows.
#   BUILDDIR=build SRCDIR=. sh tests/gateway/bench.sh
# Environment: BENCH_CONNS [16], BENCH_DURATION [5], BENCH_WARMUP [1].
set -u
here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/../.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR/build}
dir=$(mktemp -d "${TMPDIR:-/tmp}/gateway-bench.XXXXXX") || exit 1
export TOPOLOGY_DIR=$dir/topology SIGNER_BUILDDIR=$BUILDDIR
trap '"$SRCDIR/scripts/topology.sh" down; rm -rf "$dir"' EXIT INT TERM
secret="gateway bench secret 0123456789"
"$SRCDIR/scripts/topology.sh" up > "$dir/env" 2> "$dir/up.log" || {
    echo "bench gateway: topology.sh up failed"; tail -5 "$dir/up.log"; exit 1; }
. "$dir/env"
tls="--cacert $CA_FILE --cert $CLIENT_CERT --key $CLIENT_KEY"
# shellcheck disable=SC2086
kid=$(curl -s $tls "${GATEWAY_URL}key" -d "{\"secret\":\"$secret\"}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["enclave_result"]["key_id"])') || {
    echo "bench gateway: cannot create a key"; exit 1; }
# shellcheck disable=SC2086
"$BUILDDIR/signer-bench" --url "$GATEWAY_URL" $tls -c "${BENCH_CONNS:-16}" \
    -d "${BENCH_DURATION:-5}" -w "${BENCH_WARMUP:-1}" --key-id "$kid" \
    --secret "$secret" --label "gateway https+mTLS, 2 enclaves, dynamodb" --json > "$dir/out.json"
rc=$?
python3 - "$dir/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lat = j.get("latency_us", {})
print("%-44s %9.1f ops/s  p50 %7.3f ms  p99 %7.3f ms  errors %d" % (
    j.get("label", "gateway"), j.get("ops_per_s", 0), lat.get("p50", 0) / 1e3,
    lat.get("p99", 0) / 1e3, j.get("errors", 0)))
PY
exit $rc
