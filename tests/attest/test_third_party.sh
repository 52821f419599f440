#!/usr/bin/env bash
# Third-party check of the emulated NSM: a document made by test_attest
# --dump is verified by tests/attest/verify_doc.py (Python cbor2 and
# cryptography: COSE signature, chain, PCRs, bound fields; NSM requests
# against cbor2's encoding), its certificates by `openssl verify`, and a
# copy with one flipped byte must be refused.  Skips (77) without python3
# cbor2/cryptography: scripts/deps.sh installs them.
set -uo pipefail
src=${SIGNER_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SIGNER_BUILDDIR:-$PWD}
# Debian's python3 (where python3-cbor2 installs) before any other on PATH.
py=""
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import cbor2, cryptography' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
    echo "SKIP: python3-cbor2 or python3-cryptography missing (run scripts/deps.sh)"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/signer-attest-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
pcr0=$(printf 'ab%.0s' $(seq 48))
fails=0
ok() { echo "ok: $1"; }
ko() { echo "FAIL: $1"; fails=$((fails + 1)); }

"$src/tests/attest/make_test_pki.sh" "$dir" || { echo "FAIL: test PKI"; exit 1; }
"$build/tests/unit/test_attest" --dump "$dir" "$pcr0" >/dev/null 2>"$dir/dump.err" \
    || { cat "$dir/dump.err"; echo "FAIL: dump"; exit 1; }

verify() {
    timeout 60 "$py" "$src/tests/attest/verify_doc.py" --root "$dir/root.der" \
        --pcr0 "$pcr0" --nonce nonce-0123456789 --user-data 00ff1020 \
        --public-key "$dir/public_key.der" "$@"
}

if verify --doc "$dir/doc.cbor" --requests "$dir" --extract "$dir"; then
    ok "cbor2/cryptography verify the document and the requests"
else
    ko "cbor2/cryptography verification"
fi
if openssl verify -x509_strict -CAfile "$dir/doc_root.pem" \
       -untrusted "$dir/doc_chain.pem" "$dir/doc_leaf.pem" >/dev/null \
   && cmp -s "$dir/doc_root.pem" "$dir/root.pem"; then
    ok "openssl verify: document chain to the test root"
else
    ko "openssl verify of the document chain"
fi
# The Python verifier must be able to fail: flipped payload and signature bytes.
size=$(stat -c %s "$dir/doc.cbor")
for off in 200 $((size - 10)); do
    cp "$dir/doc.cbor" "$dir/bad.cbor"
    b=$(od -An -tu1 -j "$off" -N1 "$dir/bad.cbor" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ 1 )))" |
        dd of="$dir/bad.cbor" bs=1 seek="$off" conv=notrunc status=none
    if verify --doc "$dir/bad.cbor" >/dev/null 2>&1; then
        ko "a flipped byte at $off was accepted"
    else
        ok "flipped byte at $off refused"
    fi
done
# A wrong PCR0 expectation is refused.
if verify --doc "$dir/doc.cbor" --pcr0 "$(printf 'cd%.0s' $(seq 48))" >/dev/null 2>&1; then
    ko "wrong PCR0 accepted"
else
    ok "wrong PCR0 refused"
fi
echo "third_party: $((fails == 0 ? 1 : 0)) passed, $fails failed"
[ "$fails" -eq 0 ]
