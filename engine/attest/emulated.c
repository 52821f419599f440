/* The "emulated" row: an NSM stand-in for development and tests.  It signs
 * real attestation documents (COSE_Sign1, ES384) with a leaf key whose
 * certificate chains to a root the test setup made, PCRs from the config.
 * Nothing it signs proves anything about the hardware: see
 * docs/attestation.md. */
#include "config.h"
#include "attest/attest.h"
#include "attest/cbor_util.h"
#include "attest/cose.h"
#include "attest/nsm_dev.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define EMU_BUNDLE_MAX 8

typedef struct emu_der {
    unsigned char *der;
    size_t len;
} emu_der;

typedef struct emu_state {
    EVP_PKEY *key;
    emu_der leaf;
    emu_der bundle[EMU_BUNDLE_MAX];
    size_t n_bundle;
    char module_id[128];
    unsigned char pcrs[ENG_ATTEST_PCRS][ENG_ATTEST_PCR_LEN];
} emu_state;

static int x509_der(emu_der *out, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0)
        return -1;
    out->der = der;
    out->len = (size_t)n;
    return 0;
}

/* Loads the leaf key and certificate; checks P-384 and that they match. */
static int load_leaf(emu_state *s, const eng_attest_config *cfg, char *err,
                     size_t err_len)
{
    FILE *f = fopen(cfg->signing_key, "r");
    X509 *cert = NULL;
    int rc = -1;
    if (f != NULL) {
        s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!eng_cose_is_p384(s->key)) {
        snprintf(err, err_len, "emulated_nsm.signing_key %s: not a readable "
                 "EC P-384 private key (PEM)", cfg->signing_key);
        return -1;
    }
    f = fopen(cfg->certificate, "r");
    if (f != NULL) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (cert == NULL || X509_check_private_key(cert, s->key) != 1) {
        snprintf(err, err_len, "emulated_nsm.certificate %s: not a readable "
                 "PEM certificate for signing_key", cfg->certificate);
        goto cleanup;
    }
    if (x509_der(&s->leaf, cert) != 0) {
        snprintf(err, err_len, "emulated_nsm.certificate: cannot encode");
        goto cleanup;
    }
    rc = 0;
cleanup:
    X509_free(cert);
    return rc;
}

