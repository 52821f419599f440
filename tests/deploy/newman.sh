#!/bin/sh
# Runs the Postman collection (contrib/postman) with newman (pinned in
# tests/deploy/package-lock.json) against scripts/topology.sh (gateway with
# HTTPS and mTLS, two enclaves, KMS stand-in through the proxy, dynalite):
#  1. every folder, twice, over HTTPS with the topology's client certificate
#     and CA: every assertion passes, every answer has assertions, and the
#     gateway counted the keys it stored (the requests went through it);
#  2. the integration folder without a client certificate: no answer at all
#     (the TLS handshake is refused) -- mTLS is really required;
#  3. auth_mode=sigv4 through tests/deploy/sigv4_gateway.py (an API Gateway
#     stand-in that verifies SigV4) in front of the gateway's loopback HTTP
#     listener: every assertion passes;
#  4. the same with a wrong secret access key: refused (403), so the
#     collection's assertions fail -- the stand-in really checks.
# The topology is reused from DEPLOY_TOPOLOGY_ENV when set (tests/deploy/
# run.sh), else started here.  NEWMAN_DOUBLE_SLASH=1 also runs (1) with the
# reference's base URL ending in "/" (requests to //key/...): signerd's
# router does not collapse doubled slashes yet, so this is off by default.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
coll=$src/contrib/postman/enclave-signer.postman_collection.json
"$here/npm_ci.sh" || { echo "newman: 0 passed, 1 failed"; exit 1; }
newman=$here/node_modules/.bin/newman
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }

run() { # $1 = label, then newman options; prints assertion counts
    label=$1; shift
    "$newman" run "$coll" --reporters json --reporter-json-export "$tmp/$label.json" \
        --timeout-request 10000 "$@" >"$tmp/$label.out" 2>&1
    rc=$?
    total=$(jq '.run.stats.assertions.total' "$tmp/$label.json" 2>/dev/null || echo 0)
    bad=$(jq '.run.stats.assertions.failed' "$tmp/$label.json" 2>/dev/null || echo 0)
    reqs=$(jq '.run.stats.requests.total' "$tmp/$label.json" 2>/dev/null || echo 0)
    echo "$label: $reqs requests, $total assertions, $bad failed (newman exit $rc)"
    [ "$rc" -eq 0 ] && [ "${bad:-1}" -eq 0 ] && [ "${total:-0}" -gt 0 ]
}
failures() { jq -r '.run.failures[] | "  \(.source.name): \(.error.test // .error.message)"' "$tmp/$1.json" 2>/dev/null | head -20; }
# Requests of run $1 whose answer no assertion checked.
unchecked() { jq -r '[.run.executions[] | select((.assertions // []) | length == 0) | .item.name] | join(", ")' "$tmp/$1.json"; }

start_topology || { echo "newman: 0 passed, 1 failed"; exit 1; }
tls="--ssl-extra-ca-certs $CA_FILE --ssl-client-cert $CLIENT_CERT --ssl-client-key $CLIENT_KEY"

# 1. Every folder over HTTPS with mTLS.
stored0=$(gateway_metric signer_gateway_keys_stored_total)
if run mtls --env-var "base_url=$GATEWAY_URL" $tls -n 2; then
    ok "every folder through the gateway (HTTPS, mTLS), 2 iterations"
    none=$(unchecked mtls)
    [ -z "$none" ] && ok "every answer has assertions" || ko "answers without assertions: $none"
    # Keys the collection created: 200 answers to POST /key and generate/set.
    made=$(jq '[.run.executions[] | select(.response.code == 200 and
               ((.request.url.path | join("/")) as $p | $p == "key" or $p == "key/import" or
                ((.request.body.raw // "") | test("\"operation\" *: *\"(generate_key|set_key|ethereum-key-generator_generate_key|ethereum-signer_set_key)\"")))) ] | length' \
           "$tmp/mtls.json")
    stored=$(( $(gateway_metric signer_gateway_keys_stored_total) - stored0 ))
    [ "$made" -gt 0 ] && [ "$stored" -eq "$made" ] &&
        ok "the gateway stored the $made keys the collection created" ||
        ko "keys created $made, stored by the gateway $stored"
else
    ko "the collection through the gateway (HTTPS, mTLS)"; failures mtls
fi
if [ "${NEWMAN_DOUBLE_SLASH:-0}" = 1 ]; then
    run slash --env-var "base_url=$GATEWAY_URL/" $tls && ok "base URL ending in /" || { ko "base URL ending in /"; failures slash; }
fi

# 2. No client certificate: the handshake is refused, nothing is answered.
run nocert --env-var "base_url=$GATEWAY_URL" --ssl-extra-ca-certs "$CA_FILE" --folder integration
codes=$(jq -r '[.run.executions[] | .response.code // "none"] | unique | join(",")' "$tmp/nocert.json" 2>/dev/null)
errs=$(jq '[.run.failures[] | select(.error.name != "AssertionError")] | length' "$tmp/nocert.json" 2>/dev/null || echo 0)
[ "$codes" = none ] && [ "${errs:-0}" -gt 0 ] &&
    ok "no client certificate: every request refused before HTTP ($errs errors)" ||
    ko "no client certificate: answers $codes"

# 3, 4. SigV4 through the API Gateway stand-in.
gport=$(free_port)
python3 "$here/sigv4_gateway.py" "$gport" "${GATEWAY_HTTP_URL##*:}" AKIDEXAMPLE0000TEST \
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" eu-west-1 >"$tmp/gw.out" 2>"$tmp/gw.err" &
PIDS="$PIDS $!"
i=0; until grep -q ready "$tmp/gw.out" 2>/dev/null || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
sig="--env-var auth_mode=sigv4 --env-var aws_access_key_id=AKIDEXAMPLE0000TEST --env-var aws_region=eu-west-1"
if run sigv4 --env-var "base_url=http://127.0.0.1:$gport" $sig \
       --env-var "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"; then
    ok "auth_mode=sigv4 through a SigV4-verifying stand-in"
else
    ko "auth_mode=sigv4"; failures sigv4
fi
if run sigv4-wrong --env-var "base_url=http://127.0.0.1:$gport" $sig --folder integration \
       --env-var "aws_secret_access_key=not-the-secret"; then
    ko "the SigV4 stand-in accepted a wrong signature"
else
    codes=$(jq -r '[.run.executions[].response.code] | unique | join(",")' "$tmp/sigv4-wrong.json")
    [ "$codes" = 403 ] && ok "wrong SigV4 key: every request refused (403)" || ko "wrong SigV4 key: answers $codes"
fi
echo "newman: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
