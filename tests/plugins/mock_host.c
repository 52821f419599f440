/*
 * Mock signer_host for plugin unit tests.  See mock_host.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "mock_host.h"

#define MOCK_SECRET_MIN 20
#define MOCK_SECRET_MAX 128
#define MOCK_HMAC_WINDOW 60
#define MOCK_CHAIN_MAX 32

typedef struct mock_key {
    char key_id[SIGNER_KEY_ID_LEN + 1];
    char chain[MOCK_CHAIN_MAX];
    char address[SIGNER_MAX_ADDRESS];
    unsigned char key[SIGNER_MAX_KEY];
    size_t key_len;
    char secret[MOCK_SECRET_MAX + 1];
    size_t secret_len;
    int has_secret;
    int failures;
    unsigned char *blob; /* from keystore_put, else NULL */
    size_t blob_len;
    struct mock_key *next;
} mock_key;

struct signer_call {
    mock_host *m;
};

struct mock_host {
    signer_host host; /* first: a signer_host* is a mock_host* */
    struct signer_call call; /* for mock_host_call */
    pthread_mutex_t mu;
    mock_key *keys;
    unsigned char *rq; /* queued random bytes */
    size_t rq_len, rq_off;
    int det;
    unsigned char seed[32];
    uint64_t ctr;
    int random_fail;
    int throttle;
    int fail_key_create;
    long secure_live;
    long key_open_calls;
    char *log;
    size_t log_len, log_cap;
    cJSON *settings;
};

struct signer_reply {
    cJSON *result;
    char *error;
    int err;
};

#define MH(h) ((mock_host *)(uintptr_t)(h))
#define CJ(v) ((const cJSON *)(const void *)(v))

/* ---- JSON accessors ------------------------------------------------------ */

/* Per-thread cursors: json_at(v, i+1) after json_at(v, i) is O(1). */
#define MOCK_CURSORS 8
static __thread struct {
    const cJSON *parent, *item;
    size_t idx;
} mock_cur[MOCK_CURSORS];
static __thread unsigned mock_cur_next;

static void mock_cursor_reset(void)
{
    memset(mock_cur, 0, sizeof mock_cur);
}

static int mock_json_type(const signer_json *v)
{
    const cJSON *j = CJ(v);

    if (j == NULL)
        return SIGNER_JSON_INVALID;
    if (cJSON_IsNull(j))
        return SIGNER_JSON_NULL;
    if (cJSON_IsFalse(j))
        return SIGNER_JSON_FALSE;
    if (cJSON_IsTrue(j))
        return SIGNER_JSON_TRUE;
    if (cJSON_IsNumber(j))
        return SIGNER_JSON_NUMBER;
    if (cJSON_IsString(j))
        return SIGNER_JSON_STRING;
    if (cJSON_IsArray(j))
        return SIGNER_JSON_ARRAY;
    if (cJSON_IsObject(j))
        return SIGNER_JSON_OBJECT;
    return SIGNER_JSON_INVALID;
}

static const signer_json *mock_json_get(const signer_json *v, const char *key)
{
    const cJSON *j = CJ(v);

    if (j == NULL || !cJSON_IsObject(j) || key == NULL)
        return NULL;
    return (const signer_json *)cJSON_GetObjectItemCaseSensitive(j, key);
}

static size_t mock_json_count(const signer_json *v)
{
    const cJSON *j = CJ(v);
    unsigned i;

    if (j == NULL || !(cJSON_IsArray(j) || cJSON_IsObject(j)))
        return 0;
    for (i = 0; i < MOCK_CURSORS; i++) /* a fresh walk starts here */
        if (mock_cur[i].parent == j)
            mock_cur[i].parent = NULL;
    return (size_t)cJSON_GetArraySize(j);
}

static const signer_json *mock_json_at(const signer_json *v, size_t i,
                                       const char **key)
{
    const cJSON *j = CJ(v), *item = NULL;
    unsigned c, slot = MOCK_CURSORS;

    if (key != NULL)
        *key = NULL;
    if (j == NULL || !(cJSON_IsArray(j) || cJSON_IsObject(j)))
        return NULL;
    for (c = 0; c < MOCK_CURSORS; c++) {
        if (mock_cur[c].parent == j && mock_cur[c].item != NULL) {
            slot = c;
            if (i == mock_cur[c].idx)
                item = mock_cur[c].item;
            else if (i == mock_cur[c].idx + 1)
                item = mock_cur[c].item->next;
            break;
        }
    }
    if (item == NULL) {
        if (i > (size_t)INT32_MAX)
            return NULL;
        item = cJSON_GetArrayItem(j, (int)i);
    }
    if (item == NULL)
        return NULL;
    if (slot == MOCK_CURSORS)
        slot = mock_cur_next++ % MOCK_CURSORS;
    mock_cur[slot].parent = j;
    mock_cur[slot].item = item;
    mock_cur[slot].idx = i;
    if (key != NULL && cJSON_IsObject(j))
        *key = item->string;
    return (const signer_json *)item;
}

