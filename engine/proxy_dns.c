/*
 * The proxy's DNS cache (see proxy.h): names are resolved by libevent's
 * evdns on a thread of its own, so no event loop ever blocks; an answer
 * is kept for its record TTL (clamped to [1 s, ttl_max]) and resolved
 * again afterwards, so a destination that moves is followed.  A failed
 * re-resolution keeps the old addresses for a few seconds more; a name
 * that never resolved fails its waiters (and is retried after 1 s).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "proxy.h"

#define MAX_ADDRS 8
#define STALE_MS 5000    /* old addresses kept after a failed refresh */
#define NEGATIVE_MS 1000 /* a name that failed is not asked again sooner */

typedef struct dns_entry {
    struct dns_entry *next;
    struct eng_dns *d;
    char host[256];
    struct in_addr addr[MAX_ADDRS];
    int n;
    unsigned rr;
    uint64_t expires; /* ms; 0: never resolved */
    int failed;       /* the last resolution failed and nothing is cached */
    int pending;      /* a resolution is wanted or under way */
    int asked;        /* handed to evdns */
    eng_dns_waiter *waiters;
} dns_entry;

struct eng_dns {
    pthread_mutex_t mu;
    struct event_base *base;
    struct evdns_base *edns;
    struct event *ev_kick, *ev_stop;
    pthread_t thread;
    int started;
    int ttl_max_s;
    dns_entry *entries;
    _Atomic uint64_t resolutions, failures;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wakes every waiter of e (mutex held). */
static void wake(dns_entry *e)
{
    eng_dns_waiter *w;

    while ((w = e->waiters) != NULL) {
        e->waiters = w->next;
        w->next = NULL;
        w->entry = NULL;
        event_active(w->ev, EV_READ, 0);
    }
}

/* Stores an evdns answer (mutex held). */
static void store(eng_dns *d, dns_entry *e, int ok, int count, int ttl,
                  const struct in_addr *a)
{
    uint64_t now = now_ms();

    if (ok) {
        e->n = count < MAX_ADDRS ? count : MAX_ADDRS;
        memcpy(e->addr, a, (size_t)e->n * sizeof *a);
        if (ttl < 1)
            ttl = 1;
        if (ttl > d->ttl_max_s)
            ttl = d->ttl_max_s;
        e->expires = now + (uint64_t)ttl * 1000u;
        e->failed = 0;
        atomic_fetch_add(&d->resolutions, 1);
        return;
    }
    atomic_fetch_add(&d->failures, 1);
    if (e->n > 0) {
        e->expires = now + STALE_MS; /* keep the old addresses a while */
    } else {
        e->failed = 1;
        e->expires = now + NEGATIVE_MS;
    }
}

/* evdns answer (resolver thread). */
static void resolved_cb(int result, char type, int count, int ttl,
                        void *addresses, void *arg)
{
    dns_entry *e = arg;
    eng_dns *d = e->d;
    int ok = result == DNS_ERR_NONE && type == DNS_IPv4_A && count > 0;

    pthread_mutex_lock(&d->mu);
    store(d, e, ok, count, ttl, addresses);
    e->pending = e->asked = 0;
    wake(e);
    pthread_mutex_unlock(&d->mu);
}

/* Resolver thread: asks evdns for every entry that wants a resolution. */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_dns *d = arg;
    dns_entry *e;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&d->mu);
    for (e = d->entries; e != NULL; e = e->next) {
        if (!e->pending || e->asked)
            continue;
        e->asked = 1;
        pthread_mutex_unlock(&d->mu);
        /* The mutex is not held: evdns may answer from inside the call. */
        if (evdns_base_resolve_ipv4(d->edns, e->host, DNS_QUERY_NO_SEARCH,
                                    resolved_cb, e) == NULL) {
            pthread_mutex_lock(&d->mu);
            store(d, e, 0, 0, 0, NULL);
            e->pending = e->asked = 0;
            wake(e);
            continue;
        }
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(((eng_dns *)arg)->base);
}

