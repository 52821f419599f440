/* The gateway's enclave pool (pool.h): sets of persistent frame
 * connections, one per enclave endpoint in each set, requests pipelined and
 * matched by id.  Each transport event loop that forwards gets a set of its
 * own on its event base (no thread hand-off: the request is sent and its
 * answer read on the loop that serves the client); other threads (tests,
 * start-up) use a set with a thread of its own, which also keeps
 * /readyz's view of the enclaves.  A set's functions run on its thread;
 * eng_gw_pool_forward, eng_gw_pool_up and the metrics on any. */
#include "config.h"
#include "gateway/pool.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <signer/plugin.h>

#include "log.h"
#include "transport/transport.h"
#include "transport/transport_internal.h"
#include "util.h"

enum { CONN_DOWN = 0, CONN_CONNECTING = 1, CONN_UP = 2 };

#define GW_TICK_MS 20
#define GW_RT_BUCKETS 12
static const double rt_bounds_ms[GW_RT_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};

/* One forwarded request. */
typedef struct gw_req {
    struct gw_req *next;
    uint64_t id;
    char *frame; /* the printed frame, id included */
    size_t len;
    int retryable, tries;
    uint64_t deadline_us, sent_us;
    eng_gw_done done;
    void *arg;
} gw_req;

/* One enclave endpoint's figures, summed over every set's connection. */
typedef struct gw_stats {
    atomic_int up, inflight;
    atomic_ullong answers, losses, timeouts;
} gw_stats;

typedef struct gw_inst gw_inst;

/* One enclave endpoint and a set's connection to it. */
typedef struct gw_conn {
    gw_inst *p;
    const char *endpoint; /* the pool's */
    gw_stats *st;         /* the pool's, for this endpoint */
    struct bufferevent *bev;
    int state;
    int write_armed; /* EV_WRITE on: a write left bytes the socket refused */
    int n_inflight;
    uint64_t next_try_us, last_rx_us;
    uint64_t probe_id, probe_sent_us;
    gw_req *inflight;
} gw_conn;

/* A set of connections on one event base (one thread). */
struct gw_inst {
    eng_gw_pool *sh;
    gw_conn *conns;
    size_t n, rr;
    struct event_base *base;
    int own_base; /* 1: base and thread are the set's own */
    struct event *wake, *tick;
    struct event *flush; /* active while frames wait to be written */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    gw_req *in_head, *in_tail; /* from other threads, under mu */
    gw_req *wait_head;         /* set's thread: not sent yet */
    gw_inst *next;             /* the pool's list of loop sets */
};

struct eng_gw_pool {
    eng_gw_pool_conf conf;
    char **endpoints;
    gw_stats *stats;
    gw_inst *own;   /* the set with its own thread */
    gw_inst *loops; /* sets on transport loops, under mu */
    pthread_mutex_t mu;
    atomic_ullong next_id;
    atomic_int stopping, n_up;
    atomic_ullong forwarded, failovers, no_enclave, rt_count, rt_sum_us;
    atomic_ullong rt_bucket[GW_RT_BUCKETS];
};

static void conn_connect(gw_conn *c);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void pool_dispatch(gw_inst *p);

/* ---- requests ----------------------------------------------------------- */

static void req_free(gw_req *r)
{
    if (r == NULL)
        return;
    if (r->frame != NULL) {
        eng_wipe(r->frame, r->len);
        free(r->frame);
    }
    free(r);
}

/* Answers r and frees it. */
static void req_finish(gw_req *r, cJSON *answer, int err, const char *why)
{
    r->done(r->arg, answer, NULL, 0, err, why);
    req_free(r);
}

static void rt_observe(eng_gw_pool *p, uint64_t us)
{
    double ms = (double)us / 1000.0;
    int i = 0;
    /* one bucket per observation; the metrics text cumulates */
    while (i < GW_RT_BUCKETS && ms > rt_bounds_ms[i])
        i++;
    if (i < GW_RT_BUCKETS)
        atomic_fetch_add(&p->rt_bucket[i], 1);
    atomic_fetch_add(&p->rt_count, 1);
    atomic_fetch_add(&p->rt_sum_us, us);
}

