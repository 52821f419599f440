"""AWS Signature Version 4 verification for the KMS stand-in (test-only).

Written from the SigV4 specification (see docs/testing-kms.md), independently
of the engine's C signer, and checked against the official AWS test suite in
tests/vectors/sigv4 by tests/kms/test_sigv4.py.

verify() takes a request as (method, raw target, header list, body) and the
configured credentials, and either returns the matching credential or raises
SigV4Error carrying the KMS error name a real endpoint would answer.
"""

import datetime
import hashlib
import hmac
import re
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


class SigV4Error(Exception):
    """A request the verifier refuses; kind is the KMS error name."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _encode(text):
    """RFC 3986 percent-encoding of everything but the unreserved set."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    return "".join(chr(b) if chr(b) in UNRESERVED else "%%%02X" % b for b in text)


def canonical_path(raw_path, normalize=True):
    """The canonical URI: the path as sent, optionally with dot segments and
    empty segments removed, then each segment percent-encoded (a path that
    was already encoded on the wire is encoded again, as non-S3 services do)."""
    if not raw_path.startswith("/"):
        raw_path = "/" + raw_path
    segments = raw_path.split("/")[1:]
    if normalize:
        out = []
        for seg in segments:
            if seg in ("", "."):
                continue
            if seg == "..":
                if out:
                    out.pop()
                continue
            out.append(seg)
        trailing = raw_path.endswith("/") and bool(out)
        path = "/" + "/".join(_encode(s) for s in out)
        return path + "/" if trailing else path
    return "/" + "/".join(_encode(s) for s in segments)


def canonical_query(raw_query):
    """Sorted, re-encoded name=value pairs of the query string."""
    if not raw_query:
        return ""
    pairs = []
    for part in raw_query.split("&"):
        if part == "":
            continue
        name, _, value = part.partition("=")
        pairs.append((_encode(urllib.parse.unquote(name)),
                      _encode(urllib.parse.unquote(value))))
    pairs.sort()
    return "&".join("%s=%s" % p for p in pairs)


def _trim(value):
    return re.sub(r"\s+", " ", value.strip())


def canonical_headers(headers, signed):
    """The canonical header block for the signed header names: lower-case
    names, trimmed values (folded lines joined), repeated headers joined with
    commas in their order of appearance."""
    values = {}
    for name, value in headers:
        values.setdefault(name.strip().lower(), []).append(_trim(value))
    lines = []
    for name in signed:
        if name not in values:
            raise SigV4Error("IncompleteSignatureException",
                             "signed header %s is missing from the request" % name)
        lines.append("%s:%s\n" % (name, ",".join(values[name])))
    return "".join(lines)


def canonical_request(method, raw_target, headers, signed, payload_hash, normalize=True):
    """The SigV4 canonical request for a raw request target ('/path?query')."""
    path, _, query = raw_target.partition("?")
    return "\n".join([method.upper(), canonical_path(path, normalize),
                      canonical_query(query),
                      canonical_headers(headers, signed),
                      ";".join(signed), payload_hash])


def string_to_sign(amz_date, scope, creq):
    """The SigV4 string to sign."""
    return "\n".join([ALGORITHM, amz_date, scope,
                      hashlib.sha256(creq.encode("utf-8")).hexdigest()])


