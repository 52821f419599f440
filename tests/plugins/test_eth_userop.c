/*
 * sign_userop's user_operation form (plugins/eth/eth_userop.c) against the
 * mock host.
 *
 * Known answers: tests/vectors/eth_userop.json, made by
 * tests/interop/userop_vectors.mjs: each userOpHash computed with ethers
 * v6.15.0 following the contracts and confirmed equal to getUserOpHash of
 * the EntryPoint v0.6.0 / v0.7.0 / v0.8.0 deployed on anvil from
 * @account-abstraction/contracts; each signature made by ethers'
 * SigningKey.sign (key 0x4646...46) over the digest SimpleAccount verifies.
 * The bad-input cases mutate a vector and expect a 400 naming the field,
 * returned before the key is unsealed.
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
static cJSON *DOC;       /* the vectors file */
static char KID[37];     /* key 0x4646...46 imported with set_key */

#define SECRET "userop-test-secret-0123456789"

/* ---- helpers ------------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static const char *field(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Runs sign_userop on payload (consumed); returns the result object. */
static cJSON *run(cJSON *payload, int *status)
{
    char *text = cJSON_PrintUnformatted(payload), *res = NULL;
    cJSON *j;

    cJSON_Delete(payload);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    mock_call(M, P, CTX, "sign_userop", text, &res, status);
    free(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    j = cJSON_Parse(res);
    free(res);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(mock_host_secure_live(M), 0);
    return j;
}

static const cJSON *vectors(void)
{
    return cJSON_GetObjectItemCaseSensitive(DOC, "vectors");
}

/* A copy of vector i's request with key_id and secret added. */
static cJSON *request(int i)
{
    const cJSON *v = cJSON_GetArrayItem(vectors(), i);
    cJSON *r = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(v, "request"),
                               1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON_AddStringToObject(r, "key_id", KID);
    cJSON_AddStringToObject(r, "secret", SECRET);
    return r;
}

/* Index of the vector named name (the file's names are stable). */
static int find(const char *name)
{
    int i, n = cJSON_GetArraySize(vectors());

    for (i = 0; i < n; i++)
        if (strcmp(field(cJSON_GetArrayItem(vectors(), i), "name"), name) == 0)
            return i;
    CU_FAIL_FATAL("vector not found");
    return -1;
}

static cJSON *uop(cJSON *req)
{
    return cJSON_GetObjectItemCaseSensitive(req, "user_operation");
}

/* Sets (replacing) member key of obj to the JSON text val, or deletes it
 * when val is NULL. */
static void set(cJSON *obj, const char *key, const char *val)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (val != NULL) {
        cJSON *v = cJSON_Parse(val);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        cJSON_AddItemToObject(obj, key, v);
    }
}

/* Expects a 400 whose message contains want, before any key_open. */
static void expect_error(cJSON *req, const char *want)
{
    long opens = mock_host_key_open_calls(M);
    char *text = cJSON_PrintUnformatted(req);
    int status;
    cJSON *j = run(req, &status);
    const char *msg = field(j, "error");

    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    CU_ASSERT_EQUAL(mock_host_key_open_calls(M), opens);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(j, "signature"));
    if (status != 400 || strstr(msg, want) == NULL)
        fprintf(stderr, "\n  %s\n  -> %d %s (want %s)\n", text, status, msg,
                want);
    free(text);
    cJSON_Delete(j);
}

/* ---- setup ----------------------------------------------------------------- */

static int suite_init(void)
{
    const char *src = getenv("SIGNER_SRCDIR");
    char path[4096], *text;
    char *res = NULL;
    cJSON *j;
    int status;

    snprintf(path, sizeof path, "%s/tests/vectors/eth_userop.json",
             src != NULL ? src : ".");
    text = read_file(path);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s (set SIGNER_SRCDIR)\n", path);
        return -1;
    }
    DOC = cJSON_Parse(text);
    free(text);
    M = mock_host_new();
    if (DOC == NULL || M == NULL ||
        signer_plugin_init(mock_host_get(M), &P, &CTX) != SIGNER_OK)
        return -1;
    snprintf(path, sizeof path, "{\"eth_key\":\"%s\",\"secret\":\"" SECRET "\"}",
             field(DOC, "key"));
    mock_call(M, P, CTX, "set_key", path, &res, &status);
    j = res != NULL ? cJSON_Parse(res) : NULL;
    free(res);
    if (status != 200 || j == NULL ||
        strcmp(field(j, "address"), field(DOC, "address")) != 0) {
        cJSON_Delete(j);
        return -1;
    }
    snprintf(KID, sizeof KID, "%s", field(j, "key_id"));
    cJSON_Delete(j);
    return 0;
}

