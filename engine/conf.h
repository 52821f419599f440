/* signerd configuration (libconfig).  Strict: unknown keys and wrong types
 * are errors reported as "FILE:LINE: message". */
#ifndef ENG_CONF_H
#define ENG_CONF_H

#include <libconfig.h>
#include <stddef.h>

#include "backend.h"
#include "transport/transport.h"

typedef struct eng_plugin_conf {
    char *name;
    char *path;                  /* as written */
    const config_setting_t *settings; /* may be NULL */
} eng_plugin_conf;

typedef struct eng_alias {
    char *from;
    char *to;
} eng_alias;

/* sealer = { type = "..."; ... } or keystore = { ... }: the row's name and
 * its other settings (all strings; which names a row accepts is declared in
 * its methods table). */
typedef struct eng_backend_conf {
    char *type;
    eng_setting *settings; /* owned strings */
    size_t n_settings;
} eng_backend_conf;

typedef struct eng_config {
    config_t lc;       /* kept alive: plugins read their settings from it */
    char *file;        /* path of the config file ("<string>" for tests) */
    char *dir;         /* its directory: relative paths resolve against it */
    char *role;        /* "standalone" */
    char *data_dir;    /* resolved */
    char *plugin_dir;  /* resolved, or NULL */
    int log_level;
    int workers;
    int io_loops;      /* 0 = I/O thread + workers; N = N inline loops */
    eng_listen_spec *listen;
    size_t n_listen;
    eng_limits limits;
    eng_backend_conf sealer;   /* default "local"; relative paths in its
                                  settings resolve against data_dir */
    eng_backend_conf keystore; /* default "sqlite"; likewise */
    int hmac_window;        /* seconds */
    int max_failures;       /* wrong secrets per key before lockout */
    int lockout_seconds;
    int key_cache_ttl;      /* seconds unsealed keys stay cached; 0 = off */
    int key_cache_max;      /* entries */
    eng_plugin_conf *plugins;
    size_t n_plugins;
    eng_alias *aliases;
    size_t n_aliases;
    int check_only;         /* set by --check-config: eng_engine_open
                               validates what exists and creates nothing */
    eng_created created;    /* filled by eng_engine_open: what this start
                               created, removed again if the start fails */
} eng_config;

/* Loads and validates FILE.  Returns 0, or -1 with "FILE:LINE: why" in err. */
int eng_config_load(eng_config *c, const char *file, char *err,
                    size_t err_len);
/* Same from a string; relative paths resolve against dir. */
int eng_config_load_string(eng_config *c, const char *text, const char *dir,
                           char *err, size_t err_len);

/* Command-line overrides.  listen: "[http=|frames=]ADDR"; the first call
 * replaces all configured listeners, later calls add.  Return 0 or -1. */
int eng_config_add_listen(eng_config *c, const char *spec, int *replaced,
                          char *err, size_t err_len);
int eng_config_set_data_dir(eng_config *c, const char *dir);
int eng_config_set_plugin_dir(eng_config *c, const char *dir);

/* Refuses a member of group g whose name is not in allowed (NULL-ended):
 * -1 with "FILE:LINE: unknown setting '<where>.<name>'" in err (where ""
 * for the top level), else 0. */
int eng_config_check_keys(const eng_config *c, const config_setting_t *g,
                          const char *const *allowed, const char *where,
                          char *err, size_t err_len);

/* The value of setting name of a backend group, or NULL. */
const char *eng_backend_conf_get(const eng_backend_conf *b, const char *name);

void eng_config_free(eng_config *c);

#endif