def signing_key(secret, date, region, service):
    """kSigning = HMAC chain over date, region, service, 'aws4_request'."""
    k = hmac.new(("AWS4" + secret).encode("utf-8"), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def parse_authorization(value):
    """Splits 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'."""
    if value is None:
        raise SigV4Error("MissingAuthenticationTokenException",
                         "Missing Authentication Token")
    algo, _, rest = value.strip().partition(" ")
    if algo != ALGORITHM:
        raise SigV4Error("IncompleteSignatureException",
                         "Authorization: unsupported algorithm %r" % algo)
    fields = {}
    for item in rest.split(","):
        key, eq, val = item.strip().partition("=")
        if eq:
            fields[key] = val
    for need in ("Credential", "SignedHeaders", "Signature"):
        if need not in fields:
            raise SigV4Error("IncompleteSignatureException",
                             "Authorization header requires '%s' parameter" % need)
    cred = fields["Credential"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise SigV4Error("IncompleteSignatureException",
                         "Credential must be AKID/date/region/service/aws4_request")
    signed = fields["SignedHeaders"].split(";")
    if signed != sorted(signed) or any(s != s.lower() or not s for s in signed):
        raise SigV4Error("IncompleteSignatureException",
                         "SignedHeaders must be sorted lower-case names")
    if not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        raise SigV4Error("IncompleteSignatureException", "Signature must be 64 hex digits")
    return {"akid": cred[0], "date": cred[1], "region": cred[2], "service": cred[3],
            "signed": signed, "signature": fields["Signature"]}


def _header(headers, name):
    found = [v for n, v in headers if n.strip().lower() == name]
    return _trim(found[0]) if found else None


def _check_date(amz_date, auth, now, max_skew):
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        raise SigV4Error("IncompleteSignatureException",
                         "X-Amz-Date must be YYYYMMDDTHHMMSSZ") from None
    if auth["date"] != amz_date[:8]:
        raise SigV4Error("InvalidSignatureException",
                         "Credential scope date does not match X-Amz-Date")
    if now is not None and abs((now - when).total_seconds()) > max_skew:
        raise SigV4Error("InvalidSignatureException",
                         "Signature expired: %s is more than %d s from the server time"
                         % (amz_date, max_skew))


def _check_token(headers, cred, now):
    sent = _header(headers, "x-amz-security-token")
    want = cred.get("session_token")
    if want is None and sent is None:
        return
    if want is None or sent is None or not hmac.compare_digest(sent.encode(), want.encode()):
        raise SigV4Error("UnrecognizedClientException",
                         "The security token included in the request is invalid.")
    exp = cred.get("expiration")
    if exp is not None and now is not None and now.timestamp() >= exp:
        raise SigV4Error("ExpiredTokenException",
                         "The security token included in the request is expired")


def verify(method, raw_target, headers, body, credentials, region, service,
           now=None, max_skew=300, normalize=True, required=("host",), trace=None):
    """Verifies a SigV4-signed request.

    headers: list of (name, value) as received; credentials: dict access key
    id -> {"secret_access_key", "session_token"?, "expiration"? (epoch s)}.
    now: aware datetime for the skew check (None: no check, for the suite).
    trace: optional dict receiving the canonical request, string to sign and
    the expected signature.  Returns (access_key_id, credential dict).
    """
    auth = parse_authorization(_header(headers, "authorization"))
    cred = credentials.get(auth["akid"])
    if cred is None:
        raise SigV4Error("UnrecognizedClientException",
                         "The security token included in the request is invalid.")
    if auth["region"] != region or auth["service"] != service:
        raise SigV4Error("InvalidSignatureException",
                         "Credential should be scoped to region '%s' and service '%s'"
                         % (region, service))
    amz_date = _header(headers, "x-amz-date")
    if amz_date is None:
        raise SigV4Error("IncompleteSignatureException", "X-Amz-Date header is missing")
    for name in tuple(required) + ("x-amz-date",):
        if name not in auth["signed"]:
            raise SigV4Error("InvalidSignatureException",
                             "header '%s' must be signed" % name)
    _check_date(amz_date, auth, now, max_skew)
    body_hash = hashlib.sha256(body).hexdigest()
    claimed = _header(headers, "x-amz-content-sha256")
    if claimed is not None and claimed != body_hash:
        raise SigV4Error("InvalidSignatureException",
                         "x-amz-content-sha256 does not match the body")
    creq = canonical_request(method, raw_target, headers, auth["signed"], body_hash, normalize)
    scope = "%s/%s/%s/aws4_request" % (auth["date"], region, service)
    sts = string_to_sign(amz_date, scope, creq)
    key = signing_key(cred["secret_access_key"], auth["date"], region, service)
    expect = hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()
    if trace is not None:
        trace.update(canonical_request=creq, string_to_sign=sts, signature=expect)
    if not hmac.compare_digest(expect.encode(), auth["signature"].encode()):
        raise SigV4Error("InvalidSignatureException",
                         "The request signature we calculated does not match the "
                         "signature you provided. Check your AWS Secret Access Key "
                         "and signing method.")
    _check_token(headers, cred, now)
    return auth["akid"], cred
