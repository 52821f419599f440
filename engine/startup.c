/* Start-up and --check-config (see startup.h). */
#include "config.h"
#include "startup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dispatch.h"
#include "enclave.h"
#include "keysvc.h"
#include "metrics.h"
#include "log.h"
#include "transport/transport_internal.h"
#include "util.h"

/* Names under which the keystore records the sealer's check value and a
 * description of the key material that made it (what to restore). */
#define META_CHECK "sealer_check"
#define META_SOURCE "sealer_source"

/* Locked memory kept beside the key cache for keys and secrets in flight. */
#define SECURE_RESERVE ((size_t)1 << 20)
#define SECURE_MIN ((size_t)4 << 20)

/* ---- data directory ------------------------------------------------------- */

/* Restricts an existing data dir to its owner. */
static int restrict_dir(const char *dir, const struct stat *st, char *err,
                        size_t err_len)
{
    if ((st->st_mode & 077) == 0)
        return 0;
    if (chmod(dir, st->st_mode & 0700) != 0) {
        snprintf(err, err_len,
                 "data_dir %s is accessible by group or others and cannot "
                 "be restricted: %s",
                 dir, strerror(errno));
        return -1;
    }
    eng_log(SIGNER_LOG_WARN, "data_dir %s was accessible by group or others:"
                             " restricted to its owner (0700)",
            dir);
    return 0;
}

/* mkdir -p: parents 0755, the data dir itself 0700; each directory made
 * is recorded in created. */
static int make_data_dir(const char *dir, eng_created *created, char *err,
                         size_t err_len)
{
    struct stat st;
    char *parent = eng_dirname(dir);
    if (parent != NULL && strcmp(parent, dir) != 0 && stat(parent, &st) != 0 &&
        make_data_dir(parent, created, err, err_len) == 0)
        chmod(parent, 0755);
    free(parent);
    if (mkdir(dir, 0700) == 0) {
        if (eng_created_add(created, dir, 1) != 0) {
            rmdir(dir);
            snprintf(err, err_len, "cannot create data_dir %s: more than %d "
                     "missing parent directories", dir, ENG_CREATED_MAX - 4);
            return -1;
        }
    } else if (errno != EEXIST) {
        snprintf(err, err_len, "cannot create data_dir %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "data_dir %s is not a directory", dir);
        return -1;
    }
    return restrict_dir(dir, &st, err, err_len);
}

/* --check-config: 1 if the data dir exists, 0 if not yet, -1 if broken. */
static int data_dir_exists(const char *dir, char *err, size_t err_len)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, err_len, "data_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "data_dir %s is not a directory", dir);
        return -1;
    }
    return 1;
}

/* ---- secure heap ------------------------------------------------------------ */

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

size_t eng_engine_secure_heap_bytes(const eng_config *cfg)
{
    size_t need = SECURE_RESERVE;
    /* The cache is one block, and the secure heap is a buddy allocator:
     * the block takes the next power of two. */
    if (cfg->key_cache_ttl > 0)
        need += pow2_at_least(eng_keycache_bytes((size_t)cfg->key_cache_max));
    return pow2_at_least(need < SECURE_MIN ? SECURE_MIN : need);
}

/* Describes whether heap bytes can be locked under RLIMIT_MEMLOCK. */
static int memlock_ok(size_t heap, char *out, size_t out_len)
{
    struct rlimit rl;
    if (geteuid() == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) != 0 ||
        rl.rlim_cur == RLIM_INFINITY || (size_t)rl.rlim_cur >= heap) {
        snprintf(out, out_len, "can be locked");
        return 1;
    }
    snprintf(out, out_len,
             "more than RLIMIT_MEMLOCK (%llu bytes): key memory would not be "
             "locked; raise the limit (ulimit -l, systemd LimitMEMLOCK=) or "
             "lower key_cache.max_entries",
             (unsigned long long)rl.rlim_cur);
    return 0;
}

