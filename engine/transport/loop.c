/*
 * The event-loop type: one thread, one libevent base, the connections
 * handed to it, and two queues other threads fill under its mutex:
 *
 *   completions  eng_complete() from any thread queues the answer and
 *                wakes the loop (an event made active) only when the queue
 *                was empty; the loop writes answers on its own thread;
 *   hand-offs    sockets accepted by the server thread, and new limits.
 *
 * Requests are handed to the handler from here (eng_conn_submit): the
 * asynchronous callbacks.submit, or the synchronous callbacks.handle
 * through an adapter that completes at once.  Either way the answer goes
 * through the completion queue, so a connection's state only ever changes
 * on its loop, and the answers of every request read in one loop iteration
 * are written together at its end (until then they count as in flight,
 * against max_inflight).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util.h"
#include "transport_internal.h"
#include "tls.h"

static void done_cb(evutil_socket_t fd, short what, void *arg);
static void adopt_cb(evutil_socket_t fd, short what, void *arg);
static void stop_cb(evutil_socket_t fd, short what, void *arg);
static void grace_cb(evutil_socket_t fd, short what, void *arg);

/* See transport.h: the one place the engine's event bases are made. */
struct event_base *eng_event_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b;
    if (cfg == NULL)
        return event_base_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return b;
}

/* Creates loop number index of s; NULL on ENOMEM. */
eng_loop *eng_loop_new(eng_server *s, int index)
{
    eng_loop *l = calloc(1, sizeof *l);
    int n_lsns = eng_server_n_listeners(s);

    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->srv = s;
    l->index = index;
    l->limits = *eng_server_limits(s);
    l->idle = calloc((size_t)(n_lsns > 0 ? n_lsns : 1), sizeof *l->idle);
    l->base = eng_event_base_new();
    if (l->idle == NULL || l->base == NULL)
        goto fail;
    l->ev_done = event_new(l->base, -1, 0, done_cb, l);
    l->ev_adopt = event_new(l->base, -1, 0, adopt_cb, l);
    l->ev_stop = event_new(l->base, -1, 0, stop_cb, l);
    l->ev_grace = evtimer_new(l->base, grace_cb, l);
    if (l->ev_done && l->ev_adopt && l->ev_stop && l->ev_grace)
        return l;
fail:
    eng_loop_free(l);
    return NULL;
}

/* Frees a completion, wiping what it still holds. */
static void completion_free(eng_completion *d)
{
    if (d->body != NULL) {
        eng_wipe(d->body, d->body_len);
        free(d->body);
    }
    if (d->auth != NULL) {
        eng_wipe(d->auth, strlen(d->auth));
        free(d->auth);
    }
    free(d->resp);
    free(d);
}

/* Drops completions that will never be delivered (their loop stopped). */
static void drop_list(eng_loop *l, eng_completion *list)
{
    eng_completion *d;

    while ((d = list) != NULL) {
        list = d->next;
        l->jobs--;
        atomic_fetch_sub(eng_server_inflight(l->srv), 1);
        d->c->jobs--;
        eng_conn_unref(d->c);
        completion_free(d);
    }
}

