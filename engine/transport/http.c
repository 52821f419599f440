/*
 * The HTTP/1.1 protocol (docs/api.md): our own small request-head parser,
 * the response formatter, and the protocol operations of an HTTP
 * connection.  The transport serves GET /healthz, /readyz and /metrics
 * itself; every other request is resolved by callbacks.route (the
 * engine's routes, declared by the plugins) and handed to the handler.
 * One request per connection is in flight, so answers go out in order.
 * Every answer carries the request id as X-Request-Id; HEAD answers carry
 * no body.
 *
 * Deliberately strict: one request line, token header names, no obsolete
 * line folding, digits-only Content-Length (duplicates must agree).  Any
 * Transfer-Encoding is reported (chunked) or refused (others, 501), which
 * closes the usual request-smuggling doors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "util.h"
#include "transport_internal.h"

/* ASCII classes without the locale tables (the parser's inner loops). */
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

/* 1 if c is an RFC 9110 token character. */
static inline int is_tchar(unsigned char c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    switch (c) {
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
    case '!': case '#': case '$': case '%': case '&': case '\'':
    case '*': case '+': case '-': case '.': case '^': case '_':
    case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
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
        if (!is_upper((unsigned char)p[i]))
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
        !is_digit((unsigned char)p[i + 5]) || p[i + 6] != '.' ||
        !is_digit((unsigned char)p[i + 7]))
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
            if (!is_digit((unsigned char)p[k]))
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
    } else if (name_is(p, i, "Authorization")) {
        if (ve - vs >= sizeof h->authorization)
            return -431;
        memcpy(h->authorization, v, ve - vs);
        h->authorization[ve - vs] = '\0';
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

    /* Field by field: the 1 KiB Authorization buffer is only written
     * (and wiped) when the header is present. */
    head->method[0] = head->path[0] = head->authorization[0] = '\0';
    head->content_length = 0;
    head->has_content_length = head->keep_alive = head->chunked = 0;
    head->expect_continue = head->minor = 0;
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
        /* (a NUL anywhere fails the character checks of the line: 400) */
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
    head->minor = minor;
    if (minor >= 1) {
        head->keep_alive = !conn_close;
    } else {
        head->keep_alive = conn_keep && !conn_close;
        head->expect_continue = 0; /* 100 Continue is HTTP/1.1 only */
    }
    return (long)pos;
}

