#include "config.h"
#include "dispatch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

/* ---- metrics --------------------------------------------------------------- */

#define MAX_OP_METRICS 64

struct eng_metrics {
    atomic_ullong by_class[6]; /* 1xx..5xx by status/100; [0] other */
    atomic_ullong by_op[MAX_OP_METRICS];
    atomic_ullong errors_by_op[MAX_OP_METRICS];
    atomic_ullong latency_us_by_op[MAX_OP_METRICS];
    atomic_ullong unknown_op;
};

static void metrics_count(eng_engine *e, size_t op_index, int status,
                          uint64_t latency_us)
{
    struct eng_metrics *m = e->metrics;
    int cls = status / 100;
    if (m == NULL)
        return;
    atomic_fetch_add(&m->by_class[(cls >= 1 && cls <= 5) ? cls : 0], 1);
    if (op_index < MAX_OP_METRICS) {
        atomic_fetch_add(&m->by_op[op_index], 1);
        atomic_fetch_add(&m->latency_us_by_op[op_index], latency_us);
        if (status >= 400)
            atomic_fetch_add(&m->errors_by_op[op_index], 1);
    } else {
        atomic_fetch_add(&m->unknown_op, 1);
    }
}

char *eng_metrics_text(void *engine)
{
    eng_engine *e = engine;
    struct eng_metrics *m = e->metrics;
    size_t cap = 4096 + e->reg.n_ops * 512, pos = 0, i;
    char *out = malloc(cap);
    if (out == NULL || m == NULL) {
        free(out);
        return NULL;
    }
#define P(...)                                                                \
    do {                                                                      \
        int n_ = snprintf(out + pos, cap - pos, __VA_ARGS__);                 \
        if (n_ > 0)                                                           \
            pos += (size_t)n_ < cap - pos ? (size_t)n_ : cap - pos - 1;       \
    } while (0)
    P("# HELP signer_requests_total Requests answered, by status class.\n"
      "# TYPE signer_requests_total counter\n");
    for (i = 1; i <= 5; i++)
        P("signer_requests_total{class=\"%zuxx\"} %llu\n", i,
          (unsigned long long)atomic_load(&m->by_class[i]));
    P("# HELP signer_operation_requests_total Requests by operation.\n"
      "# TYPE signer_operation_requests_total counter\n");
    for (i = 0; i < e->reg.n_ops && i < MAX_OP_METRICS; i++)
        if (!e->reg.ops[i].is_alias)
            P("signer_operation_requests_total{operation=\"%s\"} %llu\n",
              e->reg.ops[i].name,
              (unsigned long long)atomic_load(&m->by_op[i]));
    P("# HELP signer_operation_errors_total Failed requests by operation.\n"
      "# TYPE signer_operation_errors_total counter\n");
    for (i = 0; i < e->reg.n_ops && i < MAX_OP_METRICS; i++)
        if (!e->reg.ops[i].is_alias)
            P("signer_operation_errors_total{operation=\"%s\"} %llu\n",
              e->reg.ops[i].name,
              (unsigned long long)atomic_load(&m->errors_by_op[i]));
    P("# HELP signer_operation_seconds_total Time spent by operation.\n"
      "# TYPE signer_operation_seconds_total counter\n");
    for (i = 0; i < e->reg.n_ops && i < MAX_OP_METRICS; i++)
        if (!e->reg.ops[i].is_alias)
            P("signer_operation_seconds_total{operation=\"%s\"} %.6f\n",
              e->reg.ops[i].name,
              (double)atomic_load(&m->latency_us_by_op[i]) / 1e6);
    P("# HELP signer_unknown_operation_total Requests naming no operation.\n"
      "# TYPE signer_unknown_operation_total counter\n"
      "signer_unknown_operation_total %llu\n",
      (unsigned long long)atomic_load(&m->unknown_op));
    P("# HELP signer_keys Keys in the keystore.\n# TYPE signer_keys gauge\n"
      "signer_keys %lld\n",
      e->ks ? eng_keystore_count(e->ks) : -1LL);
#undef P
    return out;
}

struct eng_metrics *eng_metrics_new(void)
{
    return calloc(1, sizeof(struct eng_metrics));
}

/* ---- request checks --------------------------------------------------------- */

