/* Keystores hold sealed blobs by key_id.  Backend here: SQLite (WAL,
 * synchronous=FULL: a put is on disk before it returns). */
#ifndef ENG_KEYSTORE_H
#define ENG_KEYSTORE_H

#include <stddef.h>
#include <signer/plugin.h>

typedef struct eng_keystore eng_keystore;

/* Opens (creating if needed) the database at path.  NULL + err on failure. */
eng_keystore *eng_keystore_sqlite_open(const char *path, char *err,
                                       size_t err_len);

/* Inserts a record; SIGNER_ERR_CONFLICT if key_id exists.  Durable on
 * return.  Thread-safe. */
int eng_keystore_put(eng_keystore *ks, const signer_key_meta *meta,
                     const unsigned char *blob, size_t blob_len)
    SIGNER_WARN_UNUSED;

/* Fetches a record; *blob is malloc'd.  SIGNER_ERR_NOT_FOUND if absent,
 * SIGNER_ERR_TOO_LARGE if chain/address do not fit.  Thread-safe. */
int eng_keystore_get(eng_keystore *ks, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, unsigned char **blob,
                     size_t *blob_len, const char *key_id) SIGNER_WARN_UNUSED;

/* Number of records, or -1. */
long long eng_keystore_count(eng_keystore *ks);

void eng_keystore_close(eng_keystore *ks);

#endif
