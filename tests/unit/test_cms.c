/* CMS opening of KMS's CiphertextForRecipient: the real vector from AWS
 * KMS (tests/vectors/nitro) opens to exactly its expected plaintext with
 * its key; a flipped byte or another key is refused; a key made by
 * eng_aws_rkey_new opens an EnvelopedData built by OpenSSL the way KMS
 * builds it (SKI = SHA-256 of the SPKI, RSAES-OAEP-SHA256, AES-256-CBC). */
#include "config.h"

#include <CUnit/Basic.h>
#include <openssl/cms.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <signer/plugin.h>

#include "aws/buf.h"
#include "aws/cms.h"
#include "aws_test.h"
#include "testutil.h"
#include "util.h"

/* Reads a base64 vector file into a malloc'd buffer. */
static unsigned char *b64_file(const char *rel, size_t *len)
{
    size_t tlen, cap;
    char *t = at_vector(rel, &tlen);
    unsigned char *out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    while (tlen > 0 && (t[tlen - 1] == '\n' || t[tlen - 1] == '\r'))
        t[--tlen] = '\0';
    cap = tlen;
    out = malloc(cap);
    CU_ASSERT_EQUAL_FATAL(eng_aws_b64_decode(out, cap, len, t, tlen), 0);
    free(t);
    return out;
}

static eng_aws_rkey *vector_key(void)
{
    size_t len;
    unsigned char *der = b64_file("nitro/recipient_rsa_private_key_pkcs1_der.b64",
                                  &len);
    eng_aws_rkey *k = NULL;

    CU_ASSERT_EQUAL(eng_aws_rkey_from_der(&k, der, len, 0), SIGNER_OK);
    eng_wipe(der, len);
    free(der);
    return k;
}

static void test_real_vector_opens(void)
{
    size_t clen, plen, elen = 0;
    unsigned char *c = b64_file("nitro/ciphertext_for_recipient.b64", &clen);
    char *want = at_vector("nitro/expected_plaintext.json", &elen);
    unsigned char out[512];
    eng_aws_rkey *k = vector_key();

    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    while (elen > 0 && want[elen - 1] == '\n')
        want[--elen] = '\0';
    CU_ASSERT_EQUAL(k->spki_len, 294);
    CU_ASSERT_EQUAL_FATAL(eng_aws_cms_open(out, sizeof out, &plen, k, c, clen),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(plen, elen);
    CU_ASSERT(plen == elen && memcmp(out, want, elen) == 0);
    /* too small an output buffer: refused, nothing left in it */
    CU_ASSERT_EQUAL(eng_aws_cms_open(out, 16, &plen, k, c, clen),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(plen, 0);
    eng_aws_rkey_free(k);
    free(c);
    free(want);
}

/* Offset of the last occurrence of needle in hay. */
static size_t find_last(const unsigned char *hay, size_t n,
                        const unsigned char *needle, size_t m)
{
    size_t i, at = (size_t)-1;
    for (i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            at = i;
    return at;
}

static void expect_refused(const unsigned char *c, size_t clen,
                           const eng_aws_rkey *k)
{
    unsigned char out[512];
    size_t plen = 99, i, nz = 0;

    memset(out, 0xAA, sizeof out);
    CU_ASSERT_EQUAL(eng_aws_cms_open(out, sizeof out, &plen, k, c, clen),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(plen, 0);
    for (i = 0; i < sizeof out; i++)
        nz |= out[i];
    CU_ASSERT_EQUAL(nz, 0); /* wiped */
}

static void test_flipped_bytes_refused(void)
{
    size_t clen, at;
    unsigned char *c = b64_file("nitro/ciphertext_for_recipient.b64", &clen);
    /* first bytes of the vector's encryptedKey (RSA-OAEP block) */
    static const unsigned char ek[] = { 0x2f, 0x29, 0x85, 0xbc, 0x8c, 0xcb };
    eng_aws_rkey *k = vector_key();

    at = find_last(c, clen, ek, sizeof ek);
    CU_ASSERT_FATAL(at != (size_t)-1);
    c[at + 10] ^= 0x01; /* OAEP check fails */
    expect_refused(c, clen, k);
    c[at + 10] ^= 0x01;
    c[clen / 2] ^= 0x80; /* structure or content */
    expect_refused(c, clen, k);
    c[clen / 2] ^= 0x80;
    expect_refused(c, clen - 7, k); /* truncated */
    eng_aws_rkey_free(k);
    free(c);
}

static void test_wrong_key_refused(void)
{
    size_t clen;
    unsigned char *c = b64_file("nitro/ciphertext_for_recipient.b64", &clen);
    eng_aws_rkey *k = NULL;

    CU_ASSERT_EQUAL_FATAL(eng_aws_rkey_new(&k, 1000), SIGNER_OK);
    expect_refused(c, clen, k);
    eng_aws_rkey_free(k);
    free(c);
}

/* A throwaway certificate for k whose SKI is k->ski (what KMS puts in the
 * rid), so OpenSSL's CMS encryptor addresses k the way KMS does. */
static X509 *cert_for(const eng_aws_rkey *k)
{
    X509 *x = X509_new();
    ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
    X509_NAME *name = X509_NAME_new();

    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)"recipient", -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k->pkey);
    ASN1_OCTET_STRING_set(ski, k->ski, 32);
    X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0);
    CU_ASSERT(X509_sign(x, k->pkey, EVP_sha256()) > 0);
    ASN1_OCTET_STRING_free(ski);
    X509_NAME_free(name);
    return x;
}

/* EnvelopedData for k: RSAES-OAEP (SHA-256, MGF1-SHA-256), AES-256-CBC. */
static unsigned char *envelope_for(const eng_aws_rkey *k, const char *msg,
                                   size_t *len)
{
    X509 *x = cert_for(k);
    CMS_ContentInfo *cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(),
                                       CMS_BINARY | CMS_PARTIAL);
    CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, x,
                                                    CMS_USE_KEYID |
                                                    CMS_KEY_PARAM);
    EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
    BIO *in = BIO_new_mem_buf(msg, (int)strlen(msg));
    unsigned char *der = NULL;
    int n;

    CU_ASSERT_FATAL(ri != NULL && pctx != NULL);
    CU_ASSERT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0);
    CU_ASSERT(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0);
    CU_ASSERT(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0);
    CU_ASSERT_EQUAL_FATAL(CMS_final(cms, in, NULL, CMS_BINARY), 1);
    n = i2d_CMS_ContentInfo(cms, &der);
    CU_ASSERT_FATAL(n > 0);
    *len = (size_t)n;
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    X509_free(x);
    return der;
}

