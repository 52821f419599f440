#!/usr/bin/env python3
"""scripts/generate_key_policy.sh writes a policy that the KMS stand-in's
policy evaluator (tests/kms/kms_policy.py, the rules KMS applies) reads as:
Decrypt only for the pod's role with the given PCR0, Encrypt for the role,
administration without Decrypt; --debug means the all-zero PCR0 and a loud
warning; a rollout policy allows the old and the new image.  Prints
"key-policy: N passed, M failed"."""
import json
import os
import subprocess
import sys

SRC = os.environ.get("SIGNER_SRCDIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SRC, "tests", "kms"))
import kms_policy  # noqa: E402

SCRIPT = os.path.join(SRC, "scripts", "generate_key_policy.sh")
ACCOUNT = "111122223333"
ROLE = "arn:aws:iam::%s:role/enclave-signer" % ACCOUNT
ADMIN = "arn:aws:iam::%s:root" % ACCOUNT
OTHER_ROLE = "arn:aws:iam::%s:role/someone-else" % ACCOUNT
PCR0 = "3a63ce0b73de77dcf528a04434fdce6de7b1a75b0cf6422d50c56ff40c97cf1285ffc683dc692c35f235b608ee550dd5"
PCR0_NEW = "9f" * 48
PCR0_OTHER = "1b" * 48
ZERO = "0" * 96
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)


def generate(*args):
    env = {k: v for k, v in os.environ.items() if k != "AWS_ACCOUNT_ID"}
    p = subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=30, env=env)
    return p.returncode, p.stdout, p.stderr


def ctx(pcr0):
    return kms_policy.attestation_context({0: bytes.fromhex(pcr0), 1: b"\x11" * 48})


def decrypts(policy, principal, pcr0):
    return kms_policy.allows(policy, "kms:Decrypt", principal, ctx(pcr0) if pcr0 else {})


rc, out, err = generate(PCR0, "--account", ACCOUNT)
check(rc == 0 and err == "", "PCR0 policy generated without warnings")
policy = json.loads(out)
kms_policy.validate(policy)
check(decrypts(policy, ROLE, PCR0), "Decrypt: the pod's role with the image's PCR0 is allowed")
rc, out, err = generate(PCR0.upper(), "--account", ACCOUNT)
check(rc == 0 and decrypts(json.loads(out), ROLE, PCR0), "Decrypt: an upper-case PCR0 argument matches")
check(not decrypts(policy, ROLE, PCR0_OTHER), "Decrypt: another image's PCR0 is denied")
check(not decrypts(policy, ROLE, ZERO), "Decrypt: a debug enclave (PCR0 zero) is denied")
check(not decrypts(policy, ROLE, None), "Decrypt: no attestation document is denied")
check(not decrypts(policy, OTHER_ROLE, PCR0), "Decrypt: another role with the right PCR0 is denied")
check(not decrypts(policy, ADMIN, PCR0) and not decrypts(policy, ADMIN, None),
      "Decrypt: the administrator is denied")
check(kms_policy.allows(policy, "kms:Encrypt", ROLE, {}), "Encrypt: the pod's role is allowed")
check(not kms_policy.allows(policy, "kms:Encrypt", OTHER_ROLE, {}), "Encrypt: another role is denied")
check(kms_policy.allows(policy, "kms:PutKeyPolicy", ADMIN, {}) and
      kms_policy.allows(policy, "kms:ScheduleKeyDeletion", ADMIN, {}),
      "administration: the administrator may put the policy and schedule deletion")
check(not kms_policy.allows(policy, "kms:PutKeyPolicy", ROLE, {}), "administration: the pod's role may not")

rc, out, err = generate("--debug", "--account", ACCOUNT)
check(rc == 0 and "FOR DEVELOPMENT ONLY" in err, "--debug warns on stderr")
dbg = json.loads(out)
check(decrypts(dbg, ROLE, ZERO) and not decrypts(dbg, ROLE, PCR0), "--debug: only the all-zero PCR0 decrypts")

rc, out, err = generate(PCR0, "--also-pcr0", PCR0_NEW, "--account", ACCOUNT)
roll = json.loads(out)
check(decrypts(roll, ROLE, PCR0) and decrypts(roll, ROLE, PCR0_NEW) and not decrypts(roll, ROLE, PCR0_OTHER),
      "rollout policy: the old and the new image decrypt, no other")

rc, out, err = generate(PCR0, "--role-arn", "arn:aws:iam::444455556666:role/pod", "--admin-arn",
                        "arn:aws:iam::444455556666:role/admin")
check(rc == 0 and decrypts(json.loads(out), "arn:aws:iam::444455556666:role/pod", PCR0),
      "--role-arn/--admin-arn are used")
for bad, what in (([PCR0[:-1], "--account", ACCOUNT], "a 95-digit PCR0"),
                  (["zz" * 48, "--account", ACCOUNT], "a non-hex PCR0"),
                  ([PCR0], "no account and no ARNs"),
                  ([PCR0, "--role-arn", "not-an-arn", "--admin-arn", ADMIN], "a malformed role ARN"),
                  (["--account", ACCOUNT], "no PCR0 and no --debug")):
    rc, out, err = generate(*bad)
    check(rc != 0 and out == "" and "generate_key_policy:" in err, "refused: " + what)

print("key-policy: %d passed, %d failed" % (passed, failed))
sys.exit(0 if failed == 0 and passed > 0 else 1)
