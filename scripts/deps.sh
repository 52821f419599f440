#!/usr/bin/env bash
# Installs the Debian 12 packages enclave-signer builds and tests with, if any
# is missing.  Needs root (or sudo).  Idempotent and quiet when all is there.
# When another apt or dpkg holds its lock (unattended-upgrades, a parallel
# install), waits for it -- up to DEPS_LOCK_TIMEOUT seconds (default 600),
# saying so -- instead of failing.
#   DEPS_LOCK_FILES   the lock files to watch (default: apt's and dpkg's)
#   DEPS_WAIT_ONLY=1  only wait for the lock, then exit (for tests)
set -euo pipefail

PKGS=(build-essential autoconf automake libtool pkg-config
      libsecp256k1-dev libssl-dev libconfig-dev libcjson-dev libevent-dev libcbor-dev openssl
      libcunit1-dev libsqlite3-dev libcurl4-openssl-dev
      curl jq sqlite3 valgrind clang
      python3-cryptography python3-cbor2
      qemu-system-x86 cpio)   # the enclave image's boot test (tests/enclave)

LOCK_FILES=${DEPS_LOCK_FILES:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock
/var/lib/apt/lists/lock /var/cache/apt/archives/lock}
LOCK_TIMEOUT=${DEPS_LOCK_TIMEOUT:-600}

# 0 if a process holds a lock (fcntl or flock) on one of LOCK_FILES:
# /proc/locks names the locked inodes.
lock_held() {
    local f ino
    for f in $LOCK_FILES; do
        [ -e "$f" ] || continue
        ino=$(stat -c %i "$f") || continue
        if awk -v ino="$ino" '{ n = split($0, w, " "); for (i = 1; i <= n; i++)
                 if (w[i] ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) {
                     split(w[i], p, ":"); if (p[3] == ino) found = 1 } }
                 END { exit !found }' /proc/locks; then
            return 0
        fi
    done
    return 1
}

# Waits (bounded) until no apt/dpkg lock is held.
wait_for_lock() {
    local waited=0
    while lock_held; do
        if [ "$waited" -eq 0 ]; then
            echo "deps: another apt/dpkg holds its lock; waiting (up to ${LOCK_TIMEOUT}s)"
        fi
        if [ "$waited" -ge "$LOCK_TIMEOUT" ]; then
            echo "deps: the apt/dpkg lock is still held after ${LOCK_TIMEOUT}s; giving up" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    if [ "$waited" -gt 0 ]; then
        echo "deps: the apt/dpkg lock is free after ${waited}s"
    fi
}

if [ "${DEPS_WAIT_ONLY:-0}" = 1 ]; then
    wait_for_lock
    exit $?
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js 18+ and npm for the interop tests (ethers, anvil from npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt itself also waits for the dpkg lock that long, should another
    # apt take it between our check and its start.
    wait_for_lock
    $SUDO apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" update -qq
    wait_for_lock
    $SUDO apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi
