/* The config's gateway group (conf/gateway.conf, docs/gateway.md). */
#ifndef ENG_GATEWAY_GWCONF_H
#define ENG_GATEWAY_GWCONF_H

#include <stddef.h>

#include "conf.h"

typedef struct eng_gw_conf {
    char **enclaves;       /* endpoints: "vsock:CID:PORT", "HOST:PORT", "unix:P" */
    size_t n_enclaves;
    int deadline_ms;       /* per forwarded request (default 5000) */
    int reconnect_ms;      /* between attempts to a down enclave (500) */
    int health_ms;         /* idle probe period (5000; 0 off) */
    int forward_credentials; /* attach AWS credentials to each frame */
    char *region;          /* for the credential chain (STS) */
    double client_rate;    /* requests per second per client (0: off) */
    double client_burst;   /* bucket size */
} eng_gw_conf;

/* Reads cfg's gateway group strictly (unknown keys and wrong types are
 * errors naming FILE:LINE).  0, or -1 with err. */
int eng_gw_conf_load(eng_gw_conf *gc, const eng_config *cfg, char *err,
                     size_t err_len);
void eng_gw_conf_free(eng_gw_conf *gc);

/* Appends s[0..n) to the malloc'd string out (length *len, capacity
 * *cap); NULL (out freed) on ENOMEM. */
char *eng_gw_append(char *out, size_t *len, size_t *cap, const char *s,
                    size_t n);

#endif
