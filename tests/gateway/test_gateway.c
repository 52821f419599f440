/* The gateway's parts on their own: the enclave pool against fake enclaves
 * on 127.0.0.1 (pipelining and id matching, deadline, failover only for
 * retryable requests, no enclave, reconnect), the per-client token buckets,
 * the gateway/tls config groups with their errors, and the enclave's side
 * of the probe (`health`) and of the frame's `client` field. */
#include "config.h"
#include "../unit/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include <signer/plugin.h>

#include "conf.h"
#include "enclave.h"
#include "gateway/gwconf.h"
#include "host.h"
#include "gateway/pool.h"
#include "gateway/throttle.h"
#include "transport/transport.h"
#include "util.h"

/* ---- a fake enclave: answers each frame on its own thread ------------------ */

typedef struct fake {
    int lfd, port;
    pthread_t thread;
    atomic_int stop, frames;
    int mode; /* 0: echo; 1: never answer; 2: close after the first frame */
} fake;

static int read_full(int fd, unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, b + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Answers {"id": ID, "enclave_status": 200, "enclave_result": {"echo":
 * operation, "port": port}} in reverse order of each pair, to prove that
 * answers are matched by id. */
static void serve_conn(fake *f, int fd)
{
    char *held = NULL;
    for (;;) {
        unsigned char hdr[4], out[512];
        size_t len;
        char *body, ans[400];
        cJSON *j;
        int n;
        if (read_full(fd, hdr, 4) != 0)
            break;
        len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
              (size_t)hdr[2] << 8 | hdr[3];
        if ((body = calloc(1, len + 1)) == NULL ||
            read_full(fd, (unsigned char *)body, len) != 0) {
            free(body);
            break;
        }
        atomic_fetch_add(&f->frames, 1);
        j = cJSON_Parse(body);
        free(body);
        if (f->mode == 2) {
            cJSON_Delete(j);
            break;
        }
        if (f->mode == 1 ||
            strcmp(cJSON_GetObjectItem(j, "operation")->valuestring,
                   "health") == 0) {
            cJSON_Delete(j);
            continue;
        }
        snprintf(ans, sizeof ans,
                 "{\"id\":%.0f,\"enclave_status\":200,\"enclave_result\":"
                 "{\"echo\":\"%s\",\"port\":%d}}",
                 cJSON_GetObjectItem(j, "id")->valuedouble,
                 cJSON_GetObjectItem(j, "operation")->valuestring, f->port);
        cJSON_Delete(j);
        if (held == NULL && strstr(ans, "\"pair\"") != NULL) {
            held = strdup(ans);
            continue;
        }
        n = (int)strlen(ans);
        eng_frame_header(out, (size_t)n);
        memcpy(out + 4, ans, (size_t)n);
        send(fd, out, (size_t)n + 4, MSG_NOSIGNAL);
        if (held != NULL) {
            n = (int)strlen(held);
            eng_frame_header(out, (size_t)n);
            memcpy(out + 4, held, (size_t)n);
            send(fd, out, (size_t)n + 4, MSG_NOSIGNAL);
            free(held);
            held = NULL;
        }
    }
    free(held);
    close(fd);
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            break;
        serve_conn(f, fd);
    }
    return NULL;
}

static int fake_start(fake *f, int mode, int port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int one = 1;
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->lfd, 8) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    f->port = ntohs(sa.sin_port);
    return pthread_create(&f->thread, NULL, fake_main, f);
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, 1);
    shutdown(f->lfd, SHUT_RDWR);
    close(f->lfd);
    pthread_join(f->thread, NULL);
}

/* ---- collecting answers ----------------------------------------------------- */

typedef struct result {
    atomic_int done;
    int err;
    char why[160];
    char echo[32];
    int port;
} result;

