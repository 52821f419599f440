/* Transports: the pure HTTP head / frame / route / address parsers, then a
 * real server on 127.0.0.1:0 and unix sockets driven by blocking client
 * sockets (every receive has a timeout, every test an alarm). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include "transport/transport.h"
#include "transport/transport_internal.h"

/* ---- pure parsers ---------------------------------------------------------- */

static long ph(eng_http_head *h, const char *s, size_t max)
{
    return eng_http_parse_head(h, s, strlen(s), max);
}

static void test_http_head_complete(void)
{
    eng_http_head h;
    const char *req = "POST /key/import HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 12\r\nExpect: 100-continue\r\n\r\nBODY";

    CU_ASSERT_EQUAL(ph(&h, req, 16384), (long)(strlen(req) - 4));
    CU_ASSERT_STRING_EQUAL(h.method, "POST");
    CU_ASSERT_STRING_EQUAL(h.path, "/key/import");
    CU_ASSERT_EQUAL(h.content_length, 12);
    CU_ASSERT_EQUAL(h.has_content_length, 1);
    CU_ASSERT_EQUAL(h.keep_alive, 1);
    CU_ASSERT_EQUAL(h.chunked, 0);
    CU_ASSERT_EQUAL(h.expect_continue, 1);
    /* bare LF line endings are accepted */
    CU_ASSERT_EQUAL(ph(&h, "GET /healthz HTTP/1.1\nHost: x\n\n", 100), 31);
    CU_ASSERT_STRING_EQUAL(h.path, "/healthz");
    CU_ASSERT_EQUAL(h.has_content_length, 0);
    /* a leading CRLF left by a previous request is skipped and counted */
    CU_ASSERT_EQUAL(ph(&h, "\r\nGET / HTTP/1.1\r\n\r\n", 100), 20);
}

static void test_http_head_incomplete(void)
{
    eng_http_head h;
    const char *full = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n";

    for (size_t i = 0; i < strlen(full); i++)
        CU_ASSERT_EQUAL(eng_http_parse_head(&h, full, i, 16384), 0);
    CU_ASSERT_EQUAL(eng_http_parse_head(&h, full, strlen(full), 16384),
                    (long)strlen(full));
}

/* The response head, byte for byte (written without printf): status line,
 * the fixed headers, extra lines; 0 when it does not fit. */
static void test_http_format_head(void)
{
    static const char want[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 1234567\r\nConnection: keep-alive\r\n"
        "Cache-Control: no-store\r\nX-Request-Id: 00ff\r\n\r\n";
    static const char want_close[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 0\r\nConnection: close\r\n"
        "Cache-Control: no-store\r\n\r\n";
    char out[512];
    size_t n;

    n = eng_http_format_head(out, sizeof out, 200, "application/json",
                             1234567, 1, "X-Request-Id: 00ff\r\n");
    CU_ASSERT_EQUAL(n, sizeof want - 1);
    CU_ASSERT_STRING_EQUAL(out, want);
    n = eng_http_format_head(out, sizeof out, 503, "text/plain", 0, 0, NULL);
    CU_ASSERT_EQUAL(n, sizeof want_close - 1);
    CU_ASSERT_STRING_EQUAL(out, want_close);
    /* one byte short of the text and its NUL: refused */
    CU_ASSERT_EQUAL(eng_http_format_head(out, sizeof want - 1, 200,
                                         "application/json", 1234567, 1,
                                         "X-Request-Id: 00ff\r\n"),
                    0);
    CU_ASSERT_EQUAL(eng_http_format_head(out, sizeof want, 200,
                                         "application/json", 1234567, 1,
                                         "X-Request-Id: 00ff\r\n"),
                    sizeof want - 1);
}

static void test_http_head_oversize(void)
{
    eng_http_head h;
    char big[300];

    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX-Pad: ", 23);
    /* no end of head within max_header bytes */
    CU_ASSERT_EQUAL(eng_http_parse_head(&h, big, sizeof big, 128), -431);
    CU_ASSERT_EQUAL(eng_http_parse_head(&h, big, 100, 128), 0);
    /* complete, but ending after max_header */
    CU_ASSERT_EQUAL(ph(&h, "GET / HTTP/1.1\r\nX-Pad: 0123456789\r\n\r\n", 30),
                    -431);
    CU_ASSERT(ph(&h, "GET / HTTP/1.1\r\nX-Pad: 0123456789\r\n\r\n", 64) > 0);
}

static void test_http_head_bad(void)
{
    eng_http_head h;

    CU_ASSERT_EQUAL(ph(&h, "GET /\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "GET  / HTTP/1.1\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "get / HTTP/1.1\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "GET noslash HTTP/1.1\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "GET / HTTP/2.0\r\n\r\n", 100), -505);
    CU_ASSERT_EQUAL(ph(&h, "GET / FTP/1.1\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 100),
                    -400);
    CU_ASSERT_EQUAL(ph(&h, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 100),
                    -400);
    CU_ASSERT_EQUAL(ph(&h, "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
                           "Content-Length: 2\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "POST / HTTP/1.1\r\nContent-Length: "
                           "99999999999999999999999\r\n\r\n", 100), -400);
    CU_ASSERT_EQUAL(ph(&h, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                       100), -501);
}

/* A NUL byte anywhere in a head (method, target, version, header name or
 * value) is refused with 400, and so is every non-token byte in a header
 * name; every token byte is taken. */
static void test_http_head_nul_and_tokens(void)
{
    static const char *tmpl[] = {
        "G@T / HTTP/1.1\r\nA: b\r\n\r\n", "GET /@ HTTP/1.1\r\nA: b\r\n\r\n",
        "GET / HTTP/1@1\r\nA: b\r\n\r\n", "GET / HTTP/1.1\r\nA@: b\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b@c\r\n\r\n",
    };
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                                 "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    eng_http_head h;
    char buf[64];

    for (size_t i = 0; i < sizeof tmpl / sizeof *tmpl; i++) {
        size_t n = strlen(tmpl[i]);
        memcpy(buf, tmpl[i], n);
        *strchr(buf, '@') = '\0';
        CU_ASSERT_EQUAL(eng_http_parse_head(&h, buf, n, 100), -400);
    }
    for (int b = 1; b < 256; b++) {
        int ok = b != ':' && strchr(tchars, b) != NULL;
        snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nX%cY: v\r\n\r\n", b);
        if (b == ':')
            continue; /* "X:Y: v" is the header X */
        CU_ASSERT_EQUAL(ph(&h, buf, 100) > 0, ok);
    }
}

static void test_http_head_keepalive(void)
{
    eng_http_head h;

    CU_ASSERT(ph(&h, "GET / HTTP/1.1\r\n\r\n", 100) > 0);
    CU_ASSERT_EQUAL(h.keep_alive, 1);
    CU_ASSERT(ph(&h, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 100) > 0);
    CU_ASSERT_EQUAL(h.keep_alive, 0);
    CU_ASSERT(ph(&h, "GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n",
                 100) > 0);
    CU_ASSERT_EQUAL(h.keep_alive, 0);
    CU_ASSERT(ph(&h, "GET / HTTP/1.0\r\n\r\n", 100) > 0);
    CU_ASSERT_EQUAL(h.keep_alive, 0);
    CU_ASSERT(ph(&h, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 100) >
              0);
    CU_ASSERT_EQUAL(h.keep_alive, 1);
}

static void test_http_head_chunked(void)
{
    eng_http_head h;

    CU_ASSERT(ph(&h, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                 100) > 0);
    CU_ASSERT_EQUAL(h.chunked, 1);
    CU_ASSERT_EQUAL(h.has_content_length, 0);
    CU_ASSERT(ph(&h, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n"
                     "Content-Length: 5\r\n\r\n", 100) > 0);
    CU_ASSERT_EQUAL(h.chunked, 1);
}

static void test_frame_parse(void)
{
    unsigned char buf[64];
    size_t plen = 99;

    eng_frame_header(buf, 5);
    CU_ASSERT(buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 5);
    memcpy(buf + 4, "{\"a\"}", 5);
    eng_frame_header(buf + 9, 2);
    memcpy(buf + 13, "{}", 2);
    /* split across reads: nothing until the whole first frame is there */
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 0, 100, &plen), 0);
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 3, 100, &plen), 0);
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 4, 100, &plen), 0);
    CU_ASSERT_EQUAL(plen, 5);
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 8, 100, &plen), 0);
    /* two frames in one buffer */
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 15, 100, &plen), 9);
    CU_ASSERT_EQUAL(plen, 5);
    CU_ASSERT_EQUAL(eng_frame_parse(buf + 9, 6, 100, &plen), 6);
    CU_ASSERT_EQUAL(plen, 2);
    /* oversize, detected from the header alone */
    eng_frame_header(buf, 101);
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 4, 100, &plen), -1);
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 4, 101, &plen), 0);
    buf[0] = 0xff;
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 4, 1 << 20, &plen), -1);
    /* empty frame is complete at 4 bytes */
    eng_frame_header(buf, 0);
    CU_ASSERT_EQUAL(eng_frame_parse(buf, 4, 100, &plen), 4);
    CU_ASSERT_EQUAL(plen, 0);
}

