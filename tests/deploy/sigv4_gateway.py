#!/usr/bin/env python3
"""Test-only stand-in for API Gateway with IAM (SigV4) auth in front of
signerd: verifies every request's AWS Signature Version 4 with
tests/kms/kms_sigv4.py (checked against the AWS SigV4 test suite), answers
403 to a missing or wrong signature, and forwards signed requests to the
upstream signerd.  Used by tests/deploy/newman.sh to prove the Postman
collection's sigv4 mode signs correctly.

  sigv4_gateway.py LISTEN_PORT UPSTREAM_PORT ACCESS_KEY_ID SECRET REGION
Prints "ready PORT" when listening; counts to stderr on exit."""
import datetime
import http.client
import http.server
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kms"))
import kms_sigv4  # noqa: E402

port, upstream, akid, secret, region = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
CREDS = {akid: {"secret_access_key": secret}}
stats = {"verified": 0, "refused": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        try:
            kms_sigv4.verify(self.command, self.path, list(self.headers.items()), body, CREDS, region,
                             "execute-api", now=datetime.datetime.now(datetime.timezone.utc))
        except kms_sigv4.SigV4Error as e:
            stats["refused"] += 1
            return self._answer(403, json.dumps({"message": "%s: %s" % (e.kind, e.message)}).encode())
        stats["verified"] += 1
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
        fwd = {k: v for k, v in self.headers.items()
               if k.lower() not in ("authorization", "host", "content-length") and not k.lower().startswith("x-amz-")}
        conn.request(self.command, self.path, body=body if body else None, headers=fwd)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        self._answer(r.status, data, r.getheader("Content-Type", "application/json"))

    do_GET = do_POST = _handle


def stop(*_):
    sys.stderr.write("sigv4-gateway: %d verified, %d refused\n" % (stats["verified"], stats["refused"]))
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("ready %d" % port, flush=True)
srv.serve_forever()
