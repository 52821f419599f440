#!/bin/sh
# bench/production_path.sh — row (f) of `make bench`: the production path
# (client -> gateway -> frames -> enclave) on this machine, measured with
# the client settings of row (c), beside a standalone signerd measured in
# alternation with it.
#
#   BUILDDIR=build SRCDIR=. sh bench/production_path.sh
#
# Starts on 127.0.0.1, by PID, stopped on exit:
#   - an enclave-role signerd: emulated NSM (a test PKI made here), the
#     local sealer, frames over TCP (vsock in production)
#   - a gateway-role signerd: plain HTTP listener (as (c)), SQLite keystore
#     (the gateway's default; tests/gateway/bench.sh measures the DynamoDB
#     keystore over HTTPS+mTLS), one enclave, record cache on (its default)
#   - a standalone signerd (conf/standalone.conf), the (c) reference
# imports one key through the gateway (set_key, so the gateway stores its
# sealed record), warms both caches, then runs signer-bench (-c BENCH_CONNS,
# keep-alive, closed loop, the seed's sign_transaction) against the gateway
# and the standalone signer in turn, BENCH_ROUNDS times each.
#
# Prints NAME=value lines on stdout (medians over the rounds):
#   F        production path ops/s       F_CPU    gateway + enclave CPU
#   F_GW_CPU gateway CPU per request     F_EN_CPU enclave CPU per request
#   F_P50 F_P99 latency (us)             S, S_CPU the standalone reference
#   F_RATIO  F / S                       F_LOAD   load average at the end
# CPU figures are microseconds per request (user + system, all threads,
# from /proc/PID/stat, over the whole run including warm-up).  Progress
# goes to stderr.  Exit 1 when a measurement failed.
#
# Environment: BENCH_CONNS [16], BENCH_DURATION [5], BENCH_WARMUP [1],
# BENCH_ROUNDS [3], PP_STANDALONE [1] (0: no standalone reference),
# PP_GW_LOOPS, PP_ENC_LOOPS [both: the online CPUs, as io_loops = 0 gives]
# (io_loops of the gateway and the enclave: each gateway loop keeps its own
# connection to every enclave and forwards on it, and the enclave, whose
# sealer here is local, signs on the loop that read the frame, so no
# request goes to another thread; the enclave's work spreads over the cores
# only with as many gateway loops, hence connections, as enclave loops),
# PP_RECORD_CACHE [4096] (the gateway's record_cache_max_entries; 0: every
# request reads the keystore), PP_STRACE [0] (1: one more production-path
# run under strace -c on both processes, printing F_GW_SYSCALLS and
# F_EN_SYSCALLS, the syscalls per request of each; on Nitro every vsock
# syscall is a VM exit), BENCH_KEEP=1.
set -u

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR}
. "$SRCDIR/bench/lib.sh"
CONNS=${BENCH_CONNS:-16}
DUR=${BENCH_DURATION:-5}
WARM=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
GW_LOOPS=${PP_GW_LOOPS:-$NCPU}
EN_LOOPS=${PP_ENC_LOOPS:-$NCPU}
RCACHE=${PP_RECORD_CACHE:-4096}
BENCH=$BUILDDIR/signer-bench
SIGNERD=$BUILDDIR/signerd
CLI=$BUILDDIR/signer-cli
PLUGDIR=$BUILDDIR/plugins/.libs
SECRET=5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d
ETH_KEY=6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a
CHAIN_ID=31337