static void test_frame_request_id(void)
{
    char id[64];

    eng_frame_request_id("{\"id\":42,\"x\":1}", 15, id, sizeof id);
    CU_ASSERT_STRING_EQUAL(id, "42");
    eng_frame_request_id("{\"id\":\"a\\\"b\"}", 13, id, sizeof id);
    CU_ASSERT_STRING_EQUAL(id, "\"a\\\"b\"");
    eng_frame_request_id("{\"id\":{}}", 9, id, sizeof id);
    CU_ASSERT_STRING_EQUAL(id, "null");
    eng_frame_request_id("not json", 8, id, sizeof id);
    CU_ASSERT_STRING_EQUAL(id, "null");
}

static void test_normalise_path(void)
{
    char p[256];

#define NORM(in, out) \
    snprintf(p, sizeof p, "%s", in); \
    eng_http_normalise_path(p); \
    CU_ASSERT_STRING_EQUAL(p, out)
    NORM("/", "/");
    NORM("//key/abc/tx_signature", "/key/abc/tx_signature");
    NORM("/key///abc//tx_signature?x=1//", "/key/abc/tx_signature");
    NORM("/key/import#frag", "/key/import");
    NORM("///", "/");
    NORM("/healthz/", "/healthz/");
#undef NORM
}

static void test_listen_parse(void)
{
    eng_sockaddr a;
    char err[200];

    CU_ASSERT_EQUAL(eng_listen_parse("127.0.0.1:8080", &a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&a.ss)->sin_port), 8080);
    CU_ASSERT_EQUAL(eng_listen_parse("[::1]:0", &a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.family, AF_INET6);
    CU_ASSERT_EQUAL(eng_listen_parse("unix:/tmp/x.sock", &a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.family, AF_UNIX);
    CU_ASSERT_STRING_EQUAL(((struct sockaddr_un *)&a.ss)->sun_path,
                           "/tmp/x.sock");
    CU_ASSERT_EQUAL(eng_listen_parse("vsock:any:5000", &a, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.family, AF_VSOCK);
    CU_ASSERT_EQUAL(eng_listen_parse("vsock:16:5000", &a, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("127.0.0.1:65536", &a, err, sizeof err),
                        0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("127.0.0.1", &a, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("::1:80", &a, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("vsock:x:1", &a, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("vsock:3", &a, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("unix:", &a, err, sizeof err), 0);
    CU_ASSERT_NOT_EQUAL(eng_listen_parse("127.0.0.1:-1", &a, err, sizeof err), 0);
}

static void test_limits_default(void)
{
    eng_limits l;

    eng_limits_default(&l);
    CU_ASSERT_EQUAL(l.max_body, 1048576);
    CU_ASSERT_EQUAL(l.max_header, 16384);
    CU_ASSERT_EQUAL(l.max_connections, 1024);
    CU_ASSERT_EQUAL(l.max_pipeline, 64);
    CU_ASSERT_EQUAL(l.max_inflight, 4096);
    CU_ASSERT_EQUAL(l.read_timeout_ms, 10000);
    CU_ASSERT_EQUAL(l.write_timeout_ms, 10000);
    CU_ASSERT_EQUAL(l.idle_timeout_ms, 60000);
    CU_ASSERT_EQUAL(l.shutdown_timeout_ms, 10000);
    CU_ASSERT_EQUAL(l.max_per_peer, 256);
}

/* ---- the fake dispatcher ---------------------------------------------------- */

static atomic_int started;     /* handler calls begun */
static atomic_int finished;    /* handler calls returned */
static atomic_int not_ready;
static atomic_int reloads;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open = 1;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The request id the handler saw last (the X-Request-Id to expect). */
static char last_rid[17];
static pthread_mutex_t rid_mu = PTHREAD_MUTEX_INITIALIZER;

/* Waits for the gate (at most 5 s). */
static void gate_wait(void)
{
    struct timespec dl;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        if (pthread_cond_timedwait(&gate_cv, &gate_mu, &dl) != 0)
            break;
    pthread_mutex_unlock(&gate_mu);
}

/* The echo answer {"op":..,"key_id":..,"framed":..,"body":BODY}; a body
 * holding MARKER is not echoed (the wipe test looks for it in freed
 * memory). */
static int fake_answer(const eng_request *req, char **resp, size_t *resp_len)
{
    int n, marked = memmem(req->body, req->body_len, "MARKER", 6) != NULL;

    pthread_mutex_lock(&rid_mu);
    snprintf(last_rid, sizeof last_rid, "%s",
             req->request_id ? req->request_id : "");
    pthread_mutex_unlock(&rid_mu);
    n = asprintf(resp, "{\"op\":\"%s\",\"key_id\":\"%s\",\"framed\":%d,"
                       "\"body\":%.*s}",
                 req->operation ? req->operation : "",
                 req->key_id ? req->key_id : "", req->framed,
                 marked ? 4 : (int)req->body_len,
                 marked ? "null" : req->body_len ? req->body : "null");
    *resp_len = n < 0 ? 0 : (size_t)n;
    return 200;
}

/* Synchronous handler: a body containing "slow" sleeps 200 ms; "block"
 * waits for the gate (at most 5 s) -- on the loop's own thread. */
static int fake_handle(void *ctx, const eng_request *req, char **resp,
                       size_t *resp_len)
{
    int st;

    (void)ctx;
    atomic_fetch_add(&started, 1);
    if (memmem(req->body, req->body_len, "slow", 4) != NULL)
        sleep_ms(200);
    if (memmem(req->body, req->body_len, "block", 5) != NULL)
        gate_wait();
    st = fake_answer(req, resp, resp_len);
    atomic_fetch_add(&finished, 1);
    return st;
}

/* ---- the asynchronous variant: slow and blocking requests complete from
 * a thread of their own, the others at once ------------------------------- */

#define MAX_ASYNC 64
static pthread_t async_th[MAX_ASYNC];
static int n_async;
static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_async; /* 1: the harness uses callbacks.submit */

typedef struct async_job {
    const eng_request *req;
    eng_completion *done;
} async_job;

/* Thread: waits as fake_handle would, then completes. */
static void *async_main(void *arg)
{
    async_job *j = arg;
    char *resp = NULL;
    size_t rl = 0;
    int st = fake_handle(NULL, j->req, &resp, &rl);

    eng_complete(j->done, st, resp, rl);
    free(j);
    return NULL;
}

/* callbacks.submit: hands slow/blocking requests to a thread. */
static void fake_submit(void *ctx, const eng_request *req,
                        eng_completion *done)
{
    async_job *j;
    int later = memmem(req->body, req->body_len, "slow", 4) != NULL ||
                memmem(req->body, req->body_len, "block", 5) != NULL;

    if (later && (j = malloc(sizeof *j)) != NULL) {
        j->req = req;
        j->done = done;
        pthread_mutex_lock(&async_mu);
        if (n_async < MAX_ASYNC &&
            pthread_create(&async_th[n_async], NULL, async_main, j) == 0) {
            n_async++;
            pthread_mutex_unlock(&async_mu);
            return;
        }
        pthread_mutex_unlock(&async_mu);
        free(j);
    }
    {
        char *resp = NULL;
        size_t rl = 0;
        int st = fake_handle(ctx, req, &resp, &rl);
        eng_complete(done, st, resp, rl);
    }
}

/* Joins the threads of fake_submit. */
static void async_join(void)
{
    pthread_mutex_lock(&async_mu);
    for (int i = 0; i < n_async; i++)
        pthread_join(async_th[i], NULL);
    n_async = 0;
    pthread_mutex_unlock(&async_mu);
}

/* 1 if s[0..n) is a plausible key id (hex digits and '-', 1..64). */
static int plausible_id(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* callbacks.error_body (when g_custom_errors): the engine's error shape. */
static int g_custom_errors;

static char *fake_error_body(void *ctx, int status, const char *msg,
                             const char *id_json, size_t *len)
{
    char *out = NULL;
    int n;

    (void)ctx;
    n = asprintf(&out, "{\"custom\":%d,\"id\":%s,\"why\":\"%s\"}", status,
                 id_json != NULL ? id_json : "\"http\"", msg);
    *len = n > 0 ? (size_t)n : 0;
    return n > 0 ? out : NULL;
}

/* callbacks.route: the seed's routes, as the engine declares them. */
static int fake_route(void *ctx, const char *method, const char *path,
                      const char *body, size_t body_len, eng_route_match *m)
{
    const char *rest;
    size_t n = strlen(path);

    (void)ctx;
    (void)body;
    (void)body_len;
    m->allow = "POST";
    if (strcmp(path, "/") == 0)
        m->operation = NULL;
    else if (strcmp(path, "/key") == 0)
        m->operation = "generate_key";
    else if (strcmp(path, "/key/import") == 0)
        m->operation = "set_key";
    else if (n > 5 && strncmp(path, "/key/", 5) == 0 &&
             (rest = strchr(path + 5, '/')) != NULL &&
             plausible_id(path + 5, (size_t)(rest - path - 5)) &&
             (strcmp(rest, "/tx_signature") == 0 ||
              strcmp(rest, "/userop_signature") == 0)) {
        m->operation = strcmp(rest, "/tx_signature") == 0 ? "sign_transaction"
                                                         : "sign_userop";
        snprintf(m->key_id, sizeof m->key_id, "%.*s",
                 (int)(rest - path - 5), path + 5);
    } else
        return 404;
    return strcmp(method, "POST") == 0 ? 0 : 405;
}

/* ---- wipe check: every block the engine's objects free is searched for
 * a marker the test sends in request bodies (linked with --wrap=free) --- */

static atomic_int wipe_watch;      /* 1 while a wipe test runs */
static atomic_int unwiped_frees;   /* blocks freed still holding it */
void __real_free(void *p);
void __wrap_free(void *p);

/* free() of the engine objects: counts blocks still holding the marker. */
void __wrap_free(void *p)
{
    if (p != NULL && atomic_load(&wipe_watch) &&
        memmem(p, malloc_usable_size(p), "MARKER-5ecret", 13) != NULL)
        atomic_fetch_add(&unwiped_frees, 1);
    __real_free(p);
}

static char *fake_metrics(void *ctx)
{
    (void)ctx;
    return strdup("signer_fake_metric 7\n");
}

static int fake_ready(void *ctx)
{
    (void)ctx;
    return !atomic_load(&not_ready);
}

static eng_server *reload_server;    /* set: SIGHUP applies reload_limits */
static eng_limits reload_limits;

static void fake_reload(void *ctx)
{
    (void)ctx;
    if (reload_server != NULL)
        eng_server_set_limits(reload_server, &reload_limits);
    atomic_fetch_add(&reloads, 1);
}

static void gate_set(int open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* ---- server harness -------------------------------------------------------- */

typedef struct harness {
    eng_server *s;
    pthread_t th;
    int rc;
    char *dir;
    char sock[256];   /* unix socket path (listener 1), frames */
    char hsock[256];  /* unix socket path (listener 2), http */
} harness;

static harness H;

/* The asynchronous suite: each server test again with callbacks.submit. */
static int async_on(void)
{
    g_async = 1;
    return 0;
}

static int async_off(void)
{
    g_async = 0;
    return 0;
}

static void *run_thread(void *arg)
{
    harness *h = arg;
    h->rc = eng_server_run(h->s);
    return NULL;
}

/* Starts with `loops` event loops: 0 = HTTP on 127.0.0.1:0, 1 = frames
 * on unix, 2 = frames on TCP, 3 = HTTP on unix. */
static int harness_start(const eng_limits *limits, int loops)
{
    eng_listen_spec specs[5];
    eng_server_config cfg;
    eng_server_callbacks cb = {NULL, fake_handle, fake_metrics, fake_ready,
                               fake_reload, g_async ? fake_submit : NULL,
                               fake_route,
                               g_custom_errors ? fake_error_body : NULL};
    char err[256], a1[300], a3[300];

    alarm(60); /* a hung test kills the run instead of blocking CI */
    memset(&H, 0, sizeof H);
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    atomic_store(&not_ready, 0);
    gate_set(1);
    H.dir = tu_tmpdir();
    if (H.dir == NULL)
        return -1;
    snprintf(H.sock, sizeof H.sock, "%s/frames.sock", H.dir);
    snprintf(H.hsock, sizeof H.hsock, "%s/http.sock", H.dir);
    snprintf(a1, sizeof a1, "unix:%s", H.sock);
    snprintf(a3, sizeof a3, "unix:%s", H.hsock);
    specs[0] = (eng_listen_spec){"127.0.0.1:0", ENG_PROTO_HTTP, NULL};
    specs[1] = (eng_listen_spec){a1, ENG_PROTO_FRAMES, NULL};
    specs[2] = (eng_listen_spec){"127.0.0.1:0", ENG_PROTO_FRAMES, NULL};
    specs[3] = (eng_listen_spec){a3, ENG_PROTO_HTTP, NULL};
    specs[4] = (eng_listen_spec){"127.0.0.1:0", ENG_PROTO_HEALTH, NULL};
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = specs;
    cfg.n_listen = 5;
    cfg.limits = *limits;
    cfg.io_loops = loops;
    H.s = eng_server_new(&cfg, &cb);
    if (H.s == NULL)
        return -1;
    if (eng_server_start(H.s, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    H.rc = -99;
    if (pthread_create(&H.th, NULL, run_thread, &H) != 0)
        return -1;
    return 0;
}

static void harness_stop(void)
{
    gate_set(1);
    async_join(); /* every completion arrives while the server runs */
    if (H.s != NULL) {
        eng_server_stop(H.s);
        pthread_join(H.th, NULL);
        CU_ASSERT_EQUAL(H.rc, 0);
        eng_server_free(H.s);
        H.s = NULL;
    }
    tu_rmtree(H.dir);
    free(H.dir);
    H.dir = NULL;
    alarm(0);
}

static eng_limits test_limits(void)
{
    eng_limits l;

    eng_limits_default(&l);
    l.max_body = 4096;
    l.max_header = 1024;
    l.read_timeout_ms = 3000;
    l.shutdown_timeout_ms = 3000;
    return l;
}

/* ---- client helpers ---------------------------------------------------------- */

typedef struct client {
    int fd;
    char buf[65536];
    size_t len;
} client;

static void set_timeouts(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int cl_tcp(client *c, int port)
{
    struct sockaddr_in in;

    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    set_timeouts(c->fd, 3000);
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&in, sizeof in) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static int cl_unix(client *c, const char *path)
{
    struct sockaddr_un un;

    memset(c, 0, sizeof *c);
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    set_timeouts(c->fd, 3000);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    if (connect(c->fd, (struct sockaddr *)&un, sizeof un) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void cl_close(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int cl_send(client *c, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cl_sends(client *c, const char *s) { return cl_send(c, s, strlen(s)); }

/* Reads more bytes into the buffer; >0, 0 on EOF, -1 on error/timeout. */
static ssize_t cl_fill(client *c)
{
    ssize_t r;

    if (c->len == sizeof c->buf)
        return -1;
    r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (r > 0)
        c->len += (size_t)r;
    return r;
}

static void cl_consume(client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

typedef struct resp {
    int status;
    int keep_alive;
    char head[2048];
    char body[8192];
    size_t body_len;
} resp;

/* Reads one HTTP response (head + Content-Length body); 0 or -1. */
static int cl_http(client *c, resp *r)
{
    char *end, *cl, *conn;
    size_t hl, bl;

    memset(r, 0, sizeof *r);
    for (;;) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end != NULL)
            break;
        if (cl_fill(c) <= 0)
            return -1;
    }
    hl = (size_t)(end - c->buf) + 4;
    if (hl >= sizeof r->head)
        return -1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
        return -1;
    cl = strcasestr(r->head, "\r\nContent-Length: ");
    bl = cl ? strtoul(cl + 18, NULL, 10) : 0;
    conn = strcasestr(r->head, "\r\nConnection: ");
    r->keep_alive = conn && strncmp(conn + 14, "keep-alive", 10) == 0;
    while (c->len < hl + bl)
        if (cl_fill(c) <= 0)
            return -1;
    if (bl >= sizeof r->body)
        return -1;
    memcpy(r->body, c->buf + hl, bl);
    r->body[bl] = '\0';
    r->body_len = bl;
    cl_consume(c, hl + bl);
    return 0;
}

/* Sends a frame holding s. */
static int cl_frame_send(client *c, const char *s)
{
    unsigned char h[4];
    eng_frame_header(h, strlen(s));
    if (cl_send(c, h, 4) != 0)
        return -1;
    return cl_sends(c, s);
}

/* Reads one frame into out (NUL-terminated); its length or -1. */
static long cl_frame(client *c, char *out, size_t out_len)
{
    size_t plen = 0;
    long r;

    while ((r = eng_frame_parse((unsigned char *)c->buf, c->len,
                                sizeof c->buf, &plen)) == 0)
        if (cl_fill(c) <= 0)
            return -1;
    if (r < 0 || plen >= out_len)
        return -1;
    memcpy(out, c->buf + 4, plen);
    out[plen] = '\0';
    cl_consume(c, (size_t)r);
    return (long)plen;
}

/* 1 if the server closed the connection (EOF or reset) within ms. */
static int cl_closed_within(client *c, int ms)
{
    uint64_t end = mono_ms() + (uint64_t)ms;
    char b[4096];

    while (mono_ms() < end) {
        struct pollfd p = {c->fd, POLLIN, 0};
        int left = (int)(end - mono_ms());
        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            continue;
        ssize_t r = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return 1;
    }
    return 0;
}

/* Port of the harness's TCP HTTP listener. */
static int http_port(void) { return eng_server_port(H.s, 0); }

/* One POST on a new connection; returns the status (resp in r). */
static int post_once(const char *path, const char *body, resp *r)
{
    client c;
    char *req = NULL;
    int st = -1;

    if (cl_tcp(&c, http_port()) != 0)
        return -1;
    if (asprintf(&req, "POST %s HTTP/1.1\r\nHost: t\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                 path, strlen(body), body) > 0 &&
        cl_sends(&c, req) == 0 && cl_http(&c, r) == 0)
        st = r->status;
    if (req != NULL)
        memset(req, 0, strlen(req)); /* the wipe test watches frees */
    free(req);
    cl_close(&c);
    return st;
}

/* ---- server tests ------------------------------------------------------------ */

static void test_http_post_keepalive(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    const char *uuid = "0b2f6a0e-6a1c-4c3e-9a4e-2f1d3c4b5a69";
    const char *op_body = "{\"operation\":\"x\",\"payload\":{\"a\":1}}";
    char req[512];

    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    CU_ASSERT(eng_server_port(H.s, 0) > 0);
    CU_ASSERT(eng_server_port(H.s, 2) > 0);
    CU_ASSERT_EQUAL(eng_server_port(H.s, 1), -1);
    CU_ASSERT_EQUAL(eng_server_port(H.s, 9), -1);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: t\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(op_body), op_body);
    CU_ASSERT(cl_sends(&c, req) == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.keep_alive, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.head, "Content-Type: application/json\r\n"));
    CU_ASSERT_STRING_EQUAL(r.body,
        "{\"op\":\"\",\"key_id\":\"\",\"framed\":0,"
        "\"body\":{\"operation\":\"x\",\"payload\":{\"a\":1}}}");
    /* same connection, a convenience route */
    snprintf(req, sizeof req,
             "POST /key/%s/tx_signature HTTP/1.1\r\nHost: t\r\n"
             "Content-Length: 8\r\n\r\n{\"b\":2}", uuid);
    /* body is 7 bytes but we announced 8: send one more byte */
    CU_ASSERT(cl_sends(&c, req) == 0 && cl_sends(&c, " ") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"op\":\"sign_transaction\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, uuid));
    CU_ASSERT_EQUAL(atomic_load(&finished), 2);
    /* Connection: close is honoured */
    CU_ASSERT(cl_sends(&c, "POST /key HTTP/1.1\r\nConnection: close\r\n"
                           "Content-Length: 2\r\n\r\n{}") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.keep_alive, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"op\":\"generate_key\""));
    CU_ASSERT(cl_closed_within(&c, 2000));
    cl_close(&c);
    harness_stop();
}

static void test_http_pipelined(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    const char *two =
        "POST / HTTP/1.1\r\nContent-Length: 8\r\n\r\n\"slow-1\""
        "POST /key/import HTTP/1.1\r\nContent-Length: 8\r\n\r\n\"fast-2\""
        "GET /healthz HTTP/1.1\r\n\r\n";

    CU_ASSERT_FATAL(harness_start(&l, 4) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, two) == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "slow-1"));
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "fast-2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"op\":\"set_key\""));
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"ok\"}");
    cl_close(&c);
    harness_stop();
}

static void test_http_half_close(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;

    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\"a\""
                           "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\"b\"")
              == 0);
    shutdown(c.fd, SHUT_WR);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"a\""));
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"b\""));
    CU_ASSERT(cl_closed_within(&c, 2000));
    cl_close(&c);
    harness_stop();
}

static void test_http_ops_routes(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;

    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "GET /healthz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"ok\"}");
    CU_ASSERT(cl_sends(&c, "GET /readyz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    atomic_store(&not_ready, 1);
    CU_ASSERT(cl_sends(&c, "GET /readyz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"enclave_status\":503,\"enclave_result\":"
                                   "{\"error\":\"not ready\"}}");
    CU_ASSERT(cl_sends(&c, "GET /metrics HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.head, "Content-Type: text/plain"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "signer_fake_metric 7\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "signer_transport_connections 1\n"));
    CU_ASSERT(cl_sends(&c, "GET /nope HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"enclave_status\":404,\"enclave_result\":"
                                   "{\"error\":\"no such route\"}}");
    CU_ASSERT_EQUAL(r.keep_alive, 1);
    CU_ASSERT(cl_sends(&c, "GET /key HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.head, "Allow: POST\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"enclave_status\":405"));
    CU_ASSERT(cl_sends(&c, "POST /key/not-a-uuid!/tx_signature HTTP/1.1\r\n"
                           "Content-Length: 0\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 404);
    /* Expect: 100-continue */
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
                           "Content-Length: 2\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 100);
    CU_ASSERT(cl_sends(&c, "{}") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"body\":{}"));
    /* POST without Content-Length: 411 and close */
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 411);
    CU_ASSERT_EQUAL(r.keep_alive, 0);
    CU_ASSERT(cl_closed_within(&c, 2000));
    cl_close(&c);
    /* chunked refused */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\n{}\r\n0\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 411);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"enclave_status\":411"));
    CU_ASSERT(cl_closed_within(&c, 2000));
    cl_close(&c);
    /* HTTP/1.0 closes by default; garbage gets 400 */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "GET /healthz HTTP/1.0\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.keep_alive, 0);
    CU_ASSERT(cl_closed_within(&c, 2000));
    cl_close(&c);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "HELLO\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"enclave_status\":400,\"enclave_result\":"
                                   "{\"error\":\"malformed HTTP request\"}}");
    cl_close(&c);
    CU_ASSERT_EQUAL(atomic_load(&finished), 1);
    harness_stop();
}

/* A "health" listener answers the probes and /metrics like any HTTP
 * listener, and 404 to every other request, which never reaches a handler
 * or a route; the connection stays usable. */
static void test_health_listener(void)
{
    eng_limits l = test_limits();
    const char *refused[] = {
        "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "POST /key HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "GET /key HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"};
    client c;
    resp r;
    size_t i;

    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, eng_server_port(H.s, 4)) == 0);
    CU_ASSERT(cl_sends(&c, "GET /healthz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"ok\"}");
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CU_ASSERT(cl_sends(&c, refused[i]) == 0);
        CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
        CU_ASSERT_EQUAL(r.status, 404);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "serves only GET /healthz, "
                                              "/readyz and /metrics"));
        CU_ASSERT_EQUAL(r.keep_alive, 1);
    }
    CU_ASSERT(cl_sends(&c, "POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n"
                           "\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT(cl_sends(&c, "GET /readyz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(cl_sends(&c, "GET /metrics HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "signer_fake_metric 7\n"));
    cl_close(&c);
    CU_ASSERT_EQUAL(atomic_load(&started), 0);
    CU_ASSERT_EQUAL(atomic_load(&finished), 0);
    harness_stop();
}

static void test_http_limits(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    char big[3000];

    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    /* body over max_body (4096): 413 from the head alone, then close */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n{") ==
              0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 413);
    CU_ASSERT_EQUAL(r.keep_alive, 0);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"enclave_status\":413,\"enclave_result\":"
                                   "{\"error\":\"request body too large\"}}");
    CU_ASSERT(cl_closed_within(&c, 3000));
    cl_close(&c);
    /* a body of exactly max_body is fine */
    {
        char *body = malloc(4097);
        CU_ASSERT_FATAL(body != NULL);
        memset(body, 'x', 4096);
        body[0] = '"';
        body[4095] = '"';
        body[4096] = '\0';
        CU_ASSERT_EQUAL(post_once("/", body, &r), 200);
        free(body);
    }
    /* head over max_header (1024): 431 then close */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /healthz HTTP/1.1\r\nX-Big: ", 30);
    CU_ASSERT(cl_send(&c, big, sizeof big) == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 431);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"enclave_status\":431"));
    CU_ASSERT(cl_closed_within(&c, 3000));
    cl_close(&c);
    CU_ASSERT_EQUAL(atomic_load(&finished), 1);
    harness_stop();
}

