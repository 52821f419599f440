/* Enclave role: attestation device, mixed randomness, the `attestation`
 * and `health` operations, the device's warnings and the frame's `client`
 * field (see enclave.h, docs/enclave.md, docs/frames.md). */
#include "config.h"
#include "enclave.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/buf.h"
#include "host.h"
#include "json.h"
#include "keysvc.h"
#include "log.h"
#include "util.h"

/* A health probe is a small frame: anything larger is not parsed twice. */
#define HEALTH_FRAME_MAX 256

/* One engine per process: the device the role opened. */
static eng_attest *device;
static int warn_emulated, warn_debug_pcrs;
/* A frame's "client": refused outside the enclave role; in it, used with
 * trust_client_field (the default), ignored without. */
enum { CLIENT_REFUSE = 0, CLIENT_TRUST = 1, CLIENT_IGNORE = 2 };
static int client_mode;
/* 1 when the sealer never waits on the network ("local", "none"): then no
 * request can block and the pool runs them all on the event loop. */
static int sealer_local;
static eng_engine *engine; /* for the key cache check of a remote sealer */

int eng_enclave_role(const eng_config *cfg)
{
    return cfg != NULL && cfg->role != NULL &&
           strcmp(cfg->role, "enclave") == 0;
}

eng_attest *eng_enclave_device(void) { return device; }

/* host->random_bytes in this role: OS CSPRNG XOR device GetRandom. */
static int enclave_random(const signer_host *host, unsigned char *out,
                          size_t len)
{
    (void)host;
    if (device == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_attest_mix_random(device, out, len);
}

/* Logs each warning line of the device and remembers the two kinds. */
static void log_warnings(void)
{
    const char *w = eng_attest_warnings(device), *nl;
    char line[512];
    warn_emulated = strcmp(eng_attest_name(device), "emulated") == 0;
    warn_debug_pcrs = 0;
    while (w != NULL && *w != '\0') {
        nl = strchr(w, '\n');
        snprintf(line, sizeof line, "%.*s",
                 (int)(nl ? (size_t)(nl - w) : strlen(w)), w);
        if (strstr(line, "PCR0") != NULL)
            warn_debug_pcrs = 1;
        eng_log(SIGNER_LOG_WARN, "attestation: %s", line);
        w = nl ? nl + 1 : NULL;
    }
}

/* trust_client_field (default true: only the gateway reaches the enclave's
 * vsock port): CLIENT_TRUST or CLIENT_IGNORE, -1 when not a boolean. */
static int trust_client_conf(const eng_config *cfg)
{
    const config_setting_t *s =
        config_setting_get_member(config_root_setting(&cfg->lc),
                                  "trust_client_field");
    if (s == NULL)
        return CLIENT_TRUST;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return -1;
    return config_setting_get_bool(s) ? CLIENT_TRUST : CLIENT_IGNORE;
}

int eng_enclave_open(eng_engine *e, const eng_config *cfg, char *err,
                     size_t err_len)
{
    eng_attest_config ac;
    char why[512];
    int mode;
    if (!eng_enclave_role(cfg))
        return 0;
    if ((mode = trust_client_conf(cfg)) < 0) {
        snprintf(err, err_len, "%s: trust_client_field must be true or false",
                 cfg->file);
        return -1;
    }
    memset(&ac, 0, sizeof ac);
    if (eng_attest_conf_parse(&ac, config_root_setting(&cfg->lc), cfg->dir,
                              why, sizeof why) != 0) {
        snprintf(err, err_len, "%s: %s", cfg->file, why);
        eng_attest_config_cleanup(&ac);
        return -1;
    }
    device = eng_attest_open(&ac, why, sizeof why);
    eng_attest_config_cleanup(&ac);
    if (device == NULL) {
        snprintf(err, err_len, "attestation device: %s", why);
        return -1;
    }
    log_warnings();
    client_mode = mode;
    engine = e;
    sealer_local = cfg->sealer.type == NULL ||
                   strcmp(cfg->sealer.type, "local") == 0 ||
                   strcmp(cfg->sealer.type, "none") == 0;
    e->host.random_bytes = enclave_random;
    eng_log(SIGNER_LOG_INFO, "attestation device: %s",
            eng_attest_name(device));
    return 0;
}

void eng_enclave_close(void)
{
    eng_attest_close(device);
    device = NULL;
    warn_emulated = warn_debug_pcrs = 0;
    client_mode = CLIENT_REFUSE;
    sealer_local = 0;
    engine = NULL;
}

/* A string member of obj, or NULL. */
static const char *member_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* 1 when the frame's payload carries a record (key_id, sealed_key,
 * key_chain, key_address) that is in the key cache. */
