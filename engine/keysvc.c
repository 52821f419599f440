#include "config.h"
#include "keysvc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "auth.h"
#include "aws/sigv4.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "util.h"

/* ---- locator: the keystore (standalone) ---------------------------------- */

static int ks_prepare(signer_call *call, signer_reply *reply, cJSON *payload)
{
    (void)call;
    (void)reply;
    (void)payload;
    return SIGNER_OK;
}

static int ks_locate(signer_call *call, signer_reply *reply,
                     eng_sealed_record *rec, const char *key_id)
{
    eng_engine *e = call->eng;
    int rc;
    if (e->ks == NULL)
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "no keystore is configured");
    rc = eng_keystore_get(e->ks, rec->chain, sizeof rec->chain, rec->address,
                          sizeof rec->address, &rec->blob, &rec->blob_len,
                          key_id);
    if (rc == SIGNER_ERR_NOT_FOUND)
        return eng_reply_error(reply, rc, "key_id: no such key");
    if (rc != SIGNER_OK)
        return eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                               "keystore read failed");
    return SIGNER_OK;
}

static int ks_deliver(signer_call *call, signer_reply *reply,
                      const signer_key_meta *meta, const unsigned char *blob,
                      size_t blob_len)
{
    eng_engine *e = call->eng;
    if (e->ks == NULL)
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "no keystore is configured");
    if (eng_keystore_put(e->ks, meta, blob, blob_len) != SIGNER_OK)
        return eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                               "storing the sealed key failed");
    return SIGNER_OK;
}

/* ---- locator: the request (enclave) ---------------------------------------- */

/* "2026-01-01T00:00:00Z" (or with fractional seconds) or epoch seconds
 * into *out.  0 or -1. */
static int parse_expiration(const cJSON *v, int64_t *out)
{
    struct tm tm;
    const char *end;
    if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e12) {
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(v))
        return -1;
    memset(&tm, 0, sizeof tm);
    end = strptime(v->valuestring, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.')
        for (end++; isdigit((unsigned char)*end); end++)
            ;
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Fills c from a credentials object (names the field at fault, never a
 * value).  SIGNER_OK or an error in reply; c wiped on failure. */
static int creds_from_json(eng_aws_creds *c, signer_reply *reply,
                           const cJSON *o)
{
    const cJSON *ak = cJSON_GetObjectItemCaseSensitive(o, "access_key_id");
    const cJSON *sk =
        cJSON_GetObjectItemCaseSensitive(o, "secret_access_key");
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, "session_token");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "expiration");
    int64_t exp = 0;
    if (!cJSON_IsObject(o) || !cJSON_IsString(ak) || !cJSON_IsString(sk) ||
        (tk != NULL && !cJSON_IsString(tk)))
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_CREDENTIALS ": must be {access_key_id,"
                               " secret_access_key, session_token, "
                               "expiration} with string keys");
    if (ex == NULL || parse_expiration(ex, &exp) != 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_CREDENTIALS ".expiration: required, "
                               "ISO 8601 UTC or epoch seconds");
    if (eng_aws_creds_set(c, ak->valuestring, sk->valuestring,
                          tk ? tk->valuestring : NULL, exp) != SIGNER_OK)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_CREDENTIALS ": a field is empty or "
                               "too long");
    if (!eng_aws_creds_valid(c, eng_unix_time(), ENG_CREDS_MARGIN)) {
        eng_aws_creds_wipe(c);
        return eng_reply_error(reply, SIGNER_ERR_FORBIDDEN,
                               ENG_FIELD_CREDENTIALS ": expired (or expiring "
                               "within %d s); the gateway must send fresh "
                               "AWS credentials", ENG_CREDS_MARGIN);
    }
    return SIGNER_OK;
}

/* Moves payload's field f into call->located.  SIGNER_OK or an error. */
static int take_field(signer_call *call, signer_reply *reply, cJSON *payload,
                      const char *f)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(payload, f);
    if (v == NULL)
        return SIGNER_OK;
    if (call->located == NULL &&
        (call->located = cJSON_CreateObject()) == NULL) {
        eng_json_free(v);
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    }
    cJSON_AddItemToObject(call->located, f, v);
    return SIGNER_OK;
}

