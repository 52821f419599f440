/*
 * Mock signer_host for plugin unit tests, built on the engine's real host
 * services, authentication and key service (engine/host.c, auth.c,
 * keysvc.c, jcs.c) with the local sealer (a master key in a temporary
 * directory) and an in-memory SQLite keystore.  What stays mock: logging
 * into a buffer, scripted entropy, counted secure memory, settings from
 * JSON, and the call harness.  See mock_host.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "host.h"
#include "jcs.h"
#include "mock_host.h"
#include "util.h"

#define MOCK_HMAC_WINDOW 60
#define MOCK_LOCKOUT 60

struct mock_host {
    signer_host host; /* first: a signer_host* is a mock_host* */
    eng_engine eng;   /* the real engine parts the key service uses */
    struct signer_call call; /* for mock_host_call */
    pthread_mutex_t mu;
    char dir[40];     /* holds the master key */
    unsigned char *rq; /* queued random bytes */
    size_t rq_len, rq_off;
    int det;
    unsigned char seed[32];
    uint64_t ctr;
    int random_fail;
    int fail_key_create;
    long secure_live;
    long key_open_calls;
    char *log;
    size_t log_len, log_cap;
    cJSON *settings;
};

#define MH(h) ((mock_host *)(uintptr_t)(h))

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

/* ---- keys: the real key service, wrapped for the test hooks ----------- */

static mock_host *mock_of_call(signer_call *call)
{
    return (mock_host *)((char *)call->eng - offsetof(mock_host, eng));
}

static int mock_key_create(signer_call *call, signer_reply *reply,
                           const char *chain, const char *address,
                           const unsigned char *key, size_t key_len,
                           const signer_json *payload)
{
    mock_host *m = mock_of_call(call);
    int fail;

    pthread_mutex_lock(&m->mu);
    fail = m->fail_key_create;
    m->fail_key_create = SIGNER_OK;
    pthread_mutex_unlock(&m->mu);
    if (fail != SIGNER_OK)
        return eng_reply_error(reply, fail, "mock: key_create failed as "
                                            "asked");
    return eng_keysvc_create(call, reply, chain, address, key, key_len,
                             payload);
}

static int mock_key_open(signer_call *call, signer_reply *reply,
                         unsigned char *key, size_t key_cap, size_t *key_len,
                         char *address, size_t address_cap, const char *chain,
                         const signer_json *payload)
{
    mock_host *m = mock_of_call(call);

    pthread_mutex_lock(&m->mu);
    m->key_open_calls++;
    pthread_mutex_unlock(&m->mu);
    return eng_keysvc_open(call, reply, key, key_cap, key_len, address,
                           address_cap, chain, payload);
}

/* ---- public API ------------------------------------------------------------ */

/* Opens the sealer, keystore and authentication state.  0 or -1. */
static int mock_engine_open(mock_host *m)
{
    char err[256], *path;

    snprintf(m->dir, sizeof m->dir, "/tmp/signer-mock-XXXXXX");
    if (mkdtemp(m->dir) == NULL)
        return -1;
    if ((path = eng_path_join(m->dir, "master.key")) == NULL)
        return -1;
    m->eng.sealer = eng_sealer_local_open(path, err, sizeof err);
    free(path);
    m->eng.ks = eng_keystore_sqlite_open(":memory:", err, sizeof err);
    m->eng.auth = eng_auth_new(0, MOCK_LOCKOUT, MOCK_HMAC_WINDOW);
    if (m->eng.sealer == NULL || m->eng.ks == NULL || m->eng.auth == NULL) {
        fprintf(stderr, "mock_host: %s\n", err);
        return -1;
    }
    return 0;
}