/* ---- connections -------------------------------------------------------- */

/* c's in-flight count moves by d (and its endpoint's). */
static void conn_inflight(gw_conn *c, int d)
{
    c->n_inflight += d;
    atomic_fetch_add(&c->st->inflight, d);
}

/* c goes up (d = 1) or down (-1): the endpoint counts as up while one
 * set's connection to it is.  1 when the endpoint's state changed. */
static int conn_up(gw_conn *c, int d)
{
    if (atomic_fetch_add(&c->st->up, d) != (d > 0 ? 0 : 1))
        return 0;
    atomic_fetch_add(&c->p->sh->n_up, d);
    return 1;
}

/* Takes the in-flight request with this id off c's list. */
static gw_req *conn_take(gw_conn *c, uint64_t id)
{
    gw_req **pp;
    for (pp = &c->inflight; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            gw_req *r = *pp;
            *pp = r->next;
            r->next = NULL;
            conn_inflight(c, -1);
            return r;
        }
    return NULL;
}

/* The connection is gone: requests that cannot have run, or that are safe
 * to run again, go back to the queue for another enclave; the others are
 * answered 503 (they may have executed). */
static void conn_down(gw_conn *c, const char *why)
{
    gw_inst *p = c->p;
    gw_req *r, *next;
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->state == CONN_UP && conn_up(c, -1))
        eng_log(SIGNER_LOG_WARN, "gateway: enclave %s down: %s", c->endpoint,
                why);
    c->state = CONN_DOWN;
    c->write_armed = 0;
    c->next_try_us = eng_now_us() + (uint64_t)p->sh->conf.reconnect_ms * 1000;
    c->probe_id = 0;
    for (r = c->inflight; r != NULL; r = next) {
        next = r->next;
        conn_inflight(c, -1);
        atomic_fetch_add(&c->st->losses, 1);
        if (r->retryable && r->tries < 2 && !atomic_load(&p->sh->stopping)) {
            atomic_fetch_add(&p->sh->failovers, 1);
            r->next = p->wait_head;
            p->wait_head = r;
        } else {
            req_finish(r, NULL, SIGNER_ERR_UNAVAILABLE,
                       "enclave: connection lost while the request was in "
                       "flight (not retried: it may have run)");
        }
    }
    c->inflight = NULL;
}

/* The id of an answer laid out as an enclave prints it, {"id":DIGITS,...}:
 * 1 with *id set, else 0. */
static int text_id(const char *json, size_t len, uint64_t *id)
{
    size_t end = eng_gw_answer_id(json, len, id);
    return end != 0 && (json[end] == ',' || json[end] == '}');
}

/* The id of an answer of another layout, parsed: 1 with *id and *ans (the
 * tree without its id) set, else 0. */
static int tree_id(const char *json, size_t len, uint64_t *id, cJSON **ans)
{
    const cJSON *v;
    *ans = cJSON_ParseWithLength(json, len);
    v = *ans ? cJSON_GetObjectItemCaseSensitive(*ans, "id") : NULL;
    if (v == NULL || !cJSON_IsNumber(v) || v->valuedouble < 1 ||
        v->valuedouble >= 9007199254740992.0) {
        cJSON_Delete(*ans);
        *ans = NULL;
        return 0;
    }
    *id = (uint64_t)v->valuedouble;
    cJSON_DeleteItemFromObjectCaseSensitive(*ans, "id");
    return 1;
}

/* One answer frame: matched by id to its request, which gets the text
 * (and the tree, when this layout needed a parse to find the id). */
