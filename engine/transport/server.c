/*
 * The server: listeners, connections, the worker pool and the hand-back of
 * answers to the I/O thread, timeouts, limits, signals and shutdown.
 *
 * Threads.  Everything that touches a connection (bufferevents, timers,
 * counters, the connection list) runs on the one I/O thread.  Workers only
 * see jobs: a private copy of the request and, once handled, the answer.
 * A job holds a reference on its connection; the reference is counted and
 * dropped on the I/O thread only, so a connection closed while its request
 * is being signed stays allocated (marked dead) until the completion comes
 * back and is dropped.  No atomics are needed for that.
 *
 * Connection states (per connection, evaluated in conn_after()):
 *   reading    - input enabled; a partial request must complete within
 *                read_timeout_ms (a fresh HTTP connection counts as a
 *                started request, so silent sockets are cut off too);
 *   busy       - HTTP: one request at a time, input paused until its
 *                answer is queued; frames: up to max_pipeline in flight;
 *   writing    - output pending must drain within write_timeout_ms;
 *   idle       - nothing pending: closed after idle_timeout_ms;
 *   closing    - no more requests; closed once answers are flushed,
 *                followed by a short lingering close (shutdown(SHUT_WR),
 *                discard input) so a client still sending a refused body
 *                reads our error instead of a reset.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "log.h"
#include "util.h"
#include "transport_internal.h"

#define OUT_HIGH (256u * 1024u)   /* stop taking requests above this output */
#define READ_SLACK (64u * 1024u)  /* input allowed beyond one full request */
#define LINGER_MS 2000            /* lingering close after an error answer */
#define LINGER_MAX_BYTES (8u * 1024u * 1024u)
#define ACCEPT_RETRY_MS 100       /* listener pause after EMFILE and co. */

/* ---- logging -------------------------------------------------------------- */

/* Transport messages go through the engine's logger (one format, one
 * level, adjusted by SIGHUP). */
void eng_transport_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eng_vlog(level, NULL, fmt, ap);
    va_end(ap);
}

/* ---- types ---------------------------------------------------------------- */

typedef struct conn conn;
typedef struct job job;

struct conn {
    eng_server *s;
    conn *prev, *next;        /* the server's list of open connections */
    struct bufferevent *bev;  /* NULL once closed */
    struct event *timer;      /* the one deadline of the current state */
    int proto;                /* enum eng_proto */
    int refs;                 /* list membership + one per job (I/O thread) */
    int dead;                 /* closed: completions are dropped */
    int jobs;                 /* requests queued or running */
    int closing;              /* take no more requests; close when flushed */
    int read_eof;             /* the peer shut its side down */
    int lingering;            /* SHUT_WR sent, discarding input */
    int fresh;                /* HTTP: no request completed yet */
    int continue_sent;        /* HTTP: 100 Continue sent for this request */
    int keep_alive;           /* HTTP: of the request in flight */
    size_t lingered;          /* bytes discarded while lingering */
    uint64_t req_start;       /* ms: partial request began, 0 if none */
    uint64_t write_start;     /* ms: output became non-empty, 0 if empty */
    uint64_t idle_since;      /* ms: nothing pending since, 0 if busy */
    uint64_t linger_start;    /* ms */
    char peer[80];
};

struct job {
    job *next;
    conn *c;
    eng_request req;
    char *body;
    char key_id[65];
    char peer[80];
    char *resp;
    size_t resp_len;
    int status;
};

typedef struct lsn {
    eng_server *s;
    struct evconnlistener *l;
    struct event *retry;
    int proto;
    int port;
    char addr[160];           /* printable bound address */
    char *unix_path;          /* to unlink on shutdown, or NULL */
} lsn;

/* Atomic: with io_loops, GET /metrics on one loop sums every loop's. */
typedef struct counters {
    _Atomic uint64_t accepted, rejected_conns, requests_http, requests_frames;
    _Atomic uint64_t busy_rejects, proto_errors, read_timeouts;
    _Atomic uint64_t write_timeouts, idle_timeouts;
} counters;

/* A connection accepted by the owner, handed to an event loop (io_loops). */
typedef struct handoff {
    struct handoff *next;
    int fd, proto;
    struct sockaddr_storage addr;
    socklen_t alen;
    char where[160]; /* the listener's address, for logs */
} handoff;

struct eng_server {
    eng_listen_spec *specs;
    size_t n_specs;
    int workers;
    eng_limits limits;
    eng_server_callbacks cb;

    struct event_base *base;
    lsn *lsns;
    size_t n_lsns;
    struct event *ev_stop, *ev_done, *ev_grace;
    struct event *ev_sig[3];

    pthread_t *threads;
    int n_threads;
    pthread_mutex_t qmu;      /* job queue, workers take from it */
    pthread_cond_t qcv;
    job *qhead, *qtail;
    int qstop;
    int qidle;                /* workers waiting on qcv */
    pthread_mutex_t dmu;      /* completion queue, back to the I/O thread */
    job *dhead, *dtail;

    /* io_loops > 0: this server (the owner) only accepts, and hands each
     * connection to one of n_loops servers of its own, each an event loop
     * on its own thread that runs its requests inline. */
    int n_loops;
    eng_server **loops;
    pthread_t *loop_threads;
    int n_loop_threads;
    unsigned next_loop;
    eng_server *owner;        /* a loop: its owner; else NULL */
    int inline_req;           /* a loop: handle() runs on this thread */
    pthread_mutex_t amu;      /* a loop: handoffs and new limits */
    handoff *ahead, *atail;
    eng_limits new_limits;
    int limits_pending;
    struct event *ev_adopt;

    atomic_int stop_requested;
    int started, ran, draining;
    atomic_int n_conns;       /* the owner's: all its loops' connections */
    atomic_int inflight;
    conn *conns;
    counters st;
    uint64_t last_reject_log;
};

static void conn_after(conn *c);
static void http_error(conn *c, int status, const char *msg, int keep_alive);
static void conn_process(conn *c);
static void server_begin_shutdown(eng_server *s);
static void stop_cb(evutil_socket_t fd, short what, void *arg);
static void grace_cb(evutil_socket_t fd, short what, void *arg);
static void adopt_cb(evutil_socket_t fd, short what, void *arg);
static void jobs_drop(eng_server *s, job *list);

