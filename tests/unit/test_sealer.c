/* Local sealer: round trip, binding to key_id/chain/address, every flipped
 * bit refused, master key file creation and checks. */
#include "config.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>

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

int main(void)
{
    CU_pSuite s;
    int rc;
    dir = tu_tmpdir();
    if (dir == NULL || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    snprintf(mk, sizeof mk, "%s/master.key", dir);
    s = CU_add_suite("sealer", NULL, NULL);
    TU_ADD(s, test_roundtrip_and_file);
    TU_ADD(s, test_nonce_fresh);
    TU_ADD(s, test_binding);
    TU_ADD(s, test_every_bit);
    TU_ADD(s, test_other_master_key);
    TU_ADD(s, test_bad_master_files);
    rc = tu_run();
    tu_rmtree(dir);
    free(dir);
    return rc;
}