int eng_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n, k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Finds a JSON-escaped NUL (\u0000) outside of an escaped backslash. */
static int has_escaped_nul(const char *b, size_t len)
{
    size_t i;
    for (i = 0; i + 5 < len; i++) {
        if (b[i] == '\\') {
            if (b[i + 1] == 'u' && b[i + 2] == '0' && b[i + 3] == '0' &&
                b[i + 4] == '0' && b[i + 5] == '0')
                return 1;
            i++; /* skip the escaped character */
        }
    }
    return 0;
}

char *eng_error_body(int status, const char *message, const char *id_json,
                     size_t *len)
{
    cJSON *root = cJSON_CreateObject(), *res;
    char *out = NULL;
    if (root == NULL)
        return NULL;
    if (id_json != NULL)
        cJSON_AddItemToObject(root, "id", cJSON_Parse(id_json));
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

/* ---- dispatch ----------------------------------------------------------------- */


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

/* 1 if the JSON text before offset end opens more than limit arrays or
 * objects (outside strings): why cJSON stopped there. */
static int json_depth_exceeds(const char *b, long end, int limit)
{
    long i;
    int depth = 0, in_str = 0;
    for (i = 0; i < end; i++) {
        char c = b[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > limit)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return depth >= limit;
}

/* Wipes every string of a parsed request before it is freed: payloads
 * carry secrets and private keys. */
static void wipe_tree(cJSON *v)
{
    for (; v != NULL; v = v->next) {
        if (cJSON_IsString(v) && v->valuestring != NULL)
            eng_wipe(v->valuestring, strlen(v->valuestring));
        if (v->child != NULL)
            wipe_tree(v->child);
    }
}

static const char *const root_fields[] = {"operation", "payload", "id", NULL};

int eng_dispatch(void *engine, const eng_request *req, char **resp,
                 size_t *resp_len)
{
    eng_engine *e = engine;
    uint64_t t0 = eng_now_us();
    cJSON *root = NULL, *payload = NULL, *id = NULL, *out = NULL;
    const char *opname = req->operation;
    const eng_op_entry *entry = NULL;
    signer_reply reply;
    struct signer_call call;
    char rid[17], namebuf[80];
    const char *end = NULL;
    int status, err = SIGNER_OK;
    size_t op_index = (size_t)-1;

    memset(&reply, 0, sizeof reply);
    if (req->request_id != NULL) /* the transport's, sent as X-Request-Id */
        snprintf(rid, sizeof rid, "%s", req->request_id);
    else
        eng_request_id(rid);
    call.eng = e;
    call.request_id = rid;
    *resp = NULL;
    *resp_len = 0;

    if (req->body_len > e->cfg->limits.max_body) {
        err = eng_reply_error(&reply, SIGNER_ERR_TOO_LARGE,
                              "body: larger than %zu bytes",
                              e->cfg->limits.max_body);
        goto answer;
    }
    if (req->body_len == 0) {
        err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                              "body: empty; expected a JSON object");
        goto answer;
    }
    if (memchr(req->body, 0, req->body_len) != NULL ||
        has_escaped_nul(req->body, req->body_len)) {
        err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                              "body: contains a NUL character");
        goto answer;
    }
    if (!eng_utf8_valid((const unsigned char *)req->body, req->body_len)) {
        err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                              "body: not valid UTF-8");
        goto answer;
    }
    root = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    if (root == NULL) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at >= req->body && at <= req->body + req->body_len)
                       ? (long)(at - req->body)
                       : -1;
        if (json_depth_exceeds(req->body, off, CJSON_NESTING_LIMIT))
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "body: JSON nested deeper than %d levels",
                                  CJSON_NESTING_LIMIT);
        else
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "body: malformed JSON near byte %ld", off);
        goto answer;
    }
    for (; end != NULL && end < req->body + req->body_len; end++)
        if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "body: trailing data after the JSON value");
            goto answer;
        }
    if (!cJSON_IsObject(root)) {
        err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                              "body: expected a JSON object");
        goto answer;
    }
    if (req->framed) {
        id = cJSON_DetachItemFromObjectCaseSensitive(root, "id");
        if (id == NULL) {
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "id: required in every frame");
            goto answer;
        }
        if (!cJSON_IsString(id) && !cJSON_IsNumber(id)) {
            cJSON_Delete(id);
            id = NULL;
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "id: must be a string or a number");
            goto answer;
        }
    }

    if (opname != NULL) {
        /* Convenience route: the body is the payload itself. */
        payload = root;
        root = NULL;
        if (req->key_id != NULL) {
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(payload,
                                                              "key_id");
            if (k != NULL && (!cJSON_IsString(k) ||
                              strcmp(k->valuestring, req->key_id) != 0)) {
                err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                      "key_id: differs from the one in the "
                                      "path");
                goto answer;
            }
            if (k == NULL)
                cJSON_AddStringToObject(payload, "key_id", req->key_id);
        }
    } else {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "operation");
        const cJSON *c;
        for (c = root->child; c != NULL; c = c->next) {
            const char *const *f;
            int known = 0;
            for (f = root_fields; *f; f++)
                if (strcmp(c->string, *f) == 0)
                    known = 1;
            if (!known) {
                printable(namebuf, sizeof namebuf, c->string);
                err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                      "unknown field '%s' (expected "
                                      "operation, payload)",
                                      namebuf);
                goto answer;
            }
        }
        if (op == NULL) {
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "operation: required");
            goto answer;
        }
        if (!cJSON_IsString(op)) {
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "operation: must be a string");
            goto answer;
        }
        opname = op->valuestring;
        payload = cJSON_DetachItemFromObjectCaseSensitive(root, "payload");
        if (payload == NULL)
            payload = cJSON_CreateObject();
        else if (!cJSON_IsObject(payload)) {
            err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                                  "payload: must be a JSON object");
            goto answer;
        }
    }
    entry = eng_registry_find(&e->reg, opname);
    if (entry == NULL) {
        printable(namebuf, sizeof namebuf, opname);
        err = eng_reply_error(&reply, SIGNER_ERR_BAD_REQUEST,
                              "operation: unknown operation '%s'", namebuf);
        goto answer;
    }
    op_index = (size_t)(entry - e->reg.ops);
    /* Count aliases under the operation they name. */
    if (entry->is_alias) {
        size_t i;
        for (i = 0; i < e->reg.n_ops; i++)
            if (!e->reg.ops[i].is_alias && e->reg.ops[i].op == entry->op)
                op_index = i;
    }
    if ((reply.result = cJSON_CreateObject()) == NULL || payload == NULL) {
        err = eng_reply_error(&reply, SIGNER_ERR_NOMEM, "out of memory");
        goto answer;
    }
    err = entry->op->handler(entry->plugin->ctx, &call, &reply,
                             (const signer_json *)payload);
    eng_host_request_done();
    if (err == SIGNER_OK && reply.err != SIGNER_OK)
        err = reply.err;
    if (err != SIGNER_OK && reply.error[0] == '\0')
        snprintf(reply.error, sizeof reply.error, "%s", signer_err_str(err));

