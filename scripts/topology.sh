#!/usr/bin/env bash
# The production path on one machine, on loopback (docs/gateway.md):
# dynalite (DynamoDB), the KMS stand-in (HTTPS, a test CA, a key policy
# naming the emulated PCR0), the outbound proxy (signerd role "proxy", a
# relay listener to the stand-in), two enclaves (signerd role "enclave",
# emulated NSM, frames over TCP instead of vsock, KMS reached through the
# proxy), and the gateway (HTTPS with mTLS from a freshly made test CA, keys
# in the DynamoDB table, AWS credentials from the environment forwarded to
# the enclaves).
#
#   scripts/topology.sh up     starts everything, waits for /readyz, prints
#                              NAME=value lines (GATEWAY_URL, CA_FILE, ...)
#   scripts/topology.sh down   stops every process by the PID it recorded
#   scripts/topology.sh restart NAME
#                              starts enclave1, enclave2, gateway, proxy or
#                              kms again from its config (after a kill),
#                              recording its new PID
#
# Environment:
#   TOPOLOGY_DIR      state directory (default /tmp/enclave-signer-topology)
#   SIGNER_BUILDDIR   build tree with signerd (default: build)
#   ENCLAVE_SEALER    the enclaves' sealer: "aws-kms" (default: the KMS
#                     stand-in through the proxy, with attestation) or
#                     "local" (no KMS and no proxy: one master key file
#                     shared by both enclaves).  The single switch between
#                     the two.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${SIGNER_BUILDDIR:-$src/build}
dir=${TOPOLOGY_DIR:-/tmp/enclave-signer-topology}
pids=$dir/pids
sealer=${ENCLAVE_SEALER:-aws-kms}
REGION=us-east-1
AKID=AKIDTOPOLOGYTEST
SECRET=topology/test+secret
TABLE=signer-keys
KMS_KEY_ID=11111111-2222-3333-4444-555555555555
# The gateway takes these from the environment (the first source of the
# AWS credential chain) and forwards them to the enclaves, which refuse
# credentials without an expiration: the SDKs' AWS_CREDENTIAL_EXPIRATION.
export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
export AWS_CREDENTIAL_EXPIRATION=${AWS_CREDENTIAL_EXPIRATION:-$(date -u -d '+7 days' +%Y-%m-%dT%H:%M:%SZ)}
unset AWS_SESSION_TOKEN AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_FULL_URI \
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI 2>/dev/null || true
export AWS_EC2_METADATA_DISABLED=true

