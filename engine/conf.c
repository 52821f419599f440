#include "config.h"
#include "conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "log.h"
#include "sealer/sealer.h"
#include "util.h"

/* Formats "FILE:LINE: msg" for setting s (or the file when s is NULL). */
static int fail(const eng_config *c, const config_setting_t *s, char *err,
                size_t err_len, const char *fmt, ...) SIGNER_PRINTF(5, 6);
static int fail(const eng_config *c, const config_setting_t *s, char *err,
                size_t err_len, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    const char *file = c->file;
    int line = 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s != NULL) {
        if (config_setting_source_file(s) != NULL)
            file = config_setting_source_file(s);
        line = (int)config_setting_source_line(s);
    }
    if (line > 0)
        snprintf(err, err_len, "%s:%d: %s", file, line, msg);
    else
        snprintf(err, err_len, "%s: %s", file, msg);
    return -1;
}

static const char *type_name(int t)
{
    switch (t) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "an unknown type";
    }
}

int eng_config_check_keys(const eng_config *c, const config_setting_t *g,
                          const char *const *allowed, const char *where,
                          char *err, size_t err_len)
{
    int i, n = config_setting_length(g);
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        const char *const *a;
        int ok = 0;
        for (a = allowed; *a != NULL; a++)
            if (name != NULL && strcmp(name, *a) == 0)
                ok = 1;
        if (!ok)
            return fail(c, m, err, err_len, "unknown setting '%s%s%s'",
                        where, where[0] ? "." : "", name ? name : "?");
    }
    return 0;
}

/* Reads an optional string member: 1 found, 0 absent, -1 wrong type. */
static int get_str(const eng_config *c, const config_setting_t *g,
                   const char *name, const char *where, char **out,
                   char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(c, s, err, err_len, "'%s%s%s' must be a string, not %s",
                    where, where[0] ? "." : "", name,
                    type_name(config_setting_type(s)));
    free(*out);
    *out = strdup(config_setting_get_string(s));
    return *out ? 1 : fail(c, s, err, err_len, "out of memory");
}

/* Reads an optional integer member within [lo, hi]. */
static int get_int(const eng_config *c, const config_setting_t *g,
                   const char *name, const char *where, long long lo,
                   long long hi, long long *out, char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    long long v;
    int t;
    if (s == NULL)
        return 0;
    t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return fail(c, s, err, err_len,
                    "'%s%s%s' must be an integer, not %s", where,
                    where[0] ? "." : "", name, type_name(t));
    v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return fail(c, s, err, err_len,
                    "'%s%s%s' = %lld is out of range [%lld, %lld]", where,
                    where[0] ? "." : "", name, v, lo, hi);
    *out = v;
    return 1;
}

static int get_group(const eng_config *c, const config_setting_t *root,
                     const char *name, const config_setting_t **out,
                     char *err, size_t err_len)
{
    const config_setting_t *s = config_setting_get_member(root, name);
    *out = NULL;
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return fail(c, s, err, err_len, "'%s' must be a group { ... }, not %s",
                    name, type_name(config_setting_type(s)));
    *out = s;
    return 1;
}

static int parse_proto(const char *p)
{
    if (strcmp(p, "http") == 0)
        return ENG_PROTO_HTTP;
    if (strcmp(p, "frames") == 0)
        return ENG_PROTO_FRAMES;
    if (strcmp(p, "https") == 0) /* the tls group has its settings */
        return ENG_PROTO_HTTPS;
    if (strcmp(p, "relay") == 0)
        return ENG_PROTO_RELAY;
    if (strcmp(p, "health") == 0)
        return ENG_PROTO_HEALTH;
    return 0;
}