static void secure_heap_open(eng_engine *e, const eng_config *cfg)
{
    size_t heap = eng_engine_secure_heap_bytes(cfg);
    char why[256];
    e->secure_heap = eng_secure_init(heap);
    if (!e->secure_heap) {
        memlock_ok(heap, why, sizeof why);
        eng_log(SIGNER_LOG_WARN,
                "locked memory unavailable for the %zu-byte secure heap "
                "(key_cache.max_entries = %d): key buffers are not mlocked "
                "(%s)",
                heap, cfg->key_cache_max, why);
    }
}

/* ---- sealer and keystore ---------------------------------------------------- */

static eng_backend_args backend_args(eng_config *cfg,
                                     const eng_backend_conf *b, int create)
{
    eng_backend_args a;
    a.dir = cfg->data_dir;
    a.settings = b->settings;
    a.n_settings = b->n_settings;
    a.create = create;
    a.created = create ? &cfg->created : NULL;
    return a;
}

/* What the keystore says about the keys sealed so far. */
struct sealed_state {
    long long keys;
    int have_check;
    unsigned char check[ENG_SEALER_CHECK_LEN];
    size_t check_len;
    char source[512]; /* META_SOURCE, or "" */
};

static int read_sealed_state(eng_engine *e, struct sealed_state *st,
                             char *err, size_t err_len)
{
    char ks[600];
    size_t n = 0;
    int rc;
    memset(st, 0, sizeof *st);
    if (e->ks == NULL)
        return 0;
    eng_keystore_describe(e->ks, ks, sizeof ks);
    if ((st->keys = eng_keystore_count(e->ks)) < 0) {
        /* A store that cannot count cheaply (DynamoDB): empty or not. */
        char any[96];
        rc = eng_keystore_any_key_id(e->ks, any, sizeof any);
        st->keys = rc == SIGNER_OK ? 1 : 0;
        if (rc != SIGNER_OK && rc != SIGNER_ERR_NOT_FOUND) {
            snprintf(err, err_len, "%s: cannot count its keys", ks);
            return -1;
        }
    }
    rc = eng_keystore_meta_get(e->ks, st->check, sizeof st->check,
                               &st->check_len, META_CHECK);
    if (rc != SIGNER_OK && rc != SIGNER_ERR_NOT_FOUND) {
        snprintf(err, err_len, "%s: cannot read its sealer check value", ks);
        return -1;
    }
    st->have_check = rc == SIGNER_OK;
    if (eng_keystore_meta_get(e->ks, (unsigned char *)st->source,
                              sizeof st->source - 1, &n,
                              META_SOURCE) == SIGNER_OK)
        st->source[n] = '\0';
    return 0;
}

/* The sealer key is missing while keys exist: say what to restore. */
static int refuse_missing(eng_engine *e, const struct sealed_state *st,
                          const char *why, char *err, size_t err_len)
{
    char ks[600];
    eng_keystore_describe(e->ks, ks, sizeof ks);
    snprintf(err, err_len,
             "%s holds %lld keys sealed under %s, which cannot be opened (%s):"
             " restore it from your backup (a new one would make every "
             "existing key unusable)",
             ks, st->keys, st->source[0] ? st->source : "the configured sealer",
             why);
    return -1;
}

/* Records the sealer's check value and source in the keystore. */
static int record_check(eng_engine *e, const unsigned char *cv, char *err,
                        size_t err_len)
{
    char src[512];
    int rc;
    eng_sealer_describe(e->sealer, src, sizeof src);
    rc = eng_keystore_meta_put(e->ks, META_CHECK, cv, ENG_SEALER_CHECK_LEN);
    if (rc == SIGNER_OK)
        rc = eng_keystore_meta_put(e->ks, META_SOURCE,
                                   (const unsigned char *)src, strlen(src));
    if (rc == SIGNER_ERR_UNAVAILABLE) /* a keystore that keeps no values */
        return 0;
    if (rc != SIGNER_OK) {
        snprintf(err, err_len, "cannot record the sealer check value");
        return -1;
    }
    return 0;
}

