#include "config.h"
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

/* ---- engine lifecycle ----------------------------------------------------- */

static int make_data_dir(const char *dir, char *err, size_t err_len)
{
    struct stat st;
    char *parent = eng_dirname(dir);
    /* Parents as with mkdir -p (0755); the data dir itself is 0700. */
    if (parent != NULL && strcmp(parent, dir) != 0 && stat(parent, &st) != 0 &&
        make_data_dir(parent, err, err_len) == 0)
        chmod(parent, 0755);
    free(parent);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create data_dir %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "data_dir %s is not a directory", dir);
        return -1;
    }
    /* It holds the master key and the sealed keys: owner only. */
    if ((st.st_mode & 077) != 0) {
        if (chmod(dir, st.st_mode & 0700) != 0) {
            snprintf(err, err_len,
                     "data_dir %s is accessible by group or others and "
                     "cannot be restricted: %s",
                     dir, strerror(errno));
            return -1;
        }
        eng_log(SIGNER_LOG_WARN, "data_dir %s was accessible by group or "
                                 "others: restricted to its owner (0700)",
                dir);
    }
    return 0;
}

/* --check-config: checks the data directory, master key and keystore that
 * already exist (a master key file of the wrong size or mode, a keystore
 * that is not a database) and creates nothing; what is absent is created
 * on the first real start. */
static int check_existing(eng_engine *e, const eng_config *cfg, char *err,
                          size_t err_len)
{
    struct stat st;
    char *mk, *ks;
    int rc = 0;

    if (stat(cfg->data_dir, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, err_len, "data_dir %s: %s", cfg->data_dir,
                     strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "data_dir %s is not a directory",
                 cfg->data_dir);
        return -1;
    }
    mk = eng_path_join(cfg->data_dir, cfg->master_key_file);
    ks = eng_path_join(cfg->data_dir, cfg->keystore_path);
    if (mk == NULL || ks == NULL) {
        snprintf(err, err_len, "out of memory");
        rc = -1;
    } else if (stat(mk, &st) == 0 &&
               (e->sealer = eng_sealer_local_open(mk, err, err_len)) == NULL) {
        rc = -1;
    } else if (stat(ks, &st) == 0 &&
               (e->ks = eng_keystore_sqlite_open(ks, err, err_len)) == NULL) {
        rc = -1;
    }
    free(mk);
    free(ks);
    return rc;
}

