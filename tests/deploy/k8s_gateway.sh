#!/bin/sh
# The prod overlay's gateway config, run (not only --check-config'd): renders
# contrib/k8s/overlays/prod, takes its ConfigMap's gateway.conf and
# gateway-tls.conf (tests/deploy/k8s_validate.mjs writes them out) and
# starts signerd with them next to scripts/topology.sh, changing only what
# names the pod's surroundings:
#   0.0.0.0:8443, 0.0.0.0:8080     -> free loopback ports
#   the Secrets' files             -> the topology's test CA (server
#                                     certificate, client CA)
#   the enclave vsock:16:5000      -> the topology's two enclaves (TCP)
#   the DynamoDB regional endpoint -> dynalite (keystore.endpoint added;
#                                     the table name kept, created here)
# Role, mTLS, keystore, forwarded credentials, limits, plugins and aliases
# are the shipped ones.  Through it over HTTPS with the client certificate:
# the Postman integration folder (every assertion) and a short load test
# (no errors, every key stored); without a certificate: refused; on the
# plain-HTTP probe port: no operation (404), only probes and metrics.
# Exit 77 (skip) without kubectl.  Reuses DEPLOY_TOPOLOGY_ENV (run.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1 ||
    { echo "k8s-gateway: no kubectl with kustomize; skipping"; exit 77; }
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
ko() { failed=$((failed + 1)); echo "FAIL $*"; }
fail_all() { echo "FAIL $*"; echo "k8s-gateway: 0 passed, 1 failed"; exit 1; }
"$here/npm_ci.sh" || fail_all "npm ci"
start_topology || fail_all "scripts/topology.sh up"

# The rendered prod configs.
conf=$tmp/k8s-conf
kubectl kustomize "$src/contrib/k8s/overlays/prod" >"$tmp/prod.yaml" 2>"$tmp/prod.err" || fail_all "kubectl kustomize: $(cat "$tmp/prod.err")"
K8S_CONFIG_OUT=$conf node "$here/k8s_validate.mjs" prod <"$tmp/prod.yaml" >"$tmp/validate.out" 2>&1
[ -f "$conf/gateway.conf" ] && [ -f "$conf/gateway-tls.conf" ] || fail_all "no gateway.conf in the rendered ConfigMap"

# Only the pod's surroundings change; each edit must have hit.
hp=$(free_port) pp=$(free_port) ca=$TOPOLOGY_DIR/ca
sed -e "s|\"0.0.0.0:8443\"|\"127.0.0.1:$hp\"|" -e "s|\"0.0.0.0:8080\"|\"127.0.0.1:$pp\"|" \
    -e "s|\"vsock:16:5000\"|\"$ENCLAVE1\", \"$ENCLAVE2\"|" \
    -e "s|type = \"dynamodb\";|type = \"dynamodb\"; endpoint = \"$DYNAMODB_URL\";|" \
    "$conf/gateway.conf" >"$conf/gateway.run.conf"
sed -e "s|/etc/enclave-signer-tls/tls.crt|$ca/server.pem|" -e "s|/etc/enclave-signer-tls/tls.key|$ca/server.key|" \
    -e "s|/etc/enclave-signer-client-ca/ca.crt|$ca/ca.pem|" "$conf/gateway-tls.conf" >"$conf/gateway-tls.run.conf"
sed -i 's|@include "gateway-tls.conf"|@include "gateway-tls.run.conf"|' "$conf/gateway.run.conf"
if grep -v '^ *#' "$conf/gateway.run.conf" "$conf/gateway-tls.run.conf" | grep -E '0\.0\.0\.0|vsock:|/etc/enclave-signer' ||
   ! grep -q "endpoint = \"$DYNAMODB_URL\"" "$conf/gateway.run.conf" || ! grep -q client_ca "$conf/gateway-tls.run.conf"; then
    fail_all "rewriting the rendered config for loopback"
