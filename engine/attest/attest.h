/* Attestation device: the Nitro Security Module (/dev/nsm) or an emulated
 * one that signs real COSE_Sign1 attestation documents with a test CA, plus
 * a verifier for such documents.  Backends are rows of a small table picked
 * by name from the config (`attestation = "nsm" | "emulated"`).  An open
 * device may be used from several threads at once.
 * Document format and what it binds: docs/attestation.md. */
#ifndef ENG_ATTEST_H
#define ENG_ATTEST_H

#include <stddef.h>
#include <stdint.h>
#include <libconfig.h>
#include <signer/plugin.h>

#define ENG_ATTEST_PCRS 32        /* PCR indexes 0..31 */
#define ENG_ATTEST_PCR_LEN 48     /* SHA-384 */
#define ENG_ATTEST_FIELD_MAX 1024 /* public_key (and any field read) */
#define ENG_ATTEST_DATA_MAX 512   /* user_data, nonce in a request */
#define ENG_ATTEST_DOC_MAX 16384  /* a document is about 4.5 KB */
#define ENG_ATTEST_RANDOM_MAX 256 /* bytes per GetRandom answer */

/* What to build the device from (see eng_attest_conf_parse). */
typedef struct eng_attest_config {
    char *attestation;  /* "nsm" or "emulated" */
    char *device;       /* nsm: device path, default "/dev/nsm" */
    char *module_id;    /* emulated: reported module id */
    char *signing_key;  /* emulated: leaf EC P-384 private key, PEM file */
    char *certificate;  /* emulated: leaf certificate, PEM file */
    char *cabundle;     /* emulated: CA certificates, PEM file, root first */
    unsigned char pcrs[ENG_ATTEST_PCRS][ENG_ATTEST_PCR_LEN]; /* others 0 */
} eng_attest_config;

/* What an attestation binds.  A NULL field is sent as CBOR null. */
typedef struct eng_attest_req {
    const unsigned char *public_key;
    size_t public_key_len;
    const unsigned char *user_data;
    size_t user_data_len;
    const unsigned char *nonce;
    size_t nonce_len;
} eng_attest_req;

/* One backend.  open fills *state (NULL on failure, reason in err). */
typedef struct eng_attest_methods {
    const char *name;
    int (*open)(void **state, const eng_attest_config *cfg, char *err,
                size_t err_len);
    /* Fills out[0..len) (len <= ENG_ATTEST_RANDOM_MAX) from the device. */
    int (*get_random)(void *state, unsigned char *out, size_t len);
    /* A malloc'd attestation document binding req. */
    int (*attest)(void *state, unsigned char **doc, size_t *doc_len,
                  const eng_attest_req *req, char *err, size_t err_len);
    void (*close)(void *state);
} eng_attest_methods;

typedef struct eng_attest eng_attest;

/* The row named name ("nsm", "emulated"), or NULL. */
const eng_attest_methods *eng_attest_methods_find(const char *name);

/* Reads `attestation` and the `emulated_nsm` group from the config root;
 * relative file names resolve against dir.  0, or -1 with a reason naming
 * the key in err.  Free with eng_attest_config_cleanup. */
int eng_attest_conf_parse(eng_attest_config *out,
                          const config_setting_t *root, const char *dir,
                          char *err, size_t err_len);
void eng_attest_config_cleanup(eng_attest_config *c);

/* Opens the configured device; NULL with a reason in err.  A missing
 * /dev/nsm fails here with a message naming it. */
eng_attest *eng_attest_open(const eng_attest_config *cfg, char *err,
                            size_t err_len);
void eng_attest_close(eng_attest *a);

/* Name of the open backend ("nsm" or "emulated"). */
const char *eng_attest_name(const eng_attest *a);

/* Warnings about the device, one per line ("" when none): emulated
 * attestation, all-zero PCR0 (debug mode).  Log them at start and expose
 * them in /metrics.  Borrowed; lives as long as a. */
const char *eng_attest_warnings(const eng_attest *a);

/* Fills out[0..len) with device randomness (any len).  SIGNER_OK or a
 * negative signer_err; out wiped on failure. */
int eng_attest_get_random(eng_attest *a, unsigned char *out, size_t len)
    SIGNER_WARN_UNUSED;

/* Key generation entropy: out = OS CSPRNG bytes XOR device GetRandom bytes.
 * SIGNER_OK or a negative signer_err; out wiped on failure. */
int eng_attest_mix_random(eng_attest *a, unsigned char *out, size_t len)
    SIGNER_WARN_UNUSED;

