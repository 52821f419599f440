#!/bin/sh
# bench/run.sh — the performance benchmark behind `make bench`.
#
#   make bench                       (from a configured build tree)
#   BUILDDIR=/path/to/build SRCDIR=/path/to/src sh bench/run.sh [--quick]
#
# Measures, in one run
#   (a)  raw libsecp256k1 on one core: sign_recoverable + verify (what a
#        signature costs with verify_signatures on) and sign alone
#   (b)  sign_transaction through eng_dispatch in-process, one thread, warm
#        key cache, verify_signatures on and off (cold for information);
#        (a) and (b) alternate in short rounds in one process: medians, and
#        (b)/(a) is the median of the per-round ratios
#   (c)  signerd over HTTP (signer-bench, keep-alive, closed loop; io_loops =
#        online CPUs, the default), verify_signatures on; its CPU per request
#   (cn) the same with verify_signatures = false
#   (d)  anvil's eth_signTransaction with an unlocked dev account, same client,
#        same concurrency and duration; (c), (cn) and (d) alternate: medians,
#        and (c)/(d), (cn)/(d) are medians of the per-round ratios
#   (c') signerd at a fixed rate of half its measured peak: p99
#   (e)  100,000 keys: sign latency in-process (flat in the number of keys?)
#        and over HTTP, signerd's RSS
#   (h)  the HTTP floor: GET /healthz on the (c) signerd, its CPU per request
#        (a request that signs nothing), for reading (c) and (cn)
#   (f)  the production path (gateway -> frames -> enclave, warm cache),
#        bench/production_path.sh, alternated with a standalone signerd
#   (i)  instruction counts (callgrind): per sign_transaction through the
#        dispatcher, split into crypto (libsecp256k1 + Keccak) and the rest
# and prints one table with the targets and PASS/FAIL marks.
#
# Environment (defaults in brackets): BENCH_CONNS [16], BENCH_DURATION [5]
# seconds per run, BENCH_WARMUP [1], BENCH_ROUNDS [3], BENCH_TIME [2] seconds
# per in-process measurement (BENCH_AB_ROUNDS [21] alternated rounds of
# BENCH_TIME/4 each for (a) and (b)), BENCH_KEYS [100000], ANVIL (path of anvil),
# BENCH_STRICT=1 (exit 1 when a target FAILs; by default only a failed
# measurement makes the exit status non-zero), BENCH_KEEP=1 (keep the
# temporary directory), BENCH_INSTR_COUNT [200] requests per callgrind
# segment (BENCH_INSTR_COUNT=0 skips (i)).  --quick: 1 round of 2 s, 10,000
# keys.
#
# Only 127.0.0.1 is used.  Every process started here is killed by PID on
# exit.

set -u

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/.." && pwd)}
. "$SRCDIR/bench/lib.sh"
BUILDDIR=${BUILDDIR:-$SRCDIR}

CONNS=${BENCH_CONNS:-16}
DUR=${BENCH_DURATION:-5}
WARM=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
BTIME=${BENCH_TIME:-2}
NKEYS=${BENCH_KEYS:-100000}
ICOUNT=${BENCH_INSTR_COUNT:-200}
ABROUNDS=${BENCH_AB_ROUNDS:-21}
for arg in "$@"; do
    case $arg in
    --quick) DUR=2; ROUNDS=1; NKEYS=10000; BTIME=1; ABROUNDS=3 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $arg" >&2; exit 64 ;;
    esac
done

BENCH=$BUILDDIR/signer-bench
BSIGN=$BUILDDIR/bench/bench_sign
SIGNERD=$BUILDDIR/signerd
CLI=$BUILDDIR/signer-cli
PLUGDIR=$BUILDDIR/plugins/.libs
CONF=$SRCDIR/conf/standalone.conf
SECRET=5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d
ETH_KEY=6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a
ANVIL_FROM=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
CHAIN_ID=31337

for f in "$BENCH" "$BSIGN" "$SIGNERD" "$PLUGDIR/eth.so" "$CONF"; do
    if [ ! -e "$f" ]; then
        echo "bench: $f is missing (run make first)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/signer-bench.XXXXXX") || exit 1
signerd_pid=
anvil_pid=
nv_pid=
failed=0

