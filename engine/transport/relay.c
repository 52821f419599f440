/*
 * The byte relay (see relay.h and transport_internal.h): a connection's
 * input goes to an upstream bufferevent on the same loop, the upstream's
 * input to the connection's output.  Each direction holds at most
 * buffer_bytes (the read watermarks and want_read stop the reading side),
 * so memory per connection is bounded whatever the peers' speeds.
 *
 * States: resolving (waiting for the DNS cache), connecting (non-blocking
 * connect), open.  connect_timeout_ms covers the first two; afterwards
 * idle_timeout_ms closes a connection that moved no byte either way.  An
 * EOF from one side is passed on as shutdown(SHUT_WR) to the other once
 * everything before it was delivered; when both directions have ended,
 * or either socket fails, both sides are closed together.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "relay.h"
#include "transport_internal.h"

enum { R_RESOLVING, R_CONNECTING, R_OPEN };

typedef struct relay {
    eng_conn *c;
    struct bufferevent *up;
    struct event *timer;
    eng_dns_waiter w;
    int state;
    int up_eof;    /* upstream sent EOF */
    int up_shut;   /* client's EOF passed on to upstream */
    int down_shut; /* upstream's EOF passed on to the client */
    int port;
    const char *host;
    uint64_t last_active;
} relay;

static eng_relay_conf g_conf;
static struct {
    _Atomic uint64_t accepted, active, refused, connect_failures;
    _Atomic uint64_t connect_timeouts, idle_timeouts, bytes_up, bytes_down;
    _Atomic uint64_t buffered_high;
} g_st;

/* Sets the configuration (before the server starts). */
void eng_relay_configure(const eng_relay_conf *rc)
{
    if (rc == NULL)
        memset(&g_conf, 0, sizeof g_conf);
    else
        g_conf = *rc;
    if (g_conf.buffer_bytes == 0)
        g_conf.buffer_bytes = 64 * 1024;
}

/* A snapshot of the counters. */
void eng_relay_stats_get(eng_relay_stats *o)
{
    o->accepted = atomic_load(&g_st.accepted);
    o->active = atomic_load(&g_st.active);
    o->refused = atomic_load(&g_st.refused);
    o->connect_failures = atomic_load(&g_st.connect_failures);
    o->connect_timeouts = atomic_load(&g_st.connect_timeouts);
    o->idle_timeouts = atomic_load(&g_st.idle_timeouts);
    o->bytes_up = atomic_load(&g_st.bytes_up);
    o->bytes_down = atomic_load(&g_st.bytes_down);
    o->buffered_high = atomic_load(&g_st.buffered_high);
}

/* Records the largest number of bytes one direction held. */
static void note_buffered(size_t n)
{
    uint64_t cur = atomic_load(&g_st.buffered_high);

    while (n > cur &&
           !atomic_compare_exchange_weak(&g_st.buffered_high, &cur, n))
        ;
}

/* (Re)arms the timer: the connect deadline, or the idle one. */
static void arm(relay *r, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(r->timer, &tv);
}

/* Client to upstream, within the upstream's buffer. */
static void pump_up(relay *r)
{
    struct evbuffer *in = bufferevent_get_input(r->c->bev);
    struct evbuffer *out = bufferevent_get_output(r->up);
    size_t n = evbuffer_get_length(in);

    if (n == 0 || evbuffer_get_length(out) >= g_conf.buffer_bytes)
        return;
    evbuffer_add_buffer(out, in);
    atomic_fetch_add(&g_st.bytes_up, n);
    note_buffered(evbuffer_get_length(out));
    r->last_active = eng_now_ms();
}

/* Upstream to client, within the client's buffer; pauses the upstream's
 * reading while the client's output is full. */
static void pump_down(relay *r)
{
    struct evbuffer *in = bufferevent_get_input(r->up);
    struct evbuffer *out = bufferevent_get_output(r->c->bev);
    size_t n = evbuffer_get_length(in);

    if (n > 0 && evbuffer_get_length(out) < g_conf.buffer_bytes) {
        evbuffer_add_buffer(out, in);
        atomic_fetch_add(&g_st.bytes_down, n);
        note_buffered(evbuffer_get_length(out));
        r->last_active = eng_now_ms();
    }
    if (evbuffer_get_length(out) < g_conf.buffer_bytes && !r->up_eof)
        bufferevent_enable(r->up, EV_READ);
    else
        bufferevent_disable(r->up, EV_READ);
}

