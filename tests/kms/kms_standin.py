#!/usr/bin/python3
"""A test-only AWS KMS stand-in that checks what real KMS checks.

Speaks the KMS JSON 1.1 protocol (POST /, X-Amz-Target: TrentService.<Op>,
Content-Type: application/x-amz-json-1.1) over HTTPS (or plain HTTP with
--http) on 127.0.0.1, for Encrypt, Decrypt and GenerateRandom (the last two
with or without Recipient).  Every request must carry a valid SigV4
signature for configured credentials; Decrypt enforces the encryption
context; a Recipient's attestation document is verified against a pinned
root and the key policy's kms:RecipientAttestation conditions are evaluated.
Never installed; see docs/testing-kms.md for the config format, the
test-only endpoints (/__stats, /__policy, /__throttle, /__reset) and how to
run it by hand.

  kms_standin.py --config FILE [--port 0] [--http | --tls-dir DIR |
                 --tls-cert PEM --tls-key PEM] [--throttle N] [--quiet]

Prints "KMS_STANDIN_READY port=PORT" on stdout once listening; exits on
SIGTERM.
"""

import argparse
import base64
import binascii
import datetime
import http.server
import json
import os
import signal
import ssl
import struct
import sys
import tempfile
import threading
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kms_attest  # noqa: E402
import kms_cms  # noqa: E402
import kms_policy  # noqa: E402
import kms_sigv4  # noqa: E402

BLOB_VERSION = 1
MAX_BODY = 1 << 20
ALLOW_ALL = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*",
                            "Resource": "*"}]}


class KmsError(Exception):
    """An answer in KMS's error shape."""

    def __init__(self, kind, message, status=400):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


# --- ciphertext blobs -------------------------------------------------------
#
# version (1 byte) | key id length (1) | key id (UTF-8) | IV (12) | AES-256-GCM
# ciphertext || tag (16).  AAD: "kms-standin/v1" 0x00 key id 0x00 and the
# encryption context canonically serialised: pairs sorted by name, each as
# 4-byte big-endian length + UTF-8 name, 4-byte length + UTF-8 value.

def canonical_context(ctx):
    """The encryption context as AAD bytes (empty context: empty bytes)."""
    out = bytearray()
    for name in sorted(ctx):
        for part in (name, ctx[name]):
            raw = part.encode("utf-8")
            out += struct.pack(">I", len(raw)) + raw
    return bytes(out)


def _aad(key_id, ctx):
    return b"kms-standin/v1\x00" + key_id.encode("utf-8") + b"\x00" + canonical_context(ctx)


def seal_blob(key_id, material, plaintext, ctx):
    """Encrypts plaintext under a key: returns the ciphertext blob bytes."""
    kid = key_id.encode("utf-8")
    iv = os.urandom(12)
    body = AESGCM(material).encrypt(iv, plaintext, _aad(key_id, ctx))
    return bytes([BLOB_VERSION, len(kid)]) + kid + iv + body


