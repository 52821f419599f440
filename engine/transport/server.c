/*
 * The server: owns the listeners and the event loops, accepts on its own
 * thread (with the signal events) and hands each connection to a loop;
 * shared state of all loops (in-flight count, per-peer counts, the
 * refusal-log token bucket); metrics; start, run, stop, reload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "util.h"
#include "transport_internal.h"

#define PEER_BUCKETS 256
#define LOG_BURST 20      /* refusal log lines in a burst ... */
#define LOG_PER_SEC 20    /* ... and refilled per second */

/* Transport messages go through the engine's logger. */
void eng_transport_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eng_vlog(level, NULL, fmt, ap);
    va_end(ap);
}

/* Open TCP connections from one address on one listener. */
typedef struct peer_count {
    struct peer_count *next;
    int lsn;
    int len;
    unsigned char ip[16];
    int n;
} peer_count;

struct eng_server {
    void *tls_ctx;            /* SSL_CTX of https listeners, or NULL */
    eng_listen_spec *specs;
    size_t n_specs;
    int n_loops_cfg;
    eng_limits limits;
    eng_server_callbacks cb;

    struct event_base *base;  /* the server thread: accept, signals */
    eng_lsn *lsns;
    size_t n_lsns;
    struct event *ev_stop;
    struct event *ev_joined;  /* every loop thread has ended */
    struct event *ev_sig[3];
    atomic_int loops_running;
    eng_loop **loops;
    int n_loops;
    unsigned next_loop;

    atomic_int inflight;      /* requests of every loop */
    atomic_int stop_requested;
    int started, ran, draining;
    eng_counters st;

    pthread_mutex_t peer_mu;
    peer_count *peers[PEER_BUCKETS];

    pthread_mutex_t log_mu;   /* the refusal-log token bucket */
    double tokens;
    uint64_t tokens_at;
    uint64_t suppressed;
};

/* ---- limits and accessors ----------------------------------------------------- */

/* Fills limits with the documented defaults. */
void eng_limits_default(eng_limits *limits)
{
    limits->max_body = 1024 * 1024;
    limits->max_header = 16 * 1024;
    limits->max_connections = 1024;
    limits->max_pipeline = 64;
    limits->max_inflight = 4096;
    limits->read_timeout_ms = 10000;
    limits->write_timeout_ms = 10000;
    limits->idle_timeout_ms = 60000;
    limits->shutdown_timeout_ms = 10000;
    limits->max_per_peer = ENG_DEFAULT_PER_PEER;
}

/* Copies in to out, replacing zero or negative fields by their default. */
static void limits_normalise(eng_limits *out, const eng_limits *in)
{
    eng_limits d;

    eng_limits_default(&d);
    *out = *in;
#define FIX(f) if (out->f <= 0) out->f = d.f
    FIX(max_body);
    FIX(max_header);
    FIX(max_connections);
    FIX(max_pipeline);
    FIX(max_inflight);
    FIX(read_timeout_ms);
    FIX(write_timeout_ms);
    FIX(idle_timeout_ms);
    FIX(shutdown_timeout_ms);
    FIX(max_per_peer);
#undef FIX
    if (out->max_body > 0x7fffffffu)
        out->max_body = 0x7fffffffu; /* frames announce 32-bit lengths */
    if (out->max_header < 64)
        out->max_header = 64;
}

/* Accessors for the other transport units. */
const eng_server_callbacks *eng_server_cb(const eng_server *s) { return &s->cb; }
struct event_base *eng_server_base(const eng_server *s) { return s->base; }
void *eng_server_tls(const eng_server *s) { return s->tls_ctx; }
const eng_limits *eng_server_limits(const eng_server *s) { return &s->limits; }
atomic_int *eng_server_inflight(eng_server *s) { return &s->inflight; }
eng_counters *eng_server_counters(eng_server *s) { return &s->st; }
int eng_server_draining(const eng_server *s) { return s->draining; }
int eng_server_n_loops(const eng_server *s) { return s->n_loops; }
int eng_server_n_listeners(const eng_server *s) { return (int)s->n_specs; }
eng_loop *eng_server_loop(const eng_server *s, int i) { return s->loops[i]; }

/* Number of event loops (after eng_server_start). */
int eng_server_loops(const eng_server *s)
{
    return s != NULL ? s->n_loops : 0;
}

/* ---- per-peer counts ------------------------------------------------------------ */

/* Bucket of (listener, address). */
static unsigned peer_hash(int lsn, const unsigned char *ip, int len)
{
    unsigned h = 2166136261u ^ (unsigned)lsn;

    for (int i = 0; i < len; i++)
        h = (h ^ ip[i]) * 16777619u;
    return h % PEER_BUCKETS;
}

