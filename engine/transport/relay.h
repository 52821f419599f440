/*
 * The byte relay protocol (listeners with protocol "relay", the proxy
 * role, docs/proxy.md): each accepted connection is joined to a new
 * upstream TCP connection to its listener's destination and bytes are
 * copied both ways, bounded by buffer_bytes a direction, until both sides
 * have ended.  TLS passes through untouched.
 */
#ifndef ENG_RELAY_H
#define ENG_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "proxy.h"

typedef struct eng_relay_conf {
    char **hosts;           /* per listener index: destination host, or NULL */
    int *ports;
    size_t n;
    int connect_timeout_ms; /* resolve + connect */
    int idle_timeout_ms;    /* no byte either way */
    size_t buffer_bytes;    /* per direction */
    eng_dns *dns;
    const eng_allowlist *allow; /* checked again for every connection */
} eng_relay_conf;

/* Sets the relay's configuration (before the server starts; the pointers
 * must stay valid while it runs).  NULL clears it. */
void eng_relay_configure(const eng_relay_conf *rc);

typedef struct eng_relay_stats {
    uint64_t accepted, active, refused, connect_failures, connect_timeouts;
    uint64_t idle_timeouts, bytes_up, bytes_down, buffered_high;
} eng_relay_stats;

/* A snapshot of the relay counters (bytes_up: client to upstream). */
void eng_relay_stats_get(eng_relay_stats *out);

#endif
