/* NSM request and response messages: CBOR, externally tagged enums (a unit
 * variant is a text string, a struct variant a one-entry map).  Pure
 * functions, tested without the device.  See docs/attestation.md. */
#include "config.h"
#include "attest/attest.h"
#include "attest/cbor_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t err_len, const char *msg)
{
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "%s", msg);
}

/* Copies a serialized item into out[0..out_cap). */
static int emit(unsigned char *out, size_t out_cap, size_t *out_len,
                const cbor_item_t *item)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    *out_len = 0;
    if (eng_cbor_serialize(item, &buf, &n) != 0)
        return SIGNER_ERR_NOMEM;
    if (n > out_cap || n > ENG_NSM_REQUEST_MAX) {
        free(buf);
        return SIGNER_ERR_TOO_LARGE;
    }
    memcpy(out, buf, n);
    *out_len = n;
    free(buf);
    return SIGNER_OK;
}

int eng_nsm_encode_get_random(unsigned char *out, size_t out_cap,
                              size_t *out_len)
{
    cbor_item_t *req = eng_cbor_text("GetRandom");
    int rc = req ? emit(out, out_cap, out_len, req) : SIGNER_ERR_NOMEM;
    if (req != NULL)
        cbor_decref(&req);
    return rc;
}

int eng_nsm_encode_attestation(unsigned char *out, size_t out_cap,
                               size_t *out_len, const eng_attest_req *req)
{
    cbor_item_t *outer = cbor_new_definite_map(1);
    cbor_item_t *inner = cbor_new_definite_map(3);
    int rc = SIGNER_ERR_NOMEM;
    *out_len = 0;
    if (outer == NULL || inner == NULL)
        goto cleanup;
    if (!eng_cbor_map_put(inner, eng_cbor_text("user_data"),
                          eng_cbor_bytes_or_null(req->user_data,
                                                 req->user_data_len)) ||
        !eng_cbor_map_put(inner, eng_cbor_text("nonce"),
                          eng_cbor_bytes_or_null(req->nonce, req->nonce_len)) ||
        !eng_cbor_map_put(inner, eng_cbor_text("public_key"),
                          eng_cbor_bytes_or_null(req->public_key,
                                                 req->public_key_len)))
        goto cleanup;
    if (!eng_cbor_map_put(outer, eng_cbor_text("Attestation"), inner)) {
        inner = NULL; /* consumed */
        goto cleanup;
    }
    inner = NULL;
    rc = emit(out, out_cap, out_len, outer);
cleanup:
    if (inner != NULL)
        cbor_decref(&inner);
    if (outer != NULL)
        cbor_decref(&outer);
    return rc;
}

/* Formats {"Error": code} as "NSM error: code" (printable, bounded). */
static void error_answer(const cbor_item_t *code, char *err, size_t err_len)
{
    char text[65];
    size_t i, n;
    if (code == NULL || !cbor_isa_string(code) ||
        !cbor_string_is_definite(code)) {
        set_err(err, err_len, "NSM error answer without a code");
        return;
    }
    n = cbor_string_length(code);
    if (n >= sizeof text)
        n = sizeof text - 1;
    for (i = 0; i < n; i++) {
        unsigned char c = cbor_string_handle(code)[i];
        text[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    text[n] = '\0';
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "NSM error: %s", text);
}

/* The bytes of field inside {variant: {field: bstr}}; borrowed from *root,
 * which the caller frees.  SIGNER_OK or negative with a reason. */
static int answer_field(cbor_item_t **root, const unsigned char **p,
                        size_t *len, const unsigned char *resp,
                        size_t resp_len, const char *variant,
                        const char *field, char *err, size_t err_len)
{
    struct cbor_pair *pair;
    *root = eng_cbor_load(resp, resp_len);
    if (*root == NULL) {
        set_err(err, err_len, "malformed NSM answer (not one CBOR item)");
        return SIGNER_ERR_INTERNAL;
    }
    if (!cbor_isa_map(*root) || cbor_map_size(*root) != 1) {
        set_err(err, err_len, "malformed NSM answer (not a one-entry map)");
        return SIGNER_ERR_INTERNAL;
    }
    pair = cbor_map_handle(*root);
    if (eng_cbor_text_is(pair[0].key, "Error")) {
        error_answer(pair[0].value, err, err_len);
        return SIGNER_ERR_INTERNAL;
    }
    if (!eng_cbor_text_is(pair[0].key, variant)) {
        set_err(err, err_len, "unexpected NSM answer variant");
        return SIGNER_ERR_INTERNAL;
    }
    if (eng_cbor_bytes(eng_cbor_map_get(pair[0].value, field), p, len) != 0) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "malformed NSM %s answer: no bstr %s",
                     variant, field);
        return SIGNER_ERR_INTERNAL;
    }
    return SIGNER_OK;
}

int eng_nsm_decode_get_random(unsigned char *out, size_t out_cap,
                              size_t *out_len, const unsigned char *resp,
                              size_t resp_len, char *err, size_t err_len)
{
    cbor_item_t *root = NULL;
    const unsigned char *p = NULL;
    size_t n = 0;
    int rc = answer_field(&root, &p, &n, resp, resp_len, "GetRandom",
                          "random", err, err_len);
    *out_len = 0;
    if (rc == SIGNER_OK && n == 0) {
        set_err(err, err_len, "NSM GetRandom answer is empty");
        rc = SIGNER_ERR_INTERNAL;
    }
    if (rc == SIGNER_OK) {
        if (n > out_cap)
            n = out_cap;
        memcpy(out, p, n);
        *out_len = n;
    }
    if (root != NULL)
        cbor_decref(&root);
    return rc;
}

int eng_nsm_decode_attestation(unsigned char **doc, size_t *doc_len,
                               const unsigned char *resp, size_t resp_len,
                               char *err, size_t err_len)
{
    cbor_item_t *root = NULL;
    const unsigned char *p = NULL;
    size_t n = 0;
    int rc = answer_field(&root, &p, &n, resp, resp_len, "Attestation",
                          "document", err, err_len);
    *doc = NULL;
    *doc_len = 0;
    if (rc == SIGNER_OK && (n == 0 || n > ENG_ATTEST_DOC_MAX)) {
        set_err(err, err_len, "NSM attestation document empty or too large");
        rc = SIGNER_ERR_INTERNAL;
    }
    if (rc == SIGNER_OK) {
        *doc = malloc(n);
        if (*doc == NULL) {
            rc = SIGNER_ERR_NOMEM;
        } else {
            memcpy(*doc, p, n);
            *doc_len = n;
        }
    }
    if (root != NULL)
        cbor_decref(&root);
    return rc;
}