/* Passes EOFs on once their direction is flushed; 1 when both
 * directions have ended (then the caller closes). */
static int half_close(relay *r)
{
    eng_conn *c = r->c;

    if (c->read_eof && !r->up_shut &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
        evbuffer_get_length(bufferevent_get_output(r->up)) == 0) {
        (void)shutdown(bufferevent_getfd(r->up), SHUT_WR);
        r->up_shut = 1;
    }
    if (r->up_eof && !r->down_shut &&
        evbuffer_get_length(bufferevent_get_input(r->up)) == 0 &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        (void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        r->down_shut = 1;
    }
    return r->up_shut && r->down_shut;
}

/* on_read: input arrived, output drained or the upstream moved. */
static void relay_on_read(eng_conn *c)
{
    relay *r = c->pstate;

    if (r == NULL || r->state != R_OPEN)
        return;
    pump_up(r);
    pump_down(r);
    if (half_close(r))
        eng_conn_close(c, "both sides ended");
}

/* want_read: only while open and the upstream's buffer has room. */
static int relay_want_read(const eng_conn *c)
{
    const relay *r = c->pstate;

    return r != NULL && r->state == R_OPEN && !r->up_shut &&
           evbuffer_get_length(bufferevent_get_output(r->up)) <
               g_conf.buffer_bytes;
}

static size_t relay_read_high(const eng_limits *l)
{
    (void)l;
    return g_conf.buffer_bytes;
}

/* Closes the client side (and so the upstream, in on_close). */
static void fail(relay *r, const char *why)
{
    tlog(TLOG_INFO, "relay from %s to %s:%d: %s", r->c->peer, r->host,
         r->port, why);
    eng_conn_close(r->c, NULL);
}

/* ---- upstream callbacks --------------------------------------------------- */

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    relay *r = arg;
    eng_conn *c = r->c;

    (void)bev;
    eng_conn_ref(c);
    eng_conn_process(c);
    eng_conn_unref(c);
}

static void up_write_cb(struct bufferevent *bev, void *arg)
{
    up_read_cb(bev, arg);
}

/* The upstream connected, ended, or failed. */
static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    relay *r = arg;
    eng_conn *c = r->c;

    (void)bev;
    eng_conn_ref(c);
    if (what & BEV_EVENT_CONNECTED) {
        r->state = R_OPEN;
        r->last_active = eng_now_ms();
        arm(r, g_conf.idle_timeout_ms);
        bufferevent_enable(r->up, EV_READ | EV_WRITE);
        eng_conn_process(c);
    } else if (r->state != R_OPEN) {
        atomic_fetch_add(&g_st.connect_failures, 1);
        fail(r, "upstream connect failed");
    } else if (what & BEV_EVENT_ERROR) {
        fail(r, "upstream connection failed");
    } else if (what & BEV_EVENT_EOF) {
        r->up_eof = 1;
        eng_conn_process(c);
    }
    eng_conn_unref(c);
}

/* ---- connecting ------------------------------------------------------------- */

/* Starts the non-blocking connect to the resolved address. */
static void start_connect(relay *r, const struct sockaddr_storage *ss,
                          socklen_t len)
{
    eng_conn *c = r->c;
    size_t b = g_conf.buffer_bytes;

    r->state = R_CONNECTING;
    r->up = bufferevent_socket_new(c->loop->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (r->up == NULL) {
        fail(r, "out of memory");
        return;
    }
    bufferevent_setcb(r->up, up_read_cb, up_write_cb, up_event_cb, r);
    bufferevent_setwatermark(r->up, EV_READ, 0, b);
    bufferevent_setwatermark(r->up, EV_WRITE, b / 2, 0);
    if (bufferevent_socket_connect(r->up, (const struct sockaddr *)ss,
                                   (int)len) != 0) {
        atomic_fetch_add(&g_st.connect_failures, 1);
        fail(r, "upstream connect failed");
    }
}

/* Looks the destination up; connects, waits, or fails. */
static void resolve(relay *r)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int rc = eng_dns_lookup(g_conf.dns, r->host, r->port, &r->w, &ss, &len);

    if (rc == 0) {
        start_connect(r, &ss, len);
    } else if (rc < 0) {
        atomic_fetch_add(&g_st.connect_failures, 1);
        fail(r, "cannot resolve the destination");
    }
}

