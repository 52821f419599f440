/* Verification of attestation documents: COSE_Sign1 (optionally tag 18)
 * over a definite or indefinite payload map, ES384 with the leaf key, the
 * chain leaf -> cabundle[n-1] .. -> cabundle[0], a pinned root and a
 * freshness window.  See docs/attestation.md. */
#include "config.h"
#include "attest/attest.h"
#include "attest/cbor_util.h"
#include "attest/cose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define CABUNDLE_MAX 8
#define COSE_TAG_SIGN1 18

/* SHA-256 of the DER of the AWS Nitro Enclaves root (CN=aws.nitro-enclaves). */
const unsigned char eng_attest_aws_root_sha256[32] = {
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46,
    0x31, 0x95, 0xd6, 0x06, 0x31, 0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17,
    0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b};

/* A document taken apart; pointers borrow from the two items. */
typedef struct parsed {
    cbor_item_t *cose;
    cbor_item_t *payload;
    const unsigned char *prot, *body, *sig, *leaf;
    size_t prot_len, body_len, sig_len, leaf_len;
    const cbor_item_t *bundle;
} parsed;

#define FAIL(code, ...)                                                       \
    do {                                                                      \
        if (err != NULL && err_len > 0)                                       \
            snprintf(err, err_len, __VA_ARGS__);                              \
        return (code);                                                        \
    } while (0)

static void parsed_cleanup(parsed *p)
{
    if (p->cose != NULL)
        cbor_decref(&p->cose);
    if (p->payload != NULL)
        cbor_decref(&p->payload);
}

/* 1 if prot is the map {1: -35} (ES384), other header parameters allowed. */
static int protected_is_es384(const unsigned char *prot, size_t prot_len)
{
    cbor_item_t *m = eng_cbor_load(prot, prot_len);
    struct cbor_pair *pairs;
    size_t i;
    int ok = 0;
    if (m == NULL)
        return 0;
    if (cbor_isa_map(m)) {
        pairs = cbor_map_handle(m);
        for (i = 0; i < cbor_map_size(m); i++) {
            if (!cbor_isa_uint(pairs[i].key) || cbor_get_int(pairs[i].key) != 1)
                continue;
            ok = cbor_isa_negint(pairs[i].value) &&
                 cbor_get_int(pairs[i].value) ==
                     (uint64_t)(-1 - ENG_COSE_ALG_ES384);
        }
    }
    cbor_decref(&m);
    return ok;
}

/* The outer COSE_Sign1 array. */
static int parse_cose(parsed *p, const unsigned char *doc, size_t doc_len,
                      char *err, size_t err_len)
{
    cbor_item_t **f;
    /* Tag 18 (COSE_Sign1) is skipped here: libcbor 0.8 refuses tags 6..20,
     * unassigned when it was written. */
    if (doc_len > 1 && doc[0] == 0xC0 + COSE_TAG_SIGN1) {
        doc++;
        doc_len--;
    }
    p->cose = eng_cbor_load(doc, doc_len);
    if (p->cose == NULL)
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation document is not one CBOR "
             "item");
    if (!cbor_isa_array(p->cose) || cbor_array_size(p->cose) != 4)
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation document is not a "
             "COSE_Sign1 array of 4");
    f = cbor_array_handle(p->cose);
    if (eng_cbor_bytes(f[0], &p->prot, &p->prot_len) != 0 ||
        !protected_is_es384(p->prot, p->prot_len))
        FAIL(SIGNER_ERR_BAD_REQUEST, "COSE protected header is not "
             "{1: -35} (ES384)");
    if (!cbor_isa_map(f[1]))
        FAIL(SIGNER_ERR_BAD_REQUEST, "COSE unprotected header is not a map");
    if (eng_cbor_bytes(f[2], &p->body, &p->body_len) != 0 || p->body_len == 0)
        FAIL(SIGNER_ERR_BAD_REQUEST, "COSE payload is not a byte string");
    if (eng_cbor_bytes(f[3], &p->sig, &p->sig_len) != 0 ||
        p->sig_len != ENG_COSE_SIG_LEN)
        FAIL(SIGNER_ERR_BAD_REQUEST, "COSE signature is not 96 bytes");
    return SIGNER_OK;
}

