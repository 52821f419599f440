#include "config.h"
#include "host.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/core_names.h>

#include "log.h"
#include "util.h"

/* ---- logging, entropy, memory ------------------------------------------ */

static void h_log(const signer_host *host, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eng_vlog(level, eng_plugin_of(host)->name, fmt, ap);
    va_end(ap);
}

static int h_random(const signer_host *host, unsigned char *out, size_t len)
{
    (void)host;
    return eng_random(out, len) == 0 ? SIGNER_OK : SIGNER_ERR_INTERNAL;
}

static void *h_secure_alloc(const signer_host *host, size_t len)
{
    (void)host;
    return eng_secure_alloc(len);
}

static void h_secure_free(const signer_host *host, void *p, size_t len)
{
    (void)host;
    eng_secure_free(p, len);
}

/* ---- config -------------------------------------------------------------- */

static const config_setting_t *conf_member(const signer_conf *g,
                                           const char *path)
{
    if (g == NULL || path == NULL)
        return NULL;
    return config_setting_lookup((config_setting_t *)g, path);
}

static int h_conf_int(const signer_conf *g, const char *path, long long *out)
{
    const config_setting_t *s = conf_member(g, path);
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_INT &&
        config_setting_type(s) != CONFIG_TYPE_INT64)
        return SIGNER_ERR_CONFIG;
    *out = config_setting_get_int64(s);
    return 1;
}

static int h_conf_bool(const signer_conf *g, const char *path, int *out)
{
    const config_setting_t *s = conf_member(g, path);
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return SIGNER_ERR_CONFIG;
    *out = config_setting_get_bool(s);
    return 1;
}

static int h_conf_string(const signer_conf *g, const char *path,
                         const char **out)
{
    const config_setting_t *s = conf_member(g, path);
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return SIGNER_ERR_CONFIG;
    *out = config_setting_get_string(s);
    return 1;
}

/* ---- JSON accessors ------------------------------------------------------ */

#define J(v) ((const cJSON *)(v))

static int h_json_type(const signer_json *v)
{
    const cJSON *j = J(v);
    if (j == NULL)
        return SIGNER_JSON_INVALID;
    switch (j->type & 0xff) {
    case cJSON_NULL: return SIGNER_JSON_NULL;
    case cJSON_False: return SIGNER_JSON_FALSE;
    case cJSON_True: return SIGNER_JSON_TRUE;
    case cJSON_Number: return SIGNER_JSON_NUMBER;
    case cJSON_String: return SIGNER_JSON_STRING;
    case cJSON_Array: return SIGNER_JSON_ARRAY;
    case cJSON_Object: return SIGNER_JSON_OBJECT;
    default: return SIGNER_JSON_INVALID;
    }
}

static const signer_json *h_json_get(const signer_json *v, const char *key)
{
    if (!cJSON_IsObject(J(v)) || key == NULL)
        return NULL;
    return (const signer_json *)cJSON_GetObjectItemCaseSensitive(J(v), key);
}

static size_t h_json_count(const signer_json *v)
{
    if (!cJSON_IsObject(J(v)) && !cJSON_IsArray(J(v)))
        return 0;
    return (size_t)cJSON_GetArraySize(J(v));
}

/* Sequential walks (i = 0, 1, 2, ...) are O(1) per step: each thread
 * remembers the last container, index and element it returned. */
static __thread const cJSON *at_parent, *at_node;
static __thread size_t at_index;

void eng_host_request_done(void)
{
    at_parent = NULL;
    at_node = NULL;
    at_index = 0;
}

static const signer_json *h_json_at(const signer_json *v, size_t i,
                                    const char **key)
{
    const cJSON *c;
    size_t k = i;
    if (!cJSON_IsObject(J(v)) && !cJSON_IsArray(J(v)))
        return NULL;
    if (at_parent == J(v) && at_node != NULL && i >= at_index) {
        c = at_node;
        k = i - at_index;
    } else {
        c = J(v)->child;
    }
    for (; c != NULL && k > 0; c = c->next, k--)
        ;
    at_parent = J(v);
    at_node = c;
    at_index = i;
    if (c != NULL && key != NULL)
        *key = c->string;
    return (const signer_json *)c;
}