/* The DNS answer arrived (loop thread). */
static void dns_cb(evutil_socket_t fd, short what, void *arg)
{
    relay *r = arg;
    eng_conn *c = r->c;

    (void)fd;
    (void)what;
    if (c->dead || r->state != R_RESOLVING)
        return;
    eng_conn_ref(c);
    resolve(r);
    eng_conn_unref(c);
}

/* Connect deadline or idle timeout. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    relay *r = arg;
    eng_conn *c = r->c;
    uint64_t now = eng_now_ms(), idle = (uint64_t)g_conf.idle_timeout_ms;

    (void)fd;
    (void)what;
    if (c->dead)
        return;
    eng_conn_ref(c);
    if (r->state != R_OPEN) {
        atomic_fetch_add(&g_st.connect_timeouts, 1);
        fail(r, "upstream connect timeout");
    } else if (now - r->last_active >= idle) {
        atomic_fetch_add(&g_st.idle_timeouts, 1);
        fail(r, "idle timeout");
    } else {
        arm(r, (int)(r->last_active + idle - now));
    }
    eng_conn_unref(c);
}

/* ---- the protocol ----------------------------------------------------------- */

/* on_open: the destination of the connection's listener, then resolve. */
static void relay_on_open(eng_conn *c)
{
    int i = c->lsn != NULL ? c->lsn->index : -1;
    relay *r;

    atomic_fetch_add(&g_st.accepted, 1);
    if (i < 0 || (size_t)i >= g_conf.n || g_conf.hosts[i] == NULL ||
        g_conf.allow == NULL ||
        !eng_allowlist_has(g_conf.allow, g_conf.hosts[i], g_conf.ports[i])) {
        atomic_fetch_add(&g_st.refused, 1);
        tlog(TLOG_WARN, "relay from %s refused: destination %s:%d is not "
             "on the allowlist", c->peer,
             i >= 0 && (size_t)i < g_conf.n && g_conf.hosts[i] ? g_conf.hosts[i]
                                                              : "(none)",
             i >= 0 && (size_t)i < g_conf.n ? g_conf.ports[i] : 0);
        eng_conn_close(c, NULL);
        return;
    }
    if ((r = calloc(1, sizeof *r)) == NULL ||
        (r->timer = evtimer_new(c->loop->base, timer_cb, r)) == NULL ||
        (r->w.ev = event_new(c->loop->base, -1, 0, dns_cb, r)) == NULL) {
        if (r != NULL && r->timer != NULL)
            event_free(r->timer);
        free(r);
        tlog(TLOG_ERROR, "out of memory starting a relay");
        eng_conn_close(c, NULL);
        return;
    }
    r->c = c;
    r->host = g_conf.hosts[i];
    r->port = g_conf.ports[i];
    c->pstate = r;
    c->jobs = 1; /* the relay decides when the connection ends */
    atomic_fetch_add(&g_st.active, 1);
    bufferevent_setwatermark(c->bev, EV_WRITE, g_conf.buffer_bytes / 2, 0);
    arm(r, g_conf.connect_timeout_ms);
    resolve(r);
}

/* on_close: frees the upstream with the client. */
static void relay_on_close(eng_conn *c)
{
    relay *r = c->pstate;

    if (r == NULL)
        return;
    c->pstate = NULL;
    c->jobs = 0;
    atomic_fetch_sub(&g_st.active, 1);
    eng_dns_cancel(g_conf.dns, &r->w);
    event_free(r->w.ev);
    event_free(r->timer);
    if (r->up != NULL)
        bufferevent_free(r->up);
    free(r);
}

const eng_proto_ops eng_relay_ops = {
    .name = "relay",
    .on_read = relay_on_read,
    .on_close = relay_on_close,
    .want_read = relay_want_read,
    .read_high = relay_read_high,
    .on_open = relay_on_open,
    .own_lifetime = 1,
};
