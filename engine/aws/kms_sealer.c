/* aws-kms seal and unseal steps (see kms_sealer.h, docs/aws.md). */
#include "config.h"
#include "aws/kms_sealer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "util.h"

/* {key_id, chain, address}: a blob moved to another key does not open. */
static size_t meta_context(eng_kms_kv ctx[3], const signer_key_meta *meta)
{
    ctx[0] = (eng_kms_kv){ "key_id", meta->key_id };
    ctx[1] = (eng_kms_kv){ "chain", meta->chain };
    ctx[2] = (eng_kms_kv){ "address", meta->address };
    return 3;
}

int eng_kms_seal(const eng_kms_cfg *cfg, unsigned char **blob,
                 size_t *blob_len, eng_kms_err *err,
                 const eng_aws_creds *creds, const char *kms_key_id,
                 const signer_key_meta *meta, const unsigned char *plain,
                 size_t plain_len)
{
    unsigned char *v1 = eng_secure_alloc(ENG_PLAIN_MAX + 1);
    eng_kms_kv ctx[3];
    size_t n = 0;
    int rc;

    *blob = NULL;
    *blob_len = 0;
    memset(err, 0, sizeof *err);
    if (v1 == NULL)
        return SIGNER_ERR_NOMEM;
    if (meta == NULL || meta->key_id == NULL || meta->chain == NULL ||
        meta->address == NULL) {
        rc = SIGNER_ERR_INTERNAL;
        goto cleanup;
    }
    rc = eng_kms_seal_encode(v1, ENG_PLAIN_MAX + 1, &n, plain, plain_len);
    if (rc != SIGNER_OK) {
        snprintf(err->msg, sizeof err->msg, "invalid key layout to seal");
        goto cleanup;
    }
    rc = eng_kms_encrypt(cfg, blob, blob_len, err, creds, kms_key_id, v1, n,
                         ctx, meta_context(ctx, meta));
cleanup:
    eng_secure_free(v1, ENG_PLAIN_MAX + 1);
    return rc;
}

/* One Decrypt + Recipient (with or without the context), decoded into the
 * ENG_PLAIN layout if its format is the wanted one. */
static int unseal_once(const eng_kms_cfg *cfg, unsigned char *plain,
                       size_t cap, size_t *plain_len, int want,
                       eng_kms_err *err, const eng_aws_creds *creds,
                       const eng_kms_kv *ctx, size_t n_ctx,
                       const unsigned char *blob, size_t blob_len,
                       const eng_aws_rkey *rkey, const unsigned char *doc,
                       size_t doc_len)
{
    unsigned char *raw = eng_secure_alloc(ENG_KMS_PLAIN_MAX);
    size_t rlen = 0;
    int rc, fmt = 0;

    if (raw == NULL)
        return SIGNER_ERR_NOMEM;
    rc = eng_kms_decrypt_recipient(cfg, raw, ENG_KMS_PLAIN_MAX, &rlen, err,
                                   creds, NULL, blob, blob_len, ctx, n_ctx,
                                   rkey, doc, doc_len);
    if (rc == SIGNER_OK &&
        (eng_kms_seal_decode(plain, cap, plain_len, &fmt, raw, rlen) !=
             SIGNER_OK || fmt != want)) {
        snprintf(err->msg, sizeof err->msg, "the sealed key's plaintext "
                 "has an unknown or unexpected format");
        rc = SIGNER_ERR_FORBIDDEN;
        eng_wipe(plain, cap);
        *plain_len = 0;
    }
    eng_secure_free(raw, ENG_KMS_PLAIN_MAX);
    return rc;
}

int eng_kms_unseal(const eng_kms_cfg *cfg, unsigned char *plain, size_t cap,
                   size_t *plain_len, int *format, eng_kms_err *err,
                   const eng_aws_creds *creds, const signer_key_meta *meta,
                   const unsigned char *blob, size_t blob_len,
                   const eng_aws_rkey *rkey, const unsigned char *doc,
                   size_t doc_len)
{
    eng_kms_kv ctx[3];
    int rc;

    *plain_len = 0;
    *format = 0;
    if (meta == NULL || meta->key_id == NULL || meta->chain == NULL ||
        meta->address == NULL)
        return SIGNER_ERR_INTERNAL;
    rc = unseal_once(cfg, plain, cap, plain_len, ENG_KMS_FMT_V1, err, creds,
                     ctx, meta_context(ctx, meta), blob, blob_len, rkey, doc,
                     doc_len);
    if (rc == SIGNER_OK) {
        *format = ENG_KMS_FMT_V1;
        return rc;
    }
    if (rc != SIGNER_ERR_FORBIDDEN ||
        strcmp(err->type, "InvalidCiphertextException") != 0)
        return rc;
    /* reference-wallet blobs were sealed without a context */
    rc = unseal_once(cfg, plain, cap, plain_len, ENG_KMS_FMT_REFERENCE, err,
                     creds, NULL, 0, blob, blob_len, rkey, doc, doc_len);
    if (rc == SIGNER_OK)
        *format = ENG_KMS_FMT_REFERENCE;
    else if (rc == SIGNER_ERR_FORBIDDEN)
        snprintf(err->msg, sizeof err->msg, "KMS refused the sealed key: "
                 "corrupted, or bound to another key_id, chain or address");
    return rc;
}