static const char *h_json_string(const signer_json *v, size_t *len)
{
    const char *s;
    if (!cJSON_IsString(J(v)) || (s = J(v)->valuestring) == NULL)
        return NULL;
    if (len != NULL)
        *len = strlen(s);
    return s;
}

static int h_json_number(const signer_json *v, double *out)
{
    if (!cJSON_IsNumber(J(v)))
        return 0;
    *out = J(v)->valuedouble;
    return 1;
}

/* ---- reply --------------------------------------------------------------- */

static int h_reply_string(signer_reply *reply, const char *key,
                          const char *value)
{
    if (reply == NULL || key == NULL || value == NULL)
        return SIGNER_ERR_INTERNAL;
    cJSON_DeleteItemFromObjectCaseSensitive(reply->result, key);
    return cJSON_AddStringToObject(reply->result, key, value) != NULL
               ? SIGNER_OK
               : SIGNER_ERR_NOMEM;
}

static int reply_verror(signer_reply *reply, int err, const char *fmt,
                        va_list ap)
{
    if (err >= 0)
        err = SIGNER_ERR_INTERNAL;
    reply->err = err;
    vsnprintf(reply->error, sizeof reply->error, fmt, ap);
    return err;
}

int eng_reply_error(signer_reply *reply, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = reply_verror(reply, err, fmt, ap);
    va_end(ap);
    return err;
}

static int h_reply_error(signer_reply *reply, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = reply_verror(reply, err, fmt, ap);
    va_end(ap);
    return err;
}

/* ---- low level sealing and keystore -------------------------------------- */

static int h_seal(signer_call *call, unsigned char **blob, size_t *blob_len,
                  const signer_key_meta *meta, const unsigned char *plain,
                  size_t plain_len)
{
    return eng_sealer_seal(call->eng->sealer, blob, blob_len, meta, plain,
                           plain_len);
}

static int h_unseal(signer_call *call, unsigned char *plain, size_t plain_cap,
                    size_t *plain_len, const signer_key_meta *meta,
                    const unsigned char *blob, size_t blob_len)
{
    return eng_sealer_unseal(call->eng->sealer, plain, plain_cap, plain_len,
                             meta, blob, blob_len);
}

static int h_keystore_put(signer_call *call, const signer_key_meta *meta,
                          const unsigned char *blob, size_t blob_len)
{
    return eng_keystore_put(call->eng->ks, meta, blob, blob_len);
}

static int h_keystore_get(signer_call *call, char *chain, size_t chain_cap,
                          char *address, size_t address_cap,
                          unsigned char **blob, size_t *blob_len,
                          const char *key_id)
{
    return eng_keystore_get(call->eng->ks, chain, chain_cap, address,
                            address_cap, blob, blob_len, key_id);
}

/* ---- authentication state ------------------------------------------------ */

/*
 * Failed attempts per key_id: a chained hash map keyed by the full key_id,
 * so one key_id can never displace another's record (or its lock).  A record
 * is dropped when its key succeeds, or when both its counting window and its
 * lock have passed (pruned whenever its bucket is walked).  If the map is
 * full, a failure cannot be recorded and the request is refused (fail
 * closed) rather than let guessing go uncounted.
 */
#define FAIL_BUCKETS 4096
#define FAIL_MAX 1000000

struct fail_entry {
    struct fail_entry *next;
    char key_id[SIGNER_KEY_ID_LEN + 1];
    int failures;
    int64_t first;        /* start of the counting window */
    int64_t locked_until;
};

/*
 * HMACs seen recently: an open-addressing set of 64-bit fingerprints (the
 * first 8 bytes of the MAC) with their expiry.  It grows by doubling and
 * drops expired entries when it rehashes; past REPLAY_MAX_SLOTS it stops
 * accepting HMAC requests (503) rather than forget one still valid.
 */
#define REPLAY_MIN_SLOTS 4096
#define REPLAY_MAX_SLOTS ((size_t)1 << 21) /* 32 MiB at most */

struct replay_slot {
    uint64_t fp;
    int64_t expires; /* 0: empty */
};

struct eng_auth {
    pthread_mutex_t lock;
    int max_failures;
    int lockout_seconds;
    int hmac_window;
    struct fail_entry *fails[FAIL_BUCKETS];
    size_t n_fails;
    struct replay_slot *replay;
    size_t replay_cap; /* power of two */
    size_t replay_used; /* slots ever filled since the last rehash */
};

