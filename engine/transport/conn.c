/*
 * A connection on its event loop: buffers, the one deadline of its state,
 * closing, eviction.  Everything here runs on the loop's thread.
 *
 * States (evaluated in eng_conn_after()):
 *   reading    - input enabled; a partial request must complete within
 *                read_timeout_ms (a fresh HTTP connection counts as a
 *                started request, so silent sockets are cut off too);
 *   busy       - requests in flight; the protocol says when it may read
 *                more (HTTP: one at a time; frames: up to max_pipeline);
 *   writing    - output pending must drain within write_timeout_ms;
 *   idle       - nothing pending: closed after idle_timeout_ms, or earlier
 *                when its listener is at max_connections and a new client
 *                comes (oldest idle first);
 *   closing    - no more requests; closed once answers are flushed,
 *                followed by a short lingering close (shutdown(SHUT_WR),
 *                discard input) so a client still sending a refused body
 *                reads our error instead of a reset.
 *
 * A completion holds a reference on its connection, so a connection closed
 * while its request is being handled stays allocated (marked dead) until
 * the completion is delivered and dropped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util.h"
#include "transport_internal.h"
#include "tls.h"

#define LINGER_MS 2000
#define LINGER_MAX_BYTES (8u * 1024u * 1024u)

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t eng_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Takes a reference (loop thread only). */
void eng_conn_ref(eng_conn *c) { c->refs++; }

/* Drops a reference; frees the connection with the last one. */
void eng_conn_unref(eng_conn *c)
{
    if (--c->refs > 0)
        return;
    if (c->timer != NULL)
        event_free(c->timer);
    free(c);
}

/* Puts c into (on = 1) or takes it out of its loop's idle list of its
 * listener, and publishes when the oldest idle one became idle. */
static void idle_count(eng_conn *c, int on)
{
    eng_idle *q;

    if (c->lsn == NULL || c->idle_counted == on)
        return;
    q = &c->loop->idle[c->lsn->index];
    c->idle_counted = on;
    if (on) {
        c->idle_next = NULL;
        c->idle_prev = q->tail;
        if (q->tail != NULL)
            q->tail->idle_next = c;
        else
            q->head = c;
        q->tail = c;
    } else {
        if (c->idle_prev != NULL)
            c->idle_prev->idle_next = c->idle_next;
        else
            q->head = c->idle_next;
        if (c->idle_next != NULL)
            c->idle_next->idle_prev = c->idle_prev;
        else
            q->tail = c->idle_prev;
        c->idle_prev = c->idle_next = NULL;
    }
    atomic_store(&q->oldest_ms, q->head != NULL ? q->head->idle_since : 0);
}

/* A request of c was taken: c leaves the idle state (and its listener's
 * idle list) at once, not only at the next eng_conn_after(). */
void eng_conn_busy(eng_conn *c)
{
    c->idle_since = 0;
    idle_count(c, 0);
}

/* Wipes and drops all buffered input (it may hold request bodies). */
void eng_conn_discard_input(eng_conn *c)
{
    struct evbuffer *in;
    struct evbuffer_iovec v[16];
    int n;

    if (c->bev == NULL)
        return;
    in = bufferevent_get_input(c->bev);
    while (evbuffer_get_length(in) > 0) {
        n = evbuffer_peek(in, -1, NULL, v, 16);
        if (n <= 0)
            break;
        size_t total = 0;
        for (int i = 0; i < n && i < 16; i++) {
            eng_wipe(v[i].iov_base, v[i].iov_len);
            total += v[i].iov_len;
        }
        evbuffer_drain(in, total);
    }
}

/* Unlinks c from its loop and gives back its budgets. */
static void conn_unlink(eng_conn *c)
{
    eng_loop *l = c->loop;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    l->n_conns--;
    idle_count(c, 0);
    if (c->lsn != NULL) {
        atomic_fetch_sub(&c->lsn->n_conns, 1);
        if (c->peer_ip_len > 0)
            eng_peer_release(l->srv, c->lsn, c->peer_ip, c->peer_ip_len);
    }
}

