/* Recipient key and CiphertextForRecipient opening (see cms.h).
 *
 * What is locked: with the engine's secure heap set up (eng_secure_init,
 * CRYPTO_secure_malloc_init), OpenSSL allocates the RSA private numbers
 * (d, p, q, dP, dQ, qInv) from it during generation and DER decoding, and
 * the decrypted plaintext passes through a BIO_s_secmem buffer.  What is
 * not: the Montgomery contexts OpenSSL caches for p and q after the first
 * private operation, and its temporaries during OAEP decoding, live on the
 * ordinary heap (cleared when freed, but not mlocked).  docs/aws.md. */
#include "config.h"
#include "aws/cms.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <signer/plugin.h>

#include "util.h"

/* Fills spki and ski from k->pkey. */
static int rkey_finish(eng_aws_rkey *k)
{
    unsigned char *p = k->spki;
    unsigned int mdlen = 0;
    int n = i2d_PUBKEY(k->pkey, NULL);

    if (n <= 0 || (size_t)n > sizeof k->spki ||
        i2d_PUBKEY(k->pkey, &p) != n)
        return SIGNER_ERR_INTERNAL;
    k->spki_len = (size_t)n;
    if (EVP_Digest(k->spki, k->spki_len, k->ski, &mdlen, EVP_sha256(),
                   NULL) != 1 || mdlen != 32)
        return SIGNER_ERR_INTERNAL;
    return SIGNER_OK;
}

int eng_aws_rkey_new(eng_aws_rkey **out, int64_t now)
{
    eng_aws_rkey *k;
    EVP_PKEY_CTX *ctx = NULL;
    int rc = SIGNER_ERR_INTERNAL;

    *out = NULL;
    if ((k = calloc(1, sizeof *k)) == NULL)
        return SIGNER_ERR_NOMEM;
    k->created = now;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, ENG_AWS_RKEY_BITS) != 1 ||
        EVP_PKEY_generate(ctx, &k->pkey) != 1)
        goto cleanup;
    rc = rkey_finish(k);
cleanup:
    EVP_PKEY_CTX_free(ctx);
    if (rc == SIGNER_OK)
        *out = k;
    else
        eng_aws_rkey_free(k);
    return rc;
}

int eng_aws_rkey_from_der(eng_aws_rkey **out, const unsigned char *der,
                          size_t der_len, int64_t now)
{
    eng_aws_rkey *k;
    const unsigned char *p = der;
    int rc = SIGNER_ERR_BAD_REQUEST;

    *out = NULL;
    if ((k = calloc(1, sizeof *k)) == NULL)
        return SIGNER_ERR_NOMEM;
    k->created = now;
    k->pkey = d2i_AutoPrivateKey(NULL, &p, (long)der_len);
    if (k->pkey == NULL || EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_RSA)
        goto cleanup;
    rc = rkey_finish(k);
cleanup:
    if (rc == SIGNER_OK)
        *out = k;
    else
        eng_aws_rkey_free(k);
    return rc;
}

int eng_aws_rkey_rotate(eng_aws_rkey **slot, int64_t now, int64_t max_age)
{
    eng_aws_rkey *fresh;
    int rc;

    if (*slot != NULL && now - (*slot)->created < max_age)
        return 0;
    if ((rc = eng_aws_rkey_new(&fresh, now)) != SIGNER_OK)
        return rc;
    eng_aws_rkey_free(*slot);
    *slot = fresh;
    return 1;
}

void eng_aws_rkey_free(eng_aws_rkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    eng_wipe(k, sizeof *k);
    free(k);
}

/* The KeyTransRecipientInfo whose SubjectKeyIdentifier is k's, using
 * RSAES-OAEP; NULL if none. */
static CMS_RecipientInfo *find_recipient(CMS_ContentInfo *cms,
                                         const eng_aws_rkey *k)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    int i;

    for (i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        ASN1_OCTET_STRING *keyid = NULL;
        X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *oid = NULL;

        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS ||
            CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, NULL,
                                                  NULL) != 1 ||
            keyid == NULL || ASN1_STRING_length(keyid) != 32 ||
            CRYPTO_memcmp(ASN1_STRING_get0_data(keyid), k->ski, 32) != 0)
            continue;
        if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) != 1 ||
            alg == NULL)
            continue;
        X509_ALGOR_get0(&oid, NULL, NULL, alg);
        if (OBJ_obj2nid(oid) == NID_rsaesOaep)
            return ri;
    }
    return NULL;
}

/* Decrypts the content of an unwrapped EnvelopedData into the secure BIO. */
static int cms_decrypt(BIO *plain, CMS_ContentInfo *cms, const eng_aws_rkey *k)
{
    CMS_RecipientInfo *ri;

    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped ||
        (ri = find_recipient(cms, k)) == NULL)
        return SIGNER_ERR_BAD_REQUEST;
    /* set0 hands the RecipientInfo a reference, released by set0(NULL). */
    if (EVP_PKEY_up_ref(k->pkey) != 1)
        return SIGNER_ERR_INTERNAL;
    if (CMS_RecipientInfo_set0_pkey(ri, k->pkey) != 1) {
        EVP_PKEY_free(k->pkey);
        return SIGNER_ERR_INTERNAL;
    }
    if (CMS_RecipientInfo_decrypt(cms, ri) != 1 ||
        CMS_decrypt(cms, NULL, NULL, NULL, plain, CMS_BINARY) != 1) {
        CMS_RecipientInfo_set0_pkey(ri, NULL);
        return SIGNER_ERR_BAD_REQUEST;
    }
    CMS_RecipientInfo_set0_pkey(ri, NULL);
    return SIGNER_OK;
}

int eng_aws_cms_open(unsigned char *out, size_t cap, size_t *out_len,
                     const eng_aws_rkey *k, const unsigned char *der,
                     size_t der_len)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = NULL;
    BIO *plain = NULL;
    long n;
    int rc = SIGNER_ERR_BAD_REQUEST;

    *out_len = 0;
    if (k == NULL || der == NULL || der_len == 0 || der_len > 65536)
        goto cleanup;
    if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len)) == NULL)
        goto cleanup;
    if ((plain = BIO_new(BIO_s_secmem())) == NULL) {
        rc = SIGNER_ERR_NOMEM;
        goto cleanup;
    }
    if ((rc = cms_decrypt(plain, cms, k)) != SIGNER_OK)
        goto cleanup;
    n = BIO_pending(plain);
    if (n < 0 || (size_t)n > cap) {
        rc = SIGNER_ERR_TOO_LARGE;
        goto cleanup;
    }
    if (n > 0 && BIO_read(plain, out, (int)n) != (int)n) {
        rc = SIGNER_ERR_INTERNAL;
        goto cleanup;
    }
    *out_len = (size_t)n;
    rc = SIGNER_OK;
cleanup:
    BIO_free(plain);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    if (rc != SIGNER_OK && out != NULL)
        eng_wipe(out, cap);
    return rc;
}