static void test_slow_does_not_block(void)
{
    eng_limits l = test_limits();
    client a, b;
    resp r;
    uint64_t t0, dt;

    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    CU_ASSERT_FATAL(cl_tcp(&a, http_port()) == 0);
    CU_ASSERT_FATAL(cl_tcp(&b, http_port()) == 0);
    t0 = mono_ms();
    CU_ASSERT(cl_sends(&a, "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n\"slow\"")
              == 0);
    while (atomic_load(&started) < 1 && mono_ms() - t0 < 2000)
        sleep_ms(1);
    CU_ASSERT(cl_sends(&b, "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n\"fast\"")
              == 0);
    CU_ASSERT_FATAL(cl_http(&b, &r) == 0);
    dt = mono_ms() - t0;
    CU_ASSERT_EQUAL(r.status, 200);
    /* not queued behind the 200 ms request: it is still running */
    CU_ASSERT(dt < 150 * (uint64_t)tu_slow());
    CU_ASSERT_EQUAL(atomic_load(&finished), 1);
    CU_ASSERT_FATAL(cl_http(&a, &r) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "slow"));
    CU_ASSERT(mono_ms() - t0 >= 190);
    cl_close(&a);
    cl_close(&b);
    harness_stop();
}

static void test_frames_pipelined(void)
{
    eng_limits l = test_limits();
    client c;
    char all[2048], one[128], out[512];
    size_t n = 0;
    int seen[10] = {0};

    CU_ASSERT_FATAL(harness_start(&l, 3) == 0);
    CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
    for (int i = 0; i < 10; i++) {
        int len = snprintf(one, sizeof one,
                           "{\"id\":%d,\"operation\":\"%s\",\"payload\":{}}", i,
                           i == 0 ? "slow" : "x");
        eng_frame_header((unsigned char *)all + n, (size_t)len);
        memcpy(all + n + 4, one, (size_t)len);
        n += 4 + (size_t)len;
    }
    CU_ASSERT(cl_send(&c, all, n) == 0);
    for (int i = 0; i < 10; i++) {
        int id = -1;
        const char *p;
        CU_ASSERT_FATAL(cl_frame(&c, out, sizeof out) > 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"framed\":1"));
        p = strstr(out, "{\"id\":");
        CU_ASSERT_FATAL(p != NULL);
        id = atoi(p + 6);
        CU_ASSERT_FATAL(id >= 0 && id < 10);
        seen[id]++;
        /* the slow one (id 0) is not first: answers go out as they
         * complete (with io_loops a connection's requests run one after
         * the other on its loop, so they complete in order) */
        if (i == 0 && g_async)
            CU_ASSERT_NOT_EQUAL(id, 0);
        if (!g_async)
            CU_ASSERT_EQUAL(id, i);
    }
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
    /* a zero-length frame gets a 400 frame and the connection lives on */
    memset(one, 0, 4);
    CU_ASSERT(cl_send(&c, one, 4) == 0);
    CU_ASSERT_FATAL(cl_frame(&c, out, sizeof out) > 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"id\":null,\"enclave_status\":400,"
                                "\"enclave_result\":{\"error\":\"empty frame\"}}");
    CU_ASSERT(cl_frame_send(&c, "{\"id\":77}") == 0);
    CU_ASSERT_FATAL(cl_frame(&c, out, sizeof out) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"id\":77}"));
    /* an oversize frame: one error frame, then close */
    eng_frame_header((unsigned char *)one, 4097);
    CU_ASSERT(cl_send(&c, one, 4) == 0);
    CU_ASSERT_FATAL(cl_frame(&c, out, sizeof out) > 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"id\":null,\"enclave_status\":413,"
                                "\"enclave_result\":{\"error\":\"frame too large\"}}");
    CU_ASSERT(cl_closed_within(&c, 3000));
    cl_close(&c);
    /* frames over TCP too */
    CU_ASSERT_FATAL(cl_tcp(&c, eng_server_port(H.s, 2)) == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":\"abc\"}") == 0);
    CU_ASSERT_FATAL(cl_frame(&c, out, sizeof out) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"id\":\"abc\"}"));
    cl_close(&c);
    harness_stop();
}

