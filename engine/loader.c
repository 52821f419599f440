#include "config.h"
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef SIGNER_PLUGIN_DIR
#define SIGNER_PLUGIN_DIR "/usr/local/lib/enclave-signer"
#endif

/* An empty registry. */
void eng_registry_init(eng_registry *r) { memset(r, 0, sizeof *r); }

/* The plugin a host table was handed to (the table is its first member). */
eng_plugin *eng_plugin_of(const signer_host *host)
{
    return (eng_plugin *)host; /* host is the first member */
}

/* 1 if p is a regular file. */
static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file of a plugin: see loader.h. */
char *eng_plugin_resolve(const char *path, const char *dir)
{
    char *p;
    if (path == NULL || path[0] == '\0')
        return NULL;
    if (strchr(path, '/') != NULL)
        return strdup(path);
    if (dir != NULL) {
        p = eng_path_join(dir, path);
        if (p != NULL && exists(p))
            return p;
        free(p);
    }
    /* A build tree: plugins/.libs beside the signerd executable. */
    {
        char exe[4096], *exedir, *libs;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            exedir = eng_dirname(exe);
            libs = exedir ? eng_path_join(exedir, "plugins/.libs") : NULL;
            p = libs ? eng_path_join(libs, path) : NULL;
            free(exedir);
            free(libs);
            if (p != NULL && exists(p))
                return p;
            free(p);
        }
    }
    p = eng_path_join(SIGNER_PLUGIN_DIR, path);
    if (p != NULL && exists(p))
        return p;
    free(p);
    /* Not found anywhere: return the first candidate for the message. */
    return dir != NULL ? eng_path_join(dir, path) : strdup(path);
}

/* Op names are plain verbs: [a-z0-9_], 1..64 characters. */
static int op_name_ok(const char *n)
{
    size_t i, len;
    if (n == NULL || (len = strlen(n)) == 0 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') ||
              n[i] == '_'))
            return 0;
    return 1;
}

/* Alias names: [A-Za-z0-9_-], 1..128 characters (no '.': that separates
 * chain and verb). */
static int alias_name_ok(const char *n)
{
    size_t len = n != NULL ? strlen(n) : 0;

    if (len == 0 || len > 128)
        return 0;
    return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-") == len;
}

/* Entry i of a plugin's op table, with the stride of its ABI minor. */
const signer_op *eng_plugin_op(const eng_plugin *p, size_t i)
{
    return (const signer_op *)((const char *)p->def->ops +
                               i * signer_op_stride(p->def->abi_minor));
}

/* The entry of chain's verb given as "chain.verb", or NULL. */
static const eng_op_entry *find_qualified(const eng_registry *r,
                                          const char *name)
{
    const char *dot = strchr(name, '.');
    size_t cl, i;

    if (dot == NULL)
        return NULL;
    cl = (size_t)(dot - name);
    for (i = 0; i < r->n_ops; i++) {
        const eng_op_entry *e = &r->ops[i];
        if (!e->is_alias && strlen(e->plugin->name) == cl &&
            strncmp(e->plugin->name, name, cl) == 0 &&
            strcmp(e->op->name, dot + 1) == 0)
            return e;
    }
    return NULL;
}

/* The entry registered as name, or chain.verb's, or NULL. */
const eng_op_entry *eng_registry_find(const eng_registry *r,
                                      const char *name)
{
    size_t i;
    if (name == NULL)
        return NULL;
    for (i = 0; i < r->n_ops; i++)
        if (strcmp(r->ops[i].name, name) == 0)
            return &r->ops[i];
    return find_qualified(r, name);
}

/* Cleans up, dlcloses and frees a plugin (cleanup only if init ran). */
static void plugin_destroy(eng_plugin *p, int initialised)
{
    if (p == NULL)
        return;
    if (initialised && p->def != NULL && p->def->cleanup != NULL)
        p->def->cleanup(p->ctx);
    if (p->dl != NULL)
        dlclose(p->dl);
    free(p->name);
    free(p->path);
    free(p);
}

