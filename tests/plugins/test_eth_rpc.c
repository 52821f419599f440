/*
 * The JSON-RPC endpoint of the eth plugin (plugins/eth/eth_rpc.c) against
 * the mock host, without a downstream node: request parsing and mapping
 * (single, batch, notifications, ids), the JSON-RPC error codes naming the
 * param, 401 without or with wrong credentials, eth_chainId from the
 * settings, and every signing method cross-checked against the plugin's own
 * ops (sign_message with {raw}, sign_typed_data, sign_transaction), which
 * tests/interop checks byte for byte against ethers.  The engine's side
 * (Authorization header parsing) is in tests/unit/test_rpc.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>

#include "../../plugins/eth/eth.h"
#include "mock_host.h"

static mock_host *M;
static const signer_plugin *P;
static void *CTX;
static char KID[37], ADDR[43];

#define SECRET "rpc-unit-test-secret-0123456789"
#define TYPED                                                                  \
    "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"   \
    "{\"name\":\"chainId\",\"type\":\"uint256\"}],\"Mail\":[{\"name\":"        \
    "\"contents\",\"type\":\"string\"}]},\"primaryType\":\"Mail\","           \
    "\"domain\":{\"name\":\"Ether Mail\",\"chainId\":1},\"message\":"         \
    "{\"contents\":\"Hello, Bob!\"}}"
#define TX                                                                     \
    "{\"to\":\"0x0000000000000000000000000000000000000001\",\"gas\":"          \
    "\"0x5208\",\"maxFeePerGas\":\"0x10\",\"maxPriorityFeePerGas\":\"0x1\","  \
    "\"nonce\":\"0x3\",\"chainId\":\"0x1\",\"value\":\"0x2a\"}"

/* Runs the rpc op on body with the given credentials (NULL: none); returns
 * the parsed answer (the raw body) and sets *status. */
static cJSON *rpc(const char *body, const char *kid, const char *secret,
                  int *status)
{
    cJSON *p = cJSON_CreateObject(), *res, *raw;
    char *pj, *out = NULL;

    cJSON_AddStringToObject(p, "body", body);
    if (kid != NULL)
        cJSON_AddStringToObject(p, "key_id", kid);
    if (secret != NULL)
        cJSON_AddStringToObject(p, "secret", secret);
    pj = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    (void)mock_call(M, P, CTX, "rpc", pj, &out, status);
    free(pj);
    res = cJSON_Parse(out);
    free(out);
    CU_ASSERT_EQUAL(mock_host_secure_live(M), 0);
    raw = cJSON_DetachItemFromObjectCaseSensitive(res, "raw");
    cJSON_Delete(res);
    return raw;
}

/* Runs op on payload text; returns field of the result (malloc'd). */
static char *op_field(const char *op, const char *payload, const char *name)
{
    char *out = NULL, *v = NULL;
    int status;
    cJSON *j;

    (void)mock_call(M, P, CTX, op, payload, &out, &status);
    CU_ASSERT_EQUAL(status, 200);
    j = cJSON_Parse(out);
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, name)))
        v = strdup(cJSON_GetObjectItemCaseSensitive(j, name)->valuestring);
    cJSON_Delete(j);
    free(out);
    return v;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int err_code(const cJSON *o)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    return cJSON_IsNumber(c) ? c->valueint : 0;
}

static const char *err_msg(const cJSON *o)
{
    return str_of(cJSON_GetObjectItemCaseSensitive(o, "error"), "message");
}

static int suite_init(void)
{
    char *out = NULL;
    int status;
    cJSON *j;

    if ((M = mock_host_new()) == NULL ||
        mock_host_set_settings(M, "{\"chain_id\": 5}") != 0 ||
        signer_plugin_init(mock_host_get(M), &P, &CTX) != SIGNER_OK)
        return 1;
    (void)mock_call(M, P, CTX, "generate_key",
                    "{\"secret\":\"" SECRET "\"}", &out, &status);
    j = cJSON_Parse(out);
    free(out);
    if (status != 200 || j == NULL)
        return 1;
    snprintf(KID, sizeof KID, "%s", str_of(j, "key_id"));
    snprintf(ADDR, sizeof ADDR, "%s", str_of(j, "address"));
    cJSON_Delete(j);
    return 0;
}