/* Drops query and fragment, merges repeated slashes (as nginx does). */
void eng_http_normalise_path(char *path)
{
    size_t r = 0, w = 0;

    path[strcspn(path, "?#")] = '\0';
    for (; path[r] != '\0'; r++) {
        if (path[r] == '/' && w > 0 && path[w - 1] == '/')
            continue;
        path[w++] = path[r];
    }
    path[w] = '\0';
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

/* A bounded text buffer (no printf on the answer path). */
typedef struct hbuf {
    char *p;
    size_t cap, n;
    int over; /* something did not fit */
} hbuf;

static void hput(hbuf *b, const char *s, size_t len)
{
    if (b->over || len >= b->cap - b->n) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void hputs(hbuf *b, const char *s) { hput(b, s, strlen(s)); }

/* A string literal, its length known at compile time. */
#define HPUTL(b, lit) hput((b), (lit), sizeof(lit) - 1)

static void hputu(hbuf *b, unsigned long long v)
{
    char t[20];
    hput(b, t, eng_u64_decimal(t, (uint64_t)v));
}

/* The response head into b: the lines of eng_http_format_head, then
 * "X-Request-Id: rid" when rid is not NULL, then extra. */
static void head_put(hbuf *b, int status, const char *content_type,
                     size_t body_len, int keep_alive, const char *rid,
                     const char *extra)
{
    HPUTL(b, "HTTP/1.1 ");
    if (status < 0) {
        HPUTL(b, "-");
        hputu(b, (unsigned long long)-(long long)status);
    } else {
        hputu(b, (unsigned long long)status);
    }
    HPUTL(b, " ");
    hputs(b, eng_http_reason(status));
    HPUTL(b, "\r\nContent-Type: ");
    hputs(b, content_type);
    HPUTL(b, "\r\nContent-Length: ");
    hputu(b, (unsigned long long)body_len);
    if (keep_alive)
        HPUTL(b, "\r\nConnection: keep-alive\r\nCache-Control: no-store\r\n");
    else
        HPUTL(b, "\r\nConnection: close\r\nCache-Control: no-store\r\n");
    if (rid != NULL) {
        HPUTL(b, "X-Request-Id: ");
        hputs(b, rid);
        HPUTL(b, "\r\n");
    }
    if (extra != NULL)
        hputs(b, extra);
    HPUTL(b, "\r\n");
}

/* Formats a response head; its length, or 0 if out is too small. */
size_t eng_http_format_head(char *out, size_t out_len, int status,
                            const char *content_type, size_t body_len,
                            int keep_alive, const char *extra)
{
    hbuf b = {out, out_len, 0, out_len == 0};

    head_put(&b, status, content_type, body_len, keep_alive, NULL, extra);
    return b.over ? 0 : b.n;
}

/* ---- the HTTP protocol ------------------------------------------------------ */

#define HTTP_HEAD_MAX 1024       /* room for any head we write */
#define HTTP_COPY_MAX (16u * 1024u) /* bodies copied next to their head */

/* How one answer is written. */
typedef struct http_answer {
    int status;
    const char *ctype;
    int keep_alive;
    int head;            /* HEAD: Content-Length only, no body */
    const char *rid;     /* X-Request-Id */
    const char *extra;   /* more header lines (each ending in CRLF) or NULL */
} http_answer;

/* 1 if the answer a keeps c open.  After the peer's EOF, requests already
 * buffered are still answered; eng_conn_after() closes once they are
 * flushed.  A stop asked for while the request was handled (its answer
 * written in place, before the loop starts draining) closes too. */
static int http_keep_alive(const eng_conn *c, const http_answer *a)
{
    return a->keep_alive && !c->closing && !c->loop->draining &&
           !atomic_load(&c->loop->stop_requested);
}

/* Queues the head of a with the first send bytes of body behind it as
 * one piece of the output (one buffer callback, one small chain: the
 * engine's allocator wipes every chain it frees, so its size matters).
 * Returns 0, or -1 (nothing queued) if the head does not fit HTTP_HEAD_MAX
 * or the buffer cannot grow. */
static int http_put(eng_conn *c, const http_answer *a, int ka,
                    const char *body, size_t len, size_t send)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer_iovec v;
    char head[HTTP_HEAD_MAX];
    hbuf b = {head, sizeof head, 0, 0};

    head_put(&b, a->status, a->ctype, len, ka, a->rid, a->extra);
    if (b.over ||
        evbuffer_reserve_space(out, (ev_ssize_t)(b.n + send), &v, 1) != 1 ||
        v.iov_len < b.n + send)
        return -1;
    memcpy(v.iov_base, head, b.n);
    if (send > 0)
        memcpy((char *)v.iov_base + b.n, body, send);
    v.iov_len = b.n + send;
    return evbuffer_commit_space(out, &v, 1);
}

/* Queues an HTTP response; takes ownership of body (malloc'd or NULL).
 * A body up to HTTP_COPY_MAX is copied behind the head (and freed), a
 * larger one is handed to the output by reference. */
static void http_respond(eng_conn *c, const http_answer *a, char *body,
                         size_t len)
{
    size_t send;
    int ka;

    if (body == NULL)
        len = 0;
    send = a->head ? 0 : len;
    ka = http_keep_alive(c, a);
    if (send <= HTTP_COPY_MAX) {
        if (http_put(c, a, ka, body, len, send) != 0)
            eng_conn_close(c, "out of memory");
        free(body);
    } else if (http_put(c, a, ka, NULL, len, 0) != 0) {
        eng_conn_close(c, "out of memory");
        free(body);
    } else {
        eng_conn_write(c, body, len);
    }
    if (!ka)
        c->closing = 1;
}

/* Queues a transport-made error answer of the API shape, with a
 * rate-limited access-log line naming the cause (never request content). */
static void http_error(eng_conn *c, http_answer *a, const char *msg)
{
    const eng_server_callbacks *cb = eng_server_cb(c->loop->srv);
    size_t len = 0;
    char *body = cb->error_body != NULL
                     ? cb->error_body(cb->ctx, a->status, msg, NULL, &len)
                     : NULL;

    if (body == NULL)
        body = eng_http_error_body(a->status, msg, &len);
    if (a->status >= 400 && a->status != 404 && a->status != 405 &&
        a->status != 408 && a->status != 503)
        eng_conn_proto_error(c);
    a->ctype = "application/json";
    eng_server_log_refusal(c->loop->srv, a->rid, a->status, c->peer, msg);
    http_respond(c, a, body, len);
}

/* Answers an error with a fresh request id (no request was read). */
static void http_fail(eng_conn *c, int status, const char *msg)
{
    char rid[17];
    http_answer a = {status, NULL, 0, 0, rid, NULL};

    eng_request_id(rid);
    http_error(c, &a, msg);
}

/* 200 with a static JSON text (copied behind the head). */
static void http_json(eng_conn *c, http_answer *a, const char *txt)
{
    size_t len = strlen(txt);
    int ka = http_keep_alive(c, a);

    a->status = 200;
    a->ctype = "application/json";
    if (http_put(c, a, ka, txt, len, a->head ? 0 : len) != 0)
        eng_conn_close(c, "out of memory");
    else if (!ka)
        c->closing = 1;
}

/* GET (or HEAD) /healthz, /readyz, /metrics; 0 if path is none of them. */
static int http_builtin(eng_conn *c, const char *method, const char *path,
                        http_answer *a)
{
    eng_server *s = c->loop->srv;
    const eng_server_callbacks *cb = eng_server_cb(s);
    char *txt;
    size_t tl = 0;

    if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
        strcmp(path, "/metrics") != 0)
        return 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        a->status = 405;
        a->extra = "Allow: GET, HEAD\r\n";
        http_error(c, a, "method not allowed");
    } else if (strcmp(path, "/healthz") == 0) {
        http_json(c, a, "{\"status\":\"ok\"}");
    } else if (strcmp(path, "/readyz") == 0) {
        if (cb->ready == NULL || cb->ready(cb->ctx)) {
            http_json(c, a, "{\"status\":\"ready\"}");
        } else {
            a->status = 503;
            http_error(c, a, "not ready");
        }
    } else if ((txt = eng_server_metrics(s, &tl)) == NULL) {
        a->status = 503;
        http_error(c, a, "metrics unavailable");
    } else {
        a->status = 200;
        a->ctype = "text/plain; version=0.0.4; charset=utf-8";
        http_respond(c, a, txt, tl);
    }
    return 1;
}

