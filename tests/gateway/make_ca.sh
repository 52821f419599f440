#!/bin/sh
# A fresh test CA for the gateway's HTTPS listener and mTLS:
#   tests/gateway/make_ca.sh DIR
# writes ca.pem, server.pem/server.key (127.0.0.1, localhost),
# client.pem/client.key (CN=gateway-client, on the allowlist),
# other.pem/other.key (CN=other-client, same CA, not allowed) and
# rogue.pem/rogue.key (CN=gateway-client from an unrelated CA).
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
days=2
ossl() { openssl "$@" 2>/dev/null; }
key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca.key
ossl req -x509 -new -key ca.key -subj "/CN=enclave-signer test CA" -days $days \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -out ca.pem
sign() { # NAME SUBJECT EXT CA
    key "$1.key"
    ossl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    ossl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial \
        -days $days -extfile "$1.ext" -out "$1.pem"
    rm -f "$1.csr" "$1.ext"
}
sign server "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth" ca
sign client "/CN=gateway-client" "extendedKeyUsage=clientAuth" ca
sign other "/CN=other-client" "extendedKeyUsage=clientAuth" ca
key rogue-ca.key
ossl req -x509 -new -key rogue-ca.key -subj "/CN=rogue CA" -days $days \
    -addext basicConstraints=critical,CA:TRUE -out rogue-ca.pem
sign rogue "/CN=gateway-client" "extendedKeyUsage=clientAuth" rogue-ca
chmod 600 ./*.key
