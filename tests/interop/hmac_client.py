#!/usr/bin/env python3
"""A Python HMAC client for signerd (docs/hmac.md).

Usage: hmac_client.py SECRET OPERATION KEY_ID TIMESTAMP < covered.json
Prints the hex HMAC-SHA256 of
    operation "\\n" key_id "\\n" JCS(covered) "\\n" timestamp
keyed by SECRET, where JCS is RFC 8785 (the tiny implementation below).
"""
import hashlib
import hmac
import json
import sys


def es_number(x):
    """A float as ECMAScript's Number.prototype.toString writes it."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("JSON has no NaN or Infinity")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    mant, _, exp = repr(float(x)).partition("e")  # shortest round-trip digits
    ip, _, fp = mant.partition(".")
    exp = int(exp or 0)
    if ip.lstrip("0"):
        n = len(ip.lstrip("0")) + exp
    else:
        n = exp - (len(fp) - len(fp.lstrip("0")))
    digits = (ip + fp).lstrip("0").rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    return (digits[0] + ("." + digits[1:] if k > 1 else "") + "e"
            + ("+" if e >= 0 else "-") + str(abs(e)))


def jcs(v):
    """RFC 8785 canonical JSON text of a value from json.loads."""
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, int):
        return es_number(float(v)) if abs(v) > 2**53 else str(v)
    if isinstance(v, float):
        return es_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    keys = sorted(v, key=lambda k: k.encode("utf-16-be"))  # UTF-16 order
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(v[k])
                          for k in keys) + "}"


def hmac_hex(secret, operation, key_id, covered, timestamp):
    msg = "%s\n%s\n%s\n%d" % (operation, key_id, jcs(covered), timestamp)
    return hmac.new(secret.encode(), msg.encode("utf-8"),
                    hashlib.sha256).hexdigest()


if __name__ == "__main__":
    secret, operation, key_id, ts = sys.argv[1:5]
    if len(sys.argv) > 5 and sys.argv[5] == "--jcs":
        print(jcs(json.loads(sys.stdin.read())))
    else:
        print(hmac_hex(secret, operation, key_id, json.loads(sys.stdin.read()),
                       int(ts)))