eng_auth *eng_auth_new(int max_failures, int lockout_seconds, int hmac_window)
{
    eng_auth *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    pthread_mutex_init(&a->lock, NULL);
    a->max_failures = max_failures;
    a->lockout_seconds = lockout_seconds;
    a->hmac_window = hmac_window;
    return a;
}

void eng_auth_free(eng_auth *a)
{
    size_t i;
    if (a == NULL)
        return;
    for (i = 0; i < FAIL_BUCKETS; i++) {
        struct fail_entry *f = a->fails[i], *n;
        for (; f != NULL; f = n) {
            n = f->next;
            free(f);
        }
    }
    pthread_mutex_destroy(&a->lock);
    free(a->replay);
    free(a);
}

static unsigned bucket_of(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % FAIL_BUCKETS;
}

/* Walks key_id's bucket (lock held), pruning finished records; returns the
 * record of key_id or NULL. */
static struct fail_entry *fail_find(eng_auth *a, const char *key_id,
                                    int64_t now)
{
    struct fail_entry **pp = &a->fails[bucket_of(key_id)], *f, *hit = NULL;
    while ((f = *pp) != NULL) {
        if (f->locked_until <= now && now - f->first > a->lockout_seconds) {
            *pp = f->next;
            free(f);
            a->n_fails--;
            continue;
        }
        if (strcmp(f->key_id, key_id) == 0)
            hit = f;
        pp = &f->next;
    }
    return hit;
}

/* Seconds a key_id is still locked out, 0 if it may try, or -1 when the
 * failure map is full and a failure of this key_id could not be counted:
 * then it may not try at all (fail closed). */
static int64_t auth_locked(eng_auth *a, const char *key_id, int64_t now)
{
    struct fail_entry *f;
    int64_t left = 0;
    pthread_mutex_lock(&a->lock);
    f = fail_find(a, key_id, now);
    if (f != NULL && f->locked_until > now)
        left = f->locked_until - now;
    else if (f == NULL && a->n_fails >= FAIL_MAX)
        left = -1;
    pthread_mutex_unlock(&a->lock);
    return left;
}

/* Records a success (forgets the key's failures) or a failure.  Returns 0,
 * or -1 when a failure could not be recorded (the caller refuses). */