static int rq_prepare(signer_call *call, signer_reply *reply, cJSON *payload)
{
    static const char *const fields[] = {ENG_FIELD_SEALED_KEY,
                                         ENG_FIELD_KEY_CHAIN,
                                         ENG_FIELD_KEY_ADDRESS, NULL};
    const char *const *f;
    const cJSON *v;
    eng_aws_creds creds;
    int rc;
    if (payload == NULL)
        return SIGNER_OK;
    for (f = fields; *f != NULL; f++) {
        if ((rc = take_field(call, reply, payload, *f)) != SIGNER_OK)
            return rc;
        v = cJSON_GetObjectItemCaseSensitive(call->located, *f);
        if (v != NULL && !cJSON_IsString(v))
            return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                   "%s: must be a string", *f);
    }
    if ((rc = take_field(call, reply, payload, ENG_FIELD_CREDENTIALS)) !=
        SIGNER_OK)
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(call->located,
                                         ENG_FIELD_CREDENTIALS);
    if (v == NULL)
        return SIGNER_OK;
    rc = creds_from_json(&creds, reply, v); /* checked now: fail early */
    eng_aws_creds_wipe(&creds);
    return rc;
}

/* The request's credentials into c.  1 if there are some, 0 if none. */
static int call_creds(const signer_call *call, eng_aws_creds *c)
{
    signer_reply scratch;
    const cJSON *v =
        call ? cJSON_GetObjectItemCaseSensitive(call->located,
                                                ENG_FIELD_CREDENTIALS)
             : NULL;
    memset(&scratch, 0, sizeof scratch);
    return v != NULL && creds_from_json(c, &scratch, v) == SIGNER_OK;
}

/* Strict base64 (with padding) of text into a malloc'd buffer. */
static int b64_decode(unsigned char **out, size_t *out_len, const char *text)
{
    size_t n = strlen(text), pad = 0;
    int got;
    *out = NULL;
    if (n == 0 || n % 4 != 0 || n > (size_t)1 << 20)
        return -1;
    pad = (text[n - 1] == '=') + (text[n - 2] == '=');
    if ((*out = malloc(n / 4 * 3 + 1)) == NULL)
        return -1;
    got = EVP_DecodeBlock(*out, (const unsigned char *)text, (int)n);
    if (got < 0 || (size_t)got < pad) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *out_len = (size_t)got - pad;
    return 0;
}

static const char *located_string(const signer_call *call, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(call->located, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int rq_locate(signer_call *call, signer_reply *reply,
                     eng_sealed_record *rec, const char *key_id)
{
    const char *blob = located_string(call, ENG_FIELD_SEALED_KEY);
    const char *chain = located_string(call, ENG_FIELD_KEY_CHAIN);
    const char *addr = located_string(call, ENG_FIELD_KEY_ADDRESS);
    (void)key_id;
    if (blob == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_SEALED_KEY ": required (this signer "
                               "has no keystore)");
    if (chain == NULL || strlen(chain) >= sizeof rec->chain)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_KEY_CHAIN ": required, a chain name");
    if (addr == NULL || strlen(addr) >= sizeof rec->address)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_KEY_ADDRESS ": required, the key's "
                               "address");
    if (b64_decode(&rec->blob, &rec->blob_len, blob) != 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               ENG_FIELD_SEALED_KEY ": must be base64");
    snprintf(rec->chain, sizeof rec->chain, "%s", chain);
    snprintf(rec->address, sizeof rec->address, "%s", addr);
    return SIGNER_OK;
}

static int rq_deliver(signer_call *call, signer_reply *reply,
                      const signer_key_meta *meta, const unsigned char *blob,
                      size_t blob_len)
{
    char *text;
    int rc = SIGNER_OK;
    (void)call;
    if (blob_len > (size_t)1 << 20 ||
        (text = malloc(4 * ((blob_len + 2) / 3) + 1)) == NULL)
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    EVP_EncodeBlock((unsigned char *)text, blob, (int)blob_len);
    if (cJSON_AddStringToObject(reply->result, ENG_FIELD_SEALED_KEY, text) ==
            NULL ||
        cJSON_AddStringToObject(reply->result, ENG_FIELD_KEY_CHAIN,
                                meta->chain) == NULL)
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    free(text);
    return rc;
}

static const eng_key_locator locators[] = {
    {"keystore", ks_prepare, ks_locate, ks_deliver},
    {"request", rq_prepare, rq_locate, rq_deliver},
};

int eng_keysvc_source_for_role(const char *role)
{
    return role != NULL && strcmp(role, "enclave") == 0
               ? ENG_KEY_SOURCE_REQUEST
               : ENG_KEY_SOURCE_KEYSTORE;
}