/* ---- small helpers -------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "http" or "frames", for logs. */
static const char *proto_name(int proto)
{
    return proto == ENG_PROTO_FRAMES ? "frames" : "http";
}

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
#undef FIX
    if (out->max_body > 0x7fffffffu)
        out->max_body = 0x7fffffffu; /* frames announce 32-bit lengths */
    if (out->max_header < 64)
        out->max_header = 64;
}

/* High read watermark: one full request plus some pipelined bytes. */
static size_t read_high(const eng_server *s, int proto)
{
    if (proto == ENG_PROTO_FRAMES)
        return 4 + s->limits.max_body + READ_SLACK;
    return s->limits.max_header + s->limits.max_body + READ_SLACK;
}

/* evbuffer cleanup of a malloc'd answer handed over by reference. */
static void free_cb(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* ---- connections ---------------------------------------------------------- */

/* Takes a reference (I/O thread only). */
static void conn_ref(conn *c) { c->refs++; }

/* Drops a reference; frees the connection with the last one. */
static void conn_unref(conn *c)
{
    if (--c->refs > 0)
        return;
    if (c->timer != NULL)
        event_free(c->timer);
    free(c);
}

/* Ends the loop once draining and nothing is left. */
static void server_maybe_finish(eng_server *s)
{
    /* an owner of loops holds no connection itself: its loops drain
     * theirs, and eng_server_run joins them */
    if (s->draining &&
        (s->n_loops > 0 || (s->n_conns == 0 && s->inflight == 0)))
        event_base_loopbreak(s->base);
}

/* Closes the socket now; the struct lives on while jobs reference it. */
static void conn_close(conn *c, const char *why)
{
    eng_server *s = c->s;

    if (c->dead)
        return;
    c->dead = 1;
    if (why != NULL)
        tlog(TLOG_DEBUG, "%s connection from %s closed: %s",
             proto_name(c->proto), c->peer, why);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->n_conns--;
    if (s->owner != NULL)
        s->owner->n_conns--;
    bufferevent_free(c->bev);
    c->bev = NULL;
    event_del(c->timer);
    conn_unref(c);
    server_maybe_finish(s);
}

/* All answers flushed on a closing connection: lingering close, or a
 * plain close when the peer is gone or we are shutting down. */
static void conn_finish(conn *c)
{
    struct evbuffer *in;

    if (c->s->draining || c->read_eof) {
        conn_close(c, "done");
        return;
    }
    (void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    c->lingering = 1;
    c->linger_start = now_ms();
    in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    conn_after(c);
}

/* Arms the connection timer for the earliest deadline of its state. */
static void conn_arm_timer(conn *c, uint64_t now)
{
    const eng_limits *L = &c->s->limits;
    uint64_t dl = UINT64_MAX;
    struct timeval tv;

#define CONSIDER(start, ms) \
    if ((start) != 0 && (start) + (uint64_t)(ms) < dl) dl = (start) + (uint64_t)(ms)
    CONSIDER(c->linger_start, LINGER_MS);
    CONSIDER(c->write_start, L->write_timeout_ms);
    CONSIDER(c->req_start, L->read_timeout_ms);
    CONSIDER(c->idle_since, L->idle_timeout_ms);
#undef CONSIDER
    if (dl == UINT64_MAX) {
        event_del(c->timer);
        return;
    }
    dl = (dl > now ? dl - now : 0) * 1000 + 1000; /* us, 1 ms late */
    tv.tv_sec = (time_t)(dl / 1000000);
    tv.tv_usec = (suseconds_t)(dl % 1000000);
    evtimer_add(c->timer, &tv);
}

/* Timer: closes the connection whose deadline passed, else re-arms. */
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    const eng_limits *L = &c->s->limits;
    uint64_t now = now_ms();

    (void)fd;
    (void)what;
    if (c->dead)
        return;
    conn_ref(c);
    if (c->linger_start != 0 && now >= c->linger_start + LINGER_MS) {
        conn_close(c, "linger over");
    } else if (c->write_start != 0 &&
               now >= c->write_start + (uint64_t)L->write_timeout_ms) {
        c->s->st.write_timeouts++;
        tlog(TLOG_INFO, "%s connection from %s: write timeout, closing",
             proto_name(c->proto), c->peer);
        conn_close(c, NULL);
    } else if (c->req_start != 0 &&
               now >= c->req_start + (uint64_t)L->read_timeout_ms) {
        c->s->st.read_timeouts++;
        if (c->proto == ENG_PROTO_HTTP && c->jobs == 0 &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            /* part of a request arrived: say why before closing (a
             * connection that sent nothing is closed silently) */
            tlog(TLOG_INFO, "http connection from %s: read timeout, "
                            "answering 408 and closing", c->peer);
            http_error(c, 408, "request not received within read_timeout_ms",
                       0);
            conn_after(c);
        } else {
            tlog(TLOG_INFO, "%s connection from %s: read timeout, closing",
                 proto_name(c->proto), c->peer);
            conn_close(c, NULL);
        }
    } else if (c->idle_since != 0 &&
               now >= c->idle_since + (uint64_t)L->idle_timeout_ms) {
        c->s->st.idle_timeouts++;
        conn_close(c, "idle timeout");
    } else {
        conn_arm_timer(c, now);
    }
    conn_unref(c);
}

/* After every event: closes a finished connection, pauses or resumes
 * reading, and recomputes the state deadlines. */
static void conn_after(conn *c)
{
    eng_server *s = c->s;
    size_t in, out;
    uint64_t now;
    int want_read;

    if (c->dead)
        return;
    now = now_ms();
    if (c->lingering) {
        c->req_start = c->write_start = c->idle_since = 0;
        conn_arm_timer(c, now);
        return;
    }
    in = evbuffer_get_length(bufferevent_get_input(c->bev));
    out = evbuffer_get_length(bufferevent_get_output(c->bev));
    if ((c->closing || c->read_eof || s->draining) && c->jobs == 0 &&
        out == 0) {
        conn_finish(c);
        return;
    }
    want_read = !c->closing && !c->read_eof && !s->draining &&
                out < OUT_HIGH &&
                (c->proto == ENG_PROTO_HTTP ? c->jobs == 0
                                            : c->jobs < s->limits.max_pipeline);
    if (want_read)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);

    if (out == 0)
        c->write_start = 0;
    else if (c->write_start == 0)
        c->write_start = now;
    if (want_read && (in > 0 || c->fresh)) {
        if (c->req_start == 0)
            c->req_start = now;
    } else {
        c->req_start = 0;
    }
    if (c->jobs == 0 && in == 0 && out == 0 && !c->fresh && !c->closing) {
        if (c->idle_since == 0)
            c->idle_since = now;
    } else {
        c->idle_since = 0;
    }
    conn_arm_timer(c, now);
}

