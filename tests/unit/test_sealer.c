/* Local sealer: round trip, binding to key_id/chain/address, every flipped
 * bit refused, master key file creation and checks. */
#include "config.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sealer/sealer.h"

static char *dir;
static char mk[512];
static char err[512];

static const signer_key_meta meta = {
    "0b0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", "eth",
    "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"};
static const unsigned char plain[] = "\x20key-material-0123456789abcdef01\x14"
                                     "a-secret-of-20-chars";

static void test_roundtrip_and_file(void)
{
    eng_sealer *s = eng_sealer_local_open(mk, err, sizeof err);
    unsigned char *blob = NULL, out[128];
    size_t blen = 0, olen = 0;
    struct stat st;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(stat(mk, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 32);
    CU_ASSERT_EQUAL_FATAL(eng_sealer_seal(s, &blob, &blen, &meta, plain,
                                          sizeof plain),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(blen, sizeof plain + ENG_SEAL_OVERHEAD);
    CU_ASSERT_EQUAL(blob[0], ENG_SEAL_VERSION);
    /* The plaintext does not appear in the blob. */
    CU_ASSERT_PTR_NULL(memmem(blob, blen, "key-material", 12));
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta, blob,
                                      blen),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(olen, sizeof plain);
    CU_ASSERT_EQUAL(memcmp(out, plain, sizeof plain), 0);
    eng_sealer_free(s);
    /* Reopening reads the same master key: the blob still opens. */
    s = eng_sealer_local_open(mk, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta, blob,
                                      blen),
                    SIGNER_OK);
    free(blob);
    eng_sealer_free(s);
}

static void test_nonce_fresh(void)
{
    eng_sealer *s = eng_sealer_local_open(mk, err, sizeof err);
    unsigned char *a = NULL, *b = NULL;
    size_t al, bl;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(eng_sealer_seal(s, &a, &al, &meta, plain, sizeof plain), 0);
    CU_ASSERT_EQUAL(eng_sealer_seal(s, &b, &bl, &meta, plain, sizeof plain), 0);
    CU_ASSERT_EQUAL(al, bl);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, al), 0);
    free(a);
    free(b);
    eng_sealer_free(s);
}

static void test_binding(void)
{
    eng_sealer *s = eng_sealer_local_open(mk, err, sizeof err);
    unsigned char *blob = NULL, out[128];
    size_t blen, olen;
    signer_key_meta m2;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(eng_sealer_seal(s, &blob, &blen, &meta, plain,
                                          sizeof plain), 0);
    m2 = meta;
    m2.key_id = "0b0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4c";
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &m2, blob,
                                      blen),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(olen, 0);
    m2 = meta;
    m2.chain = "btc";
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &m2, blob,
                                      blen),
                    SIGNER_ERR_FORBIDDEN);
    m2 = meta;
    m2.address = "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f";
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &m2, blob,
                                      blen),
                    SIGNER_ERR_FORBIDDEN);
    free(blob);
    eng_sealer_free(s);
}

static void test_every_bit(void)
{
    eng_sealer *s = eng_sealer_local_open(mk, err, sizeof err);
    unsigned char *blob = NULL, out[128];
    size_t blen, olen, i;
    int bit, opened = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(eng_sealer_seal(s, &blob, &blen, &meta, plain,
                                          sizeof plain), 0);
    for (i = 0; i < blen; i++)
        for (bit = 0; bit < 8; bit++) {
            blob[i] ^= (unsigned char)(1u << bit);
            if (eng_sealer_unseal(s, out, sizeof out, &olen, &meta, blob,
                                  blen) == SIGNER_OK)
                opened++;
            blob[i] ^= (unsigned char)(1u << bit);
        }
    CU_ASSERT_EQUAL(opened, 0);
    /* Truncated and empty blobs. */
    CU_ASSERT_NOT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta,
                                          blob, blen - 1), SIGNER_OK);
    CU_ASSERT_NOT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta,
                                          blob, 0), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta, blob,
                                      blen), SIGNER_OK);
    free(blob);
    eng_sealer_free(s);
}

