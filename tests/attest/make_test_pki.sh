#!/usr/bin/env bash
# Creates the test PKI for the emulated NSM (openssl CLI), P-384 throughout,
# in DIR (created if absent).  Test-only: nothing here is ever installed.
#
# Usage: make_test_pki.sh DIR
#
# Files written to DIR:
#   root.key          root CA private key (EC P-384, PEM)
#   root.pem          root CA certificate, self-signed (PEM), CN=test-nitro-root
#   root.der          the same certificate, DER (what a verifier pins)
#   root.sha256       lowercase hex SHA-256 of root.der (the pin, one line)
#   intermediate.key  intermediate CA key (EC P-384, PEM)
#   intermediate.pem  intermediate CA certificate, signed by the root (PEM)
#   leaf.key          the emulated NSM's signing key (EC P-384, PEM):
#                     emulated_nsm.signing_key
#   leaf.pem          its certificate, signed by the intermediate (PEM):
#                     emulated_nsm.certificate
#   cabundle.pem      root.pem then intermediate.pem (root first, as in a
#                     Nitro document): emulated_nsm.cabundle
# Certificates are valid from now for 30 days.
set -euo pipefail
dir=${1:?usage: make_test_pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077

cat > ext.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF

genkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" 2>/dev/null; }
# sign SUBJECT KEY OUT ISSUER_CERT ISSUER_KEY EXTENSIONS
sign() {
    openssl req -new -key "$2" -subj "$1" -out "$3.csr"
    openssl x509 -req -in "$3.csr" -CA "$4" -CAkey "$5" \
        -set_serial "0x$(openssl rand -hex 8)" -sha384 -days 30 \
        -extfile ext.cnf -extensions "$6" -out "$3" 2>/dev/null
    rm -f "$3.csr"
}

genkey root.key
openssl req -new -x509 -key root.key -sha384 -days 30 \
    -subj "/C=US/O=enclave-signer tests/CN=test-nitro-root" \
    -config ext.cnf -extensions ca_ext -out root.pem
genkey intermediate.key
sign "/C=US/O=enclave-signer tests/CN=test-nitro-intermediate" intermediate.key \
    intermediate.pem root.pem root.key ca_ext
genkey leaf.key
sign "/C=US/O=enclave-signer tests/CN=i-test.enclave.test-nitro-leaf" leaf.key \
    leaf.pem intermediate.pem intermediate.key leaf_ext

openssl x509 -in root.pem -outform DER -out root.der
openssl dgst -sha256 -r root.der | cut -d' ' -f1 > root.sha256
cat root.pem intermediate.pem > cabundle.pem
rm -f ext.cnf
chmod 0644 ./*.pem root.der root.sha256
openssl verify -x509_strict -CAfile root.pem -untrusted intermediate.pem leaf.pem >/dev/null
