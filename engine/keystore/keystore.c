/* The keystore rows and the thin dispatchers every caller uses. */
#include "config.h"
#include "keystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_keystore {
    const eng_keystore_methods *m;
    void *state;
};

/* Every backend: add its row here. */
static const eng_backend_row *const rows[] = {
    &eng_keystore_sqlite.row, &eng_keystore_dynamodb.row,
    &eng_keystore_none.row, NULL};

/* A row is the first member of its methods, so the one converts to the
 * other. */
const eng_keystore_methods *eng_keystore_find(const char *name)
{
    return (const eng_keystore_methods *)eng_backend_find(rows, name);
}

void eng_keystore_names(char *out, size_t out_len)
{
    eng_backend_names(rows, out, out_len);
}

int eng_keystore_open(eng_keystore **out, const char *name,
                      const eng_backend_args *args, char *err,
                      size_t err_len)
{
    const eng_backend_row *row = NULL;
    eng_keystore *ks;
    int rc;

    *out = NULL;
    if ((ks = calloc(1, sizeof *ks)) == NULL) {
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    rc = eng_backend_open(&row, &ks->state, rows, "keystore", name, args,
                          err, err_len);
    if (rc != SIGNER_OK) {
        free(ks);
        return rc;
    }
    ks->m = (const eng_keystore_methods *)row;
    *out = ks;
    return SIGNER_OK;
}

eng_keystore *eng_keystore_sqlite_open(const char *path, char *err,
                                       size_t err_len)
{
    eng_setting set = {"path", path};
    eng_backend_args args = {NULL, &set, 1, 1, NULL};
    eng_keystore *ks = NULL;
    if (eng_keystore_open(&ks, "sqlite", &args, err, err_len) != SIGNER_OK)
        return NULL;
    return ks;
}

int eng_keystore_put(eng_keystore *ks, const signer_key_meta *meta,
                     const unsigned char *blob, size_t blob_len)
{
    if (ks == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return ks->m->put(ks->state, meta, blob, blob_len);
}

int eng_keystore_get(eng_keystore *ks, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, unsigned char **blob,
                     size_t *blob_len, const char *key_id)
{
    if (ks == NULL) {
        *blob = NULL;
        *blob_len = 0;
        return SIGNER_ERR_UNAVAILABLE;
    }
    return ks->m->get(ks->state, chain, chain_cap, address, address_cap, blob,
                      blob_len, key_id);
}

long long eng_keystore_count(eng_keystore *ks)
{
    return ks == NULL ? -1 : ks->m->count(ks->state);
}

int eng_keystore_any_key_id(eng_keystore *ks, char *key_id, size_t cap)
{
    if (ks == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return ks->m->any_key_id(ks->state, key_id, cap);
}

int eng_keystore_meta_get(eng_keystore *ks, unsigned char *value, size_t cap,
                          size_t *len, const char *name)
{
    *len = 0;
    if (ks == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return ks->m->meta_get(ks->state, value, cap, len, name);
}

int eng_keystore_meta_put(eng_keystore *ks, const char *name,
                          const unsigned char *value, size_t len)
{
    if (ks == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return ks->m->meta_put(ks->state, name, value, len);
}

int eng_keystore_ready(eng_keystore *ks)
{
    return ks != NULL && ks->m->ready(ks->state);
}

void eng_keystore_describe(eng_keystore *ks, char *out, size_t out_len)
{
    if (out_len == 0)
        return;
    out[0] = '\0';
    if (ks != NULL)
        ks->m->describe(ks->state, out, out_len);
}

void eng_keystore_close(eng_keystore *ks)
{
    if (ks == NULL)
        return;
    ks->m->close(ks->state);
    free(ks);
}

/* ---- "none": roles that keep no keys (the enclave gets them sealed in
 * each request) ------------------------------------------------------- */

static int none_put(void *state, const signer_key_meta *meta,
                    const unsigned char *blob, size_t blob_len)
{
    (void)state;
    (void)meta;
    (void)blob;
    (void)blob_len;
    return SIGNER_ERR_UNAVAILABLE;
}

static int none_get(void *state, char *chain, size_t chain_cap,
                    char *address, size_t address_cap, unsigned char **blob,
                    size_t *blob_len, const char *key_id)
{
    (void)state;
    (void)chain;
    (void)chain_cap;
    (void)address;
    (void)address_cap;
    (void)key_id;
    *blob = NULL;
    *blob_len = 0;
    return SIGNER_ERR_NOT_FOUND;
}

static long long none_count(void *state)
{
    (void)state;
    return 0;
}

static int none_any_key_id(void *state, char *key_id, size_t cap)
{
    (void)state;
    (void)key_id;
    (void)cap;
    return SIGNER_ERR_NOT_FOUND;
}

static int none_meta_get(void *state, unsigned char *value, size_t cap,
                         size_t *len, const char *name)
{
    (void)state;
    (void)value;
    (void)cap;
    (void)name;
    *len = 0;
    return SIGNER_ERR_NOT_FOUND;
}

static int none_meta_put(void *state, const char *name,
                         const unsigned char *value, size_t len)
{
    (void)state;
    (void)name;
    (void)value;
    (void)len;
    return SIGNER_ERR_UNAVAILABLE;
}

static void none_describe(void *state, char *out, size_t out_len)
{
    (void)state;
    snprintf(out, out_len, "no keystore");
}

const eng_keystore_methods eng_keystore_none = {
    {"none", eng_backend_no_settings, eng_backend_none_open},
    none_put,
    none_get,
    none_count,
    none_any_key_id,
    none_meta_get,
    none_meta_put,
    eng_backend_none_ready,
    none_describe,
    eng_backend_none_close};
