/* SQLite keystore: put/get/missing/duplicate, persistence across reopen,
 * concurrent writers. */
#include "config.h"
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

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

/* The rows: picked by name; "none" keeps nothing; unknown names refused. */
static void test_rows(void)
{
    eng_keystore *ks = NULL;
    eng_backend_args args = {dir, NULL, 0, 1, NULL};
    unsigned char *blob = NULL, v[8];
    size_t len = 0;
    char chain[16], addr[64];
    CU_ASSERT_PTR_EQUAL(eng_keystore_find("sqlite"), &eng_keystore_sqlite);
    CU_ASSERT_PTR_EQUAL(eng_keystore_find("none"), &eng_keystore_none);
    CU_ASSERT_PTR_EQUAL(eng_keystore_find("dynamodb"), &eng_keystore_dynamodb);
    CU_ASSERT_PTR_NULL(eng_keystore_find("dynamo"));
    CU_ASSERT_EQUAL(eng_keystore_open(&ks, "dynamo", &args, err, sizeof err),
                    SIGNER_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"sqlite\", \"dynamodb\", \"none\""));
    CU_ASSERT_EQUAL_FATAL(eng_keystore_open(&ks, "none", &args, err,
                                            sizeof err),
                          SIGNER_OK);
    CU_ASSERT_TRUE(eng_keystore_ready(ks));
    CU_ASSERT_EQUAL(eng_keystore_count(ks), 0);
    CU_ASSERT_EQUAL(eng_keystore_put(ks, &m1, (const unsigned char *)"b", 1),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(eng_keystore_get(ks, chain, sizeof chain, addr,
                                     sizeof addr, &blob, &len, m1.key_id),
                    SIGNER_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(eng_keystore_meta_get(ks, v, sizeof v, &len, "x"),
                    SIGNER_ERR_NOT_FOUND);
    eng_keystore_close(ks);
    CU_ASSERT_FALSE(eng_keystore_ready(NULL));
    CU_ASSERT_EQUAL(eng_keystore_count(NULL), -1);
}

/* create = 0 on a missing database: NOT_FOUND and no file; meta values
 * round-trip and survive a reopen; created files are recorded. */
static void test_meta_and_create(void)
{
    eng_setting set = {"path", "meta.db"};
    eng_created created;
    eng_backend_args args = {dir, &set, 1, 0, &created};
    eng_keystore *ks = NULL;
    unsigned char v[64];
    size_t len = 0;
    char path[600];
    struct stat st;
    memset(&created, 0, sizeof created);
    snprintf(path, sizeof path, "%s/meta.db", dir);
    CU_ASSERT_EQUAL(eng_keystore_open(&ks, "sqlite", &args, err, sizeof err),
                    SIGNER_ERR_NOT_FOUND);
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    args.create = 1;
    CU_ASSERT_EQUAL_FATAL(eng_keystore_open(&ks, "sqlite", &args, err,
                                            sizeof err),
                          SIGNER_OK);
    CU_ASSERT_TRUE(created.n >= 1);
    CU_ASSERT_STRING_EQUAL(created.path[0], path);
    CU_ASSERT_EQUAL(eng_keystore_meta_get(ks, v, sizeof v, &len, "k"),
                    SIGNER_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(eng_keystore_meta_put(ks, "k", (const unsigned char *)
                                          "\x00\x01\x02", 3), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_keystore_meta_put(ks, "k", (const unsigned char *)
                                          "\x00\x01\x03", 3), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_keystore_meta_get(ks, v, 2, &len, "k"),
                    SIGNER_ERR_TOO_LARGE);
    eng_keystore_close(ks);
    args.create = 0;
    eng_created_clear(&created);
    CU_ASSERT_EQUAL_FATAL(eng_keystore_open(&ks, "sqlite", &args, err,
                                            sizeof err),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(created.n, 0);
    CU_ASSERT_EQUAL(eng_keystore_meta_get(ks, v, sizeof v, &len, "k"),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_EQUAL(memcmp(v, "\x00\x01\x03", 3), 0);
    eng_keystore_close(ks);
}

/* stderr into a pipe, to read what the keystore logs. */
struct capture {
    int saved, p[2];
};

static int capture_begin(struct capture *c)
{
    if (pipe(c->p) != 0)
        return -1;
    fcntl(c->p[0], F_SETFL, O_NONBLOCK);
    c->saved = dup(2);
    dup2(c->p[1], 2);
    return 0;
}

static void capture_end(struct capture *c, char *out, size_t cap)
{
    ssize_t n;
    size_t len = 0;
    dup2(c->saved, 2);
    close(c->saved);
    close(c->p[1]);
    while (len + 1 < cap && (n = read(c->p[0], out + len, cap - len - 1)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(c->p[0]);
}

/* A write that really fails (the file size limit, so SQLite's write(2)
 * gets EFBIG): logged with SQLite's message and extended code, the store
 * is not ready, and a probe makes it ready again once writes work. */
static void test_write_failure_not_ready(void)
{
    static const signer_key_meta m2 = {"33333333-3333-4333-8333-333333333333",
                                       "eth", "0xdef"};
    eng_setting set = {"path", "fail.db"};
    eng_backend_args args = {dir, &set, 1, 1, NULL};
    eng_keystore *ks = NULL;
    struct rlimit old, lim;
    struct capture cap;
    char log[4096];
    int rc;
    CU_ASSERT_EQUAL_FATAL(eng_keystore_open(&ks, "sqlite", &args, err,
                                            sizeof err),
                          SIGNER_OK);
    CU_ASSERT_TRUE(eng_keystore_ready(ks));
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    CU_ASSERT_EQUAL_FATAL(capture_begin(&cap), 0);
    lim = old;
    lim.rlim_cur = 1;
    setrlimit(RLIMIT_FSIZE, &lim);
    rc = eng_keystore_put(ks, &m2, (const unsigned char *)"blob", 4);
    setrlimit(RLIMIT_FSIZE, &old);
    capture_end(&cap, log, sizeof log);
    CU_ASSERT_EQUAL(rc, SIGNER_ERR_INTERNAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "storing a key failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "disk I/O error"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "SQLite extended code"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "fail.db"));
    CU_ASSERT_FALSE(eng_keystore_ready(ks));
    /* Writes work again: after the probe interval, ready again. */
    {
        struct timespec ts = {1, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(capture_begin(&cap), 0);
    rc = eng_keystore_ready(ks);
    capture_end(&cap, log, sizeof log);
    CU_ASSERT_TRUE(rc);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "writable again"));
    CU_ASSERT_EQUAL(eng_keystore_put(ks, &m2, (const unsigned char *)"blob",
                                     4),
                    SIGNER_OK);
    signal(SIGXFSZ, SIG_DFL);
    eng_keystore_close(ks);
}

int main(void)
{
    CU_pSuite s;
    if (tu_begin(&dir) != 0)
        return 1;
    snprintf(db, sizeof db, "%s/keys.db", dir);
    s = CU_add_suite("keystore", NULL, NULL);
    TU_ADD(s, test_put_get);
    TU_ADD(s, test_persistence);
    TU_ADD(s, test_concurrent);
    TU_ADD(s, test_open_errors);
    TU_ADD(s, test_rows);
    TU_ADD(s, test_meta_and_create);
    TU_ADD(s, test_write_failure_not_ready);
    return tu_end(dir);
}
