"""Attestation document verification for the KMS stand-in (test-only).

What KMS checks before it honours a Recipient: the COSE_Sign1 ES384
signature with the leaf certificate, the chain leaf -> cabundle[n-1] -> ...
-> cabundle[0] ending at the pinned root (byte-equal DER), certificate
validity and CA flags, freshness of the document's timestamp, and an RSA-2048
public_key.  Signatures are checked with python3-cryptography; only the chain
walk (issuer name, CA flag, validity) is written here, because version 38 of
that library has no X.509 path validation.
"""

import datetime
import time

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class AttestationError(Exception):
    """The document is refused; the message names the cause."""


def _decode_cose(doc):
    try:
        obj = cbor2.loads(doc)
    except Exception as e:  # cbor2 raises several types on bad input
        raise AttestationError("not CBOR: %s" % e) from None
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != 18:
            raise AttestationError("unexpected CBOR tag %d" % obj.tag)
        obj = obj.value
    if not (isinstance(obj, list) and len(obj) == 4 and isinstance(obj[0], bytes)
            and isinstance(obj[2], bytes) and isinstance(obj[3], bytes)):
        raise AttestationError("not a COSE_Sign1 array")
    try:
        protected = cbor2.loads(obj[0]) if obj[0] else {}
    except Exception:
        raise AttestationError("protected header is not CBOR") from None
    if not isinstance(protected, dict) or protected.get(1) != -35:
        raise AttestationError("COSE algorithm is not ES384")
    return obj[0], obj[2], obj[3]


def _parse_payload(payload):
    try:
        p = cbor2.loads(payload)
    except Exception:
        raise AttestationError("payload is not CBOR") from None
    if not isinstance(p, dict):
        raise AttestationError("payload is not a map")
    for field, kind in (("module_id", str), ("digest", str), ("timestamp", int),
                        ("pcrs", dict), ("certificate", bytes), ("cabundle", list)):
        if not isinstance(p.get(field), kind):
            raise AttestationError("payload field %s missing or of the wrong type" % field)
    if p["digest"] != "SHA384":
        raise AttestationError("digest is not SHA384")
    for idx, value in p["pcrs"].items():
        if not isinstance(idx, int) or not isinstance(value, bytes) or len(value) != 48:
            raise AttestationError("pcrs must map indexes to 48-byte values")
    return p


def _cert(der, what):
    try:
        return x509.load_der_x509_certificate(der)
    except Exception:
        raise AttestationError("%s is not a DER certificate" % what) from None


def _check_signed_by(cert, issuer, what):
    if cert.issuer != issuer.subject:
        raise AttestationError("%s is not issued by the next certificate" % what)
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise AttestationError("issuer of %s is not a CA" % what)
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AttestationError("issuer of %s has no EC key" % what)
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes,
                   ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        raise AttestationError("signature on %s does not verify" % what) from None


def _check_chain(leaf_der, cabundle, root_der, now):
    if not cabundle or not all(isinstance(c, bytes) for c in cabundle):
        raise AttestationError("cabundle is empty or malformed")
    if cabundle[0] != root_der:
        raise AttestationError("cabundle does not start at the pinned root")
    chain = [_cert(leaf_der, "certificate")] + [
        _cert(d, "cabundle[%d]" % i) for i, d in reversed(list(enumerate(cabundle)))]
    names = ["certificate"] + ["cabundle[%d]" % i for i in reversed(range(len(cabundle)))]
    for cert, name in zip(chain, names):
        if not cert.not_valid_before <= now <= cert.not_valid_after:
            raise AttestationError("%s is not valid now" % name)
    for i in range(len(chain) - 1):
        _check_signed_by(chain[i], chain[i + 1], names[i])
    _check_signed_by(chain[-1], chain[-1], names[-1])  # the root is self-signed
    return chain[0]


def _check_cose_signature(leaf, protected, payload, signature):
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise AttestationError("leaf certificate key is not P-384")
    if len(signature) != 96:
        raise AttestationError("ES384 signature must be 96 bytes")
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"),
                               int.from_bytes(signature[48:], "big"))
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    try:
        key.verify(der, to_sign, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise AttestationError("COSE_Sign1 signature does not verify") from None


def verify(doc, root_der, max_age_seconds=300, now=None):
    """Verifies an attestation document.  Returns {"pcrs": {int: bytes},
    "public_key": RSA public key, "nonce", "user_data", "timestamp"}; raises
    AttestationError naming the first failed check."""
    now_s = time.time() if now is None else now
    protected, payload, signature = _decode_cose(doc)
    p = _parse_payload(payload)
    when = datetime.datetime.utcfromtimestamp(now_s)
    leaf = _check_chain(p["certificate"], p["cabundle"], root_der, when)
    _check_cose_signature(leaf, protected, payload, signature)
    age = now_s - p["timestamp"] / 1000.0
    if age > max_age_seconds:
        raise AttestationError("document is stale (%.0f s old, limit %d s)"
                               % (age, max_age_seconds))
    if age < -60:
        raise AttestationError("document timestamp is in the future")
    if not isinstance(p.get("public_key"), bytes):
        raise AttestationError("public_key is absent")
    try:
        pub = serialization.load_der_public_key(p["public_key"])
    except Exception:
        raise AttestationError("public_key is not a SubjectPublicKeyInfo") from None
    if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size != 2048:
        raise AttestationError("public_key is not RSA-2048")
    return {"pcrs": p["pcrs"], "public_key": pub, "nonce": p.get("nonce"),
            "user_data": p.get("user_data"), "timestamp": p["timestamp"]}
