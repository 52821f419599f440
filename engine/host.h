/* The services signerd hands to plugins (signer_host) and the request and
 * reply handles behind them.  Authentication lives in auth.c, the key
 * services in keysvc.c. */
#ifndef ENG_HOST_H
#define ENG_HOST_H

#include <pthread.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "auth.h"
#include "conf.h"
#include "json.h"
#include "keycache.h"
#include "keystore/keystore.h"
#include "keysvc.h"
#include "loader.h"
#include "metrics.h"
#include "sealer/sealer.h"

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
    /* enum eng_key_source: where sealed keys come from (0, the keystore,
     * by default; ENG_KEY_SOURCE_REQUEST in the enclave role). */
    int key_source;
} eng_engine;

/* One request in flight. */
struct signer_call {
    eng_engine *eng;
    const char *request_id;
    const char *peer;       /* client address, for throttling; may be NULL */
    const signer_op *op;    /* the operation running; may be NULL */
    const char *const *hmac_fields; /* what its HMAC covers (ABI 1.1) */
    cJSON *located;         /* what the key locator took from the payload */
    cJSON *parsed;          /* 1.2: trees of host->json_parse (an array) */
    eng_keycache_ref key_ref; /* cache entry of the key last opened (1.3) */
};

struct signer_reply {
    cJSON *result; /* object */
    int err;       /* 0 or the signer_err set by reply_error */
    char error[512];
    int raw;       /* 1.2: result holds one raw JSON item, the whole answer,
                    * sent with the status of raw_err */
    int raw_err;
};

/* Fills the host template with the engine's services. */
void eng_host_init(eng_engine *e);

/* Forgets this thread's json_at cursor: call when a request's JSON tree is
 * about to be freed (the next tree may reuse its addresses). */
void eng_host_request_done(void);

/* Sets reply's error (err, message) and returns err: the engine's own
 * reply_error. */
int eng_reply_error(signer_reply *reply, int err, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);

#endif