/* A fresh attestation document binding req, malloc'd into *doc.  A
 * public_key over ENG_ATTEST_FIELD_MAX or user_data or nonce over
 * ENG_ATTEST_DATA_MAX gives SIGNER_ERR_TOO_LARGE.  SIGNER_OK or a
 * negative signer_err with a reason in err. */
int eng_attest_document(eng_attest *a, unsigned char **doc, size_t *doc_len,
                        const eng_attest_req *req, char *err, size_t err_len)
    SIGNER_WARN_UNUSED;

/* ---- NSM messages (pure CBOR; no device needed) ---- */

#define ENG_NSM_REQUEST_MAX 4096
#define ENG_NSM_RESPONSE_MAX 12288

/* Encodes the request "GetRandom" into out.  SIGNER_OK or negative. */
int eng_nsm_encode_get_random(unsigned char *out, size_t out_cap,
                              size_t *out_len);
/* Encodes {"Attestation": {"user_data", "nonce", "public_key"}}. */
int eng_nsm_encode_attestation(unsigned char *out, size_t out_cap,
                               size_t *out_len, const eng_attest_req *req);
/* Decodes {"GetRandom": {"random": bstr}} into out (up to out_cap bytes).
 * An {"Error": code} answer or a malformed one: negative, reason in err. */
int eng_nsm_decode_get_random(unsigned char *out, size_t out_cap,
                              size_t *out_len, const unsigned char *resp,
                              size_t resp_len, char *err, size_t err_len);
/* Decodes {"Attestation": {"document": bstr}} into a malloc'd *doc. */
int eng_nsm_decode_attestation(unsigned char **doc, size_t *doc_len,
                               const unsigned char *resp, size_t resp_len,
                               char *err, size_t err_len);

/* 1 if buf[0..len) is exactly one well-formed CBOR item whose declared
 * lengths fit in the input, nested at most max_depth deep; else 0.  Run
 * before libcbor's decoder so a hostile length never drives an allocation. */
int eng_cbor_well_formed(const unsigned char *buf, size_t len, int max_depth);

/* ---- Verification (verify.c) ---- */

/* The content of an attestation document.  Byte fields are malloc'd, NULL
 * when the document holds null. */
typedef struct eng_attest_doc {
    char module_id[128];
    uint64_t timestamp_ms;
    uint32_t pcr_mask; /* bit i set: pcrs[i] present */
    unsigned char pcrs[ENG_ATTEST_PCRS][ENG_ATTEST_PCR_LEN];
    unsigned char *public_key;
    size_t public_key_len;
    unsigned char *user_data;
    size_t user_data_len;
    unsigned char *nonce;
    size_t nonce_len;
} eng_attest_doc;

/* What a verifier trusts.  The root (cabundle[0]) must equal root_der, or
 * hash to root_sha256 when root_der is NULL. */
typedef struct eng_attest_policy {
    const unsigned char *root_der;
    size_t root_der_len;
    const unsigned char *root_sha256; /* 32 bytes */
    uint64_t now_ms;     /* 0: the wall clock */
    uint64_t max_age_ms; /* a document older than this is stale */
    uint64_t max_skew_ms; /* tolerated timestamp in the future */
} eng_attest_policy;

/* The SHA-256 of the AWS Nitro Enclaves root certificate (DER). */
extern const unsigned char eng_attest_aws_root_sha256[32];

/* Verifies doc against pol: COSE_Sign1 ES384 with the leaf key, the chain
 * leaf -> cabundle[n-1] .. -> cabundle[0], the pinned root, freshness.
 * On success fills *out (free with eng_attest_doc_cleanup).  SIGNER_OK,
 * SIGNER_ERR_BAD_REQUEST (malformed) or SIGNER_ERR_FORBIDDEN (signature,
 * chain, root or freshness), with a reason in err; *out zeroed on failure. */
int eng_attest_verify(eng_attest_doc *out, const unsigned char *doc,
                      size_t doc_len, const eng_attest_policy *pol, char *err,
                      size_t err_len) SIGNER_WARN_UNUSED;

/* Parses doc without checking signature, chain or time (for the device's
 * own documents).  Same results as eng_attest_verify. */
int eng_attest_parse(eng_attest_doc *out, const unsigned char *doc,
                     size_t doc_len, char *err, size_t err_len)
    SIGNER_WARN_UNUSED;

void eng_attest_doc_cleanup(eng_attest_doc *d);

#endif