/* io_loops: /metrics counts the requests of every loop; limits changed on
 * SIGHUP reach every loop. */
static void test_loops_metrics_and_reload(void)
{
    eng_limits l = test_limits();
    client c[4];
    resp r;
    char *big = malloc(6000), *req = NULL;
    uint64_t t0;

    CU_ASSERT_FATAL(big != NULL);
    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    /* four connections (two per loop, round robin), a request each */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(cl_tcp(&c[i], http_port()) == 0);
        CU_ASSERT(cl_sends(&c[i], "POST / HTTP/1.1\r\nContent-Length: 2\r\n"
                                  "\r\n{}") == 0);
        CU_ASSERT_FATAL(cl_http(&c[i], &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
    }
    CU_ASSERT(cl_sends(&c[0], "GET /metrics HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c[0], &r) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "signer_transport_connections 4\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(r.body, "signer_transport_connections_accepted_total 4\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(r.body, "signer_transport_requests_total{proto=\"http\"} 4\n"));
    /* a 5000-byte body is over max_body (4096) on every loop ... */
    memset(big, ' ', 5000);
    big[0] = '{';
    big[4999] = '}';
    big[5000] = '\0';
    CU_ASSERT(asprintf(&req, "POST / HTTP/1.1\r\nContent-Length: 5000\r\n"
                             "\r\n%s", big) > 0);
    CU_ASSERT(cl_sends(&c[1], req) == 0);
    CU_ASSERT_FATAL(cl_http(&c[1], &r) == 0);
    CU_ASSERT_EQUAL(r.status, 413);
    /* ... until a reload raises it: then both loops take it */
    reload_limits = l;
    reload_limits.max_body = 8192;
    reload_server = H.s;
    atomic_store(&reloads, 0);
    kill(getpid(), SIGHUP);
    t0 = mono_ms();
    while (atomic_load(&reloads) < 1 && mono_ms() - t0 < 2000)
        sleep_ms(5);
    CU_ASSERT_EQUAL(atomic_load(&reloads), 1);
    for (int i = 2; i < 4; i++) {
        CU_ASSERT(cl_sends(&c[i], req) == 0);
        CU_ASSERT_FATAL(cl_http(&c[i], &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
    }
    reload_server = NULL;
    for (int i = 0; i < 4; i++)
        cl_close(&c[i]);
    free(req);
    free(big);
    harness_stop();
}

static void test_frames_max_pipeline(void)
{
    eng_limits l = test_limits();
    client c;
    char out[256];

    l.max_pipeline = 2;
    CU_ASSERT_FATAL(harness_start(&l, 4) == 0);
    gate_set(0);
    CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":1,\"b\":\"block\"}") == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":2,\"b\":\"block\"}") == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":3}") == 0);
    for (int i = 0; i < 200 && atomic_load(&started) < 2; i++)
        sleep_ms(10);
    sleep_ms(200);
    /* the third frame is not read while two are in flight */
    CU_ASSERT_EQUAL(atomic_load(&started), 2);
    gate_set(1);
    for (int i = 0; i < 3; i++)
        CU_ASSERT(cl_frame(&c, out, sizeof out) > 0);
    CU_ASSERT_EQUAL(atomic_load(&finished), 3);
    cl_close(&c);
    harness_stop();
}

static void test_slowloris(void)
{
    eng_limits l = test_limits();
    client slow, good;
    resp r;
    const char *req = "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    uint64_t t0;
    int closed = 0, served = 0;

    l.read_timeout_ms = 500;
    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(cl_tcp(&slow, http_port()) == 0);
    CU_ASSERT_FATAL(cl_tcp(&good, http_port()) == 0);
    t0 = mono_ms();
    for (size_t i = 0; mono_ms() - t0 < 3000; i++) {
        if (send(slow.fd, req + (i % strlen(req)), 1, MSG_NOSIGNAL) != 1 ||
            cl_closed_within(&slow, 100)) {
            closed = 1;
            break;
        }
        CU_ASSERT(cl_sends(&good, "GET /healthz HTTP/1.1\r\n\r\n") == 0);
        if (cl_http(&good, &r) == 0 && r.status == 200)
            served++;
    }
    CU_ASSERT(closed);
    CU_ASSERT(mono_ms() - t0 >= 450);
    CU_ASSERT(mono_ms() - t0 < 1500 * (uint64_t)tu_slow());
    CU_ASSERT(served >= 3);
    /* the well-behaved client is still served afterwards */
    CU_ASSERT(cl_sends(&good, "GET /healthz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT(cl_http(&good, &r) == 0 && r.status == 200);
    cl_close(&slow);
    cl_close(&good);
    harness_stop();
}

static void test_idle_and_silent(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    uint64_t t0;

    l.idle_timeout_ms = 300;
    l.read_timeout_ms = 600;
    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "GET /healthz HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    t0 = mono_ms(); /* the server's idle timer started before this */
    CU_ASSERT(cl_closed_within(&c, 2000));
    CU_ASSERT(mono_ms() - t0 >= 200);
    cl_close(&c);
    /* a connection that never sends anything is cut at the read timeout */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    t0 = mono_ms();
    CU_ASSERT(cl_closed_within(&c, 2000));
    CU_ASSERT(mono_ms() - t0 >= 550);
    cl_close(&c);
    harness_stop();
}

/* A connection that keeps sending requests is never idle, however long
 * it lives (its answers are written within the event that read each
 * request): with idle_timeout_ms = 300 it serves requests every 50 ms for
 * a second, then is closed once it falls silent. */
static void test_busy_not_idle(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    uint64_t t0, last = 0;
    int ok = 0;

    l.idle_timeout_ms = 300;
    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    t0 = mono_ms();
    while (mono_ms() - t0 < 1000) {
        if (cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\"x\"\n") !=
                0 ||
            cl_http(&c, &r) != 0 || r.status != 200 || !r.keep_alive)
            break;
        last = mono_ms();
        ok++;
        sleep_ms(50);
    }
    CU_ASSERT(ok >= 10);
    CU_ASSERT(mono_ms() - t0 >= 1000);
    /* silent now: closed idle_timeout_ms after the last answer */
    CU_ASSERT(cl_closed_within(&c, 2000));
    CU_ASSERT(mono_ms() - last >= 200); /* its timer started before last */
    cl_close(&c);
    harness_stop();
}

/* Requests larger than one read, two of them pipelined in one send: each
 * body reaches the handler whole (the echo), in order. */
static void test_big_pipelined(void)
{
    eng_limits l = test_limits();
    char body[4097], *req = NULL, want[4200];
    client c;
    resp r;
    int n;

    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    for (size_t i = 0; i < 4096; i++)
        body[i] = (char)('a' + i % 26);
    body[0] = body[4095] = '"';
    body[4096] = '\0';
    n = asprintf(&req, "POST / HTTP/1.1\r\nContent-Length: 4096\r\n\r\n%s"
                       "POST / HTTP/1.1\r\nContent-Length: 4096\r\n\r\n%s",
                 body, body);
    CU_ASSERT_FATAL(n > 0);
    snprintf(want, sizeof want, "\"body\":%s}", body);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_send(&c, req, (size_t)n) == 0);
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
    }
    cl_close(&c);
    free(req);
    harness_stop();
}

