/* KMS calls: signing, transport, retries (see kms.h and docs/aws.md). */
#include "config.h"
#include "aws/kms.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signer/plugin.h>

#include "util.h"

int eng_kms_connect_tcp(void *arg, int *fd, uint64_t deadline_us)
{
    const eng_kms_tcp_target *t = arg;
    return eng_aws_connect_tcp(fd, t->ip, t->port, deadline_us);
}

int eng_kms_connect_vsock(void *arg, int *fd, uint64_t deadline_us)
{
    const eng_kms_vsock_target *t = arg;
    return eng_aws_connect_vsock(fd, t->cid, t->port, deadline_us);
}

static const char *kms_host(const eng_kms_cfg *cfg, char *buf, size_t cap)
{
    if (cfg->host != NULL)
        return cfg->host;
    snprintf(buf, cap, "kms.%s.amazonaws.com", cfg->region);
    return buf;
}

/* One signed POST to KMS on a fresh connection. */
static int kms_attempt(const eng_kms_cfg *cfg, eng_http_resp *resp,
                       const eng_aws_creds *creds, const char *target,
                       const char *body, uint64_t deadline)
{
    char hostbuf[256], date[17];
    const char *host = kms_host(cfg, hostbuf, sizeof hostbuf);
    eng_sigv4_header sh[3] = {
        { "Content-Type", "application/x-amz-json-1.1" },
        { "Host", host }, { "X-Amz-Target", target } };
    eng_sigv4_header hh[5];
    eng_sigv4_req sreq = { .method = "POST", .path = "/", .headers = sh,
                           .n_headers = 3, .region = cfg->region,
                           .service = "kms", .amz_date = date,
                           .body = (const unsigned char *)body,
                           .body_len = strlen(body), .normalize_path = 1 };
    eng_sigv4_out sig;
    eng_https_cfg hc = { .host = host, .ca_file = cfg->ca_file,
                         .plain = cfg->plain };
    eng_http_req hreq = { .method = "POST", .path = "/", .headers = hh,
                          .body = sreq.body, .body_len = sreq.body_len };
    int fd = -1, rc;

    memset(resp, 0, sizeof *resp);
    eng_sigv4_amz_date(date, eng_unix_time());
    if ((rc = eng_sigv4_sign(&sig, creds, &sreq)) != SIGNER_OK) {
        snprintf(resp->err, sizeof resp->err, "cannot sign the request");
        return rc;
    }
    hh[0] = sh[0];
    hh[1] = sh[2];
    hh[2] = (eng_sigv4_header){ "X-Amz-Date", date };
    hh[3] = (eng_sigv4_header){ "Authorization", sig.authorization };
    hh[4] = (eng_sigv4_header){ "X-Amz-Security-Token", creds->session_token };
    hreq.n_headers = creds->session_token[0] ? 5 : 4;
    rc = cfg->connect(cfg->connect_arg, &fd, deadline);
    if (rc != SIGNER_OK)
        snprintf(resp->err, sizeof resp->err, "cannot connect to %.150s", host);
    else
        rc = eng_https_roundtrip(resp, fd, &hc, &hreq, deadline);
    if (fd >= 0)
        close(fd);
    eng_sigv4_out_free(&sig);
    return rc;
}

/* Sleeps ms (bounded by the deadline); 0 if the deadline allows it. */
static int backoff_sleep(int ms, uint64_t deadline)
{
    uint64_t until = eng_now_us() + (uint64_t)ms * 1000;

    if (until >= deadline)
        return -1;
    while (eng_now_us() < until)
        poll(NULL, 0, (int)((until - eng_now_us()) / 1000) + 1);
    return 0;
}

/* Backoff before retry number attempt (1-based): base * 2^(attempt-1),
 * with 50-100% jitter, at least the server's Retry-After. */
static int backoff_ms(const eng_kms_cfg *cfg, int attempt, int retry_after)
{
    int base = cfg->backoff_ms > 0 ? cfg->backoff_ms : 100, ms;
    unsigned char r = 0;

    ms = base << (attempt - 1 < 10 ? attempt - 1 : 10);
    if (eng_random(&r, 1) == 0)
        ms = ms / 2 + (ms / 2) * r / 255;
    if (retry_after > 0 && retry_after * 1000 > ms)
        ms = retry_after * 1000;
    return ms;
}

