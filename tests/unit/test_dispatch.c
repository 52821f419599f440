/* Dispatcher and host key services, on a real engine (local sealer, SQLite
 * keystore) with the test plugin. */
#include "config.h"
#include "engine_test.h"

#include "jcs.h"

static eng_config cfg;
static eng_engine eng;
static char *dir;

static int call_raw(const char *body, size_t len, int framed,
                    const char *route_op, const char *route_key,
                    cJSON **out)
{
    eng_request req;
    char *resp = NULL;
    size_t rlen = 0;
    int status;
    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = len;
    req.framed = framed;
    req.operation = route_op;
    req.key_id = route_key;
    req.peer = "test";
    status = eng_dispatch(&eng, &req, &resp, &rlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(strlen(resp), rlen);
    *out = cJSON_Parse(resp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*out);
    /* The body's status always equals the HTTP status. */
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(*out, "enclave_status")->valueint,
                    status);
    free(resp);
    return status;
}

static int call(const char *body, cJSON **out)
{
    return call_raw(body, strlen(body), 0, NULL, NULL, out);
}

static const char *result_str(cJSON *o, const char *k)
{
    cJSON *r = cJSON_GetObjectItem(o, "enclave_result");
    cJSON *v = cJSON_GetObjectItem(r, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void expect(const char *body, int status, const char *needle)
{
    cJSON *o;
    int s = call(body, &o);
    CU_ASSERT_EQUAL(s, status);
    if (strstr(result_str(o, "error"), needle) == NULL)
        fprintf(stderr, "\n%s -> %d '%s', wanted '%s'\n", body, s,
                result_str(o, "error"), needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(result_str(o, "error"), needle));
    cJSON_Delete(o);
}

static void test_echo(void)
{
    cJSON *o;
    CU_ASSERT_EQUAL(call("{\"operation\":\"echo\",\"payload\":{\"message\":"
                         "\"hi\"}}", &o), 200);
    CU_ASSERT_STRING_EQUAL(result_str(o, "echo"), "hello hi");
    cJSON_Delete(o);
    /* Alias resolves to the same handler. */
    CU_ASSERT_EQUAL(call("{\"operation\":\"legacy-echo\",\"payload\":"
                         "{\"message\":\"x\"}}", &o), 200);
    CU_ASSERT_STRING_EQUAL(result_str(o, "echo"), "hello x");
    cJSON_Delete(o);
}

/* A successful answer is written directly (not through a cJSON tree): its
 * bytes are exactly those cJSON_PrintUnformatted gives, escapes included,
 * plain and framed. */
static void answer_bytes_case(int framed, const char *id_json)
{
    static const char msg_json[] =
        "q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u00e9\\ud83d\\ude00z";
    static const char msg[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9"
                              "\xf0\x9f\x98\x80z";
    char body[512], echo[128], *resp = NULL, *want;
    cJSON *w, *r;
    eng_request req;
    size_t rlen = 0;
    int st;

    if (framed)
        snprintf(body, sizeof body,
                 "{\"id\":%s,\"operation\":\"echo\",\"payload\":"
                 "{\"message\":\"%s\"}}",
                 id_json, msg_json);
    else
        snprintf(body, sizeof body,
                 "{\"operation\":\"echo\",\"payload\":{\"message\":\"%s\"}}",
                 msg_json);
    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = strlen(body);
    req.framed = framed;
    req.peer = "test";
    st = eng_dispatch(&eng, &req, &resp, &rlen);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    snprintf(echo, sizeof echo, "hello %s", msg);
    w = cJSON_CreateObject();
    if (framed)
        cJSON_AddRawToObject(w, "id", id_json);
    cJSON_AddNumberToObject(w, "enclave_status", 200);
    r = cJSON_AddObjectToObject(w, "enclave_result");
    cJSON_AddStringToObject(r, "echo", echo);
    want = cJSON_PrintUnformatted(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (strcmp(resp, want) != 0)
        fprintf(stderr, "\ngot  %s\nwant %s\n", resp, want);
    CU_ASSERT_STRING_EQUAL(resp, want);
    CU_ASSERT_EQUAL(rlen, strlen(want));
    free(want);
    free(resp);
    cJSON_Delete(w);
}

static void test_answer_bytes(void)
{
    answer_bytes_case(0, NULL);
    answer_bytes_case(1, "\"req-7\"");
    answer_bytes_case(1, "42");
}

static void test_errors(void)
{
    expect("{\"operation\":\"nope\",\"payload\":{}}", 400,
           "unknown operation 'nope'");
    expect("{\"operation\":\"echo\",\"payload\":{\"message\":", 400,
           "malformed JSON");
    expect("{\"operation\":\"echo\"} x", 400, "trailing data");
    expect("[1,2]", 400, "expected a JSON object");
    expect("{\"payload\":{}}", 400, "operation: required");
    expect("{\"operation\":5}", 400, "operation: must be a string");
    expect("{\"operation\":\"echo\",\"payload\":[]}", 400,
           "payload: must be a JSON object");
    expect("{\"operation\":\"echo\",\"payload\":{},\"extra\":1}", 400,
           "unknown field 'extra'");
    expect("{\"operation\":\"echo\",\"payload\":{}}", 400,
           "message: required");
    expect("{\"operation\":\"echo\",\"payload\":{\"message\":\"a\\u0000b\"}}",
           400, "NUL");
    expect("{\"operation\":\"echo\",\"payload\":{\"message\":\"\xff\"}}", 400,
           "UTF-8");
    expect("{\"operation\":\"fail\",\"payload\":{\"code\":-3}}", 404,
           "failed as asked");
    expect("{\"operation\":\"fail\",\"payload\":{\"code\":-2}}", 403,
           "failed as asked");
    expect("", 400, "empty");
}

static void test_sizes_and_nul(void)
{
    cJSON *o;
    char *big = malloc(cfg.limits.max_body + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', cfg.limits.max_body + 1);
    big[0] = '{';
    big[cfg.limits.max_body] = '}';
    CU_ASSERT_EQUAL(call_raw(big, cfg.limits.max_body + 1, 0, NULL, NULL, &o),
                    413);
    cJSON_Delete(o);
    free(big);
    CU_ASSERT_EQUAL(call_raw("{\"operation\":\"echo\"\0}", 21, 0, NULL, NULL,
                             &o),
                    400);
    cJSON_Delete(o);
    /* Deep nesting is refused by the parser, not by a crash. */
    {
        char deep[6000];
        int i;
        for (i = 0; i < 2500; i++)
            deep[i] = '[';
        for (; i < 5000; i++)
            deep[i] = ']';
        deep[5000] = '\0';
        CU_ASSERT_EQUAL(call_raw(deep, 5000, 0, NULL, NULL, &o), 400);
        cJSON_Delete(o);
    }
}

static void test_frames(void)
{
    cJSON *o;
    const char *b = "{\"id\":\"r7\",\"operation\":\"echo\",\"payload\":{"
                    "\"message\":\"f\"}}";
    CU_ASSERT_EQUAL(call_raw(b, strlen(b), 1, NULL, NULL, &o), 200);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "id")->valuestring, "r7");
    CU_ASSERT_STRING_EQUAL(result_str(o, "echo"), "hello f");
    cJSON_Delete(o);
    b = "{\"id\":42,\"operation\":\"nope\"}";
    CU_ASSERT_EQUAL(call_raw(b, strlen(b), 1, NULL, NULL, &o), 400);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(o, "id")->valueint, 42);
    cJSON_Delete(o);
    b = "{\"operation\":\"echo\"}";
    CU_ASSERT_EQUAL(call_raw(b, strlen(b), 1, NULL, NULL, &o), 400);
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(o, "id")));
    CU_ASSERT_PTR_NOT_NULL(strstr(result_str(o, "error"), "id: required"));
    cJSON_Delete(o);
}