static int suite_clean(void)
{
    if (P != NULL && P->cleanup != NULL)
        P->cleanup(CTX);
    mock_host_free(M);
    cJSON_Delete(DOC);
    return 0;
}

/* ---- known answers ----------------------------------------------------------- */

static void test_vectors(void)
{
    int i, n = cJSON_GetArraySize(vectors()), per[9] = {0};

    CU_ASSERT(n >= 12);
    for (i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(vectors(), i);
        const char *ver;
        int status;
        cJSON *j = run(request(i), &status);

        CU_ASSERT_EQUAL(status, 200);
        CU_ASSERT_STRING_EQUAL(field(j, "userOpHash"), field(v, "userOpHash"));
        CU_ASSERT_STRING_EQUAL(field(j, "signature"), field(v, "signature"));
        if (status != 200 ||
            strcmp(field(j, "userOpHash"), field(v, "userOpHash")) != 0 ||
            strcmp(field(j, "signature"), field(v, "signature")) != 0)
            fprintf(stderr, "\n  %s: %s\n", field(v, "name"),
                    cJSON_PrintUnformatted(j));
        ver = field(cJSON_GetObjectItemCaseSensitive(v, "request"),
                    "entry_point_version");
        per[ver[2] - '0']++;
        cJSON_Delete(j);
    }
    /* every version is covered */
    CU_ASSERT(per[6] >= 3 && per[7] >= 3 && per[8] >= 3);
}

/* The seed form is unchanged next to the new one: raw hash, v + 27. */
static void test_seed_form_unchanged(void)
{
    int i = find("v0.8 unpacked"), status;
    const cJSON *v = cJSON_GetArrayItem(vectors(), i);
    cJSON *req = cJSON_CreateObject(), *tp = cJSON_CreateObject(), *j;

    /* v0.8 signs the raw hash, so the seed form over the same hash must
     * give the same signature */
    cJSON_AddStringToObject(req, "key_id", KID);
    cJSON_AddStringToObject(req, "secret", SECRET);
    cJSON_AddStringToObject(tp, "userOpHash", field(v, "userOpHash"));
    cJSON_AddItemToObject(req, "transaction_payload", tp);
    j = run(req, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(field(j, "signature"), field(v, "signature"));
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(j, "userOpHash"));
    cJSON_Delete(j);
}