static void test_other_master_key(void)
{
    char mk2[600];
    eng_sealer *s = eng_sealer_local_open(mk, err, sizeof err), *s2;
    unsigned char *blob = NULL, out[128];
    size_t blen, olen;
    snprintf(mk2, sizeof mk2, "%s.other", mk);
    s2 = eng_sealer_local_open(mk2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_EQUAL_FATAL(eng_sealer_seal(s, &blob, &blen, &meta, plain,
                                          sizeof plain), 0);
    CU_ASSERT_EQUAL(eng_sealer_unseal(s2, out, sizeof out, &olen, &meta,
                                      blob, blen),
                    SIGNER_ERR_FORBIDDEN);
    free(blob);
    eng_sealer_free(s);
    eng_sealer_free(s2);
}

static void test_bad_master_files(void)
{
    char p[600];
    int fd;
    snprintf(p, sizeof p, "%s/short.key", dir);
    fd = open(p, O_WRONLY | O_CREAT, 0600);
    CU_ASSERT_EQUAL(write(fd, "abc", 3), 3);
    close(fd);
    CU_ASSERT_PTR_NULL(eng_sealer_local_open(p, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected 32"));
    CU_ASSERT_EQUAL(chmod(mk, 0644), 0);
    CU_ASSERT_PTR_NULL(eng_sealer_local_open(mk, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
    CU_ASSERT_EQUAL(chmod(mk, 0600), 0);
    snprintf(p, sizeof p, "%s/no/such/dir/k", dir);
    CU_ASSERT_PTR_NULL(eng_sealer_local_open(p, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot create master key file"));
}

/* The rows: picked by name, "none" seals nothing, an unknown name is a
 * config error listing the rows. */
static void test_rows(void)
{
    eng_sealer *s = NULL;
    unsigned char *blob = (unsigned char *)"x", out[ENG_SEALER_CHECK_LEN];
    size_t blen = 1, olen = 1;
    eng_backend_args args = {dir, NULL, 0, 1, NULL};
    CU_ASSERT_PTR_EQUAL(eng_sealer_find("local"), &eng_sealer_local);
    CU_ASSERT_PTR_EQUAL(eng_sealer_find("none"), &eng_sealer_none);
    CU_ASSERT_PTR_EQUAL(eng_sealer_find("aws-kms"), &eng_sealer_aws_kms);
    CU_ASSERT_EQUAL(eng_sealer_open(&s, "kms", &args, err, sizeof err),
                    SIGNER_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"local\", \"none\""));
    CU_ASSERT_EQUAL_FATAL(eng_sealer_open(&s, "none", &args, err, sizeof err),
                          SIGNER_OK);
    CU_ASSERT_TRUE(eng_sealer_ready(s));
    CU_ASSERT_EQUAL(eng_sealer_seal(s, &blob, &blen, &meta, plain, 10),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NULL(blob);
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta,
                                      (const unsigned char *)"x", 1),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(eng_sealer_check_value(s, out), SIGNER_ERR_NOT_FOUND);
    eng_sealer_close(s);
    /* NULL handles answer, they do not crash. */
    CU_ASSERT_FALSE(eng_sealer_ready(NULL));
    CU_ASSERT_EQUAL(eng_sealer_seal(NULL, &blob, &blen, &meta, plain, 10),
                    SIGNER_ERR_UNAVAILABLE);
}

/* The aws-kms row opened for a check (create = 0, no attestation device)
 * refuses to seal or unseal without a request's credentials, before any
 * connection: the plain methods and the *_call ones with no credentials. */
static void test_aws_kms_needs_credentials(void)
{
    const eng_setting set[] = {{"region", "eu-west-1"},
                               {"kms_key_id", "alias/test"},
                               {"endpoint", "tcp:127.0.0.1:1"},
                               {"plain", "true"}};
    eng_backend_args args = {dir, set, 4, 0, NULL};
    eng_seal_call call;
    eng_sealer *s = NULL;
    unsigned char *blob = (unsigned char *)"x", out[64];
    size_t blen = 1, olen = 1;

    CU_ASSERT_EQUAL_FATAL(eng_sealer_open(&s, "aws-kms", &args, err,
                                          sizeof err),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(eng_sealer_seal(s, &blob, &blen, &meta, plain, 10),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NULL(blob);
    CU_ASSERT_EQUAL(blen, 0);
    CU_ASSERT_EQUAL(eng_sealer_unseal(s, out, sizeof out, &olen, &meta,
                                      (const unsigned char *)"x", 1),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(olen, 0);
    memset(&call, 0, sizeof call);
    olen = 1;
    CU_ASSERT_EQUAL(eng_sealer_unseal_call(s, &call, out, sizeof out, &olen,
                                           &meta, (const unsigned char *)"x",
                                           1),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(olen, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(call.msg, "credentials: required"));
    CU_ASSERT_FALSE(eng_sealer_ready(s));
    eng_sealer_close(s);
}

/* open(create = 0) on a missing master key: NOT_FOUND, nothing created;
 * create = 1 records the file it made, and undo removes it. */
static void test_create_and_undo(void)
{
    eng_setting set = {"master_key_file", "sub-mk"};
    eng_created created;
    eng_backend_args args = {dir, &set, 1, 0, &created};
    eng_sealer *s = NULL;
    char path[600], desc[700];
    struct stat st;
    memset(&created, 0, sizeof created);
    snprintf(path, sizeof path, "%s/sub-mk", dir);
    CU_ASSERT_EQUAL(eng_sealer_open(&s, "local", &args, err, sizeof err),
                    SIGNER_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not exist"));
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    args.create = 1;
    CU_ASSERT_EQUAL_FATAL(eng_sealer_open(&s, "local", &args, err,
                                          sizeof err),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(created.n, 1);
    CU_ASSERT_STRING_EQUAL(created.path[0], path);
    eng_sealer_describe(s, desc, sizeof desc);
    CU_ASSERT_PTR_NOT_NULL(strstr(desc, path));
    eng_sealer_close(s);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    eng_created_undo(&created);
    CU_ASSERT_EQUAL(created.n, 0);
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
}

/* The check value: HMAC-SHA256(master key, label), the same for the same
 * key file, different for another key, and not the key itself. */
static void test_check_value(void)
{
    static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
    unsigned char a[ENG_SEALER_CHECK_LEN], b[ENG_SEALER_CHECK_LEN];
    unsigned char want[32];
    unsigned int wlen = 0;
    char p1[600], p2[600];
    eng_sealer *s;
    int fd;
    snprintf(p1, sizeof p1, "%s/cv1", dir);
    snprintf(p2, sizeof p2, "%s/cv2", dir);
    fd = open(p1, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, key, sizeof key), 32);
    close(fd);
    s = eng_sealer_local_open(p1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(eng_sealer_check_value(s, a), SIGNER_OK);
    eng_sealer_close(s);
    /* Third-party truth: OpenSSL's HMAC over the documented label. */
    HMAC(EVP_sha256(), key, 32,
         (const unsigned char *)"enclave-signer master key check v1", 34,
         want, &wlen);
    CU_ASSERT_EQUAL(wlen, 32);
    CU_ASSERT_EQUAL(memcmp(a, want, 32), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, key, 32), 0);
    s = eng_sealer_local_open(p1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(eng_sealer_check_value(s, b), SIGNER_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    eng_sealer_close(s);
    s = eng_sealer_local_open(p2, err, sizeof err); /* a fresh random key */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(eng_sealer_check_value(s, b), SIGNER_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof a), 0);
    eng_sealer_close(s);
}

int main(void)
{
    CU_pSuite s;
    if (tu_begin(&dir) != 0)
        return 1;
    snprintf(mk, sizeof mk, "%s/master.key", dir);
    s = CU_add_suite("sealer", NULL, NULL);
    TU_ADD(s, test_roundtrip_and_file);
    TU_ADD(s, test_nonce_fresh);
    TU_ADD(s, test_binding);
    TU_ADD(s, test_every_bit);
    TU_ADD(s, test_other_master_key);
    TU_ADD(s, test_bad_master_files);
    TU_ADD(s, test_rows);
    TU_ADD(s, test_aws_kms_needs_credentials);
    TU_ADD(s, test_create_and_undo);
    TU_ADD(s, test_check_value);
    return tu_end(dir);
}
