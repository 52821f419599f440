/* The AWS credential chain (see creds.h for the order of the sources).
 * Each source is a function that fills an eng_aws_creds or says it does not
 * apply; the chain caches the first answer until 5 minutes before it
 * expires.  HTTP goes through libcurl with explicit timeouts; every buffer
 * that held a credential is wiped. */
#include "config.h"
#include "creds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "log.h"
#include "util.h"

#define CREDS_REFRESH_MARGIN 300 /* seconds before expiry */
#define CREDS_MAX_RESPONSE 65536
#define CREDS_NOT_APPLICABLE 1   /* a source that is not configured */

struct eng_creds_chain {
    pthread_mutex_t lock;
    char *region;
    long timeout_ms;
    eng_aws_creds cached;
    int have;
};

typedef struct http_buf {
    char *p;
    size_t len;
} http_buf;

static void buf_clear(http_buf *b)
{
    if (b->p != NULL)
        eng_wipe(b->p, b->len);
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

static size_t on_data(char *data, size_t size, size_t n, void *userp)
{
    http_buf *b = userp;
    size_t len = size * n;
    char *grown;
    if (b->len + len > CREDS_MAX_RESPONSE || (grown = malloc(b->len + len + 1)) == NULL)
        return 0;
    if (b->p != NULL)
        memcpy(grown, b->p, b->len);
    memcpy(grown + b->len, data, len);
    grown[b->len + len] = '\0';
    if (b->p != NULL)
        eng_wipe(b->p, b->len);
    free(b->p);
    b->p = grown;
    b->len += len;
    return len;
}

/* One HTTP request: method "GET", "PUT" or "POST" (body may be NULL).
 * SIGNER_OK with the body in *out when the status is 200. */
static int http_call(const eng_creds_chain *c, const char *method,
                     const char *url, struct curl_slist *headers,
                     const char *body, http_buf *out)
{
    CURL *h = curl_easy_init();
    long status = 0;
    CURLcode rc;
    if (h == NULL)
        return SIGNER_ERR_NOMEM;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || status != 200) {
        buf_clear(out);
        return SIGNER_ERR_UNAVAILABLE;
    }
    return out->p != NULL ? SIGNER_OK : SIGNER_ERR_UNAVAILABLE;
}

/* ---- parsing -------------------------------------------------------------- */