say() { printf 'bench (f): %s\n' "$*" >&2; }
for f in "$BENCH" "$SIGNERD" "$CLI" "$PLUGDIR/eth.so"; do
    [ -e "$f" ] || { say "$f is missing (run make bench)"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/signer-pp.XXXXXX") || exit 1
chmod 700 "$tmp"
en_pid= gw_pid= sa_pid= st_gw= st_en=

cleanup() {
    stop_pid "$st_gw"
    stop_pid "$st_en"
    stop_pid "$gw_pid"
    stop_pid "$en_pid"
    stop_pid "$sa_pid"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# wait_ok URL PID: until GET URL answers 200 (10 s); PID must stay alive.
wait_ok() {
    i=0
    while [ $i -lt 100 ]; do
        "$BENCH" --url "$1" -b /dev/null -m GET -c 1 -n 1 -t 1 >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# ---- the enclave -------------------------------------------------------------
if ! bash "$SRCDIR/tests/attest/make_test_pki.sh" "$tmp/pki" >"$tmp/pki.log" 2>&1; then
    say "tests/attest/make_test_pki.sh failed:"; tail -n 5 "$tmp/pki.log" >&2; exit 1
fi
start_enclave() {
    EN_PORT=$(free_port) || return 1
    mkdir -p "$tmp/enclave"
    cat >"$tmp/enclave.conf" <<EOF
role = "enclave";
data_dir = "$tmp/enclave";
log_level = "warn";
listen = ( { address = "127.0.0.1:$EN_PORT"; protocol = "frames"; } );
sealer = { type = "local"; master_key_file = "$tmp/master.key"; };
attestation = "emulated";
emulated_nsm = { signing_key = "$tmp/pki/leaf.key"; certificate = "$tmp/pki/leaf.pem";
                 cabundle = "$tmp/pki/cabundle.pem";
                 pcrs = { pcr0 = "$(openssl rand -hex 48)"; }; };
keystore = { type = "none"; };
key_cache = { ttl_seconds = 600; max_entries = 1024; };
plugins = ( { name = "eth"; path = "eth.so"; } );
EOF
    "$SIGNERD" -c "$tmp/enclave.conf" --plugin-dir "$PLUGDIR" \
        --io-loops "$EN_LOOPS" >>"$tmp/enclave.log" 2>&1 &
    en_pid=$!
}
start_gateway() {
    GW_PORT=$(free_port) || return 1
    mkdir -p "$tmp/gateway"
    cat >"$tmp/gateway.conf" <<EOF
role = "gateway";
data_dir = "$tmp/gateway";
log_level = "warn";
listen = ( { address = "127.0.0.1:$GW_PORT"; protocol = "http"; } );
sealer = { type = "none"; };
keystore = { type = "sqlite"; path = "keys.db"; };
plugins = ( { name = "eth"; path = "eth.so"; } );
gateway = { enclaves = [ "127.0.0.1:$EN_PORT" ]; deadline_ms = 5000;
            reconnect_ms = 100; record_cache_max_entries = $RCACHE; };
EOF
    "$SIGNERD" -c "$tmp/gateway.conf" --plugin-dir "$PLUGDIR" \
        --io-loops "$GW_LOOPS" >>"$tmp/gateway.log" 2>&1 &
    gw_pid=$!
}
try=0
while [ $try -lt 5 ]; do
    start_enclave && start_gateway &&
        wait_ok "http://127.0.0.1:$GW_PORT/readyz" "$gw_pid" &&
        kill -0 "$en_pid" 2>/dev/null && break
    stop_pid "$gw_pid"; stop_pid "$en_pid"; gw_pid= en_pid=
    try=$((try + 1))
done
if [ -z "$gw_pid" ]; then
    say "the gateway or the enclave did not start:"
    tail -n 5 "$tmp/enclave.log" "$tmp/gateway.log" >&2
    exit 1
fi
GURL=http://127.0.0.1:$GW_PORT/
say "enclave pid $en_pid (127.0.0.1:$EN_PORT, io_loops $EN_LOOPS), gateway pid $gw_pid ($GURL, io_loops $GW_LOOPS)"

# ---- the standalone reference ---------------------------------------------------
SURL=
if [ "${PP_STANDALONE:-1}" = 1 ]; then
    mkdir -p "$tmp/standalone" && chmod 700 "$tmp/standalone"
    try=0
    while [ $try -lt 5 ] && [ -z "$SURL" ]; do
        SA_PORT=$(free_port) || break
        "$SIGNERD" -c "$SRCDIR/conf/standalone.conf" \
            --listen "http=127.0.0.1:$SA_PORT" --data-dir "$tmp/standalone" \
            --plugin-dir "$PLUGDIR" --workers 0 --log-level warn \
            >>"$tmp/standalone.log" 2>&1 &
        sa_pid=$!
        if wait_ok "http://127.0.0.1:$SA_PORT/healthz" "$sa_pid"; then
            SURL=http://127.0.0.1:$SA_PORT/
        else
            stop_pid "$sa_pid"; sa_pid=
        fi
        try=$((try + 1))
    done
    [ -n "$SURL" ] || { say "standalone signerd did not start"; tail -n 5 "$tmp/standalone.log" >&2; exit 1; }
fi

# import the key (the same key and secret as (c)) through the gateway
import_key() {
    printf '%s\n' "$ETH_KEY" |
        SIGNER_SECRET=$SECRET "$CLI" --url "${1%/}" set-key 2>&1 |
        tr -d ' \n' | sed -n 's/.*"key_id":"\([^"]*\)".*/\1/p'
}
KEY_ID=$(import_key "$GURL")
[ -n "$KEY_ID" ] || { say "set_key through the gateway failed"; tail -n 5 "$tmp/gateway.log" "$tmp/enclave.log" >&2; exit 1; }
SKEY_ID=
if [ -n "$SURL" ]; then
    SKEY_ID=$(import_key "$SURL")
    [ -n "$SKEY_ID" ] || { say "set_key on the standalone signer failed"; exit 1; }
fi
say "key $KEY_ID stored by the gateway"

# run NAME KEY_ID URL PID...: one signer-bench run; appends its JSON line to
# $tmp/NAME.jsonl and "cpu_per_req_pid1 cpu_per_req_pid2 ..." to NAME.cpu
failed=0
run() {
    name=$1 kid=$2 url=$3
    shift 3
    t0=
    for p in "$@"; do t0="$t0 $(cpu_ticks "$p")"; done
    if ! "$BENCH" --json -l "$name" --url "$url" -c "$CONNS" -d "$DUR" \
            -w "$WARM" --key-id "$kid" --secret "$SECRET" \
            --chain-id "$CHAIN_ID" --expect '"enclave_status":200' \
            >>"$tmp/$name.jsonl" 2>"$tmp/last.err"; then
        say "$name failed:"; head -n 10 "$tmp/last.err" >&2
        failed=1
        return 1
    fi
    t1=
    for p in "$@"; do t1="$t1 $(cpu_ticks "$p")"; done
    total=$(tail -n 1 "$tmp/$name.jsonl" | jnum total)
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$total" -v hz="$CLK_TCK" 'BEGIN {
        k = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= k; i++) printf "%s%.1f", (i > 1 ? " " : ""), (y[i] - x[i]) / hz * 1e6 / n
        printf "\n" }')
    echo "$cpu" >>"$tmp/$name.cpu"
    say "$(printf '%-11s %8.0f ops/s  p99 %6.3f ms  CPU us/req %s' "$name" \
        "$(tail -n 1 "$tmp/$name.jsonl" | jnum ops_per_s)" \
        "$(tail -n 1 "$tmp/$name.jsonl" | jnum p99 | awk '{ print $1 / 1000 }')" "$cpu")"
}

say "-c $CONNS, ${DUR} s (+${WARM} s warm-up), $ROUNDS round(s), alternated; load average $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ $r -le "$ROUNDS" ]; do
    run f "$KEY_ID" "$GURL" "$gw_pid" "$en_pid"
    [ -n "$SURL" ] && run s "$SKEY_ID" "$SURL" "$sa_pid"
    r=$((r + 1))
done

# syscalls per request (PP_STRACE=1): one more run with strace -c attached
# to both processes; strace slows them, the counts per request hold
F_GW_SYS= F_EN_SYS=
if [ "${PP_STRACE:-0}" = 1 ] && command -v strace >/dev/null 2>&1; then
    strace -c -f -q -p "$gw_pid" -o "$tmp/strace.gw" 2>/dev/null &
    st_gw=$!
    strace -c -f -q -p "$en_pid" -o "$tmp/strace.en" 2>/dev/null &
    st_en=$!
    sleep 0.5
    run fstrace "$KEY_ID" "$GURL" "$gw_pid" "$en_pid"
    stop_pid "$st_gw"
    stop_pid "$st_en"
    st_gw= st_en=
    n=$(tail -n 1 "$tmp/fstrace.jsonl" 2>/dev/null | jnum total)
    per_req() { awk -v n="${n:-0}" '$NF == "total" && n > 0 { printf "%.2f", $4 / n }' "$1" 2>/dev/null; }
    F_GW_SYS=$(per_req "$tmp/strace.gw")
    F_EN_SYS=$(per_req "$tmp/strace.en")
    say "syscalls per request under strace: gateway ${F_GW_SYS:-?}, enclave ${F_EN_SYS:-?}"
fi

# how the gateway's record cache did: one miss (the first read), then hits
rc_line=$(curl -s "${GURL}metrics" 2>/dev/null |
    sed -n 's/^signer_gateway_record_cache_\(hits\|misses\)_total /\1 /p' | tr '\n' ' ')
say "gateway record cache: ${rc_line:-no metrics}"

ops() { sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$tmp/$1.jsonl" 2>/dev/null | median; }
lat() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$tmp/$1.jsonl" 2>/dev/null | median; }
col() { awk -v c="$2" '{ print $c }' "$tmp/$1.cpu" 2>/dev/null | median; }
F=$(ops f)
F_GW=$(col f 1)
F_EN=$(col f 2)
F_CPU=$(awk '{ print $1 + $2 }' "$tmp/f.cpu" 2>/dev/null | median)
S= S_CPU= RATIO=
if [ -n "$SURL" ]; then
    S=$(ops s)
    S_CPU=$(col s 1)
    RATIO=$(awk -v f="$F" -v s="$S" 'BEGIN { if (f != "" && s > 0) printf "%.2f", f / s }')
fi
echo "F=$F"
echo "F_CPU=$F_CPU"
echo "F_GW_CPU=$F_GW"
echo "F_EN_CPU=$F_EN"
echo "F_P50=$(lat f p50)"
echo "F_P99=$(lat f p99)"
echo "S=$S"
echo "S_CPU=$S_CPU"
echo "F_RATIO=$RATIO"
echo "F_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${PP_STRACE:-0}" = 1 ]; then
    echo "F_GW_SYSCALLS=$F_GW_SYS"
    echo "F_EN_SYSCALLS=$F_EN_SYS"
fi
[ -n "$F" ] || failed=1
exit "$failed"