static int auth_record(eng_auth *a, const char *key_id, int ok, int64_t now)
{
    struct fail_entry *f;
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    f = fail_find(a, key_id, now);
    if (ok) {
        if (f != NULL)
            f->failures = 0; /* pruned once its window passes */
    } else {
        if (f == NULL) {
            unsigned b = bucket_of(key_id);
            if (a->n_fails >= FAIL_MAX ||
                (f = calloc(1, sizeof *f)) == NULL) {
                rc = -1;
                goto out;
            }
            snprintf(f->key_id, sizeof f->key_id, "%s", key_id);
            f->first = now;
            f->next = a->fails[b];
            a->fails[b] = f;
            a->n_fails++;
        } else if (now - f->first > a->lockout_seconds) {
            f->failures = 0; /* a new counting window */
            f->first = now;
        }
        if (++f->failures >= a->max_failures) {
            f->locked_until = now + a->lockout_seconds;
            f->failures = 0;
            f->first = now;
        }
    }
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* Rebuilds the replay set with cap slots, keeping live entries. */
static int replay_rehash(eng_auth *a, size_t cap, int64_t now)
{
    struct replay_slot *n = calloc(cap, sizeof *n);
    size_t i, used = 0;
    if (n == NULL)
        return -1;
    for (i = 0; a->replay != NULL && i < a->replay_cap; i++) {
        const struct replay_slot *o = &a->replay[i];
        size_t j;
        if (o->expires <= now)
            continue;
        for (j = (size_t)o->fp & (cap - 1); n[j].expires != 0;
             j = (j + 1) & (cap - 1))
            ;
        n[j] = *o;
        used++;
    }
    free(a->replay);
    a->replay = n;
    a->replay_cap = cap;
    a->replay_used = used;
    return 0;
}

/* Remembers mac until expires.  0 if new, 1 if seen (a replay), -1 if the
 * set is full or out of memory. */
static int auth_replay_check(eng_auth *a, const unsigned char mac[32],
                             int64_t now, int64_t expires)
{
    uint64_t fp = 0;
    size_t i, j, free_slot = (size_t)-1;
    int rc = -1;
    for (i = 0; i < 8; i++)
        fp = fp << 8 | mac[i];
    pthread_mutex_lock(&a->lock);
    if (a->replay == NULL || 2 * (a->replay_used + 1) > a->replay_cap) {
        size_t live = 0, cap;
        for (i = 0; a->replay != NULL && i < a->replay_cap; i++)
            live += a->replay[i].expires > now;
        cap = a->replay ? a->replay_cap : REPLAY_MIN_SLOTS;
        while (4 * (live + 1) > cap && cap < REPLAY_MAX_SLOTS)
            cap *= 2;
        if (2 * (live + 1) > cap || replay_rehash(a, cap, now) != 0)
            goto out; /* full of live entries: refuse, forget nothing */
    }
    /* The probe run ends at an empty slot; a live duplicate is in it. */
    for (j = (size_t)fp & (a->replay_cap - 1); a->replay[j].expires != 0;
         j = (j + 1) & (a->replay_cap - 1)) {
        if (a->replay[j].expires > now && a->replay[j].fp == fp) {
            rc = 1;
            goto out;
        }
        if (a->replay[j].expires <= now && free_slot == (size_t)-1)
            free_slot = j;
    }
    if (free_slot == (size_t)-1) {
        free_slot = j;
        a->replay_used++;
    }
    a->replay[free_slot].fp = fp;
    a->replay[free_slot].expires = expires;
    rc = 0;
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- canonical JSON ------------------------------------------------------ */

static int cmp_keys(const void *x, const void *y)
{
    const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
    return strcmp(a->string, b->string);
}

/* Sorts object members recursively in place. */
static int sort_tree(cJSON *v)
{
    cJSON *c, **arr;
    size_t n = 0, i;
    if (cJSON_IsArray(v)) {
        for (c = v->child; c; c = c->next)
            if (sort_tree(c) < 0)
                return -1;
        return 0;
    }
    if (!cJSON_IsObject(v) || v->child == NULL)
        return 0;
    for (c = v->child; c; c = c->next) {
        n++;
        if (sort_tree(c) < 0)
            return -1;
    }
    if ((arr = malloc(n * sizeof *arr)) == NULL)
        return -1;
    for (i = 0, c = v->child; c; c = c->next)
        arr[i++] = c;
    qsort(arr, n, sizeof *arr, cmp_keys);
    for (i = 0; i < n; i++) {
        arr[i]->prev = i ? arr[i - 1] : arr[n - 1];
        arr[i]->next = i + 1 < n ? arr[i + 1] : NULL;
    }
    v->child = arr[0];
    free(arr);
    return 0;
}

char *eng_json_canonical(const cJSON *v)
{
    cJSON *dup = cJSON_Duplicate(v, 1);
    char *out = NULL;
    if (dup != NULL && sort_tree(dup) == 0)
        out = cJSON_PrintUnformatted(dup);
    cJSON_Delete(dup);
    return out;
}

/* ---- high level keys ----------------------------------------------------- */

/* Validates a secret: 20..128 printable ASCII.  Returns its length or -1. */
static int secret_check(const cJSON *s, size_t *len)
{
    size_t i, n;
    if (!cJSON_IsString(s) || s->valuestring == NULL)
        return -1;
    n = strlen(s->valuestring);
    if (n < ENG_SECRET_MIN || n > ENG_SECRET_MAX)
        return -1;
    for (i = 0; i < n; i++)
        if (s->valuestring[i] < 0x20 || s->valuestring[i] > 0x7e)
            return -1;
    *len = n;
    return 0;
}

static int h_key_create(signer_call *call, signer_reply *reply,
                        const char *chain, const char *address,
                        const unsigned char *key, size_t key_len,
                        const signer_json *payload)
{
    eng_engine *e = call->eng;
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(J(payload), "secret");
    unsigned char *plain = NULL, *blob = NULL;
    size_t slen = 0, plen, blen = 0;
    char key_id[SIGNER_KEY_ID_LEN + 1];
    signer_key_meta meta;
    int rc;

    if (sec == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret: required");
    if (secret_check(sec, &slen) < 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret: must be a string of %d to %d "
                               "printable ASCII characters",
                               ENG_SECRET_MIN, ENG_SECRET_MAX);
    if (key_len == 0 || key_len > SIGNER_MAX_KEY || chain == NULL ||
        address == NULL || strlen(address) >= SIGNER_MAX_ADDRESS)
        return eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                               "plugin passed an invalid key");
    if (eng_uuid_v4(key_id) != 0)
        return eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                               "entropy source failed");
    plen = 2 + key_len + slen;
    if ((plain = eng_secure_alloc(ENG_PLAIN_MAX)) == NULL) {
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    plain[0] = (unsigned char)key_len;
    memcpy(plain + 1, key, key_len);
    plain[1 + key_len] = (unsigned char)slen;
    memcpy(plain + 2 + key_len, sec->valuestring, slen);
    meta.key_id = key_id;
    meta.chain = chain;
    meta.address = address;
    rc = eng_sealer_seal(e->sealer, &blob, &blen, &meta, plain, plen);
    if (rc != SIGNER_OK) {
        rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                             "sealing the key failed");
        goto cleanup;
    }
    rc = eng_keystore_put(e->ks, &meta, blob, blen);
    if (rc != SIGNER_OK) {
        rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                             "storing the sealed key failed");
        goto cleanup;
    }
    if (h_reply_string(reply, "key_id", key_id) != SIGNER_OK ||
        h_reply_string(reply, "address", address) != SIGNER_OK)
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
cleanup:
    eng_secure_free(plain, ENG_PLAIN_MAX);
    free(blob);
    return rc;
}