fi
table=$(sed -n 's/^ *table = "\([^"]*\)";.*/\1/p' "$conf/gateway.conf")
region=$(sed -n 's/^ *region = "\([^"]*\)";.*/\1/p' "$conf/gateway.conf" | head -1)
[ "$region" = "$TOPO_AWS_REGION" ] || fail_all "the config's region $region is not the topology's $TOPO_AWS_REGION"
export AWS_ACCESS_KEY_ID=$TOPO_AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$TOPO_AWS_SECRET_ACCESS_KEY \
    AWS_REGION=$TOPO_AWS_REGION AWS_EC2_METADATA_DISABLED=true
export AWS_CREDENTIAL_EXPIRATION=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
unset AWS_SESSION_TOKEN AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN 2>/dev/null || true
"$build/tests/dynamodb/ddb_tool" "$DYNAMODB_URL" "$table" "$region" create >"$tmp/table.out" 2>&1 ||
    fail_all "creating table $table: $(cat "$tmp/table.out")"

"$build/signerd" -c "$conf/gateway.run.conf" --data-dir "$tmp/gwdata" \
    --plugin-dir "$build/plugins/.libs" >"$tmp/gateway.log" 2>&1 &
gpid=$!
PIDS="$PIDS $gpid"
url=https://127.0.0.1:$hp plain=http://127.0.0.1:$pp
i=0
until curl -sf "$plain/readyz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 150 ] || ! kill -0 "$gpid" 2>/dev/null; then
        tail -20 "$tmp/gateway.log"; fail_all "the prod gateway config did not become ready"
    fi
    sleep 0.1
done
ok "the prod overlay's gateway.conf runs: role gateway, ready (enclaves up, DynamoDB table $table)"

stored0=$(gateway_metric signer_gateway_keys_stored_total "$plain")
newman=$here/node_modules/.bin/newman
"$newman" run "$src/contrib/postman/enclave-signer.postman_collection.json" --folder integration \
    --env-var "base_url=$url" --ssl-extra-ca-certs "$CA_FILE" --ssl-client-cert "$CLIENT_CERT" \
    --ssl-client-key "$CLIENT_KEY" --reporters json --reporter-json-export "$tmp/n.json" >"$tmp/n.out" 2>&1
total=$(jq '.run.stats.assertions.total' "$tmp/n.json" 2>/dev/null || echo 0)
bad=$(jq '.run.stats.assertions.failed' "$tmp/n.json" 2>/dev/null || echo 1)
[ "${total:-0}" -gt 0 ] && [ "${bad:-1}" -eq 0 ] && ok "Postman integration folder over mTLS: $total assertions" ||
    { jq -r '.run.failures[] | "  \(.source.name): \(.error.test // .error.message)"' "$tmp/n.json" 2>/dev/null | head; ko "Postman integration folder: $bad of $total failed"; }
if CA_FILE=$CA_FILE CLIENT_CERT=$CLIENT_CERT CLIENT_KEY=$CLIENT_KEY "$src/scripts/load_test.sh" 2 3 "$url" >"$tmp/load" 2>&1 &&
   grep -q 'signatures 12), errors: 0' "$tmp/load"; then
    ok "load test 2 x 3 over mTLS: 12 signatures, no errors"
else
    cat "$tmp/load"; ko "load test through the prod gateway config"
fi
# The plain-HTTP probe port (a "health" listener) serves no operation.
code=$(curl -s -o "$tmp/probe.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"operation":"generate_key","payload":{"secret":"probe-port-0123456789"}}' "$plain/")
rest=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"secret":"probe-port-0123456789"}' "$plain/key")
[ "$code" = 404 ] && [ "$rest" = 404 ] && grep -q 'serves only GET /healthz' "$tmp/probe.out" &&
    ok "the probe port $pp answers no operation (404 for the envelope and POST /key)" ||
    ko "the probe port answered an operation: $code / $rest $(cat "$tmp/probe.out")"
stored=$(( $(gateway_metric signer_gateway_keys_stored_total "$plain") - stored0 ))
# The integration folder creates 4 keys, the load test 2.
[ "$stored" -eq 6 ] && ok "6 keys stored in table $table" || ko "keys stored: $stored, expected 6"
if curl -s -o /dev/null --cacert "$CA_FILE" "$url/healthz"; then
    ko "a client without a certificate got an answer"
else
    ok "no client certificate: refused in the handshake"
fi
echo "k8s-gateway: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
