/* Plugin loader: a good plugin, and each way a plugin is refused, leaving
 * the registry exactly as it was. */
#include "config.h"
#include "testutil.h"

#include <sys/stat.h>

#include "conf.h"
#include "dispatch.h"
#include "host.h"
#include "loader.h"
#include "route.h"

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

static void test_duplicate_alias(void)
{
    expect_refused("dup_alias", BAD("dup_alias"),
                   "alias 'test-vendor_sign_transaction' is already "
                   "registered by plugin test");
}

/* A plugin built for ABI 1.0 (smaller op entries, no routes or aliases)
 * still loads: its table is walked with its own stride. */
static void test_abi_1_0_plugin(void)
{
    eng_registry r;
    eng_route_match m;

    eng_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(load(&r, "abi_1_0", BAD("abi_1_0"), NULL), SIGNER_OK);
    CU_ASSERT_EQUAL(r.n_ops, 2);
    CU_ASSERT_PTR_NOT_NULL(eng_registry_find(&r, "ping"));
    CU_ASSERT_PTR_NOT_NULL(eng_registry_find(&r, "abi_1_0.pong"));
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key", "{}", 2, &m), 404);
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

/* ---- two chains side by side: docs/plugins.md's three steps followed
 * with the template plugin "test" beside eth, both with sign_transaction -- */

#define SECRET "correct horse battery staple 42"

/* One request through the real dispatcher; the parsed answer. */
static cJSON *dispatch(eng_engine *e, const char *body, const char *op,
                       const char *key_id, int *status)
{
    eng_request req;
    char *resp = NULL;
    size_t rl = 0;
    cJSON *j;

    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = strlen(body);
    req.operation = op;
    req.key_id = key_id;
    req.peer = "test";
    *status = eng_dispatch(e, &req, &resp, &rl);
    j = resp != NULL ? cJSON_Parse(resp) : NULL;
    free(resp);
    return j;
}

/* Member k of the answer's enclave_result, or "". */
static const char *res_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "enclave_result"), k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Step 2 (the config) with eth and test loaded; routes and names. */
static void test_two_chains(void)
{
    eng_config c;
    eng_engine e;
    eng_route_match m;
    char text[1024], body[512], *d = tu_tmpdir(), sig[65] = "", kid[37];
    cJSON *g, *s1, *s2;
    int st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    if (access(plugin_path("plugins/.libs/eth.so"), R_OK) != 0) {
        fprintf(stderr, "\n    skipped: eth.so not built\n");
        goto out;
    }
    snprintf(text, sizeof text,
             "data_dir = \"%s/data\";\nplugin_dir = \"%s/plugins/.libs\";\n"
             "key_cache = { ttl_seconds = 0; };\n"
             "plugins = ( { name = \"eth\"; path = \"eth.so\"; },\n"
             "            { name = \"test\"; path = \"test.so\"; } );\n",
             d, tu_builddir());
    CU_ASSERT_EQUAL_FATAL(eng_config_load_string(&c, text, d, err, sizeof err), 0);
    if (eng_engine_open(&e, &c, err, sizeof err) != 0) {
        fprintf(stderr, "\nopen: %s\n", err);
        CU_FAIL_FATAL("engine open");
    }
    /* names: the plain verb is the first chain's, chain.verb each one's */
    CU_ASSERT_STRING_EQUAL(eng_registry_find(&e.reg, "sign_transaction")->plugin->name, "eth");
    CU_ASSERT_STRING_EQUAL(eng_registry_find(&e.reg, "eth.sign_transaction")->plugin->name, "eth");
    CU_ASSERT_STRING_EQUAL(eng_registry_find(&e.reg, "test.sign_transaction")->plugin->name, "test");
    CU_ASSERT_PTR_EQUAL(eng_registry_find(&e.reg, "test-vendor_sign_transaction")->op,
                        eng_registry_find(&e.reg, "test.sign_transaction")->op);
    CU_ASSERT_STRING_EQUAL(eng_registry_find(&e.reg, "ethereum-signer_sign_transaction")->plugin->name, "eth");
    /* a test key, signed through the chain.verb name and the route */
    g = dispatch(&e, "{\"operation\":\"test.generate_key\",\"payload\":"
                     "{\"secret\":\"" SECRET "\"}}", NULL, NULL, &st);
    CU_ASSERT_EQUAL_FATAL(st, 200);
    snprintf(kid, sizeof kid, "%s", res_str(g, "key_id"));
    snprintf(body, sizeof body, "{\"operation\":\"test.sign_transaction\","
             "\"payload\":{\"key_id\":\"%s\",\"secret\":\"" SECRET "\","
             "\"transaction\":\"t1\"}}", kid);
    s1 = dispatch(&e, body, NULL, NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    snprintf(sig, sizeof sig, "%s", res_str(s1, "signature"));
    CU_ASSERT_EQUAL(strlen(sig), 64);
    snprintf(body, sizeof body, "/test/key/%s/signature", kid);
    CU_ASSERT_EQUAL(eng_route_resolve(&e.reg, "POST", body, "{}", 2, &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "test.sign_transaction");
    CU_ASSERT_STRING_EQUAL(m.key_id, kid);
    s2 = dispatch(&e, "{\"secret\":\"" SECRET "\",\"transaction\":\"t1\"}",
                  m.operation, m.key_id, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(res_str(s2, "signature"), sig);
    cJSON_Delete(s2);
    /* eth's sign_transaction does not take the test chain's key */
    snprintf(body, sizeof body, "{\"operation\":\"sign_transaction\",\"payload\":"
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"transaction_payload\":"
             "{\"chainId\":1,\"nonce\":0,\"gas\":21000,\"maxFeePerGas\":1,"
             "\"maxPriorityFeePerGas\":1}}}", kid);
    s2 = dispatch(&e, body, NULL, NULL, &st);
    CU_ASSERT(st == 404 || st == 400);
    CU_ASSERT_EQUAL(strlen(res_str(s2, "signature")), 0);
    cJSON_Delete(s2);
    cJSON_Delete(s1);
    cJSON_Delete(g);
    eng_engine_close(&e);
    eng_config_free(&c);
out:
    tu_rmtree(d);
    free(d);
}

/* The seed's routes come from eth's op table: POST /key decides by the
 * body (eth_key imports), /key/import, the key-id routes; 404 and 405. */
static void test_eth_routes(void)
{
    eng_registry r;
    eng_route_match m;
    const char *id = "0b2f6a0e-6a1c-4c3e-9a4e-2f1d3c4b5a69";
    char path[128];

    if (access(plugin_path("plugins/.libs/eth.so"), R_OK) != 0)
        return;
    eng_registry_init(&r);
    CU_ASSERT_EQUAL_FATAL(load(&r, "eth", "plugins/.libs/eth.so", NULL), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key", "{\"secret\":\"s\"}", strlen("{\"secret\":\"s\"}"), &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "generate_key");
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key", " { \"secret\":\"s\", \"eth_key\":\"ab\"}", strlen(" { \"secret\":\"s\", \"eth_key\":\"ab\"}"), &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "set_key");
    /* eth_key nested or inside a string does not count */
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key", "{\"a\":{\"eth_key\":1},\"b\":\"eth_key\"}", strlen("{\"a\":{\"eth_key\":1},\"b\":\"eth_key\"}"), &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "generate_key");
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key/import", "{}", strlen("{}"), &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "set_key");
    snprintf(path, sizeof path, "/key/%s/tx_signature", id);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", path, "{}", strlen("{}"), &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "sign_transaction");
    CU_ASSERT_STRING_EQUAL(m.key_id, id);
    snprintf(path, sizeof path, "/key/%s/userop_signature", id);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", path, "{}", strlen("{}"), &m), 0);
    CU_ASSERT_STRING_EQUAL(m.operation, "sign_userop");
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "GET", path, "", strlen(""), &m), 405);
    CU_ASSERT_STRING_EQUAL(m.allow, "POST");
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key/zz!/tx_signature", "", strlen(""), &m), 404);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key/abc/other", "", strlen(""), &m), 404);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/key/abc", "", strlen(""), &m), 404);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "POST", "/", "{}", strlen("{}"), &m), 0);
    CU_ASSERT_PTR_NULL(m.operation);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "GET", "/", "", strlen(""), &m), 405);
    CU_ASSERT_EQUAL(eng_route_resolve(&r, "GET", "/nope", "", strlen(""), &m), 404);
    CU_ASSERT_STRING_EQUAL(eng_registry_find(&r, "ethereum-key-generator_generate_key")->op->name, "generate_key");
    CU_ASSERT_STRING_EQUAL(eng_registry_find(&r, "ethereum-signer_set_key")->op->name, "set_key");
    /* a config alias repeating a declared one is accepted */
    CU_ASSERT_EQUAL(eng_registry_alias(&r, "ethereum-signer_set_key", "set_key", err, sizeof err), SIGNER_OK);
    CU_ASSERT_NOT_EQUAL(eng_registry_alias(&r, "ethereum-signer_set_key", "generate_key", err, sizeof err), SIGNER_OK);
    eng_registry_free(&r);
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
    TU_ADD(s, test_duplicate_alias);
    TU_ADD(s, test_abi_1_0_plugin);
    TU_ADD(s, test_wrong_name);
    TU_ADD(s, test_missing_file);
    TU_ADD(s, test_failing_init);
    TU_ADD(s, test_world_writable);
    TU_ADD(s, test_aliases);
    TU_ADD(s, test_resolve);
    TU_ADD(s, test_eth_routes);
    TU_ADD(s, test_two_chains);
    return tu_run();
}
