/* Attestation unit: NSM CBOR messages (byte-exact), the /dev/nsm row's
 * clean failure where there is no device, the emulated NSM's documents and
 * their verification (signature, chain, pinned root, freshness), config
 * parsing and the key-generation entropy hook.
 *
 *   test_attest                 runs the CUnit suites
 *   test_attest --dump DIR HEX  writes doc.cbor and the NSM requests into
 *                               DIR (which holds the test PKI), PCR0 = HEX,
 *                               for the third-party checks in tests/attest/ */
#include "config.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attest/attest.h"
#include "attest/cbor_util.h"
#include "attest/cose.h"

#define MAX_AGE_MS (5 * 60 * 1000)

static char *g_dir;   /* test PKI */
static char *g_dir2;  /* another PKI: a different root */
static const char *PCR0_HEX =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f";
static const char *PCR8_HEX =
    "8888888888888888888888888888888888888888888888888888888888888888"
    "88888888888888888888888888888888";

/* ---- helpers ---- */

static int make_pki(const char *dir)
{
    const char *src = getenv("SIGNER_SRCDIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/tests/attest/make_test_pki.sh' '%s'",
             src ? src : "..", dir);
    return system(cmd);
}

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    *len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL &&
        fread(buf, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    fclose(f);
    if (*len == 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

static int write_file(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(p, 1, n, f) == n;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static void hex_to(unsigned char *out, const char *hex, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

/* An emulated config from the PKI in dir; PCR0 and PCR8 set when pcrs. */
static void emu_config(eng_attest_config *c, const char *dir, int pcrs)
{
    memset(c, 0, sizeof *c);
    c->attestation = strdup("emulated");
    c->module_id = strdup("i-0123456789abcdef0-enc0123456789abcdef");
    c->signing_key = strdup(path_in(dir, "leaf.key"));
    c->certificate = strdup(path_in(dir, "leaf.pem"));
    c->cabundle = strdup(path_in(dir, "cabundle.pem"));
    if (pcrs) {
        hex_to(c->pcrs[0], PCR0_HEX, ENG_ATTEST_PCR_LEN);
        hex_to(c->pcrs[8], PCR8_HEX, ENG_ATTEST_PCR_LEN);
    }
}

static eng_attest *emu_open(const char *dir, int pcrs)
{
    eng_attest_config c;
    char err[256] = "";
    eng_attest *a;
    emu_config(&c, dir, pcrs);
    a = eng_attest_open(&c, err, sizeof err);
    if (a == NULL)
        fprintf(stderr, "emulated open: %s\n", err);
    eng_attest_config_cleanup(&c);
    return a;
}

/* A policy pinning the root DER read from dir (caller frees *root). */
static eng_attest_policy policy_for(const char *dir, unsigned char **root)
{
    eng_attest_policy pol;
    memset(&pol, 0, sizeof pol);
    *root = read_file(path_in(dir, "root.der"), &pol.root_der_len);
    pol.root_der = *root;
    pol.max_age_ms = MAX_AGE_MS;
    pol.max_skew_ms = 60000;
    return pol;
}

/* An RSA-2048 SubjectPublicKeyInfo DER (what the enclave binds). */
static unsigned char *rsa_spki(size_t *len)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    unsigned char *der = NULL, *out = NULL;
    int n = k ? i2d_PUBKEY(k, &der) : -1;
    *len = 0;
    if (n > 0 && (out = malloc((size_t)n)) != NULL) {
        memcpy(out, der, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return out;
}

static const unsigned char NONCE[] = "nonce-0123456789";
static const unsigned char USER[] = {0x00, 0xff, 0x10, 0x20};

static unsigned char *make_doc(eng_attest *a, size_t *len,
                               const unsigned char *pk, size_t pk_len)
{
    eng_attest_req req = {pk, pk_len, USER, sizeof USER, NONCE,
                          sizeof NONCE - 1};
    unsigned char *doc = NULL;
    char err[256] = "";
    int rc = eng_attest_document(a, &doc, len, &req, err, sizeof err);
    if (rc != SIGNER_OK)
        fprintf(stderr, "document: %s\n", err);
    return doc;
}

/* ---- NSM request encoding (expected bytes derived from RFC 8949) ---- */

static void test_encode_get_random(void)
{
    /* text string of 9 bytes: major type 3 (0x60) | 9 */
    static const unsigned char want[] = {0x69, 'G', 'e', 't', 'R', 'a', 'n',
                                         'd', 'o', 'm'};
    unsigned char out[64];
    size_t n = 0;
    CU_ASSERT_EQUAL(eng_nsm_encode_get_random(out, sizeof out, &n), SIGNER_OK);
    CU_ASSERT_EQUAL(n, sizeof want);
    CU_ASSERT_EQUAL(memcmp(out, want, sizeof want), 0);
    CU_ASSERT_EQUAL(eng_nsm_encode_get_random(out, 5, &n), SIGNER_ERR_TOO_LARGE);
}

static void test_encode_attestation_null(void)
{
    /* {"Attestation": {"user_data": null, "nonce": null, "public_key": null}}
     * A1 map(1); 6B text(11); A3 map(3); 69 text(9); F6 null; 65 text(5);
     * 6A text(10). */
    static const unsigned char want[] = {
        0xA1, 0x6B, 'A', 't', 't', 'e', 's', 't', 'a', 't', 'i', 'o', 'n',
        0xA3, 0x69, 'u', 's', 'e', 'r', '_', 'd', 'a', 't', 'a', 0xF6,
        0x65, 'n', 'o', 'n', 'c', 'e', 0xF6,
        0x6A, 'p', 'u', 'b', 'l', 'i', 'c', '_', 'k', 'e', 'y', 0xF6};
    eng_attest_req req = {0};
    unsigned char out[128];
    size_t n = 0;
    CU_ASSERT_EQUAL(eng_nsm_encode_attestation(out, sizeof out, &n, &req),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(n, sizeof want);
    CU_ASSERT_EQUAL(memcmp(out, want, sizeof want), 0);
}

static void test_encode_attestation_values(void)
{
    unsigned char pk[300], out[512];
    static const unsigned char ud[] = {0x75, 0x64};
    static const unsigned char nonce[] = {1, 2, 3};
    eng_attest_req req = {pk, sizeof pk, ud, sizeof ud, nonce, sizeof nonce};
    size_t n = 0, off;
    memset(pk, 0xab, sizeof pk);
    CU_ASSERT_EQUAL_FATAL(eng_nsm_encode_attestation(out, sizeof out, &n,
                                                     &req), SIGNER_OK);
    /* A1 6B "Attestation" A3: 14 bytes; "user_data" key (10); 42 75 64 */
    off = 14 + 10;
    CU_ASSERT_EQUAL(out[off], 0x42); /* bstr(2) */
    CU_ASSERT_EQUAL(memcmp(out + off + 1, ud, 2), 0);
    off += 3 + 6;                    /* "nonce" key */
    CU_ASSERT_EQUAL(out[off], 0x43); /* bstr(3) */
    CU_ASSERT_EQUAL(memcmp(out + off + 1, nonce, 3), 0);
    off += 4 + 11;                   /* "public_key" key */
    /* bstr(300): 0x59 with a two-byte length 0x012C */
    CU_ASSERT_EQUAL(out[off], 0x59);
    CU_ASSERT_EQUAL(out[off + 1], 0x01);
    CU_ASSERT_EQUAL(out[off + 2], 0x2C);
    CU_ASSERT_EQUAL(out[off + 3], 0xab);
    CU_ASSERT_EQUAL(n, off + 3 + 300);
    /* A request over 4096 bytes is refused, not truncated. */
    {
        unsigned char *big = calloc(1, 5000), *o = malloc(8192);
        eng_attest_req r2 = {big, 5000, NULL, 0, NULL, 0};
        CU_ASSERT_EQUAL(eng_nsm_encode_attestation(o, 8192, &n, &r2),
                        SIGNER_ERR_TOO_LARGE);
        free(big);
        free(o);
    }
}

/* ---- NSM response decoding ---- */

static size_t get_random_answer(unsigned char *buf, size_t nrand)
{
    static const unsigned char head[] = {
        0xA1, 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm',
        0xA1, 0x66, 'r', 'a', 'n', 'd', 'o', 'm', 0x58};
    size_t i;
    memcpy(buf, head, sizeof head);
    buf[sizeof head] = (unsigned char)nrand;
    for (i = 0; i < nrand; i++)
        buf[sizeof head + 1 + i] = (unsigned char)(i * 7 + 1);
    return sizeof head + 1 + nrand;
}

static void test_decode_get_random(void)
{
    unsigned char resp[128], out[64];
    size_t n = get_random_answer(resp, 32), got = 0, i;
    char err[128] = "";
    CU_ASSERT_EQUAL(eng_nsm_decode_get_random(out, sizeof out, &got, resp, n,
                                              err, sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(got, 32);
    for (i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(out[i], (unsigned char)(i * 7 + 1));
    /* A smaller output buffer takes the first bytes only. */
    CU_ASSERT_EQUAL(eng_nsm_decode_get_random(out, 8, &got, resp, n, err,
                                              sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(got, 8);
}

static void test_decode_attestation(void)
{
    static const unsigned char resp[] = {
        0xA1, 0x6B, 'A', 't', 't', 'e', 's', 't', 'a', 't', 'i', 'o', 'n',
        0xA1, 0x68, 'd', 'o', 'c', 'u', 'm', 'e', 'n', 't',
        0x44, 0xDE, 0xAD, 0xBE, 0xEF};
    unsigned char *doc = NULL, out[8];
    size_t n = 0;
    char err[128] = "";
    CU_ASSERT_EQUAL_FATAL(eng_nsm_decode_attestation(&doc, &n, resp,
                                                     sizeof resp, err,
                                                     sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(memcmp(doc, "\xDE\xAD\xBE\xEF", 4), 0);
    free(doc);
    /* The same answer is not a GetRandom answer. */
    CU_ASSERT_NOT_EQUAL(eng_nsm_decode_get_random(out, sizeof out, &n, resp,
                                                  sizeof resp, err,
                                                  sizeof err), SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unexpected"));
}

static void test_decode_error_answer(void)
{
    /* {"Error": "InvalidArgument"} */
    static const unsigned char resp[] = {
        0xA1, 0x65, 'E', 'r', 'r', 'o', 'r', 0x6F, 'I', 'n', 'v', 'a', 'l',
        'i', 'd', 'A', 'r', 'g', 'u', 'm', 'e', 'n', 't'};
    unsigned char out[32], *doc = (unsigned char *)1;
    size_t n;
    char err[128] = "";
    CU_ASSERT_EQUAL(eng_nsm_decode_get_random(out, sizeof out, &n, resp,
                                              sizeof resp, err, sizeof err),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_STRING_EQUAL(err, "NSM error: InvalidArgument");
    err[0] = '\0';
    CU_ASSERT_EQUAL(eng_nsm_decode_attestation(&doc, &n, resp, sizeof resp,
                                               err, sizeof err),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT_STRING_EQUAL(err, "NSM error: InvalidArgument");
}

static void expect_refused(const unsigned char *resp, size_t n)
{
    unsigned char out[64];
    size_t got = 99;
    char err[128] = "";
    CU_ASSERT_EQUAL(eng_nsm_decode_get_random(out, sizeof out, &got, resp, n,
                                              err, sizeof err),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(got, 0);
    CU_ASSERT_NOT_EQUAL(err[0], '\0');
}

static void test_decode_malformed(void)
{
    unsigned char resp[128], bad[128];
    size_t n = get_random_answer(resp, 16), i;
    /* every truncation */
    for (i = 0; i < n; i++)
        expect_refused(resp, i);
    /* a trailing byte */
    memcpy(bad, resp, n);
    bad[n] = 0x00;
    expect_refused(bad, n + 1);
    /* random as a text string (0x70 | 16) instead of bstr */
    memcpy(bad, resp, n);
    bad[19] = 0x70;
    bad[20] = 0x00;
    memmove(bad + 20, bad + 21, n - 21);
    memset(bad + 20, 'a', 16);
    expect_refused(bad, n - 1);
    /* the unit variant "GetRandom" alone, a top-level array, an empty map */
    expect_refused((const unsigned char *)"\x69GetRandom", 10);
    expect_refused((const unsigned char *)"\x82\x01\x02", 3);
    expect_refused((const unsigned char *)"\xA0", 1);
    /* {"GetRandom": 5}, {"GetRandom": {"random": h''}} */
    expect_refused((const unsigned char *)"\xA1\x69GetRandom\x05", 12);
    expect_refused((const unsigned char *)"\xA1\x69GetRandom\xA1\x66random\x40",
                   20);
    /* a byte string claiming 2^64-1 bytes; a map claiming 2^32 entries */
    expect_refused((const unsigned char *)
                   "\x5B\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x00", 10);
    expect_refused((const unsigned char *)"\xBA\xFF\xFF\xFF\xFF\x00", 6);
    /* reserved additional info, a lone break, a non-text Error code */
    expect_refused((const unsigned char *)"\x1C", 1);
    expect_refused((const unsigned char *)"\xFF", 1);
    expect_refused((const unsigned char *)"\xA1\x65" "Error" "\x01", 8);
}

static void test_well_formed(void)
{
    /* {_ "a": 1} indefinite map; [_ 1, [2]] indefinite array */
    CU_ASSERT_TRUE(eng_cbor_well_formed((const unsigned char *)
                                        "\xBF\x61" "a" "\x01\xFF", 5, 4));
    CU_ASSERT_TRUE(eng_cbor_well_formed((const unsigned char *)
                                        "\x9F\x01\x81\x02\xFF", 5, 4));
    CU_ASSERT_FALSE(eng_cbor_well_formed((const unsigned char *)
                                         "\xBF\x61" "a" "\x01", 4, 4));
    /* indefinite text with a byte-string chunk */
    CU_ASSERT_FALSE(eng_cbor_well_formed((const unsigned char *)
                                         "\x7F\x41" "a" "\xFF", 4, 4));
    /* nesting deeper than allowed */
    CU_ASSERT_TRUE(eng_cbor_well_formed((const unsigned char *)
                                        "\x81\x81\x81\x00", 4, 3));
    CU_ASSERT_FALSE(eng_cbor_well_formed((const unsigned char *)
                                         "\x81\x81\x81\x81\x00", 5, 3));
}

/* ---- the nsm row without a device ---- */

static void test_nsm_absent(void)
{
    eng_attest_config c;
    char err[256] = "";
    memset(&c, 0, sizeof c);
    c.attestation = "nsm";
    if (access("/dev/nsm", F_OK) == 0) {
        fprintf(stderr, "/dev/nsm present: absent-device test skipped\n");
        return;
    }
    CU_ASSERT_PTR_NULL(eng_attest_open(&c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/dev/nsm"));
    c.attestation = "tpm";
    CU_ASSERT_PTR_NULL(eng_attest_open(&c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown device"));
    /* A file that is not the NSM: opened, but the ioctl is refused. */
    c.attestation = "nsm";
    c.device = "/dev/null";
    CU_ASSERT_PTR_NULL(eng_attest_open(&c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "NSM ioctl failed"));
    CU_ASSERT_PTR_NOT_NULL(eng_attest_methods_find("nsm"));
    CU_ASSERT_PTR_NOT_NULL(eng_attest_methods_find("emulated"));
    CU_ASSERT_PTR_NULL(eng_attest_methods_find("other"));
}

/* ---- emulated device and verification ---- */

static void test_emulated_round_trip(void)
{
    eng_attest *a = emu_open(g_dir, 1);
    unsigned char *root = NULL, *doc, *pk, pcr0[48], zero[48] = {0};
    size_t doc_len = 0, pk_len = 0;
    eng_attest_policy pol = policy_for(g_dir, &root);
    eng_attest_doc d;
    char err[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(eng_attest_name(a), "emulated");
    CU_ASSERT_PTR_NOT_NULL(strstr(eng_attest_warnings(a), "EMULATED"));
    CU_ASSERT_PTR_NULL(strstr(eng_attest_warnings(a), "PCR0 is all zero"));
    pk = rsa_spki(&pk_len);
    CU_ASSERT_EQUAL(pk_len, 294);
    doc = make_doc(a, &doc_len, pk, pk_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_OK);
    if (err[0])
        fprintf(stderr, "verify: %s\n", err);
    hex_to(pcr0, PCR0_HEX, 48);
    CU_ASSERT_STRING_EQUAL(d.module_id,
                           "i-0123456789abcdef0-enc0123456789abcdef");
    CU_ASSERT_EQUAL(d.pcr_mask, 0xffffffffu);
    CU_ASSERT_EQUAL(memcmp(d.pcrs[0], pcr0, 48), 0);
    CU_ASSERT_EQUAL(memcmp(d.pcrs[1], zero, 48), 0);
    CU_ASSERT_EQUAL(d.pcrs[8][0], 0x88);
    CU_ASSERT_EQUAL(d.public_key_len, pk_len);
    CU_ASSERT(d.public_key && memcmp(d.public_key, pk, pk_len) == 0);
    CU_ASSERT_EQUAL(d.user_data_len, sizeof USER);
    CU_ASSERT(d.user_data && memcmp(d.user_data, USER, sizeof USER) == 0);
    CU_ASSERT_EQUAL(d.nonce_len, sizeof NONCE - 1);
    CU_ASSERT(d.nonce && memcmp(d.nonce, NONCE, sizeof NONCE - 1) == 0);
    eng_attest_doc_cleanup(&d);
    /* Pinning by SHA-256 of the root works too. */
    {
        unsigned char h[32];
        EVP_Digest(root, pol.root_der_len, h, NULL, EVP_sha256(), NULL);
        pol.root_der = NULL;
        pol.root_sha256 = h;
        CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err,
                                          sizeof err), SIGNER_OK);
        eng_attest_doc_cleanup(&d);
        /* ... and the AWS root pin refuses a test document. */
        pol.root_sha256 = eng_attest_aws_root_sha256;
        CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err,
                                          sizeof err), SIGNER_ERR_FORBIDDEN);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "pinned root"));
    }
    free(pk);
    free(doc);
    free(root);
    eng_attest_close(a);
}

static void test_null_fields_and_limits(void)
{
    eng_attest *a = emu_open(g_dir, 0);
    unsigned char *root = NULL, *doc = NULL, big[600];
    size_t doc_len = 0;
    eng_attest_policy pol = policy_for(g_dir, &root);
    eng_attest_req req = {0};
    eng_attest_doc d;
    char err[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(eng_attest_warnings(a), "PCR0 is all zero"));
    CU_ASSERT_EQUAL_FATAL(eng_attest_document(a, &doc, &doc_len, &req, err,
                                              sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_OK);
    CU_ASSERT_PTR_NULL(d.public_key);
    CU_ASSERT_PTR_NULL(d.user_data);
    CU_ASSERT_PTR_NULL(d.nonce);
    eng_attest_doc_cleanup(&d);
    free(doc);
    memset(big, 1, sizeof big);
    req.nonce = big;
    req.nonce_len = sizeof big;
    CU_ASSERT_EQUAL(eng_attest_document(a, &doc, &doc_len, &req, err,
                                        sizeof err), SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NULL(doc);
    free(root);
    eng_attest_close(a);
}

static void test_flipped_bytes_refused(void)
{
    eng_attest *a = emu_open(g_dir, 1);
    unsigned char *root = NULL, *doc;
    size_t doc_len = 0, i, step, refused = 0, tried = 0;
    eng_attest_policy pol = policy_for(g_dir, &root);
    eng_attest_doc d;
    char err[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    doc = make_doc(a, &doc_len, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    /* Every third byte (a sample under valgrind: it is slow), and every
     * byte of the signature. */
    step = getenv("SIGNER_VALGRIND") ? 41 : 3;
    for (i = 0; i < doc_len;
         i += i + ENG_COSE_SIG_LEN >= doc_len ? 1 : step) {
        doc[i] ^= 0x01;
        tried++;
        if (eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err) !=
            SIGNER_OK)
            refused++;
        else
            fprintf(stderr, "flip at %zu accepted\n", i);
        eng_attest_doc_cleanup(&d);
        doc[i] ^= 0x01;
    }
    /* The last signature byte, always. */
    doc[doc_len - 1] ^= 0x80;
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "signature"));
    doc[doc_len - 1] ^= 0x80;
    CU_ASSERT_EQUAL(refused, tried);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_OK);
    eng_attest_doc_cleanup(&d);
    free(doc);
    free(root);
    eng_attest_close(a);
}

/* Truncations and random garbage: refused, never a crash (ASan, valgrind). */
static void test_garbage_refused(void)
{
    eng_attest *a = emu_open(g_dir, 1);
    unsigned char *root = NULL, *doc, junk[512], out[64];
    size_t doc_len = 0, i, n;
    eng_attest_policy pol = policy_for(g_dir, &root);
    eng_attest_doc d;
    char err[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    doc = make_doc(a, &doc_len, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    for (i = 0; i < doc_len; i += 53) {
        CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, i, &pol, err, sizeof err),
                        SIGNER_ERR_BAD_REQUEST);
        CU_ASSERT_EQUAL(eng_attest_parse(&d, doc, i, err, sizeof err),
                        SIGNER_ERR_BAD_REQUEST);
    }
    for (i = 0; i < 300; i++) {
        unsigned char *dummy = NULL;
        size_t len = 1 + i % sizeof junk;
        CU_ASSERT_EQUAL_FATAL(eng_attest_get_random(a, junk, len), SIGNER_OK);
        if (i % 3 == 0)
            junk[0] = 0x84; /* an array of 4, like COSE_Sign1 */
        CU_ASSERT_NOT_EQUAL(eng_attest_verify(&d, junk, len, &pol, err,
                                              sizeof err), SIGNER_OK);
        CU_ASSERT_NOT_EQUAL(eng_nsm_decode_attestation(&dummy, &n, junk, len,
                                                       err, sizeof err),
                            SIGNER_OK);
        CU_ASSERT_NOT_EQUAL(eng_nsm_decode_get_random(out, sizeof out, &n,
                                                      junk, len, err,
                                                      sizeof err), SIGNER_OK);
    }
    free(doc);
    free(root);
    eng_attest_close(a);
}

static void test_wrong_root_refused(void)
{
    eng_attest *a = emu_open(g_dir, 1), *b = emu_open(g_dir2, 1);
    unsigned char *root2 = NULL, *doc;
    size_t doc_len = 0;
    eng_attest_policy pol2 = policy_for(g_dir2, &root2);
    eng_attest_doc d;
    char err[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    doc = make_doc(a, &doc_len, NULL, 0);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol2, err,
                                      sizeof err), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pinned root"));
    free(doc);
    /* The other PKI's own document passes its own pin. */
    doc = make_doc(b, &doc_len, NULL, 0);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol2, err,
                                      sizeof err), SIGNER_OK);
    eng_attest_doc_cleanup(&d);
    free(doc);
    free(root2);
    eng_attest_close(a);
    eng_attest_close(b);
}

/* A leaf that does not chain to the bundle's root: the first PKI's leaf
 * key and certificate with the second PKI's bundle. */
static void test_broken_chain_refused(void)
{
    eng_attest_config c;
    eng_attest *a;
    unsigned char *root2 = NULL, *doc;
    size_t doc_len = 0;
    eng_attest_policy pol2 = policy_for(g_dir2, &root2);
    eng_attest_doc d;
    char err[256] = "";
    emu_config(&c, g_dir, 1);
    free(c.cabundle);
    c.cabundle = strdup(path_in(g_dir2, "cabundle.pem"));
    a = eng_attest_open(&c, err, sizeof err);
    eng_attest_config_cleanup(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    doc = make_doc(a, &doc_len, NULL, 0);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol2, err,
                                      sizeof err), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "chain"));
    free(doc);
    free(root2);
    eng_attest_close(a);
}

static void test_freshness(void)
{
    eng_attest *a = emu_open(g_dir, 1);
    unsigned char *root = NULL, *doc;
    size_t doc_len = 0;
    eng_attest_policy pol = policy_for(g_dir, &root);
    eng_attest_doc d;
    char err[256] = "";
    uint64_t ts;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    doc = make_doc(a, &doc_len, NULL, 0);
    CU_ASSERT_EQUAL_FATAL(eng_attest_parse(&d, doc, doc_len, err, sizeof err),
                          SIGNER_OK);
    ts = d.timestamp_ms;
    eng_attest_doc_cleanup(&d);
    pol.now_ms = ts + MAX_AGE_MS;
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_OK);
    eng_attest_doc_cleanup(&d);
    pol.now_ms = ts + MAX_AGE_MS + 1;
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "stale"));
    pol.now_ms = ts - pol.max_skew_ms - 1;
    CU_ASSERT_EQUAL(eng_attest_verify(&d, doc, doc_len, &pol, err, sizeof err),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "future"));
    free(doc);
    free(root);
    eng_attest_close(a);
}

/* Tag 18 and an indefinite-length payload map, re-signed with the leaf. */
static void test_tag_and_indefinite_payload(void)
{
    eng_attest *a = emu_open(g_dir, 1);
    unsigned char *root = NULL, *doc, *tagged, *prot = NULL, *tbs = NULL;
    unsigned char *indef, *out = NULL, sig[96];
    size_t doc_len = 0, prot_len, tbs_len, out_len, plen;
    eng_attest_policy pol = policy_for(g_dir, &root);
    eng_attest_doc d;
    char err[256] = "";
    cbor_item_t *cose, *arr;
    EVP_PKEY *key;
    FILE *f;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    doc = make_doc(a, &doc_len, NULL, 0);
    tagged = malloc(doc_len + 1);
    tagged[0] = 0xD2;
    memcpy(tagged + 1, doc, doc_len);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, tagged, doc_len + 1, &pol, err,
                                      sizeof err), SIGNER_OK);
    if (err[0])
        fprintf(stderr, "tagged: %s\n", err);
    eng_attest_doc_cleanup(&d);
    /* Payload A9 ... -> BF ... FF */
    cose = eng_cbor_load(doc, doc_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cose);
    plen = cbor_bytestring_length(cbor_array_handle(cose)[2]);
    indef = malloc(plen + 1);
    memcpy(indef, cbor_bytestring_handle(cbor_array_handle(cose)[2]), plen);
    CU_ASSERT_EQUAL(indef[0], 0xA9);
    indef[0] = 0xBF;
    indef[plen] = 0xFF;
    f = fopen(path_in(g_dir, "leaf.key"), "r");
    key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    CU_ASSERT_EQUAL_FATAL(eng_cose_protected_es384(&prot, &prot_len), 0);
    CU_ASSERT_EQUAL_FATAL(eng_cose_sig_structure(&tbs, &tbs_len, prot,
                                                 prot_len, indef, plen + 1), 0);
    CU_ASSERT_EQUAL_FATAL(eng_cose_es384_sign(sig, key, tbs, tbs_len), 0);
    arr = cbor_new_definite_array(4);
    eng_cbor_array_put(arr, cbor_build_bytestring(prot, prot_len));
    eng_cbor_array_put(arr, cbor_new_definite_map(0));
    eng_cbor_array_put(arr, cbor_build_bytestring(indef, plen + 1));
    eng_cbor_array_put(arr, cbor_build_bytestring(sig, sizeof sig));
    CU_ASSERT_EQUAL_FATAL(eng_cbor_serialize(arr, &out, &out_len), 0);
    CU_ASSERT_EQUAL(eng_attest_verify(&d, out, out_len, &pol, err, sizeof err),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(d.nonce_len, sizeof NONCE - 1);
    eng_attest_doc_cleanup(&d);
    cbor_decref(&arr);
    cbor_decref(&cose);
    EVP_PKEY_free(key);
    free(out);
    free(prot);
    free(tbs);
    free(indef);
    free(tagged);
    free(doc);
    free(root);
    eng_attest_close(a);
}

static void test_random_and_mix(void)
{
    eng_attest *a = emu_open(g_dir, 1);
    unsigned char x[1000], y[1000], zero[1000] = {0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(eng_attest_get_random(a, x, sizeof x), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_attest_get_random(a, y, sizeof y), SIGNER_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(x, y, sizeof x), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(x + 900, zero, 100), 0);
    CU_ASSERT_EQUAL(eng_attest_mix_random(a, x, 32), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_attest_mix_random(a, y, 32), SIGNER_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(x, y, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(x, zero, 32), 0);
    eng_attest_close(a);
}

static void test_bad_emulated_config(void)
{
    eng_attest_config c;
    char err[256] = "";
    /* A key that does not match the certificate. */
    emu_config(&c, g_dir, 1);
    free(c.signing_key);
    c.signing_key = strdup(path_in(g_dir2, "leaf.key"));
    CU_ASSERT_PTR_NULL(eng_attest_open(&c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "emulated_nsm.certificate"));
    eng_attest_config_cleanup(&c);
    /* A certificate where the key should be. */
    emu_config(&c, g_dir, 1);
    free(c.signing_key);
    c.signing_key = strdup(path_in(g_dir, "leaf.pem"));
    CU_ASSERT_PTR_NULL(eng_attest_open(&c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "emulated_nsm.signing_key"));
    eng_attest_config_cleanup(&c);
    /* No bundle file. */
    emu_config(&c, g_dir, 1);
    free(c.cabundle);
    c.cabundle = strdup(path_in(g_dir, "missing.pem"));
    CU_ASSERT_PTR_NULL(eng_attest_open(&c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "emulated_nsm.cabundle"));
    eng_attest_config_cleanup(&c);
}

/* ---- config ---- */

static int parse_text(eng_attest_config *c, const char *text, char *err,
                      size_t err_len)
{
    config_t lc;
    int rc;
    config_init(&lc);
    if (config_read_string(&lc, text) != CONFIG_TRUE) {
        snprintf(err, err_len, "syntax: %s", config_error_text(&lc));
        config_destroy(&lc);
        return -2;
    }
    rc = eng_attest_conf_parse(c, config_root_setting(&lc), "/etc/x", err,
                               err_len);
    config_destroy(&lc);
    return rc;
}

static void test_conf(void)
{
    eng_attest_config c;
    char err[256] = "", text[1024];
    unsigned char want[48];
    hex_to(want, PCR0_HEX, 48);
    snprintf(text, sizeof text,
             "attestation = \"emulated\";\n"
             "emulated_nsm = { module_id = \"m\"; signing_key = \"k.pem\";\n"
             "  certificate = \"/abs/c.pem\"; cabundle = \"b.pem\";\n"
             "  pcrs = { pcr0 = \"%s\"; pcr8 = \"%s\"; }; };\n",
             PCR0_HEX, PCR8_HEX);
    CU_ASSERT_EQUAL_FATAL(parse_text(&c, text, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(c.attestation, "emulated");
    CU_ASSERT_STRING_EQUAL(c.module_id, "m");
    CU_ASSERT_STRING_EQUAL(c.signing_key, "/etc/x/k.pem");
    CU_ASSERT_STRING_EQUAL(c.certificate, "/abs/c.pem");
    CU_ASSERT_EQUAL(memcmp(c.pcrs[0], want, 48), 0);
    CU_ASSERT_EQUAL(c.pcrs[8][47], 0x88);
    CU_ASSERT_EQUAL(c.pcrs[1][0], 0);
    eng_attest_config_cleanup(&c);
    /* The list form: PCR0 first. */
    snprintf(text, sizeof text,
             "attestation = \"emulated\";\n"
             "emulated_nsm = { signing_key = \"k\"; certificate = \"c\";\n"
             "  cabundle = \"b\"; pcrs = [ \"%s\", \"%s\" ]; };\n",
             PCR0_HEX, PCR8_HEX);
    CU_ASSERT_EQUAL_FATAL(parse_text(&c, text, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(c.pcrs[0], want, 48), 0);
    CU_ASSERT_EQUAL(c.pcrs[1][0], 0x88);
    eng_attest_config_cleanup(&c);
    CU_ASSERT_EQUAL(parse_text(&c, "attestation = \"nsm\";", err, sizeof err),
                    0);
    CU_ASSERT_STRING_EQUAL(c.attestation, "nsm");
    eng_attest_config_cleanup(&c);
}

static void expect_conf_error(const char *text, const char *needle)
{
    eng_attest_config c;
    char err[256] = "";
    CU_ASSERT_EQUAL(parse_text(&c, text, err, sizeof err), -1);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "config error \"%s\" lacks \"%s\"\n", err, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    CU_ASSERT_PTR_NULL(c.attestation);
}

static void test_conf_errors(void)
{
    expect_conf_error("role = \"enclave\";", "attestation: missing");
    expect_conf_error("attestation = \"tpm\";", "must be \"nsm\" or");
    expect_conf_error("attestation = 3;", "attestation: must be");
    expect_conf_error("attestation = \"emulated\";", "emulated_nsm group");
    expect_conf_error("attestation = \"emulated\"; emulated_nsm = { "
                      "signing_key = \"k\"; certificate = \"c\"; };",
                      "cabundle are required");
    expect_conf_error("attestation = \"emulated\"; emulated_nsm = { "
                      "signing_key = \"k\"; certificate = \"c\"; cabundle = "
                      "\"b\"; colour = \"red\"; };", "unknown key colour");
    expect_conf_error("attestation = \"emulated\"; emulated_nsm = { "
                      "signing_key = \"k\"; certificate = \"c\"; cabundle = "
                      "\"b\"; pcrs = { pcr0 = \"abcd\"; }; };",
                      "PCR0 must be 96 hex digits");
    expect_conf_error("attestation = \"emulated\"; emulated_nsm = { "
                      "signing_key = \"k\"; certificate = \"c\"; cabundle = "
                      "\"b\"; pcrs = { pcr32 = \"00\"; }; };",
                      "index 32 out of range");
    expect_conf_error("attestation = \"emulated\"; emulated_nsm = { "
                      "signing_key = \"k\"; certificate = \"c\"; cabundle = "
                      "\"b\"; pcrs = { pcrx = \"00\"; }; };",
                      "unknown key pcrx");
}

/* ---- --dump for the third-party checks ---- */

static int dump(const char *dir, const char *pcr0_hex)
{
    eng_attest_config c;
    eng_attest *a;
    unsigned char buf[1024], *doc = NULL, *pk;
    size_t n, doc_len = 0, pk_len;
    char err[256] = "";
    eng_attest_req req = {0};
    int rc = 1;
    emu_config(&c, dir, 0);
    if (strlen(pcr0_hex) == 96)
        hex_to(c.pcrs[0], pcr0_hex, 48);
    a = eng_attest_open(&c, err, sizeof err);
    eng_attest_config_cleanup(&c);
    if (a == NULL) {
        fprintf(stderr, "dump: %s\n", err);
        return 1;
    }
    pk = rsa_spki(&pk_len);
    if (write_file(path_in(dir, "public_key.der"), pk, pk_len) != 0)
        goto cleanup;
    if (eng_nsm_encode_get_random(buf, sizeof buf, &n) != SIGNER_OK ||
        write_file(path_in(dir, "req_get_random.cbor"), buf, n) != 0 ||
        eng_nsm_encode_attestation(buf, sizeof buf, &n, &req) != SIGNER_OK ||
        write_file(path_in(dir, "req_attestation_null.cbor"), buf, n) != 0)
        goto cleanup;
    req = (eng_attest_req){pk, pk_len, USER, sizeof USER, NONCE,
                           sizeof NONCE - 1};
    if (eng_nsm_encode_attestation(buf, sizeof buf, &n, &req) != SIGNER_OK ||
        write_file(path_in(dir, "req_attestation.cbor"), buf, n) != 0 ||
        eng_attest_document(a, &doc, &doc_len, &req, err, sizeof err) !=
            SIGNER_OK ||
        write_file(path_in(dir, "doc.cbor"), doc, doc_len) != 0)
        goto cleanup;
    printf("nonce=%.*s user_data=00ff1020 doc_bytes=%zu\n",
           (int)(sizeof NONCE - 1), NONCE, doc_len);
    rc = 0;
cleanup:
    if (rc != 0)
        fprintf(stderr, "dump failed %s\n", err);
    free(doc);
    free(pk);
    eng_attest_close(a);
    return rc;
}

static int suite_init(void)
{
    g_dir = tu_tmpdir();
    g_dir2 = tu_tmpdir();
    if (g_dir == NULL || g_dir2 == NULL)
        return 1;
    return make_pki(g_dir) != 0 || make_pki(g_dir2) != 0;
}

static int suite_clean(void)
{
    tu_rmtree(g_dir);
    tu_rmtree(g_dir2);
    free(g_dir);
    free(g_dir2);
    return 0;
}

int main(int argc, char **argv)
{
    CU_pSuite s;
    if (argc == 4 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2], argv[3]);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("nsm_messages", NULL, NULL);
    TU_ADD(s, test_encode_get_random);
    TU_ADD(s, test_encode_attestation_null);
    TU_ADD(s, test_encode_attestation_values);
    TU_ADD(s, test_decode_get_random);
    TU_ADD(s, test_decode_attestation);
    TU_ADD(s, test_decode_error_answer);
    TU_ADD(s, test_decode_malformed);
    TU_ADD(s, test_well_formed);
    TU_ADD(s, test_nsm_absent);
    TU_ADD(s, test_conf);
    TU_ADD(s, test_conf_errors);
    s = CU_add_suite("emulated", suite_init, suite_clean);
    TU_ADD(s, test_emulated_round_trip);
    TU_ADD(s, test_null_fields_and_limits);
    TU_ADD(s, test_flipped_bytes_refused);
    TU_ADD(s, test_garbage_refused);
    TU_ADD(s, test_wrong_root_refused);
    TU_ADD(s, test_broken_chain_refused);
    TU_ADD(s, test_freshness);
    TU_ADD(s, test_tag_and_indefinite_payload);
    TU_ADD(s, test_random_and_mix);
    TU_ADD(s, test_bad_emulated_config);
    return tu_run();
}