/* A keystore from before check values: 0 if the sealer opens one of its
 * keys (so the check value may be recorded), -1 naming what to restore. */
static int try_unseal_one(eng_engine *e, const struct sealed_state *st,
                          char *err, size_t err_len)
{
    char kid[SIGNER_KEY_ID_LEN + 1], chain[32], addr[SIGNER_MAX_ADDRESS];
    char ks[600], cur[512];
    unsigned char *blob = NULL, *plain = NULL;
    size_t blen = 0, plen = 0;
    signer_key_meta meta;
    int rc;
    if (eng_keystore_any_key_id(e->ks, kid, sizeof kid) != SIGNER_OK ||
        eng_keystore_get(e->ks, chain, sizeof chain, addr, sizeof addr,
                         &blob, &blen, kid) != SIGNER_OK ||
        (plain = eng_secure_alloc(ENG_PLAIN_MAX)) == NULL) {
        free(blob);
        snprintf(err, err_len, "cannot read a key to check the sealer");
        return -1;
    }
    meta.key_id = kid;
    meta.chain = chain;
    meta.address = addr;
    rc = eng_sealer_unseal(e->sealer, plain, ENG_PLAIN_MAX, &plen, &meta,
                           blob, blen);
    eng_secure_free(plain, ENG_PLAIN_MAX);
    free(blob);
    if (rc == SIGNER_OK)
        return 0;
    eng_keystore_describe(e->ks, ks, sizeof ks);
    eng_sealer_describe(e->sealer, cur, sizeof cur);
    snprintf(err, err_len,
             "%s does not open the %lld keys in %s (key %s): restore the "
             "master key that sealed them from your backup",
             cur, st->keys, ks, kid);
    return -1;
}

/* Compares the open sealer's check value with the recorded one; records it
 * when there is none yet (or no key depends on the old one). */
static int bind_check(eng_engine *e, const struct sealed_state *st,
                      int create, char *err, size_t err_len)
{
    unsigned char cv[ENG_SEALER_CHECK_LEN];
    char ks[600], cur[512];
    int rc = eng_sealer_check_value(e->sealer, cv), out = 0;
    if (rc == SIGNER_ERR_NOT_FOUND || e->ks == NULL)
        return 0; /* a sealer without a check value */
    if (rc != SIGNER_OK) {
        snprintf(err, err_len, "cannot compute the sealer check value");
        return -1;
    }
    if (st->have_check && st->check_len == sizeof cv &&
        eng_ct_equal(cv, st->check, sizeof cv))
        goto cleanup;
    eng_keystore_describe(e->ks, ks, sizeof ks);
    eng_sealer_describe(e->sealer, cur, sizeof cur);
    if (st->have_check && st->keys > 0) {
        snprintf(err, err_len,
                 "%s is not the key that sealed the %lld keys in %s (check "
                 "value mismatch): restore %s from your backup",
                 cur, st->keys, ks,
                 st->source[0] ? st->source : "the original");
        out = -1;
    } else if (!st->have_check && st->keys > 0 &&
               try_unseal_one(e, st, err, err_len) != 0) {
        out = -1;
    } else if (create) {
        if (st->keys > 0)
            eng_log(SIGNER_LOG_WARN, "%s: recording the check value of %s "
                                     "for its %lld existing keys",
                    ks, cur, st->keys);
        out = record_check(e, cv, err, err_len);
    }
cleanup:
    eng_wipe(cv, sizeof cv);
    return out;
}

/* Opens the keystore, then the sealer (creating new key material only when
 * no key depends on the old one), and binds them by the check value. */
