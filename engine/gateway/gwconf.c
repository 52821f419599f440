/* The gateway group of the config (gwconf.h). */
#include "config.h"
#include "gateway/gwconf.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/record_cache.h"
#include "transport/tls.h"
#include "util.h"

/* "FILE:LINE: message" for setting s (or the file). */
static int gw_fail(const eng_config *cfg, const config_setting_t *s,
                   char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int gw_fail(const eng_config *cfg, const config_setting_t *s,
                   char *err, size_t err_len, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, err_len, "%s:%d: %s", cfg->file,
             s ? (int)config_setting_source_line(s) : 0, msg);
    return -1;
}

/* An optional integer member in [lo, hi]. */
static int gw_int(const eng_config *cfg, const config_setting_t *g,
                  const char *name, int lo, int hi, int *out, char *err,
                  size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    long long v;
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_INT &&
        config_setting_type(s) != CONFIG_TYPE_INT64)
        return gw_fail(cfg, s, err, err_len, "gateway.%s: must be an integer",
                       name);
    v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return gw_fail(cfg, s, err, err_len,
                       "gateway.%s: %lld is outside %d..%d", name, v, lo, hi);
    *out = (int)v;
    return 0;
}

static int gw_keys(const eng_config *cfg, const config_setting_t *g,
                   char *err, size_t err_len)
{
    static const char *const keys[] = {
        "enclaves",   "deadline_ms", "reconnect_ms", "health_ms",
        "forward_credentials", "region", "client_rate", "client_burst",
        "record_cache_max_entries", NULL};
    int i, n = config_setting_length(g);
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        const char *const *k = keys;
        while (*k != NULL && (name == NULL || strcmp(*k, name) != 0))
            k++;
        if (*k == NULL)
            return gw_fail(cfg, m, err, err_len,
                           "unknown setting 'gateway.%s'", name ? name : "?");
    }
    return 0;
}

static int gw_enclaves(eng_gw_conf *gc, const eng_config *cfg,
                       const config_setting_t *g, char *err, size_t err_len)
{
    const config_setting_t *l = config_setting_get_member(g, "enclaves");
    int i, n;
    if (l == NULL || (!config_setting_is_list(l) &&
                      !config_setting_is_array(l)) ||
        (n = config_setting_length(l)) == 0)
        return gw_fail(cfg, l ? l : g, err, err_len,
                       "gateway.enclaves: a list of one or more endpoints, "
                       "e.g. [\"vsock:16:5000\"]");
    if ((gc->enclaves = calloc((size_t)n, sizeof *gc->enclaves)) == NULL)
        return gw_fail(cfg, l, err, err_len, "out of memory");
    for (i = 0; i < n; i++) {
        const char *v = config_setting_get_string_elem(l, i);
        if (v == NULL)
            return gw_fail(cfg, l, err, err_len,
                           "gateway.enclaves[%d]: must be a string", i);
        if ((gc->enclaves[i] = strdup(v)) == NULL)
            return gw_fail(cfg, l, err, err_len, "out of memory");
        gc->n_enclaves++;
    }
    return 0;
}

/* Floats given as integers or floats. */
static int gw_num(const eng_config *cfg, const config_setting_t *g,
                  const char *name, double *out, char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    int t;
    if (s == NULL)
        return 0;
    t = config_setting_type(s);
    if (t == CONFIG_TYPE_FLOAT)
        *out = config_setting_get_float(s);
    else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        *out = (double)config_setting_get_int64(s);
    else
        return gw_fail(cfg, s, err, err_len, "gateway.%s: must be a number",
                       name);
    if (*out < 0 || *out > 1e6)
        return gw_fail(cfg, s, err, err_len,
                       "gateway.%s: outside 0..1000000", name);
    return 0;
}

int eng_gw_conf_load(eng_gw_conf *gc, const eng_config *cfg, char *err,
                     size_t err_len)
{
    const config_setting_t *g = config_lookup(&cfg->lc, "gateway"), *s;
    const char *region = "us-east-1";
    memset(gc, 0, sizeof *gc);
    gc->deadline_ms = 5000;
    gc->reconnect_ms = 500;
    gc->health_ms = 5000;
    gc->record_cache_max_entries = ENG_GW_RCACHE_DEFAULT_ENTRIES;
    if (g == NULL || !config_setting_is_group(g))
        return gw_fail(cfg, g, err, err_len,
                       "role gateway needs a gateway = { enclaves = "
                       "[\"vsock:16:5000\"]; } group");
    if (gw_keys(cfg, g, err, err_len) != 0 ||
        gw_enclaves(gc, cfg, g, err, err_len) != 0 ||
        gw_int(cfg, g, "deadline_ms", 10, 600000, &gc->deadline_ms, err,
               err_len) != 0 ||
        gw_int(cfg, g, "reconnect_ms", 10, 60000, &gc->reconnect_ms, err,
               err_len) != 0 ||
        gw_int(cfg, g, "health_ms", 0, 600000, &gc->health_ms, err,
               err_len) != 0 ||
        gw_int(cfg, g, "record_cache_max_entries", 0,
               ENG_GW_RCACHE_MAX_ENTRIES, &gc->record_cache_max_entries, err,
               err_len) != 0 ||
        gw_num(cfg, g, "client_rate", &gc->client_rate, err, err_len) != 0 ||
        gw_num(cfg, g, "client_burst", &gc->client_burst, err, err_len) != 0)
        return -1;
    if ((s = config_setting_get_member(g, "forward_credentials")) != NULL) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return gw_fail(cfg, s, err, err_len,
                           "gateway.forward_credentials: true or false");
        gc->forward_credentials = config_setting_get_bool(s);
    }
    if ((s = config_setting_get_member(g, "region")) != NULL &&
        (region = config_setting_get_string(s)) == NULL)
        return gw_fail(cfg, s, err, err_len, "gateway.region: a string");
    if ((gc->region = strdup(region)) == NULL)
        return gw_fail(cfg, g, err, err_len, "out of memory");
    if (gc->client_burst < gc->client_rate)
        gc->client_burst = gc->client_rate;
    return 0;
}

