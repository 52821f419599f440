/* The services signerd hands to plugins (signer_host), the request/reply
 * handles behind them, and the authentication of key use. */
#ifndef ENG_HOST_H
#define ENG_HOST_H

#include <pthread.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "conf.h"
#include "keycache.h"
#include "keystore/keystore.h"
#include "loader.h"
#include "sealer/sealer.h"

typedef struct eng_auth eng_auth;

/* Everything a running engine owns. */
typedef struct eng_engine {
    eng_config *cfg;
    eng_registry reg;
    eng_sealer *sealer;
    eng_keystore *ks;
    eng_auth *auth;
    eng_keycache *cache; /* NULL when key_cache.ttl_seconds is 0 */
    signer_host host; /* template copied into each plugin */
    int secure_heap;  /* 1 if key memory is locked */
    struct eng_metrics *metrics;
} eng_engine;

struct signer_call {
    eng_engine *eng;
    const char *request_id;
};

struct signer_reply {
    cJSON *result; /* object */
    int err;       /* 0 or the signer_err set by reply_error */
    char error[512];
};

/* Fills the host template with the engine's services. */
void eng_host_init(eng_engine *e);

/* Forgets this thread's json_at cursor: call when a request's JSON tree is
 * about to be freed (the next tree may reuse its addresses). */
void eng_host_request_done(void);

/* Authentication state: failure throttling and HMAC replay memory. */
eng_auth *eng_auth_new(int max_failures, int lockout_seconds,
                       int hmac_window);
void eng_auth_free(eng_auth *a);

/* Canonical JSON used for HMACs: object keys sorted bytewise, no
 * whitespace, numbers and strings as cJSON prints them.  malloc'd. */
char *eng_json_canonical(const cJSON *v);

/* Reply helpers for the engine itself. */
int eng_reply_error(signer_reply *reply, int err, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);

/* Plaintext layout sealed for a key: [key_len][key][secret_len][secret]. */
#define ENG_SECRET_MIN 20
#define ENG_SECRET_MAX 128
#define ENG_PLAIN_MAX (2 + SIGNER_MAX_KEY + ENG_SECRET_MAX)

#endif