static void test_generated_key_and_rotation(void)
{
    const char *msg = "{\"v\":1,\"secret\":\"s3cret-for-the-test\"}";
    eng_aws_rkey *k = NULL, *old;
    unsigned char out[256], *env, spki0[ENG_AWS_SPKI_MAX];
    size_t elen, plen;

    CU_ASSERT_EQUAL_FATAL(eng_aws_rkey_new(&k, 1000), SIGNER_OK);
    CU_ASSERT_EQUAL(k->spki_len, 294); /* RSA-2048 SPKI DER */
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(k->pkey), 2048);
    env = envelope_for(k, msg, &elen);
    CU_ASSERT_EQUAL(eng_aws_cms_open(out, sizeof out, &plen, k, env, elen),
                    SIGNER_OK);
    CU_ASSERT(plen == strlen(msg) && memcmp(out, msg, plen) == 0);
    /* not due yet: same key; due: a new key that no longer opens env */
    old = k;
    memcpy(spki0, k->spki, k->spki_len);
    CU_ASSERT_EQUAL(eng_aws_rkey_rotate(&k, 1000 + 3599, 3600), 0);
    CU_ASSERT_PTR_EQUAL(k, old);
    CU_ASSERT_EQUAL(eng_aws_rkey_rotate(&k, 1000 + 3600, 3600), 1);
    CU_ASSERT_EQUAL(k->created, 4600);
    CU_ASSERT(memcmp(spki0, k->spki, 32) != 0 ||
              memcmp(spki0 + 32, k->spki + 32, k->spki_len - 32) != 0);
    expect_refused(env, elen, k);
    OPENSSL_free(env);
    eng_aws_rkey_free(k);
}

/* The private numbers of a generated key live in OpenSSL's secure heap
 * (mlocked) and leave it when the key is freed. */
static void test_key_in_secure_heap(void)
{
    eng_aws_rkey *k = NULL;
    size_t before;

    CU_ASSERT_FATAL(CRYPTO_secure_malloc_initialized());
    before = CRYPTO_secure_used();
    CU_ASSERT_EQUAL_FATAL(eng_aws_rkey_new(&k, 0), SIGNER_OK);
    /* d, p, q, dP, dQ, qInv: at least 5 x 128 bytes of a 2048-bit key */
    CU_ASSERT(CRYPTO_secure_used() >= before + 5 * 128);
    eng_aws_rkey_free(k);
    CU_ASSERT_EQUAL(CRYPTO_secure_used(), before);
}

static void test_not_enveloped_refused(void)
{
    static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
    eng_aws_rkey *k = vector_key();
    expect_refused(junk, sizeof junk, k);
    eng_aws_rkey_free(k);
}

int main(void)
{
    CU_pSuite s;

    if (!eng_secure_init(1 << 20))
        fprintf(stderr, "no secure heap: test_key_in_secure_heap fails\n");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("cms", NULL, NULL);
    TU_ADD(s, test_real_vector_opens);
    TU_ADD(s, test_flipped_bytes_refused);
    TU_ADD(s, test_wrong_key_refused);
    TU_ADD(s, test_generated_key_and_rotation);
    TU_ADD(s, test_key_in_secure_heap);
    TU_ADD(s, test_not_enveloped_refused);
    return tu_run();
}