static void test_routes(void)
{
    cJSON *o;
    const char *b = "{\"message\":\"r\"}";
    CU_ASSERT_EQUAL(call_raw(b, strlen(b), 0, "echo", NULL, &o), 200);
    CU_ASSERT_STRING_EQUAL(result_str(o, "echo"), "hello r");
    cJSON_Delete(o);
    b = "{\"message\":\"r\",\"key_id\":\"other\"}";
    CU_ASSERT_EQUAL(call_raw(b, strlen(b), 0, "echo",
                             "11111111-1111-4111-8111-111111111111", &o),
                    400);
    cJSON_Delete(o);
}

/* ---- host key services ------------------------------------------------- */

static const char *SECRET = "5e618e009fe35ea092150ad1f2c24e3181b4cf66";
static char key_id[64];
static const unsigned char KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20};

/* The operation key services run for: its HMAC covers transaction_payload
 * (as eth's sign_transaction). */
static const char *const tx_fields[] = {"transaction_payload", NULL};
static const signer_op sign_op = {.name = "sign", .flags = SIGNER_OP_SECRET,
                                  .hmac_fields = tx_fields};

static int host_call_from(const char *peer, int create,
                          const char *payload_json, cJSON **result,
                          char *err_out, unsigned char *key_out)
{
    struct signer_call c = {.eng = &eng, .request_id = "t", .peer = peer,
                            .op = &sign_op,
                            .hmac_fields = sign_op.hmac_fields};
    signer_reply r;
    cJSON *p = cJSON_Parse(payload_json);
    char addr[SIGNER_MAX_ADDRESS];
    size_t klen = 0;
    int rc;
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(&r, 0, sizeof r);
    r.result = cJSON_CreateObject();
    if (create)
        rc = eng.host.key_create(&c, &r, "test", "0xaddr", KEY, 32,
                                 (const signer_json *)p);
    else {
        rc = eng.host.key_open(&c, &r, key_out, 32, &klen, addr, sizeof addr,
                               "test", (const signer_json *)p);
        if (rc == SIGNER_OK) {
            CU_ASSERT_EQUAL(klen, 32);
            CU_ASSERT_STRING_EQUAL(addr, "0xaddr");
        }
    }
    if (err_out)
        strcpy(err_out, r.error);
    if (result)
        *result = r.result;
    else
        cJSON_Delete(r.result);
    cJSON_Delete(p);
    return rc;
}

