/* The enclave's KMS recipient key and the opening of KMS's
 * CiphertextForRecipient (CMS EnvelopedData, BER, KeyTransRecipientInfo
 * with a SubjectKeyIdentifier rid = SHA-256 of the SPKI, RSAES-OAEP-SHA256,
 * AES-256-CBC) through OpenSSL's CMS API.  See docs/aws.md. */
#ifndef ENG_AWS_CMS_H
#define ENG_AWS_CMS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define ENG_AWS_RKEY_BITS 2048
#define ENG_AWS_SPKI_MAX 512

/* An RSA-2048 recipient key: the private half in OpenSSL's secure heap
 * (when eng_secure_init made one), its SPKI DER for the attestation
 * document, and when it was made. */
typedef struct eng_aws_rkey {
    EVP_PKEY *pkey;
    unsigned char spki[ENG_AWS_SPKI_MAX];
    size_t spki_len;
    unsigned char ski[32]; /* SHA-256 of spki: the CMS recipient id */
    int64_t created;       /* unix seconds */
} eng_aws_rkey;

/* Generates a fresh key made at unix time now into *out.  SIGNER_OK,
 * SIGNER_ERR_NOMEM or SIGNER_ERR_INTERNAL (*out NULL then). */
int eng_aws_rkey_new(eng_aws_rkey **out, int64_t now)
    __attribute__((warn_unused_result));
/* Wraps an existing RSA private key given as PKCS#1 or PKCS#8 DER (tests,
 * fixed vectors). */
int eng_aws_rkey_from_der(eng_aws_rkey **out, const unsigned char *der,
                          size_t der_len, int64_t now)
    __attribute__((warn_unused_result));
/* Replaces *slot with a fresh key when it is max_age seconds old or more
 * (the caller decides when to ask, and that no call uses the old key).
 * 1 rotated, 0 still fresh, negative signer_err on failure (*slot kept). */
int eng_aws_rkey_rotate(eng_aws_rkey **slot, int64_t now, int64_t max_age);
/* Frees the key (OpenSSL clears the private numbers); NULL is a no-op. */
void eng_aws_rkey_free(eng_aws_rkey *k);

/* Opens a CiphertextForRecipient (BER/DER ContentInfo) with k into
 * out[0..cap), *out_len bytes.  SIGNER_OK; SIGNER_ERR_BAD_REQUEST when the
 * blob is not EnvelopedData for this key with RSAES-OAEP, or does not
 * decrypt (flipped bytes, wrong key); SIGNER_ERR_TOO_LARGE over cap.  out
 * is wiped on failure. */
int eng_aws_cms_open(unsigned char *out, size_t cap, size_t *out_len,
                     const eng_aws_rkey *k, const unsigned char *cms,
                     size_t cms_len)
    __attribute__((warn_unused_result));

#endif