/* Closes the socket now; the struct lives on while completions hold it. */
void eng_conn_close(eng_conn *c, const char *why)
{
    eng_loop *l = c->loop;

    if (c->dead)
        return;
    c->dead = 1;
    if (why != NULL)
        tlog(TLOG_DEBUG, "%s connection from %s closed: %s", c->ops->name,
             c->peer, why);
    conn_unlink(c);
    if (c->ops->on_close != NULL)
        c->ops->on_close(c);
    eng_conn_discard_input(c);
    if (c->rd != NULL) {
        event_free(c->rd);
        c->rd = NULL;
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
    event_del(c->timer);
    eng_conn_unref(c);
    eng_loop_maybe_finish(l);
}

/* Turns reading on or off: the connection's own read event (direct) or
 * its bufferevent's. */
static void conn_read_enable(eng_conn *c, int on)
{
    if (c->rd != NULL) {
        if (on)
            event_add(c->rd, NULL);
        else
            event_del(c->rd);
    } else if (on) {
        bufferevent_enable(c->bev, EV_READ);
    } else {
        bufferevent_disable(c->bev, EV_READ);
    }
    c->reading = on;
}

/* Sets the input limit of c (0: none, while lingering). */
void eng_conn_set_read_high(eng_conn *c, size_t high)
{
    if (c->rd != NULL)
        c->read_high = high != 0 ? high : SIZE_MAX;
    else
        bufferevent_setwatermark(c->bev, EV_READ, 0, high);
}

/* All answers flushed on a closing connection: lingering close, or a
 * plain close when the peer is gone or the loop is draining. */
static void conn_finish(eng_conn *c)
{
    if (c->loop->draining || c->read_eof) {
        eng_conn_close(c, "done");
        return;
    }
    (void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    c->lingering = 1;
    c->linger_start = eng_now_ms();
    eng_conn_discard_input(c);
    eng_conn_set_read_high(c, 0);
    conn_read_enable(c, 1);
    eng_conn_after(c);
}

/* Arms the connection timer for the earliest deadline of its state.
 * Lazily: a timer already due at or before that deadline is left alone
 * (timer_cb finds nothing expired and re-arms for the real one), so a
 * keep-alive connection whose deadlines move forward with every request
 * touches the timer heap about once per timeout instead of twice per
 * request.  Only an earlier deadline re-arms it. */
static void arm_timer(eng_conn *c, uint64_t now)
{
    const eng_limits *L = &c->loop->limits;
    uint64_t dl = UINT64_MAX;
    struct timeval tv;

#define CONSIDER(start, ms) \
    if ((start) != 0 && (start) + (uint64_t)(ms) < dl) dl = (start) + (uint64_t)(ms)
    CONSIDER(c->linger_start, LINGER_MS);
    CONSIDER(c->write_start, L->write_timeout_ms);
    CONSIDER(c->req_start, L->read_timeout_ms);
    CONSIDER(c->idle_since, L->idle_timeout_ms);
#undef CONSIDER
    if (dl == UINT64_MAX || (c->timer_at != 0 && c->timer_at <= dl + 1))
        return;
    c->timer_at = dl + 1; /* 1 ms late */
    dl = (dl > now ? dl - now : 0) * 1000 + 1000; /* us */
    tv.tv_sec = (time_t)(dl / 1000000);
    tv.tv_usec = (suseconds_t)(dl % 1000000);
    evtimer_add(c->timer, &tv);
}

/* read_timeout_ms passed: the protocol may answer (HTTP 408), else close. */
static void read_timed_out(eng_conn *c)
{
    c->loop->st.read_timeouts++;
    if (c->jobs == 0 && c->ops->on_read_timeout != NULL &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 &&
        c->ops->on_read_timeout(c)) {
        eng_conn_after(c);
        return;
    }
    tlog(TLOG_INFO, "%s connection from %s: read timeout, closing",
         c->ops->name, c->peer);
    eng_conn_close(c, NULL);
}

/* Timer: closes the connection whose deadline passed, else re-arms. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_conn *c = arg;
    const eng_limits *L = &c->loop->limits;
    uint64_t now = eng_now_ms();

    (void)fd;
    (void)what;
    c->timer_at = 0;
    if (c->dead)
        return;
    eng_conn_ref(c);
    if (c->linger_start != 0 && now >= c->linger_start + LINGER_MS) {
        eng_conn_close(c, "linger over");
    } else if (c->write_start != 0 &&
               now >= c->write_start + (uint64_t)L->write_timeout_ms) {
        c->loop->st.write_timeouts++;
        tlog(TLOG_INFO, "%s connection from %s: write timeout, closing",
             c->ops->name, c->peer);
        eng_conn_close(c, NULL);
    } else if (c->req_start != 0 &&
               now >= c->req_start + (uint64_t)L->read_timeout_ms) {
        read_timed_out(c);
    } else if (c->idle_since != 0 &&
               now >= c->idle_since + (uint64_t)L->idle_timeout_ms) {
        c->loop->st.idle_timeouts++;
        eng_conn_close(c, "idle timeout");
    } else {
        arm_timer(c, now);
    }
    eng_conn_unref(c);
}

/* Enables or pauses reading as the state allows (a direct connection
 * also pauses at its input limit, which the bufferevent's watermark does
 * for the others); returns want_read. */
static int update_reading(eng_conn *c, size_t in, size_t out)
{
    int stopped = c->closing || c->loop->draining;
    int want = (!stopped || c->ops->own_lifetime) && !c->read_eof &&
               out < ENG_OUT_HIGH && c->ops->want_read(c);

    int room = c->rd == NULL || in < c->read_high;
    int on = want && room;

    /* Requests are in flight (answered on this loop later, or by another
     * thread, as the gateway's are): pausing reading now and resuming it
     * with the answer would cost two epoll changes per request and spare
     * nothing, since on_read takes no request while they are pending and
     * the read limit (read_high) bounds what the input may hold
     * meanwhile. */
    if (!want && room && c->jobs > 0 && !stopped && !c->read_eof &&
        out < ENG_OUT_HIGH)
        on = c->reading;
    /* Only changes reach libevent (an event_add or event_del each). */
    if (on != c->reading)
        conn_read_enable(c, on);
    return want; /* paused at the limit, a request still counts as started */
}

static void direct_read_cb(evutil_socket_t fd, short what, void *arg);

/* A plain HTTP or frames connection writes its answers itself, at the end
 * of the event that made them (one writev, no write event added and
 * removed per answer); EV_WRITE is enabled only while a partial write
 * waits for room.  It reads itself too, through its own read event
 * (direct_read_cb): the bufferevent's reader asks the kernel how many
 * bytes are waiting (an ioctl) before every read, and its watermark runs a
 * callback on every drain.  Returns 1 if c is direct; 0 (also when out of
 * memory for the read event: the bufferevent then does it all). */
static int conn_direct_init(eng_conn *c)
{
    if (c->lsn == NULL || c->lsn->tls_ctx != NULL ||
        (c->ops != &eng_http_ops && c->ops != &eng_frames_ops))
        return 0;
    c->rd = event_new(c->loop->base, bufferevent_getfd(c->bev),
                      EV_READ | EV_PERSIST, direct_read_cb, c);
    if (c->rd == NULL)
        return 0;
    bufferevent_disable(c->bev, EV_WRITE);
    return 1;
}

/* Writes what output holds now; arms EV_WRITE for what the socket did not
 * take (or to let the bufferevent report a write error). */
static void conn_flush(eng_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t before = evbuffer_get_length(out);

    if (!c->direct || c->write_armed || before == 0)
        return;
    evbuffer_unfreeze(out, 1); /* the bufferevent keeps its start frozen */
    (void)evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0) {
        c->write_armed = 1;
        bufferevent_enable(c->bev, EV_WRITE);
    } else if (before >= ENG_OUT_HIGH &&
               evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        c->reprocess = 1; /* reading had stopped for the full output */
    }
}

/* After every event: writes pending answers, closes a finished
 * connection, pauses or resumes reading, and recomputes the state
 * deadlines. */
void eng_conn_after(eng_conn *c)
{
    size_t in, out;
    uint64_t now;
    int want_read;

    if (c->dead)
        return;
    if (!c->lingering)
        conn_flush(c);
    now = eng_now_ms();
    if (c->lingering) {
        c->req_start = c->write_start = c->idle_since = 0;
        idle_count(c, 0);
        arm_timer(c, now);
        return;
    }
    in = evbuffer_get_length(bufferevent_get_input(c->bev));
    out = evbuffer_get_length(bufferevent_get_output(c->bev));
    if ((c->closing || c->read_eof || c->loop->draining) && c->jobs == 0 &&
        out == 0) {
        conn_finish(c);
        return;
    }
    want_read = update_reading(c, in, out);
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
    idle_count(c, c->idle_since != 0);
    arm_timer(c, now);
}

/* Lets the protocol take what requests the state allows, then after. */
void eng_conn_process(eng_conn *c)
{
    do {
        int stopped = c->closing || c->loop->draining;

        if (c->dead)
            return;
        c->reprocess = 0;
        if (!c->lingering && (!stopped || c->ops->own_lifetime))
            c->ops->on_read(c);
        eng_conn_after(c);
    } while (c->reprocess);
}

/* evbuffer cleanup of a malloc'd answer handed over by reference. */
static void free_cb(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Queues bytes; takes ownership of data. */
void eng_conn_write(eng_conn *c, char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (data == NULL)
        return;
    if (len > 0 && evbuffer_add_reference(out, data, len, free_cb, NULL) == 0)
        return;
    free(data);
}

/* Counts a transport-made error; closes after ENG_MAX_PROTO_ERRORS. */
void eng_conn_proto_error(eng_conn *c)
{
    c->loop->st.proto_errors++;
    if (++c->proto_errors >= ENG_MAX_PROTO_ERRORS && !c->closing) {
        c->closing = 1;
        tlog(TLOG_INFO, "%s connection from %s: %d protocol errors, closing",
             c->ops->name, c->peer, c->proto_errors);
    }
}

/* ---- bufferevent callbacks ------------------------------------------------ */

/* Input arrived: parse requests, or discard while lingering. */
static void read_cb(struct bufferevent *bev, void *arg)
{
    eng_conn *c = arg;
    size_t n = evbuffer_get_length(bufferevent_get_input(bev));

    eng_conn_ref(c);
    if (c->lingering) {
        c->lingered += n;
        eng_conn_discard_input(c);
        if (c->lingered > LINGER_MAX_BYTES)
            eng_conn_close(c, "linger limit");
    } else {
        eng_conn_process(c);
    }
    eng_conn_unref(c);
}

/* Output drained: next pipelined request, or finish a closing one. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    eng_conn *c = arg;

    eng_conn_ref(c);
    c->write_start = 0;
    if (c->write_armed) { /* drained: back to writing directly */
        c->write_armed = 0;
        bufferevent_disable(bev, EV_WRITE);
    }
    eng_conn_process(c);
    eng_conn_unref(c);
}