/* ---- writing answers ------------------------------------------------------ */

/* Queues an HTTP response; takes ownership of body (malloc'd or NULL). */
static void http_respond(conn *c, int status, const char *ctype, char *body,
                         size_t len, int keep_alive, const char *extra)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char head[512];
    size_t hl;

    if (body == NULL)
        len = 0;
    /* After the peer's EOF, requests already buffered are still answered;
     * conn_after() closes once they are flushed. */
    keep_alive = keep_alive && !c->closing && !c->s->draining;
    hl = eng_http_format_head(head, sizeof head, status, ctype, len,
                              keep_alive, extra);
    evbuffer_add(out, head, hl);
    if (len > 0) {
        if (evbuffer_add_reference(out, body, len, free_cb, NULL) != 0)
            free(body);
    } else {
        free(body);
    }
    if (!keep_alive)
        c->closing = 1;
}

/* Queues an HTTP error answer of the API shape. */
static void http_error(conn *c, int status, const char *msg, int keep_alive)
{
    size_t len = 0;
    char *body = eng_http_error_body(status, msg, &len), rid[17];

    if (status >= 400 && status != 404 && status != 405 && status != 408 &&
        status != 503)
        c->s->st.proto_errors++;
    /* Refused by the transport, before any handler: an access-log line of
     * its own (the message names the cause, never request content). */
    eng_request_id(rid);
    eng_log_request(rid, NULL, status, 0.0, c->peer, msg);
    http_respond(c, status, "application/json", body, len, keep_alive, NULL);
}

/* Queues one frame; takes ownership of payload. */
static void frame_write(conn *c, char *payload, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    unsigned char hdr[4];

    eng_frame_header(hdr, len);
    evbuffer_add(out, hdr, 4);
    if (len > 0 && evbuffer_add_reference(out, payload, len, free_cb, NULL) == 0)
        return;
    free(payload);
}

/* Queues a transport-made error frame. */
static void frame_error(conn *c, const char *id_json, int status,
                        const char *msg)
{
    size_t len = 0;
    char *p = eng_frame_error_body(id_json, status, msg, &len), rid[17];

    if (status != 503)
        c->s->st.proto_errors++;
    eng_request_id(rid);
    eng_log_request(rid, NULL, status, 0.0, c->peer, msg);
    if (p != NULL)
        frame_write(c, p, len);
}

/* ---- the worker pool ------------------------------------------------------ */

/* Frees a job, its body and answer. */
static void job_free(job *j)
{
    if (j == NULL)
        return;
    free(j->body);
    free(j->resp);
    free(j);
}

/* Runs a job's handler, wipes its body (it may hold secrets) and queues
 * the answer for done_cb; 1 if the completion queue was empty before. */
static int job_run(eng_server *s, job *j)
{
    int was_empty;

    j->next = NULL;
    j->resp = NULL;
    j->resp_len = 0;
    j->status = 500;
    if (s->cb.handle != NULL)
        j->status = s->cb.handle(s->cb.ctx, &j->req, &j->resp, &j->resp_len);
    if (j->body != NULL) {
        explicit_bzero(j->body, j->req.body_len);
        free(j->body);
        j->body = NULL;
    }
    pthread_mutex_lock(&s->dmu);
    was_empty = s->dhead == NULL;
    if (s->dtail != NULL)
        s->dtail->next = j;
    else
        s->dhead = j;
    s->dtail = j;
    pthread_mutex_unlock(&s->dmu);
    return was_empty;
}

/* Worker thread: takes jobs, runs the handler, hands answers back. */
static void *worker_main(void *arg)
{
    eng_server *s = arg;
    job *j;

    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (s->qhead == NULL && !s->qstop) {
            s->qidle++;
            pthread_cond_wait(&s->qcv, &s->qmu);
            s->qidle--;
        }
        if (s->qstop) {
            pthread_mutex_unlock(&s->qmu);
            break;
        }
        j = s->qhead;
        s->qhead = j->next;
        if (s->qhead == NULL)
            s->qtail = NULL;
        pthread_mutex_unlock(&s->qmu);

        /* Wake the I/O thread only when the queue goes from empty to not
         * empty: a non-empty queue already has its wake-up pending. */
        if (job_run(s, j))
            event_active(s->ev_done, EV_READ, 0);
    }
    return NULL;
}

/* Queues a request for the workers; takes ownership of body. */
static void job_submit(conn *c, char *body, size_t len, const char *operation,
                       const char *key_id)
{
    eng_server *s = c->s;
    job *j = calloc(1, sizeof *j);

    if (j == NULL) {
        free(body);
        if (c->proto == ENG_PROTO_HTTP)
            http_error(c, 503, "out of memory", 0);
        else
            frame_error(c, "null", 503, "out of memory");
        return;
    }
    j->c = c;
    j->body = body;
    snprintf(j->peer, sizeof j->peer, "%s", c->peer);
    if (key_id != NULL && key_id[0] != '\0') {
        snprintf(j->key_id, sizeof j->key_id, "%s", key_id);
        j->req.key_id = j->key_id;
    }
    j->req.body = body;
    j->req.body_len = len;
    j->req.operation = operation;
    j->req.framed = c->proto == ENG_PROTO_FRAMES;
    j->req.peer = j->peer;
    conn_ref(c);
    c->jobs++;
    s->inflight++;
    if (c->proto == ENG_PROTO_HTTP)
        s->st.requests_http++;
    else
        s->st.requests_frames++;

    if (s->inline_req) {
        /* io_loops: handled here, answered from done_cb on this loop's
         * next turn (no thread hand-off, no wake-up) */
        if (job_run(s, j))
            event_active(s->ev_done, EV_READ, 0);
        return;
    }
    pthread_mutex_lock(&s->qmu);
    if (s->qtail != NULL)
        s->qtail->next = j;
    else
        s->qhead = j;
    s->qtail = j;
    if (s->qidle > 0) /* busy workers pick it up without a wake-up */
        pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
}