void eng_gw_conf_free(eng_gw_conf *gc)
{
    size_t i;
    for (i = 0; i < gc->n_enclaves; i++)
        free(gc->enclaves[i]);
    free(gc->enclaves);
    free(gc->region);
    memset(gc, 0, sizeof *gc);
}

char *eng_gw_append(char *out, size_t *len, size_t *cap, const char *s,
                    size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *p = realloc(out, nc);
        if (p == NULL) {
            free(out);
            return NULL;
        }
        out = p;
        *cap = nc;
    }
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return out;
}

/* ---- the tls group ------------------------------------------------------ */

/* A path member resolved against the config's directory. */
static int tls_path(const eng_config *cfg, const config_setting_t *g,
                    const char *name, int required, char **out, char *err,
                    size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = s ? config_setting_get_string(s) : NULL;
    if (s == NULL && !required)
        return 0;
    if (v == NULL)
        return gw_fail(cfg, s ? s : g, err, err_len,
                       "tls.%s: a file name is required", name);
    if ((*out = eng_path_join(cfg->dir, v)) == NULL)
        return gw_fail(cfg, s, err, err_len, "out of memory");
    return 0;
}

static int tls_allow(eng_gw_tls *t, const eng_config *cfg,
                     const config_setting_t *g, char *err, size_t err_len)
{
    const config_setting_t *l = config_setting_get_member(g, "allow");
    int i, n = l ? config_setting_length(l) : 0;
    if (l != NULL && !config_setting_is_array(l) && !config_setting_is_list(l))
        return gw_fail(cfg, l, err, err_len,
                       "tls.allow: a list of subjects or \"sha256:HEX\"");
    if ((t->allow = calloc((size_t)n + 1, sizeof *t->allow)) == NULL)
        return gw_fail(cfg, g, err, err_len, "out of memory");
    for (i = 0; i < n; i++) {
        const char *v = config_setting_get_string_elem(l, i);
        if (v == NULL || (t->allow[i] = strdup(v)) == NULL)
            return gw_fail(cfg, l, err, err_len,
                           "tls.allow[%d]: must be a string", i);
    }
    return 0;
}

int eng_gw_tls_load(eng_gw_tls *t, const eng_config *cfg, char *err,
                    size_t err_len)
{
    static const char *const keys[] = {"cert", "key", "client_ca", "allow",
                                       NULL};
    const config_setting_t *g = config_lookup(&cfg->lc, "tls");
    memset(t, 0, sizeof *t);
    if (g == NULL)
        return 0;
    if (!config_setting_is_group(g))
        return gw_fail(cfg, g, err, err_len, "tls: must be a group");
    if (eng_config_check_keys(cfg, g, keys, "tls", err, err_len) != 0 ||
        tls_path(cfg, g, "cert", 1, &t->cert, err, err_len) != 0 ||
        tls_path(cfg, g, "key", 1, &t->key, err, err_len) != 0 ||
        tls_path(cfg, g, "client_ca", 0, &t->client_ca, err, err_len) != 0 ||
        tls_allow(t, cfg, g, err, err_len) != 0)
        return -1;
    return 1;
}

void eng_gw_tls_free(eng_gw_tls *t)
{
    size_t i;
    free(t->cert);
    free(t->key);
    free(t->client_ca);
    for (i = 0; t->allow != NULL && t->allow[i] != NULL; i++)
        free(t->allow[i]);
    free(t->allow);
    memset(t, 0, sizeof *t);
}

int eng_gw_tls_open(void **ctx, const eng_config *cfg, char *err,
                    size_t err_len)
{
    eng_gw_tls t;
    eng_tls_conf tc;
    size_t i;
    int https = 0, r;
    *ctx = NULL;
    for (i = 0; i < cfg->n_listen; i++)
        https |= cfg->listen[i].proto == ENG_PROTO_HTTPS;
    if (!https)
        return 0;
    if ((r = eng_gw_tls_load(&t, cfg, err, err_len)) <= 0) {
        if (r == 0)
            snprintf(err, err_len, "%s: an https listener needs a tls = { "
                     "cert = \"...\"; key = \"...\"; } group", cfg->file);
        eng_gw_tls_free(&t);
        return -1;
    }
    tc.cert_file = t.cert;
    tc.key_file = t.key;
    tc.client_ca = t.client_ca;
    tc.allow = (const char *const *)t.allow;
    *ctx = eng_tls_ctx_new(&tc, err, err_len);
    eng_gw_tls_free(&t);
    return *ctx != NULL ? 0 : -1;
}
