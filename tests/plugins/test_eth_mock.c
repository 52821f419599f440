/*
 * Tests of the mock host itself (tests/plugins/mock_host.c), run as part of
 * test_eth: the services other plugin tests rely on behave as documented.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>

#include "mock_host.h"

#define MSECRET "0123456789abcdef0123456789abcdef"

static const signer_host *mh; /* set by each handler's caller */

static int h_ok_after_error(void *ctx, signer_call *call, signer_reply *reply,
                            const signer_json *payload)
{
    (void)ctx; (void)call; (void)payload;
    mh->reply_error(reply, SIGNER_ERR_BAD_REQUEST, "x: bad");
    return SIGNER_OK;
}

static int h_error_without_message(void *ctx, signer_call *call,
                                   signer_reply *reply,
                                   const signer_json *payload)
{
    (void)ctx; (void)call; (void)reply; (void)payload;
    return SIGNER_ERR_FORBIDDEN;
}

/* Stores a fixed key under chain "test" and echoes key_open's view. */
static int h_create(void *ctx, signer_call *call, signer_reply *reply,
                    const signer_json *payload)
{
    static const unsigned char key[4] = {1, 2, 3, 4};
    (void)ctx;
    return mh->key_create(call, reply, "test", "addr-1", key, sizeof key,
                          payload);
}

static int h_open(void *ctx, signer_call *call, signer_reply *reply,
                  const signer_json *payload)
{
    unsigned char key[8];
    char addr[32];
    size_t len = 0;
    int rc;
    (void)ctx;
    rc = mh->key_open(call, reply, key, sizeof key, &len, addr, sizeof addr,
                      "test", payload);
    if (rc != SIGNER_OK)
        return rc;
    if (len != 4 || key[3] != 4)
        return mh->reply_error(reply, SIGNER_ERR_INTERNAL, "bad key");
    return mh->reply_string(reply, "address", addr);
}

/* Walks payload.list with json_count/json_at and returns the sum. */
static int h_walk(void *ctx, signer_call *call, signer_reply *reply,
                  const signer_json *payload)
{
    const signer_json *l = mh->json_get(payload, "list");
    size_t n = mh->json_count(l), i;
    double sum = 0, d;
    char buf[64];
    const char *k = NULL;
    (void)ctx; (void)call;
    for (i = 0; i < n; i++)
        if (mh->json_number(mh->json_at(l, i, NULL), &d))
            sum += d;
    if (mh->json_at(l, n, NULL) != NULL)
        return mh->reply_error(reply, SIGNER_ERR_INTERNAL, "past the end");
    (void)mh->json_at(payload, 0, &k);
    snprintf(buf, sizeof buf, "%.0f:%s", sum, k ? k : "");
    return mh->reply_string(reply, "sum", buf);
}

static const signer_op mock_ops[] = {
    {"ok_after_error", h_ok_after_error, 0, NULL},
    {"error_without_message", h_error_without_message, 0, NULL},
    {"create", h_create, SIGNER_OP_SECRET, NULL},
    {"open", h_open, SIGNER_OP_SECRET, NULL},
    {"walk", h_walk, 0, NULL},
    {NULL, NULL, 0, NULL}};

static const signer_plugin mock_plugin = {SIGNER_PLUGIN_HEADER, "test", "0",
                                          mock_ops, NULL};

