#!/usr/bin/python3
"""Makes Nitro-style attestation documents for the KMS stand-in's tests.

A document is an untagged COSE_Sign1 array [protected {1: -35}, {}, payload,
signature r||s (96 bytes)] signed ES384 by the leaf of a PKI made by
tests/kms/make_pki.sh (root -> intermediate -> leaf); the payload is the
Nitro CBOR map (module_id, digest, timestamp, pcrs, certificate, cabundle
[root, intermediate], public_key, user_data, nonce).

  make_attestation.py --pki DIR --out FILE [--pcr 0=HEX ...] [--public-key F]
      [--nonce HEX] [--user-data HEX] [--age SECONDS] [--indefinite] [--tag]
      [--corrupt-signature]

--public-key takes an RSA public or private key (PEM or DER); the document
carries its SubjectPublicKeyInfo DER.  PCRs not given are 48 zero bytes
(PCR 0-4 and 8 are always present, as on Nitro).
"""

import argparse
import os
import sys
import time

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PROTECTED = cbor2.dumps({1: -35})


def _load_pem(path):
    with open(path, "rb") as f:
        return f.read()


def load_pki(pki_dir):
    """(leaf key, leaf DER, [root DER, intermediate DER]) from make_pki.sh's DIR."""
    def der(name):
        cert = x509.load_pem_x509_certificate(_load_pem(os.path.join(pki_dir, name)))
        return cert.public_bytes(serialization.Encoding.DER)
    key = serialization.load_pem_private_key(_load_pem(os.path.join(pki_dir, "leaf.key")), None)
    return key, der("leaf.pem"), [der("root.pem"), der("inter.pem")]


def spki_of(key):
    """SubjectPublicKeyInfo DER of a public or private key object."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _encode_map(fields, indefinite_map):
    if not indefinite_map:
        return cbor2.dumps(fields)
    body = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields.items())
    return b"\xbf" + body + b"\xff"


def make_document(pki_dir, pcrs=None, public_key=None, nonce=None, user_data=None,
                  timestamp_ms=None, indefinite_map=False, tag=False,
                  corrupt_signature=False, cabundle=None):
    """Returns the COSE_Sign1 bytes of an attestation document.

    pcrs: dict index -> 48 bytes; public_key: SPKI DER bytes or None;
    cabundle: list of DER certificates replacing the PKI's [root, inter].
    """
    key, leaf, own_bundle = load_pki(pki_dir)
    cabundle = own_bundle if cabundle is None else cabundle
    all_pcrs = {i: bytes(48) for i in (0, 1, 2, 3, 4, 8)}
    all_pcrs.update(pcrs or {})
    payload = _encode_map({
        "module_id": "i-0000000000000000-enc0000000000000000",
        "digest": "SHA384",
        "timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        "pcrs": dict(sorted(all_pcrs.items())),
        "certificate": leaf,
        "cabundle": cabundle,
        "public_key": public_key,
        "user_data": user_data,
        "nonce": nonce,
    }, indefinite_map)
    to_sign = cbor2.dumps(["Signature1", PROTECTED, b"", payload])
    r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA384())))
    sig = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    if corrupt_signature:
        sig = sig[:-1] + bytes([sig[-1] ^ 1])
    doc = [PROTECTED, {}, payload, sig]
    return cbor2.dumps(cbor2.CBORTag(18, doc) if tag else doc)


def _load_key(path):
    data = _load_pem(path)
    for loader in (serialization.load_pem_public_key, serialization.load_der_public_key):
        try:
            return loader(data)
        except ValueError:
            pass
    for loader in (serialization.load_pem_private_key, serialization.load_der_private_key):
        try:
            return loader(data, None)
        except ValueError:
            pass
    raise SystemExit("make_attestation: %s is not a PEM/DER key" % path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pki", required=True, help="directory made by make_pki.sh")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pcr", action="append", default=[], metavar="N=HEX")
    ap.add_argument("--public-key")
    ap.add_argument("--nonce")
    ap.add_argument("--user-data")
    ap.add_argument("--age", type=float, default=0.0, help="seconds before now")
    ap.add_argument("--indefinite", action="store_true", help="indefinite-length payload map")
    ap.add_argument("--tag", action="store_true", help="wrap in COSE_Sign1 tag 18")
    ap.add_argument("--corrupt-signature", action="store_true")
    a = ap.parse_args(argv)
    pcrs = {}
    for item in a.pcr:
        idx, _, value = item.partition("=")
        pcrs[int(idx)] = bytes.fromhex(value)
        if len(pcrs[int(idx)]) != 48:
            raise SystemExit("make_attestation: PCR%s must be 96 hex digits" % idx)
    doc = make_document(
        a.pki, pcrs=pcrs,
        public_key=spki_of(_load_key(a.public_key)) if a.public_key else None,
        nonce=bytes.fromhex(a.nonce) if a.nonce else None,
        user_data=bytes.fromhex(a.user_data) if a.user_data else None,
        timestamp_ms=int((time.time() - a.age) * 1000),
        indefinite_map=a.indefinite, tag=a.tag, corrupt_signature=a.corrupt_signature)
    with open(a.out, "wb") as f:
        f.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