/* I/O thread: writes the answers the workers handed back. */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_server *s = arg;
    job *list, *j;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&s->dmu);
    list = s->dhead;
    s->dhead = s->dtail = NULL;
    pthread_mutex_unlock(&s->dmu);

    while ((j = list) != NULL) {
        conn *c = j->c;
        list = j->next;
        s->inflight--;
        c->jobs--;
        if (!c->dead) {
            if (c->proto == ENG_PROTO_HTTP) {
                int st = j->status;
                if (j->resp == NULL || st < 200 || st > 599) {
                    free(j->resp);
                    j->resp = NULL;
                    http_error(c, 500, "internal error", c->keep_alive);
                } else {
                    http_respond(c, st, "application/json", j->resp,
                                 j->resp_len, c->keep_alive, NULL);
                    j->resp = NULL;
                }
            } else if (j->resp != NULL && j->resp_len > 0) {
                frame_write(c, j->resp, j->resp_len);
                j->resp = NULL;
            } else {
                frame_error(c, "null", 500, "internal error");
            }
            conn_process(c);
        }
        conn_unref(c);
        job_free(j);
    }
    server_maybe_finish(s);
}

/* ---- HTTP ----------------------------------------------------------------- */

/* The callback's Prometheus text followed by the transport's own counters;
 * malloc'd, NULL on ENOMEM. */
static char *metrics_text(eng_server *s, size_t *len_out)
{
    char *app = NULL, *out = NULL;
    char *base = s->cb.metrics != NULL ? s->cb.metrics(s->cb.ctx) : NULL;
    eng_server *owner = s->owner != NULL ? s->owner : s;
    unsigned long long v[9] = {0};
    int n, inflight = owner->inflight;

    /* the owner's counters (it accepts and refuses connections) plus
     * those of every loop */
    for (int i = -1; i < owner->n_loops; i++) {
        const counters *st = i < 0 ? &owner->st : &owner->loops[i]->st;
        v[0] += st->accepted;
        v[1] += st->rejected_conns;
        v[2] += st->requests_http;
        v[3] += st->requests_frames;
        v[4] += st->busy_rejects;
        v[5] += st->proto_errors;
        v[6] += st->read_timeouts;
        v[7] += st->write_timeouts;
        v[8] += st->idle_timeouts;
        if (i >= 0)
            inflight += owner->loops[i]->inflight;
    }

    n = asprintf(&app,
        "# HELP signer_transport_connections Open client connections.\n"
        "# TYPE signer_transport_connections gauge\n"
        "signer_transport_connections %d\n"
        "# HELP signer_transport_inflight Requests queued or running.\n"
        "# TYPE signer_transport_inflight gauge\n"
        "signer_transport_inflight %d\n"
        "# HELP signer_transport_connections_accepted_total Accepted connections.\n"
        "# TYPE signer_transport_connections_accepted_total counter\n"
        "signer_transport_connections_accepted_total %llu\n"
        "# HELP signer_transport_connections_rejected_total Connections closed at once (max_connections).\n"
        "# TYPE signer_transport_connections_rejected_total counter\n"
        "signer_transport_connections_rejected_total %llu\n"
        "# HELP signer_transport_requests_total Requests handed to workers.\n"
        "# TYPE signer_transport_requests_total counter\n"
        "signer_transport_requests_total{proto=\"http\"} %llu\n"
        "signer_transport_requests_total{proto=\"frames\"} %llu\n"
        "# HELP signer_transport_busy_total Requests refused with 503 (max_inflight).\n"
        "# TYPE signer_transport_busy_total counter\n"
        "signer_transport_busy_total %llu\n"
        "# HELP signer_transport_protocol_errors_total Malformed or oversize requests.\n"
        "# TYPE signer_transport_protocol_errors_total counter\n"
        "signer_transport_protocol_errors_total %llu\n"
        "# HELP signer_transport_timeouts_total Connections closed by a timeout.\n"
        "# TYPE signer_transport_timeouts_total counter\n"
        "signer_transport_timeouts_total{kind=\"read\"} %llu\n"
        "signer_transport_timeouts_total{kind=\"write\"} %llu\n"
        "signer_transport_timeouts_total{kind=\"idle\"} %llu\n",
        (int)owner->n_conns, inflight, v[0], v[1], v[2], v[3], v[4], v[5],
        v[6], v[7], v[8]);
    if (n < 0)
        app = NULL;
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

/* Answers one complete HTTP request; takes ownership of body. */
static void http_handle(conn *c, const eng_http_head *h, char *body,
                        size_t len)
{
    eng_server *s = c->s;
    eng_http_route rt;
    char *txt;
    size_t tl = 0;
    int r, ka = h->keep_alive;

    r = eng_http_route_resolve(&rt, h->method, h->path);
    if (r != 0 || rt.kind != ENG_ROUTE_DISPATCH)
        free(body);
    if (r == 404) {
        http_error(c, 404, "no such route", ka);
        return;
    }
    if (r == 405) {
        size_t bl = 0;
        char *eb = eng_http_error_body(405, "method not allowed", &bl);
        char extra[64];
        snprintf(extra, sizeof extra, "Allow: %s\r\n", rt.allow);
        http_respond(c, 405, "application/json", eb, bl, ka, extra);
        return;
    }
    switch (rt.kind) {
    case ENG_ROUTE_HEALTHZ:
        txt = strdup("{\"status\":\"ok\"}");
        http_respond(c, 200, "application/json", txt, txt ? strlen(txt) : 0,
                     ka, NULL);
        return;
    case ENG_ROUTE_READYZ:
        if (s->cb.ready == NULL || s->cb.ready(s->cb.ctx)) {
            txt = strdup("{\"status\":\"ready\"}");
            http_respond(c, 200, "application/json", txt,
                         txt ? strlen(txt) : 0, ka, NULL);
        } else {
            http_error(c, 503, "not ready", ka);
        }
        return;
    case ENG_ROUTE_METRICS:
        txt = metrics_text(s, &tl);
        if (txt == NULL)
            http_error(c, 503, "metrics unavailable", ka);
        else
            http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                         txt, tl, ka, NULL);
        return;
    default:
        break;
    }
    if (s->inflight >= s->limits.max_inflight) {
        free(body);
        s->st.busy_rejects++;
        http_error(c, 503, "server busy: too many requests in flight", ka);
        return;
    }
    c->keep_alive = ka;
    job_submit(c, body, len, rt.operation, rt.key_id);
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

/* Parses and answers buffered HTTP requests, one at a time. */
static void http_process(conn *c)
{
    eng_server *s = c->s;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    eng_http_head h;

    while (!c->dead && !c->closing && c->jobs == 0 &&
           evbuffer_get_length(out) < OUT_HIGH) {
        size_t len = evbuffer_get_length(in), look, hl, need;
        const char *p;
        char *body;
        long r;

        if (len == 0)
            break;
        look = len < s->limits.max_header ? len : s->limits.max_header;
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        if (p == NULL) {
            conn_close(c, "out of memory");
            return;
        }
        r = eng_http_parse_head(&h, p, look, s->limits.max_header);
        if (r == 0)
            break;
        if (r < 0) {
            http_error(c, (int)-r, head_error_msg((int)-r), 0);
            break;
        }
        hl = (size_t)r;
        if (h.chunked) {
            http_error(c, 411, "chunked Transfer-Encoding is not supported: "
                               "send Content-Length", 0);
            break;
        }
        if (!h.has_content_length) {
            if (strcmp(h.method, "POST") == 0 || strcmp(h.method, "PUT") == 0) {
                http_error(c, 411, "Content-Length required", 0);
                break;
            }
            h.content_length = 0;
        }
        if (h.content_length > s->limits.max_body) {
            http_error(c, 413, "request body too large", 0);
            break;
        }
        need = hl + h.content_length;
        if (len < need) {
            if (h.expect_continue && !c->continue_sent) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                evbuffer_add(out, cont, sizeof cont - 1);
                c->continue_sent = 1;
            }
            break;
        }
        evbuffer_drain(in, hl);
        body = malloc(h.content_length + 1);
        if (body == NULL) {
            conn_close(c, "out of memory");
            return;
        }
        evbuffer_remove(in, body, h.content_length);
        body[h.content_length] = '\0';
        c->continue_sent = 0;
        c->fresh = 0;
        c->req_start = 0;
        http_handle(c, &h, body, h.content_length);
    }
}

