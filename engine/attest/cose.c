/* COSE_Sign1 with ES384: Sig_structure, protected header, and ECDSA
 * signatures converted between OpenSSL's DER and COSE's fixed r || s. */
#include "config.h"
#include "attest/cose.h"
#include "attest/cbor_util.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>

#define HALF (ENG_COSE_SIG_LEN / 2)

int eng_cose_sig_structure(unsigned char **out, size_t *out_len,
                           const unsigned char *prot, size_t prot_len,
                           const unsigned char *payload, size_t payload_len)
{
    static const unsigned char empty[1] = {0};
    cbor_item_t *arr = cbor_new_definite_array(4);
    int rc = -1;
    *out = NULL;
    *out_len = 0;
    if (arr == NULL)
        return -1;
    if (eng_cbor_array_put(arr, eng_cbor_text("Signature1")) &&
        eng_cbor_array_put(arr, cbor_build_bytestring(prot, prot_len)) &&
        eng_cbor_array_put(arr, cbor_build_bytestring(empty, 0)) &&
        eng_cbor_array_put(arr, cbor_build_bytestring(payload, payload_len)))
        rc = eng_cbor_serialize(arr, out, out_len);
    cbor_decref(&arr);
    return rc;
}

int eng_cose_protected_es384(unsigned char **out, size_t *out_len)
{
    cbor_item_t *map = cbor_new_definite_map(1);
    int rc = -1;
    *out = NULL;
    *out_len = 0;
    if (map == NULL)
        return -1;
    if (eng_cbor_map_put(map, eng_cbor_uint(1),
                         cbor_build_negint8((uint8_t)(-1 - ENG_COSE_ALG_ES384))))
        rc = eng_cbor_serialize(map, out, out_len);
    cbor_decref(&map);
    return rc;
}

int eng_cose_is_p384(EVP_PKEY *key)
{
    char group[64];
    size_t n = 0;
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return 0;
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                        group, sizeof group, &n))
        return 0;
    return strcmp(group, "secp384r1") == 0;
}

int eng_cose_es384_sign(unsigned char sig[ENG_COSE_SIG_LEN], EVP_PKEY *key,
                        const unsigned char *tbs, size_t tbs_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[160];
    const unsigned char *p = der;
    size_t der_len = sizeof der;
    ECDSA_SIG *es = NULL;
    const BIGNUM *r, *s;
    int rc = -1;
    if (md == NULL ||
        EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &der_len, tbs, tbs_len) != 1)
        goto cleanup;
    es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (es == NULL)
        goto cleanup;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, HALF) != HALF ||
        BN_bn2binpad(s, sig + HALF, HALF) != HALF)
        goto cleanup;
    rc = 0;
cleanup:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return rc;
}

/* DER ECDSA-Sig-Value from r || s; malloc'd by OpenSSL. */
static int sig_to_der(unsigned char **der, int *der_len,
                      const unsigned char *sig)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, HALF, NULL);
    BIGNUM *s = BN_bin2bn(sig + HALF, HALF, NULL);
    *der = NULL;
    *der_len = 0;
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    *der_len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es); /* frees r and s */
    return *der_len > 0 ? 0 : -1;
}

int eng_cose_es384_verify(EVP_PKEY *key, const unsigned char *sig,
                          size_t sig_len, const unsigned char *tbs,
                          size_t tbs_len)
{
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    int der_len = 0, ok = 0;
    if (sig_len != ENG_COSE_SIG_LEN || !eng_cose_is_p384(key) ||
        sig_to_der(&der, &der_len, sig) != 0)
        goto cleanup;
    md = EVP_MD_CTX_new();
    if (md != NULL &&
        EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
        EVP_DigestVerify(md, der, (size_t)der_len, tbs, tbs_len) == 1)
        ok = 1;
cleanup:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}