def blob_key_id(blob):
    """The key id a blob names, or raises KmsError InvalidCiphertextException."""
    if len(blob) < 2 or blob[0] != BLOB_VERSION or len(blob) < 2 + blob[1] + 12 + 16:
        raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.")
    try:
        return blob[2:2 + blob[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.") from None


def open_blob(key_id, material, blob, ctx):
    """Decrypts a blob; a wrong key or encryption context is
    InvalidCiphertextException, as in KMS."""
    start = 2 + blob[1]
    try:
        return AESGCM(material).decrypt(blob[start:start + 12], blob[start + 12:],
                                        _aad(key_id, ctx))
    except InvalidTag:
        raise KmsError("InvalidCiphertextException",
                       "The ciphertext or its encryption context is invalid.") from None


# --- configuration ----------------------------------------------------------

def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _epoch(value):
    if value is None or isinstance(value, (int, float)):
        return value
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def load_config(path, args=None):
    """Reads the JSON config (see docs/testing-kms.md) and the command-line
    additions; returns the server state dict.  Paths are relative to the
    config file."""
    cfg = _read_json(path) if path else {}
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    rel = lambda p: p if os.path.isabs(p) else os.path.join(base, p)  # noqa: E731
    state = {"region": cfg.get("region", "us-east-1"),
             "account": cfg.get("account", "111122223333"),
             "max_skew": int(cfg.get("max_skew_seconds", 300)),
             "creds": {}, "keys": {}, "aliases": {}, "root_der": None,
             "max_age": int(cfg.get("attestation", {}).get("max_age_seconds", 300)),
             "random_policy": cfg.get("generate_random_policy", ALLOW_ALL)}
    for c in cfg.get("credentials", []):
        state["creds"][c["access_key_id"]] = {
            "secret_access_key": c["secret_access_key"],
            "session_token": c.get("session_token"),
            "expiration": _epoch(c.get("expiration")),
            "principal": c.get("principal")}
    for k in cfg.get("keys", []):
        policy = k.get("policy")
        if policy is None:
            policy = _read_json(rel(k["policy_file"])) if "policy_file" in k else ALLOW_ALL
        add_key(state, k["key_id"], k["key_material_hex"], policy, k.get("aliases", []))
    root = cfg.get("attestation", {}).get("root")
    if args is not None:
        state["region"] = args.region or state["region"]
        if args.access_key_id:
            state["creds"][args.access_key_id] = {
                "secret_access_key": args.secret_access_key,
                "session_token": args.session_token, "expiration": None, "principal": None}
        for spec in args.key:
            parts = spec.split(":", 2)
            policy = _read_json(parts[2]) if len(parts) > 2 else ALLOW_ALL
            add_key(state, parts[0], parts[1], policy, [])
        root = args.attestation_root or (rel(root) if root else None)
        if args.attestation_max_age is not None:
            state["max_age"] = args.attestation_max_age
    elif root:
        root = rel(root)
    if root:
        state["root_der"] = load_root(root)
    kms_policy.validate(state["random_policy"])
    return state


def load_root(path):
    """DER bytes of the pinned attestation root (PEM or DER file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(path, "rb") as f:
        data = f.read()
    cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data))
    return cert.public_bytes(serialization.Encoding.DER)


def add_key(state, key_id, material_hex, policy, aliases):
    """Registers a symmetric key (64 hex digits) with its key policy."""
    material = bytes.fromhex(material_hex)
    if len(material) != 32:
        raise ValueError("key %s: key material must be 32 bytes (64 hex digits)" % key_id)
    kms_policy.validate(policy)
    state["keys"][key_id] = {"material": material, "policy": policy}
    for a in aliases:
        state["aliases"][a if a.startswith("alias/") else "alias/" + a] = key_id


# --- the service ------------------------------------------------------------

class Service:
    """Operation handlers, counters and the test-only knobs; thread-safe."""

    def __init__(self, state, throttle=0):
        self.state = state
        self.lock = threading.Lock()
        self.throttle = throttle
        self.reset()

    def reset(self):
        with self.lock:
            self.stats = {"calls": {}, "succeeded": {}, "errors": {}, "recipient": {}}

    def count(self, bucket, op, sub=None):
        with self.lock:
            b = self.stats[bucket]
            if sub is None:
                b[op] = b.get(op, 0) + 1
            else:
                b.setdefault(op, {})
                b[op][sub] = b[op].get(sub, 0) + 1

    def snapshot(self):
        with self.lock:
            out = json.loads(json.dumps(self.stats))
            out["throttle_remaining"] = self.throttle
            return out

    def take_throttle(self):
        with self.lock:
            if self.throttle > 0:
                self.throttle -= 1
                return True
            return False

    def arn(self, key_id):
        return "arn:aws:kms:%s:%s:key/%s" % (self.state["region"], self.state["account"], key_id)

    def resolve(self, ref):
        """Key id from a key id, key ARN, alias name or alias ARN."""
        if not isinstance(ref, str) or not ref:
            raise KmsError("ValidationException", "KeyId is required")
        name = ref
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) < 6 or parts[3] != self.state["region"] or \
                    parts[4] != self.state["account"]:
                raise KmsError("NotFoundException", "Key '%s' does not exist" % ref)
            name = parts[5]
        if name.startswith("key/"):
            name = name[4:]
        key_id = self.state["aliases"].get(name, name)
        if key_id not in self.state["keys"]:
            raise KmsError("NotFoundException", "Key '%s' does not exist" % ref)
        return key_id

    def authorize(self, policy, action, principal, context):
        if not kms_policy.allows(policy, action, principal, context):
            raise KmsError("AccessDeniedException",
                           "User is not authorized to perform %s: the policy does "
                           "not allow it in this request context" % action)

    def recipient(self, req):
        """Verifies a Recipient: returns (RSA public key, condition keys) or
        (None, {}) when the request has none."""
        rec = req.get("Recipient")
        if rec is None:
            return None, {}
        if not isinstance(rec, dict):
            raise KmsError("ValidationException", "Recipient must be an object")
        if rec.get("KeyEncryptionAlgorithm") != "RSAES_OAEP_SHA_256":
            raise KmsError("ValidationException",
                           "Recipient.KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256")
        doc = _b64(rec.get("AttestationDocument"), "Recipient.AttestationDocument")
        if self.state["root_der"] is None:
            raise KmsError("ValidationException",
                           "Recipient.AttestationDocument: no attestation root configured")
        try:
            att = kms_attest.verify(doc, self.state["root_der"], self.state["max_age"])
        except kms_attest.AttestationError as e:
            raise KmsError("ValidationException",
                           "Recipient.AttestationDocument is invalid: %s" % e) from None
        return att["public_key"], kms_policy.attestation_context(att["pcrs"])

    def op_encrypt(self, req, principal):
        key_id = self.resolve(req.get("KeyId"))
        plaintext = _b64(req.get("Plaintext"), "Plaintext")
        if not 1 <= len(plaintext) <= 4096:
            raise KmsError("ValidationException", "Plaintext must be 1 to 4096 bytes")
        ctx = _context(req)
        key = self.state["keys"][key_id]
        self.authorize(key["policy"], "kms:Encrypt", principal, _ctx_keys(ctx))
        blob = seal_blob(key_id, key["material"], plaintext, ctx)
        return {"CiphertextBlob": _enc(blob), "KeyId": self.arn(key_id),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def op_decrypt(self, req, principal):
        blob = _b64(req.get("CiphertextBlob"), "CiphertextBlob")
        ctx = _context(req)
        key_id = blob_key_id(blob)
        if key_id not in self.state["keys"]:
            raise KmsError("InvalidCiphertextException", "The ciphertext is invalid.")
        if req.get("KeyId") is not None and self.resolve(req["KeyId"]) != key_id:
            raise KmsError("IncorrectKeyException",
                           "The key ID in the request does not identify the key that "
                           "encrypted the ciphertext.")
        pub, att_ctx = self.recipient(req)
        key = self.state["keys"][key_id]
        self.authorize(key["policy"], "kms:Decrypt", principal, {**_ctx_keys(ctx), **att_ctx})
        plaintext = open_blob(key_id, key["material"], blob, ctx)
        out = {"KeyId": self.arn(key_id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if pub is None:
            out["Plaintext"] = _enc(plaintext)
        else:
            out["CiphertextForRecipient"] = _enc(kms_cms.envelope(plaintext, pub))
        return out

    def op_generate_random(self, req, principal):
        n = req.get("NumberOfBytes")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1024:
            raise KmsError("ValidationException", "NumberOfBytes must be 1 to 1024")
        pub, att_ctx = self.recipient(req)
        self.authorize(self.state["random_policy"], "kms:GenerateRandom", principal, att_ctx)
        data = os.urandom(n)
        if pub is None:
            return {"Plaintext": _enc(data)}
        return {"CiphertextForRecipient": _enc(kms_cms.envelope(data, pub))}

    OPS = {"Encrypt": op_encrypt, "Decrypt": op_decrypt, "GenerateRandom": op_generate_random}


def _enc(raw):
    return base64.b64encode(raw).decode("ascii")


def _b64(value, field):
    if not isinstance(value, str) or not value:
        raise KmsError("ValidationException", "%s is required (base64)" % field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KmsError("SerializationException", "%s is not valid base64" % field) from None


def _context(req):
    ctx = req.get("EncryptionContext") or {}
    if not isinstance(ctx, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in ctx.items()):
        raise KmsError("ValidationException", "EncryptionContext must map strings to strings")
    return ctx


def _ctx_keys(ctx):
    return {"kms:EncryptionContext:" + k: v for k, v in ctx.items()}


# --- HTTP -------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    """One HTTP request: test-only endpoints, or a signed KMS call."""

    protocol_version = "HTTP/1.1"
    server_version = "kms-standin"
    sys_version = ""

    def log_message(self, fmt, *args):  # one line per request, never bodies
        if not self.server.quiet:
            sys.stderr.write("kms-standin: %s\n" % (fmt % args))

    def _send(self, status, obj, error=None):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, e):
        self._send(e.status, {"__type": e.kind, "message": e.message}, e.kind)

    def _body(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_BODY:
            raise KmsError("SerializationException", "Content-Length missing or too large")
        return self.rfile.read(n)

    def do_GET(self):
        if self.path.split("?")[0] == "/__stats":
            self._send(200, self.server.service.snapshot())
        else:
            self._error(KmsError("UnknownOperationException", "no such resource", 404))

    def do_POST(self):
        try:
            body = self._body()
        except KmsError as e:
            self.close_connection = True
            return self._error(e)
        path = self.path.split("?")[0]
        if path.startswith("/__"):
            return self._test_endpoint(path, body)
        try:
            self._send(200, self._kms_call(body))
        except KmsError as e:
            self._error(e)

    def _kms_call(self, body):
        svc = self.server.service
        target = self.headers.get("X-Amz-Target", "")
        op = target[len("TrentService."):] if target.startswith("TrentService.") else None
        svc.count("calls", op or "unknown")
        try:
            out = self._dispatch(svc, op, body)
        except KmsError as e:
            svc.count("errors", op or "unknown", e.kind)
            raise
        svc.count("succeeded", op)
        return out

    def _dispatch(self, svc, op, body):
        now = datetime.datetime.now(datetime.timezone.utc)
        st = svc.state
        try:
            akid, cred = kms_sigv4.verify(self.command, self.path, list(self.headers.items()),
                                          body, st["creds"], st["region"], "kms", now=now,
                                          max_skew=st["max_skew"])
        except kms_sigv4.SigV4Error as e:
            status = 403 if e.kind == "MissingAuthenticationTokenException" else 400
            raise KmsError(e.kind, e.message, status) from None
        if op not in Service.OPS:
            raise KmsError("UnknownOperationException",
                           "X-Amz-Target must be TrentService.Encrypt, .Decrypt or "
                           ".GenerateRandom")
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in ("application/x-amz-json-1.1", "application/x-amz-json-1.0"):
            raise KmsError("SerializationException",
                           "Content-Type must be application/x-amz-json-1.1")
        if svc.take_throttle():
            raise KmsError("ThrottlingException", "Rate exceeded")
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            raise KmsError("SerializationException", "body is not JSON") from None
        if not isinstance(req, dict):
            raise KmsError("SerializationException", "body must be a JSON object")
        if isinstance(req.get("Recipient"), dict):
            svc.count("recipient", op)
        return Service.OPS[op](svc, req, cred.get("principal"))

    def _test_endpoint(self, path, body):
        svc = self.server.service
        try:
            req = json.loads(body or b"{}")
            if path == "/__reset":
                svc.reset()
            elif path == "/__throttle":
                with svc.lock:
                    svc.throttle = int(req["count"])
            elif path == "/__policy":
                kms_policy.validate(req["policy"])
                if req.get("generate_random"):
                    svc.state["random_policy"] = req["policy"]
                else:
                    svc.state["keys"][svc.resolve(req["key_id"])]["policy"] = req["policy"]
            else:
                raise KmsError("UnknownOperationException", "no such test endpoint", 404)
        except KmsError as e:
            return self._error(e)
        except (ValueError, KeyError, TypeError, kms_policy.PolicyError) as e:
            return self._error(KmsError("ValidationException", "bad test request: %s" % e))
        self._send(200, {"ok": True})


class Server(http.server.ThreadingHTTPServer):
    """Threaded server; TLS, when configured, is handshaken in the request
    thread so a silent client cannot stall the accept loop."""

    daemon_threads = True
    tls = None

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(30)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        if not self.quiet:
            sys.stderr.write("kms-standin: connection from %s:%d dropped: %s\n"
                             % (client_address[0], client_address[1], sys.exc_info()[1]))


def make_test_tls(tls_dir, region):
    """Makes a throwaway CA and a server certificate for
    kms.<region>.amazonaws.com, localhost and 127.0.0.1 in tls_dir (ca.pem,
    server.pem, server.key); returns (cert path, key path)."""
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    os.makedirs(tls_dir, exist_ok=True)
    now = datetime.datetime.utcnow()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kms-standin test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                       False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    host = "kms.%s.amazonaws.com" % region
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(host), x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {n: os.path.join(tls_dir, n) for n in ("ca.pem", "server.pem", "server.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["server.pem"], "wb") as f:
        f.write(cert.public_bytes(pem))
    fd = os.open(paths["server.key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths["server.pem"], paths["server.key"]


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Test-only AWS KMS stand-in")
    ap.add_argument("--config", help="JSON config (credentials, keys, policies, root)")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    ap.add_argument("--tls-dir", help="make a test CA + server cert here (ca.pem)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--region")
    ap.add_argument("--access-key-id")
    ap.add_argument("--secret-access-key")
    ap.add_argument("--session-token")
    ap.add_argument("--key", action="append", default=[], metavar="ID:HEX[:POLICY.json]")
    ap.add_argument("--attestation-root", help="pinned root certificate (PEM or DER)")
    ap.add_argument("--attestation-max-age", type=int, metavar="SECONDS",
                    help="oldest attestation document accepted (default 300)")
    ap.add_argument("--throttle", type=int, default=0,
                    help="answer ThrottlingException to the next N KMS calls")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.access_key_id and not a.secret_access_key:
        ap.error("--access-key-id needs --secret-access-key")
    return a


def main(argv=None):
    a = parse_args(argv)
    state = load_config(a.config, a)
    if not state["creds"]:
        sys.exit("kms-standin: no credentials configured")
    server = Server(("127.0.0.1", a.port), Handler)
    server.service = Service(state, a.throttle)
    server.quiet = a.quiet
    if not a.http:
        cert, key = a.tls_cert, a.tls_key
        if not cert:
            tls_dir = a.tls_dir or tempfile.mkdtemp(prefix="kms-standin-tls.")
            cert, key = make_test_tls(tls_dir, state["region"])
            sys.stderr.write("kms-standin: test CA in %s\n" % os.path.join(tls_dir, "ca.pem"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        server.tls = ctx
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("KMS_STANDIN_READY port=%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
