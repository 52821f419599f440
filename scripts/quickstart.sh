#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install what is missing, build,
# and start the standalone signer on 127.0.0.1:8080 (HTTP) and :8081
# (frames), keeping keys in ./data.  Ctrl-C (SIGTERM) stops it cleanly.
# Extra arguments go to signerd (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
echo "signerd: http://127.0.0.1:8080  (try: curl -s 127.0.0.1:8080/healthz)"
exec ./build/signerd -c conf/standalone.conf --data-dir "$PWD/data" "$@"
