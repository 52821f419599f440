/* AWS Signature Version 4, header form (see sigv4.h and docs/aws.md). */
#include "config.h"
#include "aws/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signer/plugin.h>

#include "aws/buf.h"
#include "util.h"

#define SIGV4_MAX_HEADERS 64
#define SIGV4_MAX_PARAMS 64

int eng_aws_creds_set(eng_aws_creds *c, const char *akid, const char *secret,
                      const char *token, int64_t expiration)
{
    memset(c, 0, sizeof *c);
    if (akid == NULL || secret == NULL || akid[0] == '\0' ||
        secret[0] == '\0' || strlen(akid) >= sizeof c->access_key_id ||
        strlen(secret) >= sizeof c->secret_access_key ||
        (token != NULL && strlen(token) >= sizeof c->session_token))
        return SIGNER_ERR_BAD_REQUEST;
    strcpy(c->access_key_id, akid);
    strcpy(c->secret_access_key, secret);
    if (token != NULL)
        strcpy(c->session_token, token);
    c->expiration = expiration;
    return SIGNER_OK;
}

int eng_aws_creds_valid(const eng_aws_creds *c, int64_t now, int margin)
{
    if (c == NULL || c->access_key_id[0] == '\0' ||
        c->secret_access_key[0] == '\0')
        return 0;
    return c->expiration == 0 || now + margin < c->expiration;
}

void eng_aws_creds_wipe(eng_aws_creds *c)
{
    if (c != NULL)
        eng_wipe(c, sizeof *c);
}

void eng_sigv4_amz_date(char out[17], int64_t unix_time)
{
    time_t t = (time_t)unix_time;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int eng_aws_sha256_hex(char out[65], const void *data, size_t len)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32)
        return -1;
    eng_hex_encode(out, md, 32);
    return 0;
}

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 3986 encoding of every byte but the unreserved set (and '/' when
 * keep_slash). */
static void uri_encode(eng_aws_buf *b, const char *s, size_t len,
                       int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            eng_aws_buf_add(b, &s[i], 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            eng_aws_buf_add(b, e, 3);
        }
    }
}

/* Percent-decodes s[0..len) into b ('+' stays '+'). */
static void uri_decode(eng_aws_buf *b, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && eng_hex_nibble(s[i + 1]) >= 0 &&
            eng_hex_nibble(s[i + 2]) >= 0) {
            char c = (char)(eng_hex_nibble(s[i + 1]) * 16 +
                            eng_hex_nibble(s[i + 2]));
            eng_aws_buf_add(b, &c, 1);
            i += 2;
        } else {
            eng_aws_buf_add(b, &s[i], 1);
        }
    }
}

/* Canonical URI: each segment encoded once; with normalize, empty and "."
 * segments dropped and ".." popping one (RFC 3986 remove_dot_segments). */
static void canonical_path(eng_aws_buf *b, const char *path, int normalize)
{
    const char *seg[128];
    size_t seglen[128], n = 0, i;
    const char *p = path;
    size_t plen = strlen(path);

    if (plen == 0) {
        eng_aws_buf_str(b, "/");
        return;
    }
    if (!normalize) {
        uri_encode(b, path, plen, 1);
        return;
    }
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (n > 0)
                n--;
        } else if (l > 0 && !(l == 1 && p[0] == '.') && n < 128) {
            seg[n] = p;
            seglen[n++] = l;
        }
        p += l + (e ? 1 : 0);
    }
    for (i = 0; i < n; i++) {
        eng_aws_buf_str(b, "/");
        uri_encode(b, seg[i], seglen[i], 0);
    }
    if (n == 0 || path[plen - 1] == '/')
        eng_aws_buf_str(b, "/");
}

