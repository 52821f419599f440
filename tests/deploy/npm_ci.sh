#!/bin/sh
# Installs tests/deploy's pinned npm packages (ethers, newman, the Kubernetes
# schema packages) from package-lock.json when node_modules is missing or was
# installed from another lock file.  Quiet when nothing is to do.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lock_sum=$(cksum < "$here/package-lock.json" | tr -d ' \t')
stamp=$here/node_modules/.deploy-lock-cksum
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm not found" >&2; exit 1; }
echo "deploy tests: npm ci in $here" >&2
timeout 600 npm ci --prefix "$here" --no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=error >/dev/null
echo "$lock_sum" >"$stamp"