/* Counts one more connection from ip on ls unless at max_per_peer. */
int eng_peer_take(eng_server *s, const eng_lsn *ls, const unsigned char *ip,
                  int ip_len)
{
    unsigned b = peer_hash(ls->index, ip, ip_len);
    peer_count *p;
    int ok = 1;

    pthread_mutex_lock(&s->peer_mu);
    for (p = s->peers[b]; p != NULL; p = p->next)
        if (p->lsn == ls->index && p->len == ip_len &&
            memcmp(p->ip, ip, (size_t)ip_len) == 0)
            break;
    if (p == NULL && (p = calloc(1, sizeof *p)) != NULL) {
        p->lsn = ls->index;
        p->len = ip_len;
        memcpy(p->ip, ip, (size_t)ip_len);
        p->next = s->peers[b];
        s->peers[b] = p;
    }
    if (p == NULL || p->n >= s->limits.max_per_peer)
        ok = 0;
    else
        p->n++;
    pthread_mutex_unlock(&s->peer_mu);
    return ok;
}

/* Releases one connection from ip on ls (any thread). */
void eng_peer_release(eng_server *s, const eng_lsn *ls,
                      const unsigned char *ip, int ip_len)
{
    unsigned b = peer_hash(ls->index, ip, ip_len);
    peer_count **pp, *p;

    pthread_mutex_lock(&s->peer_mu);
    for (pp = &s->peers[b]; (p = *pp) != NULL; pp = &p->next) {
        if (p->lsn != ls->index || p->len != ip_len ||
            memcmp(p->ip, ip, (size_t)ip_len) != 0)
            continue;
        if (--p->n <= 0) {
            *pp = p->next;
            free(p);
        }
        break;
    }
    pthread_mutex_unlock(&s->peer_mu);
}

/* ---- refusal log ------------------------------------------------------------------ */

/* Takes a token of the log bucket; *missed gets the lines suppressed
 * since the last one that passed.  1 if this line may be written. */
static int log_token(eng_server *s, uint64_t *missed)
{
    uint64_t now = eng_now_ms();
    int ok = 0;

    pthread_mutex_lock(&s->log_mu);
    s->tokens += (double)(now - s->tokens_at) * LOG_PER_SEC / 1000.0;
    if (s->tokens > LOG_BURST)
        s->tokens = LOG_BURST;
    s->tokens_at = now;
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        *missed = s->suppressed;
        s->suppressed = 0;
        ok = 1;
    } else {
        s->suppressed++;
    }
    pthread_mutex_unlock(&s->log_mu);
    return ok;
}

/* Rate-limited access-log line of a transport-made answer. */
void eng_server_log_refusal(eng_server *s, const char *rid, int status,
                            const char *peer, const char *msg)
{
    uint64_t missed = 0;

    if (!log_token(s, &missed)) {
        s->st.log_suppressed++;
        return;
    }
    if (missed > 0)
        tlog(TLOG_WARN, "%llu transport error lines suppressed (more than "
             "%d a second)", (unsigned long long)missed, LOG_PER_SEC);
    eng_log_request(rid, NULL, status, 0.0, peer, msg);
}

/* ---- connections to loops ----------------------------------------------------------- */

/* Round robin; at the listener's budget, the loop holding its oldest
 * idle connection (which it evicts), or NULL. */
eng_loop *eng_server_pick_loop(eng_server *s, const eng_lsn *ls,
                               int *evict)
{
    eng_loop *best = NULL;
    uint64_t oldest = UINT64_MAX;

    *evict = 0;
    if (atomic_load(&ls->n_conns) < s->limits.max_connections)
        return s->loops[s->next_loop++ % (unsigned)s->n_loops];
    for (int i = 0; i < s->n_loops; i++) {
        uint64_t t = atomic_load(&s->loops[i]->idle[ls->index].oldest_ms);
        if (t != 0 && t < oldest) {
            oldest = t;
            best = s->loops[i];
        }
    }
    *evict = best != NULL;
    return best;
}

/* ---- metrics ------------------------------------------------------------------------ */

