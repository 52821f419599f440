"""Key policy evaluation for the KMS stand-in (test-only).

A policy is IAM JSON: {"Version", "Statement": [{"Effect": "Allow"|"Deny",
"Principal": "*" | {"AWS": ARN or [ARN...]}, "Action": "kms:Decrypt" or a
list (wildcards allowed), "Resource": ignored, "Condition": {OPERATOR: {KEY:
VALUE or [VALUE...]}}}]}.  As in IAM: an explicit Deny wins, otherwise some
Allow must match, otherwise access is denied.  Inside a Condition every
operator and key must hold (AND); the values of one key are alternatives
(OR).  A key the request does not carry makes its condition false, unless
the operator ends in IfExists.

Condition keys the stand-in fills from a verified attestation document:
kms:RecipientAttestation:ImageSha384 (= PCR0) and
kms:RecipientAttestation:PCR<n>, as lower-case hex; and
kms:EncryptionContext:<name> from the request.  Keys compare
case-insensitively (as IAM does).
"""

import fnmatch

OPERATORS = {
    "StringEquals": lambda have, want: have == want,
    "StringEqualsIgnoreCase": lambda have, want: have.lower() == want.lower(),
    "StringNotEquals": lambda have, want: have != want,
    "StringNotEqualsIgnoreCase": lambda have, want: have.lower() != want.lower(),
}
NEGATED = ("StringNotEquals", "StringNotEqualsIgnoreCase")


class PolicyError(Exception):
    """The policy document is malformed or uses an unsupported operator."""


def _as_list(value):
    return value if isinstance(value, list) else [value]


def validate(policy):
    """Raises PolicyError unless policy is a document this module evaluates."""
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), (list, dict)):
        raise PolicyError("policy needs a Statement list")
    for st in _as_list(policy["Statement"]):
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError("every statement needs Effect Allow or Deny")
        if "Action" not in st or not all(isinstance(a, str) for a in _as_list(st["Action"])):
            raise PolicyError("every statement needs an Action")
        cond = st.get("Condition", {})
        if not isinstance(cond, dict):
            raise PolicyError("Condition must be an object")
        for op, tests in cond.items():
            base = op[:-8] if op.endswith("IfExists") else op
            if base not in OPERATORS:
                raise PolicyError("unsupported condition operator %s" % op)
            if not isinstance(tests, dict) or not all(
                    isinstance(v, str) for vals in tests.values() for v in _as_list(vals)):
                raise PolicyError("condition %s must map keys to strings" % op)


def _principal_matches(st, principal):
    p = st.get("Principal", "*")
    if p == "*":
        return True
    if isinstance(p, dict) and "AWS" in p:
        allowed = _as_list(p["AWS"])
        return "*" in allowed or (principal is not None and principal in allowed)
    return False


def _action_matches(st, action):
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(st["Action"]))


def _condition_holds(st, context):
    ctx = {k.lower(): v for k, v in context.items()}
    for op, tests in st.get("Condition", {}).items():
        if_exists = op.endswith("IfExists")
        base = op[:-8] if if_exists else op
        fn = OPERATORS[base]
        for key, values in tests.items():
            have = ctx.get(key.lower())
            if have is None:
                if if_exists:
                    continue
                return False
            wants = _as_list(values)
            if base in NEGATED:
                ok = all(fn(have, w) for w in wants)
            else:
                ok = any(fn(have, w) for w in wants)
            if not ok:
                return False
    return True


def allows(policy, action, principal, context):
    """True when policy allows principal to do action ('kms:Decrypt') in the
    request context (dict of condition key -> string)."""
    allowed = False
    for st in _as_list(policy["Statement"]):
        if not (_principal_matches(st, principal) and _action_matches(st, action)
                and _condition_holds(st, context)):
            continue
        if st["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def attestation_context(pcrs):
    """Condition keys for a verified document's PCRs (index -> bytes)."""
    ctx = {}
    for idx, value in pcrs.items():
        ctx["kms:RecipientAttestation:PCR%d" % idx] = value.hex()
    if 0 in pcrs:
        ctx["kms:RecipientAttestation:ImageSha384"] = pcrs[0].hex()
    return ctx
