"""The stand-in's SigV4 verifier against the official AWS SigV4 test suite
(tests/vectors/sigv4, copied from awslabs/aws-c-auth).

For every case: the signed request (header-signed-request.txt) verifies with
the case's credentials; the verifier's canonical request, string to sign and
signature equal the suite's files; a wrong secret, a changed signed header
and an unknown access key are refused with KMS's error names.
"""

import copy
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kms_sigv4  # noqa: E402

SRCDIR = os.environ.get("SIGNER_SRCDIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SUITE = os.path.join(SRCDIR, "tests", "vectors", "sigv4")


def parse_request(text):
    """request.txt format: request line, headers (folded lines start with
    whitespace), blank line, body."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        elif line:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, target, headers, body.encode("utf-8")


def read(case, name):
    with open(os.path.join(SUITE, case, name), encoding="utf-8") as f:
        return f.read()


def cases():
    return sorted(d for d in os.listdir(SUITE)
                  if os.path.isfile(os.path.join(SUITE, d, "header-signed-request.txt")))


class SuiteTest(unittest.TestCase):
    def run_case(self, case, mutate=None, secret=None, akid=None):
        ctx = json.loads(read(case, "context.json"))
        c = ctx["credentials"]
        cred = {"secret_access_key": secret or c["secret_access_key"]}
        if "token" in c:
            cred["session_token"] = c["token"]
        method, target, headers, body = parse_request(read(case, "header-signed-request.txt"))
        if mutate:
            headers = mutate(headers)
        trace = {}
        kms_sigv4.verify(method, target, headers, body, {akid or c["access_key_id"]: cred},
                         ctx["region"], ctx["service"], now=None,
                         normalize=ctx.get("normalize", True), trace=trace)
        return trace

    def test_suite_accepts_and_reproduces(self):
        names = cases()
        self.assertGreaterEqual(len(names), 30, "the SigV4 suite is missing")
        for case in names:
            with self.subTest(case=case):
                trace = self.run_case(case)
                self.assertEqual(trace["canonical_request"],
                                 read(case, "header-canonical-request.txt"))
                self.assertEqual(trace["string_to_sign"],
                                 read(case, "header-string-to-sign.txt"))
                self.assertEqual(trace["signature"],
                                 read(case, "header-signature.txt").strip())

    def test_wrong_secret_refused(self):
        for case in ("post-vanilla", "get-vanilla-with-session-token"):
            with self.assertRaises(kms_sigv4.SigV4Error) as e:
                self.run_case(case, secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ")
            self.assertEqual(e.exception.kind, "InvalidSignatureException")

    def test_unknown_access_key_refused(self):
        with self.assertRaises(kms_sigv4.SigV4Error) as e:
            self.run_case("post-vanilla", akid="AKIDOTHER")
        self.assertEqual(e.exception.kind, "UnrecognizedClientException")

    def test_changed_signed_header_refused(self):
        def change(headers):
            return [(n, "example2.amazonaws.com" if n.lower() == "host" else v)
                    for n, v in headers]
        with self.assertRaises(kms_sigv4.SigV4Error) as e:
            self.run_case("post-vanilla", mutate=change)
        self.assertEqual(e.exception.kind, "InvalidSignatureException")

    def test_changed_body_refused(self):
        ctx = json.loads(read("post-x-www-form-urlencoded", "context.json"))
        method, target, headers, body = parse_request(
            read("post-x-www-form-urlencoded", "header-signed-request.txt"))
        creds = {ctx["credentials"]["access_key_id"]:
                 {"secret_access_key": ctx["credentials"]["secret_access_key"]}}
        import hashlib
        forged = hashlib.sha256(body + b"x").hexdigest()
        relabelled = [(n, forged if n.lower() == "x-amz-content-sha256" else v)
                      for n, v in headers]
        for hdrs in (headers, relabelled):
            with self.assertRaises(kms_sigv4.SigV4Error) as e:
                kms_sigv4.verify(method, target, hdrs, body + b"x", creds,
                                 ctx["region"], ctx["service"])
            self.assertEqual(e.exception.kind, "InvalidSignatureException")

    def test_session_token_checked(self):
        # The token is configured but the request carries another one.
        def change(headers):
            return [(n, v[:-4] + "AAAA" if n.lower() == "x-amz-security-token" else v)
                    for n, v in headers]
        with self.assertRaises(kms_sigv4.SigV4Error):
            self.run_case("post-sts-header-after", mutate=change)
        # A request without a token for credentials that have one.
        def drop(headers):
            return [h for h in headers if h[0].lower() != "x-amz-security-token"]
        with self.assertRaises(kms_sigv4.SigV4Error) as e:
            self.run_case("post-sts-header-after", mutate=drop)
        self.assertEqual(e.exception.kind, "UnrecognizedClientException")

    def test_skew_refused(self):
        import datetime
        ctx = json.loads(read("post-vanilla", "context.json"))
        method, target, headers, body = parse_request(
            read("post-vanilla", "header-signed-request.txt"))
        creds = {"AKIDEXAMPLE": {"secret_access_key": ctx["credentials"]["secret_access_key"]}}
        signed_at = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.timezone.utc)
        kms_sigv4.verify(method, target, headers, body, creds, "us-east-1", "service",
                         now=signed_at + datetime.timedelta(seconds=299))
        with self.assertRaises(kms_sigv4.SigV4Error) as e:
            kms_sigv4.verify(method, target, headers, body, creds, "us-east-1", "service",
                             now=signed_at + datetime.timedelta(seconds=301))
        self.assertEqual(e.exception.kind, "InvalidSignatureException")
        self.assertIn("expired", e.exception.message)


if __name__ == "__main__":
    unittest.main(verbosity=1)