static void test_write_timeout(void)
{
    eng_limits l = test_limits();
    char frame[4004], out[64];
    client c;
    uint64_t t0;
    int closed = 0;

    l.write_timeout_ms = 500;
    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
    /* many answers, never read: the output backs up, then times out */
    eng_frame_header((unsigned char *)frame, 4000);
    memset(frame + 4, ' ', 4000);
    memcpy(frame + 4, "{\"id\":1}", 8);
    t0 = mono_ms();
    while (!closed && mono_ms() - t0 < 5000) {
        size_t off = 0;
        /* whole frames only, so the stream stays well-formed */
        while (off < sizeof frame && mono_ms() - t0 < 5000) {
            ssize_t w = send(c.fd, frame + off, sizeof frame - off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                off += (size_t)w;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {c.fd, POLLOUT, 0};
                (void)poll(&p, 1, 20);
                if (p.revents & (POLLHUP | POLLERR)) {
                    closed = 1;
                    break;
                }
            } else {
                closed = 1; /* EPIPE / ECONNRESET: the server closed */
                break;
            }
        }
    }
    CU_ASSERT(closed);
    CU_ASSERT(mono_ms() - t0 < 4000);
    cl_close(&c);
    /* the server is still fine */
    CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":5}") == 0);
    CU_ASSERT(cl_frame(&c, out, sizeof out) > 0);
    cl_close(&c);
    harness_stop();
}