static int record_cached(const cJSON *payload)
{
    const char *kid = member_string(payload, "key_id");
    const char *sk = member_string(payload, ENG_FIELD_SEALED_KEY);
    const char *ch = member_string(payload, ENG_FIELD_KEY_CHAIN);
    const char *ad = member_string(payload, ENG_FIELD_KEY_ADDRESS);
    eng_sealed_record rec;
    size_t cap, n;
    int hit = 0;
    if (kid == NULL || sk == NULL || ch == NULL || ad == NULL ||
        strlen(ch) >= sizeof rec.chain || strlen(ad) >= sizeof rec.address)
        return 0;
    memset(&rec, 0, sizeof rec);
    memcpy(rec.chain, ch, strlen(ch) + 1);
    memcpy(rec.address, ad, strlen(ad) + 1);
    n = strlen(sk);
    cap = n / 4 * 3 + 3;
    if ((rec.blob = malloc(cap)) == NULL)
        return 0;
    if (eng_aws_b64_decode(rec.blob, cap, &rec.blob_len, sk, n) == 0)
        hit = eng_keysvc_cached(engine, kid, &rec);
    free(rec.blob);
    return hit;
}

/* Whether req may run on the event loop (see enclave.h). */
int eng_enclave_inline_ok(const eng_request *req)
{
    eng_json_error jerr;
    cJSON *root = NULL;
    int ok;
    if (sealer_local)
        return 1;
    if (engine == NULL || !req->framed ||
        memmem(req->body, req->body_len, "\"" ENG_FIELD_SEALED_KEY "\"",
               sizeof ENG_FIELD_SEALED_KEY + 1) == NULL)
        return 0; /* creates a key, or no record: may call KMS */
    if (eng_json_parse(&root, NULL, req->body, req->body_len,
                       CJSON_NESTING_LIMIT, &jerr) != SIGNER_OK)
        return 1; /* refused by the dispatcher before any KMS call */
    ok = record_cached(cJSON_GetObjectItemCaseSensitive(root, "payload"));
    eng_json_free(root);
    return ok;
}

/* A frame's "client": used, ignored or refused (see enclave.h). */
int eng_enclave_frame_client(signer_reply *reply, char *out, size_t cap,
                             const cJSON *v)
{
    size_t i, n;
    out[0] = '\0';
    if (client_mode == CLIENT_REFUSE)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "client: set by a gateway for an enclave, "
                               "not accepted here");
    n = cJSON_IsString(v) ? strlen(v->valuestring) : 0;
    for (i = 0; i < n && n < cap; i++)
        if (v->valuestring[i] <= 0x20 || v->valuestring[i] >= 0x7f)
            break;
    if (n == 0 || n >= cap || i < n)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "client: must be 1 to %zu printable "
                               "characters without spaces",
                               cap - 1);
    if (client_mode == CLIENT_TRUST)
        memcpy(out, v->valuestring, n + 1);
    return SIGNER_OK;
}

/* 1 if root is {"id", "operation": "health", "payload"?: {},
 * "request_id"?, "client"?} and nothing else. */
static int is_health(const cJSON *root)
{
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "operation");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "payload");
    const cJSON *c;
    if (!cJSON_IsObject(root) || !cJSON_IsString(op) ||
        strcmp(op->valuestring, ENG_ENCLAVE_OP_HEALTH) != 0 ||
        (p != NULL && (!cJSON_IsObject(p) || p->child != NULL)))
        return 0;
    for (c = root->child; c != NULL; c = c->next)
        if (strcmp(c->string, "id") != 0 &&
            strcmp(c->string, "operation") != 0 &&
            strcmp(c->string, "payload") != 0 &&
            strcmp(c->string, "request_id") != 0 &&
            strcmp(c->string, "client") != 0)
            return 0;
    return 1;
}

