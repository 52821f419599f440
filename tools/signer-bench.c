/*
 * signer-bench — HTTP/1.1 keep-alive load generator for signerd (and for any
 * JSON-over-HTTP service, e.g. anvil's JSON-RPC), built on libevent.
 *
 *   signer-bench --url http://127.0.0.1:8080/ -c 16 -d 5 [-w 1] [-r 2000]
 *                (--key-id ID --secret S | --key-ids FILE --secret S | -b FILE)
 *                [--jsonrpc | --expect STR] [--json]
 *
 * Each of the -c connections keeps exactly one request in flight (no
 * pipelining): it sends the POST, reads one complete answer (Content-Length,
 * chunked, or until close), then sends the next.  Closed loop by default; with
 * -r the requests are paced open-loop at R req/s in total, slot i being due at
 * start + i/R and slots dealt round-robin to the connections.  A request whose
 * slot comes while its connection is still busy is sent as soon as the
 * connection is free, and its latency is measured from the slot's due time
 * (coordinated omission is not hidden).
 *
 * Every latency of a measured request goes into a histogram with 1 µs
 * resolution up to 1 s (1 ms above, up to 100 s).  Requests started during
 * the warm-up (-w seconds) are answered and checked but not measured.
 *
 * Exit status: 0 when every answer was 200 (and matched --expect), 1 when any
 * answer was not 200, did not match, a connection failed or timed out (the
 * first bad answer is printed on stderr), 64 on usage errors.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#define EXIT_USAGE 64
#define MAX_CONNS 4096
#define MAX_HEAD 65536
#define MAX_BODY (64u << 20)
#define FIRST_BAD_MAX 600

/* ---- time ---------------------------------------------------------------- */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- histogram: 1 µs buckets below 1 s, 1 ms buckets up to 100 s --------- */

#define H_LIN 1000000u /* µs buckets: [0, 1 s) */
#define H_MS 99000u    /* ms buckets: [1 s, 100 s) */

typedef struct hist {
    uint32_t *lin;
    uint32_t *ms;
    uint64_t over; /* >= 100 s */
    uint64_t n;
    uint64_t min, max;
    double sum;
} hist;

static int hist_init(hist *h)
{
    memset(h, 0, sizeof *h);
    h->lin = calloc(H_LIN, sizeof *h->lin);
    h->ms = calloc(H_MS, sizeof *h->ms);
    h->min = UINT64_MAX;
    return h->lin && h->ms ? 0 : -1;
}

static void hist_free(hist *h)
{
    free(h->lin);
    free(h->ms);
}

