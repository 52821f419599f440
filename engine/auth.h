/* Authentication of key use: the secret check (constant time), HMAC mode
 * (RFC 8785 canonical JSON, a time window, replay memory, nothing from
 * before the process started) and the throttling of failed attempts per
 * (key_id, client) with exponential backoff; a client is a peer address
 * without its port (an IPv6 /64).  The HMAC message layout is in
 * docs/hmac.md. */
#ifndef ENG_AUTH_H
#define ENG_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <signer/plugin.h>

typedef struct eng_auth eng_auth;

/* Secrets: 20..128 printable ASCII characters. */
#define ENG_SECRET_MIN 20
#define ENG_SECRET_MAX 128

/* Longest lockout, as a multiple of lockout_seconds (backoff doubles). */
#define ENG_AUTH_BACKOFF_MAX 64

/* New state.  max_failures wrong attempts of one (key_id, client) within
 * lockout_seconds lock that pair for lockout_seconds, doubling on each
 * further lockout up to ENG_AUTH_BACKOFF_MAX times (max_failures <= 0: no
 * throttling).  HMAC timestamps must lie within hmac_window seconds of now
 * and not before this call (the replay memory starts empty here).  NULL on
 * ENOMEM. */
eng_auth *eng_auth_new(int max_failures, int lockout_seconds,
                       int hmac_window);
void eng_auth_free(eng_auth *a);

/* What a request presents: a secret, or an HMAC and its timestamp. */
typedef struct eng_credential {
    int is_hmac;
    const char *secret; /* borrowed from the payload */
    size_t secret_len;
    unsigned char mac[32];
    int64_t timestamp;
} eng_credential;

/* What an HMAC binds: the operation, the key, and the payload fields the
 * operation declares (signer_op.hmac_fields; NULL = every field but hmac,
 * timestamp and secret). */
typedef struct eng_auth_scope {
    const char *op;     /* the operation's registered name */
    const char *key_id; /* lowercase */
    const cJSON *payload;
    const char *const *fields;
} eng_auth_scope;

/* Reads payload.secret or payload.hmac + timestamp into cred (syntax
 * only).  SIGNER_OK, or SIGNER_ERR_BAD_REQUEST with the field named in
 * reply. */
int eng_auth_parse(eng_credential *cred, signer_reply *reply,
                   const cJSON *payload);

/* 0 if s is a valid secret (its length in *len), else -1. */
int eng_auth_secret_check(const cJSON *s, size_t *len);

/* Admits an attempt on key_id from client (a peer address; the port is
 * ignored) unless that pair is locked out: SIGNER_OK, or
 * SIGNER_ERR_THROTTLED / SIGNER_ERR_UNAVAILABLE with the reason in reply. */
int eng_auth_admit(eng_auth *a, signer_reply *reply, const char *key_id,
                   const char *client, int64_t now);

/* Checks cred against the key's stored secret and records the outcome for
 * (key_id, client): a wrong secret or MAC counts as a failure, a success
 * clears the pair.  SIGNER_OK, or an error with the reason in reply. */
int eng_auth_verify(eng_auth *a, signer_reply *reply,
                    const eng_credential *cred, const eng_auth_scope *scope,
                    const char *client, const unsigned char *secret,
                    size_t secret_len, int64_t now);

/* The exact bytes an HMAC covers:
 *     op "\n" key_id "\n" JCS(covered fields) "\n" timestamp
 * malloc'd, NUL-terminated (free with eng_auth_message_free).  SIGNER_OK,
 * SIGNER_ERR_BAD_REQUEST (a payload field the operation does not cover, or
 * a non-finite number; named in reply) or SIGNER_ERR_NOMEM. */
int eng_auth_message(char **msg, size_t *len, signer_reply *reply,
                     const eng_auth_scope *scope, int64_t timestamp);
void eng_auth_message_free(char *msg, size_t len);

/* HMAC-SHA256 of msg keyed by secret.  SIGNER_OK or SIGNER_ERR_INTERNAL. */
int eng_auth_mac(unsigned char mac[32], const unsigned char *secret,
                 size_t secret_len, const char *msg, size_t len);

/* Number of (key_id, client) pairs with failures on record (tests). */
size_t eng_auth_failure_records(eng_auth *a);

#endif