static int host_call(int create, const char *payload_json, cJSON **result,
                     char *err_out, unsigned char *key_out)
{
    return host_call_from("192.0.2.1:4000", create, payload_json, result,
                          err_out, key_out);
}

static void test_key_create_open(void)
{
    cJSON *res;
    char err[512], pl[512];
    unsigned char k[32];
    CU_ASSERT_EQUAL_FATAL(host_call(1, "{\"secret\":\"5e618e009fe35ea092150ad1f2c24e3181b4cf66\"}",
                                    &res, err, NULL),
                          SIGNER_OK);
    snprintf(key_id, sizeof key_id, "%s",
             cJSON_GetObjectItem(res, "key_id")->valuestring);
    CU_ASSERT_TRUE(eng_uuid_valid(key_id));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(res, "address")->valuestring,
                           "0xaddr");
    cJSON_Delete(res);
    CU_ASSERT_EQUAL(eng_keystore_count(eng.ks), 1);

    snprintf(pl, sizeof pl, "{\"key_id\":\"%s\",\"secret\":\"%s\"}", key_id,
             SECRET);
    memset(k, 0, sizeof k);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_OK);
    CU_ASSERT_EQUAL(memcmp(k, KEY, 32), 0);

    /* Bad secrets on create store nothing. */
    CU_ASSERT_EQUAL(host_call(1, "{\"secret\":\"short\"}", NULL, err, NULL),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "secret"));
    CU_ASSERT_EQUAL(host_call(1, "{}", NULL, err, NULL),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(host_call(1, "{\"secret\":12345678901234567890123}", NULL,
                              err, NULL),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(eng_keystore_count(eng.ks), 1);
}

/* ABI 1.3: the auxiliary slot of the key a call opened, kept with the
 * cached key: empty after the unseal, filled by key_aux_put, read back by
 * a later call that opens the same key from the cache; a call that opened
 * nothing reaches no slot. */
static void test_key_aux(void)
{
    struct signer_call c = {.eng = &eng, .request_id = "t",
                            .peer = "192.0.2.9:1", .op = &sign_op,
                            .hmac_fields = sign_op.hmac_fields};
    struct signer_call none = c;
    unsigned char k[32], aux[SIGNER_MAX_KEY_AUX], big[SIGNER_MAX_KEY_AUX + 1];
    char pl[512], addr[SIGNER_MAX_ADDRESS];
    size_t klen = 0, alen = 0;
    signer_reply r;
    cJSON *p;
    int i;

    CU_ASSERT_FATAL(SIGNER_HAS_MEMBER(&eng.host, signer_host, key_aux_put));
    snprintf(pl, sizeof pl, "{\"key_id\":\"%s\",\"secret\":\"%s\"}",
             key_id, SECRET);
    p = cJSON_Parse(pl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(big, 1, sizeof big);
    CU_ASSERT_EQUAL(eng.host.key_aux_get(&none, aux, sizeof aux, &alen), 0);
    CU_ASSERT_EQUAL(eng.host.key_aux_put(&none, big, 4), SIGNER_ERR_NOT_FOUND);
    for (i = 0; i < 2; i++) {
        memset(&r, 0, sizeof r);
        r.result = cJSON_CreateObject();
        CU_ASSERT_EQUAL(eng.host.key_open(&c, &r, k, 32, &klen, addr,
                                          sizeof addr, "test",
                                          (const signer_json *)p),
                        SIGNER_OK);
        cJSON_Delete(r.result);
        if (i == 0) { /* unsealed (or cached by an earlier test): fill */
            CU_ASSERT_EQUAL(eng.host.key_aux_put(&c, big,
                                                 SIGNER_MAX_KEY_AUX + 1),
                            SIGNER_ERR_NOT_FOUND);
            CU_ASSERT_EQUAL(eng.host.key_aux_put(&c,
                                                 (const unsigned char *)"pub",
                                                 3),
                            SIGNER_OK);
        }
    }
    /* the second open came from the cache: the slot is there */
    CU_ASSERT_EQUAL(eng.host.key_aux_get(&c, aux, sizeof aux, &alen), 1);
    CU_ASSERT_EQUAL(alen, 3);
    CU_ASSERT_EQUAL(memcmp(aux, "pub", 3), 0);
    CU_ASSERT_EQUAL(eng.host.key_aux_get(&c, aux, 2, &alen), 0);
    cJSON_Delete(p);
}

static void test_key_open_errors(void)
{
    char err[512], pl[512];
    unsigned char k[32];
    int i;
    CU_ASSERT_EQUAL(host_call(0, "{\"secret\":\"5e618e009fe35ea092150ad1f2\"}",
                              NULL, err, k),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "key_id: required"));
    CU_ASSERT_EQUAL(host_call(0, "{\"key_id\":\"../../etc/passwd\",\"secret\":"
                                 "\"5e618e009fe35ea092150ad1f2\"}",
                              NULL, err, k),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "UUID"));
    CU_ASSERT_EQUAL(host_call(0, "{\"key_id\":\"3f0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b\","
                                 "\"secret\":\"5e618e009fe35ea092150ad1f2\"}",
                              NULL, err, k),
                    SIGNER_ERR_NOT_FOUND);
    snprintf(pl, sizeof pl, "{\"key_id\":\"%s\"}", key_id);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_BAD_REQUEST);
    /* Wrong secret: 403, and the key buffer is wiped. */
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"secret\":\"wrong-secret-wrong-secret\"}",
             key_id);
    memset(k, 0xaa, sizeof k);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "secret"));
    CU_ASSERT_EQUAL(k[0], 0);
    /* After max_failures (3 in this config) the key is locked: 429, even
     * with the right secret. */
    for (i = 0; i < 2; i++)
        host_call(0, pl, NULL, err, k);
    snprintf(pl, sizeof pl, "{\"key_id\":\"%s\",\"secret\":\"%s\"}", key_id,
             SECRET);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_THROTTLED);
}