static const char *mock_json_string(const signer_json *v, size_t *len)
{
    const cJSON *j = CJ(v);

    if (j == NULL || !cJSON_IsString(j) || j->valuestring == NULL) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = strlen(j->valuestring);
    return j->valuestring;
}

static int mock_json_number(const signer_json *v, double *out)
{
    const cJSON *j = CJ(v);

    if (j == NULL || !cJSON_IsNumber(j))
        return 0;
    *out = j->valuedouble;
    return 1;
}

/* ---- config ---------------------------------------------------------------- */

static const cJSON *mock_conf_find(const signer_conf *group, const char *path)
{
    const cJSON *j = (const cJSON *)(const void *)group;
    char part[128];

    while (j != NULL && path != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        j = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, part)
                              : NULL;
        path = dot ? dot + 1 : NULL;
    }
    return j;
}

static int mock_conf_int(const signer_conf *group, const char *path,
                         long long *out)
{
    const cJSON *j = mock_conf_find(group, path);

    if (j == NULL)
        return 0;
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(long long)j->valuedouble)
        return SIGNER_ERR_CONFIG;
    *out = (long long)j->valuedouble;
    return 1;
}

static int mock_conf_bool(const signer_conf *group, const char *path, int *out)
{
    const cJSON *j = mock_conf_find(group, path);

    if (j == NULL)
        return 0;
    if (!cJSON_IsBool(j))
        return SIGNER_ERR_CONFIG;
    *out = cJSON_IsTrue(j);
    return 1;
}

static int mock_conf_string(const signer_conf *group, const char *path,
                            const char **out)
{
    const cJSON *j = mock_conf_find(group, path);

    if (j == NULL)
        return 0;
    if (!cJSON_IsString(j))
        return SIGNER_ERR_CONFIG;
    *out = j->valuestring;
    return 1;
}

/* ---- log, entropy, memory ---------------------------------------------- */

static void mock_log_append(mock_host *m, const char *s)
{
    size_t n = strlen(s);

    if (m->log_len + n + 1 > m->log_cap) {
        size_t cap = (m->log_cap + n + 1) * 2;
        char *p = realloc(m->log, cap);
        if (p == NULL)
            return;
        m->log = p;
        m->log_cap = cap;
    }
    memcpy(m->log + m->log_len, s, n + 1);
    m->log_len += n;
}

static void mock_log(const signer_host *host, int level, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);

static void mock_log(const signer_host *host, int level, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    mock_host *m = MH(host);
    char line[1024];
    int n;
    va_list ap;

    n = snprintf(line, sizeof line, "%s ",
                 level >= 0 && level <= 3 ? names[level] : "?");
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    pthread_mutex_lock(&m->mu);
    mock_log_append(m, line);
    pthread_mutex_unlock(&m->mu);
}

/* Caller holds m->mu. */
static int mock_random_locked(mock_host *m, unsigned char *out, size_t len)
{
    if (m->random_fail)
        return SIGNER_ERR_INTERNAL;
    while (len > 0 && m->rq_off < m->rq_len) {
        *out++ = m->rq[m->rq_off++];
        len--;
    }
    if (len == 0)
        return SIGNER_OK;
    if (!m->det)
        return RAND_bytes(out, (int)len) == 1 ? SIGNER_OK : SIGNER_ERR_INTERNAL;
    while (len > 0) {
        unsigned char in[40], block[32];
        size_t n = len < 32 ? len : 32, k;
        memcpy(in, m->seed, 32);
        for (k = 0; k < 8; k++)
            in[32 + k] = (unsigned char)(m->ctr >> (56 - 8 * k));
        m->ctr++;
        SHA256(in, sizeof in, block);
        memcpy(out, block, n);
        out += n;
        len -= n;
    }
    return SIGNER_OK;
}

