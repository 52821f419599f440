/*
 * The proxy role's settings and allowlist (see proxy.h, docs/proxy.md).
 */
#include "config.h"
#include "proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>

#include "conf.h"
#include "log.h"
#include "transport/relay.h"
#include "util.h"

/* ---- allowlist ------------------------------------------------------------ */

/* Appends host:port (see proxy.h). */
int eng_allowlist_add(eng_allowlist *a, const char *host, long port)
{
    eng_allow *n;

    if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof n->host ||
        port < 1 || port > 65535)
        return -1;
    if ((n = realloc(a->v, (a->n + 1) * sizeof *n)) == NULL)
        return -1;
    a->v = n;
    snprintf(n[a->n].host, sizeof n[a->n].host, "%s", host);
    n[a->n].port = (int)port;
    a->n++;
    return 0;
}

/* 1 if host:port is on the list. */
int eng_allowlist_has(const eng_allowlist *a, const char *host, int port)
{
    size_t i;

    for (i = 0; a != NULL && i < a->n; i++)
        if (a->v[i].port == port && strcasecmp(a->v[i].host, host) == 0)
            return 1;
    return 0;
}

/* Frees the entries; a stays usable (empty). */
void eng_allowlist_free(eng_allowlist *a)
{
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

/* Splits "HOST:PORT" / "[V6]:PORT". */
int eng_proxy_split_dest(const char *dest, char *host, size_t host_len,
                         int *port)
{
    const char *colon, *h = dest;
    size_t hl;
    char *end;
    long p;

    if (dest == NULL)
        return -1;
    if (dest[0] == '[') {
        const char *close = strchr(dest, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = dest + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        if ((colon = strrchr(dest, ':')) == NULL)
            return -1;
        hl = (size_t)(colon - dest);
        if (memchr(dest, ':', hl) != NULL)
            return -1;
    }
    if (hl == 0 || hl >= host_len || colon[1] < '0' || colon[1] > '9')
        return -1;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* ---- the vsock-proxy YAML allowlist ----------------------------------------- */

/* One YAML parse: the file name for messages, the current line. */
struct yaml {
    eng_allowlist *out;
    const char *name;
    int line;
    char *err;
    size_t err_len;
    char host[256]; /* the item being read */
    long port;
    int have_host, have_port, in_item;
    int item_line; /* where the current item began */
};

static int yerr(struct yaml *y, const char *fmt, ...) SIGNER_PRINTF(2, 3);
static int yerr(struct yaml *y, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(y->err, y->err_len, "%s:%d: %s", y->name, y->line, msg);
    return -1;
}

/* Trims blanks at both ends of s in place. */
static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* A scalar, plain or quoted ('...' or "..." without escapes), into out. */
static int scalar(struct yaml *y, char *v, char *out, size_t out_len)
{
    size_t n;

    v = trim(v);
    n = strlen(v);
    if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        v++;
        n -= 2;
        if (strchr(v, '\\') != NULL)
            return yerr(y, "escapes in quoted values are not supported");
    } else if (n == 0 || strpbrk(v, "'\"{}[],&*!|>%@`") != NULL) {
        return yerr(y, "expected a plain or quoted value, found '%s'", v);
    }
    if (n == 0 || n >= out_len)
        return yerr(y, "value empty or too long");
    memcpy(out, v, n + 1);
    return 0;
}

/* "address: X" or "port: N" of the current item. */
static int yaml_pair(struct yaml *y, char *kv)
{
    char *colon = strchr(kv, ':'), val[256], *end;

    if (colon == NULL)
        return yerr(y, "expected 'address: HOST' or 'port: NUMBER'");
    *colon = '\0';
    kv = trim(kv);
    if (scalar(y, colon + 1, val, sizeof val) != 0)
        return -1;
    if (strcmp(kv, "address") == 0) {
        if (y->have_host)
            return yerr(y, "address given twice in one item");
        snprintf(y->host, sizeof y->host, "%s", val);
        y->have_host = 1;
    } else if (strcmp(kv, "port") == 0) {
        if (y->have_port)
            return yerr(y, "port given twice in one item");
        errno = 0;
        y->port = strtol(val, &end, 10);
        if (errno != 0 || *end != '\0' || y->port < 1 || y->port > 65535)
            return yerr(y, "port '%s' is not a number in 1..65535", val);
        y->have_port = 1;
    } else {
        return yerr(y, "unknown key '%s' (expected address or port)", kv);
    }
    return 0;
}

/* Ends the current item: it needs both members. */
static int yaml_item_end(struct yaml *y)
{
    if (!y->in_item)
        return 0;
    y->in_item = 0;
    if (!y->have_host || !y->have_port) {
        y->line = y->item_line;
        return yerr(y, "allowlist item without %s",
                    y->have_host ? "a port" : "an address");
    }
    if (eng_allowlist_add(y->out, y->host, y->port) != 0)
        return yerr(y, "out of memory");
    return 0;
}

/* "- {address: H, port: N}" (the rest after "{"). */
static int yaml_flow(struct yaml *y, char *s)
{
    char *close = strrchr(s, '}'), *tok, *save = NULL;

    if (close == NULL || *trim(close + 1) != '\0')
        return yerr(y, "flow mapping without a closing '}'");
    *close = '\0';
    for (tok = strtok_r(s, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save))
        if (yaml_pair(y, tok) != 0)
            return -1;
    return yaml_item_end(y);
}

/* One line after "allowlist:"; indent is its leading blanks. */
static int yaml_line(struct yaml *y, char *s, size_t indent)
{
    if (s[0] == '-' && (s[1] == ' ' || s[1] == '\0')) {
        if (yaml_item_end(y) != 0)
            return -1;
        y->in_item = 1;
        y->item_line = y->line;
        y->have_host = y->have_port = 0;
        s = trim(s + 1);
        if (s[0] == '{')
            return yaml_flow(y, s + 1);
        return s[0] == '\0' ? 0 : yaml_pair(y, s);
    }
    if (indent == 0)
        return yerr(y, "unexpected '%s' (only 'allowlist:' is read)", s);
    if (!y->in_item)
        return yerr(y, "expected a list item '- {address: ..., port: ...}'");
    return yaml_pair(y, s);
}

/* Parses the vsock-proxy allowlist YAML (see proxy.h). */
int eng_allowlist_parse_yaml(eng_allowlist *out, const char *text,
                             const char *name, char *err, size_t err_len)
{
    struct yaml y;
    char *copy = strdup(text), *line, *save = NULL;
    int seen_key = 0, rc = 0;

    memset(&y, 0, sizeof y);
    y.out = out;
    y.name = name;
    y.err = err;
    y.err_len = err_len;
    if (copy == NULL)
        return yerr(&y, "out of memory");
    for (line = copy; line != NULL && rc == 0; line = save) {
        char *nl = strchr(line, '\n'), *hash, *s;
        save = nl ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        y.line++;
        if ((hash = strchr(line, '#')) != NULL &&
            (hash == line || hash[-1] == ' ' || hash[-1] == '\t'))
            *hash = '\0';
        if (strchr(line, '\t') != NULL)
            rc = yerr(&y, "tabs are not allowed in YAML indentation");
        else if (*(s = trim(line)) == '\0' || strcmp(s, "---") == 0)
            continue;
        else if (!seen_key && s == line && strcmp(s, "allowlist:") == 0)
            seen_key = 1;
        else if (!seen_key)
            rc = yerr(&y, "expected 'allowlist:' first, found '%s'", s);
        else
            rc = yaml_line(&y, s, (size_t)(s - line));
    }
    if (rc == 0 && (rc = yaml_item_end(&y)) == 0 && !seen_key)
        rc = yerr(&y, "no 'allowlist:' key");
    free(copy);
    return rc;
}

/* ---- the role's settings ------------------------------------------------------ */

/* What eng_proxy_open made, kept while the server runs. */
static struct {
    eng_allowlist allow;
    eng_dns *dns;
    char **hosts;
    int *ports;
    size_t n;
    char **ns;
    size_t n_ns;
} g_px;

/* "FILE:LINE: msg" for setting s. */
static int perr(const eng_config *cfg, const config_setting_t *s, char *err,
                size_t err_len, const char *fmt, ...) SIGNER_PRINTF(5, 6);
static int perr(const eng_config *cfg, const config_setting_t *s, char *err,
                size_t err_len, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s != NULL && config_setting_source_line(s) > 0)
        snprintf(err, err_len, "%s:%u: %s",
                 config_setting_source_file(s) ? config_setting_source_file(s)
                                               : cfg->file,
                 config_setting_source_line(s), msg);
    else
        snprintf(err, err_len, "%s: %s", cfg->file, msg);
    return -1;
}

struct px_settings {
    int connect_ms, idle_ms, ttl_max;
    long long buffer;
};

/* An optional integer member of g within [lo, hi]. */
static int px_int(const eng_config *cfg, const config_setting_t *g,
                  const char *name, long long lo, long long hi, long long *v,
                  char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    int t;

    if (s == NULL)
        return 0;
    t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return perr(cfg, s, err, err_len, "proxy.%s must be an integer",
                    name);
    *v = config_setting_get_int64(s);
    if (*v < lo || *v > hi)
        return perr(cfg, s, err, err_len, "proxy.%s = %lld is out of range "
                    "[%lld, %lld]", name, *v, lo, hi);
    return 0;
}

/* allowlist = ( { address = "H"; port = N; }, ... ) */
static int px_allowlist(const eng_config *cfg, const config_setting_t *g,
                        char *err, size_t err_len)
{
    const config_setting_t *l = config_setting_get_member(g, "allowlist");
    int i, n;

    if (l == NULL)
        return 0;
    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return perr(cfg, l, err, err_len, "proxy.allowlist must be a list ( "
                    "{ address = \"HOST\"; port = N; }, ... )");
    n = config_setting_length(l);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        const char *host = NULL;
        int port = 0;
        if (config_setting_type(e) != CONFIG_TYPE_GROUP ||
            config_setting_length(e) != 2 ||
            !config_setting_lookup_string(e, "address", &host) ||
            !config_setting_lookup_int(e, "port", &port))
            return perr(cfg, e, err, err_len, "proxy.allowlist[%d] must be "
                        "{ address = \"HOST\"; port = N; }", i);
        if (eng_allowlist_add(&g_px.allow, host, port) != 0)
            return perr(cfg, e, err, err_len, "proxy.allowlist[%d]: invalid "
                        "address or port %d", i, port);
    }
    return 0;
}