static int add_listener(eng_config *c, const char *address, int proto)
{
    eng_listen_spec *n = realloc(c->listen, (c->n_listen + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    c->listen = n;
    n[c->n_listen].address = strdup(address);
    n[c->n_listen].proto = proto;
    n[c->n_listen].upstream = NULL;
    if (n[c->n_listen].address == NULL)
        return -1;
    c->n_listen++;
    return 0;
}

static void clear_listeners(eng_config *c)
{
    size_t i;
    for (i = 0; i < c->n_listen; i++) {
        free((char *)c->listen[i].address);
        free((char *)c->listen[i].upstream);
    }
    free(c->listen);
    c->listen = NULL;
    c->n_listen = 0;
}

/* A relay listener (role proxy only) needs an upstream; others have none. */
static int check_relay(const eng_config *c, const config_setting_t *e, int i,
                       int proto, const char *up, char *err, size_t err_len)
{
    int proxy = strcmp(c->role, "proxy") == 0;
    if (proto == ENG_PROTO_RELAY && !proxy)
        return fail(c, e, err, err_len, "listen[%d]: protocol \"relay\" is "
                    "only for role \"proxy\"", i);
    if (proxy && proto != ENG_PROTO_HTTP && proto != ENG_PROTO_HEALTH &&
        proto != ENG_PROTO_RELAY)
        return fail(c, e, err, err_len, "listen[%d]: role \"proxy\" serves "
                    "\"relay\" and \"health\" (or \"http\") only", i);
    if (proto == ENG_PROTO_RELAY && up == NULL)
        return fail(c, e, err, err_len, "listen[%d] (relay) needs upstream = "
                    "\"HOST:PORT\"", i);
    if (proto != ENG_PROTO_RELAY && up != NULL)
        return fail(c, e, err, err_len, "listen[%d]: upstream is only for "
                    "protocol \"relay\"", i);
    return 0;
}

static int parse_listen(eng_config *c, const config_setting_t *root,
                        char *err, size_t err_len)
{
    static const char *const keys[] = {"address", "protocol", "upstream",
                                       NULL};
    const config_setting_t *l = config_setting_get_member(root, "listen");
    int i, n;
    if (l == NULL)
        return 0;
    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return fail(c, l, err, err_len,
                    "'listen' must be a list ( { address = ...; protocol = "
                    "\"http\"; }, ... ), not %s",
                    type_name(config_setting_type(l)));
    n = config_setting_length(l);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        char *addr = NULL, *proto = NULL, *up = NULL;
        int p = ENG_PROTO_HTTP, rc = 0;
        if (config_setting_type(e) != CONFIG_TYPE_GROUP)
            return fail(c, e, err, err_len, "listen[%d] must be a group", i);
        if (eng_config_check_keys(c, e, keys, "listen[]", err, err_len) < 0)
            return -1;
        if (get_str(c, e, "address", "listen[]", &addr, err, err_len) <= 0) {
            free(addr);
            return addr ? -1
                        : fail(c, e, err, err_len,
                               "listen[%d] needs an address", i);
        }
        if (get_str(c, e, "protocol", "listen[]", &proto, err, err_len) < 0)
            rc = -1;
        else if (proto != NULL && (p = parse_proto(proto)) == 0)
            rc = fail(c, e, err, err_len,
                      "listen[%d].protocol '%s' is not \"http\", \"https\", "
                      "\"frames\", \"health\" or \"relay\"",
                      i, proto);
        if (rc == 0 && get_str(c, e, "upstream", "listen[]", &up, err,
                               err_len) < 0)
            rc = -1;
        else if (rc == 0)
            rc = check_relay(c, e, i, p, up, err, err_len);
        if (rc == 0 && add_listener(c, addr, p) < 0)
            rc = fail(c, e, err, err_len, "out of memory");
        if (rc == 0 && up != NULL)
            c->listen[c->n_listen - 1].upstream = up;
        else
            free(up);
        free(addr);
        free(proto);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* One integer setting of a group: its name, range and where it goes (an
 * int or a size_t, whichever pointer is set). */
struct int_setting {
    const char *name;
    long long lo, hi;
    int *as_int;
    size_t *as_size;
};

/* Parses group `name` of root made only of the integer settings in t[n]. */
static int parse_int_group(eng_config *c, const config_setting_t *root,
                           const char *name, const struct int_setting *t,
                           size_t n, char *err, size_t err_len)
{
    const char *keys[16];
    const config_setting_t *g;
    long long v;
    size_t i;
    int r;
    if ((r = get_group(c, root, name, &g, err, err_len)) <= 0)
        return r;
    for (i = 0; i < n && i < 15; i++)
        keys[i] = t[i].name;
    keys[i] = NULL;
    if (eng_config_check_keys(c, g, keys, name, err, err_len) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        r = get_int(c, g, t[i].name, name, t[i].lo, t[i].hi, &v, err,
                    err_len);
        if (r < 0)
            return -1;
        if (r > 0 && t[i].as_int != NULL)
            *t[i].as_int = (int)v;
        if (r > 0 && t[i].as_size != NULL)
            *t[i].as_size = (size_t)v;
    }
    return 0;
}

static int parse_limits(eng_config *c, const config_setting_t *root,
                        char *err, size_t err_len)
{
    eng_limits *l = &c->limits;
    const struct int_setting t[] = {
        {"max_body", 64, 64LL << 20, NULL, &l->max_body},
        {"max_header", 256, 1 << 20, NULL, &l->max_header},
        {"max_connections", 1, 1000000, &l->max_connections, NULL},
        {"max_pipeline", 1, 100000, &l->max_pipeline, NULL},
        {"max_inflight", 1, 10000000, &l->max_inflight, NULL},
        {"max_per_peer", 1, 1000000, &l->max_per_peer, NULL},
        {"read_timeout_ms", 10, 3600000, &l->read_timeout_ms, NULL},
        {"write_timeout_ms", 10, 3600000, &l->write_timeout_ms, NULL},
        {"idle_timeout_ms", 10, 86400000, &l->idle_timeout_ms, NULL},
        {"shutdown_timeout_ms", 0, 3600000, &l->shutdown_timeout_ms, NULL}};
    return parse_int_group(c, root, "limits", t, sizeof t / sizeof t[0], err,
                           err_len);
}

/* Reads group `name` ("sealer" or "keystore"): its type must name a row
 * (find), every other member must be a string setting that row declares. */
static int parse_backend(eng_config *c, const config_setting_t *root,
                         const char *name, eng_backend_conf *out,
                         const char *(*find)(const char *, const char *const **),
                         void (*names)(char *, size_t), char *err,
                         size_t err_len)
{
    const config_setting_t *g;
    const char *const *allowed = NULL;
    const char *keys[16];
    char list[128];
    int r, i, n;
    size_t k = 0;
    if ((r = get_group(c, root, name, &g, err, err_len)) <= 0)
        return r;
    if (get_str(c, g, "type", name, &out->type, err, err_len) < 0)
        return -1;
    if (find(out->type, &allowed) == NULL) {
        names(list, sizeof list);
        return fail(c, config_setting_get_member(g, "type"), err, err_len,
                    "%s.type '%s' is not supported (supported: %s)", name,
                    out->type, list);
    }
    keys[k++] = "type";
    for (; allowed != NULL && *allowed != NULL && k < 15; allowed++)
        keys[k++] = *allowed;
    keys[k] = NULL;
    if (eng_config_check_keys(c, g, keys, name, err, err_len) < 0)
        return -1;
    n = config_setting_length(g);
    if ((out->settings = calloc((size_t)n + 1, sizeof *out->settings)) == NULL)
        return fail(c, g, err, err_len, "out of memory");
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        eng_setting *s = &out->settings[out->n_settings];
        char *v = NULL;
        if (strcmp(config_setting_name(m), "type") == 0)
            continue;
        if (get_str(c, g, config_setting_name(m), name, &v, err, err_len) < 0)
            return -1;
        s->value = v;
        s->name = strdup(config_setting_name(m));
        out->n_settings++;
        if (s->name == NULL)
            return fail(c, m, err, err_len, "out of memory");
    }
    return 0;
}

static const char *sealer_row(const char *type, const char *const **settings)
{
    const eng_sealer_methods *m = eng_sealer_find(type);
    *settings = m ? m->row.settings : NULL;
    return m ? m->row.name : NULL;
}

static const char *keystore_row(const char *type,
                                const char *const **settings)
{
    const eng_keystore_methods *m = eng_keystore_find(type);
    *settings = m ? m->row.settings : NULL;
    return m ? m->row.name : NULL;
}

static int parse_sealer(eng_config *c, const config_setting_t *root,
                        char *err, size_t err_len)
{
    return parse_backend(c, root, "sealer", &c->sealer, sealer_row,
                         eng_sealer_names, err, err_len);
}

static int parse_keystore(eng_config *c, const config_setting_t *root,
                          char *err, size_t err_len)
{
    return parse_backend(c, root, "keystore", &c->keystore, keystore_row,
                         eng_keystore_names, err, err_len);
}

static int parse_auth(eng_config *c, const config_setting_t *root, char *err,
                      size_t err_len)
{
    const struct int_setting t[] = {
        {"hmac_window", 1, 3600, &c->hmac_window, NULL},
        {"max_failures", 1, 1000000, &c->max_failures, NULL},
        {"lockout_seconds", 0, 86400, &c->lockout_seconds, NULL}};
    return parse_int_group(c, root, "auth", t, sizeof t / sizeof t[0], err,
                           err_len);
}

static int parse_key_cache(eng_config *c, const config_setting_t *root,
                           char *err, size_t err_len)
{
    const struct int_setting t[] = {
        {"ttl_seconds", 0, 86400, &c->key_cache_ttl, NULL},
        {"max_entries", 1, 8192, &c->key_cache_max, NULL}};
    return parse_int_group(c, root, "key_cache", t, sizeof t / sizeof t[0],
                           err, err_len);
}

static int parse_plugins(eng_config *c, const config_setting_t *root,
                         char *err, size_t err_len)
{
    static const char *const keys[] = {"name", "path", "settings", NULL};
    const config_setting_t *l = config_setting_get_member(root, "plugins");
    int i, n;
    if (l == NULL)
        return 0;
    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return fail(c, l, err, err_len,
                    "'plugins' must be a list ( { name = ...; path = ...; "
                    "settings = { ... }; }, ... ), not %s",
                    type_name(config_setting_type(l)));
    n = config_setting_length(l);
    c->plugins = calloc((size_t)n + 1, sizeof *c->plugins);
    if (c->plugins == NULL)
        return fail(c, l, err, err_len, "out of memory");
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        eng_plugin_conf *p = &c->plugins[c->n_plugins];
        const config_setting_t *s;
        size_t j;
        if (config_setting_type(e) != CONFIG_TYPE_GROUP)
            return fail(c, e, err, err_len, "plugins[%d] must be a group", i);
        if (eng_config_check_keys(c, e, keys, "plugins[]", err, err_len) < 0)
            return -1;
        c->n_plugins++;
        if (get_str(c, e, "name", "plugins[]", &p->name, err, err_len) < 0 ||
            get_str(c, e, "path", "plugins[]", &p->path, err, err_len) < 0)
            return -1;
        if (p->name == NULL || p->name[0] == '\0')
            return fail(c, e, err, err_len, "plugins[%d] needs a name", i);
        if (p->path == NULL) {
            size_t len = strlen(p->name) + 4;
            p->path = malloc(len);
            if (p->path == NULL)
                return fail(c, e, err, err_len, "out of memory");
            snprintf(p->path, len, "%s.so", p->name);
        }
        for (j = 0; j + 1 < c->n_plugins; j++)
            if (strcmp(c->plugins[j].name, p->name) == 0)
                return fail(c, e, err, err_len,
                            "plugin '%s' is listed twice", p->name);
        s = config_setting_get_member(e, "settings");
        if (s != NULL && config_setting_type(s) != CONFIG_TYPE_GROUP)
            return fail(c, s, err, err_len,
                        "plugins[%d].settings must be a group { ... }", i);
        p->settings = s;
    }
    return 0;
}

static int parse_aliases(eng_config *c, const config_setting_t *root,
                         char *err, size_t err_len)
{
    const config_setting_t *g;
    int i, n, r;
    if ((r = get_group(c, root, "aliases", &g, err, err_len)) <= 0)
        return r;
    n = config_setting_length(g);
    c->aliases = calloc((size_t)n + 1, sizeof *c->aliases);
    if (c->aliases == NULL)
        return fail(c, g, err, err_len, "out of memory");
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        eng_alias *a = &c->aliases[c->n_aliases];
        if (config_setting_type(m) != CONFIG_TYPE_STRING)
            return fail(c, m, err, err_len,
                        "alias '%s' must name an operation as a string",
                        config_setting_name(m));
        a->from = strdup(config_setting_name(m));
        a->to = strdup(config_setting_get_string(m));
        c->n_aliases++;
        if (a->from == NULL || a->to == NULL)
            return fail(c, m, err, err_len, "out of memory");
    }
    return 0;
}