/* Frees the loop (after eng_loop_join, or if it never ran). */
void eng_loop_free(eng_loop *l)
{
    eng_handoff *h;

    if (l == NULL)
        return;
    while (l->conns != NULL)
        eng_conn_close(l->conns, NULL);
    pthread_mutex_lock(&l->mu);
    drop_list(l, l->dhead);
    l->dhead = l->dtail = NULL;
    while ((h = l->ahead) != NULL) {
        l->ahead = h->next;
        close(h->fd);
        atomic_fetch_sub(&h->lsn->n_conns, 1);
        free(h);
    }
    pthread_mutex_unlock(&l->mu);
    if (l->ev_done != NULL)
        event_free(l->ev_done);
    if (l->ev_adopt != NULL)
        event_free(l->ev_adopt);
    if (l->ev_stop != NULL)
        event_free(l->ev_stop);
    if (l->ev_grace != NULL)
        event_free(l->ev_grace);
    if (l->base != NULL)
        event_base_free(l->base);
    free(l->idle);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ---- completions ----------------------------------------------------------- */

/* Completes a request from any thread: wipes its body, queues the answer
 * for the connection's loop, and wakes the loop if its queue was empty. */
void eng_complete(eng_completion *d, int status, char *body, size_t len)
{
    eng_loop *l;
    int was_empty;

    if (d == NULL || atomic_exchange(&d->completed, 1) != 0)
        return; /* a second completion of the same request is ignored */
    l = d->loop;
    if (d->body != NULL) {
        eng_wipe(d->body, d->body_len);
        free(d->body);
        d->body = NULL;
    }
    if (d->auth != NULL) {
        eng_wipe(d->auth, strlen(d->auth));
        free(d->auth);
        d->auth = NULL;
    }
    d->status = status;
    d->resp = body;
    d->resp_len = body != NULL ? len : 0;
    d->next = NULL;
    pthread_mutex_lock(&l->mu);
    was_empty = l->dhead == NULL;
    if (l->dtail != NULL)
        l->dtail->next = d;
    else
        l->dhead = d;
    l->dtail = d;
    pthread_mutex_unlock(&l->mu);
    if (was_empty)
        event_active(l->ev_done, EV_READ, 0);
}

/* The loop's thread: delivers queued answers to their connections. */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_loop *l = arg;
    eng_completion *list, *d;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&l->mu);
    list = l->dhead;
    l->dhead = l->dtail = NULL;
    pthread_mutex_unlock(&l->mu);
    while ((d = list) != NULL) {
        eng_conn *c = d->c;
        list = d->next;
        l->jobs--;
        atomic_fetch_sub(eng_server_inflight(l->srv), 1);
        c->jobs--;
        if (!c->dead) {
            if (c->ops->on_complete != NULL)
                c->ops->on_complete(c, d);
            /* the next answer is for c too (pipelined frames): queue it
             * first, so the answers leave in one write */
            if (list == NULL || list->c != c)
                eng_conn_process(c);
        }
        eng_conn_unref(c);
        completion_free(d);
    }
    eng_loop_maybe_finish(l);
}

/* An https client's certificate identity ("tls:sha256:HEX"), read once per
 * connection, for throttling and allowlists. */
static void completion_peer_id(eng_completion *d, eng_conn *c)
{
    if (c->lsn == NULL || c->lsn->tls_ctx == NULL)
        return;
    if (c->peer_id[0] == '\0')
        eng_tls_peer_id(c->bev, c->peer_id, sizeof c->peer_id);
    snprintf(d->peer_id, sizeof d->peer_id, "%s", c->peer_id);
    d->req.peer_id = d->peer_id[0] != '\0' ? d->peer_id : NULL;
}