/* EOF answers what is buffered then closes; errors close at once. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    eng_conn *c = arg;

    (void)bev;
    eng_conn_ref(c);
    if (c->lingering || (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) {
        eng_conn_close(c, (what & BEV_EVENT_ERROR) ? "socket error"
                                                   : "closed");
    } else if (what & BEV_EVENT_EOF) {
        c->read_eof = 1;
        c->reading = 0; /* the bufferevent stopped reading itself */
        eng_conn_process(c);
    }
    eng_conn_unref(c);
}

/* The first read of an event fits a 1 KiB buffer chain with its header
 * (most requests are smaller; the engine's allocator wipes every chain it
 * frees, so its size is paid twice); a read that fills its chunk doubles
 * the next, up to 16 KiB. */
#define DIRECT_READ_FIRST (1024u - 128u)
#define DIRECT_READ_MAX (16u * 1024u)

/* Reads what the socket holds into the input, up to c->read_high in all;
 * returns 1 (bytes read, or nothing waiting), 0 at EOF, -1 on an error. */
static int direct_read(eng_conn *c, int fd)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in), chunk = DIRECT_READ_FIRST;

    /* at most 16 chunks an event: the (level-triggered) event comes back */
    for (int round = 0; round < 16 && have < c->read_high; round++) {
        struct evbuffer_iovec v[2];
        size_t want = c->read_high - have;
        ssize_t n;
        int nv;

        if (want > chunk)
            want = chunk;
        if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) < 1)
            return -1;
        if (nv == 2 && v[0].iov_len >= want)
            nv = 1;
        n = readv(fd, (struct iovec *)v, nv); /* same layout (libevent) */
        if (n <= 0) {
            evbuffer_commit_space(in, v, 0);
            if (n == 0)
                return 0;
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                       ? 1 : -1;
        }
        if ((size_t)n <= v[0].iov_len) {
            v[0].iov_len = (size_t)n;
            nv = 1;
        } else {
            v[1].iov_len = (size_t)n - v[0].iov_len;
        }
        if (evbuffer_commit_space(in, v, nv) != 0)
            return -1;
        if (evbuffer_get_length(in) - have < want)
            return 1; /* a short read: the socket is empty */
        have = evbuffer_get_length(in);
        if (chunk < DIRECT_READ_MAX)
            chunk *= 2;
    }
    return 1;
}

