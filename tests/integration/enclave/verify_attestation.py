#!/usr/bin/python3
"""Checks an attestation document answered by the enclave's `attestation`
frame with third-party code only (cbor2, cryptography): COSE_Sign1 ES384
signature by the leaf, the chain to the pinned test root, PCR0, a fresh
timestamp, and the caller's nonce (user_data and public_key absent).

  verify_attestation.py --doc FILE --root ROOT.der --pcr0 HEX --nonce-hex HEX
Prints "verify_attestation: OK ..." and exits 0, or the failure and 1.
"""

import argparse
import os
import sys
import time

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "attest"))
import verify_doc  # noqa: E402  (COSE shape and chain checks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--doc", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--pcr0", required=True)
    ap.add_argument("--nonce-hex", required=True)
    a = ap.parse_args()
    doc = verify_doc.read(a.doc)
    prot, payload, sig = verify_doc.verify_cose(doc)
    p = cbor2.loads(payload)
    chain = verify_doc.verify_chain(p["certificate"], p["cabundle"],
                                    verify_doc.read(a.root))
    r, s = int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big")
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    try:
        chain[0].public_key().verify(encode_dss_signature(r, s), tbs,
                                     ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        verify_doc.fail("COSE signature does not verify")
    age = time.time() * 1000 - p["timestamp"]
    verify_doc.check(-60000 < age < 60000, "timestamp not fresh")
    verify_doc.check(p["pcrs"][0].hex() == a.pcr0.lower(), "PCR0")
    verify_doc.check(p["nonce"] == bytes.fromhex(a.nonce_hex), "nonce")
    verify_doc.check(p["user_data"] is None and p["public_key"] is None,
                     "user_data and public_key must be absent")
    print("verify_attestation: OK (%d bytes, %d certificates)"
          % (len(doc), len(chain)))


if __name__ == "__main__":
    main()