const eng_key_locator *eng_keysvc_locator(int key_source)
{
    if (key_source == ENG_KEY_SOURCE_REQUEST)
        return &locators[1];
    return &locators[0];
}

int eng_keysvc_prepare(signer_call *call, signer_reply *reply, cJSON *payload)
{
    return eng_keysvc_locator(call->eng->key_source)
        ->prepare(call, reply, payload);
}

void eng_keysvc_call_done(signer_call *call)
{
    eng_json_free(call->located);
    call->located = NULL;
    eng_json_free(call->parsed); /* host->json_parse's trees (ABI 1.2) */
    call->parsed = NULL;
}

/* ---- sealing ----------------------------------------------------------------- */

/* eng_keysvc_seal with a per-call context (credentials, cause). */
static int seal_call(eng_engine *e, eng_seal_call *c, unsigned char **blob,
                     size_t *blob_len, const signer_key_meta *meta,
                     const unsigned char *key, size_t key_len,
                     const char *secret, size_t secret_len)
{
    unsigned char *plain;
    int rc;
    *blob = NULL;
    if (key_len == 0 || key_len > SIGNER_MAX_KEY ||
        secret_len > ENG_SECRET_MAX)
        return SIGNER_ERR_INTERNAL;
    if ((plain = eng_secure_alloc(ENG_PLAIN_MAX)) == NULL)
        return SIGNER_ERR_NOMEM;
    plain[0] = (unsigned char)key_len;
    memcpy(plain + 1, key, key_len);
    plain[1 + key_len] = (unsigned char)secret_len;
    memcpy(plain + 2 + key_len, secret, secret_len);
    rc = eng_sealer_seal_call(e->sealer, c, blob, blob_len, meta, plain,
                              2 + key_len + secret_len);
    eng_secure_free(plain, ENG_PLAIN_MAX);
    return rc;
}

int eng_keysvc_seal(eng_engine *e, unsigned char **blob, size_t *blob_len,
                    const signer_key_meta *meta, const unsigned char *key,
                    size_t key_len, const char *secret, size_t secret_len)
{
    eng_seal_call c;
    memset(&c, 0, sizeof c);
    return seal_call(e, &c, blob, blob_len, meta, key, key_len, secret,
                     secret_len);
}

/* A remote sealer's failure as the answer: its cause (naming KMS), and a
 * retry hint with 503. */
static int reply_seal_error(signer_reply *reply, int rc,
                            const eng_seal_call *c, const char *what)
{
    if (rc == SIGNER_ERR_UNAVAILABLE)
        return eng_reply_error(reply, rc, "%s: %s; retry after %d s", what,
                               c->msg[0] ? c->msg : "sealer unavailable",
                               c->retry_after > 0 ? c->retry_after : 1);
    if (rc != SIGNER_ERR_BAD_REQUEST && rc != SIGNER_ERR_FORBIDDEN)
        rc = SIGNER_ERR_INTERNAL;
    return eng_reply_error(reply, rc, "%s: %s", what,
                           c->msg[0] ? c->msg : signer_err_str(rc));
}

/* Checks the layout of an unsealed plaintext; the key's length in *klen
 * and the secret's in *slen.  0 or -1. */
static int plain_split(const unsigned char *plain, size_t plen, size_t *klen,
                       size_t *slen)
{
    size_t k = plen >= 2 ? plain[0] : 0;
    if (k == 0 || k > SIGNER_MAX_KEY || 1 + k >= plen ||
        plain[1 + k] != plen - 2 - k || plen - 2 - k > ENG_SECRET_MAX)
        return -1;
    *klen = k;
    *slen = plen - 2 - k;
    return 0;
}

