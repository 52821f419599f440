#!/bin/sh
# bench/run.sh — the performance benchmark behind `make bench`.
#
#   make bench                       (from a configured build tree)
#   BUILDDIR=/path/to/build SRCDIR=/path/to/src sh bench/run.sh [--quick]
#
# Measures
#   (a)  raw libsecp256k1 sign_recoverable ops/s on one core, online CPUs
#   (b)  sign_transaction through eng_dispatch in-process, key cache cold/warm
#   (c)  signerd over HTTP (signer-bench, keep-alive, closed loop)
#   (c2) the same with io_loops = online CPUs (requests signed on the loops)
#   (c3) (c2) with the eth plugin's verify_signatures = false (for comparison
#        only: the shipped config keeps the recovery check on)
#   (d)  anvil's eth_signTransaction with an unlocked dev account, same client,
#        same concurrency and duration; (c), (c2), (c3) and (d) alternate,
#        medians kept
#   (c') signerd at a fixed rate of half its measured peak: p99
#   (e)  100,000 keys: sign latency in-process and over HTTP, signerd's RSS
# and prints one table with the targets and PASS/FAIL marks.
#
# Environment (defaults in brackets): BENCH_CONNS [16], BENCH_DURATION [5]
# seconds per run, BENCH_WARMUP [1], BENCH_ROUNDS [3], BENCH_TIME [2] seconds
# per in-process measurement, BENCH_KEYS [100000], ANVIL (path of anvil),
# BENCH_STRICT=1 (exit 1 when a target FAILs; by default only a failed
# measurement makes the exit status non-zero), BENCH_KEEP=1 (keep the
# temporary directory).  --quick: 1 round of 2 s, 10,000 keys.
#
# Only 127.0.0.1 is used.  Every process started here is killed by PID on
# exit.

set -u

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR}

CONNS=${BENCH_CONNS:-16}
DUR=${BENCH_DURATION:-5}
WARM=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
BTIME=${BENCH_TIME:-2}
NKEYS=${BENCH_KEYS:-100000}
for arg in "$@"; do
    case $arg in
    --quick) DUR=2; ROUNDS=1; NKEYS=10000; BTIME=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
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
loops_pid=
nv_pid=
failed=0

