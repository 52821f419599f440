/*
 * The template plugin "test" (plugins/test) against the mock host: its op
 * table (routes, aliases), key creation and opening through the host's key
 * services, and its "signature" checked against OpenSSL's HMAC-SHA256
 * computed here from the key the mock keystore holds.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mock_host.h"

#define SECRET "correct horse battery staple 42"

static mock_host *m;
static const signer_plugin *plug;
static void *pctx;

/* Runs op; returns the parsed result and sets *status. */
static cJSON *run(const char *op, const char *payload, int *status)
{
    char *res = NULL;
    cJSON *j;

    mock_call(m, plug, pctx, op, payload, &res, status);
    j = res != NULL ? cJSON_Parse(res) : NULL;
    free(res);
    return j;
}

/* String member k of o, or "". */
static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* A fresh mock host with the plugin initialised (settings JSON or NULL). */
static int setup(const char *settings)
{
    m = mock_host_new();
    if (m == NULL || (settings && mock_host_set_settings(m, settings) != 0))
        return -1;
    return signer_plugin_init(mock_host_get(m), &plug, &pctx);
}

static void teardown(void)
{
    if (plug != NULL && plug->cleanup != NULL)
        plug->cleanup(pctx);
    plug = NULL;
    mock_host_free(m);
    m = NULL;
}

/* The op table declares its routes and aliases (ABI 1.1). */
static void test_table(void)
{
    const signer_op *op;
    int seen = 0;

    CU_ASSERT_EQUAL_FATAL(setup(NULL), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(plug->name, "test");
    CU_ASSERT_EQUAL(plug->abi_minor, SIGNER_ABI_MINOR);
    for (op = plug->ops; op->name != NULL; op++) {
        if (strcmp(op->name, "sign_transaction") == 0) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(op->routes);
            CU_ASSERT_STRING_EQUAL(op->routes[0].method, "POST");
            CU_ASSERT_STRING_EQUAL(op->routes[0].path,
                                   "/test/key/{key_id}/signature");
            CU_ASSERT_PTR_NULL(op->routes[1].method);
            CU_ASSERT_STRING_EQUAL(op->aliases[0],
                                   "test-vendor_sign_transaction");
            seen++;
        } else if (strcmp(op->name, "generate_key") == 0) {
            CU_ASSERT_STRING_EQUAL(op->routes[0].path, "/test/key");
            CU_ASSERT_TRUE(op->flags & SIGNER_OP_SECRET);
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, 2);
    teardown();
}

/* generate_key stores a key through key_create; sign_transaction opens it
 * through key_open and answers HMAC-SHA256(key, transaction). */
static void test_generate_and_sign(void)
{
    unsigned char key[64], mac[32], d[32];
    char chain[32], addr[128], hex[65], want_addr[43], body[256];
    unsigned int ml = 0, dl = 0;
    size_t kl = 0;
    cJSON *g, *s;
    int st;

    CU_ASSERT_EQUAL_FATAL(setup(NULL), SIGNER_OK);
    g = run("generate_key", "{\"secret\":\"" SECRET "\"}", &st);
    CU_ASSERT_EQUAL_FATAL(st, 200);
    CU_ASSERT_EQUAL(mock_host_key_count(m), 1);
    CU_ASSERT_FATAL(mock_host_key_find(m, str(g, "key_id"), chain,
                                       sizeof chain, addr, sizeof addr, key,
                                       sizeof key, &kl) == 1);
    CU_ASSERT_STRING_EQUAL(chain, "test");
    CU_ASSERT_EQUAL(kl, 32);
    EVP_Digest(key, kl, d, &dl, EVP_sha256(), NULL);
    snprintf(want_addr, sizeof want_addr, "0x");
    for (int i = 0; i < 20; i++)
        snprintf(want_addr + 2 + 2 * i, 3, "%02x", d[i]);
    CU_ASSERT_STRING_EQUAL(str(g, "address"), want_addr);
    CU_ASSERT_STRING_EQUAL(addr, want_addr);

    snprintf(body, sizeof body, "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction\":\"pay 5 to bob\"}", str(g, "key_id"));
    s = run("sign_transaction", body, &st);
    CU_ASSERT_EQUAL(st, 200);
    HMAC(EVP_sha256(), key, (int)kl, (const unsigned char *)"pay 5 to bob",
         12, mac, &ml);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    CU_ASSERT_STRING_EQUAL(str(s, "signature"), hex);
    CU_ASSERT_STRING_EQUAL(str(s, "address"), want_addr);
    CU_ASSERT_EQUAL(mock_host_key_open_calls(m), 1);
    CU_ASSERT_EQUAL(mock_host_secure_live(m), 0);
    cJSON_Delete(s);
    cJSON_Delete(g);
    teardown();
}

/* Errors come from the key services (403, 404, 400 naming the field) and
 * from the plugin's own checks; no key memory is left allocated. */
static void test_errors(void)
{
    char body[256];
    cJSON *g, *r;
    int st;

    CU_ASSERT_EQUAL_FATAL(setup(NULL), SIGNER_OK);
    r = run("generate_key", "{\"secret\":\"short\"}", &st);
    CU_ASSERT_EQUAL(st, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(r, "error"), "secret"));
    CU_ASSERT_EQUAL(mock_host_key_count(m), 0);
    cJSON_Delete(r);
    g = run("generate_key", "{\"secret\":\"" SECRET "\"}", &st);
    snprintf(body, sizeof body, "{\"key_id\":\"%s\",\"secret\":\"wrong secret "
             "of twenty chars\",\"transaction\":\"x\"}", str(g, "key_id"));
    r = run("sign_transaction", body, &st);
    CU_ASSERT_EQUAL(st, 403);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(r, "signature"));
    cJSON_Delete(r);
    r = run("sign_transaction", "{\"key_id\":\"11111111-1111-4111-8111-"
            "111111111111\",\"secret\":\"" SECRET "\",\"transaction\":\"x\"}",
            &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(r);
    snprintf(body, sizeof body, "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\"}", str(g, "key_id"));
    r = run("sign_transaction", body, &st);
    CU_ASSERT_EQUAL(st, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(r, "error"), "transaction"));
    cJSON_Delete(r);
    CU_ASSERT_EQUAL(mock_host_secure_live(m), 0);
    cJSON_Delete(g);
    teardown();
}

/* Settings reach the plugin; a failing init returns an error. */
static void test_settings(void)
{
    cJSON *r;
    int st;

    CU_ASSERT_EQUAL_FATAL(setup("{\"greeting\":\"hi \"}"), SIGNER_OK);
    r = run("echo", "{\"message\":\"there\"}", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(str(r, "echo"), "hi there");
    cJSON_Delete(r);
    teardown();
    CU_ASSERT_EQUAL(setup("{\"fail_init\":true}"), SIGNER_ERR_CONFIG);
    plug = NULL;
    teardown();
}

int main(void)
{
    CU_pSuite s;
    unsigned fails;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("test_plugin", NULL, NULL);
    CU_add_test(s, "test_table", test_table);
    CU_add_test(s, "test_generate_and_sign", test_generate_and_sign);
    CU_add_test(s, "test_errors", test_errors);
    CU_add_test(s, "test_settings", test_settings);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