/* Parses payload.timestamp: a JSON integer or a decimal string. */
static int get_timestamp(const cJSON *t, int64_t *out)
{
    if (cJSON_IsNumber(t)) {
        double d = t->valuedouble;
        if (d < 0 || d > 1e12 || (double)(int64_t)d != d)
            return -1;
        *out = (int64_t)d;
        return 0;
    }
    if (cJSON_IsString(t) && t->valuestring != NULL) {
        const char *s = t->valuestring;
        int64_t v = 0;
        if (*s == '\0' || strlen(s) > 12)
            return -1;
        for (; *s; s++) {
            if (!isdigit((unsigned char)*s))
                return -1;
            v = v * 10 + (*s - '0');
        }
        *out = v;
        return 0;
    }
    return -1;
}

static int hex_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks the HMAC of payload against secret.  0 ok, else an error set. */
static int check_hmac(eng_engine *e, signer_reply *reply, const cJSON *payload,
                      const unsigned char *secret, size_t slen, int64_t now,
                      int *guess)
{
    const cJSON *hm = cJSON_GetObjectItemCaseSensitive(payload, "hmac");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(payload, "timestamp");
    const cJSON *tp =
        cJSON_GetObjectItemCaseSensitive(payload, "transaction_payload");
    unsigned char given[32], mac[32];
    const char *h;
    char *canon = NULL, tsbuf[24];
    int64_t t;
    size_t i;
    EVP_MAC *m = NULL;
    EVP_MAC_CTX *mc = NULL;
    OSSL_PARAM params[2];
    size_t outl = 0;
    int rc = SIGNER_ERR_INTERNAL;

    if (!cJSON_IsString(hm) || (h = hm->valuestring) == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "hmac: must be a hex string");
    if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
        h += 2;
    if (strlen(h) != 64)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "hmac: must be 64 hex digits");
    for (i = 0; i < 32; i++) {
        int hi = hex_nibble(h[2 * i]), lo = hex_nibble(h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                   "hmac: must be 64 hex digits");
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    if (ts == NULL || get_timestamp(ts, &t) < 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "timestamp: must be unix seconds (integer)");
    if (t > now + e->cfg->hmac_window || t < now - e->cfg->hmac_window)
        return eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                               "timestamp: outside the allowed window of "
                               "%d seconds",
                               e->cfg->hmac_window);
    if (tp != NULL) {
        canon = eng_json_canonical(tp);
    } else {
        /* Operations without a transaction_payload (sign_message): the
         * payload itself, less the authentication fields. */
        cJSON *rest = cJSON_Duplicate(payload, 1);
        if (rest != NULL) {
            cJSON_DeleteItemFromObjectCaseSensitive(rest, "hmac");
            cJSON_DeleteItemFromObjectCaseSensitive(rest, "timestamp");
            canon = eng_json_canonical(rest);
            cJSON_Delete(rest);
        }
    }
    if (canon == NULL)
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)t);
    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    mc = m ? EVP_MAC_CTX_new(m) : NULL;
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (mc == NULL || EVP_MAC_init(mc, secret, slen, params) != 1 ||
        EVP_MAC_update(mc, (const unsigned char *)canon, strlen(canon)) != 1 ||
        EVP_MAC_update(mc, (const unsigned char *)tsbuf, strlen(tsbuf)) != 1 ||
        EVP_MAC_final(mc, mac, &outl, sizeof mac) != 1 || outl != 32) {
        rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL, "HMAC failed");
        goto cleanup;
    }
    if (!eng_ct_equal(mac, given, 32)) {
        *guess = 1; /* only a wrong MAC counts toward the lockout */
        rc = eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                             "hmac: does not match");
        goto cleanup;
    }
    switch (auth_replay_check(e->auth, mac, now,
                              t + e->cfg->hmac_window + 1)) {
    case 0:
        break;
    case 1:
        /* Not a guess (the MAC is right): not counted as a failure. */
        rc = eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                             "hmac: this request was already used (replay)");
        goto cleanup;
    default:
        rc = eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                             "hmac: too many recent HMAC requests to "
                             "remember; retry shortly");
        goto cleanup;
    }
    rc = SIGNER_OK;