/* A bstr-or-null field copied out (malloc'd; NULL for null or absent). */
static int opt_bytes(unsigned char **out, size_t *out_len,
                     const cbor_item_t *map, const char *name)
{
    const cbor_item_t *v = eng_cbor_map_get(map, name);
    const unsigned char *p;
    size_t n;
    if ((v != NULL && cbor_is_null(v)) || eng_cbor_map_count(map, name) == 0)
        return 0;
    if (eng_cbor_bytes(v, &p, &n) != 0 || n > ENG_ATTEST_FIELD_MAX)
        return -1;
    *out = malloc(n ? n : 1);
    if (*out == NULL)
        return -1;
    if (n > 0)
        memcpy(*out, p, n);
    *out_len = n;
    return 0;
}

static int parse_pcrs(eng_attest_doc *d, const cbor_item_t *m)
{
    struct cbor_pair *pairs;
    size_t i;
    if (m == NULL || !cbor_isa_map(m) || cbor_map_size(m) == 0)
        return -1;
    pairs = cbor_map_handle(m);
    for (i = 0; i < cbor_map_size(m); i++) {
        const unsigned char *v;
        size_t n;
        uint64_t idx;
        if (!cbor_isa_uint(pairs[i].key))
            return -1;
        idx = cbor_get_int(pairs[i].key);
        if (idx >= ENG_ATTEST_PCRS || (d->pcr_mask >> idx) & 1u ||
            eng_cbor_bytes(pairs[i].value, &v, &n) != 0 ||
            n != ENG_ATTEST_PCR_LEN)
            return -1;
        memcpy(d->pcrs[idx], v, n);
        d->pcr_mask |= 1u << idx;
    }
    return 0;
}

static int parse_text(char *out, size_t cap, const cbor_item_t *v)
{
    size_t n;
    if (v == NULL || !cbor_isa_string(v) || !cbor_string_is_definite(v))
        return -1;
    n = cbor_string_length(v);
    if (n == 0 || n >= cap || memchr(cbor_string_handle(v), 0, n) != NULL)
        return -1;
    memcpy(out, cbor_string_handle(v), n);
    out[n] = '\0';
    return 0;
}

/* The payload map into d; certificate and cabundle kept borrowed in p. */
static int parse_payload(parsed *p, eng_attest_doc *d, char *err,
                         size_t err_len)
{
    const cbor_item_t *m, *ts, *b;
    size_t i;
    p->payload = eng_cbor_load(p->body, p->body_len);
    m = p->payload;
    if (m == NULL || !cbor_isa_map(m))
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload is not a CBOR map");
    if (parse_text(d->module_id, sizeof d->module_id,
                   eng_cbor_map_get(m, "module_id")) != 0)
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: bad module_id");
    if (!eng_cbor_text_is(eng_cbor_map_get(m, "digest"), "SHA384"))
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: digest is not "
             "SHA384");
    ts = eng_cbor_map_get(m, "timestamp");
    if (ts == NULL || !cbor_isa_uint(ts))
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: bad timestamp");
    d->timestamp_ms = cbor_get_int(ts);
    if (parse_pcrs(d, eng_cbor_map_get(m, "pcrs")) != 0)
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: bad pcrs");
    if (eng_cbor_bytes(eng_cbor_map_get(m, "certificate"), &p->leaf,
                       &p->leaf_len) != 0 || p->leaf_len == 0)
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: bad certificate");
    b = eng_cbor_map_get(m, "cabundle");
    if (b == NULL || !cbor_isa_array(b) || cbor_array_size(b) == 0 ||
        cbor_array_size(b) > CABUNDLE_MAX)
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: bad cabundle");
    for (i = 0; i < cbor_array_size(b); i++) {
        const unsigned char *x;
        size_t n;
        if (eng_cbor_bytes(cbor_array_handle(b)[i], &x, &n) != 0 || n == 0)
            FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: bad cabundle");
    }
    p->bundle = b;
    if (opt_bytes(&d->public_key, &d->public_key_len, m, "public_key") ||
        opt_bytes(&d->user_data, &d->user_data_len, m, "user_data") ||
        opt_bytes(&d->nonce, &d->nonce_len, m, "nonce"))
        FAIL(SIGNER_ERR_BAD_REQUEST, "attestation payload: public_key, "
             "user_data or nonce is not a byte string (<= %d) or null",
             ENG_ATTEST_FIELD_MAX);
    return SIGNER_OK;
}

