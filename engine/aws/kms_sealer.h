/* The aws-kms sealer's two steps, ready for a sealer table row: seal an
 * ENG_PLAIN layout with KMS Encrypt under the blob's encryption context
 * {key_id, chain, address}; unseal with KMS Decrypt + Recipient (the
 * enclave's attestation document) and CMS, including reference-wallet
 * blobs (no context).  See docs/aws.md. */
#ifndef ENG_AWS_KMS_SEALER_H
#define ENG_AWS_KMS_SEALER_H

#include <signer/plugin.h>

#include "aws/kms.h"
#include "aws/kms_seal.h"

/* Seals plain (an ENG_PLAIN layout) for meta under the KMS key kms_key_id
 * into *blob (malloc'd CiphertextBlob).  Errors as eng_kms_encrypt. */
int eng_kms_seal(const eng_kms_cfg *cfg, unsigned char **blob,
                 size_t *blob_len, eng_kms_err *err,
                 const eng_aws_creds *creds, const char *kms_key_id,
                 const signer_key_meta *meta, const unsigned char *plain,
                 size_t plain_len)
    __attribute__((warn_unused_result));

/* Opens blob for meta into plain[0..cap) (ENG_PLAIN layout): Decrypt with
 * the context and a Recipient (rkey, doc = attestation document holding
 * rkey's SPKI), accepting only a v1 plaintext; if KMS refuses the
 * ciphertext for that context, once more without a context, accepting only
 * a reference-wallet JSON.  *format says which.  Errors as
 * eng_kms_decrypt_recipient (FORBIDDEN: not this key's blob); plain wiped
 * on failure. */
int eng_kms_unseal(const eng_kms_cfg *cfg, unsigned char *plain, size_t cap,
                   size_t *plain_len, int *format, eng_kms_err *err,
                   const eng_aws_creds *creds, const signer_key_meta *meta,
                   const unsigned char *blob, size_t blob_len,
                   const eng_aws_rkey *rkey, const unsigned char *doc,
                   size_t doc_len)
    __attribute__((warn_unused_result));

#endif
