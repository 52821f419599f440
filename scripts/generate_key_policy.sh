#!/usr/bin/env bash
# Writes the KMS key policy that binds Decrypt to the enclave image.
#
#   scripts/generate_key_policy.sh PCR0 [options] > key_policy.json
#   scripts/generate_key_policy.sh --debug [options] > key_policy.json
#
# Statements:
#   KeyAdministration  the administrator manages the key, but may neither
#                      encrypt nor decrypt with it
#   SignerEncrypt      the pod's role (IRSA) may Encrypt (sealing new keys)
#   EnclaveDecrypt     the pod's role may Decrypt ONLY with an attestation
#                      document whose PCR0 (kms:RecipientAttestation:
#                      ImageSha384) is one of the given images
#
# Options:
#   --account ID          AWS account (default: $AWS_ACCOUNT_ID); makes the
#                         default ARNs below
#   --role-arn ARN        the pod's IAM role
#                         (default arn:aws:iam::ID:role/enclave-signer)
#   --admin-arn ARN       the key administrator (default arn:aws:iam::ID:root)
#   --also-pcr0 PCR0      another image allowed to Decrypt (repeatable): during
#                         a rollout, the old and the new image
#   --debug               use the all-zero PCR0 that enclaves started with
#                         --debug-mode report.  FOR DEVELOPMENT ONLY: any
#                         debug enclave on the account's instances could then
#                         decrypt.
#
# Rollout of a new image (docs/deploy-eks.md): put the policy with
# `OLD --also-pcr0 NEW` before the rollout, and with `NEW` alone after it.
set -euo pipefail

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "generate_key_policy: $*" >&2; exit 2; }

account=${AWS_ACCOUNT_ID:-} role= admin= debug=0
pcrs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --account) account=${2:?}; shift 2 ;;
        --role-arn) role=${2:?}; shift 2 ;;
        --admin-arn) admin=${2:?}; shift 2 ;;
        --also-pcr0) pcrs+=("${2:?}"); shift 2 ;;
        --debug) debug=1; shift ;;
        -h|--help) usage ;;
        -*) die "unknown option $1" ;;
        *) pcrs=("$1" "${pcrs[@]}"); shift ;;
    esac
done
command -v jq >/dev/null || die "needs jq"

if [ "$debug" = 1 ]; then
    pcrs=("$(printf '0%.0s' $(seq 96))" "${pcrs[@]}")
    {
        echo "************************************************************************"
        echo "* WARNING: DEBUG KEY POLICY -- FOR DEVELOPMENT ONLY"
        echo "* PCR0 = 000...000 is what every enclave run with --debug-mode reports:"
        echo "* any debug enclave of this role can decrypt every sealed key."
        echo "* Never put this policy on a key that protects real funds."
        echo "************************************************************************"
    } >&2
fi
[ ${#pcrs[@]} -gt 0 ] || die "give the image's PCR0 (96 hex digits) or --debug"
for p in "${pcrs[@]}"; do
    [[ "$p" =~ ^[0-9a-fA-F]{96}$ ]] || die "PCR0 must be 96 hex digits (SHA-384): '$p'"
done
if [ -z "$role" ] || [ -z "$admin" ]; then
    [[ "$account" =~ ^[0-9]{12}$ ]] || die "give --account (12 digits) or both --role-arn and --admin-arn"
fi
role=${role:-arn:aws:iam::$account:role/enclave-signer}
admin=${admin:-arn:aws:iam::$account:root}
for a in "$role" "$admin"; do
    [[ "$a" =~ ^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$ ]] || die "not an IAM ARN: '$a'"
done

printf '%s\n' "${pcrs[@]}" | tr 'A-F' 'a-f' | jq -R . | jq -s \
    --arg role "$role" --arg admin "$admin" '{
  Version: "2012-10-17",
  Id: "enclave-signer-key-policy",
  Statement: [
    { Sid: "KeyAdministration", Effect: "Allow", Principal: { AWS: $admin },
      Action: ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*",
               "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*",
               "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
               "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
      Resource: "*" },
    { Sid: "SignerEncrypt", Effect: "Allow", Principal: { AWS: $role },
      Action: "kms:Encrypt", Resource: "*" },
    { Sid: "EnclaveDecrypt", Effect: "Allow", Principal: { AWS: $role },
      Action: "kms:Decrypt", Resource: "*",
      Condition: { StringEqualsIgnoreCase: {
        "kms:RecipientAttestation:ImageSha384": (unique) } } }
  ]
}'