static void hist_add(hist *h, uint64_t us)
{
    if (us < H_LIN)
        h->lin[us]++;
    else if (us / 1000u - 1000u < H_MS)
        h->ms[us / 1000u - 1000u]++;
    else
        h->over++;
    h->n++;
    h->sum += (double)us;
    if (us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
}

/* Smallest recorded value v such that at least q of the samples are <= v
 * (nearest rank).  Values in ms buckets are reported as the bucket's upper
 * end; the top rank is the exact max. */
static uint64_t hist_quantile(const hist *h, double q)
{
    uint64_t rank, seen = 0, i;
    if (h->n == 0)
        return 0;
    rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    if (rank >= h->n)
        return h->max;
    for (i = 0; i < H_LIN; i++)
        if ((seen += h->lin[i]) >= rank)
            return i;
    for (i = 0; i < H_MS; i++)
        if ((seen += h->ms[i]) >= rank) {
            uint64_t v = (i + 1000u + 1u) * 1000u - 1u;
            return v < h->max ? v : h->max;
        }
    return h->max;
}

/* ---- options and state --------------------------------------------------- */

typedef struct opts {
    const char *url;
    int conns;
    double duration;  /* seconds, 0 with -n */
    uint64_t count;   /* -n, 0 with -d */
    double rate;      /* req/s in total, 0 = closed loop */
    double warmup;    /* seconds */
    double timeout;   /* seconds per request */
    const char *body_file;
    const char *key_id;
    const char *key_ids_file;
    const char *secret;
    long long chain_id;
    const char *expect;
    const char *reject;
    const char *label;
    const char *method;
    int json;
    const char *cacert, *cert, *key; /* https:// URLs */
} opts;

enum { C_CONNECTING, C_IDLE, C_WAITING, C_BUSY, C_DEAD };

struct bench;

typedef struct conn {
    struct bench *b;
    int idx;
    int state;
    struct bufferevent *bev;
    struct event *pace;   /* pacing / reconnect timer */
    uint64_t slot;        /* next pacing slot index of this connection */
    uint64_t due_us;      /* intended start of the request in flight */
    int measured;         /* the request in flight counts */
    int connected_once;
    /* response parsing */
    int have_head;
    size_t head_len;
    int status;
    long long clen;       /* -1: none */
    int chunked;
    int close_after;
} conn;

typedef struct bench {
    opts o;
    SSL_CTX *tls;         /* https:// URLs, else NULL */
    struct event_base *base;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host_hdr[300];
    char path[1024];
    char *body;           /* fixed body, or NULL with key_ids */
    size_t body_len;
    char **key_ids;
    size_t n_key_ids;
    size_t next_key;
    char *req_head_fixed; /* request with fixed body, complete */
    size_t req_fixed_len;
    conn *c;
    uint64_t t0, meas_start, t_end, t_last_done;
    uint64_t issued_measured; /* -n: measured requests started */
    uint64_t done_measured;
    uint64_t done_total;
    uint64_t errors, conn_errors, status_errors, timeouts, mismatches;
    uint64_t inflight;
    int stopping;
    struct event *end_ev, *sig_ev;
    hist h;
    char first_bad[FIRST_BAD_MAX + 200];
    int have_first_bad;
} bench;

static void conn_connect(conn *c);
static void conn_next(conn *c);

static void note_bad(bench *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_bad(bench *b, const char *fmt, ...)
{
    va_list ap;
    if (b->have_first_bad)
        return;
    va_start(ap, fmt);
    vsnprintf(b->first_bad, sizeof b->first_bad, fmt, ap);
    va_end(ap);
    b->have_first_bad = 1;
}

static void maybe_finish(bench *b)
{
    int i, live = 0;
    if (!b->stopping) {
        for (i = 0; i < b->o.conns; i++)
            if (b->c[i].state != C_DEAD)
                live++;
        if (live == 0)
            b->stopping = 1;
    }
    if (b->stopping && b->inflight == 0)
        event_base_loopexit(b->base, NULL);
}

static void stop_all(bench *b)
{
    int i;
    b->stopping = 1;
    for (i = 0; i < b->o.conns; i++)
        if (b->c[i].pace != NULL && b->c[i].state != C_BUSY)
            evtimer_del(b->c[i].pace);
    maybe_finish(b);
}

/* ---- request ------------------------------------------------------------- */

static int build_fixed_request(bench *b)
{
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     b->o.method, b->path, b->host_hdr, b->body_len);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    b->req_fixed_len = (size_t)n + b->body_len;
    if ((b->req_head_fixed = malloc(b->req_fixed_len)) == NULL)
        return -1;
    memcpy(b->req_head_fixed, head, (size_t)n);
    memcpy(b->req_head_fixed + n, b->body, b->body_len);
    return 0;
}

static int json_escape_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

/* The seed's sign_transaction request (an EIP-1559 transfer of 0.01 ether). */
static char *seed_body(const char *key_id, const char *secret,
                       long long chain_id)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"operation\":\"sign_transaction\",\"payload\":{"
                 "\"key_id\":\"%s\",\"secret\":\"%s\","
                 "\"transaction_payload\":{\"value\":0.01,"
                 "\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\","
                 "\"nonce\":0,\"type\":2,\"chainId\":%lld,\"gas\":100000,"
                 "\"maxFeePerGas\":100000000000,"
                 "\"maxPriorityFeePerGas\":3000000000}}}",
                 key_id, secret, chain_id) < 0)
        return NULL;
    return out;
}

static int conn_send(conn *c, uint64_t due)
{
    bench *b = c->b;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc;
    c->measured = due >= b->meas_start;
    if (c->measured && b->o.count > 0) {
        if (b->issued_measured >= b->o.count) {
            c->state = C_IDLE;
            stop_all(b);
            return 0;
        }
        b->issued_measured++;
    }
    if (b->key_ids != NULL) {
        const char *kid = b->key_ids[b->next_key++ % b->n_key_ids];
        char *body = seed_body(kid, b->o.secret, b->o.chain_id);
        if (body == NULL)
            return -1;
        rc = evbuffer_add_printf(out,
                                 "%s %s HTTP/1.1\r\nHost: %s\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Content-Length: %zu\r\n\r\n%s",
                                 b->o.method, b->path, b->host_hdr,
                                 strlen(body), body) < 0
                 ? -1
                 : 0;
        free(body);
    } else {
        rc = evbuffer_add(out, b->req_head_fixed, b->req_fixed_len);
    }
    if (rc != 0)
        return -1;
    c->due_us = due;
    c->state = C_BUSY;
    c->have_head = 0;
    b->inflight++;
    return 0;
}

static void pace_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == C_CONNECTING || c->state == C_DEAD) {
        /* reconnect timer */
        if (c->b->stopping) {
            c->state = C_DEAD;
            maybe_finish(c->b);
            return;
        }
        conn_connect(c);
        return;
    }
    if (c->b->stopping) {
        c->state = C_IDLE;
        maybe_finish(c->b);
        return;
    }
    {
        /* libevent computes expiry from its cached time: it may fire early */
        uint64_t now = now_us();
        if (now + 2 < c->due_us) {
            struct timeval tv;
            uint64_t d = c->due_us - now;
            tv.tv_sec = (time_t)(d / 1000000u);
            tv.tv_usec = (suseconds_t)(d % 1000000u);
            event_base_update_cache_time(c->b->base);
            evtimer_add(c->pace, &tv);
            return;
        }
    }
    if (conn_send(c, c->due_us) != 0) {
        note_bad(c->b, "out of memory building a request");
        c->b->errors++;
        stop_all(c->b);
    }
}