/* Without callbacks.route: POST / is the envelope route, nothing else. */
static int default_route(const char *method, const char *path,
                         eng_route_match *m)
{
    if (strcmp(path, "/") != 0)
        return 404;
    m->allow = "POST";
    return strcmp(method, "POST") == 0 ? 0 : 405;
}

/* Resolves and submits one complete request; takes ownership of body. */
static void http_request(eng_conn *c, eng_http_head *h, char *body,
                         size_t len)
{
    const eng_server_callbacks *cb = eng_server_cb(c->loop->srv);
    char rid[17], extra[80];
    http_answer a = {0, NULL, h->keep_alive, 0, rid, NULL};
    eng_route_match m;
    int r;

    eng_request_id(rid);
    a.head = strcmp(h->method, "HEAD") == 0;
    eng_http_normalise_path(h->path);
    memset(&m, 0, sizeof m);
    if (http_builtin(c, h->method, h->path, &a))
        goto wipe;
    if (c->lsn != NULL && c->lsn->proto == ENG_PROTO_HEALTH) {
        a.status = 404;
        http_error(c, &a, "not found: this listener serves only GET "
                          "/healthz, /readyz and /metrics");
        goto wipe;
    }
    r = cb->route != NULL
            ? cb->route(cb->ctx, h->method, h->path, body, len, &m)
            : default_route(h->method, h->path, &m);
    if (r == 0) {
        m.authorization = h->authorization[0] ? h->authorization : NULL;
        r = eng_conn_submit(c, body, len, &m, a.head, a.keep_alive, rid);
    }
    if (r == 0)
        return;
    a.status = r > 0 ? r : 503;
    if (r == 405) {
        snprintf(extra, sizeof extra, "Allow: %s\r\n",
                 m.allow != NULL ? m.allow : "POST");
        a.extra = extra;
    }
    http_error(c, &a, r == 405  ? "method not allowed"
                      : r > 0    ? "no such route"
                      : r == -1  ? "server busy: too many requests in flight"
                                 : "out of memory");
wipe:
    eng_wipe(body, len);
    free(body);
}

/* Error message for a negative status of the head parser. */
static const char *head_error_msg(int status)
{
    switch (status) {
    case 431: return "request header too large";
    case 414: return "request target too long";
    case 501: return "unsupported method or Transfer-Encoding";
    case 505: return "HTTP version not supported";
    default: return "malformed HTTP request";
    }
}