static void on_done(void *arg, cJSON *answer, const char *text,
                    size_t text_len, int err, const char *why)
{
    result *r = arg;
    /* the frame's text comes with its answer, "id" first as sent; the
     * pool leaves the parse to the caller for that layout */
    CU_ASSERT(text != NULL || answer == NULL);
    CU_ASSERT_EQUAL(err == SIGNER_OK, text != NULL);
    if (text != NULL) {
        CU_ASSERT(text_len > 7 && memcmp(text, "{\"id\":", 6) == 0);
        CU_ASSERT_PTR_NULL(answer);
        answer = cJSON_ParseWithLength(text, text_len);
        CU_ASSERT_PTR_NOT_NULL(answer);
        cJSON_DeleteItemFromObjectCaseSensitive(answer, "id");
    }
    r->err = err;
    if (why != NULL)
        snprintf(r->why, sizeof r->why, "%s", why);
    if (answer != NULL) {
        const cJSON *res = cJSON_GetObjectItem(answer, "enclave_result");
        snprintf(r->echo, sizeof r->echo, "%s",
                 cJSON_GetObjectItem(res, "echo")->valuestring);
        r->port = cJSON_GetObjectItem(res, "port")->valueint;
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(answer, "id"));
        cJSON_Delete(answer);
    }
    atomic_store(&r->done, 1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int wait_done(result *r, int ms)
{
    while (!atomic_load(&r->done) && ms-- > 0)
        sleep_ms(1);
    return atomic_load(&r->done);
}

static void forward(eng_gw_pool *p, const char *op, int retryable,
                    result *r)
{
    cJSON *f = cJSON_CreateObject();
    memset(r, 0, sizeof *r);
    cJSON_AddStringToObject(f, "operation", op);
    cJSON_AddItemToObject(f, "payload", cJSON_CreateObject());
    eng_gw_pool_forward(p, f, retryable, on_done, r);
}

static eng_gw_pool *pool_for(char **eps, size_t n, int deadline_ms)
{
    eng_gw_pool_conf c;
    char err[256];
    eng_gw_pool *p;
    int i;
    memset(&c, 0, sizeof c);
    c.endpoints = (const char *const *)eps;
    c.n_endpoints = n;
    c.deadline_ms = deadline_ms;
    c.max_pipeline = 8;
    c.reconnect_ms = 50;
    c.max_frame = 65536;
    p = eng_gw_pool_start(&c, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (i = 0; i < 200 && eng_gw_pool_up(p) < (int)n; i++)
        sleep_ms(5);
    return p;
}

/* ---- tests ------------------------------------------------------------------ */

/* The round-trip histogram is cumulative: its buckets never decrease,
 * the 5 s one and +Inf hold all n answers (each took well under 5 s). */
static void check_rt_buckets(eng_gw_pool *p, unsigned long long n)
{
    static const char key[] =
        "signer_gateway_enclave_round_trip_seconds_bucket{le=\"";
    char *text = eng_gw_pool_metrics(p, NULL), *at;
    unsigned long long prev = 0, v = 0, five = 0;
    int buckets = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    for (at = strstr(text, key); at != NULL; at = strstr(at + 1, key)) {
        char le[16];
        CU_ASSERT_EQUAL_FATAL(sscanf(at + sizeof key - 1, "%15[^\"]\"} %llu",
                                     le, &v), 2);
        CU_ASSERT(v >= prev);
        if (strcmp(le, "5") == 0)
            five = v;
        prev = v;
        buckets++;
    }
    CU_ASSERT_EQUAL(buckets, 13);
    CU_ASSERT_EQUAL(five, n);
    CU_ASSERT_EQUAL(v, n); /* +Inf */
    free(text);
}

static void test_pool_pipelined_by_id(void)
{
    fake f;
    char ep[64], *eps[1] = {ep};
    result a, b;
    eng_gw_pool *p;
    CU_ASSERT_EQUAL_FATAL(fake_start(&f, 0, 0), 0);
    snprintf(ep, sizeof ep, "127.0.0.1:%d", f.port);
    p = pool_for(eps, 1, 2000);
    CU_ASSERT_EQUAL(eng_gw_pool_up(p), 1);
    /* "pair" is held back by the fake until the next frame is answered. */
    forward(p, "pair", 1, &a);
    forward(p, "second", 1, &b);
    CU_ASSERT(wait_done(&a, 2000) && wait_done(&b, 2000));
    CU_ASSERT_EQUAL(a.err, SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(a.echo, "pair");
    CU_ASSERT_STRING_EQUAL(b.echo, "second");
    check_rt_buckets(p, 2);
    eng_gw_pool_free(p);
    fake_stop(&f);
}

static void test_pool_deadline(void)
{
    fake f;
    char ep[64], *eps[1] = {ep}, *text;
    result a;
    eng_gw_pool *p;
    uint64_t t0;
    CU_ASSERT_EQUAL_FATAL(fake_start(&f, 1, 0), 0);
    snprintf(ep, sizeof ep, "127.0.0.1:%d", f.port);
    p = pool_for(eps, 1, 150);
    t0 = eng_now_us();
    forward(p, "slow", 1, &a);
    CU_ASSERT(wait_done(&a, 2000));
    CU_ASSERT_EQUAL(a.err, SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.why, "deadline"));
    CU_ASSERT(eng_now_us() - t0 < 1000000);
    text = eng_gw_pool_metrics(p, NULL);
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text ? text : "",
                                  "signer_gateway_enclave_timeouts_total"));
    free(text);
    eng_gw_pool_free(p);
    fake_stop(&f);
}