static void conn_answer(gw_conn *c, const char *json, size_t len)
{
    cJSON *ans = NULL;
    gw_req *r;
    uint64_t uid = 0;
    if (!text_id(json, len, &uid) && !tree_id(json, len, &uid, &ans)) {
        conn_down(c, "answer without a valid id");
        return;
    }
    if (uid == c->probe_id) {
        c->probe_id = 0;
        cJSON_Delete(ans);
        return;
    }
    if ((r = conn_take(c, uid)) == NULL) { /* expired meanwhile */
        cJSON_Delete(ans);
        return;
    }
    atomic_fetch_add(&c->st->answers, 1);
    rt_observe(c->p->sh, eng_now_us() - r->sent_us);
    r->done(r->arg, ans, json, len, SIGNER_OK, NULL);
    req_free(r);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    gw_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in), plen = 0;
        const unsigned char *b;
        long total;
        if (avail < 4)
            break;
        b = evbuffer_pullup(in, 4);
        total = eng_frame_parse(b, 4, c->p->sh->conf.max_frame, &plen);
        if (total < 0 || (plen + 4 <= avail &&
                          (b = evbuffer_pullup(in, (ev_ssize_t)(plen + 4))) ==
                              NULL)) {
            conn_down(c, "oversized or unreadable answer frame");
            return;
        }
        if (plen + 4 > avail)
            break;
        c->last_rx_us = eng_now_us();
        conn_answer(c, (const char *)b + 4, plen);
        if (c->bev != bev)
            return; /* closed while answering */
        evbuffer_drain(in, plen + 4);
    }
    pool_dispatch(c->p);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    gw_conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->state = CONN_UP;
        c->write_armed = 0;
        bufferevent_disable(c->bev, EV_WRITE); /* pool_flush_cb writes */
        c->last_rx_us = eng_now_us();
        if (conn_up(c, 1))
            eng_log(SIGNER_LOG_INFO, "gateway: enclave %s up", c->endpoint);
        pool_dispatch(c->p);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_down(c, (what & BEV_EVENT_EOF) ? "closed by the enclave"
                                            : "connection error");
}

/* Starts a non-blocking connect to c's endpoint. */
static void conn_connect(gw_conn *c)
{
    eng_sockaddr sa;
    char why[256];
    memset(&sa, 0, sizeof sa);
    c->next_try_us = eng_now_us() + (uint64_t)c->p->sh->conf.reconnect_ms * 1000;
    if (eng_listen_parse(c->endpoint, &sa, why, sizeof why) != 0)
        return;
    c->bev = bufferevent_socket_new(c->p->base, -1,
                                    BEV_OPT_CLOSE_ON_FREE |
                                        BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL)
        return;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = CONN_CONNECTING;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa.ss,
                                   (int)sa.len) != 0) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        c->state = CONN_DOWN;
        return;
    }
    if ((sa.ss.ss_family == AF_INET || sa.ss.ss_family == AF_INET6)) {
        int one = 1; /* a batch goes at once, not after the last one's ACK */
        (void)setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY,
                         &one, sizeof one);
    }
}

/* Queues one frame on c; the set's flush event writes every frame queued
 * in this loop iteration with one write per connection. */
static void conn_send(gw_conn *c, const char *frame, size_t len)
{
    unsigned char hdr[4];
    struct evbuffer *out = bufferevent_get_output(c->bev);
    eng_frame_header(hdr, len);
    evbuffer_add(out, hdr, 4);
    evbuffer_add(out, frame, len);
    event_active(c->p->flush, EV_WRITE, 0);
}

/* The bufferevent wrote what a direct write left: back to direct writes. */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    gw_conn *c = arg;
    if (c->write_armed &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        c->write_armed = 0;
        bufferevent_disable(bev, EV_WRITE);
    }
}

/* Writes the frames queued on the set's connections, after the events of
 * this loop iteration that queued them (pipelined frames leave together:
 * one syscall, on vsock one VM exit, per connection and iteration).
 * EV_WRITE is armed only for what the socket did not take, and so that
 * the bufferevent reports a failed write. */
static void pool_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_inst *p = arg;
    size_t i;
    (void)fd;
    (void)what;
    for (i = 0; i < p->n; i++) {
        gw_conn *c = &p->conns[i];
        struct evbuffer *out;
        if (c->bev == NULL || c->state != CONN_UP || c->write_armed)
            continue;
        out = bufferevent_get_output(c->bev);
        if (evbuffer_get_length(out) == 0)
            continue;
        (void)evbuffer_write(out, bufferevent_getfd(c->bev));
        if (evbuffer_get_length(out) > 0) {
            c->write_armed = 1;
            bufferevent_enable(c->bev, EV_WRITE);
        }
    }
}

