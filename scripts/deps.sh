#!/usr/bin/env bash
# Installs the Debian 12 packages enclave-signer builds and tests with, if any
# is missing.  Needs root (or sudo).  Idempotent and quiet when all is there.
set -euo pipefail

PKGS=(build-essential autoconf automake libtool pkg-config
      libsecp256k1-dev libssl-dev libconfig-dev libcjson-dev libevent-dev
      libcunit1-dev libsqlite3-dev libcurl4-openssl-dev
      curl jq sqlite3 valgrind clang
      python3-cryptography python3-cbor2
      qemu-system-x86 cpio)   # the enclave image's boot test (tests/enclave)

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
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