static int set_defaults(eng_config *c)
{
    eng_limits_default(&c->limits);
    c->log_level = SIGNER_LOG_INFO;
    c->workers = 0;
    c->hmac_window = 60;
    c->max_failures = 5;
    c->lockout_seconds = 60;
    c->key_cache_ttl = 0;
    c->key_cache_max = 4096;
    c->role = strdup("standalone");
    c->sealer.type = strdup("local");
    c->keystore.type = strdup("sqlite");
    return (c->role && c->sealer.type && c->keystore.type) ? 0 : -1;
}

/* The role is one this build has, and only the proxy has a proxy group. */
static int check_role(eng_config *c, const config_setting_t *root, char *err,
                      size_t err_len)
{
    static const char *const roles[] = {"standalone", "enclave", "gateway",
                                        "proxy", NULL};
    size_t i;
    for (i = 0; roles[i] != NULL && strcmp(c->role, roles[i]) != 0; i++)
        ;
    if (roles[i] == NULL)
        return fail(c, config_setting_get_member(root, "role"), err, err_len,
                    "role '%s' is not available in this build (available: "
                    "\"standalone\", \"enclave\", \"gateway\", \"proxy\")",
                    c->role);
    if ((strcmp(c->role, "proxy") == 0) !=
        (config_setting_get_member(root, "proxy") != NULL))
        return fail(c, root, err, err_len, "the proxy group is for role "
                    "\"proxy\" (which needs it) only");
    return 0;
}

