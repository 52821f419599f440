/* Per-client token buckets of the gateway (docs/gateway.md): a client is
 * its mTLS identity or its source address.  Thread-safe. */
#ifndef ENG_GATEWAY_THROTTLE_H
#define ENG_GATEWAY_THROTTLE_H

typedef struct eng_gw_throttle eng_gw_throttle;

/* rate tokens per second, burst tokens at most; rate <= 0 turns it off. */
eng_gw_throttle *eng_gw_throttle_new(double rate, double burst);

/* Takes a token for client ("ip:port" loses its port; a "tls:" identity
 * is used as is).  0 if allowed, else the seconds to wait (>= 1). */
int eng_gw_throttle_take(eng_gw_throttle *t, const char *client);

void eng_gw_throttle_free(eng_gw_throttle *t);

#endif
