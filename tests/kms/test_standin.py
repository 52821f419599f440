"""End-to-end tests of the KMS stand-in over HTTPS on 127.0.0.1.

Starts kms_standin.py with a throwaway attestation PKI (make_pki.sh), keys
and policies, then checks: Encrypt/Decrypt round trip; the encryption
context is enforced; SigV4 refusals (wrong secret, unknown key, bad session
token, expired token, clock skew, no signature); the Recipient flow with
generated attestation documents (CiphertextForRecipient opened by `openssl
cms -decrypt`, its ASN.1 layout equal to the real KMS vector's); wrong PCR0
and PCR<n> policies refused; bad COSE signature, wrong root, stale document,
no public key refused; GenerateRandom with and without Recipient; counters;
the throttle knob (also on a plain-HTTP instance); reference-wallet blobs;
and, when KMS_SDK_WORKDIR is set by run.sh, the AWS SDK for JavaScript v3
against the stand-in.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kms_sigv4  # noqa: E402
import make_attestation  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

SRCDIR = os.environ.get("SIGNER_SRCDIR", os.path.join(HERE, "..", ".."))
NITRO = os.path.join(SRCDIR, "tests", "vectors", "nitro")
REGION = "us-east-1"
AKID, SECRET = "AKIDSTANDINTEST", "standin/secret+key"
TMP_AKID, TMP_SECRET, TOKEN = "ASIASTANDINTEMP", "temp/secret", "FwoGZXIvYXdzEXAMPLETOKEN=="
OLD_AKID = "ASIASTANDINOLD"
PCR0 = hashlib.sha384(b"enclave image").digest()
PCR8 = hashlib.sha384(b"signing cert").digest()
MATERIAL = "9f" * 32


def enclave_policy(pcr0_values, extra=None):
    cond = {"kms:RecipientAttestation:ImageSha384": pcr0_values}
    if extra:
        cond.update(extra)
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "parent encrypts", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": "kms:Encrypt", "Resource": "*"},
        {"Sid": "only the enclave decrypts", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Decrypt", "kms:GenerateRandom"], "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": cond}}]}


def sign(method, host, target, body, akid, secret, token=None, when=None,
         ctype="application/x-amz-json-1.1"):
    """Headers for a SigV4-signed KMS request (the test's own client)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    headers = [("Content-Type", ctype), ("Host", host), ("X-Amz-Date", amz_date),
               ("X-Amz-Target", target)]
    if token:
        headers.append(("X-Amz-Security-Token", token))
    signed = sorted(n.lower() for n, _ in headers)
    creq = kms_sigv4.canonical_request(method, "/", headers, signed,
                                       hashlib.sha256(body).hexdigest())
    scope = "%s/%s/kms/aws4_request" % (amz_date[:8], REGION)
    sts = kms_sigv4.string_to_sign(amz_date, scope, creq)
    import hmac
    sig = hmac.new(kms_sigv4.signing_key(secret, amz_date[:8], REGION, "kms"),
                   sts.encode(), hashlib.sha256).hexdigest()
    headers.append(("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                    "Signature=%s" % (akid, scope, ";".join(signed), sig)))
    return headers


def b64(raw):
    return base64.b64encode(raw).decode()


class StandIn:
    """A running kms_standin.py, stopped by PID."""

    def __init__(self, workdir, config, extra=(), tls=True):
        self.tls = tls
        self.workdir = workdir
        args = [sys.executable, os.path.join(HERE, "kms_standin.py"), "--config", config,
                "--quiet"] + list(extra)
        args += ["--tls-dir", os.path.join(workdir, "tls")] if tls else ["--http"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("KMS_STANDIN_READY port="):
            self.stop()
            raise RuntimeError("stand-in did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(line.strip().split("=")[1])
        self.host = "127.0.0.1:%d" % self.port

    def conn(self):
        if not self.tls:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        ctx = ssl.create_default_context(cafile=os.path.join(self.workdir, "tls", "ca.pem"))
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)

    def raw(self, method, path, body=b"", headers=()):
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=dict(headers))
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def call(self, op, payload, akid=AKID, secret=SECRET, token=None, when=None):
        """Returns (status, error type header, JSON body)."""
        body = json.dumps(payload).encode()
        headers = sign("POST", self.host, "TrentService." + op, body, akid, secret, token, when)
        status, hdrs, data = self.raw("POST", "/", body, headers)
        return status, hdrs.get("x-amzn-errortype"), json.loads(data)

    def test_post(self, path, obj):
        status, _, data = self.raw("POST", path, json.dumps(obj).encode())
        return status, json.loads(data)

    def stats(self):
        return json.loads(self.raw("GET", "/__stats")[2])

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


def openssl_decrypt(workdir, cms_der, key):
    """Opens a CMS blob with `openssl cms -decrypt`; returns the plaintext."""
    cms_path = os.path.join(workdir, "cfr.der")
    key_path = os.path.join(workdir, "recipient.pem")
    with open(cms_path, "wb") as f:
        f.write(cms_der)
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", cms_path,
                           "-inkey", key_path, "-binary"], check=True,
                          capture_output=True).stdout