static int open_storage(eng_engine *e, eng_config *cfg, int create,
                        char *err, size_t err_len)
{
    struct sealed_state st;
    eng_backend_args a = backend_args(cfg, &cfg->keystore, create);
    int rc = eng_keystore_open(&e->ks, cfg->keystore.type, &a, err, err_len);
    if (rc != SIGNER_OK && !(rc == SIGNER_ERR_NOT_FOUND && !create))
        return -1;
    if (read_sealed_state(e, &st, err, err_len) != 0)
        return -1;
    a = backend_args(cfg, &cfg->sealer,
                     create && st.keys == 0 && !st.have_check);
    rc = eng_sealer_open(&e->sealer, cfg->sealer.type, &a, err, err_len);
    if (rc == SIGNER_ERR_NOT_FOUND && st.keys > 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        return refuse_missing(e, &st, why, err, err_len);
    }
    if (rc == SIGNER_ERR_NOT_FOUND && create && st.have_check) {
        /* No key depends on it: a fresh key material is fine. */
        a.create = 1;
        a.created = &cfg->created;
        rc = eng_sealer_open(&e->sealer, cfg->sealer.type, &a, err, err_len);
    }
    if (rc == SIGNER_ERR_NOT_FOUND && !create)
        return 0; /* --check-config: created on the first start */
    if (rc != SIGNER_OK)
        return -1;
    return bind_check(e, &st, create, err, err_len);
}

/* ---- plugins ---------------------------------------------------------------- */

static int open_plugins(eng_engine *e, const eng_config *cfg, char *err,
                        size_t err_len)
{
    size_t i;
    for (i = 0; i < cfg->n_plugins; i++) {
        const eng_plugin_conf *pc = &cfg->plugins[i];
        char *file = strchr(pc->path, '/') ? eng_path_join(cfg->dir, pc->path)
                                           : eng_plugin_resolve(pc->path,
                                                                cfg->plugin_dir);
        int rc = file ? eng_registry_load(&e->reg, &e->host, pc->name, file,
                                          (const signer_conf *)pc->settings,
                                          err, err_len)
                      : SIGNER_ERR_NOMEM;
        if (file == NULL)
            snprintf(err, err_len, "out of memory");
        free(file);
        if (rc != SIGNER_OK)
            return -1;
    }
    for (i = 0; i < cfg->n_aliases; i++)
        if (eng_registry_alias(&e->reg, cfg->aliases[i].from,
                               cfg->aliases[i].to, err, err_len) != SIGNER_OK)
            return -1;
    return 0;
}

/* ---- engine lifecycle ------------------------------------------------------- */

static int open_storage_and_cache(eng_engine *e, eng_config *cfg, char *err,
                                  size_t err_len)
{
    if (cfg->check_only) {
        int r = data_dir_exists(cfg->data_dir, err, err_len);
        return r <= 0 ? r : open_storage(e, cfg, 0, err, err_len);
    }
    if (make_data_dir(cfg->data_dir, &cfg->created, err, err_len) < 0)
        return -1;
    if (cfg->key_cache_ttl > 0 &&
        (e->cache = eng_keycache_new((size_t)cfg->key_cache_max,
                                     cfg->key_cache_ttl)) == NULL) {
        snprintf(err, err_len,
                 "cannot allocate the key cache (key_cache.max_entries = %d, "
                 "%zu bytes of locked memory)",
                 cfg->key_cache_max,
                 eng_keycache_bytes((size_t)cfg->key_cache_max));
        return -1;
    }
    return open_storage(e, cfg, 1, err, err_len);
}

