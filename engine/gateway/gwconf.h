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
    int record_cache_max_entries; /* sealed records cached (0: off) */
} eng_gw_conf;

/* Reads cfg's gateway group strictly (unknown keys and wrong types are
 * errors naming FILE:LINE).  0, or -1 with err. */
int eng_gw_conf_load(eng_gw_conf *gc, const eng_config *cfg, char *err,
                     size_t err_len);
void eng_gw_conf_free(eng_gw_conf *gc);

/* The config's tls group: { cert; key; client_ca; allow = [...]; } with
 * paths resolved against the config's directory. */
typedef struct eng_gw_tls {
    char *cert, *key, *client_ca; /* malloc'd; client_ca may be NULL */
    char **allow;                 /* NULL-ended, malloc'd */
} eng_gw_tls;

/* 1 with t filled, 0 when there is no tls group, -1 with err. */
int eng_gw_tls_load(eng_gw_tls *t, const eng_config *cfg, char *err,
                    size_t err_len);
void eng_gw_tls_free(eng_gw_tls *t);

/* Opens the SSL_CTX for https listeners when cfg has any (else *ctx is
 * NULL).  0, or -1 with err. */
int eng_gw_tls_open(void **ctx, const eng_config *cfg, char *err,
                    size_t err_len);

/* Appends s[0..n) to the malloc'd string out (length *len, capacity
 * *cap); NULL (out freed) on ENOMEM. */
char *eng_gw_append(char *out, size_t *len, size_t *cap, const char *s,
                    size_t n);

#endif