cleanup() {
    stop_pid "$signerd_pid"
    stop_pid "$anvil_pid"
    stop_pid "$nv_pid"
    signerd_pid=
    anvil_pid=
    nv_pid=
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say() { printf '%s\n' "$*" >&2; }

# jstr FIELD < json-line: the first string value of "FIELD"
jstr() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# wait_http URL BODYFILE [extra signer-bench args]: until a request succeeds
wait_http() {
    url=$1; body=$2; shift 2
    i=0
    while [ $i -lt 100 ]; do
        if "$BENCH" --url "$url" -b "$body" -c 1 -n 1 -t 1 "$@" \
                >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# start_signerd DATADIR [CONFIG [signerd options]]: sets signerd_pid and SPORT
start_signerd() {
    sdir=$1
    sconf=${2:-$CONF}
    [ $# -ge 2 ] && shift 2 || shift $#
    try=0
    while [ $try -lt 5 ]; do
        SPORT=$(free_port) || return 1
        "$SIGNERD" -c "$sconf" --listen "http=127.0.0.1:$SPORT" \
            --data-dir "$sdir" --plugin-dir "$PLUGDIR" --workers 0 \
            --log-level warn "$@" >>"$tmp/signerd.log" 2>&1 &
        signerd_pid=$!
        if wait_http "http://127.0.0.1:$SPORT/healthz" /dev/null -m GET; then
            return 0
        fi
        stop_pid "$signerd_pid"
        signerd_pid=
        try=$((try + 1))
    done
    say "bench: signerd did not start; its log:"
    tail -n 20 "$tmp/signerd.log" >&2
    return 1
}

find_anvil() {
    if [ -n "${ANVIL:-}" ] && [ -x "$ANVIL" ]; then echo "$ANVIL"; return 0; fi
    for d in "$SRCDIR/tests/interop" "$BUILDDIR/tests/interop"; do
        for a in "$d"/node_modules/@foundry-rs/anvil-linux-*/bin/anvil; do
            [ -x "$a" ] && { echo "$a"; return 0; }
        done
    done
    command -v anvil 2>/dev/null && return 0
    return 1
}

cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
say "bench: $(uname -m), $cpus online CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "bench: $ROUNDS round(s) of ${DUR} s (+${WARM} s warm-up), $CONNS connections, $NKEYS keys"

# ---- (a) (b) (e): in process ---------------------------------------------------
say "bench: in-process measurements (bench_sign)"
mkdir -p "$tmp/keys" || exit 1
if ! "$BSIGN" --plugin-dir "$PLUGDIR" --time "$BTIME" --keys "$NKEYS" \
        --rounds "$ABROUNDS" --keys-dir "$tmp/keys/data" --key-ids-out "$tmp/key_ids.txt" \
        >"$tmp/bench_sign.jsonl"; then
    say "bench: bench_sign failed"
    failed=1
fi
line_a=$(grep '"secp256k1_sign_recoverable"' "$tmp/bench_sign.jsonl")
line_av=$(grep '"secp256k1_sign_verify"' "$tmp/bench_sign.jsonl")
line_bc=$(grep '"cache":"cold","keys":1,' "$tmp/bench_sign.jsonl")
line_bw=$(grep '"cache":"warm","keys":1,' "$tmp/bench_sign.jsonl")
line_bn=$(grep '"cache":"warm-noverify","keys":1,' "$tmp/bench_sign.jsonl")
line_k=$(grep '"bench":"keys"' "$tmp/bench_sign.jsonl")
line_ab=$(grep '"bench":"ab_ratio"' "$tmp/bench_sign.jsonl")
AB_ON=$(echo "$line_ab" | jnum on)
AB_OFF=$(echo "$line_ab" | jnum off)
AB_ON_MIN=$(echo "$line_ab" | jnum on_min)
AB_ON_MAX=$(echo "$line_ab" | jnum on_max)
AB_OFF_MIN=$(echo "$line_ab" | jnum off_min)
AB_OFF_MAX=$(echo "$line_ab" | jnum off_max)
A=$(echo "$line_a" | jnum ops_per_s)
A_US=$(echo "$line_a" | jnum us_per_op)
AV=$(echo "$line_av" | jnum ops_per_s)
AV_US=$(echo "$line_av" | jnum us_per_op)
BC=$(echo "$line_bc" | jnum ops_per_s)
BW=$(echo "$line_bw" | jnum ops_per_s)
BN=$(echo "$line_bn" | jnum ops_per_s)
BC_P50=$(echo "$line_bc" | jnum p50)
BW_P50=$(echo "$line_bw" | jnum p50)
K_CREATE=$(echo "$line_k" | jnum create_s)
K_N=$(echo "$line_k" | jnum keys)
K1_P50=$(echo "$line_k" | jnum sign_p50_us_1key)
KN_P50=$(echo "$line_k" | jnum sign_p50_us_nkeys)
KR_P50=$(echo "$line_k" | jnum sign_p50_us_nkeys_random)
K1_P99=$(echo "$line_k" | jnum sign_p99_us_1key)
KN_P99=$(echo "$line_k" | jnum sign_p99_us_nkeys)
KR_P99=$(echo "$line_k" | jnum sign_p99_us_nkeys_random)

# ---- servers ---------------------------------------------------------------------
mkdir -p "$tmp/signerd-data" && chmod 700 "$tmp/signerd-data"
if ! start_signerd "$tmp/signerd-data"; then
    exit 1
fi
say "bench: signerd pid $signerd_pid on 127.0.0.1:$SPORT"
SURL=http://127.0.0.1:$SPORT/

# import the key (signer-cli reads it from stdin)
key_json=$(printf '%s\n' "$ETH_KEY" |
    SIGNER_SECRET=$SECRET "$CLI" --url "http://127.0.0.1:$SPORT" set-key 2>&1)
KEY_ID=$(printf '%s' "$key_json" | tr -d ' \n' | jstr key_id)
if [ -z "$KEY_ID" ]; then
    say "bench: set_key failed: $key_json"
    exit 1
fi
say "bench: imported key $KEY_ID"

# (cn) the same with verify_signatures = false: a second signerd on the
# same data directory, idle while the others run
main_pid=$signerd_pid
MAIN_PORT=$SPORT
sed 's/verify_signatures = true;/verify_signatures = false;/' "$CONF" \
    >"$tmp/noverify.conf"
if ! grep -q 'verify_signatures = false;' "$tmp/noverify.conf"; then
    say "bench: cannot turn verify_signatures off in $CONF"
    failed=1
fi
NURL=
if start_signerd "$tmp/signerd-data" "$tmp/noverify.conf"; then
    nv_pid=$signerd_pid
    NURL=http://127.0.0.1:$SPORT/
else
    failed=1
fi
signerd_pid=$main_pid
SPORT=$MAIN_PORT

ANVIL_BIN=$(find_anvil)
if [ -z "$ANVIL_BIN" ] && command -v npm >/dev/null 2>&1 &&
   [ -f "$SRCDIR/tests/interop/package-lock.json" ] && [ -w "$SRCDIR/tests/interop" ]; then
    say "bench: installing anvil (npm ci in tests/interop)"
    timeout 300 npm ci --prefix "$SRCDIR/tests/interop" --no-audit --no-fund \
        --prefer-offline --ignore-scripts --loglevel=error >&2
    ANVIL_BIN=$(find_anvil)
fi
cat >"$tmp/anvil_sign.json" <<EOF
{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"$ANVIL_FROM","to":"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf","value":"0x2386f26fc10000","nonce":"0x0","gas":"0x186a0","maxFeePerGas":"0x174876e800","maxPriorityFeePerGas":"0xb2d05e00","chainId":"0x7a69","type":"0x2"}]}
EOF
echo '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' >"$tmp/anvil_ping.json"
AURL=
if [ -n "$ANVIL_BIN" ]; then
    try=0
    while [ $try -lt 5 ] && [ -z "$AURL" ]; do
        APORT=$(free_port) || break
        "$ANVIL_BIN" --port "$APORT" --host 127.0.0.1 --silent \
            >"$tmp/anvil.log" 2>&1 &
        anvil_pid=$!
        if wait_http "http://127.0.0.1:$APORT/" "$tmp/anvil_ping.json" --jsonrpc; then
            AURL=http://127.0.0.1:$APORT/
        else
            stop_pid "$anvil_pid"
            anvil_pid=
        fi
        try=$((try + 1))
    done
    if [ -n "$AURL" ]; then
        say "bench: anvil pid $anvil_pid on 127.0.0.1:$APORT ($("$ANVIL_BIN" --version 2>/dev/null | head -n 1))"
    else
        say "bench: anvil did not start:"
        tail -n 5 "$tmp/anvil.log" >&2
        failed=1
    fi
else
    say "bench: anvil not found (npm ci --prefix tests/interop, or set ANVIL): (d) skipped"
    failed=1
fi

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# run_bench NAME OUTFILE SERVER_PID args...: one signer-bench run; its JSON
# line goes to OUTFILE, the server's CPU time per request (µs, over the
# whole run including warm-up) to OUTFILE.cpu and the kernel's part of it
# (system time) to OUTFILE.sys.
run_bench() {
    name=$1; out=$2; spid=$3; shift 3
    t0=$(cpu_ticks "$spid")
    k0=$(sys_ticks "$spid")
    if ! "$BENCH" --json -l "$name" "$@" >>"$out" 2>"$tmp/last.err"; then
        say "bench: $name failed:"
        sed 's/^/    /' "$tmp/last.err" | head -n 20 >&2
        failed=1
        return 1
    fi
    t1=$(cpu_ticks "$spid")
    k1=$(sys_ticks "$spid")
    total=$(tail -n 1 "$out" | jnum total)
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$total" -v hz="$CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n }')
    echo "$cpu" >>"$out.cpu"
    awk -v a="$k0" -v b="$k1" -v n="$total" -v hz="$CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.1f\n", (b - a) / hz * 1e6 / n }' >>"$out.sys"
    tail -n 1 "$out" | awk -v n="$name" -v cpu="$cpu" -F'[,:]' '{
        for (i = 1; i <= NF; i++) { gsub(/["{}]/, "", $i) }
        for (i = 1; i < NF; i++) {
            if ($i == "ops_per_s") o = $(i + 1)
            if ($i == "p50") p = $(i + 1)
            if ($i == "p99") q = $(i + 1)
        }
        printf "bench:   %-14s %8.0f ops/s  p50 %.3f ms  p99 %.3f ms  server CPU %s us/req\n", n, o, p / 1000, q / 1000, cpu
    }' >&2
    return 0
}

# ---- (c) / (d) alternating --------------------------------------------------------
say "bench: (c) signerd sign_transaction, (cn) verification off, (d) anvil eth_signTransaction; -c $CONNS, ${DUR} s each, alternated"
r=1
while [ $r -le "$ROUNDS" ]; do
    run_bench "c.signerd.$r" "$tmp/c.jsonl" "$signerd_pid" --url "$SURL" -c "$CONNS" \
        -d "$DUR" -w "$WARM" --key-id "$KEY_ID" --secret "$SECRET" \
        --chain-id "$CHAIN_ID" --expect '"enclave_status":200'
    if [ -n "$NURL" ]; then
        run_bench "cn.noverify.$r" "$tmp/cn.jsonl" "$nv_pid" --url "$NURL" -c "$CONNS" \
            -d "$DUR" -w "$WARM" --key-id "$KEY_ID" --secret "$SECRET" \
            --chain-id "$CHAIN_ID" --expect '"enclave_status":200'
    fi
    if [ -n "$AURL" ]; then
        run_bench "d.anvil.$r" "$tmp/d.jsonl" "$anvil_pid" --url "$AURL" -c "$CONNS" \
            -d "$DUR" -w "$WARM" -b "$tmp/anvil_sign.json" --jsonrpc
    fi
    r=$((r + 1))
done
C=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$tmp/c.jsonl" | median)
C_P50=$(sed -n 's/.*"p50":\([0-9]*\).*/\1/p' "$tmp/c.jsonl" | median)
C_P99=$(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$tmp/c.jsonl" | median)
C_CPU=$(median <"$tmp/c.jsonl.cpu" 2>/dev/null)
C_SYS=$(median <"$tmp/c.jsonl.sys" 2>/dev/null)
CN_SYS=$(median <"$tmp/cn.jsonl.sys" 2>/dev/null)
# medians FILE: "ops/s p99 cpu" medians over the rounds in FILE, or nothing
medians() {
    [ -s "$1" ] || return 0
    printf '%s %s %s\n' \
        "$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$1" | median)" \
        "$(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$1" | median)" \
        "$(median <"$1.cpu")"
}
read -r CN CN_P99 CN_CPU <<EOF2
$(medians "$tmp/cn.jsonl")
EOF2
stop_pid "$nv_pid"
nv_pid=
D= D_P50= D_P99= D_CPU=
if [ -s "$tmp/d.jsonl" ]; then
    D_CPU=$(median <"$tmp/d.jsonl.cpu")
    D=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$tmp/d.jsonl" | median)
    D_P50=$(sed -n 's/.*"p50":\([0-9]*\).*/\1/p' "$tmp/d.jsonl" | median)
    D_P99=$(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$tmp/d.jsonl" | median)
fi
RSS1=$(rss_kib "$signerd_pid")
# pair_ratio A B: the median over rounds of A's ops/s over B's (the runs of
# one round are next to each other in time), or nothing
pair_ratio() {
    [ -s "$1" ] && [ -s "$2" ] || return 0
    sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$1" >"$tmp/pr.a"
    sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$2" >"$tmp/pr.b"
    paste "$tmp/pr.a" "$tmp/pr.b" | awk 'NF == 2 && $2 > 0 { print $1 / $2 }' | median
}
CD_R=$(pair_ratio "$tmp/c.jsonl" "$tmp/d.jsonl")
CND_R=$(pair_ratio "$tmp/cn.jsonl" "$tmp/d.jsonl")

# ---- (c') fixed rate at half the peak ------------------------------------------------
HALF=
HALF_P99=
HALF_P50=
HALF_OPS=
if [ -n "$C" ]; then
    HALF=$(awk -v c="$C" 'BEGIN { printf "%.0f", c / 2 }')
    say "bench: (c') signerd at a fixed $HALF req/s (half the peak), -c $CONNS, $ROUNDS run(s)"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        run_bench "c.half.$r" "$tmp/half.jsonl" "$signerd_pid" --url "$SURL" -c "$CONNS" \
            -d "$DUR" -w "$WARM" -r "$HALF" --key-id "$KEY_ID" \
            --secret "$SECRET" --chain-id "$CHAIN_ID" \
            --expect '"enclave_status":200'
        r=$((r + 1))
    done
    # medians over the runs: one stall of the machine moves one run's p99
    if [ -s "$tmp/half.jsonl" ]; then
        HALF_P99=$(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$tmp/half.jsonl" | median)
        HALF_P50=$(sed -n 's/.*"p50":\([0-9]*\).*/\1/p' "$tmp/half.jsonl" | median)
        HALF_OPS=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$tmp/half.jsonl" | median)
    fi
fi
# ---- (h) the HTTP floor: GET /healthz on the same signerd ---------------------------
# What a request costs signerd when it signs nothing: the kernel's loopback
# TCP, the event loop, the HTTP parser and the answer.  The budget the
# CPU-per-request targets leave for all of that is 0.25 x (a).
H_CPU=
H_SYS=
H_OPS=
: >"$tmp/empty.body"
say "bench: (h) HTTP floor: GET /healthz on the same signerd, -c $CONNS"
if run_bench "h.healthz" "$tmp/h.jsonl" "$signerd_pid" --url "${SURL}healthz" -m GET \
        -b "$tmp/empty.body" -c "$CONNS" -d "$DUR" -w "$WARM" --expect '"status"'; then
    H_CPU=$(tail -n 1 "$tmp/h.jsonl.cpu")
    H_SYS=$(tail -n 1 "$tmp/h.jsonl.sys")
    H_OPS=$(jnum ops_per_s <"$tmp/h.jsonl")
fi
stop_pid "$signerd_pid"
signerd_pid=

# ---- (e) signerd with many keys ---------------------------------------------------
RSSN=
E_P50=
E_P99=
E_OPS=
if [ -s "$tmp/key_ids.txt" ] && [ -f "$tmp/keys/data/keys.db" ]; then
    if start_signerd "$tmp/keys/data"; then
        say "bench: (e) signerd on $K_N keys (pid $signerd_pid), key_ids in turn"
        if run_bench "e.keys" "$tmp/e.jsonl" "$signerd_pid" --url "http://127.0.0.1:$SPORT/" \
                -c "$CONNS" -d "$DUR" -w "$WARM" --key-ids "$tmp/key_ids.txt" \
                --secret "$SECRET" --chain-id "$CHAIN_ID" \
                --expect '"enclave_status":200'; then
            E_P50=$(jnum p50 <"$tmp/e.jsonl")
            E_P99=$(jnum p99 <"$tmp/e.jsonl")
            E_OPS=$(jnum ops_per_s <"$tmp/e.jsonl")
        fi
        RSSN=$(rss_kib "$signerd_pid")
        stop_pid "$signerd_pid"
        signerd_pid=
    else
        failed=1
    fi
else
    say "bench: no many-keys data directory from bench_sign: (e) over HTTP skipped"
    failed=1
fi
stop_pid "$anvil_pid"
anvil_pid=

# ---- (f) production path: hook ------------------------------------------------------
# The production path, gateway -> frames -> enclave on loopback with a warm
# cache, measured by bench/production_path.sh against a standalone signerd
# of its own, the two alternated; the target is the ratio of those medians
# (F_RATIO), the figure least moved by the machine's other load.
F= F_CPU= F_NOTE= F_RATIO= F_S= F_S_CPU=
bench_production_path() {
    # bench/production_path.sh: enclave + gateway (HTTP, SQLite keystore)
    # on loopback, the (c) client settings, alternated with a standalone
    # signerd of its own; NAME=value lines on stdout.
    say "bench: (f) production path: gateway -> frames -> enclave (bench/production_path.sh)"
    if ! BENCH_CONNS=$CONNS BENCH_DURATION=$DUR BENCH_WARMUP=$WARM \
            BENCH_ROUNDS=$ROUNDS BUILDDIR=$BUILDDIR SRCDIR=$SRCDIR \
            sh "$SRCDIR/bench/production_path.sh" >"$tmp/f.env"; then
        F_NOTE="failed (bench/production_path.sh)"
        failed=1
        return 0
    fi
    F=$(sed -n 's/^F=//p' "$tmp/f.env")
    F_CPU=$(sed -n 's/^F_CPU=//p' "$tmp/f.env")
    F_RATIO=$(sed -n 's/^F_RATIO=//p' "$tmp/f.env")
    F_S=$(sed -n 's/^S=//p' "$tmp/f.env")
    F_S_CPU=$(sed -n 's/^S_CPU=//p' "$tmp/f.env")
    [ -n "$F" ] || F_NOTE="n/a (bench/production_path.sh printed no F)"
    say "bench: (f) $(tr '\n' ' ' <"$tmp/f.env")"
    say "bench: (f) CPU per request: gateway $(sed -n 's/^F_GW_CPU=//p' "$tmp/f.env") us + enclave $(sed -n 's/^F_EN_CPU=//p' "$tmp/f.env") us = $F_CPU us; standalone measured alternately: $(sed -n 's/^S_CPU=//p' "$tmp/f.env") us, F/S $(sed -n 's/^F_RATIO=//p' "$tmp/f.env")"
}
bench_production_path

# ---- (i) instruction counts (callgrind) ---------------------------------------------
# Self cost of every function, from the callgrind dump of each segment;
# crypto = functions in libsecp256k1 and the Keccak functions.
cg_split() {
    awk '
    function nm(kind, s,   id, rest) {
        if (match(s, /^\([0-9]+\)/)) {
            id = kind substr(s, RSTART, RLENGTH)
            rest = substr(s, RLENGTH + 1); sub(/^ /, "", rest)
            if (rest != "") names[id] = rest
            return names[id]
        }
        return s
    }
    /^ob=/ { ob = nm("ob", substr($0, 4)); next }
    /^fn=/ { fn = nm("fn", substr($0, 4)); fob = ob; next }
    /^cob=/ { nm("ob", substr($0, 5)); next }
    /^cfn=/ { nm("fn", substr($0, 5)); next }
    /^calls=/ { skip = 1; next }
    /^[0-9+*-]/ {
        if (skip) { skip = 0; next }
        tot += $2
        if (fob ~ /libsecp256k1/ || fn ~ /[Kk]eccak/) crypto += $2
        next
    }
    /^totals:/ { totals = $2 }
    END { printf "%.0f %.0f %.0f\n", tot, crypto, totals }' "$1"
}
I_RS= I_RSV= I_V= I_VC= I_N= I_NC=
if [ "$ICOUNT" -gt 0 ] 2>/dev/null && command -v valgrind >/dev/null 2>&1; then
    say "bench: (i) instruction counts: callgrind, $ICOUNT requests per segment"
    mkdir -p "$tmp/cg"
    if valgrind --tool=callgrind --collect-atstart=no \
            --callgrind-out-file="$tmp/cg/out" "$BSIGN" --plugin-dir "$PLUGDIR" \
            --only i --count "$ICOUNT" >"$tmp/instr.jsonl" 2>"$tmp/cg/log"; then
        for f in "$tmp"/cg/out.*; do
            seg=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
            read -r tot cry totals <<EOF2
$(cg_split "$f")
EOF2
            if [ "$tot" != "$totals" ]; then
                say "bench: callgrind dump $f: self costs $tot != totals $totals"
                failed=1
            fi
            per=$((tot / ICOUNT)); perc=$((cry / ICOUNT))
            printf '{"bench":"instr","segment":"%s","count":%s,"ir_per_op":%s,"ir_crypto_per_op":%s}\n' \
                "$seg" "$ICOUNT" "$per" "$perc" >>"$tmp/instr.jsonl"
            case $seg in
            raw-sign) I_RS=$per ;;
            raw-sign-verify) I_RSV=$per ;;
            dispatch-verify) I_V=$per; I_VC=$perc ;;
            dispatch-noverify) I_N=$per; I_NC=$perc ;;
            esac
        done
    else
        say "bench: callgrind run failed:"
        tail -n 5 "$tmp/cg/log" >&2
        failed=1
    fi
