/* SQLite keystore.  One connection guarded by a mutex; prepared statements
 * are reused.  Every put is its own transaction in WAL mode with
 * synchronous=FULL, so an acknowledged key survives kill -9 and power loss,
 * and a crash leaves either the whole record or none of it. */
#include "config.h"
#include "keystore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

struct eng_keystore {
    sqlite3 *db;
    sqlite3_stmt *put;
    sqlite3_stmt *get;
    sqlite3_stmt *count;
    pthread_mutex_t lock;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS keys ("
    " key_id TEXT PRIMARY KEY NOT NULL,"
    " chain TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " sealed BLOB NOT NULL,"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;";

eng_keystore *eng_keystore_sqlite_open(const char *path, char *err,
                                       size_t err_len)
{
    eng_keystore *ks = calloc(1, sizeof *ks);
    char *msg = NULL;
    if (ks == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ks->lock, NULL);
    if (sqlite3_open_v2(path, &ks->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, err_len, "cannot open keystore %s: %s", path,
                 ks->db ? sqlite3_errmsg(ks->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(ks->db, 5000);
    if (sqlite3_exec(ks->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(ks->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "cannot initialise keystore %s: %s", path,
                 msg ? msg : sqlite3_errmsg(ks->db));
        sqlite3_free(msg);
        goto fail;
    }
    if (sqlite3_prepare_v2(ks->db,
                           "INSERT INTO keys(key_id, chain, address, sealed,"
                           " created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &ks->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ks->db,
                           "SELECT chain, address, sealed FROM keys"
                           " WHERE key_id = ?1",
                           -1, &ks->get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ks->db, "SELECT count(*) FROM keys", -1,
                           &ks->count, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "cannot prepare keystore statements: %s",
                 sqlite3_errmsg(ks->db));
        goto fail;
    }
    return ks;
fail:
    eng_keystore_close(ks);
    return NULL;
}

int eng_keystore_put(eng_keystore *ks, const signer_key_meta *meta,
                     const unsigned char *blob, size_t blob_len)
{
    int rc, out;
    pthread_mutex_lock(&ks->lock);
    sqlite3_bind_text(ks->put, 1, meta->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ks->put, 2, meta->chain, -1, SQLITE_STATIC);
    sqlite3_bind_text(ks->put, 3, meta->address, -1, SQLITE_STATIC);
    sqlite3_bind_blob(ks->put, 4, blob, (int)blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(ks->put, 5, (sqlite3_int64)time(NULL));
    rc = sqlite3_step(ks->put);
    if (rc == SQLITE_DONE)
        out = SIGNER_OK;
    else if ((sqlite3_extended_errcode(ks->db) & 0xff) == SQLITE_CONSTRAINT)
        out = SIGNER_ERR_CONFLICT;
    else
        out = SIGNER_ERR_INTERNAL;
    sqlite3_reset(ks->put);
    sqlite3_clear_bindings(ks->put);
    pthread_mutex_unlock(&ks->lock);
    return out;
}

static int copy_text(char *dst, size_t cap, const unsigned char *src)
{
    size_t n = src ? strlen((const char *)src) : 0;
    if (n + 1 > cap)
        return -1;
    memcpy(dst, src ? (const char *)src : "", n + 1);
    return 0;
}

int eng_keystore_get(eng_keystore *ks, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, unsigned char **blob,
                     size_t *blob_len, const char *key_id)
{
    int rc, out = SIGNER_ERR_INTERNAL;
    *blob = NULL;
    *blob_len = 0;
    pthread_mutex_lock(&ks->lock);
    sqlite3_bind_text(ks->get, 1, key_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(ks->get);
    if (rc == SQLITE_DONE) {
        out = SIGNER_ERR_NOT_FOUND;
    } else if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(ks->get, 2);
        int n = sqlite3_column_bytes(ks->get, 2);
        if (copy_text(chain, chain_cap, sqlite3_column_text(ks->get, 0)) < 0 ||
            copy_text(address, address_cap,
                      sqlite3_column_text(ks->get, 1)) < 0) {
            out = SIGNER_ERR_TOO_LARGE;
        } else if (n <= 0 || (*blob = malloc((size_t)n)) == NULL) {
            out = n <= 0 ? SIGNER_ERR_INTERNAL : SIGNER_ERR_NOMEM;
        } else {
            memcpy(*blob, b, (size_t)n);
            *blob_len = (size_t)n;
            out = SIGNER_OK;
        }
    }
    sqlite3_reset(ks->get);
    sqlite3_clear_bindings(ks->get);
    pthread_mutex_unlock(&ks->lock);
    return out;
}

long long eng_keystore_count(eng_keystore *ks)
{
    long long n = -1;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_step(ks->count) == SQLITE_ROW)
        n = sqlite3_column_int64(ks->count, 0);
    sqlite3_reset(ks->count);
    pthread_mutex_unlock(&ks->lock);
    return n;
}

void eng_keystore_close(eng_keystore *ks)
{
    if (ks == NULL)
        return;
    sqlite3_finalize(ks->put);
    sqlite3_finalize(ks->get);
    sqlite3_finalize(ks->count);
    if (ks->db != NULL)
        sqlite3_close(ks->db);
    pthread_mutex_destroy(&ks->lock);
    free(ks);
}