/* snprintf(out, cap, "%s", s) without printf. */
static void copy_str(char *out, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Builds the completion of a request of c (takes body). */
static eng_completion *completion_new(eng_conn *c, char *body, size_t len,
                                      const eng_route_match *route,
                                      const char *rid)
{
    eng_completion *d = calloc(1, sizeof *d);

    if (d == NULL)
        return NULL;
    d->c = c;
    d->loop = c->loop;
    d->body = body;
    d->body_len = len;
    copy_str(d->peer, sizeof d->peer, c->peer);
    copy_str(d->rid, sizeof d->rid, rid);
    d->req.body = body;
    d->req.body_len = len;
    d->req.framed = c->ops == &eng_frames_ops;
    d->req.peer = d->peer;
    d->req.request_id = d->rid;
    if (route != NULL && route->authorization != NULL) {
        if ((d->auth = strdup(route->authorization)) == NULL) {
            free(d);
            return NULL;
        }
        d->req.authorization = d->auth;
    }
    completion_peer_id(d, c);
    if (route != NULL) {
        d->req.operation = route->operation;
        if (route->key_id[0] != '\0') {
            snprintf(d->key_id, sizeof d->key_id, "%s", route->key_id);
            d->req.key_id = d->key_id;
        }
    }
    return d;
}

/* Hands a request of c to the handler (see transport_internal.h). */
int eng_conn_submit(eng_conn *c, char *body, size_t len,
                    const eng_route_match *route, int head, int keep_alive,
                    const char *rid)
{
    eng_loop *l = c->loop;
    const eng_server_callbacks *cb = eng_server_cb(l->srv);
    atomic_int *inflight = eng_server_inflight(l->srv);
    eng_completion *d;

    if (atomic_fetch_add(inflight, 1) >= l->limits.max_inflight) {
        atomic_fetch_sub(inflight, 1);
        l->st.busy_rejects++;
        return -1;
    }
    if ((d = completion_new(c, body, len, route, rid)) == NULL) {
        atomic_fetch_sub(inflight, 1);
        return -2;
    }
    d->head = head;
    d->keep_alive = keep_alive;
    eng_conn_ref(c);
    eng_conn_busy(c);
    c->jobs++;
    l->jobs++;
    if (d->req.framed)
        l->st.requests_frames++;
    else
        l->st.requests_http++;
    if (cb->submit != NULL) {
        cb->submit(cb->ctx, &d->req, d);
    } else {
        char *resp = NULL;
        size_t rl = 0;
        int st = cb->handle != NULL
                     ? cb->handle(cb->ctx, &d->req, &resp, &rl)
                     : 500;
        eng_complete(d, st, resp, rl);
    }
    return 0;
}

/* ---- hand-offs and limits ---------------------------------------------------- */

/* Queues an accepted socket for l; 0, or -1 on ENOMEM. */
int eng_loop_handoff(eng_loop *l, int fd, eng_lsn *lsn,
                     const struct sockaddr *addr, int alen, int evict)
{
    eng_handoff *h = calloc(1, sizeof *h);

    if (h == NULL)
        return -1;
    h->fd = fd;
    h->lsn = lsn;
    h->evict = evict;
    if (addr != NULL && alen > 0 && (size_t)alen <= sizeof h->addr) {
        memcpy(&h->addr, addr, (size_t)alen);
        h->alen = (socklen_t)alen;
    }
    pthread_mutex_lock(&l->mu);
    if (l->atail != NULL)
        l->atail->next = h;
    else
        l->ahead = h;
    l->atail = h;
    pthread_mutex_unlock(&l->mu);
    event_active(l->ev_adopt, EV_READ, 0);
    return 0;
}

/* Passes new limits to l; applied on its thread. */
void eng_loop_set_limits(eng_loop *l, const eng_limits *limits)
{
    pthread_mutex_lock(&l->mu);
    l->new_limits = *limits;
    l->limits_pending = 1;
    pthread_mutex_unlock(&l->mu);
    event_active(l->ev_adopt, EV_READ, 0);
}

/* Applies new limits to l and its connections' read watermarks. */
static void apply_limits(eng_loop *l, const eng_limits *limits)
{
    l->limits = *limits;
    for (eng_conn *c = l->conns; c != NULL; c = c->next)
        if (!c->lingering)
            eng_conn_set_read_high(c, c->ops->read_high(&l->limits));
}

/* The loop's thread: adopts handed-off sockets and applies new limits. */
static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_loop *l = arg;
    eng_handoff *list, *h;
    eng_limits lim;
    int have_limits;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&l->mu);
    list = l->ahead;
    l->ahead = l->atail = NULL;
    have_limits = l->limits_pending;
    lim = l->new_limits;
    l->limits_pending = 0;
    pthread_mutex_unlock(&l->mu);
    if (have_limits)
        apply_limits(l, &lim);
    while ((h = list) != NULL) {
        list = h->next;
        eng_conn_new(l, h->fd, h->lsn,
                     h->alen > 0 ? (const struct sockaddr *)&h->addr : NULL,
                     (int)h->alen, h->evict);
        free(h);
    }
    eng_loop_maybe_finish(l);
}

/* ---- running and stopping ------------------------------------------------------ */

/* Ends the loop once draining and nothing is left. */
void eng_loop_maybe_finish(eng_loop *l)
{
    if (l->draining && l->n_conns == 0 && l->jobs == 0)
        event_base_loopbreak(l->base);
}

/* Drains: closes idle connections, lets in-flight requests finish
 * (bounded by shutdown_timeout_ms). */
