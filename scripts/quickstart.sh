#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install what is missing, build,
# and start the standalone signer on the addresses conf/standalone.conf
# names (127.0.0.1:8080 HTTP and :8081 frames), keeping keys in ./data.
# Ctrl-C (SIGTERM) stops it cleanly.  Extra arguments go to signerd (e.g.
# --listen 127.0.0.1:9000); the banner shows the addresses it will use.
#   QUICKSTART_SIGNERD=PATH   use that signerd, skip installing and building
#   QUICKSTART_DRY_RUN=1      print the banner and exit (for tests)
set -euo pipefail
cd "$(dirname "$0")/.."
signerd=${QUICKSTART_SIGNERD:-}
if [ -z "$signerd" ]; then
    ./scripts/deps.sh
    ./scripts/build.sh
    signerd=./build/signerd
fi
args=(-c conf/standalone.conf --data-dir "$PWD/data" "$@")

# The listeners as signerd resolves them (config plus --listen), from
# --check-config, which creates nothing.
banner() {
    local report proto addr
    report=$("$signerd" "${args[@]}" --check-config 2>/dev/null) || return 0
    while read -r proto addr; do
        case "$proto:$addr" in
        http:unix:*) echo "signerd: HTTP on ${addr}  (try: curl -s --unix-socket ${addr#unix:} http://localhost/healthz)" ;;
        http:*)      echo "signerd: http://${addr}  (try: curl -s ${addr}/healthz)" ;;
        *)           echo "signerd: frames on ${addr}" ;;
        esac
    done < <(sed -n 's/^listen: //p' <<<"$report")
}
banner
[ "${QUICKSTART_DRY_RUN:-0}" = 1 ] && exit 0
exec "$signerd" "${args[@]}"
