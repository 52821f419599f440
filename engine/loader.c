#include "config.h"
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
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

void eng_registry_init(eng_registry *r) { memset(r, 0, sizeof *r); }

eng_plugin *eng_plugin_of(const signer_host *host)
{
    return (eng_plugin *)host; /* host is the first member */
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

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

const eng_op_entry *eng_registry_find(const eng_registry *r,
                                      const char *name)
{
    size_t i;
    if (name == NULL)
        return NULL;
    for (i = 0; i < r->n_ops; i++)
        if (strcmp(r->ops[i].name, name) == 0)
            return &r->ops[i];
    return NULL;
}

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

#define LOAD_FAIL(code, ...)                                                  \
    do {                                                                      \
        int n_ = snprintf(err, err_len, "plugin %s (%s): ", name, file);      \
        if (n_ > 0 && (size_t)n_ < err_len)                                   \
            snprintf(err + n_, err_len - (size_t)n_, __VA_ARGS__);            \
        rc = (code);                                                          \
        goto fail;                                                            \
    } while (0)

int eng_registry_load(eng_registry *r, const signer_host *host,
                      const char *name, const char *file,
                      const signer_conf *settings, char *err, size_t err_len)
{
    eng_plugin *p = NULL;
    signer_plugin_init_fn init;
    const signer_op *op;
    eng_op_entry *grown;
    eng_plugin **pgrown;
    struct stat st;
    size_t n_new = 0, i;
    int rc = SIGNER_ERR_INTERNAL, initialised = 0;

    for (i = 0; i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->name, name) == 0)
            LOAD_FAIL(SIGNER_ERR_CONFIG, "a plugin of that name is loaded");
    if (stat(file, &st) != 0)
        LOAD_FAIL(SIGNER_ERR_CONFIG, "cannot access the file: %s",
                  strerror(errno));
    if (!S_ISREG(st.st_mode))
        LOAD_FAIL(SIGNER_ERR_CONFIG, "not a regular file");
    if (st.st_mode & S_IWOTH)
        LOAD_FAIL(SIGNER_ERR_CONFIG,
                  "refusing a world-writable plugin file (chmod o-w)");

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
    if (p->def == NULL)
        LOAD_FAIL(SIGNER_ERR_ABI, "init returned no plugin table");
    if (signer_plugin_check(p->def) != SIGNER_OK)
        LOAD_FAIL(SIGNER_ERR_ABI,
                  "ABI %u.%u (struct %u bytes) is not compatible with the "
                  "engine's %d.%d",
                  (unsigned)p->def->abi_major, (unsigned)p->def->abi_minor,
                  (unsigned)p->def->struct_size, SIGNER_ABI_MAJOR,
                  SIGNER_ABI_MINOR);
    if (p->def->name == NULL || strcmp(p->def->name, name) != 0)
        LOAD_FAIL(SIGNER_ERR_CONFIG, "the plugin calls itself '%s'",
                  p->def->name ? p->def->name : "(null)");
    if (p->def->ops == NULL || p->def->ops[0].name == NULL)
        LOAD_FAIL(SIGNER_ERR_ABI, "registers no operations");

    for (op = p->def->ops; op->name != NULL; op++, n_new++) {
        const signer_op *o2;
        const eng_op_entry *dup;
        if (!op_name_ok(op->name))
            LOAD_FAIL(SIGNER_ERR_ABI,
                      "operation name '%s' is not [a-z0-9_]{1,64}", op->name);
        if (op->handler == NULL)
            LOAD_FAIL(SIGNER_ERR_ABI, "operation '%s' has no handler",
                      op->name);
        for (o2 = p->def->ops; o2 != op; o2++)
            if (strcmp(o2->name, op->name) == 0)
                LOAD_FAIL(SIGNER_ERR_CONFIG,
                          "operation '%s' is listed twice", op->name);
        if ((dup = eng_registry_find(r, op->name)) != NULL)
            LOAD_FAIL(SIGNER_ERR_CONFIG,
                      "operation '%s' is already registered by plugin %s",
                      op->name, dup->plugin->name);
    }

    /* Commit: grow both arrays, then register. */
    grown = realloc(r->ops, (r->n_ops + n_new) * sizeof *grown);
    if (grown == NULL)
        LOAD_FAIL(SIGNER_ERR_NOMEM, "out of memory");
    r->ops = grown;
    pgrown = realloc(r->plugins, (r->n_plugins + 1) * sizeof *pgrown);
    if (pgrown == NULL)
        LOAD_FAIL(SIGNER_ERR_NOMEM, "out of memory");
    r->plugins = pgrown;
    for (i = 0; i < n_new; i++) {
        char *nm = strdup(p->def->ops[i].name);
        if (nm == NULL) {
            while (i-- > 0)
                free(r->ops[r->n_ops + i].name);
            LOAD_FAIL(SIGNER_ERR_NOMEM, "out of memory");
        }
        r->ops[r->n_ops + i].name = nm;
        r->ops[r->n_ops + i].op = &p->def->ops[i];
        r->ops[r->n_ops + i].plugin = p;
        r->ops[r->n_ops + i].is_alias = 0;
    }
    r->n_ops += n_new;
    r->plugins[r->n_plugins++] = p;
    eng_log(SIGNER_LOG_INFO, "loaded plugin %s %s from %s (%zu operations)",
            name, p->def->version ? p->def->version : "", file, n_new);
    return SIGNER_OK;
fail:
    plugin_destroy(p, initialised);
    return rc;
}

int eng_registry_alias(eng_registry *r, const char *from, const char *to,
                       char *err, size_t err_len)
{
    const eng_op_entry *target = eng_registry_find(r, to);
    eng_op_entry *grown;
    char *nm;
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
    if (eng_registry_find(r, from) != NULL) {
        snprintf(err, err_len, "alias %s: that name is already registered",
                 from);
        return SIGNER_ERR_CONFIG;
    }
    grown = realloc(r->ops, (r->n_ops + 1) * sizeof *grown);
    if (grown == NULL || (nm = strdup(from)) == NULL) {
        if (grown != NULL)
            r->ops = grown;
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    r->ops = grown;
    /* target may have moved with realloc: look it up again. */
    target = eng_registry_find(r, to);
    r->ops[r->n_ops].name = nm;
    r->ops[r->n_ops].op = target->op;
    r->ops[r->n_ops].plugin = target->plugin;
    r->ops[r->n_ops].is_alias = 1;
    r->n_ops++;
    return SIGNER_OK;
}

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