answer:
    status = signer_err_http_status(err);
    out = cJSON_CreateObject();
    if (out != NULL) {
        if (req->framed) {
            cJSON_AddItemToObject(out, "id", id ? id : cJSON_CreateNull());
            id = NULL;
        }
        cJSON_AddNumberToObject(out, "enclave_status", status);
        if (err == SIGNER_OK) {
            cJSON_AddItemToObject(out, "enclave_result", reply.result);
            reply.result = NULL;
        } else {
            cJSON *r = cJSON_AddObjectToObject(out, "enclave_result");
            if (r != NULL)
                cJSON_AddStringToObject(r, "error", reply.error);
        }
        *resp = cJSON_PrintUnformatted(out);
    }
    if (*resp == NULL) {
        status = 500;
        *resp = strdup("{\"enclave_status\":500,\"enclave_result\":"
                       "{\"error\":\"out of memory\"}}");
    }
    *resp_len = *resp ? strlen(*resp) : 0;
    {
        uint64_t dt = eng_now_us() - t0;
        const char *logname = entry ? entry->op->name : NULL;
        metrics_count(e, op_index, status, dt);
        eng_log_request(rid, logname, status, (double)dt / 1000.0, req->peer,
                        err != SIGNER_OK ? reply.error : NULL);
    }
    cJSON_Delete(out);
    if (root != NULL)
        wipe_tree(root->child);
    if (payload != NULL)
        wipe_tree(payload->child);
    cJSON_Delete(root);
    cJSON_Delete(payload);
    cJSON_Delete(id);
    cJSON_Delete(reply.result);
    return status;
}
