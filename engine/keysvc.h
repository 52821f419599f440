/* The key service: creating keys (seal, then deliver) and opening them
 * for a request in two steps -- locate the sealed record, then open and
 * authenticate it (unseal, check the secret or HMAC, cache only after
 * success).  Where sealed records come from and go is a locator, picked by
 * the engine's key_source; plugins see the same services in every role. */
#ifndef ENG_KEYSVC_H
#define ENG_KEYSVC_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <signer/plugin.h>

typedef struct eng_engine eng_engine;

/* eng_engine.key_source. */
enum eng_key_source {
    /* standalone: records are read from and stored in the keystore */
    ENG_KEY_SOURCE_KEYSTORE = 0,
    /* enclave: the request payload carries the record (sealed_key,
     * key_chain, key_address); a created key's sealed_key is returned in
     * the reply instead of stored */
    ENG_KEY_SOURCE_REQUEST = 1
};

/* Payload fields of the request locator: removed from the payload before
 * the operation's handler sees it. */
#define ENG_FIELD_SEALED_KEY "sealed_key"   /* base64 of the sealed blob */
#define ENG_FIELD_KEY_CHAIN "key_chain"     /* the record's chain        */
#define ENG_FIELD_KEY_ADDRESS "key_address" /* the record's address      */
/* {access_key_id, secret_access_key, session_token, expiration}: the AWS
 * credentials for this request's KMS calls (never logged, wiped). */
#define ENG_FIELD_CREDENTIALS "credentials"
/* Credentials expiring within this many seconds are refused. */
#define ENG_CREDS_MARGIN 30

/* A located sealed record. */
typedef struct eng_sealed_record {
    char chain[64];
    char address[SIGNER_MAX_ADDRESS];
    unsigned char *blob; /* malloc'd */
    size_t blob_len;
} eng_sealed_record;

/* Where sealed records come from and go. */
typedef struct eng_key_locator {
    const char *name;
    /* Before the handler runs: takes what the locator reads out of the
     * payload into call.  SIGNER_OK or an error written to reply. */
    int (*prepare)(signer_call *call, signer_reply *reply, cJSON *payload);
    /* Finds key_id's record (rec->blob malloc'd).  SIGNER_ERR_NOT_FOUND,
     * SIGNER_ERR_BAD_REQUEST ... with the cause in reply. */
    int (*locate)(signer_call *call, signer_reply *reply,
                  eng_sealed_record *rec, const char *key_id);
    /* A new record: stores it, or hands it back in the reply. */
    int (*deliver)(signer_call *call, signer_reply *reply,
                   const signer_key_meta *meta, const unsigned char *blob,
                   size_t blob_len);
} eng_key_locator;

/* The key_source of a role name: ENG_KEY_SOURCE_REQUEST for "enclave",
 * ENG_KEY_SOURCE_KEYSTORE otherwise (standalone, gateway, NULL).  Start-up
 * sets eng_engine.key_source from it. */
int eng_keysvc_source_for_role(const char *role);

/* The locator of a key_source (the keystore one for unknown values). */
const eng_key_locator *eng_keysvc_locator(int key_source);

/* Whether the record a request carries for key_id (enclave role) is in
 * the key cache, so opening it needs no unseal (no KMS call): 1 or 0. */
int eng_keysvc_cached(eng_engine *e, const char *key_id,
                      const eng_sealed_record *rec);

/* Runs the engine's locator's prepare step on a request payload. */
int eng_keysvc_prepare(signer_call *call, signer_reply *reply,
                       cJSON *payload);
/* Releases what prepare took (wiped). */
void eng_keysvc_call_done(signer_call *call);

/* host->key_create and host->key_open (see include/signer/plugin.h). */
int eng_keysvc_create(signer_call *call, signer_reply *reply,
                      const char *chain, const char *address,
                      const unsigned char *key, size_t key_len,
                      const signer_json *payload);
int eng_keysvc_open(signer_call *call, signer_reply *reply,
                    unsigned char *key, size_t key_cap, size_t *key_len,
                    char *address, size_t address_cap, const char *chain,
                    const signer_json *payload);

/* Seals {key, secret} bound to meta into a malloc'd blob.  SIGNER_OK or a
 * negative signer_err. */
int eng_keysvc_seal(eng_engine *e, unsigned char **blob, size_t *blob_len,
                    const signer_key_meta *meta, const unsigned char *key,
                    size_t key_len, const char *secret, size_t secret_len);

/* Unseals rec for key_id and splits it: key into key (capacity key_cap),
 * the stored secret into secret (capacity ENG_SECRET_MAX).  SIGNER_OK,
 * SIGNER_ERR_FORBIDDEN (wrong master key or tampered) or
 * SIGNER_ERR_INTERNAL (bad layout).  Outputs wiped on failure. */
int eng_keysvc_unseal(eng_engine *e, unsigned char *key, size_t key_cap,
                      size_t *key_len, unsigned char *secret,
                      size_t *secret_len, const char *key_id,
                      const eng_sealed_record *rec);

/* Plaintext sealed for a key: [key_len][key][secret_len][secret]. */
#define ENG_PLAIN_MAX (2 + SIGNER_MAX_KEY + 128)

#endif