/* Starts the next request on an idle connection (or schedules it). */
static void conn_next(conn *c)
{
    bench *b = c->b;
    uint64_t now = now_us(), due;
    if (b->stopping) {
        c->state = C_IDLE;
        maybe_finish(b);
        return;
    }
    if (b->o.rate > 0) {
        /* Slot k of connection i is global slot k*conns + i. */
        double g = (double)(c->slot * (uint64_t)b->o.conns + (uint64_t)c->idx);
        due = b->t0 + (uint64_t)(g * 1e6 / b->o.rate);
        c->slot++;
        if (b->t_end && due >= b->t_end) {
            c->state = C_IDLE;
            maybe_finish(b);
            return;
        }
        if (due > now) {
            struct timeval tv;
            uint64_t d = due - now;
            tv.tv_sec = (time_t)(d / 1000000u);
            tv.tv_usec = (suseconds_t)(d % 1000000u);
            c->due_us = due;
            c->state = C_WAITING;
            event_base_update_cache_time(b->base);
            evtimer_add(c->pace, &tv);
            return;
        }
    } else {
        due = now;
    }
    if (conn_send(c, due) != 0) {
        note_bad(b, "out of memory building a request");
        b->errors++;
        stop_all(b);
    }
}

/* ---- response ------------------------------------------------------------ */

/* Parses the status line and headers in head[0..len). 0 or -1. */
static int parse_head(conn *c, const char *head, size_t len)
{
    const char *p = head, *end = head + len, *eol;
    int minor = 1;
    c->clen = -1;
    c->chunked = 0;
    c->close_after = 0;
    if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0)
        return -1;
    minor = p[7] - '0';
    if (p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' ||
        p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (minor == 0)
        c->close_after = 1;
    if ((eol = memchr(p, '\n', len)) == NULL)
        return -1;
    p = eol + 1;
    while (p < end) {
        const char *colon, *v, *ve;
        size_t nlen;
        if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
            eol = end;
        ve = eol;
        if (ve > p && ve[-1] == '\r')
            ve--;
        if (ve == p)
            break; /* blank line */
        colon = memchr(p, ':', (size_t)(ve - p));
        if (colon == NULL)
            return -1;
        nlen = (size_t)(colon - p);
        v = colon + 1;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            long long n = 0;
            if (v == ve)
                return -1;
            for (; v < ve; v++) {
                if (*v < '0' || *v > '9' || n > (long long)MAX_BODY)
                    return -1;
                n = n * 10 + (*v - '0');
            }
            c->clen = n;
        } else if (nlen == 17 &&
                   strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            if ((size_t)(ve - v) >= 7 &&
                strncasecmp(ve - 7, "chunked", 7) == 0)
                c->chunked = 1;
        } else if (nlen == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if ((size_t)(ve - v) == 5 && strncasecmp(v, "close", 5) == 0)
                c->close_after = 1;
            else if ((size_t)(ve - v) == 10 &&
                     strncasecmp(v, "keep-alive", 10) == 0)
                c->close_after = 0;
        }
        p = eol + 1;
    }
    if (c->chunked)
        c->clen = -1;
    return 0;
}

/* Chunked body at buf[0..len): total encoded size when complete (and the
 * decoded size in *dlen), 0 if more bytes are needed, -1 if malformed. */
static long long chunked_size(const unsigned char *buf, size_t len,
                              size_t *dlen)
{
    size_t pos = 0;
    *dlen = 0;
    for (;;) {
        unsigned long long sz = 0;
        int digits = 0;
        const unsigned char *eol;
        while (pos < len) {
            int ch = buf[pos], d;
            if (ch >= '0' && ch <= '9')
                d = ch - '0';
            else if (ch >= 'a' && ch <= 'f')
                d = ch - 'a' + 10;
            else if (ch >= 'A' && ch <= 'F')
                d = ch - 'A' + 10;
            else
                break;
            if (++digits > 8)
                return -1;
            sz = sz * 16 + (unsigned)d;
            pos++;
        }
        if (pos >= len)
            return 0;
        if (digits == 0)
            return -1;
        eol = memchr(buf + pos, '\n', len - pos);
        if (eol == NULL)
            return len - pos > 1024 ? -1 : 0; /* extensions */
        pos = (size_t)(eol - buf) + 1;
        if (sz == 0) {
            /* trailers, then a blank line */
            for (;;) {
                eol = memchr(buf + pos, '\n', len - pos);
                if (eol == NULL)
                    return 0;
                if ((size_t)(eol - buf) == pos ||
                    ((size_t)(eol - buf) == pos + 1 && buf[pos] == '\r')) {
                    return (long long)((size_t)(eol - buf) + 1);
                }
                pos = (size_t)(eol - buf) + 1;
            }
        }
        if (sz > MAX_BODY || len - pos < sz + 2)
            return len - pos > MAX_BODY ? -1 : 0;
        pos += sz;
        *dlen += sz;
        if (buf[pos] == '\r')
            pos++;
        if (pos >= len)
            return 0;
        if (buf[pos] != '\n')
            return -1;
        pos++;
    }
}