/* Loads the CA bundle (PEM certificates, root first). */
static int load_bundle(emu_state *s, const eng_attest_config *cfg, char *err,
                       size_t err_len)
{
    FILE *f = fopen(cfg->cabundle, "r");
    X509 *x;
    if (f == NULL) {
        snprintf(err, err_len, "emulated_nsm.cabundle %s: cannot open",
                 cfg->cabundle);
        return -1;
    }
    while (s->n_bundle < EMU_BUNDLE_MAX &&
           (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        int bad = x509_der(&s->bundle[s->n_bundle], x);
        X509_free(x);
        if (bad)
            break;
        s->n_bundle++;
    }
    fclose(f);
    ERR_clear_error(); /* the read that ended the loop */
    if (s->n_bundle == 0) {
        snprintf(err, err_len, "emulated_nsm.cabundle %s: no PEM "
                 "certificate", cfg->cabundle);
        return -1;
    }
    return 0;
}

static void emu_close(void *state)
{
    emu_state *s = state;
    size_t i;
    if (s == NULL)
        return;
    EVP_PKEY_free(s->key);
    OPENSSL_free(s->leaf.der);
    for (i = 0; i < s->n_bundle; i++)
        OPENSSL_free(s->bundle[i].der);
    free(s);
}

static int emu_open(void **state, const eng_attest_config *cfg, char *err,
                    size_t err_len)
{
    emu_state *s;
    *state = NULL;
    if (cfg->signing_key == NULL || cfg->certificate == NULL ||
        cfg->cabundle == NULL) {
        snprintf(err, err_len, "emulated_nsm: signing_key, certificate and "
                 "cabundle are required");
        return SIGNER_ERR_CONFIG;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return SIGNER_ERR_NOMEM;
    snprintf(s->module_id, sizeof s->module_id, "%s",
             cfg->module_id ? cfg->module_id : "i-emulated-enc0000000000000000");
    memcpy(s->pcrs, cfg->pcrs, sizeof s->pcrs);
    if (load_leaf(s, cfg, err, err_len) != 0 ||
        load_bundle(s, cfg, err, err_len) != 0) {
        emu_close(s);
        return SIGNER_ERR_CONFIG;
    }
    *state = s;
    return SIGNER_OK;
}

static int emu_get_random(void *state, unsigned char *out, size_t len)
{
    return eng_random(out, len) == 0 ? SIGNER_OK : SIGNER_ERR_INTERNAL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* {index: bstr(48)} for all 32 PCRs, as the NSM reports them. */
static cbor_item_t *pcr_map(const emu_state *s)
{
    cbor_item_t *m = cbor_new_definite_map(ENG_ATTEST_PCRS);
    unsigned i;
    for (i = 0; m != NULL && i < ENG_ATTEST_PCRS; i++) {
        if (!eng_cbor_map_put(m, eng_cbor_uint(i),
                              cbor_build_bytestring(s->pcrs[i],
                                                    ENG_ATTEST_PCR_LEN)))
            cbor_decref(&m);
    }
    return m;
}

static cbor_item_t *bundle_array(const emu_state *s)
{
    cbor_item_t *a = cbor_new_definite_array(s->n_bundle);
    size_t i;
    for (i = 0; a != NULL && i < s->n_bundle; i++) {
        if (!eng_cbor_array_put(a, cbor_build_bytestring(s->bundle[i].der,
                                                         s->bundle[i].len)))
            cbor_decref(&a);
    }
    return a;
}

/* The attestation payload map, serialized and malloc'd. */
static int build_payload(unsigned char **out, size_t *out_len,
                         const emu_state *s, const eng_attest_req *req)
{
    cbor_item_t *m = cbor_new_definite_map(9);
    int rc = -1;
    if (m != NULL &&
        eng_cbor_map_put(m, eng_cbor_text("module_id"),
                         eng_cbor_text(s->module_id)) &&
        eng_cbor_map_put(m, eng_cbor_text("digest"), eng_cbor_text("SHA384")) &&
        eng_cbor_map_put(m, eng_cbor_text("timestamp"),
                         cbor_build_uint64(now_ms())) &&
        eng_cbor_map_put(m, eng_cbor_text("pcrs"), pcr_map(s)) &&
        eng_cbor_map_put(m, eng_cbor_text("certificate"),
                         cbor_build_bytestring(s->leaf.der, s->leaf.len)) &&
        eng_cbor_map_put(m, eng_cbor_text("cabundle"), bundle_array(s)) &&
        eng_cbor_map_put(m, eng_cbor_text("public_key"),
                         eng_cbor_bytes_or_null(req->public_key,
                                                req->public_key_len)) &&
        eng_cbor_map_put(m, eng_cbor_text("user_data"),
                         eng_cbor_bytes_or_null(req->user_data,
                                                req->user_data_len)) &&
        eng_cbor_map_put(m, eng_cbor_text("nonce"),
                         eng_cbor_bytes_or_null(req->nonce, req->nonce_len)))
        rc = eng_cbor_serialize(m, out, out_len);
    if (m != NULL)
        cbor_decref(&m);
    return rc;
}

/* [bstr protected, {}, bstr payload, bstr signature], serialized. */
static int build_cose(unsigned char **doc, size_t *doc_len,
                      const unsigned char *prot, size_t prot_len,
                      const unsigned char *payload, size_t payload_len,
                      const unsigned char *sig)
{
    cbor_item_t *a = cbor_new_definite_array(4);
    int rc = -1;
    if (a != NULL &&
        eng_cbor_array_put(a, cbor_build_bytestring(prot, prot_len)) &&
        eng_cbor_array_put(a, cbor_new_definite_map(0)) &&
        eng_cbor_array_put(a, cbor_build_bytestring(payload, payload_len)) &&
        eng_cbor_array_put(a, cbor_build_bytestring(sig, ENG_COSE_SIG_LEN)))
        rc = eng_cbor_serialize(a, doc, doc_len);
    if (a != NULL)
        cbor_decref(&a);
    return rc;
}

static int emu_attest(void *state, unsigned char **doc, size_t *doc_len,
                      const eng_attest_req *req, char *err, size_t err_len)
{
    emu_state *s = state;
    unsigned char *prot = NULL, *payload = NULL, *tbs = NULL;
    unsigned char sig[ENG_COSE_SIG_LEN];
    size_t prot_len, payload_len, tbs_len;
    int rc = SIGNER_ERR_INTERNAL;
    *doc = NULL;
    *doc_len = 0;
    if (eng_cose_protected_es384(&prot, &prot_len) != 0 ||
        build_payload(&payload, &payload_len, s, req) != 0 ||
        eng_cose_sig_structure(&tbs, &tbs_len, prot, prot_len, payload,
                               payload_len) != 0) {
        snprintf(err, err_len, "emulated NSM: cannot encode the document");
        goto cleanup;
    }
    if (eng_cose_es384_sign(sig, s->key, tbs, tbs_len) != 0) {
        snprintf(err, err_len, "emulated NSM: ES384 signing failed");
        goto cleanup;
    }
    if (build_cose(doc, doc_len, prot, prot_len, payload, payload_len,
                   sig) != 0) {
        snprintf(err, err_len, "emulated NSM: cannot encode COSE_Sign1");
        goto cleanup;
    }
    rc = SIGNER_OK;
cleanup:
    free(prot);
    free(payload);
    free(tbs);
    return rc;
}

/* The emulated row of the attestation table. */
const eng_attest_methods eng_attest_emulated_methods = {
    .name = "emulated",
    .open = emu_open,
    .get_random = emu_get_random,
    .attest = emu_attest,
    .close = emu_close,
};
