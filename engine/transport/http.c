/*
 * Our own small HTTP/1.1 request-head parser, router and response
 * formatter.  No I/O here: server.c feeds bytes from bufferevents.
 *
 * Deliberately strict: one request line, token header names, no obsolete
 * line folding, digits-only Content-Length (duplicates must agree).  Any
 * Transfer-Encoding is reported (chunked) or refused (others, 501), which
 * closes the usual request-smuggling doors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport_internal.h"

/* 1 if c is an RFC 9110 token character. */
static int is_tchar(unsigned char c)
{
    if (isalnum(c))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Case-insensitive compare of a header field name of n bytes to name. */
static int name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* 1 if the comma-separated list v[0..n) holds token tok (any case). */
static int list_has(const char *v, size_t n, const char *tok)
{
    size_t i = 0, tl = strlen(tok);

    while (i < n) {
        size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* Parses the request line "METHOD SP TARGET SP HTTP/x.y" of n bytes.
 * Sets *minor to the HTTP minor version.  0 or a negative status. */
static long parse_request_line(eng_http_head *h, const char *p, size_t n,
                               int *minor)
{
    size_t i = 0, ms, ts, tl;

    ms = i;
    while (i < n && p[i] != ' ') {
        if (!isupper((unsigned char)p[i]))
            return -400;
        i++;
    }
    if (i == ms || i == n)
        return -400;
    if (i - ms >= sizeof h->method)
        return -501; /* no method of ours is that long */
    memcpy(h->method, p + ms, i - ms);
    h->method[i - ms] = '\0';
    i++;
    ts = i;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f)
            return -400;
        i++;
    }
    tl = i - ts;
    if (tl == 0 || i == n || p[ts] != '/')
        return -400;
    if (tl >= sizeof h->path)
        return -414;
    memcpy(h->path, p + ts, tl);
    h->path[tl] = '\0';
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 ||
        !isdigit((unsigned char)p[i + 5]) || p[i + 6] != '.' ||
        !isdigit((unsigned char)p[i + 7]))
        return -400;
    if (p[i + 5] != '1')
        return -505;
    *minor = p[i + 7] - '0';
    return 0;
}

/* Parses one header line p[0..n) into h.  0 or a negative status.
 * *conn_close / *conn_keep record the Connection tokens seen. */