/* Checks a parsed head's framing; 0, or answers and returns -1. */
static int head_check(eng_conn *c, eng_http_head *h)
{
    if (h->chunked) {
        http_fail(c, 411, "chunked Transfer-Encoding is not supported: "
                          "send Content-Length");
        return -1;
    }
    if (!h->has_content_length) {
        if (strcmp(h->method, "POST") == 0 || strcmp(h->method, "PUT") == 0) {
            http_fail(c, 411, "Content-Length required");
            return -1;
        }
        h->content_length = 0;
    }
    if (h->content_length > c->loop->limits.max_body) {
        http_fail(c, 413, "request body too large");
        return -1;
    }
    return 0;
}

/* Parses the next request head: its length, 0 if incomplete, -1 if an
 * error was answered, -2 on out of memory (c is closed). */
static long head_next(eng_conn *c, eng_http_head *h)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in), max = c->loop->limits.max_header;
    size_t look = len < max ? len : max;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
    long r;

    if (p == NULL) {
        eng_conn_close(c, "out of memory");
        return -2;
    }
    r = eng_http_parse_head(h, p, look, max);
    if (r < 0) {
        http_fail(c, (int)-r, head_error_msg((int)-r));
        return -1;
    }
    if (r > 0 && head_check(c, h) != 0)
        return -1;
    return r;
}

/* Takes a complete request (head of hl bytes, body of bl) off the input:
 * the body as a malloc'd, NUL-terminated copy, the input drained once (on
 * a connection the bufferevent reads, a drain runs its watermark callback,
 * which re-adds its read event).  The input bytes of the body are wiped.  NULL: out of memory,
 * c is closed. */
static char *request_take(eng_conn *c, size_t hl, size_t bl)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)(hl + bl));
    char *body = malloc(bl + 1);

    if (p == NULL || body == NULL) {
        free(body);
        eng_conn_close(c, "out of memory");
        return NULL;
    }
    memcpy(body, p + hl, bl);
    body[bl] = '\0';
    eng_wipe(p + hl, bl);
    evbuffer_drain(in, hl + bl);
    return body;
}

/* Parses and submits buffered HTTP requests, one at a time. */
static void http_on_read(eng_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    eng_http_head h;
    int had_auth = 0;

    h.authorization[0] = '\0'; /* read below even if no head is parsed */

    while (!c->dead && !atomic_load(&c->loop->stop_requested) &&
           !c->closing && c->jobs == 0 &&
           evbuffer_get_length(out) < ENG_OUT_HIGH &&
           evbuffer_get_length(in) > 0) {
        long hl = head_next(c, &h);
        char *body;

        had_auth |= h.authorization[0] != '\0';
        if (hl <= 0)
            break;
        if (evbuffer_get_length(in) < (size_t)hl + h.content_length) {
            if (h.expect_continue && !c->http.continue_sent) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                evbuffer_add(out, cont, sizeof cont - 1);
                c->http.continue_sent = 1;
            }
            break;
        }
        if ((body = request_take(c, (size_t)hl, h.content_length)) == NULL)
            return;
        c->http.continue_sent = 0;
        c->fresh = 0;
        c->req_start = 0;
        http_request(c, &h, body, h.content_length);
    }
    if (had_auth) /* the Authorization header */
        eng_wipe(h.authorization, sizeof h.authorization);
}

/* The handler's answer, in order (one request in flight). */
static void http_on_complete(eng_conn *c, eng_completion *d)
{
    http_answer a = {d->status, "application/json", d->keep_alive, d->head,
                     d->rid, NULL};

    /* A backend down (503) or a client throttled (429): retry later. */
    if (d->status == 503 || d->status == 429)
        a.extra = "Retry-After: 1\r\n";

    if (d->resp == NULL || d->status < 200 || d->status > 599) {
        a.status = 500;
        http_error(c, &a, "internal error");
        return;
    }
    http_respond(c, &a, d->resp, d->resp_len);
    d->resp = NULL;
}

/* read_timeout_ms with part of a request: say why before closing. */
static int http_on_read_timeout(eng_conn *c)
{
    tlog(TLOG_INFO, "http connection from %s: read timeout, answering 408 "
                    "and closing", c->peer);
    http_fail(c, 408, "request not received within read_timeout_ms");
    return 1;
}

/* HTTP: one request at a time. */
static int http_want_read(const eng_conn *c) { return c->jobs == 0; }

/* One full request plus some pipelined bytes. */
static size_t http_read_high(const eng_limits *l)
{
    return l->max_header + l->max_body + ENG_READ_SLACK;
}

const eng_proto_ops eng_http_ops = {
    .name = "http",
    .on_read = http_on_read,
    .on_complete = http_on_complete,
    .want_read = http_want_read,
    .on_read_timeout = http_on_read_timeout,
    .read_high = http_read_high,
    .fresh_is_request = 1,
};