static int mock_random_bytes(const signer_host *host, unsigned char *out,
                             size_t len)
{
    mock_host *m = MH(host);
    int rc;

    pthread_mutex_lock(&m->mu);
    rc = mock_random_locked(m, out, len);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void *mock_secure_alloc(const signer_host *host, size_t len)
{
    mock_host *m = MH(host);
    void *p = calloc(1, len ? len : 1);

    if (p != NULL) {
        pthread_mutex_lock(&m->mu);
        m->secure_live++;
        pthread_mutex_unlock(&m->mu);
    }
    return p;
}

static void mock_secure_free(const signer_host *host, void *p, size_t len)
{
    mock_host *m = MH(host);

    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
    pthread_mutex_lock(&m->mu);
    m->secure_live--;
    pthread_mutex_unlock(&m->mu);
}

static void mock_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        OPENSSL_cleanse(p, len);
}

static int mock_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* ---- reply ---------------------------------------------------------------- */

static int mock_reply_string(signer_reply *reply, const char *key,
                             const char *value)
{
    cJSON *s;

    if (reply == NULL || key == NULL || value == NULL)
        return SIGNER_ERR_INTERNAL;
    s = cJSON_CreateString(value);
    if (s == NULL)
        return SIGNER_ERR_NOMEM;
    if (cJSON_GetObjectItemCaseSensitive(reply->result, key) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(reply->result, key, s);
    else
        cJSON_AddItemToObject(reply->result, key, s);
    return SIGNER_OK;
}

static int mock_reply_error(signer_reply *reply, int err, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);

static int mock_reply_error(signer_reply *reply, int err, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(reply->error);
    reply->error = strdup(buf);
    reply->err = err;
    return err;
}

/* ---- keystore ------------------------------------------------------------- */

/* Caller holds m->mu. */
static mock_key *mock_key_lookup(mock_host *m, const char *key_id)
{
    mock_key *k;

    for (k = m->keys; k != NULL; k = k->next)
        if (strcmp(k->key_id, key_id) == 0)
            return k;
    return NULL;
}

static int mock_secret_ok(const char *s, size_t len)
{
    size_t i;

    if (len < MOCK_SECRET_MIN || len > MOCK_SECRET_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* Caller holds m->mu.  Adds a record; SIGNER_OK / CONFLICT / NOMEM. */
static int mock_key_insert(mock_host *m, const char *key_id, const char *chain,
                           const char *address, const unsigned char *key,
                           size_t key_len, const char *secret,
                           size_t secret_len, const unsigned char *blob,
                           size_t blob_len)
{
    mock_key *k;

    if (strlen(key_id) > SIGNER_KEY_ID_LEN || strlen(chain) >= MOCK_CHAIN_MAX ||
        strlen(address) >= SIGNER_MAX_ADDRESS || key_len > SIGNER_MAX_KEY ||
        secret_len > MOCK_SECRET_MAX)
        return SIGNER_ERR_INTERNAL;
    if (mock_key_lookup(m, key_id) != NULL)
        return SIGNER_ERR_CONFLICT;
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return SIGNER_ERR_NOMEM;
    strcpy(k->key_id, key_id);
    strcpy(k->chain, chain);
    strcpy(k->address, address);
    if (key_len > 0)
        memcpy(k->key, key, key_len);
    k->key_len = key_len;
    if (secret != NULL) {
        memcpy(k->secret, secret, secret_len);
        k->secret_len = secret_len;
        k->has_secret = 1;
    }
    if (blob != NULL) {
        k->blob = malloc(blob_len ? blob_len : 1);
        if (k->blob == NULL) {
            free(k);
            return SIGNER_ERR_NOMEM;
        }
        memcpy(k->blob, blob, blob_len);
        k->blob_len = blob_len;
    }
    k->next = m->keys;
    m->keys = k;
    return SIGNER_OK;
}

static void mock_uuid4(char out[SIGNER_KEY_ID_LEN + 1], const unsigned char r[16])
{
    unsigned char b[16];

    memcpy(b, r, 16);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, SIGNER_KEY_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

static int mock_key_create(signer_call *call, signer_reply *reply,
                           const char *chain, const char *address,
                           const unsigned char *key, size_t key_len,
                           const signer_json *payload)
{
    mock_host *m = call->m;
    const signer_json *sv = mock_json_get(payload, "secret");
    const char *secret;
    size_t slen;
    char key_id[SIGNER_KEY_ID_LEN + 1];
    unsigned char r[16];
    int rc, injected;

    if (sv == NULL)
        return mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                "secret: required");
    secret = mock_json_string(sv, &slen);
    if (secret == NULL || !mock_secret_ok(secret, slen))
        return mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                "secret: expected 20 to 128 printable ASCII "
                                "characters");
    if (chain == NULL || address == NULL || key == NULL || key_len == 0 ||
        key_len > SIGNER_MAX_KEY || strlen(address) >= SIGNER_MAX_ADDRESS ||
        strlen(chain) >= MOCK_CHAIN_MAX || *chain == '\0' || *address == '\0')
        return mock_reply_error(reply, SIGNER_ERR_INTERNAL,
                                "key_create: bad arguments from the plugin");

    pthread_mutex_lock(&m->mu);
    injected = m->fail_key_create;
    m->fail_key_create = SIGNER_OK;
    if (injected != SIGNER_OK) {
        pthread_mutex_unlock(&m->mu);
        return mock_reply_error(reply, injected, "keystore: injected failure");
    }
    do {
        rc = mock_random_locked(m, r, sizeof r);
        if (rc != SIGNER_OK)
            break;
        mock_uuid4(key_id, r);
    } while (mock_key_lookup(m, key_id) != NULL);
    if (rc == SIGNER_OK)
        rc = mock_key_insert(m, key_id, chain, address, key, key_len, secret,
                             slen, NULL, 0);
    pthread_mutex_unlock(&m->mu);
    if (rc != SIGNER_OK)
        return mock_reply_error(reply, rc, "keystore: cannot store the key");
    if (mock_reply_string(reply, "key_id", key_id) != SIGNER_OK ||
        mock_reply_string(reply, "address", address) != SIGNER_OK)
        return mock_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    return SIGNER_OK;
}

/* Sorts object members by key, recursively (canonical JSON). */
static void mock_canonicalise(cJSON *j)
{
    cJSON *c;

    if (j == NULL)
        return;
    for (c = j->child; c != NULL; c = c->next)
        mock_canonicalise(c);
    if (cJSON_IsObject(j) && j->child != NULL) {
        size_t n = 0, i;
        cJSON **v;
        for (c = j->child; c != NULL; c = c->next)
            n++;
        v = malloc(n * sizeof *v);
        if (v == NULL)
            return;
        for (i = 0, c = j->child; c != NULL; c = c->next)
            v[i++] = c;
        /* insertion sort keeps equal keys in order; objects are small */
        for (i = 1; i < n; i++) {
            cJSON *x = v[i];
            size_t k = i;
            while (k > 0 && strcmp(v[k - 1]->string, x->string) > 0) {
                v[k] = v[k - 1];
                k--;
            }
            v[k] = x;
        }
        for (i = 0; i < n; i++) {
            v[i]->prev = i > 0 ? v[i - 1] : v[n - 1]; /* cJSON: head->prev = tail */
            v[i]->next = i + 1 < n ? v[i + 1] : NULL;
        }
        j->child = v[0];
        free(v);
    }
}

static int mock_hmac_json(char out[65], const char *secret, size_t secret_len,
                          const cJSON *tp, long long ts)
{
    cJSON *copy = tp ? cJSON_Duplicate(tp, 1) : cJSON_CreateObject();
    char *text, tsbuf[32];
    unsigned char mac[32];
    EVP_MAC *mac_alg = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t outl = 0;
    int ok = 0, i;

    if (copy == NULL)
        return 0;
    mock_canonicalise(copy);
    text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    if (text == NULL)
        return 0;
    snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
    mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac_alg ? EVP_MAC_CTX_new(mac_alg) : NULL;
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx != NULL &&
        EVP_MAC_init(ctx, (const unsigned char *)secret, secret_len, params) &&
        EVP_MAC_update(ctx, (const unsigned char *)text, strlen(text)) &&
        EVP_MAC_update(ctx, (const unsigned char *)tsbuf, strlen(tsbuf)) &&
        EVP_MAC_final(ctx, mac, &outl, sizeof mac) && outl == 32) {
        for (i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", mac[i]);
        ok = 1;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac_alg);
    free(text);
    return ok;
}

int mock_host_hmac(char out[65], const char *secret,
                   const char *transaction_payload_json, long long timestamp)
{
    cJSON *tp = transaction_payload_json ? cJSON_Parse(transaction_payload_json)
                                         : NULL;
    int ok;

    if (transaction_payload_json != NULL && tp == NULL)
        return 0;
    ok = mock_hmac_json(out, secret, strlen(secret), tp, timestamp);
    cJSON_Delete(tp);
    return ok;
}

static int mock_key_open(signer_call *call, signer_reply *reply,
                         unsigned char *key, size_t key_cap, size_t *key_len,
                         char *address, size_t address_cap, const char *chain,
                         const signer_json *payload)
{
    mock_host *m = call->m;
    const signer_json *kv = mock_json_get(payload, "key_id");
    const signer_json *sv = mock_json_get(payload, "secret");
    const signer_json *hv = mock_json_get(payload, "hmac");
    const signer_json *tv = mock_json_get(payload, "timestamp");
    const char *key_id, *given = NULL;
    size_t glen = 0;
    mock_key *k;
    int rc = SIGNER_OK, match;

    if (key != NULL && key_cap > 0)
        OPENSSL_cleanse(key, key_cap);
    if (key_len != NULL)
        *key_len = 0;
    pthread_mutex_lock(&m->mu);
    m->key_open_calls++;
    pthread_mutex_unlock(&m->mu);

    if (kv == NULL)
        return mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                "key_id: required");
    key_id = mock_json_string(kv, NULL);
    if (key_id == NULL)
        return mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                "key_id: expected a string");
    if (sv != NULL) {
        given = mock_json_string(sv, &glen);
        if (given == NULL)
            return mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                    "secret: expected a string");
    } else if (hv == NULL || tv == NULL) {
        return mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                "secret: required (or hmac and timestamp)");
    }

    pthread_mutex_lock(&m->mu);
    k = mock_key_lookup(m, key_id);
    if (k == NULL || chain == NULL || strcmp(k->chain, chain) != 0) {
        rc = mock_reply_error(reply, SIGNER_ERR_NOT_FOUND,
                              "key_id: unknown key");
        goto out;
    }
    if (m->throttle > 0 && k->failures >= m->throttle) {
        rc = mock_reply_error(reply, SIGNER_ERR_THROTTLED,
                              "key_id: too many failed attempts");
        goto out;
    }
    if (!k->has_secret) {
        rc = mock_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                              "secret: does not match");
        goto out;
    }
    if (given != NULL) {
        /* constant time: compare fixed-size zero-padded buffers */
        unsigned char a[MOCK_SECRET_MAX], b[MOCK_SECRET_MAX];
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        memcpy(a, k->secret, k->secret_len);
        memcpy(b, given, glen < sizeof b ? glen : sizeof b);
        match = (CRYPTO_memcmp(a, b, sizeof a) == 0) & (glen == k->secret_len);
        OPENSSL_cleanse(a, sizeof a);
        OPENSSL_cleanse(b, sizeof b);
        if (!match) {
            k->failures++;
            rc = mock_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                                  "secret: does not match");
            goto out;
        }
    } else {
        double tsd;
        long long ts;
        const char *hs;
        size_t hlen, i;
        char want[65], got[65];
        if (!mock_json_number(tv, &tsd) || tsd != (double)(long long)tsd) {
            rc = mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                  "timestamp: expected unix seconds");
            goto out;
        }
        ts = (long long)tsd;
        if (llabs(ts - (long long)time(NULL)) > MOCK_HMAC_WINDOW) {
            rc = mock_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                                  "timestamp: outside the allowed window");
            goto out;
        }
        hs = mock_json_string(hv, &hlen);
        if (hs == NULL || hlen != 64) {
            rc = mock_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                  "hmac: expected 64 hex digits");
            goto out;
        }
        for (i = 0; i < 64; i++)
            got[i] = (char)(hs[i] >= 'A' && hs[i] <= 'F' ? hs[i] + 32 : hs[i]);
        got[64] = '\0';
        if (!mock_hmac_json(want, k->secret, k->secret_len,
                            CJ(mock_json_get(payload, "transaction_payload")),
                            ts)) {
            rc = mock_reply_error(reply, SIGNER_ERR_INTERNAL, "hmac: failed");
            goto out;
        }
        if (CRYPTO_memcmp(want, got, 64) != 0) {
            k->failures++;
            rc = mock_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                                  "hmac: does not match");
            goto out;
        }
    }
    if (key == NULL || key_cap < k->key_len || address == NULL ||
        address_cap <= strlen(k->address)) {
        rc = mock_reply_error(reply, SIGNER_ERR_INTERNAL,
                              "key_open: output buffer too small");
        goto out;
    }
    k->failures = 0;
    memcpy(key, k->key, k->key_len);
    if (key_len != NULL)
        *key_len = k->key_len;
    strcpy(address, k->address);