int eng_engine_open(eng_engine *e, eng_config *cfg, char *err, size_t err_len)
{
    memset(e, 0, sizeof *e);
    e->cfg = cfg;
    e->key_source = eng_keysvc_source_for_role(cfg->role);
    eng_created_clear(&cfg->created);
    eng_registry_init(&e->reg);
    secure_heap_open(e, cfg);
    eng_host_init(e);
    if ((e->metrics = eng_metrics_new()) == NULL ||
        (e->auth = eng_auth_new(cfg->max_failures, cfg->lockout_seconds,
                                cfg->hmac_window)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (eng_enclave_open(e, cfg, err, err_len) < 0 ||
        open_storage_and_cache(e, cfg, err, err_len) < 0 ||
        open_plugins(e, cfg, err, err_len) < 0)
        goto fail;
    return 0;
fail:
    eng_engine_abandon(e);
    return -1;
}

void eng_engine_close(eng_engine *e)
{
    eng_registry_free(&e->reg);
    eng_keystore_close(e->ks);
    eng_sealer_close(e->sealer);
    if (eng_enclave_role(e->cfg))
        eng_enclave_close();
    eng_auth_free(e->auth);
    eng_keycache_free(e->cache);
    free(e->metrics);
    e->cache = NULL;
    e->ks = NULL;
    e->sealer = NULL;
    e->auth = NULL;
    e->metrics = NULL;
}

void eng_engine_abandon(eng_engine *e)
{
    eng_engine_close(e);
    if (e->cfg != NULL)
        eng_created_undo(&e->cfg->created);
}

int eng_engine_ready(eng_engine *e)
{
    return eng_sealer_ready(e->sealer) && eng_keystore_ready(e->ks);
}

/* ---- --check-config --------------------------------------------------------- */

static int check_listeners(const eng_config *cfg, char *err, size_t err_len)
{
    size_t i;
    char why[256];
    for (i = 0; i < cfg->n_listen; i++) {
        eng_sockaddr sa;
        memset(&sa, 0, sizeof sa);
        if (eng_listen_parse(cfg->listen[i].address, &sa, why, sizeof why) !=
            0) {
            snprintf(err, err_len, "listen address '%s': %s",
                     cfg->listen[i].address, why);
            return -1;
        }
    }
    return 0;
}

static void report_storage(const eng_engine *e, const eng_config *cfg,
                           FILE *out)
{
    char ks[600] = "", sl[600] = "";
    eng_keystore_describe(e->ks, ks, sizeof ks);
    eng_sealer_describe(e->sealer, sl, sizeof sl);
    if (e->ks != NULL)
        fprintf(out, "data_dir %s: %s (%lld keys) and %s checked\n",
                cfg->data_dir, ks, eng_keystore_count(e->ks),
                e->sealer ? sl : "no sealer key yet");
    else if (e->sealer != NULL)
        fprintf(out, "data_dir %s: %s checked, no keystore yet\n",
                cfg->data_dir, sl);
    else if (cfg->role != NULL && strcmp(cfg->role, "gateway") == 0)
        fprintf(out, "data_dir %s: no keystore yet (created on first "
                     "start)\n",
                cfg->data_dir);
    else
        fprintf(out, "data_dir %s: no master key yet (created on first "
                     "start)\n",
                cfg->data_dir);
}

/* The listener protocol as the config file names it. */
static const char *proto_name(int proto)
{
    switch (proto) {
    case ENG_PROTO_FRAMES: return "frames";
    case ENG_PROTO_HTTPS: return "https";
    case ENG_PROTO_RELAY: return "relay";
    case ENG_PROTO_HEALTH: return "health";
    default: return "http";
    }
}

int eng_engine_check_config(eng_config *cfg, FILE *out, char *err,
                            size_t err_len)
{
    eng_engine e;
    size_t heap = eng_engine_secure_heap_bytes(cfg), i;
    char lock[256];
    cfg->check_only = 1;
    if (check_listeners(cfg, err, err_len) != 0 ||
        eng_engine_open(&e, cfg, err, err_len) != 0)
        return -1;
    fprintf(out, "%s: ok (%zu plugins, %zu operations, %zu listeners)\n",
            cfg->file, e.reg.n_plugins, e.reg.n_ops, cfg->n_listen);
    for (i = 0; i < cfg->n_listen; i++)
        fprintf(out, "listen: %s %s\n", proto_name(cfg->listen[i].proto),
                cfg->listen[i].address);
    report_storage(&e, cfg, out);
    memlock_ok(heap, lock, sizeof lock);
    fprintf(out, "locked memory: %zu bytes (key_cache.max_entries = %d, "
                 "ttl_seconds = %d): %s\n",
            heap, cfg->key_cache_max, cfg->key_cache_ttl, lock);
    eng_engine_close(&e);
    return 0;
}