static int parse_root(eng_config *c, char *err, size_t err_len)
{
    static const char *const keys[] = {
        "role",   "data_dir", "plugin_dir", "log_level", "workers",
        "io_loops", "listen", "limits",   "sealer",     "keystore",  "auth",
        "key_cache", "plugins", "aliases",  "gateway", "tls", "proxy",
        "attestation", "emulated_nsm", "trust_client_field",
        /* enclave role: engine/enclave.c */
        NULL};
    const config_setting_t *root = config_root_setting(&c->lc);
    char *s = NULL;
    long long v;
    int r;

    if (set_defaults(c) < 0)
        return fail(c, NULL, err, err_len, "out of memory");
    if (eng_config_check_keys(c, root, keys, "", err, err_len) < 0)
        return -1;
    if (get_str(c, root, "role", "", &c->role, err, err_len) < 0)
        return -1;
    if (check_role(c, root, err, err_len) < 0)
        return -1;
    if ((r = get_str(c, root, "data_dir", "", &s, err, err_len)) < 0)
        return -1;
    if (r > 0) {
        c->data_dir = eng_path_join(c->dir, s);
        free(s);
        s = NULL;
    } else {
        c->data_dir = eng_path_join(c->dir, "data");
    }
    if ((r = get_str(c, root, "plugin_dir", "", &s, err, err_len)) < 0)
        return -1;
    if (r > 0) {
        c->plugin_dir = eng_path_join(c->dir, s);
        free(s);
        s = NULL;
    }
    if ((r = get_str(c, root, "log_level", "", &s, err, err_len)) < 0)
        return -1;
    if (r > 0) {
        c->log_level = eng_log_level_parse(s);
        if (c->log_level < 0) {
            r = fail(c, config_setting_get_member(root, "log_level"), err,
                     err_len,
                     "log_level '%s' is not error, warn, info or debug", s);
            free(s);
            return r;
        }
        free(s);
    }
    if ((r = get_int(c, root, "workers", "", 0, 256, &v, err, err_len)) < 0)
        return -1;
    if (r > 0)
        c->workers = (int)v;
    if ((r = get_int(c, root, "io_loops", "", 0, 256, &v, err, err_len)) < 0)
        return -1;
    if (r > 0)
        c->io_loops = (int)v;
    if (parse_listen(c, root, err, err_len) < 0 ||
        parse_limits(c, root, err, err_len) < 0 ||
        parse_sealer(c, root, err, err_len) < 0 ||
        parse_keystore(c, root, err, err_len) < 0 ||
        parse_auth(c, root, err, err_len) < 0 ||
        parse_key_cache(c, root, err, err_len) < 0 ||
        parse_plugins(c, root, err, err_len) < 0 ||
        parse_aliases(c, root, err, err_len) < 0)
        return -1;
    if (c->n_listen == 0 && add_listener(c, "127.0.0.1:8080",
                                         ENG_PROTO_HTTP) < 0)
        return fail(c, NULL, err, err_len, "out of memory");
    if (c->n_plugins == 0 && strcmp(c->role, "proxy") != 0)
        return fail(c, root, err, err_len,
                    "no plugins configured: add plugins = ( { name = \"eth\"; "
                    "} );");
    return 0;
}