typedef struct kv {
    char *k;
    char *v;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

/* Encodes one decoded component of a query pair into a malloc'd string. */
static char *query_part(const char *s, size_t len)
{
    eng_aws_buf dec = { 0 }, enc = { 0 };
    char *r;

    uri_decode(&dec, s, len);
    if (dec.err) {
        eng_aws_buf_free(&dec);
        return NULL;
    }
    uri_encode(&enc, dec.p ? dec.p : "", dec.len, 0);
    eng_aws_buf_free(&dec);
    r = eng_aws_buf_take(&enc);
    return r;
}

/* Canonical query: pairs decoded, re-encoded, sorted by key then value. */
static int canonical_query(eng_aws_buf *b, const char *q)
{
    kv pairs[SIGV4_MAX_PARAMS];
    size_t n = 0, i;
    int rc = SIGNER_OK;

    while (q != NULL && *q != '\0') {
        const char *amp = strchr(q, '&'), *eq;
        size_t l = amp ? (size_t)(amp - q) : strlen(q);
        eq = memchr(q, '=', l);
        if (l > 0) {
            if (n == SIGV4_MAX_PARAMS) {
                rc = SIGNER_ERR_BAD_REQUEST;
                goto cleanup;
            }
            pairs[n].k = query_part(q, eq ? (size_t)(eq - q) : l);
            pairs[n].v = eq ? query_part(eq + 1, l - (size_t)(eq - q) - 1)
                            : query_part("", 0);
            n++;
            if (pairs[n - 1].k == NULL || pairs[n - 1].v == NULL) {
                rc = SIGNER_ERR_NOMEM;
                goto cleanup;
            }
        }
        q += l + (amp ? 1 : 0);
    }
    qsort(pairs, n, sizeof pairs[0], kv_cmp);
    for (i = 0; i < n; i++)
        eng_aws_buf_fmt(b, "%s%s=%s", i ? "&" : "", pairs[i].k, pairs[i].v);
cleanup:
    for (i = 0; i < n; i++) {
        free(pairs[i].k);
        free(pairs[i].v);
    }
    return rc;
}

typedef struct hdr {
    char *name;  /* lowercase */
    char *value; /* trimmed, inner whitespace runs folded to one space */
    size_t order;
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Lowercases a name and folds a value (multi-line values become one line). */
static int hdr_make(hdr *h, const char *name, const char *value, size_t order)
{
    eng_aws_buf v = { 0 };
    size_t i;
    int space = 0;

    h->order = order;
    h->value = NULL;
    if ((h->name = strdup(name)) == NULL)
        return SIGNER_ERR_NOMEM;
    for (i = 0; h->name[i] != '\0'; i++)
        h->name[i] = (char)tolower((unsigned char)h->name[i]);
    for (i = 0; value[i] != '\0'; i++) {
        if (isspace((unsigned char)value[i])) {
            space = 1;
            continue;
        }
        if (space && v.len > 0)
            eng_aws_buf_add(&v, " ", 1);
        space = 0;
        eng_aws_buf_add(&v, &value[i], 1);
    }
    h->value = eng_aws_buf_take(&v);
    return h->value ? SIGNER_OK : SIGNER_ERR_NOMEM;
}

typedef struct hdr_set {
    hdr h[SIGV4_MAX_HEADERS];
    size_t n;
} hdr_set;

static void hdr_set_free(hdr_set *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        free(s->h[i].name);
        if (s->h[i].value != NULL) {
            eng_wipe(s->h[i].value, strlen(s->h[i].value));
            free(s->h[i].value);
        }
    }
    s->n = 0;
}

static int hdr_add(hdr_set *s, const char *name, const char *value)
{
    int rc;

    if (s->n == SIGV4_MAX_HEADERS)
        return SIGNER_ERR_BAD_REQUEST;
    rc = hdr_make(&s->h[s->n], name, value, s->n);
    s->n++;
    return rc;
}

/* The headers that get signed: the request's plus the ones SigV4 adds. */
static int hdr_collect(hdr_set *s, const eng_aws_creds *creds,
                       const eng_sigv4_req *req, const char *payload_hash)
{
    size_t i;
    int rc = SIGNER_OK, host = 0;

    for (i = 0; i < req->n_headers && rc == SIGNER_OK; i++) {
        if (strcasecmp(req->headers[i].name, "host") == 0)
            host = 1;
        rc = hdr_add(s, req->headers[i].name, req->headers[i].value);
    }
    if (rc == SIGNER_OK)
        rc = hdr_add(s, "x-amz-date", req->amz_date);
    if (rc == SIGNER_OK && creds->session_token[0] != '\0' &&
        !req->omit_session_token)
        rc = hdr_add(s, "x-amz-security-token", creds->session_token);
    if (rc == SIGNER_OK && req->sign_body_header)
        rc = hdr_add(s, "x-amz-content-sha256", payload_hash);
    if (rc == SIGNER_OK && !host)
        rc = SIGNER_ERR_BAD_REQUEST;
    if (rc == SIGNER_OK)
        qsort(s->h, s->n, sizeof s->h[0], hdr_cmp);
    return rc;
}

/* "name:v1,v2\n" lines (repeated names joined in order) into b, and the
 * ';'-joined names into names. */
static void hdr_write(eng_aws_buf *b, eng_aws_buf *names, const hdr_set *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        int same = i > 0 && strcmp(s->h[i].name, s->h[i - 1].name) == 0;
        if (same) {
            eng_aws_buf_fmt(b, ",%s", s->h[i].value);
            continue;
        }
        if (i > 0)
            eng_aws_buf_str(b, "\n");
        eng_aws_buf_fmt(b, "%s:%s", s->h[i].name, s->h[i].value);
        eng_aws_buf_fmt(names, "%s%s", names->len ? ";" : "", s->h[i].name);
    }
    eng_aws_buf_str(b, "\n");
}