/* ---- scheduling --------------------------------------------------------- */

/* An up connection with room, round robin; NULL if none. */
static gw_conn *pool_pick(gw_inst *p)
{
    size_t i;
    for (i = 0; i < p->n; i++) {
        gw_conn *c = &p->conns[(p->rr + i) % p->n];
        if (c->state == CONN_UP &&
            c->n_inflight < p->sh->conf.max_pipeline) {
            p->rr = (p->rr + i + 1) % p->n;
            return c;
        }
    }
    return NULL;
}

/* 1 while some enclave is up or being connected to. */
static int pool_hopeful(gw_inst *p)
{
    size_t i;
    for (i = 0; i < p->n; i++)
        if (p->conns[i].state != CONN_DOWN)
            return 1;
    return 0;
}

/* Sends what waits to connections with room; with no enclave at all, the
 * waiting requests are answered 503 at once. */
static void pool_dispatch(gw_inst *p)
{
    gw_req *r;
    gw_conn *c;
    while ((r = p->wait_head) != NULL) {
        if ((c = pool_pick(p)) == NULL)
            break;
        p->wait_head = r->next;
        r->next = c->inflight;
        c->inflight = r;
        conn_inflight(c, 1);
        r->tries++;
        r->sent_us = eng_now_us();
        conn_send(c, r->frame, r->len);
    }
    if (p->wait_head != NULL && !pool_hopeful(p))
        while ((r = p->wait_head) != NULL) {
            p->wait_head = r->next;
            atomic_fetch_add(&p->sh->no_enclave, 1);
            req_finish(r, NULL, SIGNER_ERR_UNAVAILABLE,
                       "enclave: none available");
        }
}

/* Takes what other threads queued. */
static void pool_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_inst *p = arg;
    gw_req *head, **tail;
    (void)fd;
    (void)what;
    if (atomic_load(&p->sh->stopping)) {
        event_base_loopbreak(p->base);
        return;
    }
    pthread_mutex_lock(&p->mu);
    head = p->in_head;
    p->in_head = p->in_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    for (tail = &p->wait_head; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = head;
    pool_dispatch(p);
}

/* Expires c's requests past their deadline; a connection that has said
 * nothing since such a request was sent is taken as hung. */
static void conn_expire(gw_conn *c, uint64_t now)
{
    gw_req **pp = &c->inflight;
    int hung = 0;
    while (*pp != NULL) {
        gw_req *r = *pp;
        if (r->deadline_us > now) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        conn_inflight(c, -1);
        atomic_fetch_add(&c->st->timeouts, 1);
        if (c->last_rx_us < r->sent_us)
            hung = 1;
        req_finish(r, NULL, SIGNER_ERR_UNAVAILABLE,
                   "enclave: no answer within the deadline");
    }
    if (c->probe_id != 0 &&
        now - c->probe_sent_us > (uint64_t)c->p->sh->conf.deadline_ms * 1000)
        hung = 1;
    if (hung)
        conn_down(c, "no answer within the deadline");
}

/* An idle connection is probed; any answer to the probe proves it alive. */
static void conn_probe(gw_conn *c, uint64_t now)
{
    char frame[96];
    int n;
    if (c->p->sh->conf.health_ms <= 0 || c->probe_id != 0 ||
        c->state != CONN_UP || c->inflight != NULL ||
        now - c->last_rx_us < (uint64_t)c->p->sh->conf.health_ms * 1000)
        return;
    c->probe_id = atomic_fetch_add(&c->p->sh->next_id, 1);
    c->probe_sent_us = now;
    n = snprintf(frame, sizeof frame,
                 "{\"id\":%llu,\"operation\":\"health\",\"payload\":{}}",
                 (unsigned long long)c->probe_id);
    conn_send(c, frame, (size_t)n);
}