static void *dns_main(void *arg)
{
    eng_dns *d = arg;

    event_base_loop(d->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Adds the configured name servers, or reads /etc/resolv.conf. */
static int add_servers(eng_dns *d, char *const *ns, size_t n, char *err,
                       size_t err_len)
{
    size_t i;

    d->edns = evdns_base_new(d->base, n > 0 ? 0
                                            : EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (d->edns == NULL) {
        snprintf(err, err_len, "cannot start the DNS resolver (check "
                 "/etc/resolv.conf)");
        return -1;
    }
    for (i = 0; i < n; i++)
        if (evdns_base_nameserver_ip_add(d->edns, ns[i]) != 0) {
            snprintf(err, err_len, "proxy.nameservers: '%s' is not IP or "
                     "IP:PORT", ns[i]);
            return -1;
        }
    evdns_base_set_option(d->edns, "timeout:", "2");
    evdns_base_set_option(d->edns, "attempts:", "2");
    return 0;
}

/* Starts the resolver thread (see proxy.h). */
eng_dns *eng_dns_new(int ttl_max_s, char *const *ns, size_t n, char *err,
                     size_t err_len)
{
    eng_dns *d = calloc(1, sizeof *d);
    sigset_t all, old;

    if (d == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    /* Loops wake the resolver thread's base: it needs libevent's locks. */
    if (evthread_use_pthreads() != 0) {
        snprintf(err, err_len, "libevent without thread support");
        goto fail;
    }
    d->ttl_max_s = ttl_max_s > 0 ? ttl_max_s : 60;
    if ((d->base = event_base_new()) == NULL ||
        (d->ev_kick = event_new(d->base, -1, 0, kick_cb, d)) == NULL ||
        (d->ev_stop = event_new(d->base, -1, 0, stop_cb, d)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (add_servers(d, ns, n, err, err_len) != 0)
        goto fail;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    d->started = pthread_create(&d->thread, NULL, dns_main, d) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (d->started)
        return d;
    snprintf(err, err_len, "cannot start the DNS thread");
fail:
    eng_dns_free(d);
    return NULL;
}

/* Stops the thread, then frees everything. */
void eng_dns_free(eng_dns *d)
{
    dns_entry *e;

    if (d == NULL)
        return;
    if (d->started) {
        event_active(d->ev_stop, EV_READ, 0);
        pthread_join(d->thread, NULL);
    }
    if (d->edns != NULL)
        evdns_base_free(d->edns, 0);
    if (d->ev_kick != NULL)
        event_free(d->ev_kick);
    if (d->ev_stop != NULL)
        event_free(d->ev_stop);
    if (d->base != NULL)
        event_base_free(d->base);
    while ((e = d->entries) != NULL) {
        d->entries = e->next;
        free(e);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* A literal IPv4 or IPv6 address needs no DNS; 1 if host was one. */
static int literal(const char *host, int port, struct sockaddr_storage *out,
                   socklen_t *len)
{
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return 1;
    }
    return 0;
}

/* The entry of host, created if new (mutex held); NULL on ENOMEM. */
static dns_entry *entry_of(eng_dns *d, const char *host)
{
    dns_entry *e;

    for (e = d->entries; e != NULL; e = e->next)
        if (strcasecmp(e->host, host) == 0)
            return e;
    if (strlen(host) >= sizeof e->host || (e = calloc(1, sizeof *e)) == NULL)
        return NULL;
    snprintf(e->host, sizeof e->host, "%s", host);
    e->d = d;
    e->next = d->entries;
    d->entries = e;
    return e;
}

/* Copies a cached address (round robin) into out. */
static void pick(dns_entry *e, int port, struct sockaddr_storage *out,
                 socklen_t *len)
{
    struct sockaddr_in *in = (struct sockaddr_in *)out;

    memset(out, 0, sizeof *out);
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    in->sin_addr = e->addr[e->rr++ % (unsigned)e->n];
    *len = sizeof *in;
}

/* See proxy.h. */
int eng_dns_lookup(eng_dns *d, const char *host, int port, eng_dns_waiter *w,
                   struct sockaddr_storage *out, socklen_t *out_len)
{
    dns_entry *e;
    int rc = 1, kick = 0;

    if (literal(host, port, out, out_len))
        return 0;
    if (d == NULL)
        return -1;
    pthread_mutex_lock(&d->mu);
    if ((e = entry_of(d, host)) == NULL) {
        rc = -1;
    } else if (!e->pending && now_ms() < e->expires) {
        rc = e->failed ? -1 : 0;
        if (rc == 0)
            pick(e, port, out, out_len);
    } else {
        kick = !e->pending;
        e->pending = 1;
        w->next = e->waiters;
        w->entry = e;
        e->waiters = w;
    }
    pthread_mutex_unlock(&d->mu);
    if (kick)
        event_active(d->ev_kick, EV_READ, 0);
    return rc;
}

/* Removes w from its entry's waiters. */
void eng_dns_cancel(eng_dns *d, eng_dns_waiter *w)
{
    dns_entry *e;
    eng_dns_waiter **p;

    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    if ((e = w->entry) != NULL)
        for (p = &e->waiters; *p != NULL; p = &(*p)->next)
            if (*p == w) {
                *p = w->next;
                break;
            }
    w->entry = NULL;
    w->next = NULL;
    pthread_mutex_unlock(&d->mu);
}

/* Counters for /metrics. */
void eng_dns_counts(eng_dns *d, uint64_t *resolutions, uint64_t *failures)
{
    *resolutions = d ? atomic_load(&d->resolutions) : 0;
    *failures = d ? atomic_load(&d->failures) : 0;
}