static int parse_all(parsed *p, eng_attest_doc *d, const unsigned char *doc,
                     size_t doc_len, char *err, size_t err_len)
{
    int rc;
    memset(p, 0, sizeof *p);
    memset(d, 0, sizeof *d);
    if (doc == NULL || doc_len == 0 || doc_len > ENG_ATTEST_DOC_MAX) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "attestation document empty or over %d "
                     "bytes", ENG_ATTEST_DOC_MAX);
        return SIGNER_ERR_BAD_REQUEST;
    }
    rc = parse_cose(p, doc, doc_len, err, err_len);
    if (rc == SIGNER_OK)
        rc = parse_payload(p, d, err, err_len);
    return rc;
}

static X509 *der_cert(const unsigned char *der, size_t len)
{
    const unsigned char *q = der;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    if (x != NULL && q != der + len) { /* trailing bytes */
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The COSE signature, checked with the leaf certificate's key. */
static int check_signature(const parsed *p, X509 *leaf, char *err,
                           size_t err_len)
{
    unsigned char *tbs = NULL;
    size_t tbs_len = 0;
    int ok;
    if (eng_cose_sig_structure(&tbs, &tbs_len, p->prot, p->prot_len, p->body,
                               p->body_len) != 0)
        FAIL(SIGNER_ERR_NOMEM, "cannot build the COSE Sig_structure");
    ok = eng_cose_es384_verify(X509_get0_pubkey(leaf), p->sig, p->sig_len,
                               tbs, tbs_len);
    free(tbs);
    if (!ok)
        FAIL(SIGNER_ERR_FORBIDDEN, "attestation signature does not verify "
             "with the leaf certificate's P-384 key");
    return SIGNER_OK;
}

/* cabundle[0] is the pinned root. */
static int check_root(const unsigned char *der, size_t len,
                      const eng_attest_policy *pol)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    if (pol->root_der != NULL)
        return len == pol->root_der_len && memcmp(der, pol->root_der, len) == 0;
    if (pol->root_sha256 == NULL)
        return 0;
    SHA256(der, len, h);
    return memcmp(h, pol->root_sha256, sizeof h) == 0;
}

/* leaf -> cabundle[n-1] -> .. -> cabundle[0] (trusted), at time now. */
static int check_chain(const parsed *p, X509 *leaf, const eng_attest_policy *pol,
                       time_t now, char *err, size_t err_len)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *root = NULL;
    size_t i, n = cbor_array_size(p->bundle);
    int rc = SIGNER_ERR_NOMEM, vr = 0;
    cbor_item_t **items = cbor_array_handle(p->bundle);
    if (store == NULL || ctx == NULL || untrusted == NULL)
        goto cleanup;
    rc = SIGNER_ERR_FORBIDDEN;
    for (i = 0; i < n; i++) {
        X509 *x = der_cert(cbor_bytestring_handle(items[i]),
                           cbor_bytestring_length(items[i]));
        if (x == NULL) {
            snprintf(err, err_len, "cabundle[%zu] is not a DER certificate", i);
            goto cleanup;
        }
        if (i == 0) {
            root = x;
        } else if (!sk_X509_push(untrusted, x)) {
            X509_free(x);
            goto cleanup;
        }
    }
    if (!check_root(cbor_bytestring_handle(items[0]),
                    cbor_bytestring_length(items[0]), pol)) {
        snprintf(err, err_len, "cabundle[0] is not the pinned root "
                 "certificate");
        goto cleanup;
    }
    if (!X509_STORE_add_cert(store, root) ||
        !X509_STORE_CTX_init(ctx, store, leaf, untrusted))
        goto cleanup;
    X509_STORE_CTX_set_time(ctx, 0, now);
    vr = X509_verify_cert(ctx);
    if (vr != 1 || sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) != (int)n + 1) {
        snprintf(err, err_len, "attestation certificate chain does not "
                 "verify: %s", vr != 1 ? X509_verify_cert_error_string(
                     X509_STORE_CTX_get_error(ctx)) : "unused cabundle "
                 "certificates");
        goto cleanup;
    }
    rc = SIGNER_OK;
