/* Plugin loader: a good plugin, and each way a plugin is refused, leaving
 * the registry exactly as it was. */
#include "config.h"
#include "testutil.h"

#include <sys/stat.h>

#include "host.h"
#include "loader.h"

static eng_engine eng;
static char err[1024];

static char *plugin_path(const char *rel)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", tu_builddir(), rel);
    return buf;
}

#define TEST_SO "plugins/.libs/test.so"
#define BAD(n) "tests/unit/plugins/.libs/" n ".so"

static int load(eng_registry *r, const char *name, const char *rel,
                const signer_conf *settings)
{
    err[0] = '\0';
    return eng_registry_load(r, &eng.host, name, plugin_path(rel), settings,
                             err, sizeof err);
}

static void expect_refused(const char *name, const char *rel,
                           const char *needle)
{
    eng_registry r;
    size_t ops_before;
    eng_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(load(&r, "test", TEST_SO, NULL), SIGNER_OK);
    ops_before = r.n_ops;
    CU_ASSERT_NOT_EQUAL(load(&r, name, rel, NULL), SIGNER_OK);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "\nexpected '%s' in '%s'\n", needle, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    /* The message names the plugin, and nothing of it stays registered. */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, name));
    CU_ASSERT_EQUAL(r.n_plugins, 1);
    CU_ASSERT_EQUAL(r.n_ops, ops_before);
    CU_ASSERT_PTR_NULL(eng_registry_find(&r, "ping"));
    eng_registry_free(&r);
}

static void test_load_good(void)
{
    eng_registry r;
    const eng_op_entry *e;
    eng_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(load(&r, "test", TEST_SO, NULL), SIGNER_OK);
    CU_ASSERT_EQUAL(r.n_plugins, 1);
    e = eng_registry_find(&r, "echo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->plugin->name, "test");
    CU_ASSERT_PTR_NOT_NULL(eng_registry_find(&r, "fail"));
    CU_ASSERT_PTR_NULL(eng_registry_find(&r, "nope"));
    /* Loading the same name twice is refused. */
    CU_ASSERT_NOT_EQUAL(load(&r, "test", TEST_SO, NULL), SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "a plugin of that name is loaded"));
    CU_ASSERT_EQUAL(r.n_plugins, 1);
    eng_registry_free(&r);
}

static void test_abi_mismatch(void)
{
    expect_refused("bad_abi", BAD("bad_abi"), "not compatible");
}

static void test_missing_symbol(void)
{
    expect_refused("no_symbol", BAD("no_symbol"),
                   "does not export signer_plugin_init");
}

/* Ops are registered as (chain, verb): a second chain's "echo" loads and
 * is reached as "dup_op.echo"; the plain verb stays the first chain's. */
static void test_same_verb_two_chains(void)
{
    eng_registry r;
    const eng_op_entry *a, *b, *q;

    eng_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(load(&r, "test", TEST_SO, NULL), SIGNER_OK);
    CU_ASSERT_EQUAL_FATAL(load(&r, "dup_op", BAD("dup_op"), NULL), SIGNER_OK);
    a = eng_registry_find(&r, "echo");
    b = eng_registry_find(&r, "dup_op.echo");
    q = eng_registry_find(&r, "test.echo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_STRING_EQUAL(a->plugin->name, "test");
    CU_ASSERT_STRING_EQUAL(b->plugin->name, "dup_op");
    CU_ASSERT_STRING_EQUAL(b->name, "dup_op.echo");
    CU_ASSERT_PTR_EQUAL(q, a);
    CU_ASSERT_PTR_NOT_EQUAL(a->op, b->op);
    CU_ASSERT_PTR_NULL(eng_registry_find(&r, "nochain.echo"));
    CU_ASSERT_PTR_NULL(eng_registry_find(&r, "dup_op.fail"));
    eng_registry_free(&r);
}

static void test_duplicate_in_table(void)
{
    expect_refused("dup_in_table", BAD("dup_in_table"), "listed twice");
}

static void test_wrong_name(void)
{
    expect_refused("wrong_name", BAD("wrong_name"), "calls itself");
}

static void test_missing_file(void)
{
    expect_refused("ghost", "plugins/.libs/ghost.so", "cannot access");
}

static void test_failing_init(void)
{
    config_t lc;
    eng_registry r;
    config_init(&lc);
    CU_ASSERT_EQUAL_FATAL(
        config_read_string(&lc, "s = { fail_init = true; };"), CONFIG_TRUE);
    eng_registry_init(&r);
    CU_ASSERT_EQUAL(load(&r, "test", TEST_SO,
                         (const signer_conf *)config_lookup(&lc, "s")),
                    SIGNER_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "init failed"));
    CU_ASSERT_EQUAL(r.n_plugins, 0);
    CU_ASSERT_EQUAL(r.n_ops, 0);
    CU_ASSERT_PTR_NULL(eng_registry_find(&r, "echo"));
    /* Settings reach the plugin: a greeting. */
    config_destroy(&lc);
    config_init(&lc);
    CU_ASSERT_EQUAL_FATAL(config_read_string(&lc, "s = { greeting = 5; };"),
                          CONFIG_TRUE);
    CU_ASSERT_EQUAL(load(&r, "test", TEST_SO,
                         (const signer_conf *)config_lookup(&lc, "s")),
                    SIGNER_ERR_CONFIG);
    CU_ASSERT_EQUAL(r.n_ops, 0);
    eng_registry_free(&r);
    config_destroy(&lc);
}