stop_pid() {
    # stop_pid PID: TERM, then KILL after 5 s; only our own children.
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

cleanup() {
    stop_pid "$signerd_pid"
    stop_pid "$anvil_pid"
    stop_pid "$loops_pid"
    stop_pid "$nv_pid"
    signerd_pid=
    anvil_pid=
    loops_pid=
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

# jnum FIELD < json-line: the first numeric value of "FIELD":
jnum() { sed -n "s/.*\"$1\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" | head -n 1; }
jstr() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# median of numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# A TCP port nobody listens on or uses (checked in /proc/net/tcp{,6}).
free_port() {
    n=0
    while [ $n -lt 200 ]; do
        p=$(( (($$ + n * 7919 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000) + 20000 ))
        hex=$(printf '%04X' "$p")
        if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
                awk '{ print $2 }' | grep -q ":$hex\$"; then
            echo "$p"
            return 0
        fi
        n=$((n + 1))
    done
    return 1
}

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
        --keys-dir "$tmp/keys/data" --key-ids-out "$tmp/key_ids.txt" \
        >"$tmp/bench_sign.jsonl"; then
    say "bench: bench_sign failed"
    failed=1
fi
line_a=$(grep '"secp256k1_sign_recoverable"' "$tmp/bench_sign.jsonl")
line_rec=$(grep '"secp256k1_ecdsa_recover"' "$tmp/bench_sign.jsonl")
line_bc=$(grep '"cache":"cold","keys":1,' "$tmp/bench_sign.jsonl")
line_bw=$(grep '"cache":"warm","keys":1,' "$tmp/bench_sign.jsonl")
line_bn=$(grep '"cache":"warm-noverify","keys":1,' "$tmp/bench_sign.jsonl")
line_k=$(grep '"bench":"keys"' "$tmp/bench_sign.jsonl")
A=$(echo "$line_a" | jnum ops_per_s)
REC_US=$(echo "$line_rec" | jnum us_per_op)
A_US=$(echo "$line_a" | jnum us_per_op)
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

# (c2) the same with io_loops = cores, and (c3) that with the recovery
# check off: two more signerd on the same data directory, idle while the
# others run
main_pid=$signerd_pid
MAIN_PORT=$SPORT
sed 's/verify_signatures = true;/verify_signatures = false;/' "$CONF" \
    >"$tmp/noverify.conf"
LURL= NURL=
if start_signerd "$tmp/signerd-data" "$CONF" --io-loops "$cpus"; then
    loops_pid=$signerd_pid
    LURL=http://127.0.0.1:$SPORT/
else
    failed=1
fi
if start_signerd "$tmp/signerd-data" "$tmp/noverify.conf" --io-loops "$cpus"; then
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
# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# run_bench NAME OUTFILE SERVER_PID args...: one signer-bench run; its JSON
# line goes to OUTFILE and the server's CPU time per request (µs, over the
# whole run including warm-up) to OUTFILE.cpu.
run_bench() {
    name=$1; out=$2; spid=$3; shift 3
    t0=$(cpu_ticks "$spid")
    if ! "$BENCH" --json -l "$name" "$@" >>"$out" 2>"$tmp/last.err"; then
        say "bench: $name failed:"
        sed 's/^/    /' "$tmp/last.err" | head -n 20 >&2
        failed=1
        return 1
    fi
    t1=$(cpu_ticks "$spid")
    total=$(tail -n 1 "$out" | jnum total)
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$total" -v hz="$CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n }')
    echo "$cpu" >>"$out.cpu"
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
say "bench: (c) signerd sign_transaction vs (d) anvil eth_signTransaction, -c $CONNS, ${DUR} s each"
r=1
while [ $r -le "$ROUNDS" ]; do
    run_bench "c.signerd.$r" "$tmp/c.jsonl" "$signerd_pid" --url "$SURL" -c "$CONNS" \
        -d "$DUR" -w "$WARM" --key-id "$KEY_ID" --secret "$SECRET" \
        --chain-id "$CHAIN_ID" --expect '"enclave_status":200'
    if [ -n "$LURL" ]; then
        run_bench "c2.loops.$r" "$tmp/c2.jsonl" "$loops_pid" --url "$LURL" -c "$CONNS" \
            -d "$DUR" -w "$WARM" --key-id "$KEY_ID" --secret "$SECRET" \
            --chain-id "$CHAIN_ID" --expect '"enclave_status":200'
    fi
    if [ -n "$NURL" ]; then
        run_bench "c3.noverify.$r" "$tmp/c3.jsonl" "$nv_pid" --url "$NURL" -c "$CONNS" \
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
# medians FILE: "ops/s p99 cpu" medians over the rounds in FILE, or nothing
medians() {
    [ -s "$1" ] || return 0
    printf '%s %s %s\n' \
        "$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$1" | median)" \
        "$(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$1" | median)" \
        "$(median <"$1.cpu")"
}
read -r C2 C2_P99 C2_CPU <<EOF2
$(medians "$tmp/c2.jsonl")
EOF2
read -r C3 C3_P99 C3_CPU <<EOF2
$(medians "$tmp/c3.jsonl")
EOF2
stop_pid "$loops_pid"
stop_pid "$nv_pid"
loops_pid=
nv_pid=
D= D_P50= D_P99= D_CPU=
if [ -s "$tmp/d.jsonl" ]; then
    D_CPU=$(median <"$tmp/d.jsonl.cpu")
    D=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$tmp/d.jsonl" | median)
    D_P50=$(sed -n 's/.*"p50":\([0-9]*\).*/\1/p' "$tmp/d.jsonl" | median)
    D_P99=$(sed -n 's/.*"p99":\([0-9]*\).*/\1/p' "$tmp/d.jsonl" | median)
fi
RSS1=$(rss_kib "$signerd_pid")

# ---- (c') fixed rate at half the peak ------------------------------------------------
HALF=
HALF_P99=
HALF_P50=
HALF_OPS=
if [ -n "$C" ]; then
    HALF=$(awk -v c="$C" 'BEGIN { printf "%.0f", c / 2 }')
    say "bench: (c') signerd at a fixed $HALF req/s (half the peak), -c $CONNS"
    if run_bench "c.half" "$tmp/half.jsonl" "$signerd_pid" --url "$SURL" -c "$CONNS" \
            -d "$DUR" -w "$WARM" -r "$HALF" --key-id "$KEY_ID" \
            --secret "$SECRET" --chain-id "$CHAIN_ID" \
            --expect '"enclave_status":200'; then
        HALF_P99=$(jnum p99 <"$tmp/half.jsonl")
        HALF_P50=$(jnum p50 <"$tmp/half.jsonl")
        HALF_OPS=$(jnum ops_per_s <"$tmp/half.jsonl")
    fi
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

# ---- table --------------------------------------------------------------------------
awk -v a="$A" -v a_us="$A_US" -v rec_us="$REC_US" -v cpus="$cpus" \
    -v bc="$BC" -v bw="$BW" -v bn="$BN" -v bc50="$BC_P50" -v bw50="$BW_P50" \
    -v c="$C" -v c50="$C_P50" -v c99="$C_P99" \
    -v c2="$C2" -v c2p99="$C2_P99" -v c2cpu="$C2_CPU" \
    -v c3="$C3" -v c3p99="$C3_P99" -v c3cpu="$C3_CPU" \
    -v d="$D" -v d50="$D_P50" -v d99="$D_P99" -v ccpu="$C_CPU" -v dcpu="$D_CPU" \
    -v half="$HALF" -v h50="$HALF_P50" -v h99="$HALF_P99" -v hops="$HALF_OPS" \
    -v rss1="$RSS1" -v rssn="$RSSN" -v kn="$K_N" -v kcreate="$K_CREATE" \
    -v k150="$K1_P50" -v kn50="$KN_P50" -v kr50="$KR_P50" \
    -v k199="$K1_P99" -v kn99="$KN_P99" -v kr99="$KR_P99" \
    -v e50="$E_P50" -v e99="$E_P99" -v eops="$E_OPS" \
    -v conns="$CONNS" -v dur="$DUR" -v rounds="$ROUNDS" '
function ms(us) { return us == "" ? "n/a" : sprintf("%.3f ms", us / 1000) }
function num(x, f) { return x == "" ? "n/a" : sprintf(f, x) }
function mark(ok, have) { if (!have) { nfail++; return "n/a" } if (ok) return "PASS"; nfail++; return "FAIL" }
BEGIN {
    print ""
    print "=================== enclave-signer benchmark (make bench) ==================="
    printf "%-44s %18s %9s %6s\n", "measurement", "value", "target", ""
    print "-----------------------------------------------------------------------------"
    printf "%-44s %18s\n", "(a) secp256k1 sign_recoverable, 1 core", num(a, "%.0f ops/s")
    printf "%-44s %18s\n", "    per signature / recover (self-check)", (a_us == "" ? "n/a" : sprintf("%.1f / %.1f us", a_us, rec_us))
    printf "%-44s %18s\n", "    online CPUs", cpus
    printf "%-44s %18s\n", "(b) eng_dispatch sign_transaction, cold", num(bc, "%.0f ops/s")
    printf "%-44s %18s\n", "(b) eng_dispatch sign_transaction, warm", num(bw, "%.0f ops/s")
    printf "%-44s %18s\n", "(b) same, warm, verify_signatures = false", num(bn, "%.0f ops/s")
    printf "%-44s %18s\n", "    p50 cold / warm", (bc50 == "" ? "n/a" : sprintf("%d / %d us", bc50, bw50))
    printf "%-44s %18s\n", sprintf("(c) signerd HTTP, -c %d, median of %d", conns, rounds), num(c, "%.0f ops/s")
    printf "%-44s %18s\n", "    p50 / p99", ms(c50) " / " ms(c99)
    printf "%-44s %18s\n", "    signerd CPU per request (all threads)", num(ccpu, "%.1f us")
    printf "%-44s %18s\n", sprintf("(c2) same, io_loops = %d", cpus), num(c2, "%.0f ops/s")
    printf "%-44s %18s\n", "    p99 / signerd CPU per request", ms(c2p99) " / " num(c2cpu, "%.1f us")
    printf "%-44s %18s\n", "(c3) io_loops, verify_signatures = false", num(c3, "%.0f ops/s")
    printf "%-44s %18s\n", "    p99 / signerd CPU per request", ms(c3p99) " / " num(c3cpu, "%.1f us")
    printf "%-44s %18s\n", sprintf("(d) anvil eth_signTransaction, -c %d", conns), num(d, "%.0f ops/s")
    printf "%-44s %18s\n", "    p50 / p99", ms(d50) " / " ms(d99)
    printf "%-44s %18s\n", "    anvil CPU per request (all threads)", num(dcpu, "%.1f us")
    printf "%-44s %18s %9s %6s\n", sprintf("(c%s) p99 at half peak (%s req/s)", "\047", half == "" ? "n/a" : half), ms(h99), "< 2 ms", mark(h99 != "" && h99 < 2000, h99 != "")
    printf "%-44s %18s\n", "    achieved rate / p50", num(hops, "%.0f/s") " / " ms(h50)
    printf "%-44s %18s\n", sprintf("(e) %s keys created (in-process)", kn == "" ? "n/a" : kn), num(kcreate, "%.1f s")
    printf "%-44s %18s\n", "    in-process p50 1 key / N keys / random", (k150 == "" ? "n/a" : sprintf("%d/%d/%d us", k150, kn50, kr50))
    printf "%-44s %18s\n", "    in-process p99 1 key / N keys / random", (k199 == "" ? "n/a" : sprintf("%d/%d/%d us", k199, kn99, kr99))
    printf "%-44s %18s\n", "    signerd, N keys in turn: ops/s", num(eops, "%.0f ops/s")
    printf "%-44s %18s\n", "    signerd, N keys in turn: p50 / p99", ms(e50) " / " ms(e99)
    printf "%-44s %18s\n", "    signerd RSS with 1 key (after c)", num(rss1 / 1024, "%.1f MiB")
    printf "%-44s %18s %9s %6s\n", "    signerd RSS with N keys (after e)", num(rssn == "" ? "" : rssn / 1024, "%.1f MiB"), "< 32 MiB", mark(rssn != "" && rssn < 32768, rssn != "")
    print "-----------------------------------------------------------------------------"
    printf "%-44s %18s %9s %6s\n", "(c)/(d)   signerd vs anvil", (c != "" && d > 0) ? sprintf("%.2f", c / d) : "n/a", ">= 1.5", mark(c != "" && d > 0 && c / d >= 1.5, c != "" && d > 0)
    printf "%-44s %18s\n", "(c2)/(d)  io_loops vs anvil", (c2 != "" && d > 0) ? sprintf("%.2f", c2 / d) : "n/a"
    printf "%-44s %18s\n", "(c3)/(d)  io_loops, no recovery, vs anvil", (c3 != "" && d > 0) ? sprintf("%.2f", c3 / d) : "n/a"
    printf "%-44s %18s %9s %6s\n", "(b)/(a)   dispatcher (warm) vs raw sign", (bw != "" && a > 0) ? sprintf("%.2f", bw / a) : "n/a", ">= 0.8", mark(bw != "" && a > 0 && bw / a >= 0.8, bw != "" && a > 0)
    printf "%-44s %18s\n", "(b)/(a)   same, verify_signatures = false", (bn != "" && a > 0) ? sprintf("%.2f", bn / a) : "n/a"
    printf "%-44s %18s\n", "(b)/(a)   dispatcher (cold) vs raw sign", (bc != "" && a > 0) ? sprintf("%.2f", bc / a) : "n/a"
    printf "%-44s %18s %9s\n", "(c)/(a x cores)  HTTP vs all cores raw", (c != "" && a > 0) ? sprintf("%.2f", c / (a * cpus)) : "n/a", "(info)"
    print "============================================================================="
    printf "targets: %d not met\n", nfail
    exit nfail > 0 ? 3 : 0
}'
table_rc=$?

cp "$tmp/bench_sign.jsonl" "$BUILDDIR/bench-results.jsonl" 2>/dev/null &&
    cat "$tmp/c.jsonl" "$tmp/c2.jsonl" "$tmp/c3.jsonl" "$tmp/d.jsonl" "$tmp/half.jsonl" "$tmp/e.jsonl" \
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