/* Reads a text file of at most 1 MiB, NUL-terminated; 0 or -1. */
static int read_text(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n;

    *out = NULL;
    if (f == NULL)
        return -1;
    if ((buf = malloc((1u << 20) + 1)) != NULL) {
        n = fread(buf, 1, 1u << 20, f);
        if (ferror(f) || !feof(f) || memchr(buf, '\0', n) != NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    *out = buf;
    return buf != NULL ? 0 : -1;
}

/* allowlist_file = "vsock-proxy.yaml" (relative to the config's dir). */
static int px_allowlist_file(const eng_config *cfg, const config_setting_t *g,
                             char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, "allowlist_file");
    char *path, *text = NULL;
    int rc;

    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return perr(cfg, s, err, err_len, "proxy.allowlist_file must be a "
                    "string");
    if ((path = eng_path_join(cfg->dir, config_setting_get_string(s))) ==
        NULL)
        return perr(cfg, s, err, err_len, "out of memory");
    if (read_text(path, &text) != 0) {
        rc = perr(cfg, s, err, err_len, "proxy.allowlist_file %s: cannot be "
                  "read (missing, over 1 MiB or not text)", path);
    } else {
        rc = eng_allowlist_parse_yaml(&g_px.allow, text, path, err, err_len);
    }
    free(text);
    free(path);
    return rc;
}

/* nameservers = [ "IP[:PORT]", ... ] */
static int px_nameservers(const eng_config *cfg, const config_setting_t *g,
                          char *err, size_t err_len)
{
    const config_setting_t *a = config_setting_get_member(g, "nameservers");
    int i, n;

    if (a == NULL)
        return 0;
    if (config_setting_type(a) != CONFIG_TYPE_ARRAY)
        return perr(cfg, a, err, err_len, "proxy.nameservers must be an "
                    "array of strings [ \"IP[:PORT]\", ... ]");
    n = config_setting_length(a);
    if ((g_px.ns = calloc((size_t)n + 1, sizeof *g_px.ns)) == NULL)
        return perr(cfg, a, err, err_len, "out of memory");
    for (i = 0; i < n; i++) {
        const char *v = config_setting_get_string_elem(a, i);
        if (v == NULL || (g_px.ns[g_px.n_ns] = strdup(v)) == NULL)
            return perr(cfg, a, err, err_len, "proxy.nameservers[%d] must be "
                        "a string", i);
        g_px.n_ns++;
    }
    return 0;
}

/* Reads the proxy group (every member checked) into st and g_px. */
static int px_settings(const eng_config *cfg, struct px_settings *st,
                       char *err, size_t err_len)
{
    static const char *const keys[] = {
        "allowlist", "allowlist_file", "connect_timeout_ms", "idle_timeout_ms",
        "buffer_bytes", "dns_ttl_max_seconds", "nameservers", NULL};
    const config_setting_t *g =
        config_setting_get_member(config_root_setting(&cfg->lc), "proxy");
    long long v;

    st->connect_ms = 5000;
    st->idle_ms = 300000;
    st->ttl_max = 60;
    st->buffer = 64 * 1024;
    if (g == NULL)
        return perr(cfg, NULL, err, err_len, "role \"proxy\" needs a proxy "
                    "group with an allowlist (see conf/proxy.conf)");
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return perr(cfg, g, err, err_len, "'proxy' must be a group { ... }");
    if (eng_config_check_keys(cfg, g, keys, "proxy", err, err_len) != 0)
        return -1;
#define PX_INT(name, lo, hi, dst)                                            \
    v = (long long)(dst);                                                    \
    if (px_int(cfg, g, name, lo, hi, &v, err, err_len) != 0)                 \
        return -1;                                                           \
    dst = v
    PX_INT("connect_timeout_ms", 10, 600000, st->connect_ms);
    PX_INT("idle_timeout_ms", 10, 86400000, st->idle_ms);
    PX_INT("dns_ttl_max_seconds", 1, 86400, st->ttl_max);
    PX_INT("buffer_bytes", 4096, 16 << 20, st->buffer);
#undef PX_INT
    if (px_allowlist(cfg, g, err, err_len) != 0 ||
        px_allowlist_file(cfg, g, err, err_len) != 0 ||
        px_nameservers(cfg, g, err, err_len) != 0)
        return -1;
    if (g_px.allow.n == 0)
        return perr(cfg, g, err, err_len, "proxy: the allowlist is empty "
                    "(set proxy.allowlist or proxy.allowlist_file)");
    return 0;
}

/* Every relay listener's upstream, checked against the allowlist. */
static int px_destinations(const eng_config *cfg, char *err, size_t err_len)
{
    size_t i, relays = 0;
    char host[256];
    int port;

    g_px.n = cfg->n_listen;
    g_px.hosts = calloc(cfg->n_listen + 1, sizeof *g_px.hosts);
    g_px.ports = calloc(cfg->n_listen + 1, sizeof *g_px.ports);
    if (g_px.hosts == NULL || g_px.ports == NULL)
        return perr(cfg, NULL, err, err_len, "out of memory");
    for (i = 0; i < cfg->n_listen; i++) {
        const eng_listen_spec *l = &cfg->listen[i];
        if (l->proto != ENG_PROTO_RELAY)
            continue;
        relays++;
        if (eng_proxy_split_dest(l->upstream, host, sizeof host, &port) != 0)
            return perr(cfg, NULL, err, err_len, "listener %s: upstream '%s' "
                        "is not HOST:PORT", l->address,
                        l->upstream ? l->upstream : "");
        if (!eng_allowlist_has(&g_px.allow, host, port))
            return perr(cfg, NULL, err, err_len, "listener %s: upstream "
                        "%s:%d is not on the allowlist (proxy.allowlist, "
                        "proxy.allowlist_file): refused", l->address, host,
                        port);
        if ((g_px.hosts[i] = strdup(host)) == NULL)
            return perr(cfg, NULL, err, err_len, "out of memory");
        g_px.ports[i] = port;
    }
    if (relays == 0)
        return perr(cfg, NULL, err, err_len, "role \"proxy\" needs a listener "
                    "with protocol = \"relay\" and an upstream");
    return 0;
}

/* See proxy.h. */
int eng_proxy_open(const eng_config *cfg, int check_only, char *err,
                   size_t err_len)
{
    struct px_settings st;
    eng_relay_conf rc;

    memset(&g_px, 0, sizeof g_px);
    if (px_settings(cfg, &st, err, err_len) != 0 ||
        px_destinations(cfg, err, err_len) != 0)
        goto fail;
    if (check_only)
        return 0;
    g_px.dns = eng_dns_new(st.ttl_max, g_px.ns, g_px.n_ns, err, err_len);
    if (g_px.dns == NULL)
        goto fail;
    memset(&rc, 0, sizeof rc);
    rc.hosts = g_px.hosts;
    rc.ports = g_px.ports;
    rc.n = g_px.n;
    rc.connect_timeout_ms = st.connect_ms;
    rc.idle_timeout_ms = st.idle_ms;
    rc.buffer_bytes = (size_t)st.buffer;
    rc.dns = g_px.dns;
    rc.allow = &g_px.allow;
    eng_relay_configure(&rc);
    eng_log(SIGNER_LOG_INFO, "proxy: %zu allowlisted destinations, connect "
            "timeout %d ms, idle timeout %d ms, %lld-byte buffers",
            g_px.allow.n, st.connect_ms, st.idle_ms, st.buffer);
    return 0;
fail:
    eng_proxy_close();
    return -1;
}

/* Frees what eng_proxy_open made. */
void eng_proxy_close(void)
{
    size_t i;

    eng_relay_configure(NULL);
    eng_dns_free(g_px.dns);
    for (i = 0; g_px.hosts != NULL && i < g_px.n; i++)
        free(g_px.hosts[i]);
    for (i = 0; i < g_px.n_ns; i++)
        free(g_px.ns[i]);
    free(g_px.ns);
    free(g_px.hosts);
    free(g_px.ports);
    eng_allowlist_free(&g_px.allow);
    memset(&g_px, 0, sizeof g_px);
}

/* Prometheus text of the relay and DNS counters. */
char *eng_proxy_metrics(void)
{
    eng_relay_stats s;
    uint64_t res = 0, fails = 0;
    char *out = malloc(6144);

    if (out == NULL)
        return NULL;
    eng_relay_stats_get(&s);
    eng_dns_counts(g_px.dns, &res, &fails);
    snprintf(out, 6144,
             "# HELP signer_proxy_connections_accepted_total Relay connections accepted.\n"
             "# TYPE signer_proxy_connections_accepted_total counter\n"
             "signer_proxy_connections_accepted_total %llu\n"
             "# HELP signer_proxy_connections_active Relay connections open.\n"
             "# TYPE signer_proxy_connections_active gauge\n"
             "signer_proxy_connections_active %llu\n"
             "# HELP signer_proxy_connections_refused_total Relay connections refused (destination not allowlisted).\n"
             "# TYPE signer_proxy_connections_refused_total counter\n"
             "signer_proxy_connections_refused_total %llu\n"
             "# HELP signer_proxy_upstream_connect_failures_total Upstream connects that failed (refused, unreachable, unresolved).\n"
             "# TYPE signer_proxy_upstream_connect_failures_total counter\n"
             "signer_proxy_upstream_connect_failures_total %llu\n"
             "# HELP signer_proxy_upstream_connect_timeouts_total Upstream connects that took longer than connect_timeout_ms.\n"
             "# TYPE signer_proxy_upstream_connect_timeouts_total counter\n"
             "signer_proxy_upstream_connect_timeouts_total %llu\n"
             "# HELP signer_proxy_idle_timeouts_total Relay connections closed after idle_timeout_ms without a byte.\n"
             "# TYPE signer_proxy_idle_timeouts_total counter\n"
             "signer_proxy_idle_timeouts_total %llu\n"
             "# HELP signer_proxy_bytes_total Bytes relayed (up: client to upstream).\n"
             "# TYPE signer_proxy_bytes_total counter\n"
             "signer_proxy_bytes_total{direction=\"up\"} %llu\n"
             "signer_proxy_bytes_total{direction=\"down\"} %llu\n"
             "# HELP signer_proxy_buffered_bytes_max Most bytes one direction of one connection held.\n"
             "# TYPE signer_proxy_buffered_bytes_max gauge\n"
             "signer_proxy_buffered_bytes_max %llu\n"
             "# HELP signer_proxy_dns_resolutions_total Successful DNS resolutions.\n"
             "# TYPE signer_proxy_dns_resolutions_total counter\n"
             "signer_proxy_dns_resolutions_total %llu\n"
             "# HELP signer_proxy_dns_failures_total Failed DNS resolutions.\n"
             "# TYPE signer_proxy_dns_failures_total counter\n"
             "signer_proxy_dns_failures_total %llu\n",
             (unsigned long long)s.accepted, (unsigned long long)s.active,
             (unsigned long long)s.refused,
             (unsigned long long)s.connect_failures,
             (unsigned long long)s.connect_timeouts,
             (unsigned long long)s.idle_timeouts,
             (unsigned long long)s.bytes_up, (unsigned long long)s.bytes_down,
             (unsigned long long)s.buffered_high, (unsigned long long)res,
             (unsigned long long)fails);
    return out;
}
