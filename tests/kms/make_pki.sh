#!/bin/sh
# Makes a throwaway attestation PKI for the KMS stand-in's tests, laid out as
# the Nitro one is: a P-384 root CA -> an intermediate CA -> a P-384 leaf that
# signs attestation documents (ECDSA P-384 / SHA-384 everywhere).
#
#   tests/kms/make_pki.sh DIR [NAME]
#
# Writes DIR/root.pem, DIR/root.key, DIR/inter.pem, DIR/inter.key,
# DIR/leaf.pem, DIR/leaf.key (PEM).  NAME (default "test") goes into the
# subjects, so two PKIs made for a wrong-root test are told apart.
set -eu
dir=$1
name=${2:-test}
mkdir -p "$dir"
cd "$dir"
umask 077

ext=$(mktemp)
trap 'rm -f "$ext" inter.csr leaf.csr' EXIT
cat > "$ext" <<'EXT'
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT

for k in root inter leaf; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$k.key" 2>/dev/null
done
openssl req -x509 -new -key root.key -sha384 -days 3650 \
    -subj "/C=US/O=Amazon/OU=AWS/CN=$name.aws.nitro-enclaves" \
    -addext "basicConstraints=critical,CA:true" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out root.pem
openssl req -new -key inter.key -subj "/C=US/O=Amazon/OU=AWS/CN=$name.zonal.aws.nitro-enclaves" \
    -out inter.csr
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -sha384 \
    -days 3650 -extfile "$ext" -extensions ca -out inter.pem 2>/dev/null
openssl req -new -key leaf.key -subj "/C=US/O=Amazon/OU=AWS/CN=i-0000000000000000-enc0000000000000000.$name" \
    -out leaf.csr
openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -sha384 \
    -days 30 -extfile "$ext" -extensions leaf -out leaf.pem 2>/dev/null
rm -f root.srl inter.srl
openssl verify -CAfile root.pem -untrusted inter.pem leaf.pem >/dev/null
