/* The AWS credentials chain for the gateway (see creds.h, docs/aws.md). */
#include "config.h"
#include "aws/creds.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signer/plugin.h>

#include "aws/buf.h"
#include "aws/curl.h"
#include "util.h"

#define CREDS_BODY_MAX 65536
#define IMDS_DEFAULT "http://169.254.169.254"
#define CONTAINER_HOST "http://169.254.170.2"

struct eng_aws_creds_chain {
    pthread_mutex_t lock;
    char region[64];
    int margin;
    eng_aws_creds cached;
    char source[16];
};

long long eng_aws_parse_time(const char *iso)
{
    struct tm tm;
    int n = 0;

    memset(&tm, 0, sizeof tm);
    if (iso == NULL ||
        sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    iso += n;
    if (*iso == '.')
        while (isdigit((unsigned char)*++iso))
            ;
    if (strcmp(iso, "Z") != 0 && strcmp(iso, "+00:00") != 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

static int set_err(char *err, size_t cap, int rc, const char *what)
{
    if (err != NULL && cap > 0)
        snprintf(err, cap, "%s", what);
    return rc;
}

/* One HTTP exchange through libcurl: method ("GET", "PUT", "POST"), extra
 * headers, optional body; the answer into out.  SIGNER_OK with *status, or
 * SIGNER_ERR_UNAVAILABLE when nothing came back. */
static int http_fetch(eng_aws_buf *out, long *status, const char *method,
                      const char *url, struct curl_slist *hdrs,
                      const char *body, long timeout_ms)
{
    eng_curl_sink sink = {out, CREDS_BODY_MAX, 0};
    CURL *c = eng_curl_new(url, hdrs, timeout_ms, &sink);
    CURLcode cc;

    *status = 0;
    if (c == NULL)
        return SIGNER_ERR_NOMEM;
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else if (strcmp(method, "PUT") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return cc == CURLE_OK ? SIGNER_OK : SIGNER_ERR_UNAVAILABLE;
}

/* Fills out from the strings of a credentials answer. */
static int creds_fill(eng_aws_creds *out, const char *akid,
                      const char *secret, const char *token,
                      const char *expiration, char *err, size_t cap)
{
    long long exp = 0;

    if (expiration != NULL && (exp = eng_aws_parse_time(expiration)) < 0)
        return set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                       "credentials answer: bad Expiration");
    if (eng_aws_creds_set(out, akid, secret, token, exp) != SIGNER_OK)
        return set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                       "credentials answer: missing or oversized fields");
    return SIGNER_OK;
}

/* The JSON shape shared by the container endpoint and IMDS. */
static int creds_from_json(eng_aws_creds *out, const char *json,
                           const char *token_field, char *err, size_t cap)
{
    cJSON *o = cJSON_Parse(json);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "AccessKeyId");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "SecretAccessKey");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, token_field);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "Expiration");
    int rc;

    if (!cJSON_IsString(a) || !cJSON_IsString(s))
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                     "credentials answer is not the expected JSON");
    else
        rc = creds_fill(out, a->valuestring, s->valuestring,
                        cJSON_IsString(t) ? t->valuestring : NULL,
                        cJSON_IsString(e) ? e->valuestring : NULL, err, cap);
    cJSON_Delete(o);
    return rc;
}

int eng_aws_creds_from_env(eng_aws_creds *out, char *err, size_t cap)
{
    const char *a = getenv("AWS_ACCESS_KEY_ID");
    const char *s = getenv("AWS_SECRET_ACCESS_KEY");
    const char *t = getenv("AWS_SESSION_TOKEN");

    memset(out, 0, sizeof *out);
    if (a == NULL || s == NULL || a[0] == '\0' || s[0] == '\0')
        return SIGNER_ERR_NOT_FOUND;
    return creds_fill(out, a, s, t && t[0] ? t : NULL,
                      getenv("AWS_CREDENTIAL_EXPIRATION"), err, cap);
}

/* Reads a small token file (trailing whitespace trimmed) into out. */
static int read_token_file(eng_aws_buf *out, const char *path)
{
    FILE *f = fopen(path, "r");
    char chunk[512];
    size_t n;

    if (f == NULL)
        return -1;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 &&
           out->len + n <= CREDS_BODY_MAX)
        eng_aws_buf_add(out, chunk, n);
    fclose(f);
    eng_wipe(chunk, sizeof chunk);
    while (out->len > 0 && isspace((unsigned char)out->p[out->len - 1]))
        out->p[--out->len] = '\0';
    return out->err || out->len == 0 ? -1 : 0;
}

