"""CiphertextForRecipient as real AWS KMS shapes it (test-only).

Debian 12's python3-cryptography (38) has no CMS/PKCS#7 *encryption*, so the
EnvelopedData is assembled here with a few BER helpers.  Only the ASN.1
framing is done by hand; the cryptography (RSAES-OAEP-SHA256 key transport,
AES-256-CBC with PKCS#7 padding, SHA-256 of the SPKI) comes from the library.

The layout follows the real KMS answer in tests/vectors/nitro (compared
node by node with `openssl asn1parse` in tests/kms/test_standin.py):

  ContentInfo SEQUENCE (indefinite) {
    OID envelopedData,
    [0] (indefinite) EnvelopedData SEQUENCE (indefinite) {
      INTEGER 2,
      SET { KeyTransRecipientInfo SEQUENCE {
              INTEGER 2, [0] subjectKeyIdentifier = SHA-256(SPKI DER),
              AlgorithmIdentifier { rsaesOaep, { [0] sha256, [1] mgf1(sha256) } },
              OCTET STRING encryptedKey } },
      EncryptedContentInfo SEQUENCE (indefinite) {
        OID data, AlgorithmIdentifier { aes256-CBC, OCTET STRING iv(16) },
        [0] (indefinite) { OCTET STRING chunk ... } } } }
"""

import hashlib
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_DATA = "1.2.840.113549.1.7.1"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"

CHUNK = 1024  # encrypted content is split into OCTET STRINGs of this size


def _length(n):
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag, content):
    """Definite-length encoding."""
    return bytes([tag]) + _length(len(content)) + content


def indefinite(tag, *parts):
    """Indefinite-length (BER) constructed encoding, ended by EOC."""
    return bytes([tag, 0x80]) + b"".join(parts) + b"\x00\x00"


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def integer(n):
    return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def _oaep_algorithm():
    sha256 = seq(oid(OID_SHA256), b"\x05\x00")
    params = seq(tlv(0xA0, sha256), tlv(0xA1, seq(oid(OID_MGF1), sha256)))
    return seq(oid(OID_RSAES_OAEP), params)


def subject_key_identifier(public_key):
    """SHA-256 of the SubjectPublicKeyInfo DER, as KMS uses for the rid."""
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def envelope(plaintext, public_key):
    """BER ContentInfo/EnvelopedData of plaintext for an RSA public key."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("recipient key must be RSA")
    cek = os.urandom(32)
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    body = enc.update(padded) + enc.finalize()
    wrapped = public_key.encrypt(cek, asym_padding.OAEP(
        mgf=asym_padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(), label=None))
    ktri = seq(integer(2), tlv(0x80, subject_key_identifier(public_key)),
               _oaep_algorithm(), tlv(0x04, wrapped))
    chunks = [tlv(0x04, body[i:i + CHUNK]) for i in range(0, len(body), CHUNK)]
    eci = indefinite(0x30, oid(OID_DATA),
                     seq(oid(OID_AES256_CBC), tlv(0x04, iv)),
                     indefinite(0xA0, *chunks))
    enveloped = indefinite(0x30, integer(2), tlv(0x31, ktri), eci)
    return indefinite(0x30, oid(OID_ENVELOPED_DATA), indefinite(0xA0, enveloped))
