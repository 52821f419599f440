/* SQLite keystore: put/get/missing/duplicate, persistence across reopen,
 * concurrent writers. */
#include "config.h"
#include "testutil.h"

#include <pthread.h>

#include "keystore/keystore.h"
#include "util.h"

static char *dir;
static char db[512];
static char err[512];

static const signer_key_meta m1 = {"11111111-1111-4111-8111-111111111111",
                                   "eth", "0xabc"};

static void test_put_get(void)
{
    eng_keystore *ks = eng_keystore_sqlite_open(db, err, sizeof err);
    unsigned char *blob = NULL;
    size_t len = 0;
    char chain[16], addr[64];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
    CU_ASSERT_EQUAL(eng_keystore_count(ks), 0);
    CU_ASSERT_EQUAL(eng_keystore_put(ks, &m1, (const unsigned char *)"\x01\x02\x00\x03", 4),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, sizeof chain, addr,
                                     sizeof addr, &blob, &len, m1.key_id),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(len, 4);
    CU_ASSERT_EQUAL(memcmp(blob, "\x01\x02\x00\x03", 4), 0);
    CU_ASSERT_STRING_EQUAL(chain, "eth");
    CU_ASSERT_STRING_EQUAL(addr, "0xabc");
    free(blob);
    /* Duplicate key_id: conflict, and the first record is untouched. */
    CU_ASSERT_EQUAL(eng_keystore_put(ks, &m1, (const unsigned char *)"zz", 2),
                    SIGNER_ERR_CONFLICT);
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, sizeof chain, addr,
                                     sizeof addr, &blob, &len, m1.key_id),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(len, 4);
    free(blob);
    /* Missing. */
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, sizeof chain, addr,
                                     sizeof addr, &blob, &len,
                                     "22222222-2222-4222-8222-222222222222"),
                    SIGNER_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(blob);
    /* SQL-like key_ids are plain data. */
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, sizeof chain, addr,
                                     sizeof addr, &blob, &len,
                                     "' OR 1=1 --"),
                    SIGNER_ERR_NOT_FOUND);
    /* Too small buffers are refused, not truncated. */
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, 2, addr, sizeof addr, &blob,
                                     &len, m1.key_id),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(eng_keystore_count(ks), 1);
    eng_keystore_close(ks);
}

static void test_persistence(void)
{
    eng_keystore *ks = eng_keystore_sqlite_open(db, err, sizeof err);
    unsigned char *blob = NULL;
    size_t len = 0;
    char chain[16], addr[64];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, sizeof chain, addr,
                                     sizeof addr, &blob, &len, m1.key_id),
                    SIGNER_OK);
    free(blob);
    eng_keystore_close(ks);
}

struct writer {
    eng_keystore *ks;
    int ok;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    int i;
    for (i = 0; i < 50; i++) {
        char id[37];
        signer_key_meta m = {id, "eth", "0x1"};
        eng_uuid_v4(id);
        if (eng_keystore_put(w->ks, &m, (const unsigned char *)"b", 1) ==
            SIGNER_OK)
            w->ok++;
    }
    return NULL;
}

static void test_concurrent(void)
{
    eng_keystore *ks = eng_keystore_sqlite_open(db, err, sizeof err);
    pthread_t t[4];
    struct writer w[4];
    long long before;
    int i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ks);
    before = eng_keystore_count(ks);
    for (i = 0; i < 4; i++) {
        w[i].ks = ks;
        w[i].ok = 0;
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(w[i].ok, 50);
    }
    CU_ASSERT_EQUAL(eng_keystore_count(ks), before + 200);
    eng_keystore_close(ks);
}

static void test_open_errors(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/missing/dir/k.db", dir);
    CU_ASSERT_PTR_NULL(eng_keystore_sqlite_open(p, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open keystore"));
}

int main(void)
{
    CU_pSuite s;
    int rc;
    dir = tu_tmpdir();
    if (dir == NULL || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    snprintf(db, sizeof db, "%s/keys.db", dir);
    s = CU_add_suite("keystore", NULL, NULL);
    TU_ADD(s, test_put_get);
    TU_ADD(s, test_persistence);
    TU_ADD(s, test_concurrent);
    TU_ADD(s, test_open_errors);
    rc = tu_run();
    tu_rmtree(dir);
    free(dir);
    return rc;
}