/* The SDKs accept a plain-http full URI only for loopback and the ECS /
 * EKS Pod Identity agent addresses. */
static int container_url_allowed(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        ok = strcmp(scheme, "https") == 0 ||
             strncmp(host, "127.", 4) == 0 ||
             strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
             strcmp(host, "169.254.170.2") == 0 ||
             strcmp(host, "169.254.170.23") == 0 ||
             strcasecmp(host, "[fd00:ec2::23]") == 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* "Authorization: <token>" from _TOKEN_FILE (preferred) or _TOKEN. */
static int container_auth(eng_aws_buf *hdr, char *err, size_t cap)
{
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    eng_aws_buf t = { 0 };

    if (file != NULL && file[0] != '\0') {
        if (read_token_file(&t, file) != 0) {
            eng_aws_buf_free(&t);
            return set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                           "container credentials: cannot read "
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        }
        tok = t.p;
    }
    if (tok != NULL && tok[0] != '\0')
        eng_aws_buf_fmt(hdr, "Authorization: %s", tok);
    eng_aws_buf_free(&t);
    return hdr->err ? SIGNER_ERR_NOMEM : SIGNER_OK;
}

int eng_aws_creds_from_container(eng_aws_creds *out, char *err, size_t cap)
{
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    eng_aws_buf url = { 0 }, auth = { 0 }, body = { 0 };
    struct curl_slist *h = NULL;
    long status;
    int rc;

    memset(out, 0, sizeof *out);
    if (rel != NULL && rel[0] != '\0')
        eng_aws_buf_fmt(&url, CONTAINER_HOST "%s", rel);
    else if (full != NULL && full[0] != '\0')
        eng_aws_buf_str(&url, full);
    else
        return SIGNER_ERR_NOT_FOUND;
    if (url.err || !container_url_allowed(url.p)) {
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE, "container "
                     "credentials: the endpoint must be https, loopback or "
                     "the ECS/EKS agent address");
        goto cleanup;
    }
    if ((rc = container_auth(&auth, err, cap)) != SIGNER_OK)
        goto cleanup;
    if (auth.len > 0)
        h = curl_slist_append(NULL, auth.p);
    rc = http_fetch(&body, &status, "GET", url.p, h, NULL, 3000);
    if (rc != SIGNER_OK || status != 200 || body.p == NULL)
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE, "container "
                     "credentials endpoint failed or refused the token");
    else
        rc = creds_from_json(out, body.p, "Token", err, cap);
cleanup:
    if (h != NULL)
        eng_wipe(h->data, strlen(h->data));
    curl_slist_free_all(h);
    eng_aws_buf_free(&url);
    eng_aws_buf_free(&auth);
    eng_aws_buf_free(&body);
    return rc;
}

/* Text of <tag>...</tag> in xml into a malloc'd string (NULL if absent or
 * holding an entity: credentials never need one). */
static char *xml_tag(const char *xml, const char *tag)
{
    char open[64], close[64];
    const char *a, *b;
    char *s;

    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    if (xml == NULL || (a = strstr(xml, open)) == NULL)
        return NULL;
    a += strlen(open);
    if ((b = strstr(a, close)) == NULL || memchr(a, '&', (size_t)(b - a)))
        return NULL;
    if ((s = malloc((size_t)(b - a) + 1)) == NULL)
        return NULL;
    memcpy(s, a, (size_t)(b - a));
    s[b - a] = '\0';
    return s;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        eng_wipe(s, strlen(s));
        free(s);
    }
}

/* AssumeRoleWithWebIdentity form body (values URL-escaped). */
static int sts_body(eng_aws_buf *b, const char *role, const char *session,
                    const char *token)
{
    char *r = curl_easy_escape(NULL, role, 0);
    char *s = curl_easy_escape(NULL, session, 0);
    char *t = curl_easy_escape(NULL, token, 0);

    if (r && s && t)
        eng_aws_buf_fmt(b, "Action=AssumeRoleWithWebIdentity&Version="
                        "2011-06-15&RoleArn=%s&RoleSessionName=%s&"
                        "WebIdentityToken=%s", r, s, t);
    curl_free(r);
    curl_free(s);
    if (t != NULL)
        eng_wipe(t, strlen(t));
    curl_free(t);
    return r && s && t && !b->err ? 0 : -1;
}