int eng_engine_open(eng_engine *e, eng_config *cfg, char *err, size_t err_len)
{
    char *path = NULL;
    size_t i;

    memset(e, 0, sizeof *e);
    e->cfg = cfg;
    eng_registry_init(&e->reg);
    e->secure_heap = eng_secure_init((size_t)4 << 20);
    eng_host_init(e);
    if ((e->metrics = calloc(1, sizeof *e->metrics)) == NULL ||
        (e->auth = eng_auth_new(cfg->max_failures, cfg->lockout_seconds,
                                cfg->hmac_window)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (cfg->check_only) {
        if (check_existing(e, cfg, err, err_len) < 0)
            goto fail;
        goto plugins;
    }
    if (make_data_dir(cfg->data_dir, err, err_len) < 0)
        goto fail;
    if (cfg->key_cache_ttl > 0 &&
        (e->cache = eng_keycache_new((size_t)cfg->key_cache_max,
                                     cfg->key_cache_ttl)) == NULL) {
        snprintf(err, err_len, "cannot allocate the key cache (%d entries)",
                 cfg->key_cache_max);
        goto fail;
    }
    if ((path = eng_path_join(cfg->data_dir, cfg->master_key_file)) == NULL ||
        (e->sealer = eng_sealer_local_open(path, err, err_len)) == NULL)
        goto fail;
    free(path);
    if ((path = eng_path_join(cfg->data_dir, cfg->keystore_path)) == NULL ||
        (e->ks = eng_keystore_sqlite_open(path, err, err_len)) == NULL)
        goto fail;
    free(path);
    path = NULL;
plugins:
    for (i = 0; i < cfg->n_plugins; i++) {
        const eng_plugin_conf *pc = &cfg->plugins[i];
        char *file = strchr(pc->path, '/') ? eng_path_join(cfg->dir, pc->path)
                                           : eng_plugin_resolve(pc->path,
                                                                cfg->plugin_dir);
        int rc = file ? eng_registry_load(&e->reg, &e->host, pc->name, file,
                                          (const signer_conf *)pc->settings,
                                          err, err_len)
                      : SIGNER_ERR_NOMEM;
        free(file);
        if (rc != SIGNER_OK)
            goto fail;
    }
    for (i = 0; i < cfg->n_aliases; i++)
        if (eng_registry_alias(&e->reg, cfg->aliases[i].from,
                               cfg->aliases[i].to, err, err_len) != SIGNER_OK)
            goto fail;
    if (!e->secure_heap)
        eng_log(SIGNER_LOG_WARN, "locked memory unavailable (RLIMIT_MEMLOCK?):"
                                 " key buffers are not mlocked");
    return 0;
fail:
    free(path);
    eng_engine_close(e);
    return -1;
}

void eng_engine_close(eng_engine *e)
{
    eng_registry_free(&e->reg);
    eng_keystore_close(e->ks);
    eng_sealer_free(e->sealer);
    eng_auth_free(e->auth);
    eng_keycache_free(e->cache);
    e->cache = NULL;
    free(e->metrics);
    e->ks = NULL;
    e->sealer = NULL;
    e->auth = NULL;
    e->metrics = NULL;
}

/* ---- answers ------------------------------------------------------------------ */

char *eng_error_body(int status, const char *message, const char *id_json,
                     size_t *len)
{
    cJSON *root = cJSON_CreateObject(), *res;
    char *out = NULL;
    if (root == NULL)
        return NULL;
    if (id_json != NULL) /* a token as received: echoed exactly */
        cJSON_AddItemToObject(root, "id", cJSON_CreateRaw(id_json));
    cJSON_AddNumberToObject(root, "enclave_status", status);
    res = cJSON_AddObjectToObject(root, "enclave_result");
    if (res != NULL)
        cJSON_AddStringToObject(res, "error", message);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (out != NULL && len != NULL)
        *len = strlen(out);
    return out;
}

/* ---- dispatch ------------------------------------------------------------------ */

/* One request going through the steps below. */
typedef struct dispatch {
    eng_engine *e;
    const eng_request *req;
    cJSON *root;    /* the body (NULL once its payload is taken) */
    cJSON *payload; /* what the handler sees */
    eng_json_span id; /* frames: the "id" token exactly as sent */
    const char *opname;
    const eng_op_entry *entry;
    size_t op_index;
    signer_reply reply;
    struct signer_call call;
    char rid[17];
} dispatch;

/* Copies at most 64 printable characters of s for messages. */
static void printable(char *out, size_t cap, const char *s)
{
    size_t i, j = 0;
    for (i = 0; s[i] != '\0' && j + 4 < cap && i < 64; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] != '\0' && j + 4 < cap) {
        out[j++] = '.';
        out[j++] = '.';
        out[j++] = '.';
    }
    out[j] = '\0';
}

/* Step 1: the body is one strict JSON object (and a frame has an id). */
static int step_parse(dispatch *d)
{
    const eng_request *req = d->req;
    eng_json_error jerr;
    const cJSON *id;
    int rc;
    if (req->body_len > d->e->cfg->limits.max_body)
        return eng_reply_error(&d->reply, SIGNER_ERR_TOO_LARGE,
                               "body: larger than %zu bytes",
                               d->e->cfg->limits.max_body);
    if (req->body_len == 0)
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "body: empty; expected a JSON object");
    d->id.name = req->framed ? "id" : NULL;
    rc = eng_json_parse(&d->root, &d->id, req->body, req->body_len,
                        CJSON_NESTING_LIMIT, &jerr);
    if (rc == SIGNER_ERR_BAD_REQUEST)
        return eng_reply_error(&d->reply, rc,
                               "body: malformed JSON at byte %zu: %s",
                               jerr.offset, jerr.cause);
    if (rc != SIGNER_OK)
        return eng_reply_error(&d->reply, rc, "out of memory");
    if (!cJSON_IsObject(d->root))
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "body: expected a JSON object");
    if (!req->framed)
        return SIGNER_OK;
    id = cJSON_GetObjectItemCaseSensitive(d->root, "id");
    if (id == NULL)
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "id: required in every frame");
    if (!cJSON_IsString(id) && !cJSON_IsNumber(id)) {
        d->id.text = NULL;
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "id: must be a string or a number");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(d->root, "id");
    return SIGNER_OK;
}