/* Runs one KMS operation: credentials check, then attempts until a 2xx,
 * a final error, max_attempts or the deadline.  On SIGNER_OK resp holds a
 * 2xx answer (the caller frees it). */
static int kms_call(const eng_kms_cfg *cfg, eng_http_resp *resp,
                    eng_kms_err *err, const eng_aws_creds *creds,
                    const char *op, const char *body)
{
    char target[64];
    int timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    int max = cfg->max_attempts > 0 ? cfg->max_attempts : 3;
    uint64_t deadline = eng_now_us() + (uint64_t)timeout * 1000;
    int attempt, rc = SIGNER_ERR_INTERNAL, retryable = 0, wait = 0;

    memset(err, 0, sizeof *err);
    memset(resp, 0, sizeof *resp);
    if (cfg->connect == NULL || cfg->region == NULL || body == NULL)
        return SIGNER_ERR_INTERNAL;
    if (!eng_aws_creds_valid(creds, eng_unix_time(), ENG_KMS_CREDS_MARGIN)) {
        snprintf(err->msg, sizeof err->msg, "credentials: missing, expired "
                 "or expiring within %d s", ENG_KMS_CREDS_MARGIN);
        return SIGNER_ERR_BAD_REQUEST;
    }
    snprintf(target, sizeof target, "TrentService.%s", op);
    for (attempt = 1; attempt <= max; attempt++) {
        err->attempts = attempt;
        rc = kms_attempt(cfg, resp, creds, target, body, deadline);
        if (rc == SIGNER_OK && resp->status >= 200 && resp->status < 300)
            return SIGNER_OK;
        rc = eng_kms_map_error(err, &retryable, rc == SIGNER_OK ? resp->status
                                                                : 0,
                               resp->error_type, (const char *)resp->body,
                               resp->body_len, rc, resp->err);
        wait = backoff_ms(cfg, attempt, resp->retry_after);
        eng_http_resp_free(resp);
        if (!retryable || attempt == max || backoff_sleep(wait, deadline))
            break;
    }
    if (retryable) {
        err->retry_after = (wait + 999) / 1000;
        rc = SIGNER_ERR_UNAVAILABLE;
    }
    return rc;
}

int eng_kms_encrypt(const eng_kms_cfg *cfg, unsigned char **blob,
                    size_t *blob_len, eng_kms_err *err,
                    const eng_aws_creds *creds, const char *key_id,
                    const unsigned char *plain, size_t plain_len,
                    const eng_kms_kv *ctx, size_t n_ctx)
{
    char *body = eng_kms_body_encrypt(key_id, plain, plain_len, ctx, n_ctx);
    eng_http_resp resp = { 0 };
    unsigned char *out = NULL;
    int rc;

    *blob = NULL;
    *blob_len = 0;
    memset(err, 0, sizeof *err);
    if (body == NULL) {
        snprintf(err->msg, sizeof err->msg, "bad Encrypt input");
        return SIGNER_ERR_BAD_REQUEST;
    }
    if ((rc = kms_call(cfg, &resp, err, creds, "Encrypt", body)) != SIGNER_OK)
        goto cleanup;
    if ((out = malloc(ENG_KMS_BLOB_MAX)) == NULL) {
        rc = SIGNER_ERR_NOMEM;
        goto cleanup;
    }
    rc = eng_kms_parse_field(out, ENG_KMS_BLOB_MAX, blob_len, err,
                             (const char *)resp.body, resp.body_len,
                             "CiphertextBlob", 0);
    if (rc == SIGNER_OK) {
        *blob = out;
        out = NULL;
    }
cleanup:
    free(out);
    eng_http_resp_free(&resp);
    eng_kms_body_free(body);
    return rc;
}

/* Calls op with body and decodes field of the answer into out. */
static int kms_fetch(const eng_kms_cfg *cfg, unsigned char *out, size_t cap,
                     size_t *out_len, eng_kms_err *err,
                     const eng_aws_creds *creds, const char *op, char *body,
                     const char *field, int refuse_plaintext)
{
    eng_http_resp resp = { 0 };
    int rc;

    *out_len = 0;
    if (body == NULL) {
        memset(err, 0, sizeof *err);
        snprintf(err->msg, sizeof err->msg, "bad %s input", op);
        return SIGNER_ERR_BAD_REQUEST;
    }
    rc = kms_call(cfg, &resp, err, creds, op, body);
    if (rc == SIGNER_OK)
        rc = eng_kms_parse_field(out, cap, out_len, err,
                                 (const char *)resp.body, resp.body_len,
                                 field, refuse_plaintext);
    eng_http_resp_free(&resp);
    eng_kms_body_free(body);
    return rc;
}