/* Sums the counters of the server and of every loop into v[11]. */
static void counters_sum(eng_server *s, unsigned long long v[11])
{
    memset(v, 0, 11 * sizeof v[0]);
    for (int i = -1; i < s->n_loops; i++) {
        const eng_counters *st = i < 0 ? &s->st : &s->loops[i]->st;
        v[0] += st->accepted;
        v[1] += st->rejected_conns;
        v[2] += st->requests_http;
        v[3] += st->requests_frames;
        v[4] += st->busy_rejects;
        v[5] += st->proto_errors;
        v[6] += st->read_timeouts;
        v[7] += st->write_timeouts;
        v[8] += st->idle_timeouts;
        v[9] += st->evicted;
        v[10] += st->log_suppressed;
    }
}

/* Open connections of every listener. */
static int server_conns(eng_server *s)
{
    int n = 0;

    for (size_t i = 0; i < s->n_lsns; i++)
        n += atomic_load(&s->lsns[i].n_conns);
    return n;
}

/* The transport's own Prometheus series; malloc'd or NULL. */
static char *transport_series(eng_server *s)
{
    unsigned long long v[11];
    int conns = server_conns(s);
    char *app = NULL;

    counters_sum(s, v);
    if (asprintf(&app,
        "# HELP signer_transport_connections Open client connections.\n"
        "# TYPE signer_transport_connections gauge\n"
        "signer_transport_connections %d\n"
        "# HELP signer_transport_inflight Requests in flight.\n"
        "# TYPE signer_transport_inflight gauge\n"
        "signer_transport_inflight %d\n"
        "# HELP signer_transport_connections_accepted_total Accepted connections.\n"
        "# TYPE signer_transport_connections_accepted_total counter\n"
        "signer_transport_connections_accepted_total %llu\n"
        "# HELP signer_transport_connections_rejected_total Connections closed at once (max_connections, max_per_peer).\n"
        "# TYPE signer_transport_connections_rejected_total counter\n"
        "signer_transport_connections_rejected_total %llu\n"
        "# HELP signer_transport_connections_evicted_total Idle connections closed for a new one at max_connections.\n"
        "# TYPE signer_transport_connections_evicted_total counter\n"
        "signer_transport_connections_evicted_total %llu\n"
        "# HELP signer_transport_requests_total Requests handed to the handler.\n"
        "# TYPE signer_transport_requests_total counter\n"
        "signer_transport_requests_total{proto=\"http\"} %llu\n"
        "signer_transport_requests_total{proto=\"frames\"} %llu\n"
        "# HELP signer_transport_busy_total Requests refused with 503 (max_inflight).\n"
        "# TYPE signer_transport_busy_total counter\n"
        "signer_transport_busy_total %llu\n"
        "# HELP signer_transport_protocol_errors_total Malformed or oversize requests.\n"
        "# TYPE signer_transport_protocol_errors_total counter\n"
        "signer_transport_protocol_errors_total %llu\n"
        "# HELP signer_transport_log_suppressed_total Refusal log lines dropped by the rate limit.\n"
        "# TYPE signer_transport_log_suppressed_total counter\n"
        "signer_transport_log_suppressed_total %llu\n"
        "# HELP signer_transport_timeouts_total Connections closed by a timeout.\n"
        "# TYPE signer_transport_timeouts_total counter\n"
        "signer_transport_timeouts_total{kind=\"read\"} %llu\n"
        "signer_transport_timeouts_total{kind=\"write\"} %llu\n"
        "signer_transport_timeouts_total{kind=\"idle\"} %llu\n",
        conns, atomic_load(&s->inflight), v[0], v[1], v[9], v[2], v[3], v[4],
        v[5], v[10], v[6], v[7], v[8]) < 0)
        return NULL;
    return app;
}

/* The callback's Prometheus text followed by the transport's series. */
char *eng_server_metrics(eng_server *s, size_t *len_out)
{
    char *base = s->cb.metrics != NULL ? s->cb.metrics(s->cb.ctx) : NULL;
    char *app = transport_series(s), *out = NULL;

    if (app != NULL &&
        asprintf(&out, "%s%s%s", base ? base : "",
                 base && base[0] && base[strlen(base) - 1] != '\n' ? "\n" : "",
                 app) < 0)
        out = NULL;
    free(base);
    free(app);
    if (out != NULL)
        *len_out = strlen(out);
    return out;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_ok;

/* Once per process: libevent locking, so event_active works across
 * threads. */
static void evthread_init(void)
{
    evthread_ok = evthread_use_pthreads() == 0;
}

/* Copies the listen specs of cfg; 0 or -1 on ENOMEM. */
static int specs_copy(eng_server *s, const eng_server_config *cfg)
{
    if (cfg->n_listen == 0)
        return 0;
    s->specs = calloc(cfg->n_listen, sizeof *s->specs);
    if (s->specs == NULL)
        return -1;
    s->n_specs = cfg->n_listen;
    s->tls_ctx = cfg->tls_ctx;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        s->specs[i].proto = cfg->listen[i].proto;
        s->specs[i].address = strdup(cfg->listen[i].address
                                     ? cfg->listen[i].address : "");
        if (s->specs[i].address == NULL)
            return -1;
    }
    return 0;
}