static void test_max_inflight(void)
{
    eng_limits l = test_limits();
    client a, b, f;
    resp r;
    char out[256];
    uint64_t t0;

    l.max_inflight = 1;
    /* three loops: a, b and f each on its own (round robin), so a
     * request blocking its loop (synchronous handler) blocks no other */
    CU_ASSERT_FATAL(harness_start(&l, 3) == 0);
    gate_set(0);
    CU_ASSERT_FATAL(cl_tcp(&a, http_port()) == 0);
    CU_ASSERT(cl_sends(&a, "POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\n\"block\"")
              == 0);
    t0 = mono_ms();
    while (atomic_load(&started) < 1 && mono_ms() - t0 < 2000)
        sleep_ms(1);
    CU_ASSERT_EQUAL_FATAL(atomic_load(&started), 1);
    CU_ASSERT_FATAL(cl_tcp(&b, http_port()) == 0);
    CU_ASSERT(cl_sends(&b, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}") == 0);
    CU_ASSERT_FATAL(cl_http(&b, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "{\"enclave_status\":503,"));
    CU_ASSERT_EQUAL(r.keep_alive, 1);
    /* a frame gets a 503 frame echoing its id */
    CU_ASSERT_FATAL(cl_unix(&f, H.sock) == 0);
    CU_ASSERT(cl_frame_send(&f, "{\"id\":\"q-9\",\"operation\":\"x\"}") == 0);
    CU_ASSERT_FATAL(cl_frame(&f, out, sizeof out) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"id\":\"q-9\",\"enclave_status\":503,"));
    gate_set(1);
    CU_ASSERT_FATAL(cl_http(&a, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    /* capacity is back */
    CU_ASSERT(cl_sends(&b, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}") == 0);
    CU_ASSERT_FATAL(cl_http(&b, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    cl_close(&a);
    cl_close(&b);
    cl_close(&f);
    harness_stop();
}

/* GET /healthz on a new connection; 0 if answered 200. */
static int healthz_on(client *c, int port)
{
    resp r;

    if (cl_tcp(c, port) != 0 ||
        cl_sends(c, "GET /healthz HTTP/1.1\r\n\r\n") != 0 ||
        cl_http(c, &r) != 0)
        return -1;
    return r.status == 200 ? 0 : -1;
}

/* Value of a metrics series in body, or -1. */
static long metric(const char *body, const char *name)
{
    char key[160];
    const char *p;

    snprintf(key, sizeof key, "\n%s", name);
    p = strstr(body, key);
    return p != NULL ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Idle keep-alive connections at max_connections no longer shut new
 * clients out: the oldest idle one is closed for the newcomer; busy ones
 * are not, and each listener has its own budget. */
static void test_max_connections(void)
{
    eng_limits l = test_limits();
    client c[4], f;
    resp r;
    char out[256];

    l.max_connections = 2;
    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(healthz_on(&c[0], http_port()) == 0);
    sleep_ms(20);
    CU_ASSERT_FATAL(healthz_on(&c[1], http_port()) == 0);
    /* a third client is served; the oldest idle one (c[0]) goes */
    CU_ASSERT_FATAL(healthz_on(&c[2], http_port()) == 0);
    CU_ASSERT(cl_closed_within(&c[0], 2000));
    cl_close(&c[0]);
    /* both open connections busy (a request half sent): a fourth client
     * finds nothing to evict and is closed */
    CU_ASSERT(cl_sends(&c[1], "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n{") == 0);
    CU_ASSERT(cl_sends(&c[2], "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n{") == 0);
    sleep_ms(50);
    CU_ASSERT_FATAL(cl_tcp(&c[3], http_port()) == 0);
    CU_ASSERT(cl_closed_within(&c[3], 2000));
    cl_close(&c[3]);
    /* the frames listener has a budget of its own */
    CU_ASSERT_FATAL(cl_unix(&f, H.sock) == 0);
    CU_ASSERT(cl_frame_send(&f, "{\"id\":4}") == 0);
    CU_ASSERT(cl_frame(&f, out, sizeof out) > 0);
    cl_close(&f);
    /* the busy ones were kept and are answered */
    for (int i = 1; i < 3; i++) {
        CU_ASSERT(cl_sends(&c[i], "\"\"}") == 0);
        CU_ASSERT_FATAL(cl_http(&c[i], &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
    }
    CU_ASSERT(cl_sends(&c[1], "GET /metrics HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c[1], &r) == 0);
    CU_ASSERT_EQUAL(metric(r.body, "signer_transport_connections_evicted_total "), 1);
    CU_ASSERT(metric(r.body, "signer_transport_connections_rejected_total ") >= 1);
    cl_close(&c[1]);
    cl_close(&c[2]);
    harness_stop();
}

/* One address may hold max_per_peer connections per listener. */
static void test_max_per_peer(void)
{
    eng_limits l = test_limits();
    client c[3], f;
    char out[256];

    l.max_per_peer = 2;
    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    CU_ASSERT_FATAL(healthz_on(&c[0], http_port()) == 0);
    CU_ASSERT_FATAL(healthz_on(&c[1], http_port()) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c[2], http_port()) == 0);
    CU_ASSERT(cl_closed_within(&c[2], 2000));
    cl_close(&c[2]);
    /* the frames TCP listener counts on its own */
    CU_ASSERT_FATAL(cl_tcp(&f, eng_server_port(H.s, 2)) == 0);
    CU_ASSERT(cl_frame_send(&f, "{\"id\":1}") == 0);
    CU_ASSERT(cl_frame(&f, out, sizeof out) > 0);
    cl_close(&f);
    /* one leaves: room for another */
    cl_close(&c[0]);
    sleep_ms(100);
    CU_ASSERT(healthz_on(&c[2], http_port()) == 0);
    cl_close(&c[1]);
    cl_close(&c[2]);
    harness_stop();
}

/* A frames connection sending empty frames gets ENG_MAX_PROTO_ERRORS
 * answers and is closed; the refusal log is rate-limited. */
static void test_frames_proto_errors(void)
{
    eng_limits l = test_limits();
    unsigned char zeros[4 * 20];
    char out[256];
    client c;
    resp r;
    int answers = 0;

    memset(zeros, 0, sizeof zeros);
    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    for (int k = 0; k < 4; k++) {
        CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
        CU_ASSERT(cl_send(&c, zeros, sizeof zeros) == 0);
        answers = 0;
        while (cl_frame(&c, out, sizeof out) > 0) {
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "empty frame"));
            answers++;
        }
        CU_ASSERT_EQUAL(answers, 8);
        CU_ASSERT(cl_closed_within(&c, 2000));
        cl_close(&c);
    }
    /* 32 refusals in a burst: more than the 20 the log bucket holds */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "GET /metrics HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    /* at least one suppressed (how many depends on the burst's speed: the
     * bucket refills 20 a second) */
    CU_ASSERT(metric(r.body, "signer_transport_log_suppressed_total ") >= 1);
    CU_ASSERT(metric(r.body, "signer_transport_protocol_errors_total ") >= 32);
    cl_close(&c);
    harness_stop();
}

/* HEAD answers carry Content-Length but no body; 100 Continue only for
 * HTTP/1.1; X-Request-Id on every answer, the handler's id included. */
static void test_http_head_expect_request_id(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    char id[17] = "", *p;
    struct pollfd pf;

    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "HEAD /healthz HTTP/1.1\r\n\r\n"
                           "GET /healthz HTTP/1.1\r\n\r\n") == 0);
    /* the HEAD answer: its head, then directly the GET answer */
    while (memmem(c.buf, c.len, "ok\"}", 4) == NULL && cl_fill(&c) > 0)
        ;
    CU_ASSERT_EQUAL(strncmp(c.buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.buf, "Content-Length: 15\r\n"));
    p = memmem(c.buf, c.len, "\r\n\r\n", 4);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL(strncmp(p + 4, "HTTP/1.1 200 OK\r\n", 17), 0);
    c.len = 0;
    /* HEAD on a 404 has no body either */
    CU_ASSERT(cl_sends(&c, "HEAD /nope HTTP/1.1\r\n\r\n"
                           "GET /healthz HTTP/1.1\r\n\r\n") == 0);
    while (memmem(c.buf, c.len, "ok\"}", 4) == NULL && cl_fill(&c) > 0)
        ;
    CU_ASSERT_EQUAL(strncmp(c.buf, "HTTP/1.1 404 ", 13), 0);
    p = memmem(c.buf, c.len, "\r\n\r\n", 4);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL(strncmp(p + 4, "HTTP/1.1 200 OK\r\n", 17), 0);
    c.len = 0;
    /* X-Request-Id: the id the handler got */
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    p = strstr(r.head, "\r\nX-Request-Id: ");
    CU_ASSERT_FATAL(p != NULL);
    memcpy(id, p + 16, 16);
    pthread_mutex_lock(&rid_mu);
    CU_ASSERT_STRING_EQUAL(id, last_rid);
    pthread_mutex_unlock(&rid_mu);
    CU_ASSERT_EQUAL(strspn(id, "0123456789abcdef"), 16);
    cl_close(&c);
    /* HTTP/1.0 with Expect: no 100 Continue; the answer comes once the
     * body is there */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
                           "Content-Length: 2\r\n\r\n") == 0);
    pf = (struct pollfd){c.fd, POLLIN, 0};
    CU_ASSERT_EQUAL(poll(&pf, 1, 300), 0);
    CU_ASSERT(cl_sends(&c, "{}") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.head, "\r\nX-Request-Id: "));
    cl_close(&c);
    harness_stop();
}

/* Errors the transport answers itself take the engine's shape
 * (callbacks.error_body), HTTP and frames. */
static void test_error_body_callback(void)
{
    eng_limits l = test_limits();
    unsigned char zero[4] = {0, 0, 0, 0};
    char out[256];
    client c;
    resp r;

    g_custom_errors = 1;
    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    g_custom_errors = 0;
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "GET /nope HTTP/1.1\r\n\r\n") == 0);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"custom\":404,\"id\":\"http\","
                                   "\"why\":\"no such route\"}");
    cl_close(&c);
    CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
    CU_ASSERT(cl_send(&c, zero, 4) == 0);
    CU_ASSERT_FATAL(cl_frame(&c, out, sizeof out) > 0);
    CU_ASSERT_STRING_EQUAL(out, "{\"custom\":400,\"id\":null,"
                                "\"why\":\"empty frame\"}");
    cl_close(&c);
    harness_stop();
}