def asn1_layout(der_path):
    """`openssl asn1parse` lines with hex dump values removed."""
    out = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", der_path, "-i"],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("[HEX DUMP]")[0].rstrip() for line in out.splitlines()]


class StandInTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kms-standin-test.")
        # twinpki: same subject names as pki, other keys.
        for name, subject in (("pki", "pki"), ("otherpki", "otherpki"), ("twinpki", "pki")):
            subprocess.run([os.path.join(HERE, "make_pki.sh"), os.path.join(cls.dir, name),
                            subject], check=True)
        cls.pki = os.path.join(cls.dir, "pki")
        with open(os.path.join(cls.dir, "enclave-policy.json"), "w") as f:
            json.dump(enclave_policy(PCR0.hex().upper()), f)
        cls.config = os.path.join(cls.dir, "standin.json")
        with open(cls.config, "w") as f:
            json.dump({
                "region": REGION,
                "credentials": [
                    {"access_key_id": AKID, "secret_access_key": SECRET},
                    {"access_key_id": TMP_AKID, "secret_access_key": TMP_SECRET,
                     "session_token": TOKEN, "expiration": "2099-01-01T00:00:00Z"},
                    {"access_key_id": OLD_AKID, "secret_access_key": TMP_SECRET,
                     "session_token": TOKEN, "expiration": "2020-01-01T00:00:00Z"}],
                "attestation": {"root": "pki/root.pem", "max_age_seconds": 300},
                "generate_random_policy": enclave_policy(PCR0.hex()),
                "keys": [
                    {"key_id": "1111-enclave", "aliases": ["alias/signer"],
                     "key_material_hex": MATERIAL, "policy_file": "enclave-policy.json"},
                    {"key_id": "2222-open", "key_material_hex": "42" * 32}]}, f)
        cls.kms = StandIn(cls.dir, cls.config)
        cls.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.spki = make_attestation.spki_of(cls.rsa)

    @classmethod
    def tearDownClass(cls):
        cls.kms.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.kms.test_post("/__policy", {
            "key_id": "1111-enclave", "policy": enclave_policy(PCR0.hex().upper())})[0], 200)

    # helpers
    def doc(self, **kw):
        kw.setdefault("pcrs", {0: PCR0, 8: PCR8})
        kw.setdefault("public_key", self.spki)
        pki = kw.pop("pki", self.pki)
        return b64(make_attestation.make_document(pki, **kw))

    def recipient(self, **kw):
        return {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": self.doc(**kw)}

    def encrypt(self, plaintext, ctx=None, key="alias/signer"):
        req = {"KeyId": key, "Plaintext": b64(plaintext)}
        if ctx is not None:
            req["EncryptionContext"] = ctx
        status, err, out = self.kms.call("Encrypt", req)
        self.assertEqual(status, 200, out)
        return out["CiphertextBlob"]

    def assert_error(self, result, status, kind):
        got_status, header, body = result
        self.assertEqual((got_status, header, body.get("__type")), (status, kind, kind), body)
        self.assertTrue(body.get("message"))

    # Encrypt / Decrypt
    def test_round_trip_and_context(self):
        ctx = {"key_id": "k-1", "chain": "eth", "address": "0xabc"}
        blob = self.encrypt(b"sealed key material", ctx, key="2222-open")
        status, _, out = self.kms.call("Decrypt", {"CiphertextBlob": blob, "EncryptionContext": ctx})
        self.assertEqual(status, 200, out)
        self.assertEqual(base64.b64decode(out["Plaintext"]), b"sealed key material")
        self.assertTrue(out["KeyId"].endswith(":key/2222-open"))
        for wrong in ({**ctx, "key_id": "k-2"}, {"key_id": "k-1"}, {}):
            self.assert_error(self.kms.call("Decrypt", {"CiphertextBlob": blob,
                                                        "EncryptionContext": wrong}),
                              400, "InvalidCiphertextException")
        self.assert_error(self.kms.call("Decrypt", {"CiphertextBlob": blob, "KeyId": "alias/signer",
                                                    "EncryptionContext": ctx}),
                          400, "IncorrectKeyException")
        tampered = bytearray(base64.b64decode(blob))
        tampered[-1] ^= 1
        self.assert_error(self.kms.call("Decrypt", {"CiphertextBlob": b64(bytes(tampered)),
                                                    "EncryptionContext": ctx}),
                          400, "InvalidCiphertextException")

    def test_bad_input(self):
        self.assert_error(self.kms.call("Encrypt", {"KeyId": "nope", "Plaintext": b64(b"x")}),
                          400, "NotFoundException")
        self.assert_error(self.kms.call("Encrypt", {"KeyId": "2222-open"}),
                          400, "ValidationException")
        self.assert_error(self.kms.call("Encrypt", {"KeyId": "2222-open", "Plaintext": b64(b"x" * 4097)}),
                          400, "ValidationException")
        self.assert_error(self.kms.call("CreateKey", {}), 400, "UnknownOperationException")

    # SigV4
    def test_sigv4_refusals(self):
        req = {"NumberOfBytes": 8}
        self.assert_error(self.kms.call("Encrypt", {}, secret=SECRET + "x"),
                          400, "InvalidSignatureException")
        self.assert_error(self.kms.call("Encrypt", {}, akid="AKIDUNKNOWN"),
                          400, "UnrecognizedClientException")
        # Signature and token accepted: the policy (attestation required) answers.
        self.assert_error(self.kms.call("GenerateRandom", req, TMP_AKID, TMP_SECRET, TOKEN),
                          400, "AccessDeniedException")
        self.assert_error(self.kms.call("GenerateRandom", req, TMP_AKID, TMP_SECRET, TOKEN + "x"),
                          400, "UnrecognizedClientException")
        self.assert_error(self.kms.call("GenerateRandom", req, TMP_AKID, TMP_SECRET),
                          400, "UnrecognizedClientException")
        self.assert_error(self.kms.call("GenerateRandom", req, OLD_AKID, TMP_SECRET, TOKEN),
                          400, "ExpiredTokenException")
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)
        self.assert_error(self.kms.call("Encrypt", {}, when=past), 400, "InvalidSignatureException")
        near = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=4)
        self.assert_error(self.kms.call("Encrypt", {}, when=near), 400, "ValidationException")
        status, hdrs, data = self.kms.raw("POST", "/", b"{}", {"X-Amz-Target": "TrentService.Encrypt",
                                                              "Content-Type": "application/x-amz-json-1.1"})
        self.assertEqual((status, hdrs.get("x-amzn-errortype")),
                         (403, "MissingAuthenticationTokenException"))
        # A body changed after signing.
        body = json.dumps({"NumberOfBytes": 8}).encode()
        headers = sign("POST", self.kms.host, "TrentService.GenerateRandom", body, AKID, SECRET)
        status, hdrs, _ = self.kms.raw("POST", "/", b'{"NumberOfBytes": 9}', headers)
        self.assertEqual((status, hdrs.get("x-amzn-errortype")), (400, "InvalidSignatureException"))

    # Recipient
    def test_recipient_decrypt_opens_with_openssl(self):
        plaintext = b'{"v":1,"key":"00ff"}'
        ctx = {"key_id": "k-9"}
        blob = self.encrypt(plaintext, ctx)
        for kw in ({}, {"indefinite_map": True, "tag": True}):
            status, _, out = self.kms.call("Decrypt", {"CiphertextBlob": blob, "EncryptionContext": ctx,
                                                       "Recipient": self.recipient(**kw)})
            self.assertEqual(status, 200, out)
            self.assertNotIn("Plaintext", out)
            cms = base64.b64decode(out["CiphertextForRecipient"])
            self.assertEqual(openssl_decrypt(self.dir, cms, self.rsa), plaintext)
        # Without Recipient, this key's policy allows no Decrypt.
        self.assert_error(self.kms.call("Decrypt", {"CiphertextBlob": blob, "EncryptionContext": ctx}),
                          400, "AccessDeniedException")

    def test_cms_layout_matches_real_kms_vector(self):
        with open(os.path.join(NITRO, "expected_plaintext.json"), "rb") as f:
            expected = f.read()
        real = os.path.join(self.dir, "real.der")
        with open(os.path.join(NITRO, "ciphertext_for_recipient.b64")) as f:
            real_der = base64.b64decode(f.read())
        with open(real, "wb") as f:
            f.write(real_der)
        with open(os.path.join(NITRO, "recipient_rsa_private_key_pkcs1_der.b64")) as f:
            real_key = serialization.load_der_private_key(base64.b64decode(f.read()), None)
        self.assertEqual(openssl_decrypt(self.dir, real_der, real_key), expected)
        blob = self.encrypt(expected, key="alias/signer")
        status, _, out = self.kms.call("Decrypt", {"CiphertextBlob": blob, "Recipient": self.recipient()})
        self.assertEqual(status, 200, out)
        mine = os.path.join(self.dir, "mine.der")
        cms = base64.b64decode(out["CiphertextForRecipient"])
        with open(mine, "wb") as f:
            f.write(cms)
        layout = asn1_layout(mine)
        self.assertEqual(layout, asn1_layout(real))
        self.assertTrue(any(":rsaesOaep" in line for line in layout))
        self.assertTrue(any(":aes-256-cbc" in line for line in layout))
        ski = hashlib.sha256(self.spki).digest()
        self.assertEqual(cms[31:33], b"\x80\x20")  # [0] subjectKeyIdentifier, 32 bytes
        self.assertEqual(cms[33:65], ski)
        real_ski = hashlib.sha256(make_attestation.spki_of(real_key)).digest()
        self.assertEqual(real_der[31:33] + real_der[33:65], b"\x80\x20" + real_ski)

    def test_policy_pcr_conditions(self):
        blob = self.encrypt(b"p", key="alias/signer")
        req = lambda: {"CiphertextBlob": blob, "Recipient": self.recipient()}  # noqa: E731
        other = hashlib.sha384(b"another image").hexdigest()
        self.assertEqual(self.kms.test_post("/__policy", {"key_id": "1111-enclave",
                                                          "policy": enclave_policy(other)})[0], 200)
        self.assert_error(self.kms.call("Decrypt", req()), 400, "AccessDeniedException")
        self.kms.test_post("/__policy", {"key_id": "alias/signer",
                                         "policy": enclave_policy([other, PCR0.hex()])})
        self.assertEqual(self.kms.call("Decrypt", req())[0], 200)
        pcr8 = {"kms:RecipientAttestation:PCR8": PCR8.hex()}
        self.kms.test_post("/__policy", {"key_id": "1111-enclave",
                                         "policy": enclave_policy(PCR0.hex(), pcr8)})
        self.assertEqual(self.kms.call("Decrypt", req())[0], 200)
        pcr8 = {"kms:RecipientAttestation:PCR8": other}
        self.kms.test_post("/__policy", {"key_id": "1111-enclave",
                                         "policy": enclave_policy(PCR0.hex(), pcr8)})
        self.assert_error(self.kms.call("Decrypt", req()), 400, "AccessDeniedException")
        # Encrypt is not covered by the attestation conditions.
        self.encrypt(b"still", key="alias/signer")
        status, out = self.kms.test_post("/__policy", {"key_id": "1111-enclave", "policy": {
            "Statement": [{"Effect": "Allow", "Action": "kms:*",
                           "Condition": {"NumericEquals": {"x": "1"}}}]}})
        self.assertEqual((status, out["__type"]), (400, "ValidationException"))

    def test_bad_documents_refused(self):
        blob = self.encrypt(b"p", key="alias/signer")
        bad = {
            "bad COSE signature": self.recipient(corrupt_signature=True),
            "wrong root": self.recipient(pki=os.path.join(self.dir, "otherpki")),
            "stale": self.recipient(timestamp_ms=int((time.time() - 301) * 1000)),
            "future": self.recipient(timestamp_ms=int((time.time() + 600) * 1000)),
            "no public key": self.recipient(public_key=None),
            # The pinned root first, then a same-named intermediate and leaf
            # made with other keys: only the signature check catches it.
            "broken chain": self.recipient(
                pki=os.path.join(self.dir, "twinpki"),
                cabundle=[make_attestation.load_pki(self.pki)[2][0],
                          make_attestation.load_pki(os.path.join(self.dir, "twinpki"))[2][1]]),
            "leaf signed by the root": self.recipient(
                cabundle=[make_attestation.load_pki(self.pki)[2][0]]),
            "not RSA-2048": self.recipient(public_key=make_attestation.spki_of(
                rsa.generate_private_key(public_exponent=65537, key_size=3072))),
            "not COSE": {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                         "AttestationDocument": b64(b"\xa1\x01\x02")},
            "not CBOR": {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                         "AttestationDocument": b64(b"\x9f\x01")},
            "wrong algorithm": {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
                                "AttestationDocument": self.doc()},
        }
        causes = {"bad COSE signature": "COSE_Sign1 signature", "wrong root": "pinned root",
                  "stale": "stale", "future": "future", "no public key": "public_key is absent",
                  "not RSA-2048": "RSA-2048", "not COSE": "not a COSE_Sign1",
                  "not CBOR": "not CBOR",
                  "wrong algorithm": "KeyEncryptionAlgorithm",
                  "broken chain": "signature on cabundle[1]",
                  "leaf signed by the root": "certificate is not issued"}
        for name, rec in bad.items():
            with self.subTest(name):
                result = self.kms.call("Decrypt", {"CiphertextBlob": blob, "Recipient": rec})
                self.assert_error(result, 400, "ValidationException")
                self.assertIn(causes[name], result[2]["message"])
        # A document a bit over four minutes old is still fresh.
        ok = self.recipient(timestamp_ms=int((time.time() - 250) * 1000))
        self.assertEqual(self.kms.call("Decrypt", {"CiphertextBlob": blob, "Recipient": ok})[0], 200)

    def test_generate_random(self):
        status, _, out = self.kms.call("GenerateRandom", {"NumberOfBytes": 48,
                                                          "Recipient": self.recipient()})
        self.assertEqual(status, 200, out)
        self.assertNotIn("Plaintext", out)
        data = openssl_decrypt(self.dir, base64.b64decode(out["CiphertextForRecipient"]), self.rsa)
        self.assertEqual(len(data), 48)
        # The account policy asks for attestation: a plain call is refused...
        self.assert_error(self.kms.call("GenerateRandom", {"NumberOfBytes": 8}),
                          400, "AccessDeniedException")
        # ...until it is swapped for one that allows it.
        allow = {"Statement": [{"Effect": "Allow", "Action": "kms:GenerateRandom"}]}
        self.kms.test_post("/__policy", {"generate_random": True, "policy": allow})
        try:
            status, _, out = self.kms.call("GenerateRandom", {"NumberOfBytes": 8})
            self.assertEqual((status, len(base64.b64decode(out["Plaintext"]))), (200, 8))
            self.assert_error(self.kms.call("GenerateRandom", {"NumberOfBytes": 1025}),
                              400, "ValidationException")
        finally:
            self.kms.test_post("/__policy", {"generate_random": True,
                                             "policy": enclave_policy(PCR0.hex())})

    def test_counters(self):
        blob = self.encrypt(b"count me", key="alias/signer")
        self.assertEqual(self.kms.test_post("/__reset", {})[0], 200)
        for _ in range(3):
            self.kms.call("Decrypt", {"CiphertextBlob": blob, "Recipient": self.recipient()})
        self.kms.call("Decrypt", {"CiphertextBlob": blob})
        self.kms.call("Encrypt", {"KeyId": "2222-open", "Plaintext": b64(b"x")})
        s = self.kms.stats()
        self.assertEqual(s["calls"], {"Decrypt": 4, "Encrypt": 1})
        self.assertEqual(s["succeeded"], {"Decrypt": 3, "Encrypt": 1})
        self.assertEqual(s["recipient"], {"Decrypt": 3})
        self.assertEqual(s["errors"], {"Decrypt": {"AccessDeniedException": 1}})

    def test_keep_alive_concurrency_and_arns(self):
        # Two calls on one connection (HTTP/1.1 keep-alive).
        c = self.kms.conn()
        try:
            for n in (3, 5):
                body = json.dumps({"KeyId": "2222-open", "Plaintext": b64(b"k" * n)}).encode()
                c.request("POST", "/", body=body, headers=dict(
                    sign("POST", self.kms.host, "TrentService.Encrypt", body, AKID, SECRET)))
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                self.assertIn("CiphertextBlob", json.loads(r.read()))
        finally:
            c.close()
        # Twenty calls at once.
        import concurrent.futures
        req = {"KeyId": "arn:aws:kms:us-east-1:111122223333:key/2222-open", "Plaintext": b64(b"c")}
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: self.kms.call("Encrypt", req)[0], range(20)))
        self.assertEqual(results, [200] * 20)
        for ref in ("arn:aws:kms:eu-west-1:111122223333:key/2222-open",
                    "arn:aws:kms:us-east-1:999999999999:key/2222-open", "alias/none"):
            self.assert_error(self.kms.call("Encrypt", dict(req, KeyId=ref)), 400, "NotFoundException")
        blob = self.encrypt(b"via alias arn", key="arn:aws:kms:us-east-1:111122223333:alias/signer")
        self.assertEqual(self.kms.call("Decrypt", {"CiphertextBlob": blob,
                                                   "Recipient": self.recipient()})[0], 200)

    def test_reference_blob(self):
        secret, eth_key = "9779d2b8f0bc495b", "5e82557e8d2d154503f8e371a36b27b067c5c60793737e76313de1a431e809"
        out = subprocess.run([sys.executable, os.path.join(HERE, "make_reference_blob.py"),
                              "--config", self.config, "--key-id", "alias/signer",
                              "--secret", secret, "--eth-key", eth_key],
                             check=True, capture_output=True, text=True).stdout.strip()
        status, _, res = self.kms.call("Decrypt", {"CiphertextBlob": out, "Recipient": self.recipient()})
        self.assertEqual(status, 200, res)
        opened = openssl_decrypt(self.dir, base64.b64decode(res["CiphertextForRecipient"]), self.rsa)
        self.assertEqual(json.loads(opened), {"secret": secret, "eth_key": eth_key})
        self.assert_error(self.kms.call("Decrypt", {"CiphertextBlob": out, "Recipient": self.recipient(),
                                                    "EncryptionContext": {"key_id": "x"}}),
                          400, "InvalidCiphertextException")

    def test_throttle_plain_http_and_sigterm(self):
        kms = StandIn(self.dir, self.config, ["--throttle", "2", "--attestation-max-age", "60"],
                      tls=False)
        try:
            self.assertEqual(kms.stats()["throttle_remaining"], 2)
            req = {"KeyId": "2222-open", "Plaintext": b64(b"x")}
            for _ in range(2):
                self.assert_error(kms.call("Encrypt", req), 400, "ThrottlingException")
            self.assertEqual(kms.call("Encrypt", req)[0], 200)
            self.assertEqual(kms.test_post("/__throttle", {"count": 1})[0], 200)
            self.assert_error(kms.call("Encrypt", req), 400, "ThrottlingException")
            self.assertEqual(kms.call("Encrypt", req)[0], 200)
            self.assertEqual(kms.stats()["errors"], {"Encrypt": {"ThrottlingException": 3}})
            # --attestation-max-age 60: a two-minute-old document is stale here.
            blob = kms.call("Encrypt", {"KeyId": "alias/signer", "Plaintext": b64(b"x")})[2]
            old = self.recipient(timestamp_ms=int((time.time() - 120) * 1000))
            result = kms.call("Decrypt", {"CiphertextBlob": blob["CiphertextBlob"], "Recipient": old})
            self.assert_error(result, 400, "ValidationException")
            self.assertIn("stale", result[2]["message"])
        finally:
            os.kill(kms.proc.pid, signal.SIGTERM)
            self.assertEqual(kms.proc.wait(10), 0)
            kms.stop()

    def test_aws_sdk_js(self):
        workdir = os.environ.get("KMS_SDK_WORKDIR")
        if not workdir:
            self.skipTest("KMS_SDK_WORKDIR not set (run.sh sets it after npm ci)")
        env = dict(os.environ, NODE_NO_WARNINGS="1", NODE_EXTRA_CA_CERTS=os.path.join(self.dir, "tls", "ca.pem"),
                   KMS_ENDPOINT="https://127.0.0.1:%d" % self.kms.port, KMS_REGION=REGION,
                   KMS_AKID=AKID, KMS_SECRET=SECRET, KMS_KEY_ID="2222-open")
        self.assertEqual(self.kms.test_post("/__reset", {})[0], 200)
        allow = {"Statement": [{"Effect": "Allow", "Action": "kms:GenerateRandom"}]}
        self.kms.test_post("/__policy", {"generate_random": True, "policy": allow})
        try:
            r = subprocess.run(["node", os.path.join(workdir, "sdk_client.mjs")], env=env,
                               capture_output=True, text=True, timeout=120)
        finally:
            self.kms.test_post("/__policy", {"generate_random": True,
                                             "policy": enclave_policy(PCR0.hex())})
        sys.stderr.write(r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0)
        self.assertIn("sdk: 5 passed, 0 failed", r.stdout)
        s = self.kms.stats()
        self.assertEqual(s["succeeded"], {"Encrypt": 1, "Decrypt": 1, "GenerateRandom": 1})
        self.assertEqual(s["errors"], {"Decrypt": {"InvalidCiphertextException": 1},
                                       "Encrypt": {"InvalidSignatureException": 1}})