/* Creates a server (copies cfg); NULL on ENOMEM or if libevent has no
 * thread support. */
eng_server *eng_server_new(const eng_server_config *cfg,
                           const eng_server_callbacks *cb)
{
    eng_server *s;
    int n;

    pthread_once(&evthread_once, evthread_init);
    if (!evthread_ok || cfg == NULL || cb == NULL)
        return NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->peer_mu, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    s->tokens = LOG_BURST;
    s->tokens_at = eng_now_ms();
    s->cb = *cb;
    n = cfg->io_loops > 0 ? cfg->io_loops : cfg->workers;
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    s->n_loops_cfg = n <= 0 ? 1 : n > 256 ? 256 : n;
    limits_normalise(&s->limits, &cfg->limits);
    if (specs_copy(s, cfg) != 0) {
        eng_server_free(s);
        return NULL;
    }
    return s;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg);

/* Every loop has ended: the server thread stops waiting. */
static void joined_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_server *s = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(s->base);
}

/* Called by each loop's thread as it ends. */
void eng_server_loop_exited(eng_server *s)
{
    if (atomic_fetch_sub(&s->loops_running, 1) == 1)
        event_active(s->ev_joined, EV_READ, 0);
}

/* Creates the server's base, its events and the loops; 0 or -1. */
static int server_create(eng_server *s)
{
    s->base = event_base_new();
    s->lsns = calloc(s->n_specs ? s->n_specs : 1, sizeof *s->lsns);
    s->loops = calloc((size_t)s->n_loops_cfg, sizeof *s->loops);
    if (s->base == NULL || s->lsns == NULL || s->loops == NULL)
        return -1;
    s->ev_stop = event_new(s->base, -1, 0, stop_cb, s);
    s->ev_joined = event_new(s->base, -1, 0, joined_cb, s);
    if (s->ev_stop == NULL || s->ev_joined == NULL)
        return -1;
    for (int i = 0; i < s->n_loops_cfg; i++) {
        if ((s->loops[i] = eng_loop_new(s, i)) == NULL)
            return -1;
        s->n_loops++;
    }
    return 0;
}

/* Creates the loops and binds every listener; 0 or -1 with err. */
int eng_server_start(eng_server *s, char *err, size_t err_len)
{
    if (err_len > 0)
        err[0] = '\0';
    if (s->started) {
        snprintf(err, err_len, "server already started");
        return -1;
    }
    s->started = 1;
    if (server_create(s) != 0) {
        snprintf(err, err_len, "cannot create the event loops: out of "
                               "memory");
        return -1;
    }
    for (size_t i = 0; i < s->n_specs; i++) {
        s->n_lsns = i + 1;
        s->lsns[i].index = (int)i;
        if (eng_lsn_open(s, &s->lsns[i], &s->specs[i], err, err_len) != 0)
            return -1;
    }
    return 0;
}

/* Bound port of listener i (TCP and vsock), or -1. */
int eng_server_port(const eng_server *s, size_t i)
{
    if (s == NULL || i >= s->n_lsns || s->lsns == NULL)
        return -1;
    return s->lsns[i].port;
}

/* Stops accepting and asks every loop to drain; the server thread's loop
 * ends (eng_server_run then joins the loops). */
static void server_begin_shutdown(eng_server *s)
{
    if (s->draining)
        return;
    s->draining = 1;
    tlog(TLOG_INFO, "shutting down: %d connections, %d requests in flight",
         server_conns(s), atomic_load(&s->inflight));
    for (size_t i = 0; i < s->n_lsns; i++)
        eng_lsn_close(&s->lsns[i]);
    for (int i = 0; i < s->n_loops; i++)
        eng_loop_stop(s->loops[i]);
    event_base_loopbreak(s->base);
}

/* eng_server_stop() from any thread lands here, on the server thread. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_begin_shutdown(arg);
}

/* SIGHUP reloads; SIGTERM/SIGINT drain (eng_server_run then joins). */
static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    eng_server *s = arg;

    (void)what;
    if (sig == SIGHUP) {
        tlog(TLOG_INFO, "SIGHUP: reloading");
        if (s->cb.reload != NULL)
            s->cb.reload(s->cb.ctx);
        return;
    }
    tlog(TLOG_INFO, "signal %d received", (int)sig);
    server_begin_shutdown(s);
}