/* Canonical request (and signed header list) for req. */
static int canonical_request(eng_sigv4_out *out, const eng_aws_creds *creds,
                             const eng_sigv4_req *req)
{
    eng_aws_buf cr = { 0 }, names = { 0 };
    hdr_set *hs;
    int rc;

    if ((hs = calloc(1, sizeof *hs)) == NULL)
        return SIGNER_ERR_NOMEM;
    rc = hdr_collect(hs, creds, req, out->payload_hash);
    if (rc != SIGNER_OK)
        goto cleanup;
    eng_aws_buf_fmt(&cr, "%s\n", req->method);
    canonical_path(&cr, req->path ? req->path : "/", req->normalize_path);
    eng_aws_buf_str(&cr, "\n");
    if ((rc = canonical_query(&cr, req->query)) != SIGNER_OK)
        goto cleanup;
    eng_aws_buf_str(&cr, "\n");
    hdr_write(&cr, &names, hs);
    eng_aws_buf_fmt(&cr, "\n%s\n%s", names.p ? names.p : "",
                    out->payload_hash);
    out->canonical_request = eng_aws_buf_take(&cr);
    out->signed_headers = eng_aws_buf_take(&names);
    if (out->canonical_request == NULL || out->signed_headers == NULL)
        rc = SIGNER_ERR_NOMEM;
cleanup:
    hdr_set_free(hs);
    free(hs);
    eng_aws_buf_free(&cr);
    eng_aws_buf_free(&names);
    return rc;
}

static int hmac(unsigned char out[32], const void *key, size_t key_len,
                const char *msg)
{
    unsigned int len = 0;

    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg,
                strlen(msg), out, &len) != NULL && len == 32
               ? 0 : -1;
}

/* kSigning = HMAC chain over date, region, service, "aws4_request". */
static int signing_key(unsigned char k[32], const eng_aws_creds *creds,
                       const char *date8, const char *region,
                       const char *service)
{
    char seed[4 + ENG_AWS_SECRET_MAX];
    unsigned char t[32];
    int rc = -1;

    snprintf(seed, sizeof seed, "AWS4%s", creds->secret_access_key);
    if (hmac(t, seed, strlen(seed), date8) == 0 &&
        hmac(k, t, 32, region) == 0 && hmac(t, k, 32, service) == 0 &&
        hmac(k, t, 32, "aws4_request") == 0)
        rc = 0;
    eng_wipe(seed, sizeof seed);
    eng_wipe(t, sizeof t);
    return rc;
}

static int valid_date(const char *d)
{
    size_t i;

    if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return 0;
    return 1;
}

/* String to sign, signature and Authorization from the canonical request. */
static int sign_strings(eng_sigv4_out *out, const eng_aws_creds *creds,
                        const eng_sigv4_req *req)
{
    eng_aws_buf sts = { 0 }, auth = { 0 };
    char date8[9], scope[256], crhash[65];
    unsigned char key[32], sig[32];
    int rc = SIGNER_ERR_INTERNAL;

    memcpy(date8, req->amz_date, 8);
    date8[8] = '\0';
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8,
             req->region, req->service);
    if (eng_aws_sha256_hex(crhash, out->canonical_request,
                           strlen(out->canonical_request)) != 0)
        goto cleanup;
    eng_aws_buf_fmt(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", req->amz_date,
                    scope, crhash);
    if (sts.err || signing_key(key, creds, date8, req->region,
                               req->service) != 0 ||
        hmac(sig, key, 32, sts.p) != 0)
        goto cleanup;
    eng_hex_encode(out->signature, sig, 32);
    eng_aws_buf_fmt(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s, "
                    "SignedHeaders=%s, Signature=%s", creds->access_key_id,
                    scope, out->signed_headers, out->signature);
    out->string_to_sign = eng_aws_buf_take(&sts);
    out->authorization = eng_aws_buf_take(&auth);
    rc = out->string_to_sign && out->authorization ? SIGNER_OK
                                                   : SIGNER_ERR_NOMEM;
cleanup:
    eng_wipe(key, sizeof key);
    eng_wipe(sig, sizeof sig);
    eng_aws_buf_free(&sts);
    eng_aws_buf_free(&auth);
    return rc;
}

int eng_sigv4_sign(eng_sigv4_out *out, const eng_aws_creds *creds,
                   const eng_sigv4_req *req)
{
    int rc;

    memset(out, 0, sizeof *out);
    if (creds == NULL || req == NULL || req->method == NULL ||
        req->region == NULL || req->service == NULL ||
        !valid_date(req->amz_date) || creds->access_key_id[0] == '\0')
        return SIGNER_ERR_BAD_REQUEST;
    if (eng_aws_sha256_hex(out->payload_hash,
                           req->body ? (const void *)req->body : "",
                           req->body ? req->body_len : 0) != 0)
        return SIGNER_ERR_INTERNAL;
    rc = canonical_request(out, creds, req);
    if (rc == SIGNER_OK)
        rc = sign_strings(out, creds, req);
    if (rc != SIGNER_OK)
        eng_sigv4_out_free(out);
    return rc;
}

static void free_str(char **s)
{
    if (*s != NULL) {
        eng_wipe(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void eng_sigv4_out_free(eng_sigv4_out *out)
{
    if (out == NULL)
        return;
    free_str(&out->canonical_request);
    free_str(&out->string_to_sign);
    free_str(&out->signed_headers);
    free_str(&out->authorization);
    eng_wipe(out, sizeof *out);
}