static long parse_header(eng_http_head *h, const char *p, size_t n,
                         int *conn_close, int *conn_keep)
{
    size_t i = 0, vs, ve;
    const char *v;

    if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
        return -400; /* obsolete line folding */
    while (i < n && p[i] != ':') {
        if (!is_tchar((unsigned char)p[i]))
            return -400;
        i++;
    }
    if (i == 0 || i == n)
        return -400;
    vs = i + 1;
    while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    ve = n;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    for (size_t k = vs; k < ve; k++) {
        unsigned char c = (unsigned char)p[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -400;
    }
    v = p + vs;
    if (name_is(p, i, "Content-Length")) {
        uint64_t cl = 0;
        if (ve == vs)
            return -400;
        for (size_t k = vs; k < ve; k++) {
            if (!isdigit((unsigned char)p[k]))
                return -400;
            if (cl > (UINT64_MAX - 9) / 10)
                return -400;
            cl = cl * 10 + (uint64_t)(p[k] - '0');
        }
        if (cl > SIZE_MAX / 2)
            cl = SIZE_MAX / 2; /* "too large" is all that matters */
        if (h->has_content_length && h->content_length != (size_t)cl)
            return -400;
        h->content_length = (size_t)cl;
        h->has_content_length = 1;
    } else if (name_is(p, i, "Transfer-Encoding")) {
        if (list_has(v, ve - vs, "chunked"))
            h->chunked = 1;
        else
            return -501;
    } else if (name_is(p, i, "Connection")) {
        if (list_has(v, ve - vs, "close"))
            *conn_close = 1;
        if (list_has(v, ve - vs, "keep-alive"))
            *conn_keep = 1;
    } else if (name_is(p, i, "Expect")) {
        if (ve - vs == 12 && strncasecmp(v, "100-continue", 12) == 0)
            h->expect_continue = 1;
    }
    return 0;
}

/* Returns the head length, 0 if incomplete, or a negative HTTP status.
 * Leading empty lines (left over from a previous request) are skipped and
 * counted in the returned length.  Lines may end in CRLF or bare LF. */
long eng_http_parse_head(eng_http_head *head, const char *buf, size_t len,
                         size_t max_header)
{
    size_t pos = 0, limit = len < max_header ? len : max_header;
    int minor = 1, conn_close = 0, conn_keep = 0, line_no = 0;
    const char *nl;
    long r;

    memset(head, 0, sizeof *head);
    /* Skip empty lines before the request line (RFC 9112 2.2). */
    while (pos < limit && (buf[pos] == '\r' || buf[pos] == '\n')) {
        if (buf[pos] == '\r' && (pos + 1 >= limit || buf[pos + 1] != '\n'))
            break;
        pos += buf[pos] == '\r' ? 2 : 1;
    }
    for (;;) {
        size_t ls = pos, le;
        nl = memchr(buf + pos, '\n', limit - pos);
        if (nl == NULL) {
            /* Not complete: too large if the limit is what stopped us. */
            if (len >= max_header)
                return -431;
            return 0;
        }
        le = (size_t)(nl - buf);
        pos = le + 1;
        if (le > ls && buf[le - 1] == '\r')
            le--;
        if (memchr(buf + ls, '\0', le - ls) != NULL)
            return -400;
        if (line_no == 0) {
            if (le == ls)
                return -400;
            r = parse_request_line(head, buf + ls, le - ls, &minor);
        } else if (le == ls) {
            break; /* blank line: end of head */
        } else {
            r = parse_header(head, buf + ls, le - ls, &conn_close, &conn_keep);
        }
        if (r < 0)
            return r;
        line_no++;
    }
    if (minor >= 1)
        head->keep_alive = !conn_close;
    else
        head->keep_alive = conn_keep && !conn_close;
    return (long)pos;
}

/* 1 if s[0..n) is a plausible key id: 1..64 characters of the UUID
 * alphabet (hex digits and '-').  Exact validation is the handler's. */
static int key_id_plausible(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* Resolves method + path to a route; 0, 404 or 405. */
int eng_http_route_resolve(eng_http_route *out, const char *method,
                           const char *path)
{
    size_t n = strcspn(path, "?#");
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    const char *rest;
    size_t idn;

    memset(out, 0, sizeof *out);
    out->kind = ENG_ROUTE_DISPATCH;
    out->allow = "POST";
#define PATH_IS(lit) (n == sizeof(lit) - 1 && memcmp(path, lit, n) == 0)
    if (PATH_IS("/")) {
        out->operation = NULL;
    } else if (PATH_IS("/key")) {
        out->operation = "generate_key";
    } else if (PATH_IS("/key/import")) {
        out->operation = "set_key";
    } else if (PATH_IS("/healthz") || PATH_IS("/readyz") ||
               PATH_IS("/metrics")) {
        out->allow = "GET";
        out->kind = PATH_IS("/healthz")  ? ENG_ROUTE_HEALTHZ
                    : PATH_IS("/readyz") ? ENG_ROUTE_READYZ
                                         : ENG_ROUTE_METRICS;
        return get ? 0 : 405;
    } else if (n > 5 && memcmp(path, "/key/", 5) == 0) {
        rest = memchr(path + 5, '/', n - 5);
        if (rest == NULL)
            return 404;
        idn = (size_t)(rest - (path + 5));
        if (!key_id_plausible(path + 5, idn))
            return 404;
        n -= (size_t)(rest - path);
        if (n == sizeof("/tx_signature") - 1 &&
            memcmp(rest, "/tx_signature", n) == 0)
            out->operation = "sign_transaction";
        else if (n == sizeof("/userop_signature") - 1 &&
                 memcmp(rest, "/userop_signature", n) == 0)
            out->operation = "sign_userop";
        else
            return 404;
        memcpy(out->key_id, path + 5, idn);
        out->key_id[idn] = '\0';
    } else {
        return 404;
    }
#undef PATH_IS
    return post ? 0 : 405;
}

/* Reason phrase of the statuses we send. */
const char *eng_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Error body of the API shape; malloc'd, NULL on ENOMEM.  msg is one of
 * our own fixed messages (no escaping needed, checked by assertion). */
char *eng_http_error_body(int status, const char *msg, size_t *len_out)
{
    char *out = NULL;
    int n;

    n = asprintf(&out,
                 "{\"enclave_status\":%d,\"enclave_result\":{\"error\":\"%s\"}}",
                 status, msg);
    if (n < 0)
        return NULL;
    if (len_out != NULL)
        *len_out = (size_t)n;
    return out;
}

/* Formats a response head; its length, or 0 if out is too small. */
size_t eng_http_format_head(char *out, size_t out_len, int status,
                            const char *content_type, size_t body_len,
                            int keep_alive, const char *extra)
{
    int n;

    n = snprintf(out, out_len,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "Connection: %s\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s\r\n",
                 status, eng_http_reason(status), content_type, body_len,
                 keep_alive ? "keep-alive" : "close", extra ? extra : "");
    if (n < 0 || (size_t)n >= out_len)
        return 0;
    return (size_t)n;
}