/* A second SIGTERM/SIGINT while the loops drain stops them at once. */
static void signal_again_cb(evutil_socket_t sig, short what, void *arg)
{
    eng_server *s = arg;

    (void)what;
    tlog(TLOG_WARN, "second signal %d: stopping now", (int)sig);
    for (int i = 0; i < s->n_loops; i++)
        event_base_loopbreak(s->loops[i]->base); /* thread-safe */
}

/* Adds the signal events; 0 or -1. */
static int signals_add(eng_server *s, event_callback_fn fn)
{
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};

    for (int i = 0; i < 3; i++) {
        if (s->ev_sig[i] != NULL)
            event_free(s->ev_sig[i]);
        s->ev_sig[i] = evsignal_new(s->base, sigs[i],
                                    i == 2 ? signal_cb : fn, s);
        if (s->ev_sig[i] == NULL || evsignal_add(s->ev_sig[i], NULL) != 0)
            return -1;
    }
    return 0;
}

/* Joins the loops: while they drain, the server thread still takes
 * signals (a second one stops them at once); each loop gives up after
 * shutdown_timeout_ms. */
static void loops_join(eng_server *s)
{
    if (atomic_load(&s->loops_running) > 0 &&
        signals_add(s, signal_again_cb) == 0)
        event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    for (int i = 0; i < s->n_loops; i++)
        eng_loop_join(s->loops[i]);
}

/* Starts every loop's thread; 0 or -1. */
static int loops_start(eng_server *s)
{
    for (int i = 0; i < s->n_loops; i++) {
        atomic_fetch_add(&s->loops_running, 1);
        if (eng_loop_start(s->loops[i]) != 0) {
            atomic_fetch_sub(&s->loops_running, 1);
            return -1;
        }
    }
    return 0;
}

/* Runs until stopped; 0 after a clean shutdown, -1 if the server was not
 * started, already ran, or the loops could not start. */
int eng_server_run(eng_server *s)
{
    int rc = -1;

    if (s == NULL || !s->started || s->ran || s->base == NULL)
        return -1;
    s->ran = 1;
    signal(SIGPIPE, SIG_IGN);
    if (signals_add(s, signal_cb) != 0)
        goto done;
    if (loops_start(s) != 0) {
        tlog(TLOG_ERROR, "cannot start event-loop threads");
        goto done;
    }
    tlog(TLOG_INFO, "serving with %d event loops", s->n_loops);
    /* A stop asked for before the loop runs is handled inside it (a
     * loopbreak issued before event_base_loop would be forgotten). */
    if (atomic_load(&s->stop_requested))
        event_active(s->ev_stop, EV_READ, 0);
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    rc = 0;
done:
    server_begin_shutdown(s);
    loops_join(s);
    for (int i = 0; i < 3; i++) {
        if (s->ev_sig[i] != NULL)
            event_free(s->ev_sig[i]);
        s->ev_sig[i] = NULL;
    }
    if (rc == 0)
        tlog(TLOG_INFO, "stopped");
    return rc;
}

/* Thread-safe stop request (after eng_server_start). */
void eng_server_stop(eng_server *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop_requested, 1);
    if (s->ev_stop != NULL)
        event_active(s->ev_stop, EV_READ, 0);
}

/* Replaces the limits; each loop applies them on its own thread. */
void eng_server_set_limits(eng_server *s, const eng_limits *limits)
{
    eng_limits n;

    limits_normalise(&n, limits);
    s->limits = n;
    for (int i = 0; i < s->n_loops; i++)
        eng_loop_set_limits(s->loops[i], &n);
}

/* Frees the server (after eng_server_run returned, or if it never ran). */
void eng_server_free(eng_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_lsns; i++)
        eng_lsn_close(&s->lsns[i]);
    for (int i = 0; i < s->n_loops; i++)
        eng_loop_free(s->loops[i]);
    if (s->ev_stop != NULL)
        event_free(s->ev_stop);
    if (s->ev_joined != NULL)
        event_free(s->ev_joined);
    if (s->base != NULL)
        event_base_free(s->base);
    for (unsigned b = 0; b < PEER_BUCKETS; b++)
        while (s->peers[b] != NULL) {
            peer_count *p = s->peers[b];
            s->peers[b] = p->next;
            free(p);
        }
    free(s->loops);
    free(s->lsns);
    for (size_t i = 0; i < s->n_specs; i++)
        free((char *)s->specs[i].address);
    free(s->specs);
    pthread_mutex_destroy(&s->peer_mu);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}