else
    say "bench: valgrind not found or BENCH_INSTR_COUNT=0: (i) skipped"
fi

# ---- table --------------------------------------------------------------------------
say "bench: load average now $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v a="$A" -v a_us="$A_US" -v av="$AV" -v av_us="$AV_US" -v cpus="$cpus" \
    -v abon="$AB_ON" -v aboff="$AB_OFF" -v abonmin="$AB_ON_MIN" -v abonmax="$AB_ON_MAX" \
    -v aboffmin="$AB_OFF_MIN" -v aboffmax="$AB_OFF_MAX" -v abrounds="$ABROUNDS" \
    -v bc="$BC" -v bw="$BW" -v bn="$BN" -v bc50="$BC_P50" -v bw50="$BW_P50" \
    -v c="$C" -v c50="$C_P50" -v c99="$C_P99" \
    -v cn="$CN" -v cnp99="$CN_P99" -v cncpu="$CN_CPU" \
    -v d="$D" -v d50="$D_P50" -v d99="$D_P99" -v ccpu="$C_CPU" -v dcpu="$D_CPU" \
    -v half="$HALF" -v h50="$HALF_P50" -v h99="$HALF_P99" -v hops="$HALF_OPS" \
    -v rss1="$RSS1" -v rssn="$RSSN" -v kn="$K_N" -v kcreate="$K_CREATE" \
    -v k150="$K1_P50" -v kn50="$KN_P50" -v kr50="$KR_P50" \
    -v k199="$K1_P99" -v kn99="$KN_P99" -v kr99="$KR_P99" \
    -v e50="$E_P50" -v e99="$E_P99" -v eops="$E_OPS" \
    -v cdr="$CD_R" -v cndr="$CND_R" \
    -v f="$F" -v fcpu="$F_CPU" -v fnote="$F_NOTE" -v fratio="$F_RATIO" \
    -v fs="$F_S" -v fscpu="$F_S_CPU" -v hcpu="$H_CPU" -v hfops="$H_OPS" \
    -v hsys="$H_SYS" -v csys="$C_SYS" -v cnsys="$CN_SYS" \
    -v irs="$I_RS" -v irsv="$I_RSV" -v iv="$I_V" -v ivc="$I_VC" -v in_="$I_N" -v inc="$I_NC" \
    -v icount="$ICOUNT" -v conns="$CONNS" -v dur="$DUR" -v rounds="$ROUNDS" '
