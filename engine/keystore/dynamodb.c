/* DynamoDB keystore client.  Each request is one JSON POST signed with
 * SigV4 by libcurl (CURLOPT_AWS_SIGV4): the gateway runs outside the enclave
 * with ordinary networking, so libcurl's connection reuse, TLS verification
 * and timeouts are what we want.  Easy handles are pooled so keep-alive
 * connections are reused across requests and threads.
 *
 * Items: key_id (S, partition key), ciphertext (S, base64 of the sealed
 * blob), address (S), chain (S), format (S), created_at (S, RFC 3339).  The
 * reference wallet's items have only the first three: they read back as
 * chain "eth", format "reference". */
#include "config.h"
#include "dynamodb.h"

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "aws/creds.h"
#include "aws/curl.h"
#include "keystore.h"
#include "log.h"
#include "util.h"

#define DDB_POOL 16
#define DDB_MAX_RESPONSE (1u << 20)
#define DDB_TARGET_PREFIX "DynamoDB_20120810."

struct eng_ddb {
    char *table, *region, *url, *ca_file;
    char sigv4[96];
    long timeout_ms;
    int max_attempts;
    eng_aws_creds_fn creds;
    void *creds_ctx;
    pthread_mutex_t lock; /* pool and stats */
    CURL *pool[DDB_POOL];
    int n_pool;
    eng_ddb_stats stats;
};

/* What one attempt came back with. */
typedef struct ddb_answer {
    long status;       /* HTTP status, 0 when no answer */
    char *body;        /* NUL-terminated, malloc'd */
    size_t len;
    char type[96];     /* error __type after '#', "" if none */
    char curl_err[CURL_ERROR_SIZE];
} ddb_answer;

/* ---- handle pool ---------------------------------------------------------- */

static CURL *pool_take(eng_ddb *d)
{
    CURL *h = NULL;
    pthread_mutex_lock(&d->lock);
    if (d->n_pool > 0)
        h = d->pool[--d->n_pool];
    pthread_mutex_unlock(&d->lock);
    return h != NULL ? h : curl_easy_init();
}

static void pool_give(eng_ddb *d, CURL *h)
{
    pthread_mutex_lock(&d->lock);
    if (d->n_pool < DDB_POOL) {
        d->pool[d->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    if (h != NULL)
        curl_easy_cleanup(h);
}

static void stats_add(eng_ddb *d, unsigned long long *counter)
{
    pthread_mutex_lock(&d->lock);
    (*counter)++;
    pthread_mutex_unlock(&d->lock);
}

/* ---- one HTTP attempt ----------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    ddb_answer *a = userp;
    size_t len = size * n;
    char *grown;
    if (a->len + len > DDB_MAX_RESPONSE)
        return 0; /* aborts the transfer */
    grown = realloc(a->body, a->len + len + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + a->len, data, len);
    a->body = grown;
    a->len += len;
    a->body[a->len] = '\0';
    return len;
}

static struct curl_slist *request_headers(const char *op,
                                          const eng_aws_creds *c)
{
    struct curl_slist *h = NULL, *next;
    char line[sizeof c->session_token + 32];
    /* Only add headers: libcurl 7.88 signs a header removed with "Name:"
     * although it does not send it, which AWS would refuse. */
    const char *fixed[] = {"Content-Type: application/x-amz-json-1.0"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if ((next = curl_slist_append(h, fixed[i])) == NULL)
            goto fail;
        h = next;
    }
    snprintf(line, sizeof line, "X-Amz-Target: " DDB_TARGET_PREFIX "%s", op);
    if ((next = curl_slist_append(h, line)) == NULL)
        goto fail;
    h = next;
    if (c->session_token[0] != '\0') {
        snprintf(line, sizeof line, "X-Amz-Security-Token: %s",
                 c->session_token);
        next = curl_slist_append(h, line);
        eng_wipe(line, sizeof line);
        if (next == NULL)
            goto fail;
        h = next;
    }
    return h;
fail:
    curl_slist_free_all(h);
    return NULL;
}

static void set_options(eng_ddb *d, CURL *h, const eng_aws_creds *c,
                        struct curl_slist *hdr, const char *body,
                        ddb_answer *a)
{
    curl_easy_setopt(h, CURLOPT_URL, d->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, d->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key_id);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_access_key);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (d->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, d->ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->curl_err);
}