/* Step 2a, a convenience route: the body is the payload itself, and a
 * key_id in the path must agree with one in the body. */
static int step_route_path(dispatch *d)
{
    const cJSON *k;
    d->opname = d->req->operation;
    d->payload = d->root;
    d->root = NULL;
    if (d->req->key_id == NULL)
        return SIGNER_OK;
    k = cJSON_GetObjectItemCaseSensitive(d->payload, "key_id");
    if (k == NULL)
        return cJSON_AddStringToObject(d->payload, "key_id", d->req->key_id)
                   ? SIGNER_OK
                   : eng_reply_error(&d->reply, SIGNER_ERR_NOMEM,
                                     "out of memory");
    if (!cJSON_IsString(k) || strcasecmp(k->valuestring, d->req->key_id) != 0)
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "key_id: differs from the one in the path");
    return SIGNER_OK;
}

/* Step 2b, POST /: {"operation": NAME, "payload": {...}} and nothing
 * else. */
static int step_route_body(dispatch *d)
{
    static const char *const root_fields[] = {"operation", "payload", "id",
                                              NULL};
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(d->root, "operation");
    const cJSON *c;
    char name[80];
    for (c = d->root->child; c != NULL; c = c->next) {
        const char *const *f = root_fields;
        while (*f != NULL && strcmp(c->string, *f) != 0)
            f++;
        if (*f == NULL) {
            printable(name, sizeof name, c->string);
            return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                                   "unknown field '%s' (expected operation, "
                                   "payload)",
                                   name);
        }
    }
    if (op == NULL)
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "operation: required");
    if (!cJSON_IsString(op))
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "operation: must be a string");
    d->opname = op->valuestring;
    d->payload = cJSON_DetachItemFromObjectCaseSensitive(d->root, "payload");
    if (d->payload == NULL && (d->payload = cJSON_CreateObject()) == NULL)
        return eng_reply_error(&d->reply, SIGNER_ERR_NOMEM, "out of memory");
    if (!cJSON_IsObject(d->payload))
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "payload: must be a JSON object");
    return SIGNER_OK;
}

/* Step 3: the registered operation (aliases count under their op). */
static int step_find_op(dispatch *d)
{
    const eng_registry *reg = &d->e->reg;
    char name[80];
    size_t i;
    d->entry = eng_registry_find(reg, d->opname);
    if (d->entry == NULL) {
        printable(name, sizeof name, d->opname);
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "operation: unknown operation '%s'", name);
    }
    d->op_index = (size_t)(d->entry - reg->ops);
    if (d->entry->is_alias)
        for (i = 0; i < reg->n_ops; i++)
            if (!reg->ops[i].is_alias && reg->ops[i].op == d->entry->op)
                d->op_index = i;
    d->call.op = d->entry->op;
    return SIGNER_OK;
}

