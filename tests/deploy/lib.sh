# Shared by tests/deploy/*.sh: a standalone signerd on a free loopback port
# with a fresh data directory, or the whole production path on loopback
# (scripts/topology.sh), stopped by PID on exit.
#   . tests/deploy/lib.sh; start_signerd; ... "$SIGNER_URL" ...
#   . tests/deploy/lib.sh; start_topology; ... "$GATEWAY_URL" ...
here=${here:-$(cd "$(dirname "$0")" && pwd)}
src=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${SIGNER_BUILDDIR:-$src/build}
PIDS=
tmp=$(mktemp -d /tmp/deploy-test.XXXXXX)
TOPO_STARTED=
cleanup() {
    if [ -n "$TOPO_STARTED" ]; then
        TOPOLOGY_DIR=$TOPO_STARTED "$src/scripts/topology.sh" down >/dev/null 2>&1
    fi
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts signerd (conf/standalone.conf) on a free port; sets SIGNER_URL.
start_signerd() {
    port=$(free_port)
    "$build/signerd" -c "$src/conf/standalone.conf" --listen "127.0.0.1:$port" \
        --data-dir "$tmp/data" --plugin-dir "$build/plugins/.libs" --log-level warn \
        >"$tmp/signerd.log" 2>&1 &
    PIDS="$PIDS $!"
    SIGNER_URL=http://127.0.0.1:$port
    i=0
    until curl -sf "$SIGNER_URL/readyz" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then echo "signerd did not start:"; cat "$tmp/signerd.log"; return 1; fi
        sleep 0.1
    done
}

# Sets GATEWAY_URL (https, mTLS; without its trailing "/"), GATEWAY_HTTP_URL
# (plain HTTP on loopback, no trailing "/"), CA_FILE, CLIENT_CERT,
# CLIENT_KEY, TOPOLOGY_DIR, ENCLAVE1, ENCLAVE2, DYNAMODB_URL and
# TOPO_AWS_{ACCESS_KEY_ID,SECRET_ACCESS_KEY,REGION} from the NAME=value
# lines of `scripts/topology.sh up`.  Reuses
# the topology whose lines are in the file DEPLOY_TOPOLOGY_ENV (one started
# by tests/deploy/run.sh for several scripts); else starts one in $tmp,
# stopped on exit.
start_topology() {
    env_file=${DEPLOY_TOPOLOGY_ENV:-}
    if [ -z "$env_file" ] || [ ! -s "$env_file" ]; then
        env_file=$tmp/topology.env
        TOPO_STARTED=$tmp/topology
        if ! TOPOLOGY_DIR=$TOPO_STARTED SIGNER_BUILDDIR=$build \
                "$src/scripts/topology.sh" up >"$env_file" 2>"$tmp/topology.err"; then
            echo "scripts/topology.sh up failed:"; tail -20 "$tmp/topology.err"; return 1
        fi
    fi
    while IFS='=' read -r k v; do
        case $k in
        GATEWAY_URL|GATEWAY_HTTP_URL) eval "$k=\${v%/}" ;;
        CA_FILE|CLIENT_CERT|CLIENT_KEY|TOPOLOGY_DIR|ENCLAVE1|ENCLAVE2|DYNAMODB_URL) eval "$k=\$v" ;;
        AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_REGION) eval "TOPO_$k=\$v" ;;
        esac
    done <"$env_file"
    [ -n "${GATEWAY_URL:-}" ] && [ -n "${GATEWAY_HTTP_URL:-}" ] && [ -n "${CLIENT_KEY:-}" ] ||
        { echo "no GATEWAY_URL, GATEWAY_HTTP_URL, CA_FILE, CLIENT_CERT, CLIENT_KEY in $env_file"; return 1; }
}

# gateway_metric NAME_WITH_LABELS [BASE_URL]: its value in the gateway's
# /metrics (BASE_URL default GATEWAY_HTTP_URL; 0 if absent).
gateway_metric() {
    curl -sf "${2:-$GATEWAY_HTTP_URL}/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