cleanup:
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(m);
    free(canon);
    eng_wipe(mac, sizeof mac);
    return rc;
}

static int h_key_open(signer_call *call, signer_reply *reply,
                      unsigned char *key, size_t key_cap, size_t *key_len,
                      char *address, size_t address_cap, const char *chain,
                      const signer_json *payload_)
{
    eng_engine *e = call->eng;
    const cJSON *payload = J(payload_);
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(payload, "key_id");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(payload, "secret");
    const cJSON *hm = cJSON_GetObjectItemCaseSensitive(payload, "hmac");
    char key_id[SIGNER_KEY_ID_LEN + 1], st_chain[64];
    char st_addr[SIGNER_MAX_ADDRESS];
    unsigned char *blob = NULL, *plain = NULL;
    unsigned char h1[ENG_SECRET_MAX], h2[ENG_SECRET_MAX];
    size_t blen = 0, plen = 0, klen, slen = 0, i;
    signer_key_meta meta;
    int64_t now = eng_unix_time(), left;
    int rc;

    *key_len = 0;
    if (kid == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "key_id: required");
    if (!cJSON_IsString(kid) || !eng_uuid_valid(kid->valuestring))
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "key_id: must be a UUIDv4 string");
    for (i = 0; i <= SIGNER_KEY_ID_LEN; i++)
        key_id[i] = (char)tolower((unsigned char)kid->valuestring[i]);
    if (sec != NULL && hm != NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret, hmac: give one of them, not both");
    if (sec == NULL && hm == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret: required (or hmac and timestamp)");
    if (sec != NULL && secret_check(sec, &slen) < 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret: must be a string of %d to %d "
                               "printable ASCII characters",
                               ENG_SECRET_MIN, ENG_SECRET_MAX);
    if ((left = auth_locked(e->auth, key_id, now)) > 0)
        return eng_reply_error(reply, SIGNER_ERR_THROTTLED,
                               "key_id: too many failed attempts; retry in "
                               "%lld s",
                               (long long)left);
    if (left < 0) {
        eng_log(SIGNER_LOG_ERROR, "failed-attempt table full: refusing "
                                  "authentication until records expire");
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "too many keys with failed attempts; retry "
                               "later");
    }

    if ((plain = eng_secure_alloc(ENG_PLAIN_MAX)) == NULL) {
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (!eng_keycache_get(e->cache, plain, ENG_PLAIN_MAX, &plen, st_chain,
                          sizeof st_chain, st_addr, sizeof st_addr, key_id,
                          now)) {
        rc = eng_keystore_get(e->ks, st_chain, sizeof st_chain, st_addr,
                              sizeof st_addr, &blob, &blen, key_id);
        if (rc == SIGNER_ERR_NOT_FOUND) {
            rc = eng_reply_error(reply, rc, "key_id: no such key");
            goto cleanup;
        }
        if (rc != SIGNER_OK) {
            rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                                 "keystore read failed");
            goto cleanup;
        }
        meta.key_id = key_id;
        meta.chain = st_chain;
        meta.address = st_addr;
        rc = eng_sealer_unseal(e->sealer, plain, ENG_PLAIN_MAX, &plen, &meta,
                               blob, blen);
        if (rc != SIGNER_OK) {
            eng_log(SIGNER_LOG_ERROR,
                    "sealed key %s cannot be opened (wrong master key or "
                    "tampered record)",
                    key_id);
            rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                                 "the sealed key cannot be opened");
            goto cleanup;
        }
        eng_keycache_put(e->cache, key_id, plain, plen, st_chain, st_addr,
                         now);
    }
    if (strcmp(st_chain, chain) != 0) {
        rc = eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                             "key_id: the key belongs to chain '%s', not '%s'",
                             st_chain, chain);
        goto cleanup;
    }
    klen = plain[0];
    if (plen < 2 || klen == 0 || klen > SIGNER_MAX_KEY || 1 + klen >= plen ||
        plain[1 + klen] != plen - 2 - klen || klen > key_cap ||
        strlen(st_addr) + 1 > address_cap) {
        rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                             "the sealed key has a bad layout");
        goto cleanup;
    }
    if (sec != NULL) {
        /* Constant time over the maximum length: both secrets zero-padded to
         * ENG_SECRET_MAX, lengths compared without a branch. */
        size_t stored = plen - 2 - klen;
        memset(h1, 0, sizeof h1);
        memset(h2, 0, sizeof h2);
        memcpy(h1, sec->valuestring, slen);
        memcpy(h2, plain + 2 + klen, stored <= sizeof h2 ? stored : 0);
        if (!(eng_ct_equal(h1, h2, sizeof h1) & (slen == stored))) {
            auth_record(e->auth, key_id, 0, now);
            rc = eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                                 "secret: does not match the key");
            goto cleanup;
        }
    } else {
        int guess = 0;
        rc = check_hmac(e, reply, payload, plain + 2 + klen, plen - 2 - klen,
                        now, &guess);
        if (rc != SIGNER_OK) {
            if (guess)
                auth_record(e->auth, key_id, 0, now);
            goto cleanup;
        }
    }
    auth_record(e->auth, key_id, 1, now);
    memcpy(key, plain + 1, klen);
    *key_len = klen;
    memcpy(address, st_addr, strlen(st_addr) + 1);
    rc = SIGNER_OK;
