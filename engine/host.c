#include "config.h"
#include "host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc.h"
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

/* v's cJSON type (cJSON_Invalid for NULL): what the cJSON_Is* functions
 * test, without a call into the library per accessor. */
static inline int jt(const signer_json *v)
{
    return v != NULL ? J(v)->type & 0xff : cJSON_Invalid;
}

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
    if (jt(v) != cJSON_Object || key == NULL)
        return NULL;
    return (const signer_json *)eng_json_get(J(v), key);
}

static size_t h_json_count(const signer_json *v)
{
    if (jt(v) != cJSON_Object && jt(v) != cJSON_Array)
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
    if (jt(v) != cJSON_Object && jt(v) != cJSON_Array)
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
    if (jt(v) != cJSON_String || (s = J(v)->valuestring) == NULL)
        return NULL;
    if (len != NULL)
        *len = strlen(s);
    return s;
}

static int h_json_number(const signer_json *v, double *out)
{
    if (jt(v) != cJSON_Number)
        return 0;
    *out = J(v)->valuedouble;
    return 1;
}

/* ---- reply --------------------------------------------------------------- */

static int h_reply_string(signer_reply *reply, const char *key,
                          const char *value)
{
    cJSON *item;
    if (reply == NULL || key == NULL || value == NULL)
        return SIGNER_ERR_INTERNAL;
    cJSON_DeleteItemFromObjectCaseSensitive(reply->result, key);
    /* node and copies in the request's arena (json.h) */
    if ((item = eng_json_string_member(key, value)) == NULL)
        return SIGNER_ERR_NOMEM;
    cJSON_AddItemToArray(reply->result, item);
    return SIGNER_OK;
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
    if (call->eng->sealer == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_sealer_seal(call->eng->sealer, blob, blob_len, meta, plain,
                           plain_len);
}

static int h_unseal(signer_call *call, unsigned char *plain, size_t plain_cap,
                    size_t *plain_len, const signer_key_meta *meta,
                    const unsigned char *blob, size_t blob_len)
{
    if (call->eng->sealer == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_sealer_unseal(call->eng->sealer, plain, plain_cap, plain_len,
                             meta, blob, blob_len);
}

static int h_keystore_put(signer_call *call, const signer_key_meta *meta,
                          const unsigned char *blob, size_t blob_len)
{
    if (call->eng->ks == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_keystore_put(call->eng->ks, meta, blob, blob_len);
}

static int h_keystore_get(signer_call *call, char *chain, size_t chain_cap,
                          char *address, size_t address_cap,
                          unsigned char **blob, size_t *blob_len,
                          const char *key_id)
{
    if (call->eng->ks == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_keystore_get(call->eng->ks, chain, chain_cap, address,
                            address_cap, blob, blob_len, key_id);
}

/* ---- keys: the key service (keysvc.c) --------------------------------------- */

static int h_key_create(signer_call *call, signer_reply *reply,
                        const char *chain, const char *address,
                        const unsigned char *key, size_t key_len,
                        const signer_json *payload)
{
    return eng_keysvc_create(call, reply, chain, address, key, key_len,
                             payload);
}

static int h_key_open(signer_call *call, signer_reply *reply,
                      unsigned char *key, size_t key_cap, size_t *key_len,
                      char *address, size_t address_cap, const char *chain,
                      const signer_json *payload)
{
    return eng_keysvc_open(call, reply, key, key_cap, key_len, address,
                           address_cap, chain, payload);
}

/* ---- ABI 1.2: JSON text, raw answers, outbound HTTP ---------------------- */

static int h_json_parse(signer_call *call, const signer_json **out, char *err,
                        size_t errcap, const char *text, size_t len)
{
    eng_json_error jerr;
    cJSON *tree = NULL;
    int rc;

    *out = NULL;
    if (call->parsed == NULL && (call->parsed = cJSON_CreateArray()) == NULL)
        return SIGNER_ERR_NOMEM;
    rc = eng_json_parse(&tree, NULL, text, len, CJSON_NESTING_LIMIT, &jerr);
    if (rc == SIGNER_ERR_BAD_REQUEST)
        snprintf(err, errcap, "malformed JSON at byte %zu: %s", jerr.offset,
                 jerr.cause);
    if (rc != SIGNER_OK)
        return rc;
    cJSON_AddItemToArray(call->parsed, tree);
    *out = (const signer_json *)tree;
    return SIGNER_OK;
}

static char *h_json_print(const signer_json *v, size_t *len)
{
    char *s = v != NULL ? cJSON_PrintUnformatted(J(v)) : NULL;

    if (len != NULL)
        *len = s != NULL ? strlen(s) : 0;
    return s;
}

static int h_reply_raw(signer_reply *reply, int err, const char *json,
                       size_t len)
{
    char *copy = malloc(len + 1);
    cJSON *item;

    if (copy == NULL)
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    memcpy(copy, json, len);
    copy[len] = '\0';
    item = cJSON_CreateRaw(copy);
    free(copy);
    if (item == NULL)
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    cJSON_Delete(reply->result);
    if ((reply->result = cJSON_CreateObject()) == NULL) {
        cJSON_Delete(item);
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    }
    cJSON_AddItemToObject(reply->result, "raw", item);
    reply->raw = 1;
    reply->raw_err = err;
    if (err != SIGNER_OK && reply->error[0] == '\0')
        snprintf(reply->error, sizeof reply->error, "%s", signer_err_str(err));
    return err;
}

static int h_http_post(signer_call *call, char **resp, size_t *resp_len,
                       long *status, char *err, size_t errcap, const char *url,
                       const char *body, size_t len, long timeout_ms,
                       size_t max_resp)
{
    (void)call;
    return eng_rpc_http_post(resp, resp_len, status, err, errcap, url, body,
                             len, timeout_ms, max_resp);
}

static int h_key_aux_get(signer_call *call, unsigned char *aux,
                         size_t aux_cap, size_t *aux_len)
{
    return eng_keycache_aux_get(call->eng->cache, &call->key_ref, aux,
                                aux_cap, aux_len, eng_unix_time());
}

static int h_key_aux_put(signer_call *call, const unsigned char *aux,
                         size_t aux_len)
{
    if (aux_len > SIGNER_MAX_KEY_AUX ||
        eng_keycache_aux_put(call->eng->cache, &call->key_ref, aux, aux_len,
                             eng_unix_time()) != 0)
        return SIGNER_ERR_NOT_FOUND;
    return SIGNER_OK;
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
    h->json_parse = h_json_parse;
    h->json_print = h_json_print;
    h->reply_raw = h_reply_raw;
    h->http_post = h_http_post;
    h->key_aux_get = h_key_aux_get;
    h->key_aux_put = h_key_aux_put;
}