/* A direct connection's socket is readable. */
static void direct_read_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_conn *c = arg;
    struct evbuffer *in;
    int r;

    (void)what;
    if (c->dead)
        return;
    in = bufferevent_get_input(c->bev);
    evbuffer_unfreeze(in, 0); /* the bufferevent keeps its end frozen */
    r = direct_read(c, (int)fd);
    evbuffer_freeze(in, 0);
    if (r > 0) {
        if (evbuffer_get_length(in) > 0)
            read_cb(c->bev, c);
        return;
    }
    conn_read_enable(c, 0);
    event_cb(c->bev, BEV_EVENT_READING | (r == 0 ? BEV_EVENT_EOF
                                                   : BEV_EVENT_ERROR), c);
}

/* ---- new connections and eviction ------------------------------------------ */

/* Closes the oldest idle connection of lsn on l; 1 if one was closed. */
int eng_conn_evict_idle(eng_loop *l, const eng_lsn *lsn)
{
    eng_conn *oldest = l->idle[lsn->index].head;

    if (oldest == NULL)
        return 0;
    l->st.evicted++;
    tlog(TLOG_DEBUG, "%s connection from %s evicted (idle, %s at "
         "max_connections)", oldest->ops->name, oldest->peer, lsn->addr);
    eng_conn_close(oldest, NULL);
    return 1;
}