cleanup:
    if (rc != SIGNER_OK && key != NULL)
        eng_wipe(key, key_cap);
    eng_secure_free(plain, ENG_PLAIN_MAX);
    eng_wipe(h1, sizeof h1);
    eng_wipe(h2, sizeof h2);
    free(blob);
    return rc;
}

void eng_host_init(eng_engine *e)
{
    signer_host *h = &e->host;
    memset(h, 0, sizeof *h);
    h->abi_major = SIGNER_ABI_MAJOR;
    h->abi_minor = SIGNER_ABI_MINOR;
    h->struct_size = (uint32_t)sizeof *h;
    h->log = h_log;
    h->random_bytes = h_random;
    h->secure_alloc = h_secure_alloc;
    h->secure_free = h_secure_free;
    h->wipe = eng_wipe;
    h->ct_equal = eng_ct_equal;
    h->conf_int = h_conf_int;
    h->conf_bool = h_conf_bool;
    h->conf_string = h_conf_string;
    h->json_type = h_json_type;
    h->json_get = h_json_get;
    h->json_count = h_json_count;
    h->json_at = h_json_at;
    h->json_string = h_json_string;
    h->json_number = h_json_number;
    h->reply_string = h_reply_string;
    h->reply_error = h_reply_error;
    h->seal = h_seal;
    h->unseal = h_unseal;
    h->keystore_put = h_keystore_put;
    h->keystore_get = h_keystore_get;
    h->free = free;
    h->key_create = h_key_create;
    h->key_open = h_key_open;
}