static int suite_clean(void)
{
    if (P != NULL)
        P->cleanup(CTX);
    mock_host_free(M);
    return 0;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_accounts_and_chain(void)
{
    int status;
    cJSON *a = rpc("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"eth_accounts\"}",
                   KID, SECRET, &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(a, "id")->valueint, 7);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a, "result"), 0)
            ->valuestring,
        ADDR);
    cJSON_Delete(a);
    a = rpc("{\"jsonrpc\":\"2.0\",\"id\":\"c\",\"method\":\"eth_chainId\"}",
            KID, SECRET, &status);
    CU_ASSERT_STRING_EQUAL(str_of(a, "result"), "0x5");
    CU_ASSERT_STRING_EQUAL(str_of(a, "id"), "c");
    cJSON_Delete(a);
}

static void test_batch(void)
{
    int status;
    cJSON *a = rpc("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_accounts\"},"
                   "{\"jsonrpc\":\"2.0\",\"method\":\"eth_accounts\"},"
                   "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"nope\"},"
                   "17,"
                   "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"eth_accounts\"}]",
                   KID, SECRET, &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_FATAL(cJSON_IsArray(a) && cJSON_GetArraySize(a) == 4);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "id")->valueint, 1);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 1), "id")));
    CU_ASSERT_EQUAL(err_code(cJSON_GetArrayItem(a, 1)), -32601);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(cJSON_GetArrayItem(a, 1)), "nope"));
    CU_ASSERT_EQUAL(err_code(cJSON_GetArrayItem(a, 2)), -32600);
    CU_ASSERT_EQUAL(err_code(cJSON_GetArrayItem(a, 3)), -32600);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(cJSON_GetArrayItem(a, 3)), "id"));
    cJSON_Delete(a);
    /* a notification last leaves no trailing comma */
    a = rpc("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_accounts\"},"
            "{\"jsonrpc\":\"2.0\",\"method\":\"eth_accounts\"}]",
            KID, SECRET, &status);
    CU_ASSERT(cJSON_IsArray(a) && cJSON_GetArraySize(a) == 1);
    cJSON_Delete(a);
    /* only notifications: no answer at all */
    a = rpc("[{\"jsonrpc\":\"2.0\",\"method\":\"eth_accounts\"}]", KID, SECRET,
            &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NULL(a);
    a = rpc("[]", KID, SECRET, &status);
    CU_ASSERT_EQUAL(err_code(a), -32600);
    cJSON_Delete(a);
}

static void test_protocol_errors(void)
{
    int status;
    cJSON *a = rpc("{\"jsonrpc\":", KID, SECRET, &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(err_code(a), -32700);
    cJSON_Delete(a);
    a = rpc("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"eth_accounts\"}", KID,
            SECRET, &status);
    CU_ASSERT_EQUAL(err_code(a), -32600);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(a), "jsonrpc"));
    cJSON_Delete(a);
    a = rpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sign\",\"params\":"
            "[\"0x0000000000000000000000000000000000000001\",\"0x00\"]}",
            KID, SECRET, &status);
    CU_ASSERT_EQUAL(err_code(a), -32602);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(a), "params[0]"));
    cJSON_Delete(a);
    a = rpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendTransaction\","
            "\"params\":[" TX "]}",
            KID, SECRET, &status);
    CU_ASSERT_EQUAL(err_code(a), -32601);
    cJSON_Delete(a);
    a = rpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_signTransaction\","
            "\"params\":[{\"to\":\"0x01\",\"gas\":\"0x5208\"}]}",
            KID, SECRET, &status);
    CU_ASSERT_EQUAL(err_code(a), -32602);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(a), "params[0]."));
    cJSON_Delete(a);
}