/* Fetches a CiphertextForRecipient and opens it with rkey into out. */
static int kms_fetch_cms(const eng_kms_cfg *cfg, unsigned char *out,
                         size_t cap, size_t *out_len, eng_kms_err *err,
                         const eng_aws_creds *creds, const char *op,
                         char *body, const eng_aws_rkey *rkey)
{
    unsigned char *cms = malloc(ENG_KMS_CMS_MAX);
    size_t clen = 0;
    int rc;

    *out_len = 0;
    if (cms == NULL) {
        eng_kms_body_free(body);
        return SIGNER_ERR_NOMEM;
    }
    rc = kms_fetch(cfg, cms, ENG_KMS_CMS_MAX, &clen, err, creds, op, body,
                   "CiphertextForRecipient", 1);
    if (rc == SIGNER_OK &&
        (rc = eng_aws_cms_open(out, cap, out_len, rkey, cms, clen)) !=
            SIGNER_OK) {
        snprintf(err->msg, sizeof err->msg, "cannot open KMS's "
                 "CiphertextForRecipient with the enclave key (rotated "
                 "during the call, or not meant for this enclave)");
        rc = SIGNER_ERR_INTERNAL;
    }
    free(cms);
    if (rc != SIGNER_OK)
        eng_wipe(out, cap);
    return rc;
}

int eng_kms_decrypt_recipient(const eng_kms_cfg *cfg, unsigned char *plain,
                              size_t cap, size_t *plain_len, eng_kms_err *err,
                              const eng_aws_creds *creds, const char *key_id,
                              const unsigned char *blob, size_t blob_len,
                              const eng_kms_kv *ctx, size_t n_ctx,
                              const eng_aws_rkey *rkey,
                              const unsigned char *doc, size_t doc_len)
{
    char *body = NULL;

    if (rkey != NULL && doc != NULL && doc_len > 0 &&
        doc_len <= ENG_KMS_DOC_MAX)
        body = eng_kms_body_decrypt(key_id, blob, blob_len, ctx, n_ctx, doc,
                                    doc_len);
    return kms_fetch_cms(cfg, plain, cap, plain_len, err, creds, "Decrypt",
                         body, rkey);
}

int eng_kms_decrypt(const eng_kms_cfg *cfg, unsigned char *plain, size_t cap,
                    size_t *plain_len, eng_kms_err *err,
                    const eng_aws_creds *creds, const char *key_id,
                    const unsigned char *blob, size_t blob_len,
                    const eng_kms_kv *ctx, size_t n_ctx)
{
    char *body = eng_kms_body_decrypt(key_id, blob, blob_len, ctx, n_ctx,
                                      NULL, 0);
    return kms_fetch(cfg, plain, cap, plain_len, err, creds, "Decrypt", body,
                     "Plaintext", 0);
}

int eng_kms_generate_random(const eng_kms_cfg *cfg, unsigned char *out,
                            size_t n, eng_kms_err *err,
                            const eng_aws_creds *creds,
                            const eng_aws_rkey *rkey,
                            const unsigned char *doc, size_t doc_len)
{
    char *body = eng_kms_body_generate_random(n, rkey ? doc : NULL, doc_len);
    size_t got = 0;
    int rc;

    if (rkey != NULL && (doc == NULL || doc_len == 0)) {
        eng_kms_body_free(body);
        body = NULL;
    }
    rc = rkey != NULL
             ? kms_fetch_cms(cfg, out, n, &got, err, creds, "GenerateRandom",
                             body, rkey)
             : kms_fetch(cfg, out, n, &got, err, creds, "GenerateRandom",
                         body, "Plaintext", 0);
    if (rc == SIGNER_OK && got != n) {
        snprintf(err->msg, sizeof err->msg, "KMS GenerateRandom returned "
                 "%zu bytes, not %zu", got, n);
        rc = SIGNER_ERR_INTERNAL;
    }
    if (rc != SIGNER_OK)
        eng_wipe(out, n);
    return rc;
}