static int load_common(eng_config *c, int ok, char *err, size_t err_len)
{
    if (!ok) {
        const char *f = config_error_file(&c->lc);
        if (config_error_type(&c->lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, err_len, "%s: cannot read the config file", c->file);
        else
            snprintf(err, err_len, "%s:%d: %s", f ? f : c->file,
                     config_error_line(&c->lc), config_error_text(&c->lc));
        return -1;
    }
    return parse_root(c, err, err_len);
}

int eng_config_load(eng_config *c, const char *file, char *err,
                    size_t err_len)
{
    memset(c, 0, sizeof *c);
    config_init(&c->lc);
    c->file = strdup(file);
    c->dir = eng_dirname(file);
    if (c->file == NULL || c->dir == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    config_set_include_dir(&c->lc, c->dir);
    return load_common(c, config_read_file(&c->lc, file) == CONFIG_TRUE, err,
                       err_len);
}

int eng_config_load_string(eng_config *c, const char *text, const char *dir,
                           char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    config_init(&c->lc);
    c->file = strdup("<string>");
    c->dir = strdup(dir ? dir : ".");
    if (c->file == NULL || c->dir == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return load_common(c, config_read_string(&c->lc, text) == CONFIG_TRUE,
                       err, err_len);
}

int eng_config_add_listen(eng_config *c, const char *spec, int *replaced,
                          char *err, size_t err_len)
{
    int proto = ENG_PROTO_HTTP;
    const char *addr = spec;
    if (strncmp(spec, "http=", 5) == 0) {
        addr = spec + 5;
    } else if (strncmp(spec, "frames=", 7) == 0) {
        proto = ENG_PROTO_FRAMES;
        addr = spec + 7;
    } else if (strncmp(spec, "health=", 7) == 0) {
        proto = ENG_PROTO_HEALTH;
        addr = spec + 7;
    }
    if (addr[0] == '\0') {
        snprintf(err, err_len, "--listen '%s': empty address", spec);
        return -1;
    }
    if (!*replaced) {
        clear_listeners(c);
        *replaced = 1;
    }
    if (add_listener(c, addr, proto) < 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

int eng_config_set_data_dir(eng_config *c, const char *dir)
{
    char *d = strdup(dir);
    if (d == NULL)
        return -1;
    free(c->data_dir);
    c->data_dir = d;
    return 0;
}

int eng_config_set_plugin_dir(eng_config *c, const char *dir)
{
    char *d = strdup(dir);
    if (d == NULL)
        return -1;
    free(c->plugin_dir);
    c->plugin_dir = d;
    return 0;
}

const char *eng_backend_conf_get(const eng_backend_conf *b, const char *name)
{
    size_t i;
    for (i = 0; i < b->n_settings; i++)
        if (strcmp(b->settings[i].name, name) == 0)
            return b->settings[i].value;
    return NULL;
}

static void backend_conf_free(eng_backend_conf *b)
{
    size_t i;
    for (i = 0; i < b->n_settings; i++) {
        free((char *)b->settings[i].name);
        free((char *)b->settings[i].value);
    }
    free(b->settings);
    free(b->type);
}

void eng_config_free(eng_config *c)
{
    size_t i;
    if (c == NULL)
        return;
    clear_listeners(c);
    for (i = 0; i < c->n_plugins; i++) {
        free(c->plugins[i].name);
        free(c->plugins[i].path);
    }
    free(c->plugins);
    for (i = 0; i < c->n_aliases; i++) {
        free(c->aliases[i].from);
        free(c->aliases[i].to);
    }
    free(c->aliases);
    free(c->file);
    free(c->dir);
    free(c->role);
    free(c->data_dir);
    free(c->plugin_dir);
    backend_conf_free(&c->sealer);
    backend_conf_free(&c->keystore);
    eng_created_clear(&c->created);
    config_destroy(&c->lc);
    memset(c, 0, sizeof *c);
}