/* Credentials out of an STS answer. */
static int sts_parse(eng_aws_creds *out, const char *xml, char *err,
                     size_t cap)
{
    char *creds = xml_tag(xml, "Credentials");
    char *a = xml_tag(creds, "AccessKeyId");
    char *s = xml_tag(creds, "SecretAccessKey");
    char *t = xml_tag(creds, "SessionToken");
    char *e = xml_tag(creds, "Expiration");
    int rc;

    if (a == NULL || s == NULL || t == NULL || e == NULL)
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                     "web identity: STS answer lacks Credentials");
    else
        rc = creds_fill(out, a, s, t, e, err, cap);
    free_secret(creds);
    free(a);
    free_secret(s);
    free_secret(t);
    free(e);
    return rc;
}

int eng_aws_creds_from_web_identity(eng_aws_creds *out, const char *region,
                                    char *err, size_t cap)
{
    const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = getenv("AWS_ROLE_ARN");
    const char *session = getenv("AWS_ROLE_SESSION_NAME");
    const char *ep = getenv("AWS_ENDPOINT_URL_STS");
    eng_aws_buf tok = { 0 }, body = { 0 }, url = { 0 }, ans = { 0 };
    long status;
    int rc;

    memset(out, 0, sizeof *out);
    if (file == NULL || file[0] == '\0' || role == NULL || role[0] == '\0')
        return SIGNER_ERR_NOT_FOUND;
    if (read_token_file(&tok, file) != 0) {
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE, "web identity: cannot "
                     "read AWS_WEB_IDENTITY_TOKEN_FILE");
        goto cleanup;
    }
    if (ep != NULL && ep[0] != '\0')
        eng_aws_buf_str(&url, ep);
    else
        eng_aws_buf_fmt(&url, "https://sts.%s.amazonaws.com/",
                        region ? region : "us-east-1");
    if (url.err || sts_body(&body, role, session && session[0] ? session
                            : "enclave-signer", tok.p) != 0) {
        rc = set_err(err, cap, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = http_fetch(&ans, &status, "POST", url.p, NULL, body.p, 5000);
    if (rc != SIGNER_OK || status != 200)
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE, status == 0
                     ? "web identity: STS unreachable"
                     : "web identity: STS refused AssumeRoleWithWebIdentity");
    else
        rc = sts_parse(out, ans.p, err, cap);
cleanup:
    eng_aws_buf_free(&tok);
    eng_aws_buf_free(&body);
    eng_aws_buf_free(&url);
    eng_aws_buf_free(&ans);
    return rc;
}

/* IMDSv2 GET of path with the session token; answer into out. */
static int imds_get(eng_aws_buf *out, const char *base, const char *path,
                    const char *token)
{
    eng_aws_buf url = { 0 }, hdr = { 0 };
    struct curl_slist *h;
    long status;
    int rc;

    eng_aws_buf_fmt(&url, "%s%s", base, path);
    eng_aws_buf_fmt(&hdr, "X-aws-ec2-metadata-token: %s", token);
    if (url.err || hdr.err)
        rc = SIGNER_ERR_NOMEM;
    else {
        h = curl_slist_append(NULL, hdr.p);
        rc = http_fetch(out, &status, "GET", url.p, h, NULL, 1000);
        curl_slist_free_all(h);
        if (rc == SIGNER_OK && (status != 200 || out->p == NULL))
            rc = SIGNER_ERR_UNAVAILABLE;
    }
    eng_aws_buf_free(&url);
    eng_aws_buf_free(&hdr);
    return rc;
}