/* ---- frames --------------------------------------------------------------- */

/* Parses buffered frames and queues them, up to max_pipeline in flight. */
static void frames_process(conn *c)
{
    eng_server *s = c->s;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (!c->dead && !c->closing && c->jobs < s->limits.max_pipeline &&
           evbuffer_get_length(out) < OUT_HIGH) {
        size_t len = evbuffer_get_length(in), plen = 0;
        unsigned char hdr[4];
        char *body;
        long r;

        if (len < 4)
            break;
        evbuffer_copyout(in, hdr, 4);
        r = eng_frame_parse(hdr, 4, s->limits.max_body, &plen);
        if (r < 0) {
            frame_error(c, "null", 413, "frame too large");
            c->closing = 1;
            break;
        }
        if (plen == 0) {
            evbuffer_drain(in, 4);
            c->req_start = 0;
            frame_error(c, "null", 400, "empty frame");
            continue;
        }
        if (len - 4 < plen)
            break;
        evbuffer_drain(in, 4);
        body = malloc(plen + 1);
        if (body == NULL) {
            conn_close(c, "out of memory");
            return;
        }
        evbuffer_remove(in, body, plen);
        body[plen] = '\0';
        c->req_start = 0;
        if (s->inflight >= s->limits.max_inflight) {
            char id[128];
            eng_frame_request_id(body, plen, id, sizeof id);
            free(body);
            s->st.busy_rejects++;
            frame_error(c, id, 503, "server busy: too many requests in flight");
            continue;
        }
        job_submit(c, body, plen, NULL, NULL);
    }
}

/* Takes what requests the connection's state allows, then conn_after. */
static void conn_process(conn *c)
{
    if (c->dead)
        return;
    if (!c->lingering && !c->closing && !c->s->draining) {
        if (c->proto == ENG_PROTO_HTTP)
            http_process(c);
        else
            frames_process(c);
    }
    conn_after(c);
}

/* ---- bufferevent callbacks ------------------------------------------------ */

/* Input arrived: parse requests, or discard while lingering. */
static void read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    conn_ref(c);
    if (c->lingering) {
        c->lingered += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->lingered > LINGER_MAX_BYTES)
            conn_close(c, "linger limit");
    } else {
        conn_process(c);
    }
    conn_unref(c);
}

/* Output drained: next pipelined request, or finish a closing one. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;

    (void)bev;
    conn_ref(c);
    c->write_start = 0;
    conn_process(c);
    conn_unref(c);
}

/* EOF answers what is buffered then closes; errors close at once. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;

    (void)bev;
    conn_ref(c);
    if (c->lingering || (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) {
        conn_close(c, (what & BEV_EVENT_ERROR) ? "socket error" : "closed");
    } else if (what & BEV_EVENT_EOF) {
        c->read_eof = 1;
        conn_process(c);
    }
    conn_unref(c);
}

/* ---- listeners ------------------------------------------------------------ */

static void conn_new(eng_server *s, evutil_socket_t fd, int proto,
                     const struct sockaddr *addr, int alen, const char *where);

/* io_loops: hands an accepted socket to the next loop (round robin); it is
 * counted against max_connections from now on. */
