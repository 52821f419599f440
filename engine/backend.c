/* Backend settings and the record of what a start created. */
#include "config.h"
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signer/plugin.h>

#include "util.h"

const eng_backend_row *eng_backend_find(const eng_backend_row *const *rows,
                                        const char *name)
{
    size_t i;
    for (i = 0; name != NULL && rows[i] != NULL; i++)
        if (strcmp(rows[i]->name, name) == 0)
            return rows[i];
    return NULL;
}

void eng_backend_names(const eng_backend_row *const *rows, char *out,
                       size_t out_len)
{
    size_t i, pos = 0;
    out[0] = '\0';
    for (i = 0; rows[i] != NULL && pos < out_len; i++) {
        int n = snprintf(out + pos, out_len - pos, "%s\"%s\"",
                         i ? ", " : "", rows[i]->name);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
}

int eng_backend_open(const eng_backend_row **row, void **state,
                     const eng_backend_row *const *rows, const char *kind,
                     const char *name, const eng_backend_args *args,
                     char *err, size_t err_len)
{
    const eng_backend_row *r = eng_backend_find(rows, name);
    void *st = NULL;
    char names[128];
    int rc;

    if (r == NULL) {
        eng_backend_names(rows, names, sizeof names);
        snprintf(err, err_len, "%s '%s' is not supported (supported: %s)",
                 kind, name ? name : "(null)", names);
        return SIGNER_ERR_CONFIG;
    }
    rc = r->open(&st, args, err, err_len);
    if (rc != SIGNER_OK)
        return rc;
    *row = r;
    *state = st;
    return SIGNER_OK;
}

const char *const eng_backend_no_settings[] = {NULL};

int eng_backend_none_open(void **state, const eng_backend_args *args,
                          char *err, size_t err_len)
{
    (void)args;
    (void)err;
    (void)err_len;
    *state = NULL;
    return SIGNER_OK;
}

int eng_backend_none_ready(void *state)
{
    (void)state;
    return 1;
}

void eng_backend_none_close(void *state) { (void)state; }

const char *eng_backend_setting(const eng_backend_args *args,
                                const char *name, const char *dflt)
{
    size_t i;
    for (i = 0; args != NULL && i < args->n_settings; i++)
        if (strcmp(args->settings[i].name, name) == 0)
            return args->settings[i].value;
    return dflt;
}

char *eng_backend_path(const eng_backend_args *args, const char *name,
                       const char *dflt)
{
    const char *v = eng_backend_setting(args, name, dflt);
    return v == NULL ? NULL : eng_path_join(args ? args->dir : NULL, v);
}

int eng_created_add(eng_created *c, const char *path, int is_dir)
{
    if (c == NULL)
        return 0;
    if (c->n == ENG_CREATED_MAX || (c->path[c->n] = strdup(path)) == NULL)
        return -1;
    c->is_dir[c->n++] = is_dir;
    return 0;
}

void eng_created_undo(eng_created *c)
{
    if (c == NULL)
        return;
    while (c->n > 0) {
        c->n--;
        if (c->is_dir[c->n])
            rmdir(c->path[c->n]);
        else
            unlink(c->path[c->n]);
        free(c->path[c->n]);
        c->path[c->n] = NULL;
    }
}

void eng_created_clear(eng_created *c)
{
    if (c == NULL)
        return;
    while (c->n > 0) {
        c->n--;
        free(c->path[c->n]);
        c->path[c->n] = NULL;
    }
}
