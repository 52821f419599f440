/* The gateway role (gateway.h, docs/gateway.md): parse and route like a
 * standalone signer, attach the key's sealed record, forward to an enclave,
 * store what a key-creating answer returns before answering. */
#include "config.h"
#include "gateway/gateway.h"

#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/buf.h"
#include "aws/creds.h"
#include "dispatch.h"
#include "gateway/gwconf.h"
#include "gateway/pool.h"
#include "gateway/record_cache.h"
#include "gateway/throttle.h"
#include "log.h"
#include "rpc.h"
#include "util.h"

#define GW_BUCKETS 12
#define GW_STORERS 2
static const double gw_bounds_ms[GW_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
static const int gw_statuses[] = {200, 400, 401, 403, 404, 409,
                                  413, 429, 500, 503, 0};
#define GW_N_STATUS (sizeof gw_statuses / sizeof gw_statuses[0])

/* Latency histogram of one (operation, status). */
typedef struct gw_hist {
    atomic_ullong bucket[GW_BUCKETS];
    atomic_ullong count, sum_us;
} gw_hist;

struct eng_gateway {
    eng_engine *e;
    eng_gw_conf conf;
    eng_gw_pool *pool;
    eng_gw_throttle *throttle;
    eng_aws_creds_chain *creds;
    eng_gw_rcache *rcache; /* sealed records by key_id; NULL: off */
    gw_hist hist[ENG_MAX_OP_METRICS + 1][GW_N_STATUS];
    /* Key-creating answers are stored by these threads, so a slow keystore
     * never stalls the enclave pool's loop. */
    pthread_t storers[GW_STORERS];
    int n_storers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gw_call *store_head, *store_tail;
    int stopping;
    atomic_ullong keystore_errors, creds_errors, throttled, stored;
};

/* One request on its way through the gateway. */
typedef struct gw_call {
    eng_gateway *g;
    const eng_request *req;
    eng_completion *done;
    eng_parsed parsed;
    uint64_t t0;
    int creates; /* no key_id: the answer may carry a new sealed record */
    int raw;     /* a raw op's route (/rpc): the answer is the op's text */
    cJSON *answer; /* waiting for a storer */
    struct gw_call *next;
} gw_call;

/* ---- answering -------------------------------------------------------- */

static size_t status_slot(int status)
{
    size_t i;
    for (i = 0; gw_statuses[i] != 0; i++)
        if (gw_statuses[i] == status)
            return i;
    return GW_N_STATUS - 1;
}

static void observe(eng_gateway *g, size_t op_index, int status, uint64_t us)
{
    size_t op = op_index < ENG_MAX_OP_METRICS ? op_index : ENG_MAX_OP_METRICS;
    gw_hist *h = &g->hist[op][status_slot(status)];
    double ms = (double)us / 1000.0;
    int i = 0;
    /* one bucket per observation (the text cumulates): one atomic add on
     * the hot path instead of one per bucket */
    while (i < GW_BUCKETS && ms > gw_bounds_ms[i])
        i++;
    if (i < GW_BUCKETS)
        atomic_fetch_add(&h->bucket[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, us);
}

/* Frees c and what it holds (the payload wiped). */
static void call_free(gw_call *c)
{
    free(c->parsed.opname);
    free(c->parsed.id_raw);
    eng_json_free(c->parsed.payload);
    free(c);
}

/* Records the request's latency, logs it, completes it with body (len
 * bytes, passed to the transport; msg logged when not NULL) and frees c. */
static void call_finish(gw_call *c, int status, char *body, size_t len,
                        const char *msg)
{
    observe(c->g, c->parsed.op_index, status, eng_now_us() - c->t0);
    eng_dispatch_account(c->g->e, c->req, c->parsed.op_index,
                         c->parsed.opname, status, c->t0, msg);
    eng_complete(c->done, status, body, len);
    call_free(c);
}

/* Completes the request with answer (an {enclave_status, enclave_result}
 * object, consumed) and frees the call.  msg, logged, is the gateway's own
 * error (never request content); an enclave's error is not logged here
 * (the enclave logs it, by class for secret operations). */
static void call_answer(gw_call *c, cJSON *answer, int status,
                        const char *msg)
{
    char *body;
    if (c->req->framed)
        cJSON_AddItemToObject(answer, "id",
                              c->parsed.id_raw != NULL
                                  ? cJSON_CreateRaw(c->parsed.id_raw)
                                  : cJSON_CreateNull());
    body = cJSON_PrintUnformatted(answer);
    cJSON_Delete(answer);
    if (body == NULL)
        status = 500;
    call_finish(c, status, body, body ? strlen(body) : 0,
                status == 200 ? NULL : msg);
}

/* The HTTP body of an enclave's answer frame without a parse/print round
 * trip: text is {"id":DIGITS,REST} as the enclave prints it, and the body
 * {REST}, the same members in the same order.  NULL (then the parsed
 * answer is printed) for another layout or without memory. */
static char *answer_splice(const char *text, size_t len, size_t *out_len)
{
    size_t i = 6;
    char *body;
    if (text == NULL || len < 8 || memcmp(text, "{\"id\":", 6) != 0)
        return NULL;
    while (i < len && text[i] >= '0' && text[i] <= '9')
        i++;
    if (i == 6 || i >= len || text[i] != ',' || text[len - 1] != '}' ||
        (body = malloc(len - i + 1)) == NULL)
        return NULL;
    body[0] = '{';
    memcpy(body + 1, text + i + 1, len - i - 1);
    body[len - i] = '\0';
    *out_len = len - i;
    return body;
}

/* call_answer for a successful enclave answer that needs no change: the
 * body spliced from the frame's text when it can be. */
static void call_answer_text(gw_call *c, cJSON *answer, int status,
                             const char *text, size_t text_len)
{
    size_t len = 0;
    char *body = c->req->framed ? NULL
                                : answer_splice(text, text_len, &len);
    if (body == NULL) {
        call_answer(c, answer, status, NULL);
        return;
    }
    cJSON_Delete(answer);
    call_finish(c, status, body, len, NULL);
}

/* Completes a raw op's request with the enclave's answer text (the string
 * enclave_result.raw of ans, consumed) as the whole body, as a standalone
 * signer answers it; frees the call. */
static void call_answer_raw(gw_call *c, cJSON *ans, cJSON *raw, int status)
{
    char *body = raw->valuestring;
    size_t len = strlen(body);
    raw->valuestring = NULL; /* taken: not freed with ans */
    cJSON_Delete(ans);
    call_finish(c, status, body, len, NULL);
}

/* Answers an error of the gateway's own (status, message). */
static void call_fail(gw_call *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void call_fail(gw_call *c, int err, const char *fmt, ...)
{
    char msg[300];
    int status = signer_err_http_status(err);
    cJSON *a = cJSON_CreateObject(), *r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_AddNumberToObject(a, "enclave_status", status);
    r = cJSON_AddObjectToObject(a, "enclave_result");
    cJSON_AddStringToObject(r, "error", msg);
    call_answer(c, a, status, msg);
}

/* A key-creating answer: the sealed record is stored durably, then
 * removed from what the client sees.  SIGNER_OK or an error answered. */
static int store_created(gw_call *c, cJSON *result)
{
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(result, "sealed_key");
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(result, "key_chain");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(result, "key_id");
    const cJSON *ad = cJSON_GetObjectItemCaseSensitive(result, "address");
    signer_key_meta meta;
    unsigned char *blob;
    size_t cap, len = 0;
    int rc;
    if (!cJSON_IsString(sk) || !cJSON_IsString(ch) || !cJSON_IsString(id) ||
        !cJSON_IsString(ad))
        return SIGNER_ERR_INTERNAL;
    cap = strlen(sk->valuestring) / 4 * 3 + 3;
    if ((blob = malloc(cap)) == NULL)
        return SIGNER_ERR_NOMEM;
    rc = eng_aws_b64_decode(blob, cap, &len, sk->valuestring,
                            strlen(sk->valuestring)) == 0
             ? SIGNER_OK
             : SIGNER_ERR_INTERNAL;
    meta.key_id = id->valuestring;
    meta.chain = ch->valuestring;
    meta.address = ad->valuestring;
    if (rc == SIGNER_OK)
        rc = eng_keystore_put(c->g->e->ks, &meta, blob, len);
    eng_wipe(blob, cap);
    free(blob);
    if (rc == SIGNER_OK) {
        atomic_fetch_add(&c->g->stored, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(result, "sealed_key");
        cJSON_DeleteItemFromObjectCaseSensitive(result, "key_chain");
    }
    return rc;
}

/* Stores a key-creating answer's record, then answers (storer thread). */
static void store_and_answer(gw_call *c, cJSON *ans)
{
    cJSON *res = cJSON_GetObjectItemCaseSensitive(ans, "enclave_result");
    int rc = store_created(c, res);
    if (rc != SIGNER_OK) {
        cJSON_Delete(ans); /* the unstored key is never acknowledged */
        atomic_fetch_add(&c->g->keystore_errors, 1);
        call_fail(c, rc == SIGNER_ERR_CONFLICT ? rc : SIGNER_ERR_UNAVAILABLE,
                  "keystore: the new key could not be stored (%s)",
                  signer_err_str(rc));
        return;
    }
    call_answer(c, ans, 200, NULL);
}

static void store_enqueue(gw_call *c, cJSON *ans)
{
    eng_gateway *g = c->g;
    c->answer = ans;
    pthread_mutex_lock(&g->mu);
    if (g->store_tail != NULL)
        g->store_tail->next = c;
    else
        g->store_head = c;
    g->store_tail = c;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* A storer: takes queued answers until stopped and the queue is empty. */
static void *storer_main(void *arg)
{
    eng_gateway *g = arg;
    for (;;) {
        gw_call *c;
        pthread_mutex_lock(&g->mu);
        while (g->store_head == NULL && !g->stopping)
            pthread_cond_wait(&g->cv, &g->mu);
        if ((c = g->store_head) == NULL) {
            pthread_mutex_unlock(&g->mu);
            return NULL;
        }
        if ((g->store_head = c->next) == NULL)
            g->store_tail = NULL;
        pthread_mutex_unlock(&g->mu);
        store_and_answer(c, c->answer);
    }
}

/* The status of an answer laid out as an enclave prints it,
 * {"id":N,"enclave_status":DDD,"enclave_result":{...}}, else 0. */
static int answer_status(const char *text, size_t len)
{
    static const char st[] = "\"enclave_status\":";
    static const char res[] = ",\"enclave_result\":{";
    uint64_t id;
    size_t i = eng_gw_answer_id(text, len, &id);
    int status;
    if (i == 0 || i + 1 + sizeof st - 1 + 3 + sizeof res - 1 + 2 > len ||
        text[i] != ',' || memcmp(text + i + 1, st, sizeof st - 1) != 0)
        return 0;
    i += sizeof st;
    if (text[i] < '2' || text[i] > '5' || text[i + 1] < '0' ||
        text[i + 1] > '9' || text[i + 2] < '0' || text[i + 2] > '9' ||
        memcmp(text + i + 3, res, sizeof res - 1) != 0 ||
        memcmp(text + len - 2, "}}", 2) != 0)
        return 0;
    status = (text[i] - '0') * 100 + (text[i + 1] - '0') * 10 + text[i + 2] -
             '0';
    return status;
}

/* Answers an HTTP client from the answer's text alone, without a parse:
 * not a raw route, not a key-creating answer (its record is stored
 * first).  1 when answered (c freed), else 0. */
static int answer_direct(gw_call *c, const char *text, size_t len)
{
    int status;
    size_t blen = 0;
    char *body;
    if (c->raw || c->req->framed || text == NULL ||
        (status = answer_status(text, len)) == 0 ||
        memmem(text, len, "\"sealed_key\"", 12) != NULL ||
        (body = answer_splice(text, len, &blen)) == NULL)
        return 0;
    call_finish(c, status, body, blen, NULL);
    return 1;
}

/* The answer's tree without its "id", or NULL when it is not JSON. */
static cJSON *answer_parse(const char *text, size_t len)
{
    cJSON *ans = text != NULL ? cJSON_ParseWithLength(text, len) : NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(ans, "id");
    return ans;
}

/* The pool's answer (the thread of the set that forwarded it). */
static void on_answer(void *arg, cJSON *ans, const char *text,
                      size_t text_len, int err, const char *why)
{
    gw_call *c = arg;
    const cJSON *st;
    cJSON *res, *raw;
    int status;
    if (err != SIGNER_OK) {
        call_fail(c, err, "%s", why != NULL ? why : "enclave unavailable");
        return;
    }
    if (ans == NULL && answer_direct(c, text, text_len))
        return;
    if (ans == NULL && (ans = answer_parse(text, text_len)) == NULL) {
        call_fail(c, SIGNER_ERR_INTERNAL, "enclave: malformed answer");
        return;
    }
    st = cJSON_GetObjectItemCaseSensitive(ans, "enclave_status");
    res = cJSON_GetObjectItemCaseSensitive(ans, "enclave_result");
    if (!cJSON_IsNumber(st) || st->valueint < 200 || st->valueint > 599 ||
        !cJSON_IsObject(res)) {
        cJSON_Delete(ans);
        call_fail(c, SIGNER_ERR_INTERNAL, "enclave: malformed answer");
        return;
    }
    status = st->valueint;
    if (c->raw && cJSON_IsString(raw = cJSON_GetObjectItemCaseSensitive(
                      res, "raw"))) {
        call_answer_raw(c, ans, raw, status);
        return;
    }
    if (status == 200 &&
        cJSON_GetObjectItemCaseSensitive(res, "sealed_key") != NULL) {
        store_enqueue(c, ans);
        return;
    }
    call_answer_text(c, ans, status, text, text_len);
}

/* ---- forwarding ------------------------------------------------------- */

/* A key's sealed record as a frame carries it. */
typedef struct gw_record {
    char chain[ENG_GW_RCACHE_CHAIN_MAX], address[SIGNER_MAX_ADDRESS];
    char cached[ENG_GW_RCACHE_TEXT_MAX + 1];
    char *text; /* base64: cached, or malloc'd; NULL: no record */
    size_t len;
} gw_record;

static void record_release(gw_record *r)
{
    if (r->text != NULL && r->text != r->cached)
        free(r->text);
    r->text = NULL;
}

/* Reads key_id's record from the keystore into r (the blob as malloc'd
 * base64 text), which is also put in the record cache.  SIGNER_OK, or an
 * error answered. */
static int record_read(gw_call *c, gw_record *r, const char *key_id)
{
    unsigned char *blob = NULL;
    size_t blen = 0;
    int rc = eng_keystore_get(c->g->e->ks, r->chain, sizeof r->chain,
                              r->address, sizeof r->address, &blob, &blen,
                              key_id);
    if (rc == SIGNER_ERR_NOT_FOUND && c->raw)
        return rc; /* not answered: record_get forwards without it */
    if (rc == SIGNER_ERR_NOT_FOUND) {
        call_fail(c, rc, "key_id: no such key");
        return rc;
    }
    if (rc != SIGNER_OK) {
        atomic_fetch_add(&c->g->keystore_errors, 1);
        call_fail(c, SIGNER_ERR_UNAVAILABLE, "keystore: unavailable (%s)",
                  signer_err_str(rc));
        return rc;
    }
    r->text = eng_aws_b64_encode(blob, blen);
    eng_wipe(blob, blen);
    free(blob);
    if (r->text == NULL) {
        call_fail(c, SIGNER_ERR_NOMEM, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    r->len = strlen(r->text);
    /* Too large for the cache, or no cache: served uncached. */
    (void)eng_gw_rcache_put(c->g->rcache, key_id, r->chain, r->address,
                            r->text, r->len);
    return SIGNER_OK;
}

/* key_id's sealed record into r, from the record cache or else the
 * keystore (records never change once stored).  SIGNER_OK (r->text NULL
 * for an unknown key on a raw route: forwarded without a record, the
 * enclave refuses it in the op's own protocol), or an error answered. */
static int record_get(gw_call *c, gw_record *r, const char *key_id)
{
    int rc, raw = c->raw; /* c is freed once an error is answered */
    r->text = NULL;
    if (eng_gw_rcache_get(c->g->rcache, r->chain, sizeof r->chain,
                          r->address, sizeof r->address, r->cached,
                          sizeof r->cached, &r->len, key_id)) {
        r->text = r->cached;
        return SIGNER_OK;
    }
    rc = record_read(c, r, key_id);
    return rc == SIGNER_ERR_NOT_FOUND && raw ? SIGNER_OK : rc;
}

/* The AWS credentials for the enclave's KMS calls into cr (*have = 1),
 * when the gateway forwards them.  SIGNER_OK, or an error answered (never
 * naming a credential). */
static int creds_get(gw_call *c, eng_aws_creds *cr, int *have)
{
    char source[32], why[256];
    int rc;
    *have = 0;
    if (c->g->creds == NULL)
        return SIGNER_OK;
    rc = eng_aws_creds_chain_get(c->g->creds, cr, source, sizeof source, why,
                                 sizeof why);
    if (rc != SIGNER_OK) {
        atomic_fetch_add(&c->g->creds_errors, 1);
        call_fail(c, SIGNER_ERR_UNAVAILABLE, "credentials: %s", why);
        return rc;
    }
    *have = 1;
    return SIGNER_OK;
}

/* Adds the record and the credentials to the parsed payload (the printed
 * frame's way).  SIGNER_OK or SIGNER_ERR_NOMEM. */
static int attach_tree(cJSON *payload, const gw_record *r,
                       const eng_aws_creds *cr)
{
    cJSON *o;
    if (r->text != NULL &&
        (!cJSON_AddStringToObject(payload, "sealed_key", r->text) ||
         !cJSON_AddStringToObject(payload, "key_chain", r->chain) ||
         !cJSON_AddStringToObject(payload, "key_address", r->address)))
        return SIGNER_ERR_NOMEM;
    if (cr == NULL)
        return SIGNER_OK;
    o = cJSON_AddObjectToObject(payload, "credentials");
    return o != NULL &&
                   cJSON_AddStringToObject(o, "access_key_id",
                                           cr->access_key_id) &&
                   cJSON_AddStringToObject(o, "secret_access_key",
                                           cr->secret_access_key) &&
                   cJSON_AddStringToObject(o, "session_token",
                                           cr->session_token) &&
                   cJSON_AddNumberToObject(o, "expiration",
                                           (double)cr->expiration)
               ? SIGNER_OK
               : SIGNER_ERR_NOMEM;
}

/* Appends the record and the credentials as payload members (the spliced
 * frame's way), the first without a leading comma when first. */
static void attach_text(eng_gw_text *t, int first, const gw_record *r,
                        const eng_aws_creds *cr)
{
    char exp[48];
    if (r->text != NULL) {
        eng_gw_text_member(t, first, "sealed_key", r->text);
        eng_gw_text_member(t, 0, "key_chain", r->chain);
        eng_gw_text_member(t, 0, "key_address", r->address);
        first = 0;
    }
    if (cr == NULL)
        return;
    eng_aws_buf_str(t, first ? "\"credentials\":{" : ",\"credentials\":{");
    eng_gw_text_member(t, 1, "access_key_id", cr->access_key_id);
    eng_gw_text_member(t, 0, "secret_access_key", cr->secret_access_key);
    eng_gw_text_member(t, 0, "session_token", cr->session_token);
    snprintf(exp, sizeof exp, ",\"expiration\":%lld}",
             (long long)cr->expiration);
    eng_aws_buf_str(t, exp);
}

/* Refuses payload fields only the gateway may set. */
static int refuse_reserved(gw_call *c)
{
    static const char *const reserved[] = {"sealed_key", "key_chain",
                                           "key_address", "credentials",
                                           NULL};
    const char *const *f;
    for (f = reserved; *f != NULL; f++)
        if (cJSON_GetObjectItemCaseSensitive(c->parsed.payload, *f) != NULL) {
            call_fail(c, SIGNER_ERR_BAD_REQUEST,
                      "%s: set by the gateway, not accepted from clients", *f);
            return SIGNER_ERR_BAD_REQUEST;
        }
    return SIGNER_OK;
}

/* The client as the throttles know it (docs/frames.md): the verified
 * certificate "tls:sha256:HEX", else the source address without its port;
 * printable, without spaces, at most cap - 1 characters. */
static void client_of(char *out, size_t cap, const eng_request *req)
{
    const char *p = req->peer_id != NULL ? req->peer_id
                                         : req->peer != NULL ? req->peer
                                                             : "unknown";
    const char *colon = strrchr(p, ':');
    size_t n = strlen(p), i;
    if (req->peer_id == NULL && colon != NULL) {
        if (p[0] == '[') /* [v6]:port */
            colon = strchr(p, ']') != NULL ? strchr(p, ']') + 1 : NULL;
        else if (strchr(p, ':') != colon) /* v6 without a port */
            colon = NULL;
        if (colon != NULL && *colon == ':' &&
            strspn(colon + 1, "0123456789") == strlen(colon + 1))
            n = (size_t)(colon - p);
    }
    if (n >= cap)
        n = cap - 1;
    for (i = 0; i < n; i++)
        out[i] = p[i] > 0x20 && p[i] < 0x7f ? p[i] : '?';
    out[n] = '\0';
}

/* The client's payload as sent, trimmed, into *p, *n when the frame can
 * splice it: an HTTP request (not a raw route) whose payload is the
 * "payload" member of POST / or the whole body of a route without a key
 * in its path.  0 otherwise (the parsed payload is printed instead). */
static int payload_text(const gw_call *c, const char **p, size_t *n)
{
    const eng_request *req = c->req;
    int found;
    if (req->framed || c->raw || req->key_id != NULL)
        return 0;
    *p = req->body;
    *n = req->body_len;
    if (req->operation == NULL) {
        found = eng_gw_member_span(req->body, req->body_len, "payload", p, n);
        if (found < 0)
            return 0;
        if (found == 0)
            *p = "{}", *n = 2; /* no payload: an empty one */
    }
    while (*n > 0 && strchr(" \t\r\n", (*p)[*n - 1]) != NULL)
        (*n)--;
    while (*n > 0 && strchr(" \t\r\n", (*p)[0]) != NULL)
        (*p)++, (*n)--;
    return *n >= 2 && (*p)[0] == '{' && (*p)[*n - 1] == '}';
}

/* Forwards the frame as text: the envelope printed here around the
 * client's payload text p[0..n) with the record and credentials added as
 * its last members. */
static void forward_text(gw_call *c, const char *client, const char *p,
                         size_t n, const gw_record *r, const eng_aws_creds *cr)
{
    eng_gw_text t = {NULL, 0, 0, 0};
    /* the envelope, the record's names and the pool's id: 384 bytes */
    eng_aws_buf_reserve(&t, n + (r->text != NULL ? r->len : 0) +
                                strlen(c->parsed.opname) + 384 +
                                (cr != NULL ? sizeof *cr : 0));
    eng_aws_buf_str(&t, "{");
    eng_gw_text_member(&t, 1, "operation", c->parsed.opname);
    if (c->req->request_id != NULL)
        eng_gw_text_member(&t, 0, "request_id", c->req->request_id);
    if (client[0] != '\0')
        eng_gw_text_member(&t, 0, "client", client);
    eng_aws_buf_str(&t, ",\"payload\":");
    if (r->text == NULL && cr == NULL) {
        eng_aws_buf_add(&t, p, n);
    } else {
        int empty = eng_gw_object_empty(p, n);
        eng_aws_buf_add(&t, p, empty ? 1 : n - 1);
        attach_text(&t, empty, r, cr);
        eng_aws_buf_str(&t, "}");
    }
    eng_aws_buf_str(&t, "}");
    eng_gw_pool_forward_text(c->g->pool, &t, !c->creates, on_answer, c);
}

/* Forwards the frame printed from the parsed payload with the record and
 * credentials added. */
static void forward_tree(gw_call *c, const char *client, const gw_record *r,
                         const eng_aws_creds *cr)
{
    cJSON *frame = NULL;
    if (attach_tree(c->parsed.payload, r, cr) != SIGNER_OK ||
        (frame = cJSON_CreateObject()) == NULL) {
        call_fail(c, SIGNER_ERR_NOMEM, "out of memory");
        return;
    }
    cJSON_AddStringToObject(frame, "operation", c->parsed.opname);
    if (c->req->request_id != NULL)
        cJSON_AddStringToObject(frame, "request_id", c->req->request_id);
    if (client[0] != '\0')
        cJSON_AddStringToObject(frame, "client", client);
    cJSON_AddItemToObject(frame, "payload", c->parsed.payload);
    c->parsed.payload = NULL;
    eng_gw_pool_forward(c->g->pool, frame, !c->creates, on_answer, c);
}

/* Builds the frame and hands it to the pool.  Using an existing key
 * changes nothing: safe to run on another enclave after a connection
 * loss (retryable).  Creating one is not. */
static void forward(gw_call *c)
{
    const cJSON *kid =
        cJSON_GetObjectItemCaseSensitive(c->parsed.payload, "key_id");
    char client[80];
    const char *p;
    size_t n;
    gw_record rec;
    eng_aws_creds cr;
    int have_cr = 0;
    rec.text = NULL;
    if (refuse_reserved(c) != SIGNER_OK)
        return;
    c->creates = kid == NULL;
    if (kid != NULL && !cJSON_IsString(kid)) {
        call_fail(c, SIGNER_ERR_BAD_REQUEST, "key_id: must be a string");
        return;
    }
    if ((kid != NULL && record_get(c, &rec, kid->valuestring) != SIGNER_OK) ||
        creds_get(c, &cr, &have_cr) != SIGNER_OK)
        goto cleanup;
    client_of(client, sizeof client, c->req);
    if (payload_text(c, &p, &n))
        forward_text(c, client, p, n, &rec, have_cr ? &cr : NULL);
    else
        forward_tree(c, client, &rec, have_cr ? &cr : NULL);
cleanup:
    record_release(&rec);
    if (have_cr)
        eng_wipe(&cr, sizeof cr);
}

/* 1 if req is an HTTP route of a raw op (SIGNER_OP_RAW, ABI 1.2: the eth
 * plugin's /rpc), known from the same op tables a standalone signer has. */
static int raw_route(const eng_gateway *g, const eng_request *req)
{
    const eng_op_entry *e;
    if (req->operation == NULL || req->framed)
        return 0;
    e = eng_registry_find(&g->e->reg, req->operation);
    return e != NULL && eng_op_is_raw(e->plugin, e->op);
}

/* A raw op's request as a standalone signer takes it (engine/rpc.c): the
 * payload {body, key_id?, secret?} from the body text and Authorization.
 * SIGNER_OK, or an error answered (c freed). */
static int parse_raw(gw_call *c)
{
    const eng_registry *reg = &c->g->e->reg;
    const eng_op_entry *e = eng_registry_find(reg, c->req->operation);
    signer_reply reply;
    size_t i;
    int err;
    memset(&reply, 0, sizeof reply);
    c->raw = 1;
    c->parsed.op_index = (size_t)(e - reg->ops);
    for (i = 0; e->is_alias && i < reg->n_ops; i++)
        if (!reg->ops[i].is_alias && reg->ops[i].op == e->op)
            c->parsed.op_index = i;
    c->parsed.secret_op = (e->op->flags & SIGNER_OP_SECRET) != 0;
    if ((c->parsed.opname = strdup(e->name)) == NULL)
        err = eng_reply_error(&reply, SIGNER_ERR_NOMEM, "out of memory");
    else
        err = eng_rpc_payload(&c->parsed.payload, &reply, c->req,
                              c->g->e->cfg->limits.max_body);
    if (err != SIGNER_OK)
        call_fail(c, err, "%s", reply.error);
    return err;
}

void eng_gateway_submit(void *ctx, const eng_request *req,
                        eng_completion *done)
{
    eng_gateway *g = ctx;
    gw_call *c = calloc(1, sizeof *c);
    char *resp = NULL;
    size_t len = 0;
    int err, wait_s;
    if (c == NULL) {
        eng_complete(done, 500, NULL, 0);
        return;
    }
    c->g = g;
    c->req = req;
    c->done = done;
    c->t0 = eng_now_us();
    if (raw_route(g, req)) {
        if (parse_raw(c) != SIGNER_OK)
            return;
    } else if ((err = eng_dispatch_parse(g->e, req, &c->parsed, &resp,
                                         &len)) != SIGNER_OK) {
        eng_complete(done, signer_err_http_status(err), resp, len);
        free(c);
        return;
    }
    if ((wait_s = eng_gw_throttle_take(g->throttle, req->peer_id != NULL
                                                        ? req->peer_id
                                                        : req->peer)) > 0) {
        atomic_fetch_add(&g->throttled, 1);
        call_fail(c, SIGNER_ERR_THROTTLED,
                  "throttled: too many requests from this client; retry in "
                  "%d s",
                  wait_s);
        return;
    }
    forward(c);
}

/* ---- lifecycle and observability -------------------------------------- */

eng_gateway *eng_gateway_open(eng_engine *e, char *err, size_t err_len)
{
    eng_gateway *g = calloc(1, sizeof *g);
    eng_gw_pool_conf pc;
    if (g == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    g->e = e;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    for (; g->n_storers < GW_STORERS; g->n_storers++)
        if (pthread_create(&g->storers[g->n_storers], NULL, storer_main, g) !=
            0) {
            snprintf(err, err_len, "gateway: cannot start a thread");
            goto fail;
        }
    if (eng_gw_conf_load(&g->conf, e->cfg, err, err_len) != 0)
        goto fail;
    if (strcmp(e->cfg->sealer.type, "none") != 0) {
        snprintf(err, err_len, "role gateway: sealer must be \"none\" (the "
                               "gateway never holds key material)");
        goto fail;
    }
    if (g->conf.forward_credentials &&
        (g->creds = eng_aws_creds_chain_new(g->conf.region, 0)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (g->conf.record_cache_max_entries > 0 &&
        (g->rcache = eng_gw_rcache_new(g->conf.record_cache_max_entries)) ==
            NULL) {
        snprintf(err, err_len, "out of memory (gateway.record_cache)");
        goto fail;
    }
    if ((g->throttle = eng_gw_throttle_new(g->conf.client_rate,
                                           g->conf.client_burst)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    memset(&pc, 0, sizeof pc);
    pc.endpoints = (const char *const *)g->conf.enclaves;
    pc.n_endpoints = g->conf.n_enclaves;
    pc.deadline_ms = g->conf.deadline_ms;
    pc.max_pipeline = e->cfg->limits.max_pipeline;
    pc.reconnect_ms = g->conf.reconnect_ms;
    pc.health_ms = g->conf.health_ms;
    pc.max_frame = e->cfg->limits.max_body + 65536;
    if ((g->pool = eng_gw_pool_start(&pc, err, err_len)) == NULL)
        goto fail;
    return g;
fail:
    eng_gateway_close(g);
    return NULL;
}

int eng_gateway_ready(eng_gateway *g)
{
    return eng_gw_pool_up(g->pool) > 0 && eng_engine_ready(g->e);
}

/* One histogram's series. */
static char *hist_text(char *out, size_t *len, size_t *cap, const char *op,
                       int status, const gw_hist *h)
{
    char line[256];
    unsigned long long cum = 0;
    int i, n;
    for (i = 0; i <= GW_BUCKETS && out != NULL; i++) {
        char le[16];
        if (i < GW_BUCKETS)
            cum += atomic_load(&h->bucket[i]);
        if (i < GW_BUCKETS)
            snprintf(le, sizeof le, "%g", gw_bounds_ms[i] / 1000.0);
        else
            snprintf(le, sizeof le, "+Inf");
        n = snprintf(line, sizeof line,
                     "signer_gateway_request_seconds_bucket{operation=\"%s\","
                     "status=\"%d\",le=\"%s\"} %llu\n",
                     op, status, le,
                     i < GW_BUCKETS ? cum : atomic_load(&h->count));
        out = eng_gw_append(out, len, cap, line, (size_t)n);
    }
    n = snprintf(line, sizeof line,
                 "signer_gateway_request_seconds_sum{operation=\"%s\","
                 "status=\"%d\"} %.6f\n"
                 "signer_gateway_request_seconds_count{operation=\"%s\","
                 "status=\"%d\"} %llu\n",
                 op, status, (double)atomic_load(&h->sum_us) / 1e6, op, status,
                 atomic_load(&h->count));
    return out ? eng_gw_append(out, len, cap, line, (size_t)n) : NULL;
}

/* The latency histograms with observations. */
static char *hists_text(eng_gateway *g, char *out, size_t *len, size_t *cap)
{
    size_t op, s;
    for (op = 0; op <= ENG_MAX_OP_METRICS && out != NULL; op++)
        for (s = 0; s < GW_N_STATUS && out != NULL; s++) {
            const gw_hist *h = &g->hist[op][s];
            const char *name = op < g->e->reg.n_ops
                                   ? g->e->reg.ops[op].name
                                   : "unknown";
            if (atomic_load(&h->count) == 0)
                continue;
            out = hist_text(out, len, cap, name, gw_statuses[s], h);
        }
    return out;
}

/* The record cache's series (docs/gateway.md, "Record cache"). */
static char *rcache_text(eng_gateway *g, char *out, size_t *len, size_t *cap)
{
    eng_gw_rcache_stats st;
    char line[512];
    int n;
    eng_gw_rcache_stats_get(g->rcache, &st);
    n = snprintf(line, sizeof line,
                 "signer_gateway_record_cache_entries %zu\n"
                 "signer_gateway_record_cache_max_entries %zu\n"
                 "signer_gateway_record_cache_hits_total %llu\n"
                 "signer_gateway_record_cache_misses_total %llu\n"
                 "signer_gateway_record_cache_evictions_total %llu\n",
                 st.entries, st.max_entries, st.hits, st.misses,
                 st.evictions);
    return eng_gw_append(out, len, cap, line, (size_t)n);
}

char *eng_gateway_metrics(eng_gateway *g)
{
    char *out = eng_metrics_text(g->e), line[512];
    size_t len = out ? strlen(out) : 0, cap = len + 1;
    int n = snprintf(line, sizeof line,
                     "# TYPE signer_gateway_build_info gauge\n"
                     "signer_gateway_build_info{version=\"%s\",role=\"gateway\"}"
                     " 1\nsigner_gateway_keystore_errors_total %llu\n"
                     "signer_gateway_credentials_errors_total %llu\n"
                     "signer_gateway_throttled_total %llu\n"
                     "signer_gateway_keys_stored_total %llu\n"
                     "signer_gateway_keystore_ready %d\n"
                     "# TYPE signer_gateway_request_seconds histogram\n",
                     PACKAGE_VERSION, atomic_load(&g->keystore_errors),
                     atomic_load(&g->creds_errors),
                     atomic_load(&g->throttled), atomic_load(&g->stored),
                     eng_keystore_ready(g->e->ks));
    if (out == NULL)
        return NULL;
    out = eng_gw_append(out, &len, &cap, line, (size_t)n);
    if (out != NULL)
        out = hists_text(g, out, &len, &cap);
    if (out != NULL)
        out = rcache_text(g, out, &len, &cap);
    if (out != NULL)
        out = eng_gw_pool_metrics(g->pool, out);
    return out;
}

void eng_gateway_close(eng_gateway *g)
{
    int i;
    if (g == NULL)
        return;
    eng_gw_pool_free(g->pool); /* answers (and queues) what is pending */
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    for (i = 0; i < g->n_storers; i++)
        pthread_join(g->storers[i], NULL);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    eng_aws_creds_chain_free(g->creds);
    eng_gw_rcache_free(g->rcache);
    eng_gw_throttle_free(g->throttle);
    eng_gw_conf_free(&g->conf);
    free(g);
}
