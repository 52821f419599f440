#include "config.h"
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "enclave.h"
#include "log.h"
#include "rpc.h"
#include "util.h"

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
    int raw;        /* a raw op (ABI 1.2): payload is {body, credentials} */
    signer_reply reply;
    struct signer_call call;
    char rid[17];
    char client[80]; /* a trusted frame's "client" (enclave.h) */
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

/* Step 0: is the routed operation a raw op (SIGNER_OP_RAW, ABI 1.2)?
 * Its body is handed over as text, with the Authorization credentials
 * (engine/rpc.c). */
static int step_is_raw(dispatch *d)
{
    const eng_op_entry *e;

    if (d->req->operation == NULL || d->req->framed)
        return 0;
    e = eng_registry_find(&d->e->reg, d->req->operation);
    d->raw = e != NULL && eng_op_is_raw(e->plugin, e->op);
    return d->raw;
}

/* A frame may carry the request id its sender gave the request (the
 * gateway's X-Request-Id, docs/frames.md): the log line then has it. */
static int step_frame_rid(dispatch *d)
{
    const cJSON *r = eng_json_get(d->root, "request_id");
    size_t i;
    if (r == NULL)
        return SIGNER_OK;
    if (!cJSON_IsString(r) || strlen(r->valuestring) != 16)
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "request_id: must be 16 hex digits");
    for (i = 0; i < 16; i++)
        if (!strchr("0123456789abcdefABCDEF", r->valuestring[i]))
            return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                                   "request_id: must be 16 hex digits");
    memcpy(d->rid, r->valuestring, 17);
    cJSON_DeleteItemFromObjectCaseSensitive(d->root, "request_id");
    return SIGNER_OK;
}

/* A frame from a trusted gateway may name the client it serves
 * (docs/frames.md): the auth throttle then counts that client. */
