/* Plugin loader and operation registry.  All-or-nothing: a plugin that
 * fails any check is torn down and dlclosed, and nothing of it stays
 * registered. */
#ifndef ENG_LOADER_H
#define ENG_LOADER_H

#include <stddef.h>
#include <signer/plugin.h>

typedef struct eng_plugin {
    signer_host host; /* this plugin's copy (first: see eng_plugin_of) */
    char *name;
    char *path;       /* resolved file */
    void *dl;
    const signer_plugin *def;
    void *ctx;
} eng_plugin;

typedef struct eng_op_entry {
    char *name;            /* registered name (op or alias) */
    const signer_op *op;
    eng_plugin *plugin;
    int is_alias;
} eng_op_entry;

typedef struct eng_registry {
    eng_plugin **plugins;
    size_t n_plugins;
    eng_op_entry *ops;
    size_t n_ops;
} eng_registry;

void eng_registry_init(eng_registry *r);

/* Finds a plugin file: a path with '/' is used as is; a bare name is looked
 * up in dir (if not NULL), then in plugins/.libs beside the running
 * executable (a build tree), then in the installed plugin directory.
 * malloc'd path or NULL. */
char *eng_plugin_resolve(const char *path, const char *dir);

/* Loads one plugin.  host is a template (copied; settings set to the
 * plugin's group).  On failure returns a negative signer_err and writes
 * "plugin NAME (FILE): reason" into err; the registry is unchanged. */
int eng_registry_load(eng_registry *r, const signer_host *host,
                      const char *name, const char *file,
                      const signer_conf *settings, char *err, size_t err_len);

/* Adds alias from -> to (an op already registered). */
int eng_registry_alias(eng_registry *r, const char *from, const char *to,
                       char *err, size_t err_len);

/* The op registered as name, or NULL. */
const eng_op_entry *eng_registry_find(const eng_registry *r,
                                      const char *name);

/* Calls every plugin's cleanup, dlcloses, frees. */
void eng_registry_free(eng_registry *r);

/* The plugin owning a host pointer handed to it. */
eng_plugin *eng_plugin_of(const signer_host *host);

#endif