mock_host *mock_host_new(void)
{
    mock_host *m = calloc(1, sizeof *m);

    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->settings = cJSON_CreateObject();
    if (m->settings == NULL || mock_engine_open(m) != 0) {
        mock_host_free(m);
        return NULL;
    }
    eng_host_init(&m->eng);
    m->host = m->eng.host;
    m->host.settings = (const signer_conf *)(void *)m->settings;
    m->host.log = mock_log;
    m->host.random_bytes = mock_random_bytes;
    m->host.secure_alloc = mock_secure_alloc;
    m->host.secure_free = mock_secure_free;
    m->host.conf_int = mock_conf_int;
    m->host.conf_bool = mock_conf_bool;
    m->host.conf_string = mock_conf_string;
    m->host.key_create = mock_key_create;
    m->host.key_open = mock_key_open;
    m->call.eng = &m->eng;
    m->call.request_id = "mock";
    m->call.peer = "mock";
    return m;
}

void mock_host_free(mock_host *m)
{
    char *mk;

    if (m == NULL)
        return;
    eng_keystore_close(m->eng.ks);
    eng_sealer_free(m->eng.sealer);
    eng_auth_free(m->eng.auth);
    if (m->dir[0] != '\0') {
        if ((mk = eng_path_join(m->dir, "master.key")) != NULL)
            remove(mk);
        free(mk);
        remove(m->dir);
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
    eng_host_request_done();
}

const signer_host *mock_host_get(mock_host *m)
{
    return &m->host;
}

signer_call *mock_host_call(mock_host *m)
{
    return &m->call;
}

/* Checks the handler kept the contract; rewrites reply and rc if not. */
static int mock_contract(signer_reply *reply, int rc)
{
    char buf[sizeof reply->error];

    if (rc == SIGNER_OK && reply->err != SIGNER_OK) {
        snprintf(buf, sizeof buf,
                 "mock: handler returned OK after reply_error(%.400s)",
                 reply->error);
        snprintf(reply->error, sizeof reply->error, "%s", buf);
        return SIGNER_ERR_INTERNAL;
    }
    if (rc < 0 && reply->error[0] == '\0') {
        snprintf(reply->error, sizeof reply->error,
                 "mock: handler failed (%s) without a message",
                 signer_err_str(rc));
        return rc;
    }
    if (rc > 0) {
        snprintf(reply->error, sizeof reply->error,
                 "mock: handler returned a positive code");
        return SIGNER_ERR_INTERNAL;
    }
    return rc;
}

/* The answer text: the result object, or {"error": message}. */
static char *mock_answer(const signer_reply *reply, int rc)
{
    cJSON *out;
    char *text;

    if (rc == SIGNER_OK || reply->raw) /* reply_raw: {"raw": answer} */
        return cJSON_PrintUnformatted(reply->result);
    if ((out = cJSON_CreateObject()) == NULL)
        return NULL;
    cJSON_AddStringToObject(out, "error", reply->error[0] ? reply->error
                                                           : "out of memory");
    text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return text;
}

static const signer_op *mock_find_op(const signer_plugin *p, const char *op)
{
    const signer_op *o;

    if (p == NULL || p->ops == NULL || op == NULL)
        return NULL;
    for (o = p->ops; o->name != NULL; o++)
        if (strcmp(o->name, op) == 0)
            return o;
    return NULL;
}

int mock_call(mock_host *m, const signer_plugin *p, void *ctx, const char *op,
              const char *payload_json, char **result_json, int *http_status)
{
    struct signer_call call = {.eng = &m->eng, .request_id = "mock",
                               .peer = "mock"};
    signer_reply reply;
    cJSON *payload;
    int rc;

    memset(&reply, 0, sizeof reply);
    if ((call.op = mock_find_op(p, op)) != NULL)
        call.hmac_fields = call.op->hmac_fields;
    payload = payload_json ? cJSON_Parse(payload_json) : cJSON_CreateObject();
    if (payload == NULL) {
        rc = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                             "payload: invalid JSON");
    } else if (call.op == NULL) {
        rc = eng_reply_error(&reply, SIGNER_ERR_NOT_FOUND,
                             "operation: unknown");
    } else if ((reply.result = cJSON_CreateObject()) == NULL) {
        rc = SIGNER_ERR_NOMEM;
    } else if ((rc = eng_keysvc_prepare(&call, &reply, payload)) ==
               SIGNER_OK) {
        eng_host_request_done();
        rc = call.op->handler(ctx, &call, &reply,
                              (const signer_json *)payload);
        eng_host_request_done();
        rc = mock_contract(&reply, rc);
    }
    *result_json = mock_answer(&reply, rc);
    *http_status = signer_err_http_status(rc);
    eng_keysvc_call_done(&call);
    eng_json_free(payload);
    cJSON_Delete(reply.result);
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
    eng_auth *a = eng_auth_new(max_failures, MOCK_LOCKOUT, MOCK_HMAC_WINDOW);

    if (a == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    eng_auth_free(m->eng.auth);
    m->eng.auth = a;
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
    signer_key_meta meta = {key_id, chain, address};
    unsigned char *blob = NULL;
    size_t blen = 0;
    int rc;

    rc = eng_keysvc_seal(&m->eng, &blob, &blen, &meta, key, key_len,
                         secret ? secret : "", secret ? strlen(secret) : 0);
    if (rc == SIGNER_OK)
        rc = eng_keystore_put(m->eng.ks, &meta, blob, blen);
    free(blob);
    return rc;
}

int mock_host_key_find(mock_host *m, const char *key_id, char *chain,
                       size_t chain_cap, char *address, size_t address_cap,
                       unsigned char *key, size_t key_cap, size_t *key_len)
{
    eng_sealed_record rec;
    unsigned char k[SIGNER_MAX_KEY], s[ENG_SECRET_MAX];
    size_t klen = 0, slen = 0;
    int found;

    memset(&rec, 0, sizeof rec);
    found = eng_keystore_get(m->eng.ks, rec.chain, sizeof rec.chain,
                             rec.address, sizeof rec.address, &rec.blob,
                             &rec.blob_len, key_id) == SIGNER_OK &&
            eng_keysvc_unseal(&m->eng, k, sizeof k, &klen, s, &slen, key_id,
                              &rec) == SIGNER_OK;
    if (found) {
        if (chain != NULL && chain_cap > 0)
            snprintf(chain, chain_cap, "%s", rec.chain);
        if (address != NULL && address_cap > 0)
            snprintf(address, address_cap, "%s", rec.address);
        if (key != NULL && key_cap >= klen)
            memcpy(key, k, klen);
        if (key_len != NULL)
            *key_len = klen;
    }
    eng_wipe(k, sizeof k);
    eng_wipe(s, sizeof s);
    free(rec.blob);
    return found;
}

size_t mock_host_key_count(mock_host *m)
{
    long long n = eng_keystore_count(m->eng.ks);

    return n > 0 ? (size_t)n : 0;
}

int mock_host_hmac(char out[65], const char *secret, const char *op,
                   const char *key_id, const char *covered_json,
                   long long timestamp)
{
    cJSON *covered = cJSON_Parse(covered_json);
    char *jcs = NULL, *msg = NULL;
    unsigned char mac[32];
    size_t jlen = 0, cap;
    int ok = 0;

    if (covered != NULL && eng_jcs_serialize(&jcs, &jlen, covered) == 0) {
        cap = strlen(op) + strlen(key_id) + jlen + 32;
        if ((msg = malloc(cap)) != NULL) {
            snprintf(msg, cap, "%s\n%s\n%s\n%lld", op, key_id, jcs,
                     timestamp);
            ok = eng_auth_mac(mac, (const unsigned char *)secret,
                              strlen(secret), msg, strlen(msg)) == SIGNER_OK;
        }
    }
    if (ok)
        eng_hex_encode(out, mac, 32);
    free(msg);
    free(jcs);
    cJSON_Delete(covered);
    return ok;
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