static void conn_fail(conn *c, int was_busy);

static void printable_copy(char *dst, size_t cap, const unsigned char *src,
                           size_t n)
{
    size_t i, j = 0;
    for (i = 0; i < n && j + 5 < cap; i++) {
        unsigned char ch = src[i];
        if (ch == '\r')
            continue;
        if (ch == '\n' || (ch >= 0x20 && ch < 0x7f)) {
            dst[j++] = (char)ch;
        } else {
            j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", ch);
        }
    }
    if (i < n && j + 4 < cap) {
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
}

static int body_matches(const bench *b, const unsigned char *body, size_t len)
{
    if (b->o.expect != NULL &&
        memmem(body, len, b->o.expect, strlen(b->o.expect)) == NULL)
        return 0;
    if (b->o.reject != NULL &&
        memmem(body, len, b->o.reject, strlen(b->o.reject)) != NULL)
        return 0;
    return 1;
}

/* One complete answer is in the input buffer: head_len + total bytes. */
static void complete(conn *c, size_t total)
{
    bench *b = c->b;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    uint64_t now = now_us(), lat = now > c->due_us ? now - c->due_us : 0;
    size_t all = c->head_len + total;
    unsigned char *raw = evbuffer_pullup(in, (ev_ssize_t)all);
    int ok = c->status == 200;
    const unsigned char *body = raw + c->head_len;
    size_t blen = total;
    size_t dl = 0;
    unsigned char *dec = NULL;

    if (c->chunked && raw != NULL) {
        /* Decode for --expect and for the error print. */
        size_t pos = 0, o = 0;
        dec = malloc(total + 1);
        (void)chunked_size(body, total, &dl);
        while (dec != NULL && pos < total) {
            unsigned long sz = strtoul((const char *)body + pos, NULL, 16);
            const unsigned char *eol = memchr(body + pos, '\n', total - pos);
            if (eol == NULL || sz == 0)
                break;
            pos = (size_t)(eol - body) + 1;
            memcpy(dec + o, body + pos, sz);
            o += sz;
            pos += sz;
            while (pos < total && (body[pos] == '\r' || body[pos] == '\n'))
                pos++;
        }
        if (dec != NULL) {
            body = dec;
            blen = o;
        }
    }
    if (ok && !body_matches(b, body, blen)) {
        ok = 0;
        b->mismatches++;
    }
    if (!ok) {
        char txt[FIRST_BAD_MAX];
        if (c->status != 200)
            b->status_errors++;
        b->errors++;
        printable_copy(txt, sizeof txt, raw ? raw : (const unsigned char *)"",
                       raw ? c->head_len : 0);
        if (!b->have_first_bad) {
            char bt[FIRST_BAD_MAX];
            printable_copy(bt, sizeof bt, body, blen);
            note_bad(b, "%s%s%s", txt, bt,
                     c->status == 200 ? "\n(answer did not match --expect/"
                                        "--jsonrpc)"
                                      : "");
        }
    }
    free(dec);
    evbuffer_drain(in, all);
    c->have_head = 0;
    c->state = C_IDLE;
    b->inflight--;
    b->done_total++;
    if (c->measured && ok) {
        hist_add(&b->h, lat);
        b->done_measured++;
        b->t_last_done = now;
    }
    if (evbuffer_get_length(in) != 0) {
        note_bad(b, "server sent %zu bytes after a complete answer",
                 evbuffer_get_length(in));
        b->errors++;
        b->conn_errors++;
        conn_fail(c, 0);
        return;
    }
    if (c->close_after) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        conn_connect(c);
        return;
    }
    conn_next(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t have = evbuffer_get_length(in);
    (void)bev;
    if (c->state != C_BUSY) {
        if (have > 0) {
            note_bad(c->b, "unsolicited %zu bytes from the server", have);
            c->b->errors++;
            c->b->conn_errors++;
            conn_fail(c, 0);
        }
        return;
    }
    if (!c->have_head) {
        struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        unsigned char *h;
        if (p.pos < 0) {
            if (have > MAX_HEAD) {
                note_bad(c->b, "answer head larger than %d bytes", MAX_HEAD);
                c->b->errors++;
                conn_fail(c, 1);
            }
            return;
        }
        c->head_len = (size_t)p.pos + 4;
        h = evbuffer_pullup(in, (ev_ssize_t)c->head_len);
        if (h == NULL || parse_head(c, (const char *)h, c->head_len) != 0) {
            char txt[FIRST_BAD_MAX];
            printable_copy(txt, sizeof txt, h ? h : (const unsigned char *)"",
                           h ? c->head_len : 0);
            note_bad(c->b, "malformed answer head:\n%s", txt);
            c->b->errors++;
            conn_fail(c, 1);
            return;
        }
        if (c->status >= 100 && c->status < 200) {
            evbuffer_drain(in, c->head_len); /* interim answer */
            read_cb(bev, arg);
            return;
        }
        c->have_head = 1;
    }
    have = evbuffer_get_length(in) - c->head_len;
    if (c->chunked) {
        size_t dl;
        long long n;
        unsigned char *all =
            evbuffer_pullup(in, (ev_ssize_t)(c->head_len + have));
        n = chunked_size(all + c->head_len, have, &dl);
        if (n < 0) {
            note_bad(c->b, "malformed chunked body");
            c->b->errors++;
            conn_fail(c, 1);
            return;
        }
        if (n > 0)
            complete(c, (size_t)n);
        return;
    }
    if (c->clen >= 0) {
        if (have >= (size_t)c->clen)
            complete(c, (size_t)c->clen);
        return;
    }
    /* no length: body runs to the close (handled in event_cb) */
    c->close_after = 1;
}

static void retry_later(conn *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    c->state = C_CONNECTING;
    evtimer_add(c->pace, &tv);
}

/* Connection broke; the request in flight (if any) is an error. */
static void conn_fail(conn *c, int was_busy)
{
    bench *b = c->b;
    if (c->state == C_BUSY) {
        b->inflight--;
        b->done_total++;
        if (!was_busy) {
            /* counted by caller as a protocol error already */
        }
    }
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->have_head = 0;
    c->state = C_DEAD;
    if (b->stopping) {
        maybe_finish(b);
        return;
    }
    retry_later(c, 10);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    bench *b = c->b;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one);
        c->connected_once = 1;
        c->state = C_IDLE;
        conn_next(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && c->state == C_BUSY && c->have_head &&
        c->clen < 0 && !c->chunked) {
        /* body delimited by the close */
        size_t total = evbuffer_get_length(bufferevent_get_input(bev)) -
                       c->head_len;
        c->close_after = 1;
        complete(c, total);
        return;
    }
    if (c->state == C_BUSY || c->state == C_CONNECTING) {
        int e = EVUTIL_SOCKET_ERROR();
        const char *why = (what & BEV_EVENT_TIMEOUT) ? "timed out"
                          : (what & BEV_EVENT_EOF)
                              ? "closed by the server"
                              : evutil_socket_error_to_string(e);
        if (what & BEV_EVENT_TIMEOUT)
            b->timeouts++;
        b->errors++;
        b->conn_errors++;
        note_bad(b, "connection %d: %s %s", c->idx,
                 c->state == C_CONNECTING ? "connect" : "request", why);
        if (c->state == C_CONNECTING && !c->connected_once) {
            /* never connected: give up on this connection */
            bufferevent_free(c->bev);
            c->bev = NULL;
            c->state = C_DEAD;
            maybe_finish(b);
            return;
        }
        conn_fail(c, 1);
        return;
    }
    /* idle keep-alive connection closed by the server: reopen quietly */
    evtimer_del(c->pace);
    bufferevent_free(c->bev);
    c->bev = NULL;
    if (b->stopping) {
        c->state = C_DEAD;
        maybe_finish(b);
        return;
    }
    conn_connect(c);
}

