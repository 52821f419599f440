/* Backend settings and the record of what a start created. */
#include "config.h"
#include "backend.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

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