static void loop_begin_shutdown(eng_loop *l)
{
    struct timeval tv;
    eng_conn *c, *next;

    int unread = 0;

    if (l->draining)
        return;
    l->draining = 1;
    for (c = l->conns; c != NULL; c = c->next)
        if (!c->lingering &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
            unread++;
    if (unread > 0)
        tlog(TLOG_WARN, "shutdown: giving up on the unread requests of %d "
             "connections (loop %d)", unread, l->index);
    for (c = l->conns; c != NULL; c = next) {
        next = c->next;
        /* Only c itself can be closed here, so next stays valid. */
        eng_conn_ref(c);
        c->closing = 1;
        if (c->lingering)
            eng_conn_close(c, "shutdown");
        else
            eng_conn_after(c); /* closes it now unless work is pending */
        eng_conn_unref(c);
    }
    tv.tv_sec = l->limits.shutdown_timeout_ms / 1000;
    tv.tv_usec = (l->limits.shutdown_timeout_ms % 1000) * 1000;
    evtimer_add(l->ev_grace, &tv);
    eng_loop_maybe_finish(l);
}

/* Shutdown took longer than shutdown_timeout_ms: leave the loop. */
static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_loop *l = arg;

    (void)fd;
    (void)what;
    tlog(TLOG_WARN, "shutdown timeout: giving up on %d connections and %d "
         "requests (loop %d)", l->n_conns, l->jobs, l->index);
    event_base_loopbreak(l->base);
}

/* eng_loop_stop() from any thread lands here. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_begin_shutdown(arg);
}

/* Asks the loop to drain and stop (thread-safe). */
void eng_loop_stop(eng_loop *l)
{
    atomic_store(&l->stop_requested, 1);
    event_active(l->ev_stop, EV_READ, 0);
}

/* The loop the calling thread runs, and what must go before its base. */
static __thread eng_loop *current_loop;
typedef struct exit_hook {
    void (*fn)(void *arg);
    void *arg;
    struct exit_hook *next;
} exit_hook;
static __thread exit_hook *exit_hooks;

/* The event base of the loop running the caller (see transport.h). */
struct event_base *eng_loop_current_base(void)
{
    return current_loop != NULL ? current_loop->base : NULL;
}

/* Runs fn(arg) on this loop's thread once its event loop has ended. */
int eng_loop_at_exit(void (*fn)(void *arg), void *arg)
{
    exit_hook *h;
    if (current_loop == NULL || (h = malloc(sizeof *h)) == NULL)
        return -1;
    h->fn = fn;
    h->arg = arg;
    h->next = exit_hooks;
    exit_hooks = h;
    return 0;
}

/* Runs and frees the exit hooks, newest first. */
static void run_exit_hooks(void)
{
    exit_hook *h;
    while ((h = exit_hooks) != NULL) {
        exit_hooks = h->next;
        h->fn(h->arg);
        free(h);
    }
}

/* The loop's thread: serves its connections until stopped. */
static void *loop_main(void *arg)
{
    eng_loop *l = arg;

    current_loop = l;
    if (atomic_load(&l->stop_requested))
        event_active(l->ev_stop, EV_READ, 0);
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    if (!l->draining)
        loop_begin_shutdown(l);
    while (l->conns != NULL)
        eng_conn_close(l->conns, "shutdown");
    run_exit_hooks();
    current_loop = NULL;
    eng_server_loop_exited(l->srv);
    return NULL;
}

/* Starts the loop's thread with every signal blocked (the server thread
 * takes them).  0, or -1. */
int eng_loop_start(eng_loop *l)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&l->thread, NULL, loop_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    l->thread_started = rc == 0;
    return rc == 0 ? 0 : -1;
}

/* Joins the loop's thread, then drops answers that came too late. */
void eng_loop_join(eng_loop *l)
{
    if (!l->thread_started)
        return;
    pthread_join(l->thread, NULL);
    l->thread_started = 0;
    pthread_mutex_lock(&l->mu);
    drop_list(l, l->dhead);
    l->dhead = l->dtail = NULL;
    pthread_mutex_unlock(&l->mu);
}
