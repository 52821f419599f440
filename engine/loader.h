/* Plugin loader and operation registry.  All-or-nothing: a plugin that
 * fails any check is torn down and dlclosed, and nothing of it stays
 * registered.
 *
 * Operations are registered as (chain, verb): the first plugin loaded
 * with a verb registers it under the plain verb ("sign_transaction"),
 * every plugin's ops are also reachable as "chain.verb"
 * ("eth.sign_transaction"), so a second chain's verb never collides.  The
 * aliases an op declares (and those of the config) are further names.
 * See docs/plugins.md. */
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
    char *name;            /* registered name: verb, chain.verb or alias;
                            * unique in the registry */
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

/* Adds alias from -> to (a registered name).  An alias that already names
 * the same op is accepted (a plugin may declare what a config repeats). */
int eng_registry_alias(eng_registry *r, const char *from, const char *to,
                       char *err, size_t err_len);

/* The op registered as name ("verb", "chain.verb" or an alias), or
 * NULL. */
const eng_op_entry *eng_registry_find(const eng_registry *r,
                                      const char *name);

/* The payload fields an HMAC covers for op of plugin p (ABI 1.1), or NULL
 * (every field) for a plugin built for ABI 1.0, whose op entries are
 * shorter. */
const char *const *eng_op_hmac_fields(const eng_plugin *p,
                                      const signer_op *op);
/* 1 if op is a raw HTTP op (SIGNER_OP_RAW, honoured from ABI 1.2 on). */
int eng_op_is_raw(const eng_plugin *p, const signer_op *op);

/* Calls every plugin's cleanup, dlcloses, frees. */
void eng_registry_free(eng_registry *r);

/* Entry i of a plugin's op table (walked with the stride of its ABI). */
const signer_op *eng_plugin_op(const eng_plugin *p, size_t i);

/* The plugin owning a host pointer handed to it. */
eng_plugin *eng_plugin_of(const signer_host *host);

#endif