/* Deadlines, reconnects and health probes. */
static void pool_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_inst *p = arg;
    uint64_t now = eng_now_us();
    gw_req **pp = &p->wait_head;
    size_t i;
    (void)fd;
    (void)what;
    while (*pp != NULL) {
        gw_req *r = *pp;
        if (r->deadline_us > now) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        atomic_fetch_add(&p->sh->no_enclave, 1);
        req_finish(r, NULL, SIGNER_ERR_UNAVAILABLE,
                   "enclave: none answered within the deadline");
    }
    for (i = 0; i < p->n; i++) {
        gw_conn *c = &p->conns[i];
        conn_expire(c, now);
        if (c->state == CONN_DOWN && now >= c->next_try_us)
            conn_connect(c);
        conn_probe(c, now);
    }
    pool_dispatch(p);
}

static void *pool_main(void *arg)
{
    gw_inst *p = arg;
    event_base_dispatch(p->base);
    return NULL;
}

/* ---- sets --------------------------------------------------------------- */

/* Answers every request of the set still queued or in flight with 503 and
 * closes its connections. */
static void pool_drain(gw_inst *p)
{
    gw_req *r;
    size_t i;
    for (i = 0; p->conns != NULL && i < p->n; i++)
        conn_down(&p->conns[i], "gateway stopping");
    while ((r = p->in_head) != NULL) {
        p->in_head = r->next;
        r->next = p->wait_head;
        p->wait_head = r;
    }
    while ((r = p->wait_head) != NULL) {
        p->wait_head = r->next;
        req_finish(r, NULL, SIGNER_ERR_UNAVAILABLE, "gateway: shutting down");
    }
}

/* Drains the set and frees it (on its thread, or after it ended). */
static void inst_free(gw_inst *p)
{
    if (p == NULL)
        return;
    pool_drain(p);
    if (p->wake != NULL)
        event_free(p->wake);
    if (p->tick != NULL)
        event_free(p->tick);
    if (p->flush != NULL)
        event_free(p->flush);
    if (p->own_base && p->base != NULL)
        event_base_free(p->base);
    pthread_mutex_destroy(&p->mu);
    free(p->conns);
    free(p);
}

/* A set of sh's connections on base, or (base NULL) on a base of its own
 * with a wake event for other threads' requests; connecting.  NULL on
 * failure. */
static gw_inst *inst_new(eng_gw_pool *sh, struct event_base *base)
{
    struct timeval tv = {0, GW_TICK_MS * 1000};
    gw_inst *p = calloc(1, sizeof *p);
    size_t i;
    if (p == NULL)
        return NULL;
    p->sh = sh;
    p->n = sh->conf.n_endpoints;
    pthread_mutex_init(&p->mu, NULL);
    p->own_base = base == NULL;
    p->base = base != NULL ? base : eng_event_base_new();
    if ((p->conns = calloc(p->n, sizeof *p->conns)) == NULL) {
        p->n = 0;
        inst_free(p);
        return NULL;
    }
    for (i = 0; i < p->n; i++) {
        p->conns[i].p = p;
        p->conns[i].endpoint = sh->endpoints[i];
        p->conns[i].st = &sh->stats[i];
    }
    if (p->base == NULL ||
        (p->own_base && (p->wake = event_new(p->base, -1, EV_PERSIST,
                                             pool_wake_cb, p)) == NULL) ||
        (p->tick = event_new(p->base, -1, EV_PERSIST, pool_tick_cb, p)) ==
            NULL ||
        (p->flush = event_new(p->base, -1, 0, pool_flush_cb, p)) == NULL) {
        inst_free(p);
        return NULL;
    }
    if (p->wake != NULL)
        event_add(p->wake, NULL);
    event_add(p->tick, &tv);
    for (i = 0; i < p->n; i++)
        conn_connect(&p->conns[i]);
    return p;
}

/* The calling loop thread's set (made on first use), per pool. */
static __thread eng_gw_pool *tls_pool;
static __thread gw_inst *tls_inst;