/* An enclave that drops the connection: a retryable request goes to the
 * other enclave; a key-creating one is answered 503 (it may have run). */
static void test_pool_failover(void)
{
    fake dead, good;
    char e1[64], e2[64], *eps[2] = {e1, e2};
    result a;
    eng_gw_pool *p;
    int i;
    CU_ASSERT_EQUAL_FATAL(fake_start(&dead, 2, 0), 0);
    CU_ASSERT_EQUAL_FATAL(fake_start(&good, 0, 0), 0);
    snprintf(e1, sizeof e1, "127.0.0.1:%d", dead.port);
    snprintf(e2, sizeof e2, "127.0.0.1:%d", good.port);
    p = pool_for(eps, 2, 2000);
    for (i = 0; i < 6; i++) {
        sleep_ms(120); /* the dropping enclave is connected again */
        forward(p, "sign", 1, &a);
        CU_ASSERT(wait_done(&a, 2000));
        CU_ASSERT_EQUAL(a.err, SIGNER_OK);
        CU_ASSERT_EQUAL(a.port, good.port);
    }
    CU_ASSERT(atomic_load(&dead.frames) > 0); /* some went there first */
    eng_gw_pool_free(p);
    /* Only the dropping enclave: a create is never sent again. */
    p = pool_for(eps, 1, 2000);
    forward(p, "create", 0, &a);
    CU_ASSERT(wait_done(&a, 2000));
    CU_ASSERT_EQUAL(a.err, SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.why, "may have run"));
    eng_gw_pool_free(p);
    fake_stop(&dead);
    fake_stop(&good);
}

static void test_pool_none_then_reconnect(void)
{
    fake f;
    char ep[64], *eps[1] = {ep};
    result a;
    eng_gw_pool *p;
    int port, i;
    CU_ASSERT_EQUAL_FATAL(fake_start(&f, 0, 0), 0);
    port = f.port;
    fake_stop(&f); /* nothing listens there now */
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    p = pool_for(eps, 1, 300);
    CU_ASSERT_EQUAL(eng_gw_pool_up(p), 0);
    forward(p, "x", 1, &a);
    CU_ASSERT(wait_done(&a, 2000));
    CU_ASSERT_EQUAL(a.err, SIGNER_ERR_UNAVAILABLE);
    if (fake_start(&f, 0, port) != 0) { /* port taken meanwhile: skip */
        eng_gw_pool_free(p);
        return;
    }
    for (i = 0; i < 400 && eng_gw_pool_up(p) == 0; i++)
        sleep_ms(5);
    CU_ASSERT_EQUAL(eng_gw_pool_up(p), 1);
    forward(p, "again", 1, &a);
    CU_ASSERT(wait_done(&a, 2000));
    CU_ASSERT_EQUAL(a.err, SIGNER_OK);
    eng_gw_pool_free(p);
    fake_stop(&f);
}

static void test_throttle(void)
{
    /* a slow refill (one token per 100 s): no stall of the test refills a
     * bucket between its takes */
    eng_gw_throttle *t = eng_gw_throttle_new(0.01, 2), *off;
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "10.0.0.1:5000"), 0);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "10.0.0.1:5001"), 0);
    /* the same address on another port shares the bucket */
    CU_ASSERT(eng_gw_throttle_take(t, "10.0.0.1:5002") >= 1);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "10.0.0.2:5000"), 0);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "[::1]:80"), 0);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "[::1]:81"), 0);
    CU_ASSERT(eng_gw_throttle_take(t, "[::1]:82") >= 1);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "tls:sha256:ab"), 0);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(t, "tls:sha256:ac"), 0);
    eng_gw_throttle_free(t);
    off = eng_gw_throttle_new(0, 0);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(off, "10.0.0.1:1"), 0);
    CU_ASSERT_EQUAL(eng_gw_throttle_take(off, "10.0.0.1:1"), 0);
    eng_gw_throttle_free(off);
}

#define GW_BASE "role = \"gateway\";\nsealer = { type = \"none\"; };\n" \
                "plugins = ( { name = \"eth\"; } );\n"

