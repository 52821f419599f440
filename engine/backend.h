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

/* The first member of every backend row (eng_sealer_methods,
 * eng_keystore_methods): what finding, listing and opening a row by name
 * needs, whatever kind of backend it is. */
typedef struct eng_backend_row {
    const char *name;             /* the group's "type" in the config */
    const char *const *settings;  /* names its config group may hold besides
                                     "type"; NULL-ended (values are strings) */
    /* Opens with args.  SIGNER_OK; SIGNER_ERR_NOT_FOUND when what it opens
     * is absent and args->create is 0; another signer_err with a message in
     * err otherwise.  Records created files in args->created. */
    int (*open)(void **state, const eng_backend_args *args, char *err,
                size_t err_len);
} eng_backend_row;

/* The row of the NULL-ended rows named name, or NULL. */
const eng_backend_row *eng_backend_find(const eng_backend_row *const *rows,
                                        const char *name);

/* The names of rows as "\"a\", \"b\"" for messages, in out. */
void eng_backend_names(const eng_backend_row *const *rows, char *out,
                       size_t out_len);

/* Opens the row of rows named name: *row and *state on success (both
 * untouched otherwise).  Returns the row's open result, or
 * SIGNER_ERR_CONFIG with "<kind> '<name>' is not supported (supported:
 * ...)" in err for an unknown name. */
int eng_backend_open(const eng_backend_row **row, void **state,
                     const eng_backend_row *const *rows, const char *kind,
                     const char *name, const eng_backend_args *args,
                     char *err, size_t err_len);

/* The parts every "none" row (a role that keeps no keys or never seals)
 * shares: no settings; an open that keeps no state; always ready; nothing
 * to close. */
extern const char *const eng_backend_no_settings[];
int eng_backend_none_open(void **state, const eng_backend_args *args,
                          char *err, size_t err_len);
int eng_backend_none_ready(void *state);
void eng_backend_none_close(void *state);

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