/* "2026-11-30T12:34:56Z" (fractions ignored) -> unix seconds, or 0. */
static time_t parse_time(const char *s)
{
    struct tm tm;
    const char *end;
    memset(&tm, 0, sizeof tm);
    if (s == NULL || (end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
        return 0;
    return timegm(&tm);
}

static int copy_str(char *out, size_t cap, const char *v)
{
    if (v == NULL || *v == '\0' || strlen(v) >= cap)
        return SIGNER_ERR_INTERNAL;
    memcpy(out, v, strlen(v) + 1);
    return SIGNER_OK;
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The JSON form of the container endpoint and IMDS. */
static int creds_from_json(eng_aws_creds *out, const char *body)
{
    cJSON *j = cJSON_Parse(body);
    const char *code = json_str(j, "Code");
    int rc = SIGNER_ERR_UNAVAILABLE;
    if (j == NULL || (code != NULL && strcmp(code, "Success") != 0))
        goto cleanup;
    if (copy_str(out->access_key_id, sizeof out->access_key_id, json_str(j, "AccessKeyId")) ||
        copy_str(out->secret_access_key, sizeof out->secret_access_key, json_str(j, "SecretAccessKey")) ||
        copy_str(out->session_token, sizeof out->session_token, json_str(j, "Token")) ||
        (out->expiration = parse_time(json_str(j, "Expiration"))) == 0)
        goto cleanup;
    rc = SIGNER_OK;
cleanup:
    if (j != NULL) {
        /* cJSON frees through the wiping hooks when they are installed;
         * wipe the strings here as well for the tools that do not. */
        for (const cJSON *v = j->child; v != NULL; v = v->next)
            if (cJSON_IsString(v))
                eng_wipe(v->valuestring, strlen(v->valuestring));
        cJSON_Delete(j);
    }
    return rc;
}

/* Copies the text of the first <tag>...</tag> in xml into out. */
static int xml_tag(char *out, size_t cap, const char *xml, const char *tag)
{
    char open[64], close[64];
    const char *a, *b;
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    if ((a = strstr(xml, open)) == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    a += strlen(open);
    if ((b = strstr(a, close)) == NULL || (size_t)(b - a) >= cap || b == a ||
        memchr(a, '&', (size_t)(b - a)) != NULL)
        return SIGNER_ERR_UNAVAILABLE;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return SIGNER_OK;
}

static int creds_from_sts_xml(eng_aws_creds *out, const char *xml)
{
    char expiration[64];
    if (xml_tag(out->access_key_id, sizeof out->access_key_id, xml, "AccessKeyId") ||
        xml_tag(out->secret_access_key, sizeof out->secret_access_key, xml, "SecretAccessKey") ||
        xml_tag(out->session_token, sizeof out->session_token, xml, "SessionToken") ||
        xml_tag(expiration, sizeof expiration, xml, "Expiration") ||
        (out->expiration = parse_time(expiration)) == 0)
        return SIGNER_ERR_UNAVAILABLE;
    return SIGNER_OK;
}

/* ---- sources -------------------------------------------------------------- */

int eng_aws_creds_from_env(void *ctx, eng_aws_creds *out)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    (void)ctx;
    memset(out, 0, sizeof *out);
    if (id == NULL || *id == '\0' || secret == NULL || *secret == '\0')
        return SIGNER_ERR_UNAVAILABLE;
    if (copy_str(out->access_key_id, sizeof out->access_key_id, id) ||
        copy_str(out->secret_access_key, sizeof out->secret_access_key, secret) ||
        (token != NULL && *token != '\0' &&
         copy_str(out->session_token, sizeof out->session_token, token)))
        return SIGNER_ERR_BAD_REQUEST;
    snprintf(out->source, sizeof out->source, "env");
    return SIGNER_OK;
}

static char *read_small_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = calloc(1, 16384);
    size_t n = 0;
    if (f != NULL && buf != NULL)
        n = fread(buf, 1, 16383, f);
    if (f != NULL)
        fclose(f);
    while (buf != NULL && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (buf != NULL && n == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static char *sts_form(const char *role, const char *session, const char *token)
{
    char *r = curl_easy_escape(NULL, role, 0), *s = curl_easy_escape(NULL, session, 0);
    char *t = curl_easy_escape(NULL, token, 0), *form = NULL;
    if (r != NULL && s != NULL && t != NULL) {
        size_t n = strlen(r) + strlen(s) + strlen(t) + 128;
        if ((form = malloc(n)) != NULL)
            snprintf(form, n, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                     "&RoleArn=%s&RoleSessionName=%s&WebIdentityToken=%s", r, s, t);
    }
    if (t != NULL)
        eng_wipe(t, strlen(t));
    curl_free(r);
    curl_free(s);
    curl_free(t);
    return form;
}

static int from_web_identity(eng_creds_chain *c, eng_aws_creds *out)
{
    const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = getenv("AWS_ROLE_ARN");
    const char *session = getenv("AWS_ROLE_SESSION_NAME"), *ep = getenv("AWS_ENDPOINT_URL_STS");
    char url[512], *token = NULL, *form = NULL;
    struct curl_slist *hdr = NULL;
    http_buf b = {0};
    int rc = CREDS_NOT_APPLICABLE;
    if (file == NULL || *file == '\0' || role == NULL || *role == '\0')
        return rc;
    rc = SIGNER_ERR_UNAVAILABLE;
    if ((token = read_small_file(file)) == NULL) {
        eng_log(SIGNER_LOG_ERROR, "credentials: cannot read AWS_WEB_IDENTITY_TOKEN_FILE %s", file);
        goto cleanup;
    }
    snprintf(url, sizeof url, "%s/", ep != NULL ? ep : "");
    if (ep == NULL)
        snprintf(url, sizeof url, "https://sts.%s.amazonaws.com/", c->region);
    form = sts_form(role, session != NULL ? session : "enclave-signer", token);
    hdr = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    if (form != NULL && hdr != NULL && http_call(c, "POST", url, hdr, form, &b) == SIGNER_OK)
        rc = creds_from_sts_xml(out, b.p);
cleanup:
    if (token != NULL)
        eng_wipe(token, strlen(token));
    if (form != NULL)
        eng_wipe(form, strlen(form));
    free(token);
    free(form);
    curl_slist_free_all(hdr);
    buf_clear(&b);
    return rc;
}

/* The Authorization header for the container endpoint, or NULL. */
static struct curl_slist *container_auth(void)
{
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *value = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *token = file != NULL && *file ? read_small_file(file) : NULL;
    char line[16400];
    struct curl_slist *hdr = NULL;
    if (token != NULL)
        value = token;
    if (value != NULL && *value != '\0' && strlen(value) < sizeof line - 32) {
        snprintf(line, sizeof line, "Authorization: %s", value);
        hdr = curl_slist_append(NULL, line);
        eng_wipe(line, sizeof line);
    }
    if (token != NULL) {
        eng_wipe(token, strlen(token));
        free(token);
    }
    return hdr;
}

static int from_container(eng_creds_chain *c, eng_aws_creds *out)
{
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    char url[1024];
    struct curl_slist *hdr;
    http_buf b = {0};
    int rc;
    if (full != NULL && *full != '\0')
        snprintf(url, sizeof url, "%s", full);
    else if (rel != NULL && *rel != '\0')
        snprintf(url, sizeof url, "http://169.254.170.2%s", rel);
    else
        return CREDS_NOT_APPLICABLE;
    hdr = container_auth();
    rc = http_call(c, "GET", url, hdr, NULL, &b);
    if (rc == SIGNER_OK)
        rc = creds_from_json(out, b.p);
    curl_slist_free_all(hdr);
    buf_clear(&b);
    return rc;
}

static int imds_token(eng_creds_chain *c, const char *base, char *out, size_t cap)
{
    char url[600];
    struct curl_slist *hdr = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    http_buf b = {0};
    int rc;
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    rc = hdr != NULL ? http_call(c, "PUT", url, hdr, "", &b) : SIGNER_ERR_NOMEM;
    if (rc == SIGNER_OK)
        rc = copy_str(out, cap, b.p);
    curl_slist_free_all(hdr);
    buf_clear(&b);
    return rc;
}

static int imds_get(eng_creds_chain *c, const char *base, const char *token,
                    const char *path, http_buf *out)
{
    char url[800], line[1100];
    struct curl_slist *hdr;
    int rc;
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, path);
    snprintf(line, sizeof line, "X-aws-ec2-metadata-token: %s", token);
    hdr = curl_slist_append(NULL, line);
    rc = hdr != NULL ? http_call(c, "GET", url, hdr, NULL, out) : SIGNER_ERR_NOMEM;
    eng_wipe(line, sizeof line);
    curl_slist_free_all(hdr);
    return rc;
}

static int from_imds(eng_creds_chain *c, eng_aws_creds *out)
{
    const char *off = getenv("AWS_EC2_METADATA_DISABLED");
    const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char base[512], token[1024] = "", role[256] = "";
    http_buf b = {0};
    int rc;
    if (off != NULL && strcasecmp(off, "true") == 0)
        return CREDS_NOT_APPLICABLE;
    snprintf(base, sizeof base, "%s", ep != NULL && *ep ? ep : "http://169.254.169.254");
    if (base[0] != '\0' && base[strlen(base) - 1] == '/')
        base[strlen(base) - 1] = '\0';
    if ((rc = imds_token(c, base, token, sizeof token)) != SIGNER_OK ||
        (rc = imds_get(c, base, token, "", &b)) != SIGNER_OK)
        goto cleanup;
    rc = sscanf(b.p, "%255[^\n]", role) == 1 ? SIGNER_OK : SIGNER_ERR_UNAVAILABLE;
    buf_clear(&b);
    if (rc == SIGNER_OK && (rc = imds_get(c, base, token, role, &b)) == SIGNER_OK)
        rc = creds_from_json(out, b.p);
cleanup:
    eng_wipe(token, sizeof token);
    buf_clear(&b);
    return rc;
}

/* ---- the chain ------------------------------------------------------------ */

typedef int (*source_fn)(eng_creds_chain *c, eng_aws_creds *out);

static int from_env_source(eng_creds_chain *c, eng_aws_creds *out)
{
    (void)c;
    return eng_aws_creds_from_env(NULL, out) == SIGNER_OK ? SIGNER_OK : CREDS_NOT_APPLICABLE;
}

static const struct {
    const char *name;
    source_fn fn;
} sources[] = {
    {"env", from_env_source},
    {"web-identity", from_web_identity},
    {"container", from_container},
    {"imds", from_imds},
};

static int chain_resolve(eng_creds_chain *c, eng_aws_creds *out)
{
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        int rc;
        memset(out, 0, sizeof *out);
        rc = sources[i].fn(c, out);
        if (rc == SIGNER_OK) {
            snprintf(out->source, sizeof out->source, "%s", sources[i].name);
            return SIGNER_OK;
        }
        eng_wipe(out, sizeof *out);
        if (rc != CREDS_NOT_APPLICABLE) {
            /* A configured source that fails is an error, as in the SDKs:
             * falling through could pick up another role's credentials. */
            eng_log(SIGNER_LOG_ERROR, "credentials: %s source did not answer", sources[i].name);
            return SIGNER_ERR_UNAVAILABLE;
        }
    }
    eng_log(SIGNER_LOG_ERROR, "credentials: no AWS credential source is configured");
    return SIGNER_ERR_UNAVAILABLE;
}

static int still_fresh(const eng_aws_creds *k)
{
    return k->expiration == 0 || k->expiration - time(NULL) > CREDS_REFRESH_MARGIN;
}

int eng_creds_chain_get(void *chain, eng_aws_creds *out)
{
    eng_creds_chain *c = chain;
    int rc = SIGNER_OK;
    pthread_mutex_lock(&c->lock);
    if (!c->have || !still_fresh(&c->cached)) {
        eng_wipe(&c->cached, sizeof c->cached);
        c->have = 0;
        if ((rc = chain_resolve(c, &c->cached)) == SIGNER_OK)
            c->have = 1;
    }
    if (rc == SIGNER_OK)
        *out = c->cached;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

eng_creds_chain *eng_creds_chain_new(const char *region, long timeout_ms)
{
    eng_creds_chain *c = calloc(1, sizeof *c);
    if (c == NULL || eng_curl_global_init() != 0 ||
        (c->region = strdup(region != NULL ? region : "us-east-1")) == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    return c;
}

void eng_creds_chain_free(eng_creds_chain *c)
{
    if (c == NULL)
        return;
    eng_wipe(&c->cached, sizeof c->cached);
    pthread_mutex_destroy(&c->lock);
    free(c->region);
    free(c);
}

/* ---- libcurl set-up ------------------------------------------------------- */

/* libcurl copies credentials and request bodies into its own memory: every
 * block it frees is wiped first. */
static char *wiping_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;

static void curl_setup(void)
{
    curl_ready = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc,
                                      eng_wiping_free, eng_wiping_realloc,
                                      wiping_strdup, calloc) == CURLE_OK;
}

int eng_curl_global_init(void)
{
    pthread_once(&curl_once, curl_setup);
    return curl_ready ? 0 : -1;
}
