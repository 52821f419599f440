/*
 * Known-answer tests of the eth plugin's newer operations against the mock
 * host: sign_typed_data (EIP-712), type-3 (EIP-4844) and type-4 (EIP-7702)
 * transactions, sign_authorization, sign_message's text / {raw} forms, and
 * the transaction checks for payloads from standard tooling (from, type).
 *
 * Sources: the EIP-712 specification's Mail example (its key
 * keccak256("cow"), digest and signature), and eth_breadth_vectors.h,
 * generated once by tests/interop/gen_eth_vectors.mjs with ethers 6.15.0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>

#include "../../plugins/eth/eth.h"
#include "eth_breadth_vectors.h"
#include "mock_host.h"

#define BSECRET "breadth-test-secret-0123456789"
#define BKEY46 "4646464646464646464646464646464646464646464646464646464646464646"
#define BADDR46 "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
/* EIP-712 Mail example: private key keccak256("cow") */
#define COW_KEY "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4"
#define COW_ADDR "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
#define MAIL_DIGEST "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
#define MAIL_SIG                                                               \
    "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"       \
    "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c"
#define MAIL_TYPES                                                             \
    "\"Person\":[{\"name\":\"name\",\"type\":\"string\"},"                     \
    "{\"name\":\"wallet\",\"type\":\"address\"}],"                             \
    "\"Mail\":[{\"name\":\"from\",\"type\":\"Person\"},"                       \
    "{\"name\":\"to\",\"type\":\"Person\"},"                                   \
    "{\"name\":\"contents\",\"type\":\"string\"}]"
#define MAIL_DOMAIN_TYPE                                                       \
    "\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"               \
    "{\"name\":\"version\",\"type\":\"string\"},"                              \
    "{\"name\":\"chainId\",\"type\":\"uint256\"},"                             \
    "{\"name\":\"verifyingContract\",\"type\":\"address\"}],"
#define MAIL_REST                                                              \
    "\"primaryType\":\"Mail\",\"domain\":{\"name\":\"Ether Mail\","            \
    "\"version\":\"1\",\"chainId\":1,\"verifyingContract\":"                   \
    "\"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC\"},"                         \
    "\"message\":{\"from\":{\"name\":\"Cow\",\"wallet\":"                      \
    "\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"},\"to\":{\"name\":"        \
    "\"Bob\",\"wallet\":\"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB\"},"      \
    "\"contents\":\"Hello, Bob!\"}"

static mock_host *BM;
static const signer_plugin *BP;
static void *BCTX;
static char KID[37], KIDCOW[37];