function ms(us) { return us == "" ? "n/a" : sprintf("%.3f ms", us / 1000) }
function num(x, f) { return x == "" ? "n/a" : sprintf(f, x) }
function mark(ok, have) { if (!have) { nfail++; return "n/a" } if (ok) return "PASS"; nfail++; return "FAIL" }
function row(label, value) { printf "%-46s %20s\n", label, value }
function trow(label, value, target, ok, have) { printf "%-46s %20s %10s %5s\n", label, value, target, mark(ok, have) }
function ratio(x, y) { return (x != "" && y > 0) ? sprintf("%.2f", x / y) : "n/a" }
BEGIN {
    print ""
    print "========================= enclave-signer benchmark (make bench) ========================="
    printf "%-46s %20s %10s %5s\n", "measurement", "value", "target", ""
    print "-----------------------------------------------------------------------------------------"
    row("(a) secp256k1 sign + verify, per CPU-s", num(av, "%.0f ops/s") " " num(av_us, "(%.1f us)"))
    row("(a) secp256k1 sign alone, per CPU-s", num(a, "%.0f ops/s") " " num(a_us, "(%.1f us)"))
    row("    online CPUs", cpus)
    row("(b) eng_dispatch sign_transaction, verify on", num(bw, "%.0f ops/s"))
    row(sprintf("    (a), (b): per CPU-s, medians of %s alternated rounds", abrounds), "")
    row("(b) same, verify_signatures = false", num(bn, "%.0f ops/s"))
    row("(b) cold cache (unseal each time), verify on", num(bc, "%.0f ops/s"))
    row("    p50 cold / warm (wall clock)", (bc50 == "" ? "n/a" : sprintf("%d / %d us", bc50, bw50)))
    row(sprintf("(c) signerd HTTP, -c %d, median of %d", conns, rounds), num(c, "%.0f ops/s"))
    row("    p50 / p99", ms(c50) " / " ms(c99))
    row("    signerd CPU per request (all threads)", num(ccpu, "%.1f us"))
    row("(cn) same, verify_signatures = false", num(cn, "%.0f ops/s"))
    row("    p99 / signerd CPU per request", ms(cnp99) " / " num(cncpu, "%.1f us"))
    row(sprintf("(d) anvil eth_signTransaction, -c %d", conns), num(d, "%.0f ops/s"))
    row("    p50 / p99", ms(d50) " / " ms(d99))
    row("    anvil CPU per request (all threads)", num(dcpu, "%.1f us"))
    trow(sprintf("(c%s) p99 at half peak (%s req/s), median", "\047", half == "" ? "n/a" : half), ms(h99), "< 2 ms", h99 != "" && h99 < 2000, h99 != "")
    row("    achieved rate / p50", num(hops, "%.0f/s") " / " ms(h50))
    row(sprintf("(e) %s keys created (in-process)", kn == "" ? "n/a" : kn), num(kcreate, "%.1f s"))
    row("    in-process p50 1 key / N keys / random", (k150 == "" ? "n/a" : sprintf("%d/%d/%d us", k150, kn50, kr50)))
    row("    in-process p99 1 key / N keys / random", (k199 == "" ? "n/a" : sprintf("%d/%d/%d us", k199, kn99, kr99)))
    row("    signerd, N keys in turn: ops/s", num(eops, "%.0f ops/s"))
    row("    signerd, N keys in turn: p50 / p99", ms(e50) " / " ms(e99))
    row("    signerd RSS with 1 key (after c)", num(rss1 / 1024, "%.1f MiB"))
    trow("    signerd RSS with N keys (after e)", num(rssn == "" ? "" : rssn / 1024, "%.1f MiB"), "< 32 MiB", rssn != "" && rssn < 32768, rssn != "")
    row("(h) HTTP floor: GET /healthz, signerd CPU/req", num(hcpu, "%.1f us") " " num(hfops, "(%.0f/s)"))
    row("    kernel (system time) per request: h / c / cn", (hsys == "" || csys == "" || cnsys == "") ? "n/a" : sprintf("%.1f / %.1f / %.1f us", hsys, csys, cnsys))
    row("(f) production path gateway->frames->enclave", f == "" ? fnote : num(f, "%.0f ops/s"))
    row("    standalone alternated with it / CPU per req", num(fs, "%.0f ops/s") " / " num(fscpu, "%.0f us"))
    row("    gateway + enclave CPU per request", num(fcpu, "%.1f us"))
    row(sprintf("(i) instructions per op (callgrind, %s ops)", icount), "")
    row("    raw sign / raw sign + verify", (irs == "" ? "n/a" : sprintf("%d / %d", irs, irsv)))
    row("    sign_transaction, verify on: total", num(iv, "%d"))
    row("      crypto (secp256k1 + keccak) / rest", (iv == "" ? "n/a" : sprintf("%d / %d", ivc, iv - ivc)))
    row("    sign_transaction, verify off: total", num(in_, "%d"))
    row("      crypto (secp256k1 + keccak) / rest", (in_ == "" ? "n/a" : sprintf("%d / %d", inc, in_ - inc)))
    print "-----------------------------------------------------------------------------------------"
    trow("(b)/(a)   dispatcher vs raw, verify on", num(abon, "%.2f"), ">= 0.85", abon != "" && abon >= 0.85, abon != "")
    row("    per-round ratios min / max", abonmin == "" ? "n/a" : sprintf("%.2f / %.2f", abonmin, abonmax))
    trow("(b)/(a)   dispatcher vs raw, verify off", num(aboff, "%.2f"), ">= 0.85", aboff != "" && aboff >= 0.85, aboff != "")
    row("    per-round ratios min / max", aboffmin == "" ? "n/a" : sprintf("%.2f / %.2f", aboffmin, aboffmax))
    trow("(c) CPU/req / (a) sign+verify time", ratio(ccpu, av_us), "<= 1.25", ccpu != "" && av_us > 0 && ccpu / av_us <= 1.25, ccpu != "" && av_us > 0)
    trow("(cn) CPU/req / (a) sign time", ratio(cncpu, a_us), "<= 1.25", cncpu != "" && a_us > 0 && cncpu / a_us <= 1.25, cncpu != "" && a_us > 0)
    trow("(c)/(d)   signerd (verify on) vs anvil", num(cdr, "%.2f"), ">= 1.0", cdr != "" && cdr >= 1.0, cdr != "")
    row("    ratio of the medians", ratio(c, d))
    trow("(cn)/(d)  signerd (verify off) vs anvil", num(cndr, "%.2f"), ">= 1.8", cndr != "" && cndr >= 1.8, cndr != "")
    row("    ratio of the medians", ratio(cn, d))
    trow("(e) latency flat: p50 N random / 1 key", ratio(kr50, k150), "<= 1.5", kr50 != "" && k150 > 0 && kr50 / k150 <= 1.5, kr50 != "" && k150 > 0)
    trow("(i) rest / crypto, verify on", ratio(iv - ivc, ivc), "< 0.20", iv != "" && ivc > 0 && (iv - ivc) / ivc < 0.2, iv != "" && ivc > 0)
    trow("(i) rest / crypto, verify off", ratio(in_ - inc, inc), "< 0.20", in_ != "" && inc > 0 && (in_ - inc) / inc < 0.2, in_ != "" && inc > 0)
    row("(i) raw / dispatcher instructions, on / off", (iv == "" ? "n/a" : sprintf("%.2f / %.2f", irsv / iv, irs / in_)))
    row("(i) dispatcher - raw, / raw crypto, on / off", (iv == "" ? "n/a" : sprintf("%.3f / %.3f", (iv - irsv) / irsv, (in_ - irs) / irs)))
    trow("(f)/(s)   production path vs standalone", num(fratio, "%.2f"), ">= 0.8", fratio != "" && fratio >= 0.8, fratio != "")
    row("    (f) vs the (c) median (not alternated)", f == "" ? "n/a" : ratio(f, c))
    row("    standalone CPU / production path CPU", (fcpu > 0 && fscpu != "") ? sprintf("%.2f", fscpu / fcpu) : "n/a")
    row("(h)/(a)   HTTP floor / sign time (info)", ratio(hcpu, a_us))
    row("    (c) - (h), / (a) sign+verify (info)", (hcpu != "" && ccpu != "" && av_us > 0) ? sprintf("%.2f", (ccpu - hcpu) / av_us) : "n/a")
    row("    (cn) - (h), / (a) sign (info)", (hcpu != "" && cncpu != "" && a_us > 0) ? sprintf("%.2f", (cncpu - hcpu) / a_us) : "n/a")
    row("    kernel alone per request / (a), c / cn", (csys != "" && cnsys != "" && av_us > 0 && a_us > 0) ? sprintf("%.2f / %.2f", csys / av_us, cnsys / a_us) : "n/a")
    row("(d)/(c) CPU per request: anvil / signerd", (ccpu > 0 && dcpu != "") ? sprintf("%.2f", dcpu / ccpu) : "n/a")
    row("(d)/(cn) same, verify_signatures = false", (cncpu > 0 && dcpu != "") ? sprintf("%.2f", dcpu / cncpu) : "n/a")
    row("(c)/(a x cores)  HTTP vs all cores raw (info)", (c != "" && av > 0) ? sprintf("%.2f", c / (av * cpus)) : "n/a")
    print "========================================================================================="
    printf "targets: %d not met\n", nfail
    exit nfail > 0 ? 3 : 0
}'
table_rc=$?

cp "$tmp/bench_sign.jsonl" "$BUILDDIR/bench-results.jsonl" 2>/dev/null &&
    cat "$tmp/c.jsonl" "$tmp/cn.jsonl" "$tmp/d.jsonl" "$tmp/half.jsonl" "$tmp/h.jsonl" "$tmp/e.jsonl" "$tmp/instr.jsonl" \
        >>"$BUILDDIR/bench-results.jsonl" 2>/dev/null
say "bench: raw results in $BUILDDIR/bench-results.jsonl"

if [ "$failed" -ne 0 ]; then
    say "bench: some measurements failed (see above)"
    exit 1
fi
if [ "$table_rc" -ne 0 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then
    exit 1
fi
exit 0