out:
    pthread_mutex_unlock(&m->mu);
    if (rc != SIGNER_OK && key != NULL && key_cap > 0)
        OPENSSL_cleanse(key, key_cap);
    return rc;
}

/* ---- low-level seal / keystore ------------------------------------------ */

static const char mock_seal_magic[8] = {'M', 'O', 'C', 'K', 'S', 'E', 'A', 'L'};

static int mock_seal(signer_call *call, unsigned char **blob, size_t *blob_len,
                     const signer_key_meta *meta, const unsigned char *plain,
                     size_t plain_len)
{
    size_t a, b, c, n;
    unsigned char *p;

    (void)call;
    *blob = NULL;
    *blob_len = 0;
    if (meta == NULL || meta->key_id == NULL || meta->chain == NULL ||
        meta->address == NULL)
        return SIGNER_ERR_INTERNAL;
    a = strlen(meta->key_id) + 1;
    b = strlen(meta->chain) + 1;
    c = strlen(meta->address) + 1;
    n = sizeof mock_seal_magic + a + b + c + plain_len;
    p = malloc(n);
    if (p == NULL)
        return SIGNER_ERR_NOMEM;
    memcpy(p, mock_seal_magic, sizeof mock_seal_magic);
    memcpy(p + 8, meta->key_id, a);
    memcpy(p + 8 + a, meta->chain, b);
    memcpy(p + 8 + a + b, meta->address, c);
    if (plain_len > 0)
        memcpy(p + 8 + a + b + c, plain, plain_len);
    *blob = p;
    *blob_len = n;
    return SIGNER_OK;
}