/* Unseals rec into plain (capacity ENG_PLAIN_MAX); c: per-call context. */
static int unseal_plain(eng_engine *e, eng_seal_call *c,
                        unsigned char *plain, size_t *plen,
                        const char *key_id, const eng_sealed_record *rec)
{
    signer_key_meta meta;
    meta.key_id = key_id;
    meta.chain = rec->chain;
    meta.address = rec->address;
    if (e->sealer == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_sealer_unseal_call(e->sealer, c, plain, ENG_PLAIN_MAX, plen,
                                  &meta, rec->blob, rec->blob_len);
}

int eng_keysvc_unseal(eng_engine *e, unsigned char *key, size_t key_cap,
                      size_t *key_len, unsigned char *secret,
                      size_t *secret_len, const char *key_id,
                      const eng_sealed_record *rec)
{
    unsigned char *plain = eng_secure_alloc(ENG_PLAIN_MAX);
    size_t plen = 0, klen = 0, slen = 0;
    int rc;
    *key_len = 0;
    *secret_len = 0;
    if (plain == NULL)
        return SIGNER_ERR_NOMEM;
    eng_seal_call c;
    memset(&c, 0, sizeof c);
    rc = unseal_plain(e, &c, plain, &plen, key_id, rec);
    if (rc == SIGNER_OK &&
        (plain_split(plain, plen, &klen, &slen) != 0 || klen > key_cap))
        rc = SIGNER_ERR_INTERNAL;
    if (rc == SIGNER_OK) {
        memcpy(key, plain + 1, klen);
        memcpy(secret, plain + 2 + klen, slen);
        *key_len = klen;
        *secret_len = slen;
    }
    eng_secure_free(plain, ENG_PLAIN_MAX);
    return rc;
}

/* ---- key_create ------------------------------------------------------------- */

int eng_keysvc_create(signer_call *call, signer_reply *reply,
                      const char *chain, const char *address,
                      const unsigned char *key, size_t key_len,
                      const signer_json *payload)
{
    eng_engine *e = call->eng;
    const cJSON *sec =
        cJSON_GetObjectItemCaseSensitive((const cJSON *)payload, "secret");
    unsigned char *blob = NULL;
    size_t slen = 0, blen = 0;
    char key_id[SIGNER_KEY_ID_LEN + 1];
    signer_key_meta meta;
    eng_aws_creds creds;
    eng_seal_call sc;
    int rc;

    if (sec == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "secret: required");
    if (eng_auth_secret_check(sec, &slen) < 0)
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
    meta.key_id = key_id;
    meta.chain = chain;
    meta.address = address;
    memset(&sc, 0, sizeof sc);
    if (call_creds(call, &creds))
        sc.creds = &creds;
    rc = seal_call(e, &sc, &blob, &blen, &meta, key, key_len,
                   sec->valuestring, slen);
    eng_aws_creds_wipe(&creds);
    if (rc != SIGNER_OK) {
        rc = e->key_source == ENG_KEY_SOURCE_REQUEST
                 ? reply_seal_error(reply, rc, &sc, "sealing the key failed")
                 : eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                                   "sealing the key failed");
        goto cleanup;
    }
    rc = eng_keysvc_locator(e->key_source)
             ->deliver(call, reply, &meta, blob, blen);
    if (rc != SIGNER_OK)
        goto cleanup;
    if (cJSON_AddStringToObject(reply->result, "key_id", key_id) == NULL ||
        cJSON_AddStringToObject(reply->result, "address", address) == NULL)
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
cleanup:
    free(blob);
    return rc;
}

/* ---- key_open ------------------------------------------------------------------ */

/* One key_open in progress. */
typedef struct open_state {
    char key_id[SIGNER_KEY_ID_LEN + 1];
    /* the cache's key: key_id, or in the enclave role a digest of key_id,
     * chain, address and the sealed blob (another blob, another entry) */
    char cache_id[SIGNER_KEY_ID_LEN + 1];
    eng_credential cred;
    eng_sealed_record rec;
    unsigned char *plain; /* secure memory, ENG_PLAIN_MAX */
    size_t plen, klen, slen;
    int from_cache;
    pthread_mutex_t *flight; /* held from a cache miss to the cache put */
} open_state;

/* Concurrent misses on one record wait for a single unseal (one KMS
 * Decrypt, not one per request): striped by the cache key. */
#define FLIGHT_STRIPES 64
static pthread_mutex_t flights[FLIGHT_STRIPES] = {
    [0 ... FLIGHT_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *flight_of(const char *cache_id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *cache_id; cache_id++)
        h = (h ^ (unsigned char)*cache_id) * 1099511628211ull;
    return &flights[h % FLIGHT_STRIPES];
}

/* payload.key_id, validated and lowercased. */
static int open_key_id(open_state *st, signer_reply *reply,
                       const cJSON *payload)
{
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(payload, "key_id");
    size_t i;
    if (kid == NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "key_id: required");
    if (!cJSON_IsString(kid) || !eng_uuid_valid(kid->valuestring))
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "key_id: must be a UUIDv4 string");
    for (i = 0; i <= SIGNER_KEY_ID_LEN; i++)
        st->key_id[i] = (char)tolower((unsigned char)kid->valuestring[i]);
    return SIGNER_OK;
}

