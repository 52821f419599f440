/* AWS KMS client for the enclave: Encrypt, Decrypt (with a Recipient: the
 * answer is CMS for the enclave's key, never a plaintext) and
 * GenerateRandom over the JSON 1.1 protocol (POST /, X-Amz-Target:
 * TrentService.<Op>, base64 binary fields), SigV4-signed with short-lived
 * credentials given per call.  Bounded retries with backoff for throttling,
 * 5xx and network errors, all within one deadline.  The request builders
 * and response parsers are pure functions (tested without a network).
 * See docs/aws.md. */
#ifndef ENG_AWS_KMS_H
#define ENG_AWS_KMS_H

#include <stddef.h>
#include <stdint.h>

#include "aws/cms.h"
#include "aws/https.h"
#include "aws/sigv4.h"

#define ENG_KMS_PLAIN_MAX 4096       /* KMS Encrypt limit */
#define ENG_KMS_BLOB_MAX 6144        /* CiphertextBlob we accept */
#define ENG_KMS_CMS_MAX 8192         /* CiphertextForRecipient we accept */
#define ENG_KMS_DOC_MAX 16384        /* attestation document */
#define ENG_KMS_CREDS_MARGIN 30      /* refuse credentials expiring sooner */

/* Opens a connected stream to the KMS endpoint (or its proxy). */
typedef int (*eng_kms_connect_fn)(void *arg, int *fd, uint64_t deadline_us);

typedef struct eng_kms_cfg {
    const char *region;     /* "us-east-1" */
    const char *host;       /* Host, SNI, certificate name;
                               NULL: kms.<region>.amazonaws.com */
    const char *ca_file;    /* CA bundle (TLS) */
    int plain;              /* 1: plain HTTP (tests against stand-ins) */
    eng_kms_connect_fn connect;
    void *connect_arg;
    int timeout_ms;         /* whole call, retries included (default 5000) */
    int max_attempts;       /* default 3 */
    int backoff_ms;         /* first backoff, doubled per retry (100) */
} eng_kms_cfg;

/* An encryption context pair. */
typedef struct eng_kms_kv {
    const char *key;
    const char *value;
} eng_kms_kv;

/* Why a call failed: safe to log and to show (no secrets). */
typedef struct eng_kms_err {
    char msg[512];
    char type[96];     /* KMS exception name, or "" */
    int http_status;   /* 0 when no answer */
    int retry_after;   /* seconds hint when the result is UNAVAILABLE */
    int attempts;
} eng_kms_err;

/* Connectors: arg is an eng_kms_tcp_target / eng_kms_vsock_target. */
typedef struct eng_kms_tcp_target {
    const char *ip;
    int port;
} eng_kms_tcp_target;
typedef struct eng_kms_vsock_target {
    unsigned cid;
    unsigned port;
} eng_kms_vsock_target;
int eng_kms_connect_tcp(void *arg, int *fd, uint64_t deadline_us);
int eng_kms_connect_vsock(void *arg, int *fd, uint64_t deadline_us);

/* --- calls ------------------------------------------------------------ */

/* Encrypt: *blob (malloc'd CiphertextBlob) for plain under key_id with the
 * encryption context.  SIGNER_OK or a signer_err with err filled:
 * BAD_REQUEST (expired credentials, bad input), FORBIDDEN (KMS refused the
 * context or ciphertext), INTERNAL (access denied, key state, TLS),
 * UNAVAILABLE (throttled, 5xx, network, deadline; err->retry_after). */
int eng_kms_encrypt(const eng_kms_cfg *cfg, unsigned char **blob,
                    size_t *blob_len, eng_kms_err *err,
                    const eng_aws_creds *creds, const char *key_id,
                    const unsigned char *plain, size_t plain_len,
                    const eng_kms_kv *ctx, size_t n_ctx)
    __attribute__((warn_unused_result));

/* Decrypt with a Recipient: sends doc (attestation document holding rkey's
 * SPKI), receives CiphertextForRecipient and opens it with rkey into
 * plain[0..cap).  An answer carrying Plaintext is refused (INTERNAL).
 * key_id may be NULL.  Same errors as eng_kms_encrypt; plain wiped on
 * failure. */
int eng_kms_decrypt_recipient(const eng_kms_cfg *cfg, unsigned char *plain,
                              size_t cap, size_t *plain_len, eng_kms_err *err,
                              const eng_aws_creds *creds, const char *key_id,
                              const unsigned char *blob, size_t blob_len,
                              const eng_kms_kv *ctx, size_t n_ctx,
                              const eng_aws_rkey *rkey,
                              const unsigned char *doc, size_t doc_len)
    __attribute__((warn_unused_result));

/* Decrypt without a Recipient (outside an enclave only): the Plaintext into
 * plain[0..cap). */
int eng_kms_decrypt(const eng_kms_cfg *cfg, unsigned char *plain, size_t cap,
                    size_t *plain_len, eng_kms_err *err,
                    const eng_aws_creds *creds, const char *key_id,
                    const unsigned char *blob, size_t blob_len,
                    const eng_kms_kv *ctx, size_t n_ctx)
    __attribute__((warn_unused_result));

/* GenerateRandom of n (1..1024) bytes into out; with rkey and doc the bytes
 * come back as CiphertextForRecipient and are opened with rkey (rkey and
 * doc NULL: plaintext answer, outside an enclave). */
int eng_kms_generate_random(const eng_kms_cfg *cfg, unsigned char *out,
                            size_t n, eng_kms_err *err,
                            const eng_aws_creds *creds,
                            const eng_aws_rkey *rkey,
                            const unsigned char *doc, size_t doc_len)
    __attribute__((warn_unused_result));

/* --- pure pieces (exposed for tests) ------------------------------------ */

/* Request bodies (malloc'd JSON; wipe and free: they may hold plaintext). */
char *eng_kms_body_encrypt(const char *key_id, const unsigned char *plain,
                           size_t plain_len, const eng_kms_kv *ctx,
                           size_t n_ctx);
char *eng_kms_body_decrypt(const char *key_id, const unsigned char *blob,
                           size_t blob_len, const eng_kms_kv *ctx,
                           size_t n_ctx, const unsigned char *doc,
                           size_t doc_len);
char *eng_kms_body_generate_random(size_t n, const unsigned char *doc,
                                   size_t doc_len);
/* Wipes and frees a request body; NULL is a no-op. */
void eng_kms_body_free(char *body);

/* Decodes the base64 field name of a 2xx JSON answer into out[0..cap).
 * With refuse_plaintext, an answer that carries a non-null "Plaintext" is
 * refused (SIGNER_ERR_INTERNAL, err says so).  SIGNER_OK, INTERNAL for a
 * malformed answer, TOO_LARGE over cap. */
int eng_kms_parse_field(unsigned char *out, size_t cap, size_t *out_len,
                        eng_kms_err *err, const char *body, size_t body_len,
                        const char *name, int refuse_plaintext);

/* Maps a non-2xx answer (status, x-amzn-ErrorType, JSON body) or a
 * transport failure (status 0, transport_rc) to a signer_err and fills
 * err.  *retryable is set for throttling, 5xx and network failures. */
int eng_kms_map_error(eng_kms_err *err, int *retryable, int status,
                      const char *error_type, const char *body,
                      size_t body_len, int transport_rc,
                      const char *transport_msg);

#endif
