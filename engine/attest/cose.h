/* COSE_Sign1 pieces shared by the emulated device and the verifier
 * (RFC 9052, ES384 only; internal). */
#ifndef ENG_ATTEST_COSE_H
#define ENG_ATTEST_COSE_H

#include <stddef.h>
#include <openssl/evp.h>

#define ENG_COSE_ALG_ES384 (-35)
#define ENG_COSE_SIG_LEN 96 /* r || s, 48 bytes each */

/* Sig_structure ["Signature1", protected, h'', payload], malloc'd.
 * 0 ok, -1 on failure. */
int eng_cose_sig_structure(unsigned char **out, size_t *out_len,
                           const unsigned char *prot, size_t prot_len,
                           const unsigned char *payload, size_t payload_len);

/* The protected header {1: -35}, malloc'd.  0 ok, -1 on failure. */
int eng_cose_protected_es384(unsigned char **out, size_t *out_len);

/* ECDSA P-384 / SHA-384 over tbs with key, as fixed r || s.  0 ok, -1. */
int eng_cose_es384_sign(unsigned char sig[ENG_COSE_SIG_LEN], EVP_PKEY *key,
                        const unsigned char *tbs, size_t tbs_len);

/* 1 if sig (r || s) is a valid ES384 signature of tbs by key, else 0. */
int eng_cose_es384_verify(EVP_PKEY *key, const unsigned char *sig,
                          size_t sig_len, const unsigned char *tbs,
                          size_t tbs_len);

/* 1 if key is an EC key on P-384. */
int eng_cose_is_p384(EVP_PKEY *key);

#endif