/* Gives back the budgets of a socket that never became a connection. */
static void refuse_new(eng_loop *l, int fd, eng_lsn *lsn,
                       const struct sockaddr *addr)
{
    unsigned char ip[16];
    int iplen = eng_peer_ip(addr, ip);

    close(fd);
    if (lsn == NULL)
        return;
    atomic_fetch_sub(&lsn->n_conns, 1);
    if (iplen > 0)
        eng_peer_release(l->srv, lsn, ip, iplen);
}

/* Serves an accepted socket on loop l (its thread). */
void eng_conn_new(eng_loop *l, int fd, eng_lsn *lsn,
                  const struct sockaddr *addr, int alen, int evict)
{
    eng_conn *c;

    if (l->draining || (evict && !eng_conn_evict_idle(l, lsn))) {
        if (!l->draining)
            l->st.rejected_conns++;
        refuse_new(l, fd, lsn, addr);
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL ||
        (c->timer = evtimer_new(l->base, timer_cb, c)) == NULL ||
        (c->bev = lsn != NULL && lsn->tls_ctx != NULL
                      ? eng_tls_bev_new(l->base, fd, lsn->tls_ctx)
                      : bufferevent_socket_new(l->base, fd,
                                               BEV_OPT_CLOSE_ON_FREE)) ==
            NULL) {
        tlog(TLOG_ERROR, "out of memory accepting a connection");
        if (c != NULL && c->timer != NULL)
            event_free(c->timer);
        free(c);
        refuse_new(l, fd, lsn, addr);
        return;
    }
    c->loop = l;
    c->lsn = lsn;
    c->ops = lsn->ops;
    c->refs = 1;
    eng_sockaddr_print(addr, (socklen_t)alen, c->peer, sizeof c->peer);
    c->peer_ip_len = eng_peer_ip(addr, c->peer_ip);
    c->direct = conn_direct_init(c);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    eng_conn_set_read_high(c, c->ops->read_high(&l->limits));
    c->next = l->conns;
    if (l->conns != NULL)
        l->conns->prev = c;
    l->conns = c;
    l->n_conns++;
    l->st.accepted++;
    c->fresh = c->ops->fresh_is_request;
    eng_conn_ref(c);
    if (c->ops->on_open != NULL)
        c->ops->on_open(c);
    eng_conn_after(c);
    eng_conn_unref(c);
}