/* Runs op with payload; returns the result object (caller deletes). */
static cJSON *brun(const char *op, const char *payload, int *status)
{
    char *res = NULL;
    cJSON *j;

    mock_call(BM, BP, BCTX, op, payload, &res, status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    j = cJSON_Parse(res);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    free(res);
    CU_ASSERT_EQUAL(mock_host_secure_live(BM), 0);
    return j;
}

static const char *bfield(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Imports a key (suite set-up: no CUnit assertions); 0 ok, -1 failed. */
static int bimport(char out[37], const char *hexkey)
{
    char payload[256], *res = NULL;
    int status = 0;
    cJSON *j;

    snprintf(payload, sizeof payload,
             "{\"eth_key\":\"%s\",\"secret\":\"" BSECRET "\"}", hexkey);
    mock_call(BM, BP, BCTX, "set_key", payload, &res, &status);
    j = res != NULL ? cJSON_Parse(res) : NULL;
    free(res);
    if (j == NULL || status != 200)
        status = -1;
    else
        snprintf(out, 37, "%s", bfield(j, "key_id"));
    cJSON_Delete(j);
    return status == 200 ? 0 : -1;
}

static int breadth_init(void)
{
    BM = mock_host_new();
    if (BM == NULL || signer_plugin_init(mock_host_get(BM), &BP, &BCTX) != 0)
        return -1;
    return bimport(KID, BKEY46) == 0 && bimport(KIDCOW, COW_KEY) == 0 ? 0 : -1;
}

static int breadth_clean(void)
{
    if (BP != NULL && BP->cleanup != NULL)
        BP->cleanup(BCTX);
    mock_host_free(BM);
    return 0;
}

/* Calls op for key kid with "<member>": body; returns the answer. */
static cJSON *bcall(const char *op, const char *kid, const char *member,
                    const char *body, int *status)
{
    size_t n = strlen(body) + 256;
    char *payload = malloc(n);
    cJSON *j;

    CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
    snprintf(payload, n, "{\"key_id\":\"%s\",\"secret\":\"" BSECRET "\",\"%s\":%s}",
             kid, member, body);
    j = brun(op, payload, status);
    free(payload);
    return j;
}

/* Expects 200 and field name == want (and field name2 == want2). */
static void expect_ok(const char *op, const char *kid, const char *member,
                      const char *body, const char *name, const char *want,
                      const char *name2, const char *want2)
{
    int status;
    cJSON *j = bcall(op, kid, member, body, &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(bfield(j, name), want);
    if (name2 != NULL)
        CU_ASSERT_STRING_EQUAL(bfield(j, name2), want2);
    if (status != 200 || strcmp(bfield(j, name), want) != 0) {
        char *t = cJSON_PrintUnformatted(j);
        fprintf(stderr, "\n  %s %.300s\n  -> %d %s\n", op, body, status, t);
        free(t);
    }
    cJSON_Delete(j);
}

/* Expects a 400 whose message contains want, decided before key_open. */
static void expect_400(const char *op, const char *member, const char *body,
                       const char *want)
{
    long opens = mock_host_key_open_calls(BM);
    int status;
    cJSON *j = bcall(op, KID, member, body, &status);
    const char *msg = bfield(j, "error");

    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    CU_ASSERT_EQUAL(mock_host_key_open_calls(BM), opens);
    if (status != 400 || strstr(msg, want) == NULL)
        fprintf(stderr, "\n  %s %.300s\n  -> %d %s (want %s)\n", op, body,
                status, msg, want);
    cJSON_Delete(j);
}

/* ---- EIP-712 ------------------------------------------------------------------ */

static void test_typed_mail(void)
{
    /* as in the EIP (EIP712Domain given), and as ethers takes it (derived) */
    expect_ok("sign_typed_data", KIDCOW, "typed_data",
              "{\"types\":{" MAIL_DOMAIN_TYPE MAIL_TYPES "}," MAIL_REST "}",
              "digest", MAIL_DIGEST, "signature", MAIL_SIG);
    expect_ok("sign_typed_data", KIDCOW, "typed_data",
              "{\"types\":{" MAIL_TYPES "}," MAIL_REST "}", "digest",
              MAIL_DIGEST, "signature", MAIL_SIG);
}

static void test_typed_ethers(void)
{
    expect_ok("sign_typed_data", KID, "typed_data", TD_ORDER_JSON, "digest",
              TD_ORDER_DIGEST, "signature", TD_ORDER_SIG);
}

#define TD(types, msg)                                                         \
    "{\"types\":{" types "},\"primaryType\":\"T\",\"domain\":{\"name\":"       \
    "\"x\"},\"message\":" msg "}"

static void test_typed_errors(void)
{
    static const char *const cases[][2] = {
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"Foo\"}]", "{\"a\":1}"),
         "typed_data.types.T.a: unknown type \"Foo\""},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"U\"}],\"U\":[{\"name\":\"b\","
            "\"type\":\"T[]\"}]",
            "{\"a\":{}}"),
         "circular type reference"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"T\"}]", "{}"),
         "typed_data.types.T.a: circular type reference to \"T\""},
        {TD("\"T\":[{\"name\":\"order\",\"type\":\"O\"}],\"O\":[{\"name\":"
            "\"amount\",\"type\":\"uint8\"}]",
            "{\"order\":{\"amount\":256}}"),
         "typed_data.message.order.amount: value out of range for uint8"},
        {TD("\"T\":[{\"name\":\"order\",\"type\":\"O\"}],\"O\":[{\"name\":"
            "\"amount\",\"type\":\"uint8\"}]",
            "{\"order\":{}}"),
         "typed_data.message.order.amount: required"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"int8\"}]", "{\"a\":\"-129\"}"),
         "typed_data.message.a: value out of range for int8"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"uint256\"}]", "{\"a\":-1}"),
         "typed_data.message.a: value out of range"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"uint7\"}]", "{\"a\":1}"),
         "typed_data.types.T.a: unknown type"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"bytes33\"}]", "{\"a\":\"0x\"}"),
         "typed_data.types.T.a: unknown type"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"bytes2\"}]", "{\"a\":\"0x010203\"}"),
         "typed_data.message.a: expected 2 bytes"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"uint8[2]\"}]", "{\"a\":[1]}"),
         "typed_data.message.a: expected an array of 2 elements"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"bool[]\"}]", "{\"a\":[true,1]}"),
         "typed_data.message.a[1]: expected true or false"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"bool\"}]", "{\"a\":true,\"b\":1}"),
         "typed_data.message.b: not a field of type T"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"address\"}]", "{\"a\":\"0x12\"}"),
         "typed_data.message.a: expected a 20-byte hex address"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"bytes\"}]", "{\"a\":\"0x1\"}"),
         "typed_data.message.a: expected 0x-prefixed hex"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"a\","
            "\"type\":\"string\"}]",
            "{}"),
         "duplicate field name"},
        {TD("\"T\":[{\"name\":\"a\",\"type\":\"uint8[x]\"}]", "{}"),
         "typed_data.types.T.a: malformed type"},
        {"{\"types\":{\"T\":[]},\"primaryType\":\"X\",\"domain\":{},\"message\":{}}",
         "typed_data.primaryType: \"X\" is not in types"},
        {"{\"types\":{\"T\":[]},\"primaryType\":\"T\",\"domain\":{\"foo\":1},\"message\":{}}",
         "typed_data.domain.foo: not an EIP712Domain field"},
        {"{\"types\":{\"T\":[]},\"primaryType\":\"T\",\"domain\":{\"chainId\":-1},\"message\":{}}",
         "typed_data.domain.chainId: value out of range"},
        {"{\"types\":{\"T\":[]},\"primaryType\":\"T\",\"message\":{}}",
         "typed_data.domain: required"},
        {"{\"types\":{\"T\":[]},\"primaryType\":\"T\",\"domain\":{},\"message\":{},\"x\":1}",
         "typed_data.x: unknown field"},
        {"[]", "typed_data: expected an object"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_400("sign_typed_data", "typed_data", cases[i][0], cases[i][1]);
}

