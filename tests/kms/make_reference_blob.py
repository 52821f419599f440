#!/usr/bin/python3
"""Makes a reference-wallet sealed key for the migration tests (test-only).

The reference wallet stored KMS Encrypt ciphertexts of the JSON
{"secret": ..., "eth_key": ...} with NO encryption context.  This script
makes the same thing as the KMS stand-in's ciphertext blob, offline, from the
stand-in's config (the key's material), so the stand-in's Decrypt opens it:

  make_reference_blob.py --config standin.json --key-id ID \
      --secret S --eth-key HEX [--raw-out FILE]

Prints the blob as base64 (what the reference kept in DynamoDB's
`ciphertext`).  --eth-key is taken as given: pass fewer than 64 hex digits to
reproduce the reference's unpadded keys.  The output is a secret: tests only.
"""

import argparse
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kms_standin  # noqa: E402


def reference_plaintext(secret, eth_key):
    """The reference wallet's sealed JSON, compact, in its field order."""
    return json.dumps({"secret": secret, "eth_key": eth_key}, separators=(",", ":")).encode()


def main(argv=None):
    ap = argparse.ArgumentParser(description="reference-wallet KMS blob for tests")
    ap.add_argument("--config", required=True)
    ap.add_argument("--key-id", required=True, help="key id or alias in the config")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--eth-key", required=True)
    ap.add_argument("--raw-out", help="also write the raw blob here")
    a = ap.parse_args(argv)
    state = kms_standin.load_config(a.config)
    key_id = kms_standin.Service(state).resolve(a.key_id)
    blob = kms_standin.seal_blob(key_id, state["keys"][key_id]["material"],
                                 reference_plaintext(a.secret, a.eth_key), {})
    if a.raw_out:
        with open(a.raw_out, "wb") as f:
            f.write(blob)
    print(base64.b64encode(blob).decode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
