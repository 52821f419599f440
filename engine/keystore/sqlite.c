/* "sqlite" keystore row.  One connection guarded by a mutex; prepared
 * statements are reused.  Every put is its own transaction in WAL mode with
 * synchronous=FULL, so an acknowledged key survives kill -9 and power loss,
 * and a crash leaves either the whole record or none of it.  A failure is
 * logged with SQLite's own cause and makes the store not ready until a
 * probe write succeeds again (a full disk that was freed). */
#include "config.h"
#include "keystore.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"

#define PROBE_INTERVAL_US 1000000u
#define BUSY_TIMEOUT_MS 5000

struct sq {
    sqlite3 *db;
    sqlite3_stmt *put, *get, *count, *any, *meta_get, *meta_put;
    pthread_mutex_t lock;
    char *path;
    atomic_int healthy;
    atomic_ullong last_probe_us;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS keys ("
    " key_id TEXT PRIMARY KEY NOT NULL,"
    " chain TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " sealed BLOB NOT NULL,"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS meta ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value BLOB NOT NULL"
    ") WITHOUT ROWID;";

/* Logs a failed statement with SQLite's message and extended code, and
 * marks the store not ready unless it was a constraint (a duplicate). */
static void sq_failed(struct sq *s, const char *what, int rc)
{
    int ext = sqlite3_extended_errcode(s->db);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return;
    atomic_store(&s->healthy, 0);
    atomic_store(&s->last_probe_us, eng_now_us()); /* next probe: later */
    eng_log(SIGNER_LOG_ERROR,
            "keystore %s: %s failed: %s (SQLite extended code %d: %s)",
            s->path, what, sqlite3_errmsg(s->db), ext, sqlite3_errstr(ext));
}

static void sq_close(void *state)
{
    struct sq *s = state;
    if (s == NULL)
        return;
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->count);
    sqlite3_finalize(s->any);
    sqlite3_finalize(s->meta_get);
    sqlite3_finalize(s->meta_put);
    if (s->db != NULL)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

static int sq_prepare(struct sq *s, char *err, size_t err_len)
{
    static const struct {
        size_t off;
        const char *sql;
    } st[] = {
        {offsetof(struct sq, put),
         "INSERT INTO keys(key_id, chain, address, sealed, created_at)"
         " VALUES (?1, ?2, ?3, ?4, ?5)"},
        {offsetof(struct sq, get),
         "SELECT chain, address, sealed FROM keys WHERE key_id = ?1"},
        {offsetof(struct sq, count), "SELECT count(*) FROM keys"},
        {offsetof(struct sq, any), "SELECT key_id FROM keys LIMIT 1"},
        {offsetof(struct sq, meta_get),
         "SELECT value FROM meta WHERE name = ?1"},
        {offsetof(struct sq, meta_put),
         "INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)"}};
    size_t i;
    for (i = 0; i < sizeof st / sizeof st[0]; i++) {
        sqlite3_stmt **p = (sqlite3_stmt **)((char *)s + st[i].off);
        if (sqlite3_prepare_v2(s->db, st[i].sql, -1, p, NULL) != SQLITE_OK) {
            snprintf(err, err_len, "cannot prepare keystore statements: %s",
                     sqlite3_errmsg(s->db));
            return -1;
        }
    }
    return 0;
}

/* Records the files a new database brings (the WAL ones appear later). */
static int sq_record_created(const struct sq *s, eng_created *created)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char path[4096];
    size_t i;
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", s->path, suffix[i]);
        if (eng_created_add(created, path, 0) != 0)
            return -1;
    }
    return 0;
}