class PolicyTest(unittest.TestCase):
    """IAM evaluation rules of kms_policy, without a server."""

    def test_rules(self):
        import kms_policy
        pcr0 = {"kms:RecipientAttestation:ImageSha384": "ab" * 48}
        allow = {"Effect": "Allow", "Action": "kms:Decrypt"}
        cond = lambda op, v: dict(allow, Condition={op: {  # noqa: E731
            "kms:RecipientAttestation:ImageSha384": v}})
        cases = [
            ([allow], "kms:Decrypt", {}, True),
            ([allow], "kms:Encrypt", {}, False),
            ([], "kms:Decrypt", {}, False),
            ([cond("StringEqualsIgnoreCase", "AB" * 48)], "kms:Decrypt", pcr0, True),
            ([cond("StringEquals", "AB" * 48)], "kms:Decrypt", pcr0, False),
            ([cond("StringEqualsIgnoreCase", "AB" * 48)], "kms:Decrypt", {}, False),
            ([cond("StringEqualsIgnoreCaseIfExists", "cd" * 48)], "kms:Decrypt", {}, True),
            ([cond("StringNotEquals", ["cd" * 48, "ef" * 48])], "kms:Decrypt", pcr0, True),
            ([cond("StringNotEquals", ["ab" * 48, "ef" * 48])], "kms:Decrypt", pcr0, False),
            ([allow, dict(allow, Effect="Deny")], "kms:Decrypt", {}, False),
            ([dict(allow, Action="kms:*")], "kms:GenerateRandom", {}, True),
            ([dict(allow, Principal={"AWS": "arn:aws:iam::1:role/a"})], "kms:Decrypt", {}, False),
        ]
        for statements, action, ctx, want in cases:
            with self.subTest(statements=statements, action=action):
                policy = {"Statement": statements}
                kms_policy.validate(policy) if statements else None
                self.assertEqual(kms_policy.allows(policy, action, None, ctx), want)
        self.assertTrue(kms_policy.allows(
            {"Statement": [dict(allow, Principal={"AWS": ["arn:aws:iam::1:role/a"]})]},
            "kms:Decrypt", "arn:aws:iam::1:role/a", {}))
        with self.assertRaises(kms_policy.PolicyError):
            kms_policy.validate({"Statement": [cond("ArnLike", "x")]})


if __name__ == "__main__":
    unittest.main(verbosity=2)