/* SHA-256 fetched once for request_cache_id: no provider lookup per
 * frame (NULL if the fetch failed: EVP_sha256() then). */
static EVP_MD *cache_id_md;
static pthread_once_t cache_id_once = PTHREAD_ONCE_INIT;
static void cache_id_fetch(void)
{
    cache_id_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* st->cache_id for the request locator: hex SHA-256 of key_id, chain,
 * address and blob, cut to the width of a key_id.  0 or -1. */
static int request_cache_id(open_state *st)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    size_t i;
    int ok;
    pthread_once(&cache_id_once, cache_id_fetch);
    ok = h != NULL &&
         EVP_DigestInit_ex(h, cache_id_md ? cache_id_md : EVP_sha256(),
                           NULL) &&
         EVP_DigestUpdate(h, st->key_id, strlen(st->key_id) + 1) &&
         EVP_DigestUpdate(h, st->rec.chain, strlen(st->rec.chain) + 1) &&
         EVP_DigestUpdate(h, st->rec.address, strlen(st->rec.address) + 1) &&
         EVP_DigestUpdate(h, st->rec.blob, st->rec.blob_len) &&
         EVP_DigestFinal_ex(h, md, NULL);
    EVP_MD_CTX_free(h);
    if (!ok)
        return -1;
    for (i = 0; i < SIGNER_KEY_ID_LEN; i++)
        st->cache_id[i] = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    st->cache_id[SIGNER_KEY_ID_LEN] = '\0';
    return 0;
}

/* A cache hit for st->cache_id: 1 (record in st, the entry in the call's
 * key_ref for the plugin's per-key slot), else 0. */
static int open_cached(signer_call *call, open_state *st, int64_t now)
{
    char chain[sizeof st->rec.chain], addr[sizeof st->rec.address];
    if (!eng_keycache_get_ref(call->eng->cache, st->plain, ENG_PLAIN_MAX,
                              &st->plen, chain, sizeof chain, addr,
                              sizeof addr, st->cache_id, now, &call->key_ref))
        return 0;
    memcpy(st->rec.chain, chain, sizeof chain);
    memcpy(st->rec.address, addr, sizeof addr);
    st->from_cache = 1;
    return 1;
}

/* Whether the request locator's record is in the key cache (see
 * keysvc.h): the cache key open_locate would compute, looked up. */
int eng_keysvc_cached(eng_engine *e, const char *key_id,
                      const eng_sealed_record *rec)
{
    open_state st;
    size_t i;
    int hit;
    if (e->cache == NULL || strlen(key_id) != SIGNER_KEY_ID_LEN ||
        strlen(rec->chain) >= sizeof st.rec.chain ||
        strlen(rec->address) >= sizeof st.rec.address)
        return 0;
    memset(&st, 0, sizeof st);
    for (i = 0; i <= SIGNER_KEY_ID_LEN; i++)
        st.key_id[i] = (char)tolower((unsigned char)key_id[i]);
    memcpy(st.rec.chain, rec->chain, strlen(rec->chain) + 1);
    memcpy(st.rec.address, rec->address, strlen(rec->address) + 1);
    st.rec.blob = rec->blob;
    st.rec.blob_len = rec->blob_len;
    hit = request_cache_id(&st) == 0 &&
          eng_keycache_has(e->cache, st.cache_id, eng_unix_time());
    return hit;
}

/* The request locator's unseal failed: its cause, naming KMS. */
static int request_unseal_error(signer_reply *reply, int rc,
                                const eng_seal_call *c)
{
    if (rc == SIGNER_ERR_FORBIDDEN)
        return eng_reply_error(reply, rc, ENG_FIELD_SEALED_KEY ": cannot be "
                               "opened for this key_id, chain and address "
                               "(%s)", c->msg[0] ? c->msg : "refused");
    return reply_seal_error(reply, rc, c, "unsealing the key failed");
}

/* Step 1, locate: the unsealed record from the cache, or the sealed one
 * from the locator, unsealed.  Nothing is cached here. */