/* A transport loop ends: its set goes before its base does. */
static void inst_at_exit(void *arg)
{
    gw_inst *p = arg, **pp;
    eng_gw_pool *sh = p->sh;
    pthread_mutex_lock(&sh->mu);
    for (pp = &sh->loops; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    pthread_mutex_unlock(&sh->mu);
    if (tls_inst == p)
        tls_pool = NULL, tls_inst = NULL;
    inst_free(p);
}

/* The set of the transport loop running the caller, or NULL off a loop
 * (then the pool's own set is used). */
static gw_inst *inst_of_thread(eng_gw_pool *sh)
{
    struct event_base *b;
    gw_inst *p;
    if (tls_pool == sh)
        return tls_inst;
    if ((b = eng_loop_current_base()) == NULL || (p = inst_new(sh, b)) == NULL)
        return NULL;
    if (eng_loop_at_exit(inst_at_exit, p) != 0) {
        inst_free(p);
        return NULL;
    }
    pthread_mutex_lock(&sh->mu);
    p->next = sh->loops;
    sh->loops = p;
    pthread_mutex_unlock(&sh->mu);
    tls_pool = sh;
    tls_inst = p;
    return p;
}

/* ---- public ------------------------------------------------------------- */

/* Frees what start made; the sets must be gone. */
static void pool_release(eng_gw_pool *sh)
{
    size_t i;
    for (i = 0; sh->endpoints != NULL && i < sh->conf.n_endpoints; i++)
        free(sh->endpoints[i]);
    free(sh->endpoints);
    free(sh->stats);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* Copies and checks the endpoints.  0, or -1 with err set. */
static int pool_endpoints(eng_gw_pool *sh, const eng_gw_pool_conf *conf,
                          char *err, size_t err_len)
{
    size_t i;
    for (i = 0; i < conf->n_endpoints; i++) {
        eng_sockaddr sa;
        char why[256];
        if ((sh->endpoints[i] = strdup(conf->endpoints[i])) == NULL) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        if (eng_listen_parse(conf->endpoints[i], &sa, why, sizeof why) != 0) {
            snprintf(err, err_len, "gateway.enclaves: '%s': %s",
                     conf->endpoints[i], why);
            return -1;
        }
    }
    return 0;
}

eng_gw_pool *eng_gw_pool_start(const eng_gw_pool_conf *conf, char *err,
                               size_t err_len)
{
    eng_gw_pool *sh;
    if (conf->n_endpoints == 0) {
        snprintf(err, err_len, "gateway.enclaves: at least one endpoint");
        return NULL;
    }
    if ((sh = calloc(1, sizeof *sh)) == NULL) {
        snprintf(err, err_len, "gateway: cannot start the enclave pool");
        return NULL;
    }
    pthread_mutex_init(&sh->mu, NULL);
    sh->conf = *conf;
    atomic_store(&sh->next_id, 1);
    sh->endpoints = calloc(conf->n_endpoints, sizeof *sh->endpoints);
    sh->stats = calloc(conf->n_endpoints, sizeof *sh->stats);
    if (sh->endpoints == NULL || sh->stats == NULL) {
        snprintf(err, err_len, "gateway: cannot start the enclave pool");
        pool_release(sh);
        return NULL;
    }
    sh->conf.n_endpoints = conf->n_endpoints;
    if (pool_endpoints(sh, conf, err, err_len) != 0) {
        pool_release(sh);
        return NULL;
    }
    sh->conf.endpoints = (const char *const *)sh->endpoints;
    if (evthread_use_pthreads() != 0 || (sh->own = inst_new(sh, NULL)) == NULL ||
        pthread_create(&sh->own->thread, NULL, pool_main, sh->own) != 0) {
        snprintf(err, err_len, "gateway: cannot start the enclave pool");
        inst_free(sh->own);
        pool_release(sh);
        return NULL;
    }
    sh->own->started = 1;
    return sh;
}

/* Integers below 10^15 (what "%1.15g" prints as plain digits) become raw
 * text made here, so printing the frame does not run printf and sscanf
 * per number (cJSON's round-trip check); the text is the same. */
static void frame_fast_numbers(cJSON *item)
{
    for (; item != NULL; item = item->next) {
        double v = item->valuedouble;
        char digits[24], *raw;
        int n;
        if (item->child != NULL)
            frame_fast_numbers(item->child);
        if (!cJSON_IsNumber(item) || !(v > -1e15 && v < 1e15) ||
            v != (double)(long long)v || (v == 0 && signbit(v)))
            continue;
        n = snprintf(digits, sizeof digits, "%lld", (long long)v);
        if ((raw = cJSON_malloc((size_t)n + 1)) == NULL)
            continue;
        memcpy(raw, digits, (size_t)n + 1);
        item->valuestring = raw;
        item->type = (item->type & ~0xFF) | cJSON_Raw;
    }
}

/* A request for forwarding, its id taken; NULL (done called) when the
 * pool stops or memory runs out. */
static gw_req *req_new(eng_gw_pool *sh, int retryable, eng_gw_done done,
                       void *arg)
{
    gw_req *r = calloc(1, sizeof *r);
    if (r == NULL || atomic_load(&sh->stopping)) {
        free(r);
        done(arg, NULL, NULL, 0, SIGNER_ERR_UNAVAILABLE,
             "gateway: shutting down");
        return NULL;
    }
    r->id = atomic_fetch_add(&sh->next_id, 1);
    r->retryable = retryable;
    r->done = done;
    r->arg = arg;
    r->deadline_us = eng_now_us() + (uint64_t)sh->conf.deadline_ms * 1000;
    return r;
}

/* Queues r (its frame printed) on the caller's loop set, else on the
 * pool's own thread. */
static void req_enqueue(eng_gw_pool *sh, gw_req *r)
{
    gw_req **tail;
    gw_inst *p;
    atomic_fetch_add(&sh->forwarded, 1);
    if ((p = inst_of_thread(sh)) != NULL) { /* this loop's set: no hand-off */
        for (tail = &p->wait_head; *tail != NULL; tail = &(*tail)->next)
            ;
        *tail = r;
        pool_dispatch(p);
        return;
    }
    p = sh->own;
    pthread_mutex_lock(&p->mu);
    if (p->in_tail != NULL)
        p->in_tail->next = r;
    else
        p->in_head = r;
    p->in_tail = r;
    pthread_mutex_unlock(&p->mu);
    event_active(p->wake, EV_READ, 0);
}

void eng_gw_pool_forward(eng_gw_pool *sh, cJSON *frame, int retryable,
                         eng_gw_done done, void *arg)
{
    gw_req *r = req_new(sh, retryable, done, arg);
    if (r == NULL) {
        cJSON_Delete(frame);
        return;
    }
    cJSON_AddItemToObject(frame, "id", cJSON_CreateNumber((double)r->id));
    frame_fast_numbers(frame->child);
    r->frame = cJSON_PrintUnformatted(frame);
    cJSON_Delete(frame); /* cJSON's free wipes (eng_wiping_allocators) */
    if (r->frame == NULL) {
        free(r);
        done(arg, NULL, NULL, 0, SIGNER_ERR_NOMEM, "out of memory");
        return;
    }
    r->len = strlen(r->frame);
    req_enqueue(sh, r);
}

void eng_gw_pool_forward_text(eng_gw_pool *sh, eng_gw_text *frame,
                              int retryable, eng_gw_done done, void *arg)
{
    gw_req *r = req_new(sh, retryable, done, arg);
    char id[40];
    if (r == NULL) {
        eng_aws_buf_free(frame);
        return;
    }
    if (frame->len < 2 || frame->p[frame->len - 1] != '}')
        frame->err = 1; /* not an object: refused below */
    else
        frame->len--;
    eng_aws_buf_str(frame, eng_gw_object_empty(frame->p, frame->len + 1)
                               ? "\"id\":"
                               : ",\"id\":");
    eng_aws_buf_add(frame, id, eng_u64_decimal(id, r->id));
    eng_aws_buf_add(frame, "}", 1);
    r->len = frame->len;
    if ((r->frame = eng_aws_buf_take(frame)) == NULL) {
        free(r);
        done(arg, NULL, NULL, 0, SIGNER_ERR_NOMEM, "out of memory");
        return;
    }
    req_enqueue(sh, r);
}

int eng_gw_pool_up(eng_gw_pool *p)
{
    return p != NULL ? atomic_load(&p->n_up) : 0;
}

/* Appends printf output to a malloc'd string (freed on failure). */
static char *cat(char *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *cat(char *s, const char *fmt, ...)
{
    va_list ap;
    size_t old = s ? strlen(s) : 0;
    char line[512], *n;
    int len;
    if (s == NULL && old == 0 && (s = calloc(1, 1)) == NULL)
        return NULL;
    va_start(ap, fmt);
    len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len < 0 || (n = realloc(s, old + (size_t)len + 1)) == NULL) {
        free(s);
        return NULL;
    }
    memcpy(n + old, line, (size_t)len + 1);
    return n;
}

char *eng_gw_pool_metrics(eng_gw_pool *p, char *out)
{
    unsigned long long cum = 0;
    size_t i;
    out = cat(out, "# TYPE signer_gateway_enclave_up gauge\n");
    for (i = 0; out != NULL && i < p->conf.n_endpoints; i++) {
        const char *ep = p->endpoints[i];
        gw_stats *st = &p->stats[i];
        out = cat(out,
                  "signer_gateway_enclave_up{enclave=\"%s\"} %d\n"
                  "signer_gateway_enclave_inflight{enclave=\"%s\"} %d\n"
                  "signer_gateway_enclave_answers_total{enclave=\"%s\"} %llu\n"
                  "signer_gateway_enclave_lost_total{enclave=\"%s\"} %llu\n"
                  "signer_gateway_enclave_timeouts_total{enclave=\"%s\"} "
                  "%llu\n",
                  ep, atomic_load(&st->up) > 0, ep,
                  atomic_load(&st->inflight), ep, atomic_load(&st->answers),
                  ep, atomic_load(&st->losses), ep,
                  atomic_load(&st->timeouts));
    }
    out = cat(out, "signer_gateway_forwarded_total %llu\n"
                   "signer_gateway_failovers_total %llu\n"
                   "signer_gateway_no_enclave_total %llu\n"
                   "# TYPE signer_gateway_enclave_round_trip_seconds "
                   "histogram\n",
              atomic_load(&p->forwarded), atomic_load(&p->failovers),
              atomic_load(&p->no_enclave));
    for (i = 0; out != NULL && i < GW_RT_BUCKETS; i++) {
        cum += atomic_load(&p->rt_bucket[i]);
        out = cat(out,
                  "signer_gateway_enclave_round_trip_seconds_bucket{le=\"%g\"}"
                  " %llu\n",
                  rt_bounds_ms[i] / 1000.0, cum);
    }
    return cat(out,
               "signer_gateway_enclave_round_trip_seconds_bucket{le=\"+Inf\"}"
               " %llu\nsigner_gateway_enclave_round_trip_seconds_sum %.6f\n"
               "signer_gateway_enclave_round_trip_seconds_count %llu\n",
               atomic_load(&p->rt_count),
               (double)atomic_load(&p->rt_sum_us) / 1e6,
               atomic_load(&p->rt_count));
}

void eng_gw_pool_free(eng_gw_pool *sh)
{
    if (sh == NULL)
        return;
    atomic_store(&sh->stopping, 1);
    if (sh->own != NULL && sh->own->started) {
        event_active(sh->own->wake, EV_READ, 0);
        pthread_join(sh->own->thread, NULL);
    }
    inst_free(sh->own);
    sh->own = NULL;
    if (sh->loops != NULL) { /* a loop still runs: its set needs sh */
        eng_log(SIGNER_LOG_ERROR, "gateway: enclave pool freed while a "
                                  "transport loop still runs");
        return;
    }
    pool_release(sh);
}