static void test_world_writable(void)
{
    char *dir = tu_tmpdir(), dst[512], cmd[2048];
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    snprintf(dst, sizeof dst, "%s/test.so", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", plugin_path(TEST_SO), dst);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(dst, 0666), 0);
    {
        eng_registry r;
        eng_registry_init(&r);
        CU_ASSERT_NOT_EQUAL(eng_registry_load(&r, &eng.host, "test", dst,
                                              NULL, err, sizeof err),
                            SIGNER_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "world-writable"));
        CU_ASSERT_EQUAL(r.n_plugins, 0);
        CU_ASSERT_EQUAL_FATAL(chmod(dst, 0644), 0);
        CU_ASSERT_EQUAL(eng_registry_load(&r, &eng.host, "test", dst, NULL,
                                          err, sizeof err),
                        SIGNER_OK);
        eng_registry_free(&r);
    }
    tu_rmtree(dir);
    free(dir);
}

static void test_aliases(void)
{
    eng_registry r;
    const eng_op_entry *a, *o;
    eng_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(load(&r, "test", TEST_SO, NULL), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_registry_alias(&r, "legacy-echo", "echo", err,
                                       sizeof err),
                    SIGNER_OK);
    a = eng_registry_find(&r, "legacy-echo");
    o = eng_registry_find(&r, "echo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_EQUAL(a->op, o->op);
    CU_ASSERT_TRUE(a->is_alias);
    CU_ASSERT_NOT_EQUAL(eng_registry_alias(&r, "x", "missing", err,
                                           sizeof err),
                        SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'missing' is not registered"));
    CU_ASSERT_NOT_EQUAL(eng_registry_alias(&r, "fail", "echo", err,
                                           sizeof err),
                        SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already registered"));
    eng_registry_free(&r);
}

static void test_resolve(void)
{
    char *p = eng_plugin_resolve("test.so", plugin_path("plugins/.libs"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p, plugin_path(TEST_SO));
    free(p);
    p = eng_plugin_resolve("/abs/x.so", "/ignored");
    CU_ASSERT_STRING_EQUAL(p, "/abs/x.so");
    free(p);
}

int main(void)
{
    CU_pSuite s;
    memset(&eng, 0, sizeof eng);
    eng_host_init(&eng);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("loader", NULL, NULL);
    TU_ADD(s, test_load_good);
    TU_ADD(s, test_abi_mismatch);
    TU_ADD(s, test_missing_symbol);
    TU_ADD(s, test_same_verb_two_chains);
    TU_ADD(s, test_duplicate_in_table);
    TU_ADD(s, test_wrong_name);
    TU_ADD(s, test_missing_file);
    TU_ADD(s, test_failing_init);
    TU_ADD(s, test_world_writable);
    TU_ADD(s, test_aliases);
    TU_ADD(s, test_resolve);
    return tu_run();
}