/* "plugin NAME (FILE): " followed by the formatted reason, into err. */
static int load_fail(char *err, size_t err_len, const char *name,
                     const char *file, int code, const char *fmt, ...)
    SIGNER_PRINTF(6, 7);
static int load_fail(char *err, size_t err_len, const char *name,
                     const char *file, int code, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, err_len, "plugin %s (%s): ", name, file);

    if (n > 0 && (size_t)n < err_len) {
        va_start(ap, fmt);
        vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

#define LOAD_FAIL(code, ...)                                                  \
    do {                                                                      \
        rc = load_fail(err, err_len, name, file, (code), __VA_ARGS__);        \
        goto fail;                                                            \
    } while (0)

/* Checks the file before dlopen: regular, not world-writable. */
static int check_file(const char *name, const char *file, char *err,
                      size_t err_len)
{
    struct stat st;

    if (stat(file, &st) != 0)
        return load_fail(err, err_len, name, file, SIGNER_ERR_CONFIG,
                         "cannot access the file: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return load_fail(err, err_len, name, file, SIGNER_ERR_CONFIG,
                         "not a regular file");
    if (st.st_mode & S_IWOTH)
        return load_fail(err, err_len, name, file, SIGNER_ERR_CONFIG,
                         "refusing a world-writable plugin file (chmod o-w)");
    return SIGNER_OK;
}

/* Checks the table init returned: ABI, name, ops.  *n_ops gets the
 * number of ops. */
static int check_table(const eng_registry *r, const eng_plugin *p,
                       size_t *n_ops, char *err, size_t err_len)
{
    const char *name = p->name, *file = p->path;
    const signer_plugin *d = p->def;
    const signer_op *op;
    size_t i, j;

    if (d == NULL)
        return load_fail(err, err_len, name, file, SIGNER_ERR_ABI,
                         "init returned no plugin table");
    if (signer_plugin_check(d) != SIGNER_OK || d->abi_minor > SIGNER_ABI_MINOR)
        return load_fail(err, err_len, name, file, SIGNER_ERR_ABI,
                         "ABI %u.%u (struct %u bytes) is not compatible with "
                         "the engine's %d.%d",
                         (unsigned)d->abi_major, (unsigned)d->abi_minor,
                         (unsigned)d->struct_size, SIGNER_ABI_MAJOR,
                         SIGNER_ABI_MINOR);
    if (d->name == NULL || strcmp(d->name, name) != 0)
        return load_fail(err, err_len, name, file, SIGNER_ERR_CONFIG,
                         "the plugin calls itself '%s'",
                         d->name ? d->name : "(null)");
    if (d->ops == NULL || d->ops[0].name == NULL)
        return load_fail(err, err_len, name, file, SIGNER_ERR_ABI,
                         "registers no operations");
    for (i = 0; (op = eng_plugin_op(p, i))->name != NULL; i++) {
        if (!op_name_ok(op->name))
            return load_fail(err, err_len, name, file, SIGNER_ERR_ABI,
                             "operation name '%s' is not [a-z0-9_]{1,64}",
                             op->name);
        if (op->handler == NULL)
            return load_fail(err, err_len, name, file, SIGNER_ERR_ABI,
                             "operation '%s' has no handler", op->name);
        for (j = 0; j < i; j++)
            if (strcmp(eng_plugin_op(p, j)->name, op->name) == 0)
                return load_fail(err, err_len, name, file, SIGNER_ERR_CONFIG,
                                 "operation '%s' is listed twice", op->name);
    }
    *n_ops = i;
    (void)r;
    return SIGNER_OK;
}

/* SIGNER_OP_RAW, from plugins built for ABI 1.2 on (see loader.h). */
int eng_op_is_raw(const eng_plugin *p, const signer_op *op)
{
    return p != NULL && op != NULL && p->def->abi_minor >= 2 &&
           (op->flags & SIGNER_OP_RAW) != 0;
}

const char *const *eng_op_hmac_fields(const eng_plugin *p,
                                      const signer_op *op)
{
    return p != NULL && op != NULL && p->def->abi_minor >= 1
               ? op->hmac_fields : NULL;
}

/* The aliases op declares (ABI 1.1), or NULL. */
static const char *const *op_aliases(const eng_plugin *p, const signer_op *op)
{
    return p->def->abi_minor >= 1 ? op->aliases : NULL;
}

/* Checks the aliases of p's ops: well-formed, not registered yet, not
 * declared twice.  *n_alias gets their number. */
static int check_aliases(const eng_registry *r, const eng_plugin *p,
                         size_t n_ops, size_t *n_alias, char *err,
                         size_t err_len)
{
    size_t i, n = 0;

    for (i = 0; i < n_ops; i++) {
        const char *const *a = op_aliases(p, eng_plugin_op(p, i));
        for (; a != NULL && *a != NULL; a++, n++) {
            const eng_op_entry *dup = eng_registry_find(r, *a);
            if (!alias_name_ok(*a))
                return load_fail(err, err_len, p->name, p->path,
                                 SIGNER_ERR_ABI, "alias '%.64s' is not "
                                 "[A-Za-z0-9_-]{1,128}", *a);
            if (dup != NULL)
                return load_fail(err, err_len, p->name, p->path,
                                 SIGNER_ERR_CONFIG, "alias '%s' is already "
                                 "registered by plugin %s", *a,
                                 dup->plugin->name);
        }
    }
    *n_alias = n;
    return SIGNER_OK;
}

/* Appends entry (name copied); 0 or SIGNER_ERR_NOMEM.  Capacity must
 * have been reserved. */
static int entry_add(eng_registry *r, const char *name, const signer_op *op,
                     eng_plugin *p, int is_alias)
{
    char *nm = strdup(name);

    if (nm == NULL)
        return SIGNER_ERR_NOMEM;
    r->ops[r->n_ops].name = nm;
    r->ops[r->n_ops].op = op;
    r->ops[r->n_ops].plugin = p;
    r->ops[r->n_ops].is_alias = is_alias;
    r->n_ops++;
    return SIGNER_OK;
}

/* Registers p's ops (plain verb if free, else chain.verb) and aliases;
 * all or nothing. */
static int register_ops(eng_registry *r, eng_plugin *p, size_t n_ops,
                        size_t n_alias)
{
    size_t before = r->n_ops, i;
    eng_op_entry *grown;
    eng_plugin **pgrown;
    char qname[160];
    int rc = SIGNER_OK;

    grown = realloc(r->ops, (r->n_ops + n_ops + n_alias) * sizeof *grown);
    if (grown == NULL)
        return SIGNER_ERR_NOMEM;
    r->ops = grown;
    pgrown = realloc(r->plugins, (r->n_plugins + 1) * sizeof *pgrown);
    if (pgrown == NULL)
        return SIGNER_ERR_NOMEM;
    r->plugins = pgrown;
    for (i = 0; i < n_ops && rc == SIGNER_OK; i++) {
        const signer_op *op = eng_plugin_op(p, i);
        snprintf(qname, sizeof qname, "%s.%s", p->name, op->name);
        rc = entry_add(r, eng_registry_find(r, op->name) ? qname : op->name,
                       op, p, 0);
    }
    for (i = 0; i < n_ops && rc == SIGNER_OK; i++) {
        const signer_op *op = eng_plugin_op(p, i);
        const char *const *a = op_aliases(p, op);
        for (; a != NULL && *a != NULL && rc == SIGNER_OK; a++)
            rc = entry_add(r, *a, op, p, 1);
    }
    if (rc != SIGNER_OK) {
        while (r->n_ops > before)
            free(r->ops[--r->n_ops].name);
        return rc;
    }
    r->plugins[r->n_plugins++] = p;
    return SIGNER_OK;
}

/* Loads one plugin, all or nothing: see loader.h. */
int eng_registry_load(eng_registry *r, const signer_host *host,
                      const char *name, const char *file,
                      const signer_conf *settings, char *err, size_t err_len)
{
    eng_plugin *p = NULL;
    signer_plugin_init_fn init;
    size_t n_ops = 0, n_alias = 0, i;
    int rc = SIGNER_ERR_INTERNAL, initialised = 0;

    for (i = 0; i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->name, name) == 0)
            LOAD_FAIL(SIGNER_ERR_CONFIG, "a plugin of that name is loaded");
    if ((rc = check_file(name, file, err, err_len)) != SIGNER_OK)
        goto fail;
    if ((p = calloc(1, sizeof *p)) == NULL ||
        (p->name = strdup(name)) == NULL || (p->path = strdup(file)) == NULL)
        LOAD_FAIL(SIGNER_ERR_NOMEM, "out of memory");
    p->host = *host;
    p->host.settings = settings;
    dlerror();
    p->dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL)
        LOAD_FAIL(SIGNER_ERR_CONFIG, "dlopen failed: %s", dlerror());
    *(void **)&init = dlsym(p->dl, "signer_plugin_init");
    if (init == NULL)
        LOAD_FAIL(SIGNER_ERR_ABI, "does not export signer_plugin_init");
    rc = init(&p->host, &p->def, &p->ctx);
    if (rc != SIGNER_OK) {
        p->def = NULL;
        LOAD_FAIL(rc < 0 ? rc : SIGNER_ERR_INTERNAL, "init failed: %s",
                  signer_err_str(rc));
    }
    initialised = 1;
    if ((rc = check_table(r, p, &n_ops, err, err_len)) != SIGNER_OK ||
        (rc = check_aliases(r, p, n_ops, &n_alias, err, err_len)) != SIGNER_OK)
        goto fail;
    if ((rc = register_ops(r, p, n_ops, n_alias)) != SIGNER_OK)
        LOAD_FAIL(rc, "out of memory");
    eng_log(SIGNER_LOG_INFO, "loaded plugin %s %s from %s (%zu operations)",
            name, p->def->version ? p->def->version : "", file, n_ops);
    return SIGNER_OK;