/* Request bodies are wiped before they are freed on every path: answered,
 * 404, 405, 503, a client gone mid-request and one gone in flight. */
static void test_bodies_wiped(void)
{
    eng_limits l = test_limits();
    const char *body = "{\"s\":\"MARKER-5ecret\"}";
    client c, f;
    resp r;
    char req[256], out[256];
    uint64_t t0;

    l.max_inflight = 1;
    CU_ASSERT_FATAL(harness_start(&l, 3) == 0);
    atomic_store(&unwiped_frees, 0);
    atomic_store(&wipe_watch, 1);
    CU_ASSERT_EQUAL(post_once("/", body, &r), 200);
    CU_ASSERT_EQUAL(post_once("/nowhere", body, &r), 404);
    CU_ASSERT_EQUAL(post_once("/healthz", body, &r), 405);
    /* 503: one request holds the only in-flight slot */
    gate_set(0);
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    snprintf(req, sizeof req, "POST / HTTP/1.1\r\nContent-Length: 27\r\n\r\n"
                              "{\"s\":\"MARKER-5ecret block\"}");
    CU_ASSERT(cl_sends(&c, req) == 0);
    t0 = mono_ms();
    while (atomic_load(&started) < 2 && mono_ms() - t0 < 2000)
        sleep_ms(1);
    CU_ASSERT_EQUAL(post_once("/", body, &r), 503);
    CU_ASSERT_FATAL(cl_unix(&f, H.sock) == 0);
    CU_ASSERT(cl_frame_send(&f, "{\"id\":1,\"s\":\"MARKER-5ecret\"}") == 0);
    CU_ASSERT(cl_frame(&f, out, sizeof out) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "503"));
    /* the client of the blocked request leaves before its answer */
    cl_close(&c);
    gate_set(1);
    cl_close(&f);
    /* a client leaving with half a body sent */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 90\r\n\r\n"
                           "{\"s\":\"MARKER-5ecret") == 0);
    sleep_ms(50);
    cl_close(&c);
    t0 = mono_ms();
    while (atomic_load(&finished) < 2 && mono_ms() - t0 < 2000)
        sleep_ms(5);
    sleep_ms(100);
    harness_stop();
    atomic_store(&wipe_watch, 0);
    CU_ASSERT_EQUAL(atomic_load(&unwiped_frees), 0);
}

static void test_disconnect_in_flight(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    uint64_t t0;

    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    /* HTTP and frames clients leave while their request is being signed */
    CU_ASSERT_FATAL(cl_tcp(&c, http_port()) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n\"slow\"")
              == 0);
    t0 = mono_ms();
    while (atomic_load(&started) < 1 && mono_ms() - t0 < 2000)
        sleep_ms(1);
    cl_close(&c);
    CU_ASSERT_FATAL(cl_unix(&c, H.sock) == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":1,\"x\":\"slow\"}") == 0);
    CU_ASSERT(cl_frame_send(&c, "{\"id\":2,\"x\":\"slow\"}") == 0);
    while (atomic_load(&started) < 3 && mono_ms() - t0 < 2000)
        sleep_ms(1);
    cl_close(&c);
    while (atomic_load(&finished) < 3 && mono_ms() - t0 < 3000)
        sleep_ms(5);
    sleep_ms(50);
    CU_ASSERT_EQUAL(atomic_load(&finished), 3);
    CU_ASSERT_EQUAL(post_once("/", "{}", &r), 200);
    harness_stop();
}