/* Loads text and the gateway group: 0 or -1 with err. */
static int gw_load(const char *text, eng_gw_conf *gc, char *err, size_t n)
{
    eng_config cfg;
    int rc = eng_config_load_string(&cfg, text, "/etc/x", err, n);
    if (rc == 0)
        rc = eng_gw_conf_load(gc, &cfg, err, n);
    eng_config_free(&cfg);
    return rc;
}

static void test_conf(void)
{
    static const struct {
        const char *group, *needle;
    } bad[] = {
        {"", "gateway = { enclaves"},
        {"gateway = { };", "gateway.enclaves"},
        {"gateway = { enclaves = [ ]; };", "gateway.enclaves"},
        {"gateway = { enclaves = [\"a:1\"]; nope = 1; };", "gateway.nope"},
        {"gateway = { enclaves = [\"a:1\"]; deadline_ms = 5; };", "deadline_ms"},
        {"gateway = { enclaves = [\"a:1\"]; deadline_ms = \"x\"; };", "integer"},
        {"gateway = { enclaves = [\"a:1\"]; forward_credentials = 1; };", "true or false"},
        {"gateway = { enclaves = [\"a:1\"]; client_rate = -1; };", "client_rate"},
    };
    char text[1024], err[512];
    eng_gw_conf gc;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, GW_BASE "%s\n", bad[i].group);
        CU_ASSERT_EQUAL(gw_load(text, &gc, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].needle));
        if (strstr(err, bad[i].needle) == NULL)
            fprintf(stderr, "\n%s: %s\n", bad[i].group, err);
        eng_gw_conf_free(&gc);
    }
    CU_ASSERT_EQUAL(gw_load(GW_BASE "gateway = { enclaves = [\"vsock:16:5000\", "
                                    "\"127.0.0.1:9\"]; deadline_ms = 700; "
                                    "forward_credentials = true; client_rate "
                                    "= 2.5; };\n",
                            &gc, err, sizeof err),
                    0);
    CU_ASSERT_EQUAL(gc.n_enclaves, 2);
    CU_ASSERT_STRING_EQUAL(gc.enclaves[0], "vsock:16:5000");
    CU_ASSERT_EQUAL(gc.deadline_ms, 700);
    CU_ASSERT_EQUAL(gc.reconnect_ms, 500);
    CU_ASSERT_EQUAL(gc.forward_credentials, 1);
    CU_ASSERT_DOUBLE_EQUAL(gc.client_rate, 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(gc.client_burst, 2.5, 1e-9);
    CU_ASSERT_STRING_EQUAL(gc.region, "us-east-1");
    eng_gw_conf_free(&gc);
}

