/* Keystores hold sealed blobs by key_id, plus a few named values about the
 * store itself (the sealer's check value).  Each backend is a row of
 * methods picked by name from the config's keystore.type; nothing above
 * this header knows which row it has.  Rows: "sqlite" (WAL,
 * synchronous=FULL: a put is on disk before it returns; sqlite.c) and
 * "dynamodb" (the gateway's shared table; dynamodb.c) and "none" (roles
 * that keep no keys, e.g. an enclave).  A new backend is one more row in
 * keystore.c. */
#ifndef ENG_KEYSTORE_H
#define ENG_KEYSTORE_H

#include <stddef.h>
#include <signer/plugin.h>

#include "backend.h"

typedef struct eng_keystore eng_keystore;

/* One keystore backend.  Every method receives the state its open made and
 * must be thread-safe. */
typedef struct eng_keystore_methods {
    /* name (keystore.type in the config), settings, open (SIGNER_ERR_NOT_FOUND
     * when the store is absent and args->create is 0); first, so a row
     * converts to its methods (engine/backend.h). */
    eng_backend_row row;
    /* Inserts a record, durable on return; SIGNER_ERR_CONFLICT if key_id
     * exists. */
    int (*put)(void *state, const signer_key_meta *meta,
               const unsigned char *blob, size_t blob_len);
    /* Fetches a record; *blob malloc'd.  SIGNER_ERR_NOT_FOUND if absent,
     * SIGNER_ERR_TOO_LARGE if chain/address do not fit. */
    int (*get)(void *state, char *chain, size_t chain_cap, char *address,
               size_t address_cap, unsigned char **blob, size_t *blob_len,
               const char *key_id);
    long long (*count)(void *state); /* records, or -1 */
    /* Some stored key_id (for start-up to try the sealer on a keystore
     * that predates check values).  SIGNER_ERR_NOT_FOUND when empty. */
    int (*any_key_id)(void *state, char *key_id, size_t cap);
    /* Named values about the store (e.g. "sealer_check").  get:
     * SIGNER_ERR_NOT_FOUND if absent, SIGNER_ERR_TOO_LARGE if over cap. */
    int (*meta_get)(void *state, unsigned char *value, size_t cap,
                    size_t *len, const char *name);
    int (*meta_put)(void *state, const char *name,
                    const unsigned char *value, size_t len);
    /* 1 if reads and writes work now (GET /readyz): 0 after an I/O failure
     * until a probe write succeeds again.  Never blocks for long. */
    int (*ready)(void *state);
    /* The store for an operator, e.g. "keystore /var/lib/x/keys.db". */
    void (*describe)(void *state, char *out, size_t out_len);
    void (*close)(void *state); /* NULL is a no-op */
} eng_keystore_methods;

extern const eng_keystore_methods eng_keystore_sqlite;
extern const eng_keystore_methods eng_keystore_dynamodb; /* dynamodb.c */
extern const eng_keystore_methods eng_keystore_none;

/* The row named name, or NULL. */
const eng_keystore_methods *eng_keystore_find(const char *name);
/* The row names as "\"sqlite\", \"none\"" for messages. */
void eng_keystore_names(char *out, size_t out_len);

/* Opens the row named name into *out (NULL on failure).  Returns the row's
 * open result; SIGNER_ERR_CONFIG for an unknown name. */
int eng_keystore_open(eng_keystore **out, const char *name,
                      const eng_backend_args *args, char *err,
                      size_t err_len) SIGNER_WARN_UNUSED;

/* The "sqlite" row on the database at path, created if needed.  NULL + err
 * on failure. */
eng_keystore *eng_keystore_sqlite_open(const char *path, char *err,
                                       size_t err_len);

/* Dispatchers.  A NULL ks answers SIGNER_ERR_UNAVAILABLE (count: -1,
 * ready: 0).  Thread-safe. */
int eng_keystore_put(eng_keystore *ks, const signer_key_meta *meta,
                     const unsigned char *blob, size_t blob_len)
    SIGNER_WARN_UNUSED;
int eng_keystore_get(eng_keystore *ks, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, unsigned char **blob,
                     size_t *blob_len, const char *key_id) SIGNER_WARN_UNUSED;
long long eng_keystore_count(eng_keystore *ks);
int eng_keystore_any_key_id(eng_keystore *ks, char *key_id, size_t cap)
    SIGNER_WARN_UNUSED;
int eng_keystore_meta_get(eng_keystore *ks, unsigned char *value, size_t cap,
                          size_t *len, const char *name) SIGNER_WARN_UNUSED;
int eng_keystore_meta_put(eng_keystore *ks, const char *name,
                          const unsigned char *value, size_t len)
    SIGNER_WARN_UNUSED;
int eng_keystore_ready(eng_keystore *ks);
void eng_keystore_describe(eng_keystore *ks, char *out, size_t out_len);

void eng_keystore_close(eng_keystore *ks);

#endif