int eng_aws_creds_from_imds(eng_aws_creds *out, char *err, size_t cap)
{
    const char *off = getenv("AWS_EC2_METADATA_DISABLED");
    const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    eng_aws_buf tok = { 0 }, role = { 0 }, ans = { 0 }, url = { 0 };
    struct curl_slist *h;
    char path[256];
    long status;
    int rc;

    memset(out, 0, sizeof *out);
    if (off != NULL && strcasecmp(off, "true") == 0)
        return SIGNER_ERR_NOT_FOUND;
    if (base == NULL || base[0] == '\0')
        base = IMDS_DEFAULT;
    eng_aws_buf_fmt(&url, "%s/latest/api/token", base);
    h = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    rc = url.err ? SIGNER_ERR_NOMEM
                 : http_fetch(&tok, &status, "PUT", url.p, h, NULL, 1000);
    curl_slist_free_all(h);
    if (rc != SIGNER_OK || status != 200 || tok.p == NULL) {
        /* no metadata service: not on EC2, the chain ends here */
        rc = rc == SIGNER_OK ? set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                                       "IMDS refused a session token")
                             : SIGNER_ERR_NOT_FOUND;
        goto cleanup;
    }
    rc = imds_get(&role, base, "/latest/meta-data/iam/security-credentials/",
                  tok.p);
    if (rc == SIGNER_OK) {
        role.p[strcspn(role.p, "\r\n")] = '\0';
        snprintf(path, sizeof path,
                 "/latest/meta-data/iam/security-credentials/%s", role.p);
        rc = role.p[0] == '\0' || strchr(role.p, '/')
                 ? SIGNER_ERR_UNAVAILABLE : imds_get(&ans, base, path, tok.p);
    }
    if (rc != SIGNER_OK)
        rc = set_err(err, cap, SIGNER_ERR_UNAVAILABLE,
                     "IMDS: no instance role credentials");
    else
        rc = creds_from_json(out, ans.p, "Token", err, cap);
cleanup:
    eng_aws_buf_free(&tok);
    eng_aws_buf_free(&role);
    eng_aws_buf_free(&ans);
    eng_aws_buf_free(&url);
    return rc;
}

eng_aws_creds_chain *eng_aws_creds_chain_new(const char *region,
                                             int refresh_margin)
{
    eng_aws_creds_chain *ch;

    if (eng_curl_global_init() != 0 || (ch = calloc(1, sizeof *ch)) == NULL)
        return NULL;
    pthread_mutex_init(&ch->lock, NULL);
    snprintf(ch->region, sizeof ch->region, "%s",
             region ? region : "us-east-1");
    ch->margin = refresh_margin > 0 ? refresh_margin : 300;
    return ch;
}

typedef int (*creds_source_fn)(eng_aws_creds *, const char *, char *,
                               size_t);

static int src_env(eng_aws_creds *o, const char *r, char *e, size_t c)
{
    (void)r;
    return eng_aws_creds_from_env(o, e, c);
}
static int src_container(eng_aws_creds *o, const char *r, char *e, size_t c)
{
    (void)r;
    return eng_aws_creds_from_container(o, e, c);
}
static int src_imds(eng_aws_creds *o, const char *r, char *e, size_t c)
{
    (void)r;
    return eng_aws_creds_from_imds(o, e, c);
}

static const struct {
    const char *name;
    creds_source_fn fn;
} sources[] = {
    { "env", src_env },
    { "web-identity", eng_aws_creds_from_web_identity },
    { "container", src_container },
    { "imds", src_imds },
};

/* Walks the sources in order into ch->cached. */
static int chain_refresh(eng_aws_creds_chain *ch, char *err, size_t cap)
{
    size_t i;
    int rc = SIGNER_ERR_NOT_FOUND;

    for (i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        rc = sources[i].fn(&ch->cached, ch->region, err, cap);
        if (rc == SIGNER_ERR_NOT_FOUND)
            continue;
        if (rc == SIGNER_OK)
            snprintf(ch->source, sizeof ch->source, "%s", sources[i].name);
        else
            eng_aws_creds_wipe(&ch->cached);
        return rc;
    }
    set_err(err, cap, rc, "no AWS credentials source is configured");
    return rc;
}

int eng_aws_creds_chain_get(eng_aws_creds_chain *ch, eng_aws_creds *out,
                            char *source, size_t source_cap, char *err,
                            size_t err_cap)
{
    int rc = SIGNER_OK;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ch->lock);
    if (!eng_aws_creds_valid(&ch->cached, eng_unix_time(), ch->margin))
        rc = chain_refresh(ch, err, err_cap);
    if (rc == SIGNER_OK) {
        *out = ch->cached;
        if (source != NULL && source_cap > 0)
            snprintf(source, source_cap, "%s", ch->source);
    }
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

void eng_aws_creds_chain_free(eng_aws_creds_chain *ch)
{
    if (ch == NULL)
        return;
    eng_aws_creds_wipe(&ch->cached);
    pthread_mutex_destroy(&ch->lock);
    free(ch);
}