/* Step 4: the key locator takes its fields, then the handler runs. */
static int step_run(dispatch *d)
{
    int err;
    if ((d->reply.result = cJSON_CreateObject()) == NULL)
        return eng_reply_error(&d->reply, SIGNER_ERR_NOMEM, "out of memory");
    if ((err = eng_keysvc_prepare(&d->call, &d->reply, d->payload)) !=
        SIGNER_OK)
        return err;
    err = d->entry->op->handler(d->entry->plugin->ctx, &d->call, &d->reply,
                                (const signer_json *)d->payload);
    eng_host_request_done();
    if (err == SIGNER_OK && d->reply.err != SIGNER_OK)
        err = d->reply.err;
    if (err != SIGNER_OK && d->reply.error[0] == '\0')
        snprintf(d->reply.error, sizeof d->reply.error, "%s",
                 signer_err_str(err));
    return err;
}

/* The frame's id, exactly as sent (a validated JSON token), or null. */
static cJSON *answer_id(const dispatch *d)
{
    char *raw;
    cJSON *id;
    if (d->id.text == NULL || (raw = malloc(d->id.len + 1)) == NULL)
        return cJSON_CreateNull();
    memcpy(raw, d->id.text, d->id.len);
    raw[d->id.len] = '\0';
    id = cJSON_CreateRaw(raw);
    free(raw);
    return id;
}

/* The answer body; returns the HTTP status (the edge's only mapping). */
static int step_answer(dispatch *d, int err, char **resp, size_t *resp_len)
{
    int status = signer_err_http_status(err);
    cJSON *out = cJSON_CreateObject(), *r;
    *resp = NULL;
    if (out != NULL) {
        if (d->req->framed)
            cJSON_AddItemToObject(out, "id", answer_id(d));
        cJSON_AddNumberToObject(out, "enclave_status", status);
        if (err == SIGNER_OK) {
            cJSON_AddItemToObject(out, "enclave_result", d->reply.result);
            d->reply.result = NULL;
        } else if ((r = cJSON_AddObjectToObject(out, "enclave_result")) !=
                   NULL) {
            cJSON_AddStringToObject(r, "error", d->reply.error);
        }
        *resp = cJSON_PrintUnformatted(out);
        cJSON_Delete(out);
    }
    if (*resp == NULL) {
        status = 500;
        *resp = strdup("{\"enclave_status\":500,\"enclave_result\":"
                       "{\"error\":\"out of memory\"}}");
    }
    *resp_len = *resp ? strlen(*resp) : 0;
    return status;
}

/* Metrics and the access log.  An operation flagged SIGNER_OP_SECRET
 * carries key material: its error is logged by class only, never with the
 * message (which may quote its fields). */
static void step_account(dispatch *d, int err, int status, uint64_t t0)
{
    uint64_t dt = eng_now_us() - t0;
    const char *logname = d->entry ? d->entry->op->name : NULL;
    const char *msg = NULL;
    if (err != SIGNER_OK)
        msg = (d->entry != NULL && (d->entry->op->flags & SIGNER_OP_SECRET))
                  ? signer_err_str(err)
                  : d->reply.error;
    eng_metrics_count(d->e, d->op_index, status, dt);
    eng_log_request(d->rid, logname, status, (double)dt / 1000.0,
                    d->req->peer, msg);
}

int eng_dispatch(void *engine, const eng_request *req, char **resp,
                 size_t *resp_len)
{
    uint64_t t0 = eng_now_us();
    dispatch d;
    int err, status;

    memset(&d, 0, sizeof d);
    d.e = engine;
    d.req = req;
    d.op_index = (size_t)-1;
    eng_request_id(d.rid);
    d.call.eng = d.e;
    d.call.request_id = d.rid;
    d.call.peer = req->peer;
    if ((err = step_parse(&d)) == SIGNER_OK &&
        (err = req->operation != NULL ? step_route_path(&d)
                                      : step_route_body(&d)) == SIGNER_OK &&
        (err = step_find_op(&d)) == SIGNER_OK)
        err = step_run(&d);
    status = step_answer(&d, err, resp, resp_len);
    step_account(&d, err, status, t0);
    /* The one release path: every string of the request wiped. */
    eng_keysvc_call_done(&d.call);
    eng_json_free(d.root);
    eng_json_free(d.payload);
    cJSON_Delete(d.reply.result);
    return status;
}