#define TP_JCS "{\"transaction_payload\":{\"chainId\":4,\"nonce\":1,\"to\":\"0xab\"}}"

static void test_hmac(void)
{
    cJSON *res;
    char err[512], pl[1024], mac[65], id2[64];
    unsigned char k[32];
    long long now = (long long)eng_unix_time();
    /* A fresh key (the first one is locked by the previous test). */
    CU_ASSERT_EQUAL_FATAL(host_call(1, "{\"secret\":\"5e618e009fe35ea092150ad1f2c24e3181b4cf66\"}",
                                    &res, err, NULL),
                          SIGNER_OK);
    snprintf(id2, sizeof id2, "%s",
             cJSON_GetObjectItem(res, "key_id")->valuestring);
    cJSON_Delete(res);
    /* Canonical form: sorted keys, no spaces. */
    {
        cJSON *tp = cJSON_Parse("{\"nonce\": 1, \"chainId\": 4, \"to\": \"0xab\"}");
        char *canon = NULL;
        CU_ASSERT_EQUAL(eng_jcs_serialize(&canon, NULL, tp), SIGNER_OK);
        CU_ASSERT_STRING_EQUAL(canon, "{\"chainId\":4,\"nonce\":1,\"to\":\"0xab\"}");
        free(canon);
        cJSON_Delete(tp);
    }
    /* Malformed HMAC: 400, before any 403 counts toward the lockout. */
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"hmac\":\"zz\",\"timestamp\":%lld}", id2,
             now);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_BAD_REQUEST);
    tu_hmac_hex(mac, SECRET, "sign", id2, TP_JCS, now);
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"hmac\":\"%s\",\"timestamp\":%lld,"
             "\"transaction_payload\":{\"to\":\"0xab\",\"nonce\":1,"
             "\"chainId\":4}}",
             id2, mac, now);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_OK);
    CU_ASSERT_EQUAL(memcmp(k, KEY, 32), 0);
    /* The same request again is a replay. */
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replay"));
    /* Too old and too far in the future. */
    tu_hmac_hex(mac, SECRET, "sign", id2, TP_JCS, now - 120);
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"hmac\":\"%s\",\"timestamp\":%lld,"
             "\"transaction_payload\":{\"to\":\"0xab\",\"nonce\":1,"
             "\"chainId\":4}}",
             id2, mac, now - 120);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "timestamp"));
    /* A tampered payload does not match. */
    tu_hmac_hex(mac, SECRET, "sign", id2, TP_JCS, now);
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"hmac\":\"%s\",\"timestamp\":%lld,"
             "\"transaction_payload\":{\"to\":\"0xab\",\"nonce\":2,"
             "\"chainId\":4}}",
             id2, mac, now);
    CU_ASSERT_EQUAL(host_call(0, pl, NULL, err, k), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "hmac: does not match"));
}

