#!/usr/bin/env bash
# The helper scripts: quickstart's banner shows the addresses signerd will
# really listen on (config or --listen), and deps.sh waits for an apt/dpkg
# lock held by another process (bounded) instead of failing.
set -uo pipefail
src=${SIGNER_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SIGNER_BUILDDIR:-$src/build}
fails=0
tmp=$(mktemp -d /tmp/signer-test-XXXXXX)
holder=""
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

check() { # $1 = description, then the command
    local what=$1; shift
    if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

# ---- quickstart banner ----------------------------------------------------
qs() {
    QUICKSTART_SIGNERD="$build/signerd" QUICKSTART_DRY_RUN=1 \
        "$src/scripts/quickstart.sh" --plugin-dir "$build/plugins/.libs" "$@"
}
had_data=0; [ -e "$src/data" ] && had_data=1
out=$(qs)
check "default banner names the configured HTTP address" grep -q 'http://127.0.0.1:8080' <<<"$out"
check "default banner names the configured frames address" grep -q 'frames on 127.0.0.1:8081' <<<"$out"
out=$(qs --listen 127.0.0.1:9555 --listen frames=unix:$tmp/f.sock)
check "--listen: banner names 127.0.0.1:9555" grep -q 'http://127.0.0.1:9555' <<<"$out"
check "--listen: banner names the unix frames socket" grep -q "frames on unix:$tmp/f.sock" <<<"$out"
check "--listen: banner no longer claims 8080" bash -c '! grep -q 8080 <<<"$1"' _ "$out"
if [ "$had_data" -eq 0 ]; then
    check "quickstart's banner created no data dir" test ! -e "$src/data"
fi

# ---- deps.sh and a held dpkg lock --------------------------------------------
lock=$tmp/lock-frontend
: >"$lock"
flock "$lock" sleep 3 &
holder=$!
for _ in $(seq 50); do grep -q " $(stat -c %i "$lock") " <(sed 's/:/ /g' /proc/locks) && break; sleep 0.1; done
start=$SECONDS
out=$(DEPS_LOCK_FILES=$lock DEPS_WAIT_ONLY=1 "$src/scripts/deps.sh" 2>&1); rc=$?
check "deps.sh waits for the lock, then succeeds" test "$rc" -eq 0
check "deps.sh said it was waiting" grep -q 'waiting' <<<"$out"
check "deps.sh waited until the holder let go" test $((SECONDS - start)) -ge 1
wait "$holder" 2>/dev/null; holder=""
flock "$lock" sleep 5 &
holder=$!
for _ in $(seq 50); do grep -q " $(stat -c %i "$lock") " <(sed 's/:/ /g' /proc/locks) && break; sleep 0.1; done
out=$(DEPS_LOCK_FILES=$lock DEPS_LOCK_TIMEOUT=1 DEPS_WAIT_ONLY=1 "$src/scripts/deps.sh" 2>&1); rc=$?
check "deps.sh gives up after DEPS_LOCK_TIMEOUT" test "$rc" -ne 0
check "deps.sh says why it gave up" grep -q 'giving up' <<<"$out"

[ "$fails" -eq 0 ]