/* Edge values that are in range: int8 -128 / 127, uint256 max, -0. */
static void test_typed_edges(void)
{
    int status;
    cJSON *j = bcall("sign_typed_data", KID, "typed_data",
                     TD("\"T\":[{\"name\":\"a\",\"type\":\"int8[]\"},{\"name\":"
                        "\"b\",\"type\":\"uint256\"},{\"name\":\"c\",\"type\":"
                        "\"int\"}]",
                        "{\"a\":[-128,127,\"-0x80\",\"0x7f\"],\"b\":\"0x"
                        "ffffffffffffffffffffffffffffffffffffffffffffffffffff"
                        "ffffffffffff\",\"c\":\"-0\"}"),
                     &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(strlen(bfield(j, "signature")), 132);
    CU_ASSERT_EQUAL(strlen(bfield(j, "digest")), 66);
    cJSON_Delete(j);
}

/* ---- transactions --------------------------------------------------------------- */

static void test_tx_types_3_4(void)
{
    expect_ok("sign_transaction", KID, "transaction_payload", TX3_JSON,
              "transaction_signed", TX3_SIGNED, "transaction_hash", TX3_HASH);
    expect_ok("sign_transaction", KID, "transaction_payload", TX4_JSON,
              "transaction_signed", TX4_SIGNED, "transaction_hash", TX4_HASH);
}

/* In authorizationList, v (27/28) stands in for yParity: same bytes. */
static void test_tx4_v(void)
{
    cJSON *tp = cJSON_Parse(TX4_JSON), *list, *e;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tp);
    list = cJSON_GetObjectItemCaseSensitive(tp, "authorizationList");
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(e, "yParity");
        int v = 27 + (cJSON_IsNumber(y) ? y->valueint : 0);
        CU_ASSERT_FATAL(cJSON_IsNumber(y));
        cJSON_DeleteItemFromObjectCaseSensitive(e, "yParity");
        cJSON_AddNumberToObject(e, "v", v);
    }
    text = cJSON_PrintUnformatted(tp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    expect_ok("sign_transaction", KID, "transaction_payload", text,
              "transaction_signed", TX4_SIGNED, "transaction_hash", TX4_HASH);
    free(text);
    cJSON_Delete(tp);
}