static void conn_connect(conn *c)
{
    bench *b = c->b;
    struct timeval tmo;
    c->state = C_CONNECTING;
    c->have_head = 0;
    c->bev = b->tls != NULL
                 ? bufferevent_openssl_socket_new(b->base, -1, SSL_new(b->tls),
                                                  BUFFEREVENT_SSL_CONNECTING,
                                                  BEV_OPT_CLOSE_ON_FREE)
                 : bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        note_bad(b, "cannot create a socket");
        b->errors++;
        c->state = C_DEAD;
        maybe_finish(b);
        return;
    }
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    tmo.tv_sec = (time_t)b->o.timeout;
    tmo.tv_usec = (suseconds_t)((b->o.timeout - (double)tmo.tv_sec) * 1e6);
    bufferevent_set_timeouts(c->bev, &tmo, &tmo);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&b->addr,
                                   (int)b->addrlen) != 0) {
        int e = EVUTIL_SOCKET_ERROR();
        note_bad(b, "connection %d: connect: %s", c->idx,
                 evutil_socket_error_to_string(e));
        b->errors++;
        b->conn_errors++;
        bufferevent_free(c->bev);
        c->bev = NULL;
        c->state = C_DEAD;
        maybe_finish(b);
    }
}

static void end_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_all(arg);
}

static void sig_cb(evutil_socket_t fd, short what, void *arg)
{
    bench *b = arg;
    (void)fd;
    (void)what;
    if (b->stopping)
        event_base_loopbreak(b->base);
    stop_all(b);
}

/* ---- setup --------------------------------------------------------------- */