static int mock_unseal(signer_call *call, unsigned char *plain, size_t plain_cap,
                       size_t *plain_len, const signer_key_meta *meta,
                       const unsigned char *blob, size_t blob_len)
{
    size_t a, b, c, n;

    (void)call;
    *plain_len = 0;
    if (meta == NULL || blob == NULL || blob_len < 8 ||
        memcmp(blob, mock_seal_magic, 8) != 0)
        return SIGNER_ERR_FORBIDDEN;
    a = strlen(meta->key_id) + 1;
    b = strlen(meta->chain) + 1;
    c = strlen(meta->address) + 1;
    if (blob_len < 8 + a + b + c || memcmp(blob + 8, meta->key_id, a) != 0 ||
        memcmp(blob + 8 + a, meta->chain, b) != 0 ||
        memcmp(blob + 8 + a + b, meta->address, c) != 0)
        return SIGNER_ERR_FORBIDDEN;
    n = blob_len - (8 + a + b + c);
    if (n > plain_cap)
        return SIGNER_ERR_TOO_LARGE;
    if (n > 0)
        memcpy(plain, blob + 8 + a + b + c, n);
    *plain_len = n;
    return SIGNER_OK;
}

static int mock_keystore_put(signer_call *call, const signer_key_meta *meta,
                             const unsigned char *blob, size_t blob_len)
{
    mock_host *m = call->m;
    int rc;

    if (meta == NULL || meta->key_id == NULL || meta->chain == NULL ||
        meta->address == NULL || blob == NULL)
        return SIGNER_ERR_INTERNAL;
    pthread_mutex_lock(&m->mu);
    rc = mock_key_insert(m, meta->key_id, meta->chain, meta->address, NULL, 0,
                         NULL, 0, blob, blob_len);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mock_keystore_get(signer_call *call, char *chain, size_t chain_cap,
                             char *address, size_t address_cap,
                             unsigned char **blob, size_t *blob_len,
                             const char *key_id)
{
    mock_host *m = call->m;
    mock_key *k;
    int rc = SIGNER_OK;

    *blob = NULL;
    *blob_len = 0;
    pthread_mutex_lock(&m->mu);
    k = key_id ? mock_key_lookup(m, key_id) : NULL;
    if (k == NULL || k->blob == NULL) {
        rc = SIGNER_ERR_NOT_FOUND;
    } else if (chain_cap <= strlen(k->chain) ||
               address_cap <= strlen(k->address)) {
        rc = SIGNER_ERR_INTERNAL;
    } else {
        *blob = malloc(k->blob_len ? k->blob_len : 1);
        if (*blob == NULL) {
            rc = SIGNER_ERR_NOMEM;
        } else {
            memcpy(*blob, k->blob, k->blob_len);
            *blob_len = k->blob_len;
            strcpy(chain, k->chain);
            strcpy(address, k->address);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void mock_free_fn(void *p)
{
    free(p);
}

/* ---- public API ------------------------------------------------------------ */

mock_host *mock_host_new(void)
{
    mock_host *m = calloc(1, sizeof *m);

    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->call.m = m;
    m->settings = cJSON_CreateObject();
    m->host.abi_major = SIGNER_ABI_MAJOR;
    m->host.abi_minor = SIGNER_ABI_MINOR;
    m->host.struct_size = (uint32_t)sizeof(signer_host);
    m->host.settings = (const signer_conf *)(void *)m->settings;
    m->host.log = mock_log;
    m->host.random_bytes = mock_random_bytes;
    m->host.secure_alloc = mock_secure_alloc;
    m->host.secure_free = mock_secure_free;
    m->host.wipe = mock_wipe;
    m->host.ct_equal = mock_ct_equal;
    m->host.conf_int = mock_conf_int;
    m->host.conf_bool = mock_conf_bool;
    m->host.conf_string = mock_conf_string;
    m->host.json_type = mock_json_type;
    m->host.json_get = mock_json_get;
    m->host.json_count = mock_json_count;
    m->host.json_at = mock_json_at;
    m->host.json_string = mock_json_string;
    m->host.json_number = mock_json_number;
    m->host.reply_string = mock_reply_string;
    m->host.reply_error = mock_reply_error;
    m->host.seal = mock_seal;
    m->host.unseal = mock_unseal;
    m->host.keystore_put = mock_keystore_put;
    m->host.keystore_get = mock_keystore_get;
    m->host.free = mock_free_fn;
    m->host.key_create = mock_key_create;
    m->host.key_open = mock_key_open;
    return m;
}

void mock_host_free(mock_host *m)
{
    mock_key *k, *next;

    if (m == NULL)
        return;
    for (k = m->keys; k != NULL; k = next) {
        next = k->next;
        free(k->blob);
        OPENSSL_cleanse(k, sizeof *k);
        free(k);
    }
    if (m->rq != NULL) {
        OPENSSL_cleanse(m->rq, m->rq_len);
        free(m->rq);
    }
    free(m->log);
    cJSON_Delete(m->settings);
    pthread_mutex_destroy(&m->mu);
    OPENSSL_cleanse(m->seed, sizeof m->seed);
    free(m);
    mock_cursor_reset();
}

const signer_host *mock_host_get(mock_host *m)
{
    return &m->host;
}

signer_call *mock_host_call(mock_host *m)
{
    return &m->call;
}

int mock_call(mock_host *m, const signer_plugin *p, void *ctx, const char *op,
              const char *payload_json, char **result_json, int *http_status)
{
    struct signer_reply reply = {NULL, NULL, SIGNER_OK};
    struct signer_call call;
    const signer_op *o = NULL;
    cJSON *payload, *out;
    int rc;

    *result_json = NULL;
    *http_status = 500;
    call.m = m;
    payload = payload_json ? cJSON_Parse(payload_json) : cJSON_CreateObject();
    if (payload == NULL) {
        rc = SIGNER_ERR_BAD_REQUEST;
        reply.error = strdup("payload: invalid JSON");
        goto done;
    }
    if (p != NULL && p->ops != NULL && op != NULL)
        for (o = p->ops; o->name != NULL; o++)
            if (strcmp(o->name, op) == 0)
                break;
    if (o == NULL || o->name == NULL) {
        rc = SIGNER_ERR_NOT_FOUND;
        reply.error = strdup("operation: unknown");
        goto done;
    }
    reply.result = cJSON_CreateObject();
    if (reply.result == NULL) {
        rc = SIGNER_ERR_NOMEM;
        goto done;
    }
    mock_cursor_reset();
    rc = o->handler(ctx, &call, &reply, (const signer_json *)payload);
    mock_cursor_reset();
    if (rc == SIGNER_OK && reply.error != NULL) {
        char buf[1200];
        snprintf(buf, sizeof buf,
                 "mock: handler returned OK after reply_error(%s)",
                 reply.error);
        free(reply.error);
        reply.error = strdup(buf);
        rc = SIGNER_ERR_INTERNAL;
    } else if (rc != SIGNER_OK && reply.error == NULL) {
        char buf[128];
        snprintf(buf, sizeof buf, "mock: handler failed (%s) without a message",
                 signer_err_str(rc));
        reply.error = strdup(buf);
    } else if (rc > 0) {
        reply.error = strdup("mock: handler returned a positive code");
        rc = SIGNER_ERR_INTERNAL;
    }

done:
    if (rc == SIGNER_OK) {
        *result_json = cJSON_PrintUnformatted(reply.result);
    } else {
        out = cJSON_CreateObject();
        if (out != NULL) {
            cJSON_AddStringToObject(out, "error",
                                    reply.error ? reply.error : "out of memory");
            *result_json = cJSON_PrintUnformatted(out);
            cJSON_Delete(out);
        }
    }
    *http_status = signer_err_http_status(rc);
    free(reply.error);
    cJSON_Delete(reply.result);
    cJSON_Delete(payload);
    return rc;
}

void mock_host_queue_random(mock_host *m, const unsigned char *bytes,
                            size_t len)
{
    unsigned char *p;
    size_t left;

    pthread_mutex_lock(&m->mu);
    left = m->rq_len - m->rq_off;
    p = malloc(left + len + 1);
    if (p != NULL) {
        if (left > 0)
            memcpy(p, m->rq + m->rq_off, left);
        memcpy(p + left, bytes, len);
        if (m->rq != NULL) {
            OPENSSL_cleanse(m->rq, m->rq_len);
            free(m->rq);
        }
        m->rq = p;
        m->rq_len = left + len;
        m->rq_off = 0;
    }
    pthread_mutex_unlock(&m->mu);
}

void mock_host_set_seed(mock_host *m, const char *seed)
{
    pthread_mutex_lock(&m->mu);
    if (seed == NULL) {
        m->det = 0;
    } else {
        SHA256((const unsigned char *)seed, strlen(seed), m->seed);
        m->det = 1;
        m->ctr = 0;
    }
    pthread_mutex_unlock(&m->mu);
}

void mock_host_set_random_fail(mock_host *m, int on)
{
    pthread_mutex_lock(&m->mu);
    m->random_fail = on;
    pthread_mutex_unlock(&m->mu);
}

void mock_host_set_throttle(mock_host *m, int max_failures)
{
    pthread_mutex_lock(&m->mu);
    m->throttle = max_failures;
    pthread_mutex_unlock(&m->mu);
}

void mock_host_fail_next_key_create(mock_host *m, int err)
{
    pthread_mutex_lock(&m->mu);
    m->fail_key_create = err;
    pthread_mutex_unlock(&m->mu);
}

int mock_host_key_add(mock_host *m, const char *key_id, const char *chain,
                      const char *address, const unsigned char *key,
                      size_t key_len, const char *secret)
{
    int rc;

    pthread_mutex_lock(&m->mu);
    rc = mock_key_insert(m, key_id, chain, address, key, key_len, secret,
                         secret ? strlen(secret) : 0, NULL, 0);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int mock_host_key_find(mock_host *m, const char *key_id, char *chain,
                       size_t chain_cap, char *address, size_t address_cap,
                       unsigned char *key, size_t key_cap, size_t *key_len)
{
    mock_key *k;
    int found = 0;

    pthread_mutex_lock(&m->mu);
    k = mock_key_lookup(m, key_id);
    if (k != NULL) {
        found = 1;
        if (chain != NULL && chain_cap > 0)
            snprintf(chain, chain_cap, "%s", k->chain);
        if (address != NULL && address_cap > 0)
            snprintf(address, address_cap, "%s", k->address);
        if (key != NULL && key_cap >= k->key_len)
            memcpy(key, k->key, k->key_len);
        if (key_len != NULL)
            *key_len = k->key_len;
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

size_t mock_host_key_count(mock_host *m)
{
    mock_key *k;
    size_t n = 0;

    pthread_mutex_lock(&m->mu);
    for (k = m->keys; k != NULL; k = k->next)
        n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

long mock_host_secure_live(mock_host *m)
{
    long n;

    pthread_mutex_lock(&m->mu);
    n = m->secure_live;
    pthread_mutex_unlock(&m->mu);
    return n;
}

long mock_host_key_open_calls(mock_host *m)
{
    long n;

    pthread_mutex_lock(&m->mu);
    n = m->key_open_calls;
    pthread_mutex_unlock(&m->mu);
    return n;
}

const char *mock_host_log_text(mock_host *m)
{
    return m->log != NULL ? m->log : "";
}

void mock_host_log_clear(mock_host *m)
{
    pthread_mutex_lock(&m->mu);
    m->log_len = 0;
    if (m->log != NULL)
        m->log[0] = '\0';
    pthread_mutex_unlock(&m->mu);
}

int mock_host_set_settings(mock_host *m, const char *json)
{
    cJSON *s = cJSON_Parse(json);

    if (s == NULL || !cJSON_IsObject(s)) {
        cJSON_Delete(s);
        return -1;
    }
    cJSON_Delete(m->settings);
    m->settings = s;
    m->host.settings = (const signer_conf *)(void *)s;
    return 0;
}
