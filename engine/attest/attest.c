/* The attestation device: backend table, opening from the config, start-up
 * warnings, randomness and documents.  See docs/attestation.md. */
#include "config.h"
#include "attest/attest.h"
#include "attest/nsm_dev.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_attest {
    const eng_attest_methods *m;
    void *state;
    char warnings[512];
};

static const eng_attest_methods *const rows[] = {
    &eng_attest_nsm_methods,
    &eng_attest_emulated_methods,
};

const eng_attest_methods *eng_attest_methods_find(const char *name)
{
    size_t i;
    for (i = 0; name != NULL && i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(rows[i]->name, name) == 0)
            return rows[i];
    return NULL;
}

static void add_warning(eng_attest *a, const char *w)
{
    size_t n = strlen(a->warnings);
    snprintf(a->warnings + n, sizeof a->warnings - n, "%s\n", w);
    eng_log(SIGNER_LOG_WARN, "%s", w);
}

/* Takes one document from the device and warns about emulation and an
 * all-zero PCR0 (debug mode). */
static int startup_checks(eng_attest *a, char *err, size_t err_len)
{
    static const unsigned char zero[ENG_ATTEST_PCR_LEN];
    eng_attest_req req = {0};
    eng_attest_doc d;
    unsigned char *doc = NULL;
    size_t doc_len = 0;
    int rc = a->m->attest(a->state, &doc, &doc_len, &req, err, err_len);
    if (rc != SIGNER_OK)
        return rc;
    rc = eng_attest_parse(&d, doc, doc_len, err, err_len);
    free(doc);
    if (rc != SIGNER_OK)
        return rc;
    if (strcmp(a->m->name, "emulated") == 0)
        add_warning(a, "attestation is EMULATED: documents are signed by a "
                       "test CA, not by AWS Nitro; for development only");
    if (!(d.pcr_mask & 1u) || memcmp(d.pcrs[0], zero, sizeof zero) == 0)
        add_warning(a, "PCR0 is all zero (Nitro debug mode): never name it "
                       "in a production key policy");
    eng_attest_doc_cleanup(&d);
    return SIGNER_OK;
}

eng_attest *eng_attest_open(const eng_attest_config *cfg, char *err,
                            size_t err_len)
{
    const eng_attest_methods *m = eng_attest_methods_find(cfg->attestation);
    eng_attest *a;
    if (m == NULL) {
        snprintf(err, err_len, "attestation: unknown device \"%s\" (\"nsm\" "
                 "or \"emulated\")", cfg->attestation ? cfg->attestation : "");
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    a->m = m;
    if (m->open(&a->state, cfg, err, err_len) != SIGNER_OK ||
        startup_checks(a, err, err_len) != SIGNER_OK) {
        eng_attest_close(a);
        return NULL;
    }
    return a;
}

void eng_attest_close(eng_attest *a)
{
    if (a == NULL)
        return;
    if (a->state != NULL)
        a->m->close(a->state);
    free(a);
}

const char *eng_attest_name(const eng_attest *a)
{
    return a->m->name;
}

const char *eng_attest_warnings(const eng_attest *a)
{
    return a->warnings;
}

int eng_attest_get_random(eng_attest *a, unsigned char *out, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t n = len - done;
        int rc;
        if (n > ENG_ATTEST_RANDOM_MAX)
            n = ENG_ATTEST_RANDOM_MAX;
        rc = a->m->get_random(a->state, out + done, n);
        if (rc != SIGNER_OK) {
            eng_wipe(out, len);
            return rc;
        }
        done += n;
    }
    return SIGNER_OK;
}

int eng_attest_mix_random(eng_attest *a, unsigned char *out, size_t len)
{
    unsigned char buf[ENG_ATTEST_RANDOM_MAX];
    size_t done = 0, i;
    int rc = SIGNER_OK;
    if (eng_random(out, len) != 0) {
        eng_wipe(out, len);
        return SIGNER_ERR_INTERNAL;
    }
    while (rc == SIGNER_OK && done < len) {
        size_t n = len - done < sizeof buf ? len - done : sizeof buf;
        rc = eng_attest_get_random(a, buf, n);
        for (i = 0; rc == SIGNER_OK && i < n; i++)
            out[done + i] ^= buf[i];
        done += n;
    }
    eng_wipe(buf, sizeof buf);
    if (rc != SIGNER_OK)
        eng_wipe(out, len);
    return rc;
}

int eng_attest_document(eng_attest *a, unsigned char **doc, size_t *doc_len,
                        const eng_attest_req *req, char *err, size_t err_len)
{
    *doc = NULL;
    *doc_len = 0;
    if ((req->public_key && req->public_key_len > ENG_ATTEST_FIELD_MAX) ||
        (req->user_data && req->user_data_len > ENG_ATTEST_DATA_MAX) ||
        (req->nonce && req->nonce_len > ENG_ATTEST_DATA_MAX)) {
        snprintf(err, err_len, "attestation fields too large (public_key "
                 "<= %d, user_data and nonce <= %d bytes)",
                 ENG_ATTEST_FIELD_MAX, ENG_ATTEST_DATA_MAX);
        return SIGNER_ERR_TOO_LARGE;
    }
    return a->m->attest(a->state, doc, doc_len, req, err, err_len);
}