static int open_locate(signer_call *call, signer_reply *reply,
                       open_state *st, int64_t now)
{
    eng_engine *e = call->eng;
    int req = e->key_source == ENG_KEY_SOURCE_REQUEST, rc;
    eng_aws_creds creds;
    eng_seal_call sc;
    memcpy(st->cache_id, st->key_id, sizeof st->cache_id);
    if (!req && open_cached(call, st, now))
        return SIGNER_OK;
    rc = eng_keysvc_locator(e->key_source)
             ->locate(call, reply, &st->rec, st->key_id);
    if (rc != SIGNER_OK)
        return rc;
    if (req && request_cache_id(st) != 0)
        return eng_reply_error(reply, SIGNER_ERR_INTERNAL, "digest failed");
    if (req && open_cached(call, st, now))
        return SIGNER_OK;
    if (req && e->cache != NULL) {
        st->flight = flight_of(st->cache_id);
        pthread_mutex_lock(st->flight);
        if (open_cached(call, st, now)) /* another request just unsealed it */
            return SIGNER_OK;
    }
    memset(&sc, 0, sizeof sc);
    if (call_creds(call, &creds))
        sc.creds = &creds;
    rc = unseal_plain(e, &sc, st->plain, &st->plen, st->key_id, &st->rec);
    eng_aws_creds_wipe(&creds);
    if (rc == SIGNER_OK)
        return SIGNER_OK;
    if (req)
        return request_unseal_error(reply, rc, &sc);
    eng_log(SIGNER_LOG_ERROR,
            "sealed key %s cannot be opened (wrong master key or tampered "
            "record)",
            st->key_id);
    return eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                           "the sealed key cannot be opened");
}

/* Step 2, open + authenticate: layout, chain, credential; caches the
 * record only once the caller is authenticated. */
static int open_auth(signer_call *call, signer_reply *reply, open_state *st,
                     const char *chain, const cJSON *payload, int64_t now)
{
    eng_engine *e = call->eng;
    eng_auth_scope scope;
    int rc;
    if (strcmp(st->rec.chain, chain) != 0)
        return eng_reply_error(reply, SIGNER_ERR_NOT_FOUND,
                               "key_id: no such key for chain '%.32s'",
                               chain);
    if (plain_split(st->plain, st->plen, &st->klen, &st->slen) != 0)
        return eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                               "the sealed key has a bad layout");
    scope.op = call->op != NULL ? call->op->name : "";
    scope.key_id = st->key_id;
    scope.payload = payload;
    scope.fields = call->hmac_fields;
    rc = eng_auth_verify(e->auth, reply, &st->cred, &scope, call->peer,
                         st->plain + 2 + st->klen, st->slen, now);
    if (rc == SIGNER_OK && !st->from_cache)
        eng_keycache_put_ref(e->cache, st->cache_id, st->plain, st->plen,
                             st->rec.chain, st->rec.address, now,
                             &call->key_ref);
    return rc;
}

int eng_keysvc_open(signer_call *call, signer_reply *reply,
                    unsigned char *key, size_t key_cap, size_t *key_len,
                    char *address, size_t address_cap, const char *chain,
                    const signer_json *payload_)
{
    const cJSON *payload = (const cJSON *)payload_;
    int64_t now = eng_unix_time();
    open_state st;
    int rc;

    memset(&st, 0, sizeof st);
    memset(&call->key_ref, 0, sizeof call->key_ref);
    *key_len = 0;
    if ((rc = open_key_id(&st, reply, payload)) != SIGNER_OK ||
        (rc = eng_auth_parse(&st.cred, reply, payload)) != SIGNER_OK ||
        (rc = eng_auth_admit(call->eng->auth, reply, st.key_id, call->peer,
                             now)) != SIGNER_OK)
        goto cleanup;
    if ((st.plain = eng_secure_alloc(ENG_PLAIN_MAX)) == NULL) {
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = open_locate(call, reply, &st, now)) != SIGNER_OK ||
        (rc = open_auth(call, reply, &st, chain, payload, now)) != SIGNER_OK)
        goto cleanup;
    if (st.klen > key_cap || strlen(st.rec.address) + 1 > address_cap) {
        rc = eng_reply_error(reply, SIGNER_ERR_INTERNAL,
                             "the key does not fit the plugin's buffers");
        goto cleanup;
    }
    memcpy(key, st.plain + 1, st.klen);
    *key_len = st.klen;
    memcpy(address, st.rec.address, strlen(st.rec.address) + 1);
cleanup:
    if (st.flight != NULL)
        pthread_mutex_unlock(st.flight);
    if (rc != SIGNER_OK && key != NULL)
        eng_wipe(key, key_cap);
    eng_secure_free(st.plain, ENG_PLAIN_MAX);
    free(st.rec.blob);
    eng_wipe(&st.cred, sizeof st.cred);
    return rc;
}