static int sq_init_db(struct sq *s, int existed, const eng_backend_args *args,
                      char *err, size_t err_len)
{
    char *msg = NULL;
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                            (args->create ? SQLITE_OPEN_CREATE : 0),
                        NULL) != SQLITE_OK) {
        snprintf(err, err_len, "cannot open keystore %s: %s", s->path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return -1;
    }
    if (!existed && sq_record_created(s, args->created) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_len, "cannot initialise keystore %s: %s", s->path,
                 msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return sq_prepare(s, err, err_len);
}

static int sq_open(void **state, const eng_backend_args *args, char *err,
                   size_t err_len)
{
    struct sq *s = calloc(1, sizeof *s);
    struct stat st;
    int existed;
    *state = NULL;
    if (s == NULL ||
        (s->path = eng_backend_path(args, "path", "keys.db")) == NULL) {
        snprintf(err, err_len, "out of memory");
        free(s);
        return SIGNER_ERR_NOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    atomic_store(&s->healthy, 1);
    existed = stat(s->path, &st) == 0;
    if (!existed && !args->create) {
        snprintf(err, err_len, "keystore %s does not exist", s->path);
        sq_close(s);
        return SIGNER_ERR_NOT_FOUND;
    }
    if (sq_init_db(s, existed, args, err, err_len) != 0) {
        sq_close(s);
        return SIGNER_ERR_CONFIG;
    }
    *state = s;
    return SIGNER_OK;
}

static int sq_put(void *state, const signer_key_meta *meta,
                  const unsigned char *blob, size_t blob_len)
{
    struct sq *s = state;
    int rc, out;
    pthread_mutex_lock(&s->lock);
    sqlite3_bind_text(s->put, 1, meta->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->put, 2, meta->chain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->put, 3, meta->address, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s->put, 4, blob, (int)blob_len, SQLITE_STATIC);
    sqlite3_bind_int64(s->put, 5, (sqlite3_int64)time(NULL));
    rc = sqlite3_step(s->put);
    if (rc == SQLITE_DONE) {
        out = SIGNER_OK;
        atomic_store(&s->healthy, 1);
    } else {
        sq_failed(s, "storing a key", rc);
        out = (rc & 0xff) == SQLITE_CONSTRAINT ? SIGNER_ERR_CONFLICT
                                               : SIGNER_ERR_INTERNAL;
    }
    sqlite3_reset(s->put);
    sqlite3_clear_bindings(s->put);
    pthread_mutex_unlock(&s->lock);
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

/* Copies the current row of s->get (lock held). */
static int sq_get_row(struct sq *s, char *chain, size_t chain_cap,
                      char *address, size_t address_cap, unsigned char **blob,
                      size_t *blob_len)
{
    const void *b = sqlite3_column_blob(s->get, 2);
    int n = sqlite3_column_bytes(s->get, 2);
    if (copy_text(chain, chain_cap, sqlite3_column_text(s->get, 0)) < 0 ||
        copy_text(address, address_cap, sqlite3_column_text(s->get, 1)) < 0)
        return SIGNER_ERR_TOO_LARGE;
    if (n <= 0)
        return SIGNER_ERR_INTERNAL;
    if ((*blob = malloc((size_t)n)) == NULL)
        return SIGNER_ERR_NOMEM;
    memcpy(*blob, b, (size_t)n);
    *blob_len = (size_t)n;
    return SIGNER_OK;
}

static int sq_get(void *state, char *chain, size_t chain_cap, char *address,
                  size_t address_cap, unsigned char **blob, size_t *blob_len,
                  const char *key_id)
{
    struct sq *s = state;
    int rc, out = SIGNER_ERR_INTERNAL;
    *blob = NULL;
    *blob_len = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_bind_text(s->get, 1, key_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->get);
    if (rc == SQLITE_DONE)
        out = SIGNER_ERR_NOT_FOUND;
    else if (rc == SQLITE_ROW)
        out = sq_get_row(s, chain, chain_cap, address, address_cap, blob,
                         blob_len);
    else
        sq_failed(s, "reading a key", rc);
    sqlite3_reset(s->get);
    sqlite3_clear_bindings(s->get);
    pthread_mutex_unlock(&s->lock);
    return out;
}

static long long sq_count(void *state)
{
    struct sq *s = state;
    long long n = -1;
    int rc;
    pthread_mutex_lock(&s->lock);
    rc = sqlite3_step(s->count);
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int64(s->count, 0);
    else
        sq_failed(s, "counting keys", rc);
    sqlite3_reset(s->count);
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int sq_any_key_id(void *state, char *key_id, size_t cap)
{
    struct sq *s = state;
    int rc, out = SIGNER_ERR_INTERNAL;
    pthread_mutex_lock(&s->lock);
    rc = sqlite3_step(s->any);
    if (rc == SQLITE_DONE)
        out = SIGNER_ERR_NOT_FOUND;
    else if (rc == SQLITE_ROW)
        out = copy_text(key_id, cap, sqlite3_column_text(s->any, 0)) == 0
                  ? SIGNER_OK
                  : SIGNER_ERR_TOO_LARGE;
    else
        sq_failed(s, "reading a key_id", rc);
    sqlite3_reset(s->any);
    pthread_mutex_unlock(&s->lock);
    return out;
}

static int sq_meta_get(void *state, unsigned char *value, size_t cap,
                       size_t *len, const char *name)
{
    struct sq *s = state;
    int rc, out = SIGNER_ERR_INTERNAL;
    *len = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_bind_text(s->meta_get, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->meta_get);
    if (rc == SQLITE_DONE) {
        out = SIGNER_ERR_NOT_FOUND;
    } else if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s->meta_get, 0);
        const void *b = sqlite3_column_blob(s->meta_get, 0);
        if (n < 0 || (size_t)n > cap) {
            out = SIGNER_ERR_TOO_LARGE;
        } else {
            if (n > 0)
                memcpy(value, b, (size_t)n);
            *len = (size_t)n;
            out = SIGNER_OK;
        }
    } else {
        sq_failed(s, "reading its meta table", rc);
    }
    sqlite3_reset(s->meta_get);
    sqlite3_clear_bindings(s->meta_get);
    pthread_mutex_unlock(&s->lock);
    return out;
}

/* Runs the meta upsert (lock held).  SQLITE_DONE on success. */
static int sq_meta_step(struct sq *s, const char *name,
                        const unsigned char *value, size_t len)
{
    int rc;
    sqlite3_bind_text(s->meta_put, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s->meta_put, 2, len ? (const void *)value : "",
                      (int)len, SQLITE_STATIC);
    rc = sqlite3_step(s->meta_put);
    sqlite3_reset(s->meta_put);
    sqlite3_clear_bindings(s->meta_put);
    return rc;
}

static int sq_meta_put(void *state, const char *name,
                       const unsigned char *value, size_t len)
{
    struct sq *s = state;
    int rc;
    pthread_mutex_lock(&s->lock);
    rc = sq_meta_step(s, name, value, len);
    if (rc != SQLITE_DONE)
        sq_failed(s, "writing its meta table", rc);
    pthread_mutex_unlock(&s->lock);
    return rc == SQLITE_DONE ? SIGNER_OK : SIGNER_ERR_INTERNAL;
}

/* Ready unless a statement failed; then a probe write (at most once a
 * second, never waiting for the lock) decides whether it works again. */
static int sq_ready(void *state)
{
    struct sq *s = state;
    uint64_t now = eng_now_us();
    unsigned char stamp[8];
    int64_t t = eng_unix_time();
    size_t i;
    if (atomic_load(&s->healthy))
        return 1;
    if (now - atomic_load(&s->last_probe_us) < PROBE_INTERVAL_US ||
        pthread_mutex_trylock(&s->lock) != 0)
        return 0;
    atomic_store(&s->last_probe_us, now);
    for (i = 0; i < sizeof stamp; i++)
        stamp[i] = (unsigned char)((uint64_t)t >> (8 * i));
    sqlite3_busy_timeout(s->db, 0);
    if (sq_meta_step(s, "probe", stamp, sizeof stamp) == SQLITE_DONE) {
        atomic_store(&s->healthy, 1);
        eng_log(SIGNER_LOG_WARN, "keystore %s: writable again", s->path);
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    pthread_mutex_unlock(&s->lock);
    return atomic_load(&s->healthy);
}

static void sq_describe(void *state, char *out, size_t out_len)
{
    snprintf(out, out_len, "keystore %s", ((struct sq *)state)->path);
}

static const char *const sq_settings[] = {"path", NULL};

const eng_keystore_methods eng_keystore_sqlite = {
    {"sqlite", sq_settings, sq_open},
    sq_put,      sq_get,  sq_count,
    sq_any_key_id, sq_meta_get, sq_meta_put, sq_ready, sq_describe,
    sq_close};