static int parse_url(bench *b, const char *url)
{
    const char *p, *hs, *he, *ps, *path;
    char host[256], port[16] = "80";
    struct addrinfo hints, *res = NULL;
    int rc;
    if (strncmp(url, "https://", 8) == 0) {
        strcpy(port, "443");
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        fprintf(stderr, "signer-bench: --url must start with http:// or "
                        "https://\n");
        return -1;
    }
    path = strchr(p, '/');
    if (path == NULL)
        path = p + strlen(p);
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(path - hs));
        if (he == NULL)
            return -1;
        ps = he + 1;
    } else {
        hs = p;
        he = memchr(p, ':', (size_t)(path - p));
        if (he == NULL)
            he = path;
        ps = he;
    }
    if ((size_t)(he - hs) >= sizeof host || he == hs) {
        fprintf(stderr, "signer-bench: bad host in --url\n");
        return -1;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (*ps == ':') {
        size_t n = (size_t)(path - ps - 1);
        if (n == 0 || n >= sizeof port) {
            fprintf(stderr, "signer-bench: bad port in --url\n");
            return -1;
        }
        memcpy(port, ps + 1, n);
        port[n] = '\0';
    } else if (ps != path) {
        return -1;
    }
    snprintf(b->path, sizeof b->path, "%s", *path ? path : "/");
    snprintf(b->host_hdr, sizeof b->host_hdr, "%.*s", (int)(path - p), p);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0 || res == NULL) {
        fprintf(stderr, "signer-bench: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
    b->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* https://: a client context verifying the server against --cacert (the
 * system store without it), presenting --cert/--key when given (mTLS). */
static int tls_setup(bench *b)
{
    const opts *o = &b->o;
    if ((b->tls = SSL_CTX_new(TLS_client_method())) == NULL)
        return -1;
    SSL_CTX_set_verify(b->tls, SSL_VERIFY_PEER, NULL);
    if ((o->cacert ? SSL_CTX_load_verify_locations(b->tls, o->cacert, NULL)
                   : SSL_CTX_set_default_verify_paths(b->tls)) != 1 ||
        (o->cert && SSL_CTX_use_certificate_chain_file(b->tls, o->cert) != 1) ||
        (o->key && SSL_CTX_use_PrivateKey_file(b->tls, o->key,
                                               SSL_FILETYPE_PEM) != 1)) {
        fprintf(stderr, "signer-bench: cannot load --cacert/--cert/--key\n");
        return -1;
    }
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        size_t r;
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    if (buf == NULL)
        return NULL;
    /* a trailing newline of the file is not part of the body */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int load_key_ids(bench *b, const char *path)
{
    size_t len, cap = 0;
    char *text = read_file(path, &len), *line, *save = NULL;
    if (text == NULL)
        return -1;
    for (line = strtok_r(text, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        if (*line == '\0' || *line == '#')
            continue;
        if (!json_escape_ok(line)) {
            free(text);
            return -1;
        }
        if (b->n_key_ids == cap) {
            char **n = realloc(b->key_ids, (cap = cap ? cap * 2 : 1024) *
                                               sizeof *n);
            if (n == NULL) {
                free(text);
                return -1;
            }
            b->key_ids = n;
        }
        if ((b->key_ids[b->n_key_ids++] = strdup(line)) == NULL) {
            free(text);
            return -1;
        }
    }
    free(text);
    return b->n_key_ids > 0 ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: signer-bench --url http://HOST:PORT/PATH [options]\n"
        "  -c, --connections N   concurrent keep-alive connections (16)\n"
        "  -d, --duration SEC    measured run time (5; excludes warm-up)\n"
        "  -n, --requests N      measured request count instead of -d\n"
        "  -r, --rate R          open loop: R requests/s in total, paced over\n"
        "                        the connections (default: closed loop)\n"
        "  -w, --warmup SEC      warm-up before measuring (0)\n"
        "  -t, --timeout SEC     per-request timeout (10)\n"
        "  -b, --body FILE       JSON body to POST ('-' = stdin)\n"
        "      --key-id ID       built-in body: the seed's sign_transaction\n"
        "      --key-ids FILE    built-in body, rotating over key ids (1 a line)\n"
        "      --secret S        secret for the built-in body\n"
        "      --chain-id N      chainId of the built-in body (4)\n"
        "      --expect STR      an answer must contain STR\n"
        "      --reject STR      an answer must not contain STR\n"
        "      --jsonrpc         JSON-RPC: --expect '\"result\"' "
        "--reject '\"error\"'\n"
        "  -m, --method M        HTTP method (POST)\n"
        "  -l, --label NAME      name shown in the output\n"
        "  -j, --json            one JSON object on stdout\n"
        "      --cacert FILE     https://: CA bundle to verify the server\n"
        "      --cert FILE       https://: client certificate (mTLS)\n"
        "      --key FILE        https://: its private key\n"
        "  -h, --help\n"
        "Exit: 0 all answers 200 (and matching), 1 otherwise, 64 usage.\n");
}

static int parse_double(const char *s, double *out, double min)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= min) || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void report(bench *b)
{
    const opts *o = &b->o;
    double secs = b->t_last_done > b->meas_start
                      ? (double)(b->t_last_done - b->meas_start) / 1e6
                      : 0.0;
    double ops = secs > 0 ? (double)b->done_measured / secs : 0.0;
    uint64_t p50 = hist_quantile(&b->h, 0.50), p90 = hist_quantile(&b->h, 0.90);
    uint64_t p99 = hist_quantile(&b->h, 0.99);
    uint64_t p999 = hist_quantile(&b->h, 0.999);
    double mean = b->h.n ? b->h.sum / (double)b->h.n : 0.0;
    if (o->json) {
        printf("{\"label\":");
        json_str(stdout, o->label ? o->label : "");
        printf(",\"url\":");
        json_str(stdout, o->url);
        printf(",\"connections\":%d,\"rate\":%.3f,\"warmup_s\":%.3f,"
               "\"elapsed_s\":%.6f,\"requests\":%" PRIu64 ",\"total\":%" PRIu64
               ",\"errors\":%" PRIu64 ",\"status_errors\":%" PRIu64
               ",\"connection_errors\":%" PRIu64 ",\"timeouts\":%" PRIu64
               ",\"mismatches\":%" PRIu64 ",\"ops_per_s\":%.1f,"
               "\"latency_us\":{\"min\":%" PRIu64 ",\"mean\":%.1f,\"p50\":%"
               PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%"
               PRIu64 ",\"max\":%" PRIu64 "}",
               o->conns, o->rate, o->warmup, secs, b->done_measured,
               b->done_total, b->errors, b->status_errors, b->conn_errors,
               b->timeouts, b->mismatches, ops, b->h.n ? b->h.min : 0, mean,
               p50, p90, p99, p999, b->h.max);
        if (b->have_first_bad) {
            printf(",\"first_bad\":");
            json_str(stdout, b->first_bad);
        }
        printf("}\n");
    } else {
        printf("%s%s%s%s %d connections, %s%.3f s measured%s",
               o->label ? "[" : "", o->label ? o->label : "",
               o->label ? "] " : "", o->url, o->conns,
               o->rate > 0 ? "" : "closed loop, ", secs,
               o->warmup > 0 ? " (after warm-up)" : "");
        if (o->rate > 0)
            printf(", target %.1f req/s", o->rate);
        printf("\n  requests  %" PRIu64 " measured, %" PRIu64
               " total, %" PRIu64 " errors\n",
               b->done_measured, b->done_total, b->errors);
        printf("  ops/s     %.1f\n", ops);
        printf("  latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  "
               "p99.9 %.3f ms  max %.3f ms  mean %.3f ms\n",
               (double)p50 / 1e3, (double)p90 / 1e3, (double)p99 / 1e3,
               (double)p999 / 1e3, (double)b->h.max / 1e3, mean / 1e3);
    }
    fflush(stdout);
    if (b->have_first_bad)
        fprintf(stderr, "signer-bench: first bad answer:\n%s\n",
                b->first_bad);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"body", required_argument, NULL, 'b'},
        {"key-id", required_argument, NULL, 'K'},
        {"key-ids", required_argument, NULL, 'L'},
        {"secret", required_argument, NULL, 'S'},
        {"chain-id", required_argument, NULL, 'C'},
        {"expect", required_argument, NULL, 'E'},
        {"reject", required_argument, NULL, 'R'},
        {"jsonrpc", no_argument, NULL, 'J'},
        {"method", required_argument, NULL, 'm'},
        {"label", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"cacert", required_argument, NULL, 1001},
        {"cert", required_argument, NULL, 1002},
        {"key", required_argument, NULL, 1003},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    bench *b = calloc(1, sizeof *b);
    opts *o;
    double d;
    int opt, i, rc;
    struct timeval tv;

    if (b == NULL)
        return 1;
    o = &b->o;
    o->conns = 16;
    o->duration = 5;
    o->timeout = 10;
    o->chain_id = 4;
    o->method = "POST";
    while ((opt = getopt_long(argc, argv, "u:c:d:n:r:w:t:b:m:l:jh", lo,
                              NULL)) != -1) {
        switch (opt) {
        case 'u': o->url = optarg; break;
        case 'c':
            if (parse_double(optarg, &d, 1) != 0 || d > MAX_CONNS ||
                d != (int)d)
                goto bad;
            o->conns = (int)d;
            break;
        case 'd':
            if (parse_double(optarg, &d, 0.001) != 0)
                goto bad;
            o->duration = d;
            o->count = 0;
            break;
        case 'n':
            if (parse_double(optarg, &d, 1) != 0 || d != floor(d))
                goto bad;
            o->count = (uint64_t)d;
            o->duration = 0;
            break;
        case 'r':
            if (parse_double(optarg, &d, 0) != 0)
                goto bad;
            o->rate = d;
            break;
        case 'w':
            if (parse_double(optarg, &d, 0) != 0)
                goto bad;
            o->warmup = d;
            break;
        case 't':
            if (parse_double(optarg, &d, 0.001) != 0)
                goto bad;
            o->timeout = d;
            break;
        case 'b': o->body_file = optarg; break;
        case 'K': o->key_id = optarg; break;
        case 'L': o->key_ids_file = optarg; break;
        case 'S': o->secret = optarg; break;
        case 'C': o->chain_id = strtoll(optarg, NULL, 0); break;
        case 'E': o->expect = optarg; break;
        case 'R': o->reject = optarg; break;
        case 'J':
            o->expect = "\"result\"";
            o->reject = "\"error\"";
            break;
        case 'm': o->method = optarg; break;
        case 'l': o->label = optarg; break;
        case 'j': o->json = 1; break;
        case 1001: o->cacert = optarg; break;
        case 1002: o->cert = optarg; break;
        case 1003: o->key = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "signer-bench: bad value for -%c: %s\n",
                opt < 128 ? opt : '-', optarg);
        return EXIT_USAGE;
    }
    if (optind != argc || o->url == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!!o->body_file + !!o->key_id + !!o->key_ids_file != 1) {
        fprintf(stderr, "signer-bench: give exactly one of -b FILE, --key-id "
                        "ID or --key-ids FILE\n");
        return EXIT_USAGE;
    }
    if ((o->key_id || o->key_ids_file) &&
        (o->secret == NULL || !json_escape_ok(o->secret))) {
        fprintf(stderr, "signer-bench: the built-in body needs --secret "
                        "(no quotes, backslashes or control characters)\n");
        return EXIT_USAGE;
    }
    if (o->key_id && !json_escape_ok(o->key_id)) {
        fprintf(stderr, "signer-bench: bad --key-id\n");
        return EXIT_USAGE;
    }
    if (parse_url(b, o->url) != 0)
        return EXIT_USAGE;
    if (strncmp(o->url, "https://", 8) == 0 && tls_setup(b) != 0)
        return EXIT_USAGE;
    if (o->body_file) {
        if ((b->body = read_file(o->body_file, &b->body_len)) == NULL) {
            fprintf(stderr, "signer-bench: cannot read %s: %s\n",
                    o->body_file, strerror(errno));
            return EXIT_USAGE;
        }
    } else if (o->key_id) {
        if ((b->body = seed_body(o->key_id, o->secret, o->chain_id)) == NULL)
            return 1;
        b->body_len = strlen(b->body);
    } else if (load_key_ids(b, o->key_ids_file) != 0) {
        fprintf(stderr, "signer-bench: cannot read key ids from %s\n",
                o->key_ids_file);
        return EXIT_USAGE;
    }
    if (b->body != NULL && build_fixed_request(b) != 0)
        return 1;
    if (hist_init(&b->h) != 0 ||
        (b->c = calloc((size_t)o->conns, sizeof *b->c)) == NULL) {
        fprintf(stderr, "signer-bench: out of memory\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    {
        /* Precise timers (timerfd): pacing slots must not be rounded up to
         * the next millisecond, or open-loop latencies would include it. */
        struct event_config *ec = event_config_new();
        if (ec != NULL)
            event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
        b->base = ec ? event_base_new_with_config(ec) : NULL;
        if (ec != NULL)
            event_config_free(ec);
        if (b->base == NULL && (b->base = event_base_new()) == NULL) {
            fprintf(stderr, "signer-bench: event_base_new failed\n");
            return 1;
        }
    }

    b->t0 = now_us();
    b->meas_start = b->t0 + (uint64_t)(o->warmup * 1e6);
    if (o->duration > 0) {
        b->t_end = b->meas_start + (uint64_t)(o->duration * 1e6);
        d = o->warmup + o->duration;
        tv.tv_sec = (time_t)d;
        tv.tv_usec = (suseconds_t)((d - (double)tv.tv_sec) * 1e6);
        b->end_ev = evtimer_new(b->base, end_cb, b);
        evtimer_add(b->end_ev, &tv);
    }
    b->sig_ev = evsignal_new(b->base, SIGINT, sig_cb, b);
    event_add(b->sig_ev, NULL);
    for (i = 0; i < o->conns; i++) {
        conn *c = &b->c[i];
        c->b = b;
        c->idx = i;
        c->pace = evtimer_new(b->base, pace_cb, c);
        conn_connect(c);
    }
    event_base_dispatch(b->base);

    report(b);
    rc = b->errors > 0 || b->done_measured == 0 ? 1 : 0;
    if (b->done_measured == 0 && !b->have_first_bad)
        fprintf(stderr, "signer-bench: no request completed\n");

    for (i = 0; i < o->conns; i++) {
        if (b->c[i].bev)
            bufferevent_free(b->c[i].bev);
        if (b->c[i].pace)
            event_free(b->c[i].pace);
    }
    if (b->end_ev)
        event_free(b->end_ev);
    event_free(b->sig_ev);
    event_base_free(b->base);
    hist_free(&b->h);
    for (i = 0; (size_t)i < b->n_key_ids; i++)
        free(b->key_ids[i]);
    free(b->key_ids);
    free(b->req_head_fixed);
    free(b->body);
    free(b->c);
    SSL_CTX_free(b->tls);
    free(b);
    return rc;
}