/* The answer to a health frame whose id token is id[0..id_len). */
static char *health_answer(const char *id, size_t id_len, size_t *len)
{
    char *out = NULL;
    const char *name = device != NULL ? eng_attest_name(device) : "none";
    int n = asprintf(&out,
                     "{\"id\":%.*s,\"enclave_status\":200,"
                     "\"enclave_result\":{\"status\":\"ok\","
                     "\"attestation\":\"%s\",\"attested\":%s}}",
                     (int)id_len, id, name,
                     device != NULL && !warn_emulated ? "true" : "false");
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return out;
}

/* The gateway's probe, answered without the dispatcher (see enclave.h). */
int eng_enclave_health(const eng_request *req, char **resp, size_t *resp_len)
{
    eng_json_span id = {"id", NULL, 0};
    eng_json_error jerr;
    cJSON *root = NULL;
    int done = 0;
    if (!req->framed || req->body_len > HEALTH_FRAME_MAX ||
        memmem(req->body, req->body_len, "\"" ENG_ENCLAVE_OP_HEALTH "\"",
               sizeof ENG_ENCLAVE_OP_HEALTH + 1) == NULL)
        return 0;
    if (eng_json_parse(&root, &id, req->body, req->body_len, 4, &jerr) !=
            SIGNER_OK ||
        !is_health(root) || id.text == NULL)
        goto cleanup;
    if (id.text[0] != '"' && (id.text[0] < '0' || id.text[0] > '9') &&
        id.text[0] != '-')
        goto cleanup; /* not a string or number: the dispatcher says why */
    *resp = health_answer(id.text, id.len, resp_len);
    done = *resp != NULL;
cleanup:
    eng_json_free(root);
    return done;
}

/* payload.nonce: strict base64 of 1..ENG_ATTEST_DATA_MAX bytes. */
static int nonce_of(signer_reply *reply, unsigned char *nonce, size_t *n,
                    const cJSON *payload)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(payload, "nonce");
    const cJSON *c;
    for (c = payload ? payload->child : NULL; c != NULL; c = c->next)
        if (strcmp(c->string, "nonce") != 0)
            return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                   "unknown field (expected nonce)");
    if (!cJSON_IsString(v))
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "nonce: required, base64 of 1 to %d bytes",
                               ENG_ATTEST_DATA_MAX);
    if (eng_aws_b64_decode(nonce, ENG_ATTEST_DATA_MAX, n, v->valuestring,
                           strlen(v->valuestring)) != 0 || *n == 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "nonce: must be base64 of 1 to %d bytes",
                               ENG_ATTEST_DATA_MAX);
    return SIGNER_OK;
}

int eng_enclave_attestation_op(signer_reply *reply, const cJSON *payload)
{
    unsigned char nonce[ENG_ATTEST_DATA_MAX], *doc = NULL;
    eng_attest_req req;
    size_t n = 0, dlen = 0;
    char why[256], *b64 = NULL;
    int rc;

    if (device == NULL)
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "no attestation device in this role");
    if ((rc = nonce_of(reply, nonce, &n, payload)) != SIGNER_OK)
        return rc;
    memset(&req, 0, sizeof req);
    req.nonce = nonce;
    req.nonce_len = n;
    rc = eng_attest_document(device, &doc, &dlen, &req, why, sizeof why);
    if (rc != SIGNER_OK)
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "attestation device: %s", why);
    if ((b64 = eng_aws_b64_encode(doc, dlen)) == NULL ||
        cJSON_AddStringToObject(reply->result, "document", b64) == NULL)
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    free(b64);
    free(doc);
    return rc;
}

char *eng_enclave_metrics(void)
{
    char buf[512];
    if (device == NULL)
        return strdup("");
    snprintf(buf, sizeof buf,
             "# HELP signer_attestation_emulated 1 when attestation "
             "documents come from the emulated NSM (not a real enclave)\n"
             "# TYPE signer_attestation_emulated gauge\n"
             "signer_attestation_emulated %d\n"
             "# HELP signer_attestation_debug_pcrs 1 when PCR0 is all zero "
             "(a debug-mode enclave)\n"
             "# TYPE signer_attestation_debug_pcrs gauge\n"
             "signer_attestation_debug_pcrs %d\n",
             warn_emulated, warn_debug_pcrs);
    return strdup(buf);
}