/* Copies the error name of a DynamoDB error body ("prefix#Name") into
 * a->type. */
static void answer_error_type(ddb_answer *a)
{
    cJSON *j = a->body != NULL ? cJSON_Parse(a->body) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
    if (cJSON_IsString(t)) {
        const char *name = strrchr(t->valuestring, '#');
        name = name != NULL ? name + 1 : t->valuestring;
        snprintf(a->type, sizeof a->type, "%s", name);
    }
    cJSON_Delete(j);
}

static void answer_clear(ddb_answer *a)
{
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* One signed POST.  SIGNER_OK when an HTTP answer arrived (any status). */
static int attempt(eng_ddb *d, const char *op, const char *body,
                   ddb_answer *a)
{
    eng_aws_creds c;
    struct curl_slist *hdr = NULL;
    CURL *h = NULL;
    int rc = d->creds(d->creds_ctx, &c);
    if (rc != SIGNER_OK) {
        snprintf(a->curl_err, sizeof a->curl_err, "no AWS credentials");
        goto cleanup;
    }
    rc = SIGNER_ERR_NOMEM;
    if ((hdr = request_headers(op, &c)) == NULL || (h = pool_take(d)) == NULL)
        goto cleanup;
    curl_easy_reset(h);
    set_options(d, h, &c, hdr, body, a);
    rc = curl_easy_perform(h) == CURLE_OK ? SIGNER_OK : SIGNER_ERR_UNAVAILABLE;
    if (rc == SIGNER_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
        if (a->status != 200)
            answer_error_type(a);
    }
    /* libcurl keeps copies of the credentials in the handle: drop them. */
    curl_easy_setopt(h, CURLOPT_USERNAME, "");
    curl_easy_setopt(h, CURLOPT_PASSWORD, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    pool_give(d, h);
cleanup:
    curl_slist_free_all(hdr);
    eng_aws_creds_wipe(&c);
    return rc;
}

/* ---- retries -------------------------------------------------------------- */

static int is_throttle(const char *type)
{
    return strcmp(type, "ProvisionedThroughputExceededException") == 0 ||
           strcmp(type, "ThrottlingException") == 0 ||
           strcmp(type, "RequestLimitExceeded") == 0;
}

/* 1 when the attempt should be repeated: no answer, throttled, or 5xx. */
static int retryable(eng_ddb *d, int rc, const ddb_answer *a)
{
    if (rc != SIGNER_OK)
        return 1;
    if (a->status == 400 && is_throttle(a->type)) {
        stats_add(d, &d->stats.throttled);
        return 1;
    }
    return a->status >= 500;
}

/* Exponential backoff with full jitter: up to 25 ms, 50 ms, 100 ms ... */
static void backoff(int attempt_no)
{
    unsigned char r[2];
    long cap_ms = 25L << (attempt_no < 6 ? attempt_no : 6);
    long ms = 1;
    if (eng_random(r, sizeof r) == 0)
        ms = 1 + (long)((r[0] << 8 | r[1]) % (unsigned long)cap_ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void log_failure(const char *op, int rc, const ddb_answer *a)
{
    if (rc != SIGNER_OK)
        eng_log(SIGNER_LOG_ERROR, "keystore dynamodb %s: %s", op,
                a->curl_err[0] ? a->curl_err : "request failed");
    else
        eng_log(SIGNER_LOG_ERROR, "keystore dynamodb %s: HTTP %ld %s", op,
                a->status, a->type[0] ? a->type : "");
}

/* Runs op with retries.  SIGNER_OK with *a holding a 200 answer; else a
 * negative signer_err: CONFLICT (condition failed), UNAVAILABLE (throttled,
 * 5xx or unreachable after the retries), INTERNAL (anything else). */
static int call(eng_ddb *d, const char *op, const char *body, ddb_answer *a)
{
    int rc = SIGNER_ERR_UNAVAILABLE;
    for (int n = 0; n < d->max_attempts; n++) {
        if (n > 0) {
            stats_add(d, &d->stats.retries);
            backoff(n);
        }
        answer_clear(a);
        stats_add(d, &d->stats.requests);
        rc = attempt(d, op, body, a);
        if (!retryable(d, rc, a))
            break;
    }
    if (rc == SIGNER_OK && a->status == 200)
        return SIGNER_OK;
    if (rc == SIGNER_OK && strcmp(a->type, "ConditionalCheckFailedException") == 0)
        return SIGNER_ERR_CONFLICT;
    stats_add(d, &d->stats.errors);
    log_failure(op, rc, a);
    if (rc != SIGNER_OK || a->status >= 500 || is_throttle(a->type))
        return SIGNER_ERR_UNAVAILABLE;
    return SIGNER_ERR_INTERNAL;
}

/* ---- items ---------------------------------------------------------------- */

static int add_s(cJSON *item, const char *name, const char *value)
{
    cJSON *attr = cJSON_CreateObject();
    if (attr == NULL || cJSON_AddStringToObject(attr, "S", value) == NULL ||
        !cJSON_AddItemToObject(item, name, attr)) {
        cJSON_Delete(attr);
        return SIGNER_ERR_NOMEM;
    }
    return SIGNER_OK;
}

static char *base64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* Decodes padded base64; NULL if malformed. */
static unsigned char *base64_decode(const char *in, size_t *out_len)
{
    size_t len = strlen(in), pad = 0;
    unsigned char *out;
    int n;
    if (len == 0 || len % 4 != 0 || len > DDB_MAX_RESPONSE)
        return NULL;
    pad = (in[len - 1] == '=') + (in[len - 2] == '=');
    if ((out = malloc(len / 4 * 3 + 1)) == NULL)
        return NULL;
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n - pad;
    return out;
}

static void rfc3339_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int item_fill(cJSON *item, const signer_key_meta *meta,
                     const char *format, const char *b64)
{
    char created[32];
    rfc3339_now(created);
    if (add_s(item, "key_id", meta->key_id) || add_s(item, "ciphertext", b64) ||
        add_s(item, "address", meta->address) ||
        add_s(item, "chain", meta->chain) || add_s(item, "format", format) ||
        add_s(item, "created_at", created))
        return SIGNER_ERR_NOMEM;
    return SIGNER_OK;
}

static char *put_body(const char *table, const signer_key_meta *meta,
                      const char *format, const char *b64)
{
    cJSON *req = cJSON_CreateObject(), *item = cJSON_CreateObject();
    char *body = NULL;
    if (req == NULL || item == NULL ||
        cJSON_AddStringToObject(req, "TableName", table) == NULL ||
        item_fill(item, meta, format, b64) != SIGNER_OK ||
        !cJSON_AddItemToObject(req, "Item", item)) {
        cJSON_Delete(item);
        goto cleanup;
    }
    if (cJSON_AddStringToObject(req, "ConditionExpression",
                                "attribute_not_exists(key_id)") != NULL)
        body = cJSON_PrintUnformatted(req);
cleanup:
    cJSON_Delete(req);
    return body;
}

int eng_ddb_put(eng_ddb *d, const signer_key_meta *meta, const char *format,
                const unsigned char *blob, size_t blob_len)
{
    ddb_answer a = {0};
    char *b64 = NULL, *body = NULL;
    int rc = SIGNER_ERR_NOMEM;
    if ((b64 = base64_encode(blob, blob_len)) == NULL ||
        (body = put_body(d->table, meta, format, b64)) == NULL)
        goto cleanup;
    rc = call(d, "PutItem", body, &a);
cleanup:
    answer_clear(&a);
    free(body);
    free(b64);
    return rc;
}

/* The string value of attribute name of item, or NULL. */
static const char *item_s(const cJSON *item, const char *name)
{
    const cJSON *attr = cJSON_GetObjectItemCaseSensitive(item, name);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(attr, "S");
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static int copy_field(char *out, size_t cap, const char *value,
                      const char *fallback)
{
    const char *v = value != NULL ? value : fallback;
    if (v == NULL || strlen(v) >= cap)
        return SIGNER_ERR_INTERNAL;
    memcpy(out, v, strlen(v) + 1);
    return SIGNER_OK;
}

static int record_from_item(eng_ddb_record *rec, const cJSON *item,
                            const char *key_id)
{
    const char *b64 = item_s(item, "ciphertext");
    if (b64 == NULL ||
        copy_field(rec->address, sizeof rec->address, item_s(item, "address"), NULL) ||
        copy_field(rec->chain, sizeof rec->chain, item_s(item, "chain"), "eth") ||
        copy_field(rec->format, sizeof rec->format, item_s(item, "format"),
                   item_s(item, "chain") == NULL ? "reference" : NULL) ||
        (rec->blob = base64_decode(b64, &rec->blob_len)) == NULL) {
        eng_log(SIGNER_LOG_ERROR, "keystore dynamodb: item %s is malformed",
                key_id);
        return SIGNER_ERR_INTERNAL;
    }
    return SIGNER_OK;
}

static char *get_body(const char *table, const char *key_id)
{
    cJSON *req = cJSON_CreateObject(), *key = cJSON_CreateObject();
    char *body = NULL;
    if (req == NULL || key == NULL || add_s(key, "key_id", key_id) ||
        cJSON_AddStringToObject(req, "TableName", table) == NULL ||
        !cJSON_AddItemToObject(req, "Key", key)) {
        cJSON_Delete(key);
        goto cleanup;
    }
    if (cJSON_AddTrueToObject(req, "ConsistentRead") != NULL)
        body = cJSON_PrintUnformatted(req);
cleanup:
    cJSON_Delete(req);
    return body;
}

int eng_ddb_get(eng_ddb *d, eng_ddb_record *rec, const char *key_id)
{
    ddb_answer a = {0};
    cJSON *resp = NULL;
    const cJSON *item;
    char *body = get_body(d->table, key_id);
    int rc = SIGNER_ERR_NOMEM;
    memset(rec, 0, sizeof *rec);
    if (body == NULL)
        goto cleanup;
    if ((rc = call(d, "GetItem", body, &a)) != SIGNER_OK)
        goto cleanup;
    rc = SIGNER_ERR_INTERNAL;
    if ((resp = cJSON_Parse(a.body)) == NULL)
        goto cleanup;
    item = cJSON_GetObjectItemCaseSensitive(resp, "Item");
    rc = item == NULL ? SIGNER_ERR_NOT_FOUND
                      : record_from_item(rec, item, key_id);
cleanup:
    if (rc != SIGNER_OK)
        eng_ddb_record_clear(rec);
    cJSON_Delete(resp);
    answer_clear(&a);
    free(body);
    return rc;
}

void eng_ddb_record_clear(eng_ddb_record *rec)
{
    free(rec->blob);
    memset(rec, 0, sizeof *rec);
}

/* ---- scanning ------------------------------------------------------------- */

static char *scan_body(const char *table, const cJSON *start)
{
    cJSON *req = cJSON_CreateObject();
    char *body = NULL;
    if (req == NULL || cJSON_AddStringToObject(req, "TableName", table) == NULL ||
        cJSON_AddStringToObject(req, "ProjectionExpression", "key_id") == NULL ||
        cJSON_AddNumberToObject(req, "Limit", 50) == NULL)
        goto cleanup;
    if (start != NULL && !cJSON_AddItemToObject(req, "ExclusiveStartKey",
                                                cJSON_Duplicate(start, 1)))
        goto cleanup;
    body = cJSON_PrintUnformatted(req);
cleanup:
    cJSON_Delete(req);
    return body;
}

/* The first key_id of a page that is not a meta item; SIGNER_OK, or
 * SIGNER_ERR_NOT_FOUND with *next set to the page's LastEvaluatedKey. */
static int scan_page_pick(const cJSON *resp, char *key_id, size_t cap,
                          const cJSON **next)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(resp, "Items")) {
        const char *id = item_s(item, "key_id");
        if (id != NULL && strncmp(id, "meta:", 5) != 0 && strlen(id) < cap) {
            strcpy(key_id, id);
            return SIGNER_OK;
        }
    }
    *next = cJSON_GetObjectItemCaseSensitive(resp, "LastEvaluatedKey");
    return SIGNER_ERR_NOT_FOUND;
}

int eng_ddb_any_key_id(eng_ddb *d, char *key_id, size_t cap)
{
    cJSON *resp = NULL, *start = NULL;
    int rc = SIGNER_ERR_NOT_FOUND;
    for (int page = 0; page < 20 && rc == SIGNER_ERR_NOT_FOUND; page++) {
        ddb_answer a = {0};
        const cJSON *next = NULL;
        char *body = scan_body(d->table, start);
        rc = body != NULL ? call(d, "Scan", body, &a) : SIGNER_ERR_NOMEM;
        free(body);
        if (rc == SIGNER_OK)
            rc = (resp = cJSON_Parse(a.body)) != NULL
                     ? scan_page_pick(resp, key_id, cap, &next)
                     : SIGNER_ERR_INTERNAL;
        answer_clear(&a);
        cJSON_Delete(start);
        start = next != NULL ? cJSON_Duplicate(next, 1) : NULL;
        cJSON_Delete(resp);
        resp = NULL;
        if (rc == SIGNER_ERR_NOT_FOUND && start == NULL)
            break;
    }
    cJSON_Delete(start);
    return rc;
}

/* ---- table ---------------------------------------------------------------- */

/* The table's status ("ACTIVE", "CREATING" ...) into out; SIGNER_OK. */
static int table_status(eng_ddb *d, char *out, size_t cap)
{
    ddb_answer a = {0};
    cJSON *resp = NULL;
    char body[600];
    int rc;
    snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", d->table);
    if ((rc = call(d, "DescribeTable", body, &a)) == SIGNER_OK) {
        const cJSON *t, *s;
        resp = cJSON_Parse(a.body);
        t = cJSON_GetObjectItemCaseSensitive(resp, "Table");
        s = cJSON_GetObjectItemCaseSensitive(t, "TableStatus");
        rc = cJSON_IsString(s) && strlen(s->valuestring) < cap
                 ? SIGNER_OK : SIGNER_ERR_INTERNAL;
        if (rc == SIGNER_OK)
            strcpy(out, s->valuestring);
    }
    cJSON_Delete(resp);
    answer_clear(&a);
    return rc;
}

int eng_ddb_ready(eng_ddb *d)
{
    char status[32];
    return table_status(d, status, sizeof status) == SIGNER_OK &&
           strcmp(status, "ACTIVE") == 0;
}

static const char create_fmt[] =
    "{\"TableName\":\"%s\","
    "\"AttributeDefinitions\":[{\"AttributeName\":\"key_id\",\"AttributeType\":\"S\"}],"
    "\"KeySchema\":[{\"AttributeName\":\"key_id\",\"KeyType\":\"HASH\"}],"
    "\"BillingMode\":\"PAY_PER_REQUEST\"}";

static int wait_active(eng_ddb *d, long wait_ms)
{
    char status[32] = "";
    for (long waited = 0; waited <= wait_ms; waited += 100) {
        if (table_status(d, status, sizeof status) == SIGNER_OK &&
            strcmp(status, "ACTIVE") == 0)
            return SIGNER_OK;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return SIGNER_ERR_UNAVAILABLE;
}

/* Point-in-time recovery, so the table can be restored to any second of the
 * last 35 days.  A server that does not offer it (dynalite) gets a warning. */
static void enable_pitr(eng_ddb *d)
{
    ddb_answer a = {0};
    char body[600];
    snprintf(body, sizeof body,
             "{\"TableName\":\"%s\",\"PointInTimeRecoverySpecification\":"
             "{\"PointInTimeRecoveryEnabled\":true}}", d->table);
    if (call(d, "UpdateContinuousBackups", body, &a) != SIGNER_OK)
        eng_log(SIGNER_LOG_WARN, "keystore dynamodb: point-in-time recovery "
                "not enabled on %s; enable it before storing keys", d->table);
    answer_clear(&a);
}

int eng_ddb_create_table(eng_ddb *d, long wait_ms, char *err, size_t err_len)
{
    ddb_answer a = {0};
    char body[sizeof create_fmt + 256];
    int rc;
    snprintf(body, sizeof body, create_fmt, d->table);
    rc = call(d, "CreateTable", body, &a);
    if (rc == SIGNER_ERR_INTERNAL && strcmp(a.type, "ResourceInUseException") == 0)
        rc = SIGNER_OK; /* exists already */
    if (rc != SIGNER_OK)
        snprintf(err, err_len, "CreateTable %s: %s", d->table,
                 a.type[0] ? a.type : (a.curl_err[0] ? a.curl_err : "failed"));
    else if ((rc = wait_active(d, wait_ms)) != SIGNER_OK)
        snprintf(err, err_len, "table %s did not become ACTIVE within %ld ms",
                 d->table, wait_ms);
    else
        enable_pitr(d);
    answer_clear(&a);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int valid_name(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' ||
              (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

static int ddb_url(eng_ddb *d, const eng_ddb_config *cfg)
{
    size_t n;
    if (cfg->endpoint != NULL) {
        d->url = strdup(cfg->endpoint);
        return d->url != NULL ? 0 : -1;
    }
    n = strlen(cfg->region) + 48;
    if ((d->url = malloc(n)) == NULL)
        return -1;
    snprintf(d->url, n, "https://dynamodb.%s.amazonaws.com/", cfg->region);
    return 0;
}

eng_ddb *eng_ddb_open(const eng_ddb_config *cfg, eng_aws_creds_fn creds,
                      void *creds_ctx, char *err, size_t err_len)
{
    eng_ddb *d;
    if (!valid_name(cfg->table, 255) || !valid_name(cfg->region, 32)) {
        snprintf(err, err_len, "dynamodb: table and region must be set "
                 "(letters, digits, '-', '_', '.')");
        return NULL;
    }
    if (eng_curl_global_init() != 0 || (d = calloc(1, sizeof *d)) == NULL) {
        free(d);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    d->table = strdup(cfg->table);
    d->region = strdup(cfg->region);
    d->ca_file = cfg->ca_file != NULL ? strdup(cfg->ca_file) : NULL;
    snprintf(d->sigv4, sizeof d->sigv4, "aws:amz:%s:dynamodb", cfg->region);
    d->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000;
    d->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
    d->creds = creds;
    d->creds_ctx = creds_ctx;
    if (ddb_url(d, cfg) != 0 || d->table == NULL || d->region == NULL ||
        (cfg->ca_file != NULL && d->ca_file == NULL)) {
        eng_ddb_close(d);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    return d;
}

void eng_ddb_stats_get(eng_ddb *d, eng_ddb_stats *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->stats;
    pthread_mutex_unlock(&d->lock);
}

void eng_ddb_close(eng_ddb *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < d->n_pool; i++)
        curl_easy_cleanup(d->pool[i]);
    pthread_mutex_destroy(&d->lock);
    free(d->table);
    free(d->region);
    free(d->url);
    free(d->ca_file);
    free(d);
}

/* ---- the "dynamodb" keystore row ------------------------------------------ */

/* Items that are not keys (the sealer's check value) live under key_ids
 * with this prefix; a key_id is a UUID, so they cannot collide. */
#define DDB_META_PREFIX "meta:"

typedef struct ddb_row {
    eng_ddb *d;
    eng_aws_creds_chain *creds;
    pthread_mutex_t lock;
    uint64_t ready_at_us; /* when ready_cached was measured */
    int ready_cached;
} ddb_row;

/* eng_aws_creds_fn over the AWS credential chain; the cause is logged. */
static int row_creds(void *ctx, eng_aws_creds *out)
{
    char source[16], err[256];
    int rc = eng_aws_creds_chain_get(ctx, out, source, sizeof source, err,
                                     sizeof err);
    if (rc != SIGNER_OK) {
        eng_log(SIGNER_LOG_ERROR, "keystore dynamodb: no AWS credentials: %s",
                err[0] ? err : "no source configured");
        return SIGNER_ERR_UNAVAILABLE;
    }
    return SIGNER_OK;
}

static const char *const ddb_settings[] = {"table", "region", "endpoint",
                                           "ca_file", "timeout_ms",
                                           "max_attempts", NULL};

static int row_open(void **state, const eng_backend_args *args, char *err,
                    size_t err_len)
{
    ddb_row *r = calloc(1, sizeof *r);
    eng_ddb_config cfg = {
        .table = eng_backend_setting(args, "table", NULL),
        .region = eng_backend_setting(args, "region", NULL),
        .endpoint = eng_backend_setting(args, "endpoint", NULL),
        .ca_file = eng_backend_setting(args, "ca_file", NULL),
        .timeout_ms = atol(eng_backend_setting(args, "timeout_ms", "0")),
        .max_attempts = atoi(eng_backend_setting(args, "max_attempts", "0"))};
    if (r == NULL || (r->creds = eng_aws_creds_chain_new(cfg.region, 0)) == NULL) {
        free(r);
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    if ((r->d = eng_ddb_open(&cfg, row_creds, r->creds, err, err_len)) == NULL) {
        eng_aws_creds_chain_free(r->creds);
        free(r);
        return SIGNER_ERR_CONFIG;
    }
    pthread_mutex_init(&r->lock, NULL);
    *state = r;
    return SIGNER_OK;
}

static int row_put(void *state, const signer_key_meta *meta,
                   const unsigned char *blob, size_t blob_len)
{
    return eng_ddb_put(((ddb_row *)state)->d, meta, "signer-v1", blob, blob_len);
}

static int row_get(void *state, char *chain, size_t chain_cap, char *address,
                   size_t address_cap, unsigned char **blob, size_t *blob_len,
                   const char *key_id)
{
    eng_ddb_record rec;
    int rc;
    if (strncmp(key_id, DDB_META_PREFIX, strlen(DDB_META_PREFIX)) == 0)
        return SIGNER_ERR_NOT_FOUND;
    if ((rc = eng_ddb_get(((ddb_row *)state)->d, &rec, key_id)) != SIGNER_OK)
        return rc;
    if (strlen(rec.chain) >= chain_cap || strlen(rec.address) >= address_cap) {
        eng_ddb_record_clear(&rec);
        return SIGNER_ERR_TOO_LARGE;
    }
    strcpy(chain, rec.chain);
    strcpy(address, rec.address);
    *blob = rec.blob;
    *blob_len = rec.blob_len;
    rec.blob = NULL;
    eng_ddb_record_clear(&rec);
    return SIGNER_OK;
}

/* Counting a DynamoDB table needs a full Scan: not done. */
static long long row_count(void *state)
{
    (void)state;
    return -1;
}

static int row_any_key_id(void *state, char *key_id, size_t cap)
{
    return eng_ddb_any_key_id(((ddb_row *)state)->d, key_id, cap);
}

static int row_meta_get(void *state, unsigned char *value, size_t cap,
                        size_t *len, const char *name)
{
    char id[96];
    eng_ddb_record rec;
    int rc;
    snprintf(id, sizeof id, DDB_META_PREFIX "%s", name);
    if ((rc = eng_ddb_get(((ddb_row *)state)->d, &rec, id)) != SIGNER_OK)
        return rc;
    rc = rec.blob_len > cap ? SIGNER_ERR_TOO_LARGE : SIGNER_OK;
    if (rc == SIGNER_OK) {
        memcpy(value, rec.blob, rec.blob_len);
        *len = rec.blob_len;
    }
    eng_ddb_record_clear(&rec);
    return rc;
}

static int row_meta_put(void *state, const char *name,
                        const unsigned char *value, size_t len)
{
    char id[96];
    signer_key_meta meta = {id, "meta", "-"};
    snprintf(id, sizeof id, DDB_META_PREFIX "%s", name);
    return eng_ddb_put(((ddb_row *)state)->d, &meta, "meta", value, len);
}

/* /readyz may be polled often: DescribeTable at most once a second. */
static int row_ready(void *state)
{
    ddb_row *r = state;
    uint64_t now = eng_now_us();
    int ready;
    pthread_mutex_lock(&r->lock);
    if (r->ready_at_us == 0 || now - r->ready_at_us > 1000000) {
        r->ready_cached = eng_ddb_ready(r->d);
        r->ready_at_us = eng_now_us();
    }
    ready = r->ready_cached;
    pthread_mutex_unlock(&r->lock);
    return ready;
}

static void row_describe(void *state, char *out, size_t out_len)
{
    eng_ddb *d = ((ddb_row *)state)->d;
    snprintf(out, out_len, "keystore dynamodb table %s at %s", d->table, d->url);
}

static void row_close(void *state)
{
    ddb_row *r = state;
    if (r == NULL)
        return;
    eng_ddb_close(r->d);
    eng_aws_creds_chain_free(r->creds);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const eng_keystore_methods eng_keystore_dynamodb = {
    {"dynamodb", ddb_settings, row_open},
    row_put,
    row_get,      row_count,    row_any_key_id, row_meta_get,
    row_meta_put, row_ready,    row_describe, row_close};