static int step_frame_client(dispatch *d)
{
    const cJSON *c = eng_json_get(d->root, "client");
    int rc;
    if (c == NULL)
        return SIGNER_OK;
    if ((rc = eng_enclave_frame_client(&d->reply, d->client,
                                       sizeof d->client, c)) != SIGNER_OK)
        return rc;
    if (d->client[0] != '\0')
        d->call.peer = d->client;
    cJSON_DeleteItemFromObjectCaseSensitive(d->root, "client");
    return SIGNER_OK;
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
    id = eng_json_get(d->root, "id");
    if (id == NULL)
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "id: required in every frame");
    if (!cJSON_IsString(id) && !cJSON_IsNumber(id)) {
        d->id.text = NULL;
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "id: must be a string or a number");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(d->root, "id");
    if ((rc = step_frame_rid(d)) != SIGNER_OK)
        return rc;
    return step_frame_client(d);
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
    k = eng_json_get(d->payload, "key_id");
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
    const cJSON *op = NULL;
    cJSON *c, *payload = NULL;
    char name[80];
    /* one pass: the parser has refused duplicate names */
    for (c = d->root->child; c != NULL; c = c->next) {
        if (strcmp(c->string, "operation") == 0) {
            op = c;
        } else if (strcmp(c->string, "payload") == 0) {
            payload = c;
        } else if (strcmp(c->string, "id") != 0) {
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
    d->payload = payload != NULL ? cJSON_DetachItemViaPointer(d->root, payload)
                                 : NULL;
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
    if (!d->req->framed && /* frames carry a raw op's payload as is */
        eng_op_is_raw(d->entry->plugin, d->entry->op) != d->raw) {
        printable(name, sizeof name, d->opname);
        return eng_reply_error(&d->reply, SIGNER_ERR_BAD_REQUEST,
                               "operation: '%s' is served at its own route "
                               "only",
                               name);
    }
    d->op_index = (size_t)(d->entry - reg->ops);
    if (d->entry->is_alias)
        for (i = 0; i < reg->n_ops; i++)
            if (!reg->ops[i].is_alias && reg->ops[i].op == d->entry->op)
                d->op_index = i;
    d->call.op = d->entry->op;
    d->call.hmac_fields = eng_op_hmac_fields(d->entry->plugin, d->entry->op);
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

/* Operations the engine answers itself: `attestation` in the enclave
 * role (docs/enclave.md).  1 when handled (*err set), else 0. */
static int step_engine_op(dispatch *d, int *err)
{
    if (eng_enclave_device() == NULL ||
        strcmp(d->opname, ENG_ENCLAVE_OP_ATTESTATION) != 0 ||
        eng_registry_find(&d->e->reg, d->opname) != NULL)
        return 0;
    if ((d->reply.result = cJSON_CreateObject()) == NULL)
        *err = eng_reply_error(&d->reply, SIGNER_ERR_NOMEM, "out of memory");
    else
        *err = eng_enclave_attestation_op(&d->reply, d->payload);
    return 1;
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

/* A raw op's answer in a frame: result {"raw": the text as a JSON string}
 * (docs/frames.md).  1 done, 0 not a raw answer, -1 out of memory. */
static int raw_as_string(dispatch *d)
{
    cJSON *r, *s;
    if (!d->reply.raw || d->reply.result == NULL ||
        (r = eng_json_get(d->reply.result, "raw")) ==
            NULL)
        return 0;
    s = cJSON_CreateString(r->valuestring != NULL ? r->valuestring : "");
    if (s == NULL ||
        !cJSON_ReplaceItemInObjectCaseSensitive(d->reply.result, "raw", s)) {
        cJSON_Delete(s);
        return -1;
    }
    return 1;
}

/* Writes (o != NULL) or sizes the answer of a successful request whose
 * result holds only strings; returns its length: the bytes cJSON_PrintUnformatted gives for
 * {["id":ID,]"enclave_status":200,"enclave_result":{...}}. */
static size_t answer_write(char *o, const dispatch *d)
{
    const cJSON *c;
    size_t n = 0;
#define PUT(s, len)                                                            \
    do {                                                                       \
        if (o != NULL)                                                         \
            memcpy(o + n, (s), (len));                                         \
        n += (len);                                                            \
    } while (0)
#define PUTS(lit) PUT(lit, sizeof lit - 1)
    PUTS("{");
    if (d->req->framed) {
        PUTS("\"id\":");
        if (d->id.text != NULL)
            PUT(d->id.text, d->id.len);
        else
            PUTS("null");
        PUTS(",");
    }
    PUTS("\"enclave_status\":200,\"enclave_result\":{");
    for (c = d->reply.result->child; c != NULL; c = c->next) {
        PUTS("\"");
        n += eng_json_escape(o != NULL ? o + n : NULL, c->string,
                          strlen(c->string));
        PUTS("\":\"");
        n += eng_json_escape(o != NULL ? o + n : NULL, c->valuestring,
                          strlen(c->valuestring));
        PUTS("\"");
        if (c->next != NULL)
            PUTS(",");
    }
    PUTS("}}");
#undef PUTS
#undef PUT
    return n;
}

/* The common answer (200, a result of strings) written directly, without
 * building and printing a tree.  1 when done (*resp set), else 0. */
static int answer_direct(const dispatch *d, int err, int status, char **resp,
                         size_t *resp_len)
{
    char stack[4096];
    const cJSON *c;
    size_t n;
    if (err != SIGNER_OK || status != 200 || d->reply.raw || d->reply.result == NULL ||
        !cJSON_IsObject(d->reply.result))
        return 0;
    for (c = d->reply.result->child; c != NULL; c = c->next)
        if (!cJSON_IsString(c) || c->string == NULL ||
            c->valuestring == NULL)
            return 0;
    /* written once on the stack when even the worst case (every character
     * escaped as \u00XX) fits, then copied; else sized by a scan first */
    n = 64 + (d->req->framed ? d->id.len : 0);
    for (c = d->reply.result->child; c != NULL; c = c->next)
        n += 6 * (strlen(c->string) + strlen(c->valuestring)) + 6;
    if (n <= sizeof stack) {
        n = answer_write(stack, d);
        if ((*resp = malloc(n + 1)) != NULL)
            memcpy(*resp, stack, n);
        eng_wipe(stack, n); /* a result may carry what the caller keeps */
        if (*resp == NULL)
            return 0;
    } else {
        n = answer_write(NULL, d);
        if ((*resp = malloc(n + 1)) == NULL)
            return 0;
        answer_write(*resp, d);
    }
    (*resp)[n] = '\0';
    *resp_len = n;
    return 1;
}

/* The answer body; returns the HTTP status (the edge's only mapping). */
static int step_answer(dispatch *d, int err, char **resp, size_t *resp_len)
{
    int status = signer_err_http_status(err), raw;
    cJSON *out, *r;
    char st[16];
    *resp = NULL;
    if (d->req->framed && (raw = raw_as_string(d)) != 0) {
        err = raw > 0 ? SIGNER_OK
                      : eng_reply_error(&d->reply, SIGNER_ERR_NOMEM,
                                        "out of memory");
        status = signer_err_http_status(raw > 0 ? d->reply.raw_err : err);
    } else if (d->reply.raw && d->reply.result != NULL &&
        (r = eng_json_get(d->reply.result, "raw")) !=
            NULL) { /* host->reply_raw: the whole answer */
        *resp = r->valuestring;
        r->valuestring = NULL;
        *resp_len = *resp ? strlen(*resp) : 0;
        if (*resp != NULL)
            return signer_err_http_status(d->reply.raw_err);
    }
    if (answer_direct(d, err, status, resp, resp_len))
        return status;
    out = cJSON_CreateObject();
    if (out != NULL) {
        if (d->req->framed)
            cJSON_AddItemToObject(out, "id", answer_id(d));
        /* an integer as raw text: cJSON prints a number with %1.15g and
         * a round-trip check (about 2,500 instructions) */
        snprintf(st, sizeof st, "%d", status);
        cJSON_AddRawToObject(out, "enclave_status", st);
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

/* Steps 1-4 of one request: a raw op (its body handed over as text), an
 * operation of the engine itself (attestation), or a plugin's.  Returns
 * the request's signer_err. */
static int step_all(dispatch *d)
{
    const eng_request *req = d->req;
    int err;
    if (step_is_raw(d)) {
        d->opname = req->operation;
        if ((err = eng_rpc_payload(&d->payload, &d->reply, req,
                                   d->e->cfg->limits.max_body)) ==
                SIGNER_OK &&
            (err = step_find_op(d)) == SIGNER_OK)
            err = step_run(d);
        return err;
    }
    if ((err = step_parse(d)) != SIGNER_OK ||
        (err = req->operation != NULL ? step_route_path(d)
                                      : step_route_body(d)) != SIGNER_OK)
        return err;
    if (step_engine_op(d, &err) != 0)
        return err;
    if ((err = step_find_op(d)) == SIGNER_OK)
        err = step_run(d);
    return err;
}

/* The transport's request id, cut to the 16 characters of ours (what
 * snprintf "%s" into rid gave, without formatting per request). */
static void copy_rid(char rid[17], const char *s)
{
    size_t n = strnlen(s, 16);
    memcpy(rid, s, n);
    rid[n] = '\0';
}

int eng_dispatch(void *engine, const eng_request *req, char **resp,
                 size_t *resp_len)
{
    uint64_t t0 = eng_now_us();
    dispatch d;
    int err, status;

    memset(&d, 0, sizeof d);
    eng_arena_begin(); /* the request's JSON: util.h */
    d.e = engine;
    d.req = req;
    d.op_index = (size_t)-1;
    if (req->request_id != NULL) /* the transport's, sent as X-Request-Id */
        copy_rid(d.rid, req->request_id);
    else
        eng_request_id(d.rid);
    d.call.eng = d.e;
    d.call.request_id = d.rid;
    d.call.peer = req->peer;
    err = step_all(&d);
    status = step_answer(&d, err, resp, resp_len);
    step_account(&d, err, status, t0);
    /* The one release path: every string of the request wiped. */
    eng_keysvc_call_done(&d.call);
    eng_json_free(d.root);
    eng_json_free(d.payload);
    eng_json_free(d.reply.result);
    eng_arena_end(); /* wipes what the request's JSON used */
    return status;
}

/* ---- the gateway's front half ----------------------------------------------- */

int eng_dispatch_parse(void *engine, const eng_request *req,
                       eng_parsed *out, char **resp, size_t *resp_len)
{
    uint64_t t0 = eng_now_us();
    dispatch d;
    int err, status;

    memset(out, 0, sizeof *out);
    memset(&d, 0, sizeof d);
    d.e = engine;
    d.req = req;
    d.op_index = (size_t)-1;
    copy_rid(d.rid, req->request_id != NULL ? req->request_id : "");
    if ((err = step_parse(&d)) == SIGNER_OK &&
        (err = req->operation != NULL ? step_route_path(&d)
                                      : step_route_body(&d)) == SIGNER_OK &&
        (err = step_find_op(&d)) == SIGNER_OK &&
        (out->opname = strdup(d.opname)) == NULL)
        err = eng_reply_error(&d.reply, SIGNER_ERR_NOMEM, "out of memory");
    if (err == SIGNER_OK && req->framed && d.id.text != NULL &&
        (out->id_raw = strndup(d.id.text, d.id.len)) == NULL)
        err = eng_reply_error(&d.reply, SIGNER_ERR_NOMEM, "out of memory");
    if (err == SIGNER_OK) {
        out->payload = d.payload;
        out->op_index = d.op_index;
        out->secret_op = (d.entry->op->flags & SIGNER_OP_SECRET) != 0;
        d.payload = NULL;
        eng_json_free(d.root);
        return SIGNER_OK;
    }
    free(out->opname);
    out->opname = NULL;
    status = step_answer(&d, err, resp, resp_len);
    step_account(&d, err, status, t0);
    eng_json_free(d.root);
    eng_json_free(d.payload);
    cJSON_Delete(d.reply.result);
    return err;
}

void eng_dispatch_account(void *engine, const eng_request *req,
                          size_t op_index, const char *opname, int status,
                          uint64_t t0, const char *msg)
{
    uint64_t dt = eng_now_us() - t0;
    eng_metrics_count(engine, op_index, status, dt);
    eng_log_request(req->request_id != NULL ? req->request_id : "-", opname,
                    status, (double)dt / 1000.0, req->peer, msg);
}
