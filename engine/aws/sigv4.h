/* AWS Signature Version 4 request signing (header form), as used for KMS
 * calls from the enclave: canonical request, string to sign, signing key
 * (HMAC-SHA256 chain through OpenSSL) and the Authorization header.
 * Checked against the official AWS test suite in tests/vectors/sigv4.
 * See docs/aws.md. */
#ifndef ENG_AWS_SIGV4_H
#define ENG_AWS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#define ENG_AWS_AKID_MAX 128
#define ENG_AWS_SECRET_MAX 128
#define ENG_AWS_TOKEN_MAX 4096

/* Short-lived AWS credentials.  Secret material: wipe with
 * eng_aws_creds_wipe after use, never log. */
typedef struct eng_aws_creds {
    char access_key_id[ENG_AWS_AKID_MAX];
    char secret_access_key[ENG_AWS_SECRET_MAX];
    char session_token[ENG_AWS_TOKEN_MAX]; /* "" when none */
    int64_t expiration;                     /* unix seconds; 0 = never */
} eng_aws_creds;

/* Fills c from the given strings (token may be NULL).  SIGNER_OK, or
 * SIGNER_ERR_BAD_REQUEST naming nothing secret when a field is empty or
 * too long (c is wiped then). */
int eng_aws_creds_set(eng_aws_creds *c, const char *akid, const char *secret,
                      const char *token, int64_t expiration);
/* 1 if c is usable at unix time now (not expiring within margin seconds). */
int eng_aws_creds_valid(const eng_aws_creds *c, int64_t now, int margin);
/* Wipes every field. */
void eng_aws_creds_wipe(eng_aws_creds *c);

typedef struct eng_sigv4_header {
    const char *name;
    const char *value;
} eng_sigv4_header;

/* One request to sign.  Host must be among the headers. */
typedef struct eng_sigv4_req {
    const char *method;
    const char *path;  /* as on the wire, not yet percent-encoded: "/" */
    const char *query; /* after '?', may be NULL; may hold %XX escapes */
    const eng_sigv4_header *headers;
    size_t n_headers;
    const unsigned char *body;
    size_t body_len;
    const char *region;
    const char *service;
    const char *amz_date;   /* "YYYYMMDDTHHMMSSZ" */
    int normalize_path;     /* drop ".", ".." and empty segments */
    int sign_body_header;   /* add and sign x-amz-content-sha256 */
    int omit_session_token; /* send the token but leave it unsigned */
} eng_sigv4_req;

/* What signing produced; release with eng_sigv4_out_free. */
typedef struct eng_sigv4_out {
    char *canonical_request;
    char *string_to_sign;
    char *signed_headers;  /* "host;x-amz-date" */
    char *authorization;   /* the Authorization header value */
    char signature[65];    /* lowercase hex */
    char payload_hash[65]; /* hex SHA-256 of the body */
} eng_sigv4_out;

/* Signs req with creds into out.  SIGNER_OK; SIGNER_ERR_BAD_REQUEST for a
 * malformed request (no Host, bad date); SIGNER_ERR_NOMEM.  out is zeroed
 * on failure.  The extra headers to send (X-Amz-Date, X-Amz-Security-Token,
 * X-Amz-Content-Sha256, Authorization) are the caller's to write. */
int eng_sigv4_sign(eng_sigv4_out *out, const eng_aws_creds *creds,
                   const eng_sigv4_req *req)
    __attribute__((warn_unused_result));
/* Wipes and frees out's strings. */
void eng_sigv4_out_free(eng_sigv4_out *out);

/* "YYYYMMDDTHHMMSSZ" for a unix time (UTC). */
void eng_sigv4_amz_date(char out[17], int64_t unix_time);

/* Lowercase hex SHA-256 of data.  0 ok, -1 on failure. */
int eng_aws_sha256_hex(char out[65], const void *data, size_t len);

#endif