static void test_metrics(void)
{
    char *m = eng_metrics_text(&eng);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "signer_operation_requests_total{operation=\"echo\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "signer_requests_total{class=\"4xx\"}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "signer_keys 2"));
    free(m);
}

int main(void)
{
    CU_pSuite s;

    /* as signerd's main does: every request's JSON in the request arena,
     * cJSON's frees wiping */
    eng_wiping_allocators_install();
    if (tu_engine_open(&eng, &cfg, &dir,
                       "auth = { max_failures = 3; lockout_seconds = 60; };\n"
                       "limits = { max_body = 65536; };\n"
                       "key_cache = { ttl_seconds = 30; max_entries = 64; };\n"
                       "plugins = ( { name = \"test\"; settings = { greeting = "
                       "\"hello \"; }; } );\n"
                       "aliases = { legacy-echo = \"echo\"; };\n") != 0)
        return 1;
    s = CU_add_suite("dispatch", NULL, NULL);
    TU_ADD(s, test_echo);
    TU_ADD(s, test_answer_bytes);
    TU_ADD(s, test_errors);
    TU_ADD(s, test_sizes_and_nul);
    TU_ADD(s, test_frames);
    TU_ADD(s, test_routes);
    TU_ADD(s, test_key_create_open);
    TU_ADD(s, test_key_aux);
    TU_ADD(s, test_key_open_errors);
    TU_ADD(s, test_hmac);
    TU_ADD(s, test_metrics);
    return tu_engine_end(&eng, &cfg, dir);
}
