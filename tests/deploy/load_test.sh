#!/bin/sh
# scripts/load_test.sh, short runs (LOAD_RUNNERS x LOAD_ROUNDS, default
# 4 x 10):
#  - against scripts/topology.sh's gateway over HTTPS with mTLS (CA_FILE,
#    CLIENT_CERT, CLIENT_KEY from the topology): no errors, and the printed
#    figures are real -- key, tx and userop counts equal what the gateway's
#    /metrics counted as 200 answers during the run, throughput equals
#    signatures / duration, p50 <= p95 <= p99 <= max;
#  - the same URL without the client certificate: every request fails,
#    non-zero exit;
#  - against a standalone signerd over plain HTTP: no errors;
#  - against a port where nothing listens: errors, non-zero exit;
#  - bad arguments and unreadable TLS files: exit 2.
# The topology is reused from DEPLOY_TOPOLOGY_ENV when set (tests/deploy/
# run.sh), else started here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }
r=${LOAD_RUNNERS:-4} n=${LOAD_ROUNDS:-10}
load="$src/scripts/load_test.sh"

# The 200 answers the gateway counted per operation, "key tx userop".
counted() {
    echo "$(gateway_metric 'signer_gateway_request_seconds_count{operation="generate_key",status="200"}')" \
         "$(gateway_metric 'signer_gateway_request_seconds_count{operation="sign_transaction",status="200"}')" \
         "$(gateway_metric 'signer_gateway_request_seconds_count{operation="sign_userop",status="200"}')"
}

# Checks report $1 of a run of r runners x n rounds: counts as expected,
# the "n=" of each kind, throughput = signatures / duration, ordered
# percentiles.  Prints what is wrong; returns non-zero then.
check_report() {
    awk -v r="$r" -v n="$n" '
        /^duration:/ { dur = $2 }
        /^requests:/ { line = $0 }
        /^throughput:/ { tput = $2 }
        /^(key|tx|userop|all) +n=/ {
            k = $1; c = $2; sub(/n=/, "", c); count[k] = c
            if (!($4 > 0 && $4 <= $7 && $7 <= $10 && $10 <= $13)) bad = bad " " k ":percentiles"
        }
        END {
            want = sprintf("requests: %d (keys %d, signatures %d), errors: 0", r + 2 * r * n, r, 2 * r * n)
            if (line != want) bad = bad " requests-line"
            if (count["key"] != r || count["tx"] != r * n || count["userop"] != r * n || count["all"] != 2 * r * n)
                bad = bad " n="
            # duration is printed to 1 ms, throughput to 0.1/s
            if (dur <= 0.001 || tput < 2 * r * n / (dur + 0.0005) - 0.05 || tput > 2 * r * n / (dur - 0.0005) + 0.05)
                bad = bad " throughput"
            if (bad != "") { print "wrong:" bad; exit 1 }
        }' "$1"
}

# 1. The topology's gateway, HTTPS with mTLS.
if start_topology; then
    before=$(counted)
    if CA_FILE=$CA_FILE CLIENT_CERT=$CLIENT_CERT CLIENT_KEY=$CLIENT_KEY \
           "$load" "$r" "$n" "$GATEWAY_URL" >"$tmp/topo" 2>&1; then
        cat "$tmp/topo"
        if why=$(check_report "$tmp/topo"); then
            ok "gateway (HTTPS, mTLS): $r runners x $n rounds, $((2 * r * n)) signatures, no errors, consistent figures"
        else
            ko "gateway report $why"
        fi
        after=$(counted)
        delta=$(echo "$before $after" | awk '{ print $4 - $1, $5 - $2, $6 - $3 }')
        [ "$delta" = "$r $((r * n)) $((r * n))" ] &&
            ok "the gateway counted the same: keys, tx, userop = $delta" ||
            ko "the gateway counted keys, tx, userop = $delta, the load test $r $((r * n)) $((r * n))"
    else
        cat "$tmp/topo"; ko "load test against the gateway failed"
    fi
    if CA_FILE=$CA_FILE CLIENT_CERT= CLIENT_KEY= "$load" 2 1 "$GATEWAY_URL" >"$tmp/nocert" 2>&1; then
        ko "the gateway answered a load test without a client certificate"
    else
        grep -q 'errors: 2' "$tmp/nocert" && grep -q 'certificate required' "$tmp/nocert" &&
            ok "no client certificate: refused in the handshake, errors reported, non-zero exit" ||
            { cat "$tmp/nocert"; ko "wrong report without a client certificate"; }
    fi
else
    ko "scripts/topology.sh up"
fi

# 2. A standalone signer, plain HTTP.
if start_signerd && "$load" "$r" "$n" "$SIGNER_URL" >"$tmp/out" 2>&1; then
    cat "$tmp/out"
    why=$(check_report "$tmp/out") && ok "standalone (HTTP): $r runners x $n rounds, $((2 * r * n)) signatures, no errors" \
        || ko "standalone report $why"
else
    cat "$tmp/out" 2>/dev/null; ko "load test against a standalone signerd failed"
fi

# 3. Failures.
dead=$(free_port)
if "$load" 2 2 "http://127.0.0.1:$dead" >"$tmp/dead" 2>&1; then
    ko "a load test against a closed port succeeded"
else
    grep -q 'errors: 2' "$tmp/dead" && ok "nothing listening: errors reported, non-zero exit" || { cat "$tmp/dead"; ko "wrong report for a closed port"; }
fi
"$load" x 2 >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad arguments: exit 2" || ko "bad arguments not refused"
CA_FILE=$tmp/missing.pem "$load" 1 1 https://127.0.0.1:1/ >"$tmp/noca" 2>&1
[ $? -eq 2 ] && grep -q 'CA_FILE' "$tmp/noca" && ok "unreadable CA_FILE: exit 2, named" || ko "unreadable CA_FILE not refused"
"$load" --help | grep -q CLIENT_CERT && ok "--help documents CA_FILE, CLIENT_CERT, CLIENT_KEY" || ko "--help"
echo "load-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