static void handoff_conn(eng_server *s, evutil_socket_t fd, const lsn *ls,
                         const struct sockaddr *addr, int alen)
{
    eng_server *lp = s->loops[s->next_loop++ % (unsigned)s->n_loops];
    handoff *h = calloc(1, sizeof *h);

    if (h == NULL) {
        tlog(TLOG_ERROR, "out of memory accepting a connection on %s",
             ls->addr);
        close(fd);
        return;
    }
    h->fd = fd;
    h->proto = ls->proto;
    if (addr != NULL && alen > 0 && (size_t)alen <= sizeof h->addr) {
        memcpy(&h->addr, addr, (size_t)alen);
        h->alen = (socklen_t)alen;
    }
    snprintf(h->where, sizeof h->where, "%s", ls->addr);
    s->n_conns++; /* the loop counts it as accepted */
    pthread_mutex_lock(&lp->amu);
    if (lp->atail != NULL)
        lp->atail->next = h;
    else
        lp->ahead = h;
    lp->atail = h;
    pthread_mutex_unlock(&lp->amu);
    event_active(lp->ev_adopt, EV_READ, 0);
}

/* A loop's thread: adopts the sockets handed to it and applies new limits. */
static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_server *s = arg;
    handoff *list, *h;
    eng_limits lim;
    int have_limits;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&s->amu);
    list = s->ahead;
    s->ahead = s->atail = NULL;
    have_limits = s->limits_pending;
    lim = s->new_limits;
    s->limits_pending = 0;
    pthread_mutex_unlock(&s->amu);
    if (have_limits)
        eng_server_set_limits(s, &lim);
    while ((h = list) != NULL) {
        list = h->next;
        if (s->draining) {
            close(h->fd);
            s->owner->n_conns--;
        } else {
            conn_new(s, h->fd, h->proto,
                     h->alen > 0 ? (const struct sockaddr *)&h->addr : NULL,
                     (int)h->alen, h->where);
        }
        free(h);
    }
    server_maybe_finish(s);
}

/* Accepts a connection, or closes it at once over max_connections. */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *addr, int alen, void *arg)
{
    lsn *ls = arg;
    eng_server *s = ls->s;
    int one = 1;

    (void)l;
    if (s->draining) {
        close(fd);
        return;
    }
    if (s->n_conns >= s->limits.max_connections) {
        uint64_t now = now_ms();
        s->st.rejected_conns++;
        close(fd);
        if (now - s->last_reject_log >= 1000) {
            s->last_reject_log = now;
            tlog(TLOG_WARN, "max_connections (%d) reached: refusing "
                 "connections on %s", s->limits.max_connections, ls->addr);
        }
        return;
    }
    if (addr != NULL && (addr->sa_family == AF_INET ||
                         addr->sa_family == AF_INET6))
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->n_loops > 0) {
        handoff_conn(s, fd, ls, addr, alen);
        return;
    }
    conn_new(s, fd, ls->proto, addr, alen, ls->addr);
}

/* Serves an accepted socket on s's loop (s's thread). */
static void conn_new(eng_server *s, evutil_socket_t fd, int proto,
                     const struct sockaddr *addr, int alen, const char *where)
{
    conn *c = calloc(1, sizeof *c);

    if (c == NULL)
        goto fail;
    c->s = s;
    c->proto = proto;
    c->refs = 1;
    eng_sockaddr_print(addr, (socklen_t)alen, c->peer, sizeof c->peer);
    c->timer = evtimer_new(s->base, conn_timer_cb, c);
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->timer == NULL || c->bev == NULL)
        goto fail;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, read_high(s, c->proto));
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    s->st.accepted++;
    c->fresh = c->proto == ENG_PROTO_HTTP;
    conn_after(c);
    return;
fail:
    tlog(TLOG_ERROR, "out of memory accepting a connection on %s", where);
    if (s->owner != NULL)
        s->owner->n_conns--;
    if (c != NULL && c->bev != NULL)
        bufferevent_free(c->bev); /* closes fd */
    else
        close(fd);
    if (c != NULL && c->timer != NULL)
        event_free(c->timer);
    free(c);
}

/* Accept error (EMFILE, ENFILE, ENOBUFS...): pause the listener briefly
 * instead of spinning on a readable socket we cannot accept from. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    lsn *ls = arg;
    struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
    int e = EVUTIL_SOCKET_ERROR();

    tlog(TLOG_WARN, "accept on %s: %s", ls->addr, strerror(e));
    evconnlistener_disable(l);
    evtimer_add(ls->retry, &tv);
}

/* Re-enables a listener paused by accept_error_cb. */
static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    lsn *ls = arg;

    (void)fd;
    (void)what;
    if (ls->l != NULL && !ls->s->draining)
        evconnlistener_enable(ls->l);
}

/* Frees every listener (stops accepting) and removes unix socket files. */
static void listeners_free(eng_server *s)
{
    for (size_t i = 0; i < s->n_lsns; i++) {
        lsn *ls = &s->lsns[i];
        if (ls->l != NULL) {
            evconnlistener_free(ls->l);
            ls->l = NULL;
            if (ls->unix_path != NULL)
                (void)unlink(ls->unix_path);
        }
        if (ls->retry != NULL) {
            event_free(ls->retry);
            ls->retry = NULL;
        }
        free(ls->unix_path);
        ls->unix_path = NULL;
    }
}

/* ---- lifecycle ------------------------------------------------------------ */

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_ok;

/* Once per process: libevent locking, so event_active works across
 * threads. */
static void evthread_init(void)
{
    evthread_ok = evthread_use_pthreads() == 0;
}

/* Creates a server (copies cfg); NULL on ENOMEM or if libevent has no
 * thread support. */
eng_server *eng_server_new(const eng_server_config *cfg,
                           const eng_server_callbacks *cb)
{
    eng_server *s = NULL;

    pthread_once(&evthread_once, evthread_init);
    if (!evthread_ok || cfg == NULL || cb == NULL)
        return NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_mutex_init(&s->dmu, NULL);
    pthread_mutex_init(&s->amu, NULL);
    s->cb = *cb;
    s->workers = cfg->workers;
    s->n_loops = cfg->io_loops < 0 ? 0 : cfg->io_loops > 256 ? 256
                                                              : cfg->io_loops;
    limits_normalise(&s->limits, &cfg->limits);
    if (cfg->n_listen > 0) {
        s->specs = calloc(cfg->n_listen, sizeof *s->specs);
        if (s->specs == NULL)
            goto fail;
        s->n_specs = cfg->n_listen;
        for (size_t i = 0; i < cfg->n_listen; i++) {
            s->specs[i].proto = cfg->listen[i].proto;
            s->specs[i].address = strdup(cfg->listen[i].address
                                         ? cfg->listen[i].address : "");
            if (s->specs[i].address == NULL)
                goto fail;
        }
    }
    return s;
fail:
    eng_server_free(s);
    return NULL;
}

