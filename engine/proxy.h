/*
 * The outbound proxy role (role = "proxy", docs/proxy.md): listeners with
 * protocol "relay" copy bytes to one allowlisted host:port each, without
 * terminating TLS.  This unit holds the allowlist (from the config and
 * from AWS vsock-proxy's YAML format), the asynchronous DNS cache that
 * follows record TTLs, and the role's settings; the relay itself is
 * engine/transport/relay.c.
 */
#ifndef ENG_PROXY_H
#define ENG_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct eng_config;
struct event;

/* One allowed destination. */
typedef struct eng_allow {
    char host[256];
    int port;
} eng_allow;

typedef struct eng_allowlist {
    eng_allow *v;
    size_t n;
} eng_allowlist;

/* Parses the vsock-proxy YAML allowlist in text:
 *   allowlist:
 *   - {address: kms.us-east-1.amazonaws.com, port: 443}
 * (block items "- address: H" + "  port: N", comments and quoted scalars
 * too).  Appends to out.  0, or -1 with "NAME:LINE: why" in err (name is
 * the file name used in messages). */
int eng_allowlist_parse_yaml(eng_allowlist *out, const char *text,
                             const char *name, char *err, size_t err_len);

/* Appends host:port; 0 or -1 (ENOMEM, host too long or port invalid). */
int eng_allowlist_add(eng_allowlist *a, const char *host, long port);

/* 1 if host:port is allowed (host compared without case). */
int eng_allowlist_has(const eng_allowlist *a, const char *host, int port);

void eng_allowlist_free(eng_allowlist *a);

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port; 0 or -1. */
int eng_proxy_split_dest(const char *dest, char *host, size_t host_len,
                         int *port);

/* ---- DNS cache ------------------------------------------------------------ */

typedef struct eng_dns eng_dns;

/* A connection waiting for a resolution: ev (on the connection's loop)
 * is made active when the answer (or a failure) arrives. */
typedef struct eng_dns_waiter {
    struct event *ev;
    struct eng_dns_waiter *next;
    void *entry; /* private */
} eng_dns_waiter;

/* Resolves names on a thread of its own (libevent evdns), keeping each
 * answer for its record TTL, at least 1 s and at most ttl_max_s.
 * nameservers ("IP" or "IP:PORT") replace /etc/resolv.conf when n > 0.
 * NULL with err on failure. */
eng_dns *eng_dns_new(int ttl_max_s, char *const *nameservers, size_t n,
                     char *err, size_t err_len);

/* Stops the thread and frees the cache (no waiter may be left). */
void eng_dns_free(eng_dns *d);

/* The address of host:port into out: 0 (a literal address, or a fresh
 * cached answer, used round robin); 1 when w waits for a resolution (its
 * event fires; then call again); -1 when the name does not resolve. */
int eng_dns_lookup(eng_dns *d, const char *host, int port, eng_dns_waiter *w,
                   struct sockaddr_storage *out, socklen_t *out_len);

/* Removes w from the waiters (a connection closing while it waits). */
void eng_dns_cancel(eng_dns *d, eng_dns_waiter *w);

/* Counters for /metrics. */
void eng_dns_counts(eng_dns *d, uint64_t *resolutions, uint64_t *failures);

/* ---- the role ------------------------------------------------------------- */

/* Reads the proxy group of cfg, loads allowlist_file, refuses a relay
 * listener whose upstream is not allowlisted, starts the resolver and
 * configures the relay.  With check_only only validates.  0, or -1 with
 * one line naming the cause ("FILE:LINE: ..." for config errors). */
int eng_proxy_open(const struct eng_config *cfg, int check_only, char *err,
                   size_t err_len);

/* Prometheus text of the relay and DNS counters (malloc'd) or NULL. */
char *eng_proxy_metrics(void);

/* Stops the resolver and frees what eng_proxy_open made. */
void eng_proxy_close(void);

#endif