say() { echo "topology: $*" >&2; }
die() { say "$*"; down; exit 1; }

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until PORT accepts connections (at most 15 s); PID must stay alive.
wait_port() {
    local port=$1 pid=$2 i
    for i in $(seq 1 150); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start NAME LOG CMD...: runs CMD in the background, records NAME=PID.
start() {
    local name=$1 log=$2
    shift 2
    "$@" > "$log" 2>&1 &
    echo "$name=$!" >> "$pids"
    echo $!
}

down() {
    [ -f "$pids" ] || return 0
    local line pid
    # Reverse order: the gateway first, dynalite last.
    for line in $(tac "$pids"); do
        pid=${line#*=}
        kill "$pid" 2>/dev/null || true
    done
    for line in $(tac "$pids"); do
        pid=${line#*=}
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$pids"
}

# The enclaves' sealer and attestation settings (ENCLAVE_SEALER).
enclave_sealer_block() {
    case $sealer in
    local) echo "sealer = { type = \"local\"; master_key_file = \"$dir/master.key\"; };" ;;
    aws-kms) cat <<EOF
sealer = { type = "aws-kms"; region = "$REGION"; kms_key_id = "$KMS_KEY_ID";
           endpoint = "tcp:127.0.0.1:$PX_PORT"; host = "kms.$REGION.amazonaws.com";
           ca_file = "$dir/kms-tls/ca.pem"; timeout_ms = "2000"; max_attempts = "2"; };
EOF
        ;;
    esac
    cat <<EOF
attestation = "emulated";
emulated_nsm = { signing_key = "$dir/pki/leaf.key"; certificate = "$dir/pki/leaf.pem";
                 cabundle = "$dir/pki/cabundle.pem"; pcrs = { pcr0 = "$PCR0"; }; };
EOF
}

start_dynalite() {
    local cli=$src/tests/gateway/node_modules/dynalite/cli.js pid
    DDB_PORT=$(free_port)
    pid=$(start dynalite "$dir/dynalite.log" node "$cli" --host 127.0.0.1 --port "$DDB_PORT" \
        --createTableMs 0 --deleteTableMs 0 --updateTableMs 0)
    wait_port "$DDB_PORT" "$pid" || die "dynalite did not start ($dir/dynalite.log)"
    DYNAMODB_URL=http://127.0.0.1:$DDB_PORT
    [ -x "$build/tests/dynamodb/ddb_tool" ] ||
        make -C "$build" tests/dynamodb/ddb_tool >/dev/null
    "$build/tests/dynamodb/ddb_tool" "$DYNAMODB_URL" "$TABLE" "$REGION" create > "$dir/create-table.json" 2> "$dir/create-table.log" ||
        die "creating the table failed: $(cat "$dir/create-table.json")"
}

# The stand-in's config: the test credentials, and one key whose policy lets
# anyone Encrypt and only an enclave attesting PCR0 Decrypt (the emulated
# NSM's documents chain to the test PKI's root).
write_kms_config() {
    cat > "$dir/kms.json" <<EOF
{"region": "$REGION",
 "credentials": [{"access_key_id": "$AKID", "secret_access_key": "$SECRET"}],
 "attestation": {"root": "$dir/pki/root.pem", "max_age_seconds": 300},
 "keys": [{"key_id": "$KMS_KEY_ID", "key_material_hex": "$(openssl rand -hex 32)",
           "aliases": ["alias/signer"],
           "policy": {"Statement": [
             {"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
             {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
              "Condition": {"StringEqualsIgnoreCase":
                {"kms:RecipientAttestation:ImageSha384": "$PCR0"}}}]}}]}
EOF
}

# Starts the stand-in over HTTPS on port $1 (0: a free one); the first start
# makes its test CA in kms-tls/, a restart reuses it and the port.
start_kms() {
    local port=$1 pid i tls
    if [ -f "$dir/kms-tls/server.pem" ]; then
        tls=(--tls-cert "$dir/kms-tls/server.pem" --tls-key "$dir/kms-tls/server.key")
    else
        tls=(--tls-dir "$dir/kms-tls")
    fi
    : > "$dir/kms.log"
    pid=$(start kms "$dir/kms.log" /usr/bin/python3 "$src/tests/kms/kms_standin.py" \
        --config "$dir/kms.json" "${tls[@]}" --port "$port" --quiet)
    for i in $(seq 1 100); do
        grep -q KMS_STANDIN_READY "$dir/kms.log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "the KMS stand-in exited ($dir/kms.log)"
        sleep 0.1
    done
    KMS_PORT=$(sed -n 's/.*KMS_STANDIN_READY port=\([0-9]*\).*/\1/p' "$dir/kms.log")
    [ -n "$KMS_PORT" ] || die "the KMS stand-in did not start ($dir/kms.log)"
    echo "$KMS_PORT" > "$dir/kms.port"
    KMS_URL=https://127.0.0.1:$KMS_PORT
}

# The outbound proxy (role "proxy", docs/proxy.md): a relay listener whose
# upstream is the stand-in, the only entry on its allowlist.
start_proxy() {
    local pid
    PX_PORT=$(free_port)
    PX_HTTP_PORT=$(free_port)
    cat > "$dir/proxy.conf" <<EOF
role = "proxy";
listen = ( { address = "127.0.0.1:$PX_PORT"; protocol = "relay";
             upstream = "127.0.0.1:$KMS_PORT"; },
           { address = "127.0.0.1:$PX_HTTP_PORT"; protocol = "http"; } );
proxy = { allowlist = ( { address = "127.0.0.1"; port = $KMS_PORT; } );
          connect_timeout_ms = 1000; };
EOF
    pid=$(start proxy "$dir/proxy.log" "$build/signerd" -c "$dir/proxy.conf" --io-loops 1)
    wait_port "$PX_PORT" "$pid" || die "the proxy did not start ($dir/proxy.log)"
}

# enclave N PORT
start_enclave() {
    local n=$1 port=$2 pid
    mkdir -p "$dir/enclave$n"
    cat > "$dir/enclave$n.conf" <<EOF
role = "enclave";
data_dir = "$dir/enclave$n";
listen = ( { address = "127.0.0.1:$port"; protocol = "frames"; } );
$(enclave_sealer_block)
keystore = { type = "none"; };
key_cache = { ttl_seconds = 60; max_entries = 1024; };
plugins = ( { name = "eth"; path = "eth.so"; } );
EOF
    pid=$(start "enclave$n" "$dir/enclave$n.log" "$build/signerd" -c "$dir/enclave$n.conf" --io-loops 2)
    wait_port "$port" "$pid" || die "enclave $n did not start ($dir/enclave$n.log)"
}

write_gateway_conf() {
    local forward=false
    [ "$sealer" = aws-kms ] && forward=true
    cat > "$dir/gateway.conf" <<EOF
role = "gateway";
data_dir = "$dir/gateway";
listen = ( { address = "127.0.0.1:$GW_PORT"; protocol = "https"; },
           { address = "127.0.0.1:$GW_HTTP_PORT"; protocol = "http"; } );
tls = { cert = "$dir/ca/server.pem"; key = "$dir/ca/server.key";
        client_ca = "$dir/ca/ca.pem"; allow = [ "CN=gateway-client" ]; };
sealer = { type = "none"; };
keystore = { type = "dynamodb"; table = "$TABLE"; region = "$REGION";
             endpoint = "$DYNAMODB_URL"; timeout_ms = "1000"; max_attempts = "2"; };
plugins = ( { name = "eth"; path = "eth.so"; } );
gateway = { enclaves = [ "127.0.0.1:$E1_PORT", "127.0.0.1:$E2_PORT" ];
            deadline_ms = 3000; reconnect_ms = 200; health_ms = 2000;
            forward_credentials = $forward; region = "$REGION"; };
EOF
}

start_gateway() {
    local pid i
    mkdir -p "$dir/gateway"
    pid=$(start gateway "$dir/gateway.log" "$build/signerd" -c "$dir/gateway.conf" --io-loops 2)
    for i in $(seq 1 150); do
        if curl -sf --cacert "$dir/ca/ca.pem" --cert "$dir/ca/client.pem" \
                --key "$dir/ca/client.key" "https://127.0.0.1:$GW_PORT/readyz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "the gateway exited ($dir/gateway.log)"
        sleep 0.1
    done
    die "the gateway did not become ready ($dir/gateway.log)"
}

up() {
    [ -x "$build/signerd" ] || { say "no $build/signerd: run scripts/build.sh"; exit 1; }
    if [ -f "$pids" ]; then down; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    : > "$pids"
    ( . "$src/tests/lib/suite.sh"; suite_prefix=topology; suite_npm_ci "$src/tests/gateway" ) >&2 ||
        die "npm ci in tests/gateway failed"
    case $sealer in local|aws-kms) ;; *) die "ENCLAVE_SEALER must be aws-kms or local" ;; esac
    "$src/tests/gateway/make_ca.sh" "$dir/ca"
    "$src/tests/attest/make_test_pki.sh" "$dir/pki" > "$dir/pki.log" 2>&1 ||
        die "tests/attest/make_test_pki.sh failed ($dir/pki.log)"
    PCR0=$(openssl rand -hex 48)
    start_dynalite
    write_kms_config
    start_kms 0
    [ "$sealer" = local ] || start_proxy
    E1_PORT=$(free_port)
    E2_PORT=$(free_port)
    start_enclave 1 "$E1_PORT"   # creates the shared master key (local sealer)
    start_enclave 2 "$E2_PORT"
    GW_PORT=$(free_port)
    GW_HTTP_PORT=$(free_port)
    write_gateway_conf
    start_gateway
    cat > "$dir/env" <<EOF
GATEWAY_URL=https://127.0.0.1:$GW_PORT/
GATEWAY_HTTP_URL=http://127.0.0.1:$GW_HTTP_PORT/
CA_FILE=$dir/ca/ca.pem
CLIENT_CERT=$dir/ca/client.pem
CLIENT_KEY=$dir/ca/client.key
KMS_URL=$KMS_URL
KMS_KEY_ID=$KMS_KEY_ID
KMS_CA_FILE=$dir/kms-tls/ca.pem
KMS_CONFIG=$dir/kms.json
DYNAMODB_URL=$DYNAMODB_URL
DYNAMODB_TABLE=$TABLE
AWS_ACCESS_KEY_ID=$AKID
AWS_SECRET_ACCESS_KEY=$SECRET
AWS_REGION=$REGION
PIDS_FILE=$pids
TOPOLOGY_DIR=$dir
ENCLAVE1=127.0.0.1:$E1_PORT
ENCLAVE2=127.0.0.1:$E2_PORT
ENCLAVE_SEALER=$sealer
PCR0=$PCR0
EOF
    cat "$dir/env"
}

restart() {
    local name=$1
    case $name in
    enclave1|enclave2|gateway|proxy) ;;
    kms)
        [ -f "$dir/kms.port" ] || { say "no $dir/kms.port: run up first"; exit 1; }
        start_kms "$(cat "$dir/kms.port")" >/dev/null
        return ;;
    *) say "restart: enclave1, enclave2, gateway, proxy or kms"; exit 64 ;;
    esac
    [ -f "$dir/$name.conf" ] || { say "no $dir/$name.conf: run up first"; exit 1; }
    start "$name" "$dir/$name.log.restart" "$build/signerd" -c "$dir/$name.conf" --io-loops 2 >/dev/null
}

case ${1:-} in
up) up ;;
down) down ;;
restart) restart "${2:-}" ;;
*) echo "usage: $0 up|down|restart NAME" >&2; exit 64 ;;
esac