static void test_auth(void)
{
    int status;
    cJSON *a = rpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_accounts\"}",
                   NULL, NULL, &status);

    CU_ASSERT_EQUAL(status, 401);
    CU_ASSERT_EQUAL(err_code(a), -32001);
    cJSON_Delete(a);
    a = rpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_accounts\"}", KID,
            "wrong-secret-0123456789xyz", &status);
    CU_ASSERT_EQUAL(status, 401);
    CU_ASSERT_EQUAL(err_code(a), -32001);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(a, "result"));
    cJSON_Delete(a);
}

/* personal_sign / eth_sign of bytes == sign_message {raw}. */
static void test_message_signatures(void)
{
    char payload[256], body[256], *want;
    int status;
    cJSON *a;

    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"message\":"
             "{\"raw\":\"0x68656c6c6f\"}}",
             KID);
    want = op_field("sign_message", payload, "signature");
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    snprintf(body, sizeof body,
             "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"personal_sign\","
             "\"params\":[\"0x68656c6c6f\",\"%s\"]},{\"jsonrpc\":\"2.0\","
             "\"id\":2,\"method\":\"eth_sign\",\"params\":[\"%s\","
             "\"0x68656c6c6f\"]}]",
             ADDR, ADDR);
    a = rpc(body, KID, SECRET, &status);
    CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(a, 0), "result"), want);
    CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(a, 1), "result"), want);
    cJSON_Delete(a);
    free(want);
}

/* eth_signTypedData_v4, object and JSON text == sign_typed_data. */
static void test_typed_data(void)
{
    char payload[1024], body[2048], *want;
    cJSON *a, *txt;
    int status;

    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"typed_data\":"
             TYPED "}", KID);
    want = op_field("sign_typed_data", payload, "signature");
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    txt = cJSON_CreateString(TYPED);
    {
        char *t = cJSON_PrintUnformatted(txt);
        snprintf(body, sizeof body,
                 "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                 "\"eth_signTypedData_v4\",\"params\":[\"%s\"," TYPED "]},"
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":"
                 "\"eth_signTypedData_v4\",\"params\":[\"%s\",%s]}]",
                 ADDR, ADDR, t);
        free(t);
    }
    cJSON_Delete(txt);
    a = rpc(body, KID, SECRET, &status);
    CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(a, 0), "result"), want);
    CU_ASSERT_STRING_EQUAL(str_of(cJSON_GetArrayItem(a, 1), "result"), want);
    cJSON_Delete(a);
    free(want);
}

/* eth_signTransaction == sign_transaction; from checked. */
static void test_sign_transaction(void)
{
    char payload[1024], body[1024], *want;
    cJSON *a;
    int status;

    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction_payload\":" TX "}",
             KID);
    want = op_field("sign_transaction", payload, "transaction_signed");
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    a = rpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_signTransaction\","
            "\"params\":[" TX "]}",
            KID, SECRET, &status);
    CU_ASSERT_STRING_EQUAL(str_of(a, "result"), want);
    cJSON_Delete(a);
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_signTransaction\","
             "\"params\":[{\"from\":\"0x000000000000000000000000000000000000dEaD\","
             "\"to\":\"0x0000000000000000000000000000000000000001\",\"gas\":"
             "\"0x5208\",\"gasPrice\":\"0x1\",\"nonce\":\"0x0\"}]}");
    a = rpc(body, KID, SECRET, &status);
    CU_ASSERT_EQUAL(err_code(a), -32602);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_msg(a), "params[0].from"));
    cJSON_Delete(a);
    free(want);
}

int main(void)
{
    CU_pSuite s;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("eth_rpc", suite_init, suite_clean);
    CU_add_test(s, "eth_accounts, eth_chainId from settings", test_accounts_and_chain);
    CU_add_test(s, "batch, notifications, ids", test_batch);
    CU_add_test(s, "-32700, -32600, -32602, -32601", test_protocol_errors);
    CU_add_test(s, "401 without or with wrong credentials", test_auth);
    CU_add_test(s, "personal_sign / eth_sign", test_message_signatures);
    CU_add_test(s, "eth_signTypedData_v4 object and text", test_typed_data);
    CU_add_test(s, "eth_signTransaction", test_sign_transaction);

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
