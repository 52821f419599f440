# Shared by tests/deploy/*.sh: a standalone signerd on a free loopback port
# with a fresh data directory, stopped by PID on exit.
#   . tests/deploy/lib.sh; start_signerd; ... "$SIGNER_URL" ...
here=${here:-$(cd "$(dirname "$0")" && pwd)}
src=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${SIGNER_BUILDDIR:-$src/build}
PIDS=
tmp=$(mktemp -d /tmp/deploy-test.XXXXXX)
cleanup() {
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