fail:
    plugin_destroy(p, initialised);
    return rc;
}

/* Adds a config alias: see loader.h. */
int eng_registry_alias(eng_registry *r, const char *from, const char *to,
                       char *err, size_t err_len)
{
    const eng_op_entry *target = eng_registry_find(r, to), *have;
    eng_op_entry *grown;

    if (from == NULL || from[0] == '\0' || strlen(from) > 128) {
        snprintf(err, err_len, "alias: bad name");
        return SIGNER_ERR_CONFIG;
    }
    if (target == NULL) {
        snprintf(err, err_len,
                 "alias %s: target operation '%s' is not registered by any "
                 "loaded plugin",
                 from, to);
        return SIGNER_ERR_CONFIG;
    }
    if ((have = eng_registry_find(r, from)) != NULL) {
        if (have->op == target->op)
            return SIGNER_OK; /* declared by the plugin already */
        snprintf(err, err_len, "alias %s: that name is already registered",
                 from);
        return SIGNER_ERR_CONFIG;
    }
    grown = realloc(r->ops, (r->n_ops + 1) * sizeof *grown);
    if (grown == NULL) {
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    r->ops = grown;
    /* target may have moved with realloc: look it up again. */
    target = eng_registry_find(r, to);
    if (entry_add(r, from, target->op, target->plugin, 1) != SIGNER_OK) {
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    return SIGNER_OK;
}

/* Cleans up every plugin (last loaded first) and frees the registry. */
void eng_registry_free(eng_registry *r)
{
    size_t i;
    for (i = 0; i < r->n_ops; i++)
        free(r->ops[i].name);
    free(r->ops);
    for (i = r->n_plugins; i-- > 0;)
        plugin_destroy(r->plugins[i], 1);
    free(r->plugins);
    memset(r, 0, sizeof *r);
}