static cJSON *mrun(mock_host *m, const char *op, const char *payload,
                   int *status)
{
    char *res = NULL;
    cJSON *j;

    mock_call(m, &mock_plugin, NULL, op, payload, &res, status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    j = cJSON_Parse(res);
    free(res);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

static const char *mfield(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_mock_dispatch(void)
{
    mock_host *m = mock_host_new();
    int status;
    cJSON *j;

    mh = mock_host_get(m);
    j = mrun(m, "nope", "{}", &status);
    CU_ASSERT_EQUAL(status, 404);
    cJSON_Delete(j);
    j = mrun(m, "walk", "{bad json", &status);
    CU_ASSERT_EQUAL(status, 400);
    cJSON_Delete(j);
    j = mrun(m, "ok_after_error", "{}", &status);
    CU_ASSERT_EQUAL(status, 500);
    CU_ASSERT_PTR_NOT_NULL(strstr(mfield(j, "error"), "mock:"));
    cJSON_Delete(j);
    j = mrun(m, "error_without_message", NULL, &status);
    CU_ASSERT_EQUAL(status, 403);
    CU_ASSERT_PTR_NOT_NULL(strstr(mfield(j, "error"), "without a message"));
    cJSON_Delete(j);
    j = mrun(m, "walk", "{\"list\":[1,2,3,4,5,6,7,8,9,10]}", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(mfield(j, "sum"), "55:list");
    cJSON_Delete(j);
    mock_host_free(m);
}

static int is_uuid4(const char *s)
{
    size_t i;

    if (strlen(s) != 36 || s[14] != '4' || strchr("89ab", s[19]) == NULL)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (strchr("0123456789abcdef", s[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

static void test_mock_keys(void)
{
    mock_host *m = mock_host_new();
    char payload[256], kid[40], chain[16], addr[16];
    unsigned char key[8];
    size_t klen = 0;
    int status;
    cJSON *j;

    mh = mock_host_get(m);
    j = mrun(m, "create", "{\"secret\":\"short\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(mfield(j, "error"), "secret"));
    cJSON_Delete(j);
    j = mrun(m, "create", "{\"secret\":\"" MSECRET "\\n\"}", &status);
    CU_ASSERT_EQUAL(status, 400); /* not printable */
    cJSON_Delete(j);
    j = mrun(m, "create", "{\"secret\":\"" MSECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 200);
    snprintf(kid, sizeof kid, "%s", mfield(j, "key_id"));
    CU_ASSERT(is_uuid4(kid));
    CU_ASSERT_STRING_EQUAL(mfield(j, "address"), "addr-1");
    cJSON_Delete(j);
    CU_ASSERT(mock_host_key_find(m, kid, chain, sizeof chain, addr, sizeof addr,
                                 key, sizeof key, &klen));
    CU_ASSERT_STRING_EQUAL(chain, "test");
    CU_ASSERT_EQUAL(klen, 4);

    snprintf(payload, sizeof payload, "{\"key_id\":\"%s\",\"secret\":\"" MSECRET "\"}", kid);
    j = mrun(m, "open", payload, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(mfield(j, "address"), "addr-1");
    cJSON_Delete(j);
    snprintf(payload, sizeof payload, "{\"key_id\":\"%s\",\"secret\":\"" MSECRET "x\"}", kid);
    j = mrun(m, "open", payload, &status);
    CU_ASSERT_EQUAL(status, 403);
    cJSON_Delete(j);
    j = mrun(m, "open", "{\"key_id\":\"00000000-0000-4000-8000-000000000000\",\"secret\":\"" MSECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 404);
    cJSON_Delete(j);
    j = mrun(m, "open", "{\"key_id\":7,\"secret\":\"" MSECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(mfield(j, "error"), "key_id"));
    cJSON_Delete(j);
    j = mrun(m, "open", "{\"secret\":\"" MSECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    cJSON_Delete(j);
    /* a key of another chain is not found */
    CU_ASSERT_EQUAL(mock_host_key_add(m, "22222222-2222-4222-8222-222222222222",
                                      "other", "a", key, 4, MSECRET), SIGNER_OK);
    CU_ASSERT_EQUAL(mock_host_key_add(m, "22222222-2222-4222-8222-222222222222",
                                      "other", "a", key, 4, MSECRET), SIGNER_ERR_CONFLICT);
    j = mrun(m, "open", "{\"key_id\":\"22222222-2222-4222-8222-222222222222\",\"secret\":\"" MSECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 404);
    cJSON_Delete(j);
    CU_ASSERT_EQUAL(mock_host_key_count(m), 2);
    CU_ASSERT_EQUAL(mock_host_key_open_calls(m), 6);
    mock_host_free(m);
}

static void test_mock_random_and_memory(void)
{
    mock_host *m = mock_host_new(), *m2 = mock_host_new();
    const signer_host *h = mock_host_get(m), *h2 = mock_host_get(m2);
    unsigned char q[3] = {7, 8, 9}, out[40], out2[40];
    void *p;

    mock_host_queue_random(m, q, 3);
    CU_ASSERT_EQUAL(h->random_bytes(h, out, 5), SIGNER_OK);
    CU_ASSERT(out[0] == 7 && out[1] == 8 && out[2] == 9);
    mock_host_set_seed(m, "seed");
    mock_host_set_seed(m2, "seed");
    CU_ASSERT_EQUAL(h->random_bytes(h, out, 40), SIGNER_OK);
    CU_ASSERT_EQUAL(h2->random_bytes(h2, out2, 40), SIGNER_OK);
    CU_ASSERT_EQUAL(memcmp(out, out2, 40), 0);
    mock_host_set_random_fail(m, 1);
    CU_ASSERT_NOT_EQUAL(h->random_bytes(h, out, 1), SIGNER_OK);
    mock_host_set_random_fail(m, 0);

    p = h->secure_alloc(h, 32);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_EQUAL(mock_host_secure_live(m), 1);
    h->secure_free(h, p, 32);
    CU_ASSERT_EQUAL(mock_host_secure_live(m), 0);
    CU_ASSERT(h->ct_equal("abc", "abc", 3));
    CU_ASSERT_FALSE(h->ct_equal("abc", "abd", 3));

    h->log(h, SIGNER_LOG_WARN, "hello %d", 42);
    CU_ASSERT_PTR_NOT_NULL(strstr(mock_host_log_text(m), "WARN hello 42"));
    mock_host_log_clear(m);
    CU_ASSERT_STRING_EQUAL(mock_host_log_text(m), "");
    mock_host_free(m);
    mock_host_free(m2);
}

static void test_mock_conf_and_seal(void)
{
    mock_host *m = mock_host_new();
    const signer_host *h;
    long long i = 0;
    int b = 0;
    const char *s = NULL;
    struct signer_key_meta meta = {"33333333-3333-4333-8333-333333333333",
                                   "test", "addr"};
    struct signer_key_meta other = {"44444444-4444-4444-8444-444444444444",
                                    "test", "addr"};
    unsigned char *blob = NULL, *blob2 = NULL, plain[8];
    size_t blen = 0, blen2 = 0, plen = 0;
    char chain[16], addr[16];

    CU_ASSERT_EQUAL(mock_host_set_settings(m, "{\"a\":{\"n\":5,\"s\":\"x\"},\"b\":true}"), 0);
    CU_ASSERT_EQUAL(mock_host_set_settings(m, "[1]"), -1);
    h = mock_host_get(m);
    CU_ASSERT_EQUAL(h->conf_int(h->settings, "a.n", &i), 1);
    CU_ASSERT_EQUAL(i, 5);
    CU_ASSERT_EQUAL(h->conf_string(h->settings, "a.s", &s), 1);
    CU_ASSERT_STRING_EQUAL(s, "x");
    CU_ASSERT_EQUAL(h->conf_bool(h->settings, "b", &b), 1);
    CU_ASSERT_EQUAL(b, 1);
    CU_ASSERT_EQUAL(h->conf_int(h->settings, "a.missing", &i), 0);
    CU_ASSERT_EQUAL(h->conf_int(h->settings, "a.s", &i), SIGNER_ERR_CONFIG);

    /* low-level services take a call handle */
    {
        signer_call *c = mock_host_call(m);
        CU_ASSERT_EQUAL(h->seal(c, &blob, &blen, &meta, (const unsigned char *)"key!", 4), SIGNER_OK);
        CU_ASSERT_EQUAL(h->unseal(c, plain, sizeof plain, &plen, &meta, blob, blen), SIGNER_OK);
        CU_ASSERT_EQUAL(plen, 4);
        CU_ASSERT_EQUAL(memcmp(plain, "key!", 4), 0);
        CU_ASSERT_EQUAL(h->unseal(c, plain, sizeof plain, &plen, &other, blob, blen),
                        SIGNER_ERR_FORBIDDEN);
        CU_ASSERT_EQUAL(h->keystore_put(c, &meta, blob, blen), SIGNER_OK);
        CU_ASSERT_EQUAL(h->keystore_put(c, &meta, blob, blen), SIGNER_ERR_CONFLICT);
        CU_ASSERT_EQUAL(h->keystore_get(c, chain, sizeof chain, addr, sizeof addr,
                                        &blob2, &blen2, meta.key_id), SIGNER_OK);
        CU_ASSERT_EQUAL(blen2, blen);
        CU_ASSERT_STRING_EQUAL(chain, "test");
        CU_ASSERT_STRING_EQUAL(addr, "addr");
        h->free(blob2);
        CU_ASSERT_EQUAL(h->keystore_get(c, chain, sizeof chain, addr, sizeof addr,
                                        &blob2, &blen2, other.key_id),
                        SIGNER_ERR_NOT_FOUND);
        CU_ASSERT_PTR_NULL(blob2);
        h->free(blob);
    }
    mock_host_free(m);
}

void eth_test_add_mock_suite(void);

void eth_test_add_mock_suite(void)
{
    CU_pSuite s = CU_add_suite("mock_host", NULL, NULL);

    CU_add_test(s, "dispatch and contract checks", test_mock_dispatch);
    CU_add_test(s, "key_create / key_open", test_mock_keys);
    CU_add_test(s, "random, memory, log", test_mock_random_and_memory);
    CU_add_test(s, "config, seal, keystore", test_mock_conf_and_seal);
}