/* conf/gateway.conf as shipped. */
static void test_shipped_conf(void)
{
    eng_config cfg;
    eng_gw_conf gc;
    char path[1024], err[512];
    const char *src = getenv("SIGNER_SRCDIR");
    snprintf(path, sizeof path, "%s/conf/gateway.conf", src ? src : ".");
    CU_ASSERT_EQUAL_FATAL(eng_config_load(&cfg, path, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.role, "gateway");
    CU_ASSERT_STRING_EQUAL(cfg.sealer.type, "none");
    CU_ASSERT_EQUAL(eng_gw_conf_load(&gc, &cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(gc.n_enclaves, 1);
    CU_ASSERT_EQUAL(gc.forward_credentials, 0);
    eng_gw_conf_free(&gc);
    eng_config_free(&cfg);
}

static void test_tls_conf(void)
{
    eng_config cfg;
    eng_gw_tls t;
    void *ctx = (void *)1;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(
        eng_config_load_string(&cfg, GW_BASE
                               "listen = ( { address = \"127.0.0.1:0\"; "
                               "protocol = \"https\"; } );\n"
                               "tls = { cert = \"c.pem\"; key = \"k.pem\"; "
                               "allow = [\"CN=x\"]; };\n",
                               "/etc/x", err, sizeof err),
        0);
    CU_ASSERT_EQUAL(cfg.listen[0].proto, ENG_PROTO_HTTPS);
    CU_ASSERT_EQUAL(eng_gw_tls_load(&t, &cfg, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(t.cert, "/etc/x/c.pem");
    CU_ASSERT_STRING_EQUAL(t.allow[0], "CN=x");
    CU_ASSERT_PTR_NULL(t.allow[1]);
    CU_ASSERT_PTR_NULL(t.client_ca);
    eng_gw_tls_free(&t);
    /* the files do not exist: the cause names the setting */
    CU_ASSERT_EQUAL(eng_gw_tls_open(&ctx, &cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tls.cert"));
    eng_config_free(&cfg);
    CU_ASSERT_EQUAL_FATAL(
        eng_config_load_string(&cfg, GW_BASE
                               "listen = ( { address = \"127.0.0.1:0\"; "
                               "protocol = \"https\"; } );\n",
                               "/etc/x", err, sizeof err),
        0);
    CU_ASSERT_EQUAL(eng_gw_tls_open(&ctx, &cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "needs a tls"));
    eng_config_free(&cfg);
}

/* eng_enclave_health on one frame: 1 and the answer, or 0 (NULL). */
static int health_of(const char *body, int framed, char **resp)
{
    eng_request req;
    size_t len = 0;
    int r;
    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = strlen(body);
    req.framed = framed;
    *resp = NULL;
    r = eng_enclave_health(&req, resp, &len);
    if (r)
        CU_ASSERT_EQUAL(len, strlen(*resp));
    return r;
}

static void test_health_op(void)
{
    char *a = NULL, big[400];
    /* The id comes back as sent, even beyond a double's precision. */
    CU_ASSERT_EQUAL(health_of("{\"id\":9007199254740993,\"operation\":"
                              "\"health\",\"payload\":{}}", 1, &a), 1);
    CU_ASSERT_STRING_EQUAL(a, "{\"id\":9007199254740993,\"enclave_status\""
                              ":200,\"enclave_result\":{\"status\":\"ok\","
                              "\"attestation\":\"none\",\"attested\":"
                              "false}}");
    free(a);
    CU_ASSERT_EQUAL(health_of("{\"operation\":\"health\",\"id\":\"p-1\","
                              "\"request_id\":\"0123456789abcdef\"}", 1, &a),
                    1);
    CU_ASSERT_PTR_NOT_NULL(a != NULL ? strstr(a, "{\"id\":\"p-1\",") : NULL);
    free(a);
    /* Anything else goes on to the dispatcher. */
    CU_ASSERT_EQUAL(health_of("{\"id\":1,\"operation\":\"health\"}", 0, &a),
                    0); /* HTTP */
    CU_ASSERT_EQUAL(health_of("{\"id\":1,\"operation\":\"health\","
                              "\"payload\":{\"x\":1}}", 1, &a), 0);
    CU_ASSERT_EQUAL(health_of("{\"id\":1,\"operation\":\"healthy\"}", 1,
                              &a), 0);
    CU_ASSERT_EQUAL(health_of("{\"id\":1,\"operation\":\"sign_message\","
                              "\"payload\":{\"message\":\"health\"}}", 1,
                              &a), 0);
    CU_ASSERT_EQUAL(health_of("{\"id\":true,\"operation\":\"health\"}", 1,
                              &a), 0);
    CU_ASSERT_EQUAL(health_of("{\"id\":1,\"id\":2,\"operation\":"
                              "\"health\"}", 1, &a), 0); /* duplicate */
    CU_ASSERT_EQUAL(health_of("{\"id\":1,\"operation\":\"health\",\"x\":1}",
                              1, &a), 0);
    snprintf(big, sizeof big, "{\"id\":1,\"operation\":\"health\","
             "\"payload\":{},\"request_id\":\"%0300d\"}", 0);
    CU_ASSERT_EQUAL(health_of(big, 1, &a), 0); /* larger than a probe */
    CU_ASSERT_PTR_NULL(a);
}

/* Outside the enclave role a frame's "client" is refused by name. */
static void test_frame_client_refused(void)
{
    signer_reply reply;
    char out[80] = "x";
    cJSON *v = cJSON_CreateString("10.0.0.7");
    memset(&reply, 0, sizeof reply);
    CU_ASSERT_EQUAL(eng_enclave_frame_client(&reply, out, sizeof out, v),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(strncmp(reply.error, "client: ", 8), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    cJSON_Delete(v);
}

int main(void)
{
    CU_pSuite s;
    eng_wiping_allocators_install();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("gateway", NULL, NULL);
    TU_ADD(s, test_pool_pipelined_by_id);
    TU_ADD(s, test_pool_deadline);
    TU_ADD(s, test_pool_failover);
    TU_ADD(s, test_pool_none_then_reconnect);
    TU_ADD(s, test_throttle);
    TU_ADD(s, test_conf);
    TU_ADD(s, test_tls_conf);
    TU_ADD(s, test_shipped_conf);
    TU_ADD(s, test_health_op);
    TU_ADD(s, test_frame_client_refused);
    return tu_run();
}