/* Creates the event base and the events every server has. */
static int server_base(eng_server *s)
{
    s->base = event_base_new();
    if (s->base == NULL)
        return -1;
    s->ev_stop = event_new(s->base, -1, 0, stop_cb, s);
    s->ev_done = event_new(s->base, -1, 0, done_cb, s);
    s->ev_grace = evtimer_new(s->base, grace_cb, s);
    s->ev_adopt = event_new(s->base, -1, 0, adopt_cb, s);
    return s->ev_stop && s->ev_done && s->ev_grace && s->ev_adopt ? 0 : -1;
}

/* io_loops: the owner's loop servers (threads start in eng_server_run). */
static int loops_create(eng_server *s)
{
    s->loops = calloc((size_t)s->n_loops, sizeof *s->loops);
    if (s->loops == NULL)
        return -1;
    for (int i = 0; i < s->n_loops; i++) {
        eng_server *lp = calloc(1, sizeof *lp);
        if (lp == NULL)
            return -1;
        s->loops[i] = lp;
        pthread_mutex_init(&lp->qmu, NULL);
        pthread_cond_init(&lp->qcv, NULL);
        pthread_mutex_init(&lp->dmu, NULL);
        pthread_mutex_init(&lp->amu, NULL);
        lp->cb = s->cb;
        lp->limits = s->limits;
        lp->owner = s;
        lp->inline_req = 1;
        if (server_base(lp) != 0)
            return -1;
        lp->started = 1;
    }
    return 0;
}

/* A loop's thread: serves the connections handed to it until stopped. */
static void *loop_main(void *arg)
{
    eng_server *s = arg;
    handoff *h;

    if (atomic_load(&s->stop_requested))
        event_active(s->ev_stop, EV_READ, 0);
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    if (!s->draining)
        server_begin_shutdown(s);
    pthread_mutex_lock(&s->dmu);
    jobs_drop(s, s->dhead);
    s->dhead = s->dtail = NULL;
    pthread_mutex_unlock(&s->dmu);
    while (s->conns != NULL)
        conn_close(s->conns, "shutdown");
    pthread_mutex_lock(&s->amu);
    while ((h = s->ahead) != NULL) {
        s->ahead = h->next;
        close(h->fd);
        s->owner->n_conns--;
        free(h);
    }
    s->atail = NULL;
    pthread_mutex_unlock(&s->amu);
    return NULL;
}

/* Creates the event base and binds every listener; 0 or -1 with err. */
int eng_server_start(eng_server *s, char *err, size_t err_len)
{
    if (err_len > 0)
        err[0] = '\0';
    if (s->started) {
        snprintf(err, err_len, "server already started");
        return -1;
    }
    s->lsns = calloc(s->n_specs ? s->n_specs : 1, sizeof *s->lsns);
    if (server_base(s) != 0 || s->lsns == NULL ||
        (s->n_loops > 0 && loops_create(s) != 0)) {
        snprintf(err, err_len, "cannot create the event loops: out of "
                               "memory");
        return -1;
    }
    s->started = 1;
    for (size_t i = 0; i < s->n_specs; i++) {
        const eng_listen_spec *sp = &s->specs[i];
        lsn *ls = &s->lsns[i];
        int fd;

        s->n_lsns = i + 1;
        ls->s = s;
        ls->proto = sp->proto;
        ls->port = -1;
        if (sp->proto != ENG_PROTO_HTTP && sp->proto != ENG_PROTO_FRAMES) {
            snprintf(err, err_len, "listen %s: unknown protocol %d",
                     sp->address, sp->proto);
            return -1;
        }
        fd = eng_listen_open(sp->address, err, err_len);
        if (fd < 0)
            return -1;
        ls->port = eng_listen_describe(fd, ls->addr, sizeof ls->addr);
        if (strncmp(sp->address, "unix:", 5) == 0)
            ls->unix_path = strdup(sp->address + 5);
        ls->retry = evtimer_new(s->base, accept_retry_cb, ls);
        ls->l = evconnlistener_new(s->base, accept_cb, ls,
                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                   0, fd);
        if (ls->l == NULL || ls->retry == NULL) {
            if (ls->l == NULL)
                close(fd);
            snprintf(err, err_len, "listen %s: out of memory", sp->address);
            return -1;
        }
        evconnlistener_set_error_cb(ls->l, accept_error_cb);
        tlog(TLOG_INFO, "listening on %s %s", proto_name(ls->proto), ls->addr);
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

/* Stops accepting, closes idle connections, lets in-flight requests finish
 * (bounded by shutdown_timeout_ms). */
static void server_begin_shutdown(eng_server *s)
{
    struct timeval tv;
    conn *c, *next;

    if (s->draining)
        return;
    s->draining = 1;
    if (s->owner == NULL)
        tlog(TLOG_INFO, "shutting down: %d connections, %d requests in "
                        "flight", (int)s->n_conns, (int)s->inflight);
    listeners_free(s);
    for (int i = 0; i < s->n_loops; i++)
        eng_server_stop(s->loops[i]);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        /* Only c itself can be closed here, so next stays valid. */
        conn_ref(c);
        c->closing = 1;
        if (c->lingering)
            conn_close(c, "shutdown");
        else
            conn_after(c); /* closes it now unless work is pending */
        conn_unref(c);
    }
    tv.tv_sec = s->limits.shutdown_timeout_ms / 1000;
    tv.tv_usec = (s->limits.shutdown_timeout_ms % 1000) * 1000;
    evtimer_add(s->ev_grace, &tv);
    server_maybe_finish(s);
}

/* Shutdown took longer than shutdown_timeout_ms: leave the loop. */
static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_server *s = arg;

    (void)fd;
    (void)what;
    tlog(TLOG_WARN, "shutdown timeout: giving up on %d connections and %d "
         "requests", (int)s->n_conns, (int)s->inflight);
    event_base_loopbreak(s->base);
}