#define T3(extra)                                                              \
    "{\"type\":3,\"chainId\":1,\"nonce\":0,\"gas\":21000,\"maxFeePerGas\":2,"  \
    "\"maxPriorityFeePerGas\":1,\"to\":\"0x1212121212121212121212121212121212121212\"" extra "}"
#define H01 "\"0x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
#define T4(extra)                                                              \
    "{\"type\":\"0x4\",\"chainId\":1,\"nonce\":0,\"gas\":50000,\"maxFeePerGas\":2," \
    "\"maxPriorityFeePerGas\":1,\"to\":\"0x1212121212121212121212121212121212121212\"" extra "}"
#define AUTH(extra)                                                            \
    "{\"chainId\":1,\"address\":\"0x7777777777777777777777777777777777777777\"," \
    "\"nonce\":0" extra "}"
#define RS ",\"r\":\"0x01\",\"s\":\"0x02\""

static void test_tx_errors(void)
{
    static const char *const cases[][2] = {
        {T3(",\"maxFeePerBlobGas\":1"), "transaction_payload.blobVersionedHashes: required"},
        {T3(",\"blobVersionedHashes\":[" H01 "]"), "transaction_payload.maxFeePerBlobGas: required"},
        {T3(",\"maxFeePerBlobGas\":1,\"blobVersionedHashes\":[]"),
         "transaction_payload.blobVersionedHashes: expected a non-empty array"},
        {T3(",\"maxFeePerBlobGas\":1,\"blobVersionedHashes\":[\"0x02aa\"]"),
         "transaction_payload.blobVersionedHashes[0]: expected a 32-byte"},
        {T3(",\"maxFeePerBlobGas\":1,\"blobVersionedHashes\":[" H01 ",\"0x02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]"),
         "transaction_payload.blobVersionedHashes[1]: version byte must be 0x01"},
        {"{\"type\":3,\"chainId\":1,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":2,\"maxPriorityFeePerGas\":1,"
         "\"maxFeePerBlobGas\":1,\"blobVersionedHashes\":[" H01 "]}",
         "transaction_payload.to: required in a type 3 transaction"},
        {"{\"type\":3,\"chainId\":1,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":2,\"maxPriorityFeePerGas\":1,"
         "\"to\":null,\"maxFeePerBlobGas\":1,\"blobVersionedHashes\":[" H01 "]}",
         "transaction_payload.to: required in a type 3 transaction"},
        {T3(",\"maxFeePerBlobGas\":1,\"blobVersionedHashes\":[" H01 "],\"authorizationList\":[]"),
         "transaction_payload.authorizationList: authorizationList is not a field of type 3"},
        {T4(""), "transaction_payload.authorizationList: required"},
        {T4(",\"authorizationList\":[]"), "transaction_payload.authorizationList: expected a non-empty array"},
        {T4(",\"authorizationList\":[" AUTH("") "]"), "transaction_payload.authorizationList[0].yParity: required"},
        {T4(",\"authorizationList\":[" AUTH(",\"yParity\":2" RS) "]"),
         "transaction_payload.authorizationList[0].yParity: expected 0 or 1"},
        {T4(",\"authorizationList\":[" AUTH(",\"yParity\":0" RS ",\"x\":1") "]"),
         "transaction_payload.authorizationList[0].x: unknown or duplicate field"},
        {T4(",\"authorizationList\":[" AUTH(",\"yParity\":0,\"v\":28" RS) "]"),
         "transaction_payload.authorizationList[0].v: disagrees with yParity"},
        {T4(",\"authorizationList\":[" AUTH(",\"yParity\":0,\"s\":\"0x02\",\"r\":\"0x1" "0000000000000000000000000000000000000000000000000000000000000000\"") "]"),
         "transaction_payload.authorizationList[0].r: exceeds 2^256-1"},
        {"{\"type\":2,\"chainId\":1,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":2,\"maxPriorityFeePerGas\":1,"
         "\"maxFeePerBlobGas\":1}",
         "transaction_payload.maxFeePerBlobGas: maxFeePerBlobGas is not a field of type 2"},
        {"{\"type\":0,\"chainId\":1,\"nonce\":0,\"gas\":1,\"gasPrice\":1,\"maxFeePerGas\":1}",
         "maxFeePerGas is not a field of type 0"},
        {"{\"type\":5,\"chainId\":1,\"nonce\":0,\"gas\":1}",
         "transaction_payload.type: type 5 is not supported"},
        {"{\"type\":\"0x7e\",\"chainId\":1,\"nonce\":0,\"gas\":1}",
         "transaction_payload.type: type 126 is not supported"},
        {"{\"type\":\"blob\",\"chainId\":1,\"nonce\":0,\"gas\":1}",
         "transaction_payload.type: type \"blob\" is not supported"},
        {"{\"chainId\":1,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":2,\"maxPriorityFeePerGas\":1,\"from\":\"0x12\"}",
         "transaction_payload.from: expected a 20-byte hex address"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_400("sign_transaction", "transaction_payload", cases[i][0],
                   cases[i][1]);
}

/* from: the key's own address is accepted (same bytes as without), any
 * other is refused naming from. */
static void test_tx_from(void)
{
#define FROM_BASE                                                              \
    "{\"chainId\":1,\"nonce\":0,\"gas\":21000,\"maxFeePerGas\":2,"            \
    "\"maxPriorityFeePerGas\":1%s}"
    char tp[512];
    char *want;
    int status;
    cJSON *j;

    snprintf(tp, sizeof tp, FROM_BASE, "");
    j = bcall("sign_transaction", KID, "transaction_payload", tp, &status);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    want = strdup(bfield(j, "transaction_signed"));
    cJSON_Delete(j);
    snprintf(tp, sizeof tp, FROM_BASE, ",\"from\":\"" BADDR46 "\"");
    expect_ok("sign_transaction", KID, "transaction_payload", tp,
              "transaction_signed", want, NULL, NULL);
    snprintf(tp, sizeof tp, FROM_BASE,
             ",\"from\":\"0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f\"");
    expect_ok("sign_transaction", KID, "transaction_payload", tp,
              "transaction_signed", want, NULL, NULL);
    free(want);
    snprintf(tp, sizeof tp, FROM_BASE, ",\"from\":\"" COW_ADDR "\"");
    j = bcall("sign_transaction", KID, "transaction_payload", tp, &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(bfield(j, "error"), "transaction_payload.from"));
    CU_ASSERT_STRING_EQUAL(bfield(j, "transaction_signed"), "");
    cJSON_Delete(j);
}

/* ---- authorizations ---------------------------------------------------------- */

static void test_authorization(void)
{
    const char *body = "{\"chainId\":31337,\"address\":\"0x7777777777777777777777777777777777777777\","
                       "\"nonce\":\"5\"}";
    int status;
    cJSON *j = bcall("sign_authorization", KID, "authorization", body, &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(bfield(j, "chainId"), "0x7a69");
    CU_ASSERT_STRING_EQUAL(bfield(j, "address"), AUTH_ADDRESS);
    CU_ASSERT_STRING_EQUAL(bfield(j, "nonce"), "0x5");
    CU_ASSERT_STRING_EQUAL(bfield(j, "yParity"), AUTH_YPARITY);
    CU_ASSERT_STRING_EQUAL(bfield(j, "r"), AUTH_R);
    CU_ASSERT_STRING_EQUAL(bfield(j, "s"), AUTH_S);
    CU_ASSERT_STRING_EQUAL(bfield(j, "signature"), AUTH_SIG);
    cJSON_Delete(j);

    expect_400("sign_authorization", "authorization", "{\"chainId\":1,\"nonce\":0}",
               "authorization.address: required");
    expect_400("sign_authorization", "authorization",
               "{\"chainId\":1,\"address\":\"0x7777777777777777777777777777777777777777\"}",
               "authorization.nonce: required");
    expect_400("sign_authorization", "authorization",
               "{\"chainId\":1,\"address\":\"0x7777777777777777777777777777777777777777\","
               "\"nonce\":\"0x10000000000000000\"}",
               "authorization.nonce: exceeds 2^64-1");
    expect_400("sign_authorization", "authorization",
               "{\"chainId\":1,\"address\":\"0x7777777777777777777777777777777777777777\","
               "\"nonce\":0,\"r\":\"0x1\"}",
               "authorization.r: unknown or duplicate field");
    expect_400("sign_authorization", "authorization", "5",
               "authorization: expected an object");
}

/* ---- messages ------------------------------------------------------------------- */

static void test_message_forms(void)
{
    expect_ok("sign_message", KID, "message", "\"0xdeadbeef\"", "signature",
              MSG_TEXT_0XDEADBEEF_SIG, NULL, NULL);
    expect_ok("sign_message", KID, "message", "{\"raw\":\"0xdeadbeef\"}",
              "signature", MSG_RAW_DEADBEEF_SIG, NULL, NULL);
    expect_ok("sign_message", KID, "message", "{\"raw\":\"0xDEADBEEF\"}",
              "signature", MSG_RAW_DEADBEEF_SIG, NULL, NULL);
    expect_ok("sign_message", KID, "message", "{\"raw\":\"0x\"}", "signature",
              MSG_RAW_EMPTY_SIG, NULL, NULL);
    expect_400("sign_message", "message", "{\"raw\":\"0xabc\"}", "message.raw");
    expect_400("sign_message", "message", "{\"raw\":\"deadbeef\"}", "message.raw");
    expect_400("sign_message", "message", "{\"raw\":5}", "message.raw");
    expect_400("sign_message", "message", "{\"raw\":\"0x\",\"x\":1}", "message");
    expect_400("sign_message", "message", "{}", "message");
    expect_400("sign_message", "message", "[\"0x00\"]", "message");
}

void eth_test_add_breadth_suite(void);

/* Registers the suite (called from test_eth.c's main). */
void eth_test_add_breadth_suite(void)
{
    CU_pSuite s = CU_add_suite("eth_breadth", breadth_init, breadth_clean);

    CU_add_test(s, "EIP-712 Mail example", test_typed_mail);
    CU_add_test(s, "EIP-712 vector from ethers", test_typed_ethers);
    CU_add_test(s, "EIP-712 errors name the path", test_typed_errors);
    CU_add_test(s, "EIP-712 edge values", test_typed_edges);
    CU_add_test(s, "types 3 and 4 from ethers", test_tx_types_3_4);
    CU_add_test(s, "type 4: v in place of yParity", test_tx4_v);
    CU_add_test(s, "type 3/4, from and type errors", test_tx_errors);
    CU_add_test(s, "from equals the key's address", test_tx_from);
    CU_add_test(s, "sign_authorization", test_authorization);
    CU_add_test(s, "sign_message text and raw", test_message_forms);
}
