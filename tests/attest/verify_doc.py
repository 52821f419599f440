#!/usr/bin/env python3
"""Third-party check of an attestation document made by the emulated NSM,
using only cbor2 and cryptography (nothing from this project):

  COSE_Sign1 shape, protected header {1: -35}, the ES384 signature over
  Sig_structure ["Signature1", protected, h'', payload] with the leaf key,
  each link of the chain leaf -> cabundle[n-1] -> ... -> cabundle[0], the
  root pinned by DER, the payload fields, PCR0, and the bound nonce,
  user_data and public_key.

Also checks the NSM requests the C encoder wrote against cbor2's encoding
of the same values (--requests DIR).  Writes the document's certificates
as PEM (--extract DIR) for an openssl CLI chain check.  Exit 0 if all
holds; prints the first failure and exits 1 otherwise.
"""
import argparse
import sys
import time

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def fail(msg):
    print("verify_doc: FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def verify_cose(doc):
    obj = cbor2.loads(doc)
    if isinstance(obj, cbor2.CBORTag):
        check(obj.tag == 18, "tag is not 18 (COSE_Sign1)")
        obj = obj.value
    check(isinstance(obj, list) and len(obj) == 4, "not a COSE_Sign1 array")
    prot, unprot, payload, sig = obj
    check(isinstance(prot, bytes) and cbor2.loads(prot) == {1: -35},
          "protected header is not {1: -35}")
    check(isinstance(unprot, dict), "unprotected header is not a map")
    check(isinstance(payload, bytes), "payload is not a byte string")
    check(isinstance(sig, bytes) and len(sig) == 96, "signature is not 96 bytes")
    return prot, payload, sig


def verify_link(cert, issuer):
    check(cert.issuer == issuer.subject, "issuer name mismatch for %s" % cert.subject)
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        fail("certificate %s not signed by %s" % (cert.subject, issuer.subject))


def verify_chain(leaf, bundle, root_der):
    check(bundle[0] == root_der, "cabundle[0] is not the pinned root")
    certs = [x509.load_der_x509_certificate(d) for d in bundle]
    verify_link(certs[0], certs[0])  # self-signed root
    chain = [x509.load_der_x509_certificate(leaf)] + certs[::-1]
    for cert, issuer in zip(chain, chain[1:]):
        verify_link(cert, issuer)
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints)
        check(bc.value.ca, "issuer %s is not a CA" % issuer.subject)
    return chain


def verify_payload(p, args):
    want = ["module_id", "digest", "timestamp", "pcrs", "certificate",
            "cabundle", "public_key", "user_data", "nonce"]
    check(sorted(p.keys()) == sorted(want), "payload keys %s" % sorted(p.keys()))
    check(isinstance(p["module_id"], str) and p["module_id"], "module_id")
    check(p["digest"] == "SHA384", "digest is not SHA384")
    age = time.time() * 1000 - p["timestamp"]
    check(isinstance(p["timestamp"], int) and -60000 < age < args.max_age_ms,
          "timestamp not fresh (%d ms old)" % age)
    pcrs = p["pcrs"]
    check(sorted(pcrs.keys()) == list(range(32)), "pcrs are not 0..31")
    check(all(isinstance(v, bytes) and len(v) == 48 for v in pcrs.values()),
          "a PCR is not 48 bytes")
    check(pcrs[0].hex() == args.pcr0.lower(), "PCR0 %s" % pcrs[0].hex())
    check(pcrs[1] == bytes(48), "PCR1 is not zero")
    check(p["nonce"] == args.nonce.encode(), "nonce")
    check(p["user_data"] == bytes.fromhex(args.user_data), "user_data")
    if args.public_key:
        check(p["public_key"] == read(args.public_key), "public_key")
        serialization.load_der_public_key(p["public_key"])


def check_requests(d):
    expect = {
        "req_get_random.cbor": cbor2.dumps("GetRandom"),
        "req_attestation_null.cbor": cbor2.dumps(
            {"Attestation": {"user_data": None, "nonce": None, "public_key": None}}),
        "req_attestation.cbor": cbor2.dumps(
            {"Attestation": {"user_data": bytes.fromhex("00ff1020"),
                             "nonce": b"nonce-0123456789",
                             "public_key": read(d + "/public_key.der")}}),
    }
    for name, want in expect.items():
        check(read(d + "/" + name) == want, "%s differs from cbor2's encoding" % name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--doc", required=True)
    ap.add_argument("--root", required=True, help="pinned root, DER")
    ap.add_argument("--pcr0", required=True)
    ap.add_argument("--nonce", required=True)
    ap.add_argument("--user-data", required=True, help="hex")
    ap.add_argument("--public-key", help="expected public_key, DER file")
    ap.add_argument("--max-age-ms", type=int, default=300000)
    ap.add_argument("--requests", help="dir with the encoded NSM requests")
    ap.add_argument("--extract", help="write leaf.pem and chain.pem here")
    args = ap.parse_args()

    prot, payload, sig = verify_cose(read(args.doc))
    p = cbor2.loads(payload)
    check(isinstance(p, dict), "payload is not a map")
    chain = verify_chain(p["certificate"], p["cabundle"], read(args.root))
    r, s = int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big")
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    leaf_key = chain[0].public_key()
    check(isinstance(leaf_key, ec.EllipticCurvePublicKey)
          and leaf_key.curve.name == "secp384r1", "leaf key is not P-384")
    try:
        leaf_key.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        fail("COSE signature does not verify")
    verify_payload(p, args)
    if args.requests:
        check_requests(args.requests)
    if args.extract:
        pem = serialization.Encoding.PEM
        with open(args.extract + "/doc_leaf.pem", "wb") as f:
            f.write(chain[0].public_bytes(pem))
        with open(args.extract + "/doc_chain.pem", "wb") as f:
            for c in chain[1:-1]:
                f.write(c.public_bytes(pem))
        with open(args.extract + "/doc_root.pem", "wb") as f:
            f.write(chain[-1].public_bytes(pem))
    print("verify_doc: OK (%d bytes, module %s, %d certificates)"
          % (len(read(args.doc)), p["module_id"], len(chain)))


if __name__ == "__main__":
    main()
