/* The sealer rows and the thin dispatchers every caller uses. */
#include "config.h"
#include "sealer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_sealer {
    const eng_sealer_methods *m;
    void *state;
};

/* Every backend: add its row here. */
static const eng_backend_row *const rows[] = {
    &eng_sealer_local.row, &eng_sealer_none.row, &eng_sealer_aws_kms.row,
    NULL};

/* A row is the first member of its methods, so the one converts to the
 * other. */
const eng_sealer_methods *eng_sealer_find(const char *name)
{
    return (const eng_sealer_methods *)eng_backend_find(rows, name);
}

void eng_sealer_names(char *out, size_t out_len)
{
    eng_backend_names(rows, out, out_len);
}

int eng_sealer_open(eng_sealer **out, const char *name,
                    const eng_backend_args *args, char *err, size_t err_len)
{
    const eng_backend_row *row = NULL;
    eng_sealer *s;
    int rc;

    *out = NULL;
    if ((s = calloc(1, sizeof *s)) == NULL) {
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    rc = eng_backend_open(&row, &s->state, rows, "sealer", name, args, err,
                          err_len);
    if (rc != SIGNER_OK) {
        free(s);
        return rc;
    }
    s->m = (const eng_sealer_methods *)row;
    *out = s;
    return SIGNER_OK;
}

eng_sealer *eng_sealer_local_open(const char *master_key_path, char *err,
                                  size_t err_len)
{
    eng_setting set = {"master_key_file", master_key_path};
    eng_backend_args args = {NULL, &set, 1, 1, NULL};
    eng_sealer *s = NULL;
    if (eng_sealer_open(&s, "local", &args, err, err_len) != SIGNER_OK)
        return NULL;
    return s;
}

int eng_sealer_seal(eng_sealer *s, unsigned char **blob, size_t *blob_len,
                    const signer_key_meta *meta, const unsigned char *plain,
                    size_t plain_len)
{
    if (s == NULL) {
        *blob = NULL;
        *blob_len = 0;
        return SIGNER_ERR_UNAVAILABLE;
    }
    return s->m->seal(s->state, blob, blob_len, meta, plain, plain_len);
}

int eng_sealer_unseal(eng_sealer *s, unsigned char *plain, size_t plain_cap,
                      size_t *plain_len, const signer_key_meta *meta,
                      const unsigned char *blob, size_t blob_len)
{
    if (s == NULL) {
        *plain_len = 0;
        return SIGNER_ERR_UNAVAILABLE;
    }
    return s->m->unseal(s->state, plain, plain_cap, plain_len, meta, blob,
                        blob_len);
}

int eng_sealer_seal_call(eng_sealer *s, eng_seal_call *c,
                         unsigned char **blob, size_t *blob_len,
                         const signer_key_meta *meta,
                         const unsigned char *plain, size_t plain_len)
{
    if (s != NULL && s->m->seal_call != NULL)
        return s->m->seal_call(s->state, c, blob, blob_len, meta, plain,
                               plain_len);
    return eng_sealer_seal(s, blob, blob_len, meta, plain, plain_len);
}

int eng_sealer_unseal_call(eng_sealer *s, eng_seal_call *c,
                           unsigned char *plain, size_t plain_cap,
                           size_t *plain_len, const signer_key_meta *meta,
                           const unsigned char *blob, size_t blob_len)
{
    if (s != NULL && s->m->unseal_call != NULL)
        return s->m->unseal_call(s->state, c, plain, plain_cap, plain_len,
                                 meta, blob, blob_len);
    return eng_sealer_unseal(s, plain, plain_cap, plain_len, meta, blob,
                             blob_len);
}

int eng_sealer_ready(eng_sealer *s)
{
    return s != NULL && s->m->ready(s->state);
}

int eng_sealer_check_value(eng_sealer *s,
                           unsigned char out[ENG_SEALER_CHECK_LEN])
{
    if (s == NULL || s->m->check_value == NULL)
        return SIGNER_ERR_NOT_FOUND;
    return s->m->check_value(s->state, out);
}

void eng_sealer_describe(eng_sealer *s, char *out, size_t out_len)
{
    if (out_len == 0)
        return;
    out[0] = '\0';
    if (s != NULL && s->m->describe != NULL)
        s->m->describe(s->state, out, out_len);
}

void eng_sealer_close(eng_sealer *s)
{
    if (s == NULL)
        return;
    s->m->close(s->state);
    free(s);
}

void eng_sealer_free(eng_sealer *s) { eng_sealer_close(s); }

/* ---- "none": roles that never seal (a gateway forwards sealed keys) ---- */

static int none_seal(void *state, unsigned char **blob, size_t *blob_len,
                     const signer_key_meta *meta, const unsigned char *plain,
                     size_t plain_len)
{
    (void)state;
    (void)meta;
    (void)plain;
    (void)plain_len;
    *blob = NULL;
    *blob_len = 0;
    return SIGNER_ERR_UNAVAILABLE;
}

static int none_unseal(void *state, unsigned char *plain, size_t plain_cap,
                       size_t *plain_len, const signer_key_meta *meta,
                       const unsigned char *blob, size_t blob_len)
{
    (void)state;
    (void)plain;
    (void)plain_cap;
    (void)meta;
    (void)blob;
    (void)blob_len;
    *plain_len = 0;
    return SIGNER_ERR_UNAVAILABLE;
}

static void none_describe(void *state, char *out, size_t out_len)
{
    (void)state;
    snprintf(out, out_len, "no sealer");
}

const eng_sealer_methods eng_sealer_none = {
    {"none", eng_backend_no_settings, eng_backend_none_open},
    none_seal,
    none_unseal,
    eng_backend_none_ready,
    NULL,
    none_describe,
    eng_backend_none_close,
    NULL,
    NULL};