static void test_unix_http_and_shutdown_drain(void)
{
    eng_limits l = test_limits();
    client c;
    resp r;
    struct stat st;
    uint64_t t0;

    CU_ASSERT_FATAL(harness_start(&l, 2) == 0);
    CU_ASSERT_EQUAL(stat(H.hsock, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0660);
    CU_ASSERT_FATAL(cl_unix(&c, H.hsock) == 0);
    CU_ASSERT(cl_sends(&c, "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n\"slow\"")
              == 0);
    t0 = mono_ms();
    while (atomic_load(&started) < 1 && mono_ms() - t0 < 2000)
        sleep_ms(1);
    /* stop while the request is in flight: it is still answered */
    eng_server_stop(H.s);
    CU_ASSERT_FATAL(cl_http(&c, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.keep_alive, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "slow"));
    pthread_join(H.th, NULL);
    CU_ASSERT_EQUAL(H.rc, 0);
    CU_ASSERT(mono_ms() - t0 < 2000);
    /* listeners are gone and the socket files removed */
    CU_ASSERT_NOT_EQUAL(stat(H.hsock, &st), 0);
    cl_close(&c);
    eng_server_free(H.s);
    H.s = NULL;
    harness_stop();
}

static void test_signals(void)
{
    eng_limits l = test_limits();
    uint64_t t0;

    atomic_store(&reloads, 0);
    resp r;

    CU_ASSERT_FATAL(harness_start(&l, 1) == 0);
    /* once a request is answered the loop runs with its signal events */
    CU_ASSERT_FATAL(post_once("/", "{}", &r) == 200);
    kill(getpid(), SIGHUP);
    t0 = mono_ms();
    while (atomic_load(&reloads) < 1 && mono_ms() - t0 < 2000)
        sleep_ms(5);
    CU_ASSERT_EQUAL(atomic_load(&reloads), 1);
    kill(getpid(), SIGTERM);
    pthread_join(H.th, NULL);
    CU_ASSERT_EQUAL(H.rc, 0);
    eng_server_free(H.s);
    H.s = NULL;
    harness_stop();
}

static void test_start_errors(void)
{
    eng_listen_spec spec;
    eng_server_config cfg;
    eng_server_callbacks cb = {NULL, fake_handle, NULL, NULL, NULL, NULL, NULL, NULL};
    eng_server *s, *s2;
    char err[256], addr[300], *dir = tu_tmpdir();
    int fd;
    struct sockaddr_un un;

    CU_ASSERT_FATAL(dir != NULL);
    memset(&cfg, 0, sizeof cfg);
    eng_limits_default(&cfg.limits);
    cfg.listen = &spec;
    cfg.n_listen = 1;
    cfg.workers = 1;
    spec = (eng_listen_spec){"127.0.0.1:notaport", ENG_PROTO_HTTP, NULL};
    s = eng_server_new(&cfg, &cb);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(eng_server_start(s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "127.0.0.1:notaport"));
    eng_server_free(s);
    /* a stale socket file (bound, nobody listening) is replaced */
    snprintf(addr, sizeof addr, "unix:%s/s.sock", dir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof un.sun_path, "%s/s.sock", dir);
    CU_ASSERT_EQUAL(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
    close(fd);
    spec = (eng_listen_spec){addr, ENG_PROTO_FRAMES, NULL};
    s = eng_server_new(&cfg, &cb);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(eng_server_start(s, err, sizeof err), 0);
    /* a live one is not stolen */
    s2 = eng_server_new(&cfg, &cb);
    CU_ASSERT_FATAL(s2 != NULL);
    CU_ASSERT_EQUAL(eng_server_start(s2, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another process"));
    eng_server_free(s2);
    /* stop before run: run returns at once */
    eng_server_stop(s);
    CU_ASSERT_EQUAL(eng_server_run(s), 0);
    eng_server_free(s);
    /* a regular file is never removed */
    snprintf(addr, sizeof addr, "%s/file", dir);
    fd = open(addr, O_CREAT | O_WRONLY, 0600);
    close(fd);
    snprintf(addr, sizeof addr, "unix:%s/file", dir);
    spec = (eng_listen_spec){addr, ENG_PROTO_FRAMES, NULL};
    s = eng_server_new(&cfg, &cb);
    CU_ASSERT_EQUAL(eng_server_start(s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a socket"));
    eng_server_free(s);
    tu_rmtree(dir);
    free(dir);
}

static void test_vsock_listen(void)
{
    eng_listen_spec spec = {NULL, ENG_PROTO_FRAMES, NULL};
    eng_server_config cfg;
    eng_server_callbacks cb = {NULL, fake_handle, NULL, NULL, NULL, NULL, NULL, NULL};
    eng_server *s;
    char err[256], addr[64];
    int port = 20000 + (int)(getpid() % 30000);
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

    if (fd < 0) {
        CU_ASSERT(errno == EAFNOSUPPORT || errno == EPERM || errno == EACCES);
        fprintf(stderr, "\n    skipped: AF_VSOCK unavailable (%s)\n",
                strerror(errno));
        return;
    }
    close(fd);
    snprintf(addr, sizeof addr, "vsock:any:%d", port);
    spec.address = addr;
    memset(&cfg, 0, sizeof cfg);
    eng_limits_default(&cfg.limits);
    cfg.listen = &spec;
    cfg.n_listen = 1;
    cfg.workers = 1;
    s = eng_server_new(&cfg, &cb);
    CU_ASSERT_FATAL(s != NULL);
    /* bind + listen only; this test never connects to a vsock CID */
    if (eng_server_start(s, err, sizeof err) != 0) {
        fprintf(stderr, "\n    skipped: vsock listen failed: %s\n", err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, addr));
    } else {
        CU_ASSERT_EQUAL(eng_server_port(s, 0), port);
    }
    eng_server_free(s);
}

enum { BOTH, SYNC_ONLY, ASYNC_ONLY };
#define ST(fn, where) {#fn, fn, where}
static const struct server_test {
    const char *name;
    void (*fn)(void);
    int where;
} server_tests[] = {
    ST(test_http_post_keepalive, BOTH),
    ST(test_http_pipelined, BOTH),
    ST(test_http_half_close, BOTH),
    ST(test_http_ops_routes, BOTH),
    ST(test_health_listener, BOTH),
    ST(test_http_limits, BOTH),
    ST(test_slow_does_not_block, BOTH),
    ST(test_frames_pipelined, BOTH),
    ST(test_loops_metrics_and_reload, BOTH),
    ST(test_frames_max_pipeline, ASYNC_ONLY),
    ST(test_slowloris, BOTH),
    ST(test_idle_and_silent, BOTH),
    ST(test_busy_not_idle, BOTH),
    ST(test_big_pipelined, BOTH),
    ST(test_write_timeout, BOTH),
    ST(test_max_inflight, BOTH),
    ST(test_max_connections, BOTH),
    ST(test_max_per_peer, SYNC_ONLY),
    ST(test_frames_proto_errors, SYNC_ONLY),
    ST(test_http_head_expect_request_id, BOTH),
    ST(test_bodies_wiped, ASYNC_ONLY),
    ST(test_error_body_callback, SYNC_ONLY),
    ST(test_disconnect_in_flight, BOTH),
    ST(test_unix_http_and_shutdown_drain, BOTH),
    ST(test_signals, BOTH),
    ST(test_start_errors, SYNC_ONLY),
    ST(test_vsock_listen, SYNC_ONLY),
};
#undef ST

int main(void)
{
    CU_pSuite p, srv, async;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    p = CU_add_suite("transport_parsers", NULL, NULL);
    TU_ADD(p, test_http_head_complete);
    TU_ADD(p, test_http_head_incomplete);
    TU_ADD(p, test_http_head_oversize);
    TU_ADD(p, test_http_format_head);
    TU_ADD(p, test_http_head_bad);
    TU_ADD(p, test_http_head_nul_and_tokens);
    TU_ADD(p, test_http_head_keepalive);
    TU_ADD(p, test_http_head_chunked);
    TU_ADD(p, test_frame_parse);
    TU_ADD(p, test_frame_request_id);
    TU_ADD(p, test_normalise_path);
    TU_ADD(p, test_listen_parse);
    TU_ADD(p, test_limits_default);
    /* every server test runs with the synchronous handler (through the
     * adapter), and again with the asynchronous one except those marked
     * sync_only; async_only tests need requests waiting off the loop */
    srv = CU_add_suite("transport_server", NULL, NULL);
    async = CU_add_suite("transport_server_async", async_on, async_off);
    for (size_t i = 0; i < sizeof server_tests / sizeof server_tests[0]; i++) {
        const struct server_test *t = &server_tests[i];
        if (t->where != ASYNC_ONLY)
            CU_add_test(srv, t->name, t->fn);
        if (t->where != SYNC_ONLY)
            CU_add_test(async, t->name, t->fn);
    }
    return tu_run();
}
