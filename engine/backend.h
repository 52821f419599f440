/* What a sealer or keystore backend (a row of engine/sealer/sealer.h or
 * engine/keystore/keystore.h) is opened with: its settings from the config
 * group, where relative paths resolve, whether it may create what is absent,
 * and a record of what it created so a failed start can remove it. */
#ifndef ENG_BACKEND_H
#define ENG_BACKEND_H

#include <stddef.h>

/* One setting of a backend's config group (every member but "type"). */
typedef struct eng_setting {
    const char *name;
    const char *value;
} eng_setting;

#define ENG_CREATED_MAX 16

/* Files and directories one start created, oldest first. */
typedef struct eng_created {
    char *path[ENG_CREATED_MAX];
    int is_dir[ENG_CREATED_MAX];
    size_t n;
} eng_created;

typedef struct eng_backend_args {
    const char *dir;             /* relative paths resolve against it (the
                                    data_dir); NULL: as given */
    const eng_setting *settings; /* the config group, without "type" */
    size_t n_settings;
    int create;                  /* 1: create what is absent (a start);
                                    0: open only what exists (--check-config,
                                    or keys exist that need the old one) */
    eng_created *created;        /* NULL, or records what open created */
} eng_backend_args;

/* The value of setting name in args, or dflt when the config has none. */
const char *eng_backend_setting(const eng_backend_args *args,
                                const char *name, const char *dflt);

/* Resolves setting name (a path) against args->dir; malloc'd, NULL when
 * out of memory. */
char *eng_backend_path(const eng_backend_args *args, const char *name,
                       const char *dflt);

/* Records path in c (if c is not NULL).  0, or -1 when full or out of
 * memory (the caller then removes what it created itself). */
int eng_created_add(eng_created *c, const char *path, int is_dir);

/* Removes what c recorded, newest first (files unlinked, directories
 * rmdir'd when empty), and forgets it. */
void eng_created_undo(eng_created *c);

/* Forgets what c recorded without removing anything. */
void eng_created_clear(eng_created *c);

#endif