/* The scheme override changes exactly the signed digest. */
static void test_scheme_override(void)
{
    int a = find("v0.7 unpacked"), status;
    cJSON *req = request(a), *j, *k;

    set(req, "signature_scheme", "\"raw\"");
    j = run(req, &status);
    CU_ASSERT_EQUAL(status, 200);
    req = request(a);
    set(req, "signature_scheme", "\"eip191\"");
    k = run(req, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(field(j, "userOpHash"), field(k, "userOpHash"));
    CU_ASSERT_STRING_NOT_EQUAL(field(j, "signature"), field(k, "signature"));
    CU_ASSERT_STRING_EQUAL(field(k, "signature"),
                           field(cJSON_GetArrayItem(vectors(), a), "signature"));
    cJSON_Delete(j);
    cJSON_Delete(k);
}

/* ---- bad input ------------------------------------------------------------------ */

static void test_top_level_errors(void)
{
    int v6 = find("v0.6 minimal");
    cJSON *r;

    r = request(v6); set(r, "entry_point", NULL);
    expect_error(r, "entry_point: required");
    r = request(v6); set(r, "chainId", NULL);
    expect_error(r, "chainId: required");
    r = request(v6); set(r, "entry_point_version", NULL);
    expect_error(r, "entry_point_version: required");
    r = request(v6); set(r, "entry_point_version", "\"0.9\"");
    expect_error(r, "entry_point_version: expected");
    r = request(v6); set(r, "entry_point_version", "0.6");
    expect_error(r, "entry_point_version: expected");
    r = request(v6); set(r, "entry_point", "\"0x1234\"");
    expect_error(r, "entry_point: expected a 20-byte hex address");
    r = request(v6); set(r, "chainId", "-1");
    expect_error(r, "chainId:");
    r = request(v6); set(r, "chainId", "\"0x1" "0000000000000000000000000000000000000000000000000000000000000000\"");
    expect_error(r, "chainId: exceeds 2^256-1");
    r = request(v6); set(r, "signature_scheme", "\"eip712\"");
    expect_error(r, "signature_scheme: expected");
    r = request(v6); set(r, "user_operation", "[]");
    expect_error(r, "user_operation: expected an object");
    r = request(v6); set(r, "transaction_payload", "{\"userOpHash\":\"0x00\"}");
    expect_error(r, "transaction_payload: not allowed with user_operation");
    r = request(v6); set(r, "message", "\"x\"");
    expect_error(r, "message: not allowed with user_operation");
    r = request(v6); set(r, "eip7702_delegate", "\"0x" "11111111111111111111" "11111111111111111111\"");
    expect_error(r, "eip7702_delegate: only used by an EntryPoint v0.8");
}

static void test_field_errors(void)
{
    int v6 = find("v0.6 minimal"), v7 = find("v0.7 unpacked"),
        p7 = find("v0.7 packed (same op)"), v8 = find("v0.8 unpacked");
    cJSON *r;

    r = request(v6); set(uop(r), "accountGasLimits", "\"0x00\"");
    expect_error(r, "user_operation.accountGasLimits: not a field of an EntryPoint v0.6");
    r = request(v6); set(uop(r), "factory", "\"0x00\"");
    expect_error(r, "user_operation.factory: not a field of an EntryPoint v0.6");
    r = request(v6); set(uop(r), "bogus", "1");
    expect_error(r, "user_operation.bogus: unknown field");
    r = request(v6); set(uop(r), "callData", NULL);
    expect_error(r, "user_operation.callData: required");
    r = request(v6); set(uop(r), "callData", "\"0xabc\"");
    expect_error(r, "user_operation.callData: expected 0x-prefixed hex");
    r = request(v6); set(uop(r), "callData", "\"abcd\"");
    expect_error(r, "user_operation.callData: expected 0x-prefixed hex");
    r = request(v6); set(uop(r), "nonce", "1.5");
    expect_error(r, "user_operation.nonce:");
    r = request(v6); set(uop(r), "nonce", "\"12x\"");
    expect_error(r, "user_operation.nonce: expected a quantity");
    r = request(v6); set(uop(r), "callGasLimit", "\"0x1" "0000000000000000000000000000000000000000000000000000000000000000\"");
    expect_error(r, "user_operation.callGasLimit: exceeds 2^256-1");
    r = request(v6); set(uop(r), "sender", "\"0x1F9090aaE28b8a3dCeaDf281B0F12828e676c326\"");
    expect_error(r, "user_operation.sender: bad EIP-55 checksum");
    r = request(v6); set(uop(r), "signature", "5");
    expect_error(r, "user_operation.signature: expected a string");
    r = request(v7); set(uop(r), "callGasLimit", "\"0x1" "00000000000000000000000000000000\"");
    expect_error(r, "user_operation.callGasLimit: exceeds 2^128-1");
    r = request(v7); set(uop(r), "paymasterPostOpGasLimit", "\"340282366920938463463374607431768211456\"");
    expect_error(r, "user_operation.paymasterPostOpGasLimit: exceeds 2^128-1");
    r = request(v7); set(uop(r), "maxFeePerGas", NULL);
    expect_error(r, "user_operation.maxFeePerGas: required");
    r = request(v7); set(uop(r), "initCode", "\"0x\"");
    expect_error(r, "user_operation.callGasLimit: not a field of the packed form");
    r = request(v7); set(uop(r), "factory", NULL);
    expect_error(r, "user_operation.factoryData: requires factory");
    r = request(v7); set(uop(r), "paymaster", NULL);
    expect_error(r, "user_operation.paymasterVerificationGasLimit: requires paymaster");
    r = request(v7); set(uop(r), "factory", "\"0x7702\"");
    expect_error(r, "user_operation.factory: expected a 20-byte hex address");
    r = request(v7); set(uop(r), "eip7702Auth", "{\"address\":\"0x0000000000000000000000000000000000000001\"}");
    expect_error(r, "user_operation.eip7702Auth: not a field of an EntryPoint v0.7");
    r = request(p7); set(uop(r), "accountGasLimits", "\"0x00\"");
    expect_error(r, "user_operation.accountGasLimits: expected exactly 32 bytes");
    r = request(p7); set(uop(r), "gasFees", NULL);
    expect_error(r, "user_operation.gasFees: required");
    r = request(p7); set(uop(r), "paymasterAndData", "7");
    expect_error(r, "user_operation.paymasterAndData: expected 0x-prefixed hex");
    r = request(v8); set(uop(r), "eip7702Auth", "\"0x01\"");
    expect_error(r, "user_operation.eip7702Auth: expected an object");
}

static void test_duplicate_fields(void)
{
    int v6 = find("v0.6 minimal");
    cJSON *r = request(v6);

    cJSON_AddItemToObject(uop(r), "nonce", cJSON_CreateNumber(1));
    expect_error(r, "user_operation.nonce: duplicate field");
    r = request(v6);
    cJSON_AddItemToObject(r, "chainId", cJSON_CreateNumber(1));
    expect_error(r, "chainId: duplicate field");
}

static void test_eip7702_errors(void)
{
    int m = find("v0.8 EIP-7702 marker with init data"),
        f = find("v0.8 EIP-7702 factory 0x7702 with eip7702Auth"),
        plain = find("v0.8 packed (same op)");
    cJSON *r;

    /* no delegate: refused, saying what is needed */
    r = request(m); set(r, "eip7702_delegate", NULL);
    expect_error(r, "user_operation.initCode: starts with the EIP-7702 marker");
    r = request(m); set(r, "eip7702_delegate", NULL);
    expect_error(r, "give it as eip7702_delegate");
    r = request(f); set(uop(r), "eip7702Auth", "{\"chainId\":\"0x1\"}");
    expect_error(r, "user_operation.eip7702Auth.address: required");
    r = request(f); set(r, "eip7702_delegate", "\"0x0000000000000000000000000000000000000001\"");
    expect_error(r, "eip7702_delegate: differs from user_operation.eip7702Auth.address");
    r = request(m); set(r, "eip7702_delegate", "\"0x01\"");
    expect_error(r, "eip7702_delegate: expected a 20-byte hex address");
    /* a delegate given for an initCode without the marker is misuse */
    r = request(plain); set(r, "eip7702_delegate", "\"0x0000000000000000000000000000000000000001\"");
    expect_error(r, "eip7702_delegate: only used");
}

/* 0x7702 followed by a non-zero byte within the first 20 is an ordinary
 * initCode (a factory address), hashed as such: no delegate needed. */
static void test_not_a_marker(void)
{
    int m = find("v0.8 EIP-7702 marker with init data"), status;
    cJSON *r = request(m), *j;

    set(r, "eip7702_delegate", NULL);
    set(uop(r), "initCode", "\"0x7702000000000000000000000000000000000001abcdef\"");
    j = run(r, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(strlen(field(j, "userOpHash")), 66);
    cJSON_Delete(j);
}

static void test_wrong_secret(void)
{
    int status;
    cJSON *r = request(find("v0.7 unpacked")), *j;

    set(r, "secret", "\"wrong-secret-wrong-secret\"");
    j = run(r, &status);
    CU_ASSERT_EQUAL(status, 403);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(j, "signature"));
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(j, "userOpHash"));
    cJSON_Delete(j);
}

int main(void)
{
    CU_pSuite s;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("eth_userop", suite_init, suite_clean);
    CU_add_test(s, "known-answer vectors (ethers + getUserOpHash)", test_vectors);
    CU_add_test(s, "seed userOpHash form unchanged", test_seed_form_unchanged);
    CU_add_test(s, "signature_scheme override", test_scheme_override);
    CU_add_test(s, "top-level errors", test_top_level_errors);
    CU_add_test(s, "user_operation field errors", test_field_errors);
    CU_add_test(s, "duplicate fields", test_duplicate_fields);
    CU_add_test(s, "EIP-7702 delegate errors", test_eip7702_errors);
    CU_add_test(s, "0x7702 prefix that is not the marker", test_not_a_marker);
    CU_add_test(s, "wrong secret", test_wrong_secret);

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