/* eng_server_stop() from any thread lands here, on the I/O thread. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_begin_shutdown(arg);
}

/* SIGHUP reloads; SIGTERM/SIGINT drain, a second one stops at once. */
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
    if (s->draining) {
        tlog(TLOG_WARN, "second signal %d: stopping now", (int)sig);
        for (int i = 0; i < s->n_loops; i++)
            event_base_loopbreak(s->loops[i]->base); /* thread-safe */
        event_base_loopbreak(s->base);
        return;
    }
    tlog(TLOG_INFO, "signal %d received", (int)sig);
    server_begin_shutdown(s);
}

/* Starts the workers with every signal blocked (the loop gets them). */
static int workers_start(eng_server *s)
{
    sigset_t all, old;
    long n = s->workers;

    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    if (n > 1024)
        n = 1024;
    s->threads = calloc((size_t)n, sizeof *s->threads);
    if (s->threads == NULL)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (long i = 0; i < n; i++) {
        if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0)
            break;
        s->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s->n_threads > 0 ? 0 : -1;
}

/* io_loops: starts each loop's thread with every signal blocked. */
static int loops_start(eng_server *s)
{
    sigset_t all, old;

    s->loop_threads = calloc((size_t)s->n_loops, sizeof *s->loop_threads);
    if (s->loop_threads == NULL)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < s->n_loops; i++) {
        if (pthread_create(&s->loop_threads[i], NULL, loop_main,
                           s->loops[i]) != 0)
            break;
        s->n_loop_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s->n_loop_threads == s->n_loops ? 0 : -1;
}

/* Stops the loops (each drains within shutdown_timeout_ms) and joins. */
static void loops_join(eng_server *s)
{
    for (int i = 0; i < s->n_loops; i++)
        eng_server_stop(s->loops[i]);
    for (int i = 0; i < s->n_loop_threads; i++)
        pthread_join(s->loop_threads[i], NULL);
    s->n_loop_threads = 0;
}

/* Stops and joins the workers; queued jobs are dropped. */
static void workers_stop(eng_server *s)
{
    pthread_mutex_lock(&s->qmu);
    s->qstop = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    s->n_threads = 0;
}

/* Frees a list of jobs that will never be answered. */
static void jobs_drop(eng_server *s, job *list)
{
    job *j;

    while ((j = list) != NULL) {
        list = j->next;
        s->inflight--;
        j->c->jobs--;
        conn_unref(j->c);
        if (j->body != NULL)
            explicit_bzero(j->body, j->req.body_len);
        job_free(j);
    }
}

/* Runs the loop until stopped; 0 after a clean shutdown, -1 if the server
 * was not started, already ran, or the workers could not start. */
int eng_server_run(eng_server *s)
{
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    int rc = -1;

    if (s == NULL || !s->started || s->ran)
        return -1;
    s->ran = 1;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 3; i++) {
        s->ev_sig[i] = evsignal_new(s->base, sigs[i], signal_cb, s);
        if (s->ev_sig[i] == NULL || evsignal_add(s->ev_sig[i], NULL) != 0)
            goto done;
    }
    if (s->n_loops > 0) {
        if (loops_start(s) != 0) {
            tlog(TLOG_ERROR, "cannot start event-loop threads");
            goto done;
        }
        tlog(TLOG_INFO, "serving with %d event loops (io_loops), requests "
                        "handled on their loop's thread", s->n_loop_threads);
    } else if (workers_start(s) != 0) {
        tlog(TLOG_ERROR, "cannot start worker threads");
        goto done;
    } else {
        tlog(TLOG_INFO, "serving with %d worker threads", s->n_threads);
    }
    /* A stop asked for before the loop runs is handled inside it (a
     * loopbreak issued before event_base_loop would be forgotten). */
    if (atomic_load(&s->stop_requested))
        event_active(s->ev_stop, EV_READ, 0);
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    rc = 0;
done:
    if (!s->draining)
        server_begin_shutdown(s);
    loops_join(s);
    workers_stop(s);
    pthread_mutex_lock(&s->qmu);
    jobs_drop(s, s->qhead);
    s->qhead = s->qtail = NULL;
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_lock(&s->dmu);
    jobs_drop(s, s->dhead);
    s->dhead = s->dtail = NULL;
    pthread_mutex_unlock(&s->dmu);
    while (s->conns != NULL)
        conn_close(s->conns, "shutdown");
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

/* Replaces the limits; I/O thread only (an owner passes them on to its
 * loops, which apply them on their own threads). */
void eng_server_set_limits(eng_server *s, const eng_limits *limits)
{
    limits_normalise(&s->limits, limits);
    for (int i = 0; i < s->n_loops; i++) {
        eng_server *lp = s->loops[i];
        pthread_mutex_lock(&lp->amu);
        lp->new_limits = *limits;
        lp->limits_pending = 1;
        pthread_mutex_unlock(&lp->amu);
        event_active(lp->ev_adopt, EV_READ, 0);
    }
    for (conn *c = s->conns; c != NULL; c = c->next)
        if (!c->lingering)
            bufferevent_setwatermark(c->bev, EV_READ, 0,
                                     read_high(s, c->proto));
}

/* Frees the server (after eng_server_run returned, or if it never ran). */
void eng_server_free(eng_server *s)
{
    if (s == NULL)
        return;
    if (s->base != NULL) {
        listeners_free(s);
        while (s->conns != NULL)
            conn_close(s->conns, NULL);
        if (s->ev_stop != NULL)
            event_free(s->ev_stop);
        if (s->ev_done != NULL)
            event_free(s->ev_done);
        if (s->ev_grace != NULL)
            event_free(s->ev_grace);
        if (s->ev_adopt != NULL)
            event_free(s->ev_adopt);
        event_base_free(s->base);
    }
    for (int i = 0; s->loops != NULL && i < s->n_loops; i++)
        eng_server_free(s->loops[i]);
    free(s->loops);
    free(s->loop_threads);
    free(s->lsns);
    free(s->threads);
    for (size_t i = 0; i < s->n_specs; i++)
        free((char *)s->specs[i].address);
    free(s->specs);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->dmu);
    pthread_mutex_destroy(&s->amu);
    free(s);
}
