#!/bin/sh
# The gateway row of `make bench`: signer-bench over HTTPS (mTLS,
# keep-alive, closed loop) through the whole path of scripts/topology.sh --
# gateway, two enclaves, DynamoDB (dynalite) -- signing one key's seed
# transaction.  Printed beside bench/run.sh's standalone rows, with the CPU
# time per request of each process (user + system, all threads, from
# /proc/PID/stat over the whole run including warm-up).  The same path over
# plain HTTP with the SQLite keystore is row (f): bench/production_path.sh.
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
# "name pid" for the processes whose CPU is reported
procs=$(grep -E '^(gateway|enclave1|enclave2|dynalite)=' "$PIDS_FILE" | tr '=' ' ')
ticks() {
    echo "$procs" | while read -r name pid; do
        printf '%s %s\n' "$name" "$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    done
}
ticks > "$dir/t0"
# shellcheck disable=SC2086
"$BUILDDIR/signer-bench" --url "$GATEWAY_URL" $tls -c "${BENCH_CONNS:-16}" \
    -d "${BENCH_DURATION:-5}" -w "${BENCH_WARMUP:-1}" --key-id "$kid" \
    --secret "$secret" --label "gateway https+mTLS, 2 enclaves, dynamodb" --json > "$dir/out.json"
rc=$?
ticks > "$dir/t1"
python3 - "$dir/out.json" "$dir/t0" "$dir/t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lat = j.get("latency_us", {})
print("%-44s %9.1f ops/s  p50 %7.3f ms  p99 %7.3f ms  errors %d" % (
    j.get("label", "gateway"), j.get("ops_per_s", 0), lat.get("p50", 0) / 1e3,
    lat.get("p99", 0) / 1e3, j.get("errors", 0)))
t0 = dict(l.split() for l in open(sys.argv[2]) if l.strip())
t1 = dict(l.split() for l in open(sys.argv[3]) if l.strip())
n, hz = j.get("total", 0), float(sys.argv[4])
if n:
    cpu = {k: (float(t1[k]) - float(t0[k])) / hz * 1e6 / n for k in t0 if k in t1}
    print("    CPU per request: " + ", ".join("%s %.1f us" % kv for kv in sorted(cpu.items())))
PY
exit $rc
