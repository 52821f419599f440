#!/bin/sh
# Renders every overlay of contrib/k8s with `kubectl kustomize` (offline)
# and validates the output strictly (tests/deploy/k8s_validate.mjs: unknown
# fields and wrong types rejected, against schemas bundled in pinned npm
# packages), plus the validator's own self-test; the validator also checks
# that the pod runs the gateway and proxy roles with configs that agree with
# the enclave image's (enclave/enclave.conf).  Then signerd --check-config
# on the signerd configs shipped: each overlay's rendered ConfigMap files
# (gateway.conf with its gateway-tls.conf, proxy.conf) and
# enclave/enclave.conf.  --check-config connects to nothing (no DynamoDB,
# vsock, KMS or DNS) and does not read the TLS files, which exist only in
# the pod.
# Exit 77 (skip) when kubectl (with kustomize) or node is missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${SIGNER_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${SIGNER_BUILDDIR:-$src/build}
if ! command -v kubectl >/dev/null 2>&1 || ! kubectl kustomize --help >/dev/null 2>&1; then
    echo "k8s: kubectl with kustomize not found; skipping (Debian 12's kubernetes-client is too old: install kubectl >= 1.27)"
    exit 77
fi
command -v node >/dev/null 2>&1 || { echo "k8s: node not found; skipping"; exit 77; }
"$here/npm_ci.sh" || { echo "k8s: 0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
for o in "$src"/contrib/k8s/overlays/*/; do
    n=$(basename "$o")
    if ! kubectl kustomize "$o" >"$tmp/$n.yaml" 2>"$tmp/$n.err"; then
        echo "FAIL kubectl kustomize $o"; cat "$tmp/$n.err"; rc=1; continue
    fi
    K8S_CONFIG_OUT=$tmp/$n.conf ENCLAVE_CONF=$src/enclave/enclave.conf \
        node "$here/k8s_validate.mjs" "$n" <"$tmp/$n.yaml" || rc=1
    last=$n
done
node "$here/k8s_validate.mjs" --self-test <"$tmp/$last.yaml" || rc=1
# The signerd configs the deployment ships must load.
if [ -x "$build/signerd" ]; then
    for conf in "$tmp"/*.conf/gateway.conf "$tmp"/*.conf/proxy.conf "$src/enclave/enclave.conf"; do
        [ -f "$conf" ] || continue
        case $conf in "$tmp"/*) name=overlay:${conf#$tmp/} ;; *) name=${conf#$src/} ;; esac
        if "$build/signerd" --check-config -c "$conf" \
               --plugin-dir "$build/plugins/.libs" >"$tmp/conf.out" 2>&1; then
            echo "ok   signerd --check-config accepts $name"
            echo "shipped-config: 1 passed, 0 failed"
        elif [ ! -e /dev/nsm ] && [ "$(grep -c '"level":"error"' "$tmp/conf.out")" = 1 ] &&
             grep -q 'cannot open the NSM device /dev/nsm' "$tmp/conf.out"; then
            # The enclave image's config: parsed and checked up to the
            # attestation device, which exists only inside a Nitro enclave
            # (the qemu boot test runs the rest of it).
            echo "ok   $name is accepted up to the NSM device (absent off Nitro)"
            echo "shipped-config: 1 passed, 0 failed"
        else
            cat "$tmp/conf.out"; echo "shipped-config: 0 passed, 1 failed ($name)"; rc=1
        fi
    done
fi
exit $rc