cleanup:
    if (rc == SIGNER_ERR_NOMEM)
        snprintf(err, err_len, "out of memory verifying the chain");
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(root);
    sk_X509_pop_free(untrusted, X509_free);
    return rc;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int check_fresh(const eng_attest_doc *d, const eng_attest_policy *pol,
                       uint64_t now, char *err, size_t err_len)
{
    if (d->timestamp_ms > now + pol->max_skew_ms)
        FAIL(SIGNER_ERR_FORBIDDEN, "attestation timestamp is in the future");
    if (d->timestamp_ms < now && now - d->timestamp_ms > pol->max_age_ms)
        FAIL(SIGNER_ERR_FORBIDDEN, "attestation document is stale (%llu ms "
             "old, limit %llu ms)",
             (unsigned long long)(now - d->timestamp_ms),
             (unsigned long long)pol->max_age_ms);
    return SIGNER_OK;
}

int eng_attest_verify(eng_attest_doc *out, const unsigned char *doc,
                      size_t doc_len, const eng_attest_policy *pol, char *err,
                      size_t err_len)
{
    parsed p;
    X509 *leaf = NULL;
    uint64_t now = pol->now_ms ? pol->now_ms : wall_ms();
    int rc = parse_all(&p, out, doc, doc_len, err, err_len);
    if (rc != SIGNER_OK)
        goto cleanup;
    leaf = der_cert(p.leaf, p.leaf_len);
    rc = SIGNER_ERR_FORBIDDEN;
    if (leaf == NULL || !eng_cose_is_p384(X509_get0_pubkey(leaf))) {
        snprintf(err, err_len, "attestation certificate is not a DER "
                 "certificate with a P-384 key");
        goto cleanup;
    }
    rc = check_signature(&p, leaf, err, err_len);
    if (rc == SIGNER_OK)
        rc = check_fresh(out, pol, now, err, err_len);
    if (rc == SIGNER_OK)
        rc = check_chain(&p, leaf, pol, (time_t)(now / 1000), err, err_len);
cleanup:
    X509_free(leaf);
    parsed_cleanup(&p);
    if (rc != SIGNER_OK)
        eng_attest_doc_cleanup(out);
    return rc;
}

int eng_attest_parse(eng_attest_doc *out, const unsigned char *doc,
                     size_t doc_len, char *err, size_t err_len)
{
    parsed p;
    int rc = parse_all(&p, out, doc, doc_len, err, err_len);
    parsed_cleanup(&p);
    if (rc != SIGNER_OK)
        eng_attest_doc_cleanup(out);
    return rc;
}

void eng_attest_doc_cleanup(eng_attest_doc *d)
{
    if (d == NULL)
        return;
    free(d->public_key);
    free(d->user_data);
    free(d->nonce);
    memset(d, 0, sizeof *d);
}
