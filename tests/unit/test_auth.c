/* Authentication and the key service on a real engine (local sealer,
 * SQLite keystore, key cache) with the test and eth plugins: throttling per
 * (key_id, client) with backoff, caching only after authentication, the
 * HMAC message (RFC 8785, operation and key_id bound, nothing from before
 * the start), the request locator of the enclave role, and the reference's
 * request bodies. */
#include "config.h"
#include "engine_test.h"

#include <pthread.h>

#include <openssl/crypto.h>

static eng_config cfg;
static eng_engine eng;
static char *dir;
static int64_t opened_at; /* eng_unix_time() just before the engine opened */

#define SECRET "5e618e009fe35ea092150ad1f2c24e3181b4cf66"
#define WRONG "wrong-secret-wrong-secret"
#define OWNER "192.0.2.1:4000"
#define ATTACKER "198.51.100.7:5000"

static const unsigned char KEY[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
static const char *const tx_fields[] = {"transaction_payload", NULL};
static const signer_op sign_op = {.name = "sign_transaction",
                                  .flags = SIGNER_OP_SECRET,
                                  .hmac_fields = tx_fields};
static const signer_op other_op = {.name = "sign_userop",
                                   .flags = SIGNER_OP_SECRET,
                                   .hmac_fields = tx_fields};

/* key_create or key_open through the host table, as a plugin calls them;
 * the locator's prepare step runs first, as in the dispatcher. */
static int svc(const signer_op *op, const char *peer, int create,
               const char *payload_json, cJSON **result, char *err)
{
    struct signer_call c = {.eng = &eng, .request_id = "t", .peer = peer,
                            .op = op,
                            .hmac_fields = op ? op->hmac_fields : NULL};
    signer_reply r;
    cJSON *p = cJSON_Parse(payload_json);
    unsigned char k[32];
    char addr[SIGNER_MAX_ADDRESS];
    size_t klen = 0;
    int rc;
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(&r, 0, sizeof r);
    r.result = cJSON_CreateObject();
    rc = eng_keysvc_prepare(&c, &r, p);
    if (rc == SIGNER_OK && create)
        rc = eng.host.key_create(&c, &r, "test", "0xaddr", KEY, 32,
                                 (const signer_json *)p);
    else if (rc == SIGNER_OK) {
        rc = eng.host.key_open(&c, &r, k, sizeof k, &klen, addr, sizeof addr,
                               "test", (const signer_json *)p);
        if (rc == SIGNER_OK) {
            CU_ASSERT_EQUAL(klen, 32);
            CU_ASSERT_EQUAL(memcmp(k, KEY, 32), 0);
            CU_ASSERT_STRING_EQUAL(addr, "0xaddr");
        }
    }
    if (err != NULL)
        strcpy(err, r.error);
    if (result != NULL)
        *result = r.result;
    else
        cJSON_Delete(r.result);
    eng_keysvc_call_done(&c);
    eng_json_free(p);
    return rc;
}

static void new_key(char kid[64])
{
    cJSON *res = NULL;
    CU_ASSERT_EQUAL_FATAL(svc(&sign_op, OWNER, 1, "{\"secret\":\"" SECRET "\"}",
                              &res, NULL),
                          SIGNER_OK);
    snprintf(kid, 64, "%s", cJSON_GetObjectItem(res, "key_id")->valuestring);
    cJSON_Delete(res);
}

static int open_with(const char *peer, const char *kid, const char *secret,
                     char *err)
{
    char pl[256];
    snprintf(pl, sizeof pl, "{\"key_id\":\"%s\",\"secret\":\"%s\"}", kid,
             secret);
    return svc(&sign_op, peer, 0, pl, NULL, err);
}

/* Seconds in a "retry in N s" message, or -1. */
static int retry_in(const char *err)
{
    const char *p = strstr(err, "retry in ");
    return p != NULL ? atoi(p + 9) : -1;
}

/* A stranger's wrong secrets lock only the stranger out: the owner at
 * another address still signs; locks back off (3 s, then 6 s). */
static void test_throttle_per_client(void)
{
    char kid[64], err[512];
    int i, first;
    new_key(kid);
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(open_with(ATTACKER, kid, WRONG, err),
                        SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(open_with(ATTACKER, kid, SECRET, err),
                    SIGNER_ERR_THROTTLED);
    first = retry_in(err);
    CU_ASSERT(first >= 1 && first <= 3);
    /* The same address from another port is the same client. */
    CU_ASSERT_EQUAL(open_with("198.51.100.7:6000", kid, SECRET, err),
                    SIGNER_ERR_THROTTLED);
    CU_ASSERT_EQUAL(open_with(OWNER, kid, SECRET, err), SIGNER_OK);
    CU_ASSERT_EQUAL(open_with("[2001:db8::1]:443", kid, SECRET, err),
                    SIGNER_OK);
    /* IPv6: one /64 is one client. */
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(open_with("[2001:db8:0:7::1]:1", kid, WRONG, err),
                        SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(open_with("[2001:db8:0:7:ffff::9]:2", kid, SECRET, err),
                    SIGNER_ERR_THROTTLED);
    CU_ASSERT_EQUAL(open_with("[2001:db8:0:8::1]:2", kid, SECRET, err),
                    SIGNER_OK);
    usleep((useconds_t)(first + 1) * 1000 * 1000);
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(open_with(ATTACKER, kid, WRONG, err),
                        SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(open_with(ATTACKER, kid, SECRET, err),
                    SIGNER_ERR_THROTTLED);
    CU_ASSERT(retry_in(err) > 3 && retry_in(err) <= 6);
    CU_ASSERT_EQUAL(open_with(OWNER, kid, SECRET, err), SIGNER_OK);
}

/* A wrong secret caches nothing; the right one does. The cache is
 * direct-mapped, so the new key may evict an earlier test's key from its
 * slot: the entry itself is what is checked, the count only for not
 * rising on a wrong secret. */
static void test_cache_after_auth(void)
{
    char kid[64], err[512], *m;
    size_t before;
    new_key(kid);
    before = eng_keycache_count(eng.cache, eng_unix_time());
    CU_ASSERT_FALSE(eng_keycache_has(eng.cache, kid, eng_unix_time()));
    CU_ASSERT_EQUAL(open_with("203.0.113.9:1", kid, WRONG, err),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_FALSE(eng_keycache_has(eng.cache, kid, eng_unix_time()));
    CU_ASSERT_EQUAL(eng_keycache_count(eng.cache, eng_unix_time()), before);
    m = eng_metrics_text(&eng);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    {
        char want[64];
        snprintf(want, sizeof want, "signer_key_cache_entries %zu\n", before);
        CU_ASSERT_PTR_NOT_NULL(strstr(m, want));
    }
    free(m);
    CU_ASSERT_EQUAL(open_with("203.0.113.9:1", kid, SECRET, err), SIGNER_OK);
    CU_ASSERT_TRUE(eng_keycache_has(eng.cache, kid, eng_unix_time()));
    CU_ASSERT(eng_keycache_count(eng.cache, eng_unix_time()) <= before + 1);
    /* From the cache, a wrong secret is still refused. */
    CU_ASSERT_EQUAL(open_with("203.0.113.9:1", kid, WRONG, err),
                    SIGNER_ERR_FORBIDDEN);
}

/* The covered fields as Node's JSON.stringify writes them (keys sorted). */
#define JS_JCS                                                               \
    "{\"transaction_payload\":{\"big\":1e+21,\"gas\":1000000000000000,"     \
    "\"value\":1e-7,\"x\":0.30000000000000004}}"

static int hmac_open(const signer_op *op, const char *kid, const char *mac,
                     long long ts, const char *tp, const char *extra,
                     char *err)
{
    char pl[1024];
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"hmac\":\"%s\",\"timestamp\":%lld,"
             "\"transaction_payload\":%s%s}",
             kid, mac, ts, tp, extra);
    return svc(op, OWNER, 0, pl, NULL, err);
}

static void test_hmac_message(void)
{
    /* The same values spelled otherwise than JSON.stringify does. */
    const char *tp = "{\"x\":3.0000000000000004e-1,\"value\":0.0000001,"
                     "\"gas\":1e15,\"big\":1000000000000000000000}";
    const char *ulp = "{\"x\":0.3000000000000001,\"value\":0.0000001,"
                      "\"gas\":1e15,\"big\":1000000000000000000000}";
    char kid[64], err[512], mac[65];
    long long now = (long long)eng_unix_time();
    new_key(kid);
    tu_hmac_hex(mac, SECRET, "sign_transaction", kid, JS_JCS, now);
    /* One ULP away: not the MAC's payload. */
    CU_ASSERT_EQUAL(hmac_open(&sign_op, kid, mac, now, ulp, "", err),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "hmac: does not match"));
    /* Another operation: not the MAC's operation. */
    CU_ASSERT_EQUAL(hmac_open(&other_op, kid, mac, now, tp, "", err),
                    SIGNER_ERR_FORBIDDEN);
    /* A field the operation's HMAC does not cover is refused. */
    CU_ASSERT_EQUAL(hmac_open(&sign_op, kid, mac, now, tp, ",\"memo\":1", err),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "memo: not covered"));
    /* The JSON.stringify client is accepted. */
    CU_ASSERT_EQUAL(hmac_open(&sign_op, kid, mac, now, tp, "", err),
                    SIGNER_OK);
    /* Before the process started: the replay memory cannot tell.  (A
     * second before the engine opened: inside the window however slowly
     * the tests before this one ran.) */
    tu_hmac_hex(mac, SECRET, "sign_transaction", kid, JS_JCS, opened_at - 1);
    CU_ASSERT_EQUAL(hmac_open(&sign_op, kid, mac, opened_at - 1, tp, "", err),
                    SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "before the signer started"));
}

/* docs/hmac.md's worked example, computed by the signer's own code. */
static void test_docs_example(void)
{
    static const char payload[] =
        "{\"key_id\":\"3f0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b\","
        "\"transaction_payload\":{\"value\":0.01,\"to\":"
        "\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\",\"nonce\":0,"
        "\"type\":2,\"chainId\":4,\"gas\":100000,\"maxFeePerGas\":"
        "100000000000,\"maxPriorityFeePerGas\":3000000000}}";
    cJSON *p = cJSON_Parse(payload);
    eng_auth_scope scope = {"sign_transaction",
                            "3f0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", p,
                            tx_fields};
    signer_reply r;
    char *msg = NULL, hex[65];
    unsigned char mac[32];
    size_t len = 0;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(eng_auth_message(&msg, &len, &r, &scope,
                                           1767225600),
                          SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(
        msg, "sign_transaction\n3f0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b\n"
             "{\"transaction_payload\":{\"chainId\":4,\"gas\":100000,"
             "\"maxFeePerGas\":100000000000,\"maxPriorityFeePerGas\":"
             "3000000000,\"nonce\":0,\"to\":"
             "\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\",\"type\":2,"
             "\"value\":0.01}}\n1767225600");
    CU_ASSERT_EQUAL(eng_auth_mac(mac, (const unsigned char *)SECRET,
                                 strlen(SECRET), msg, len),
                    SIGNER_OK);
    eng_hex_encode(hex, mac, 32);
    CU_ASSERT_STRING_EQUAL(
        hex, "434cbb6d4bf520031d178bfaeb8a0694de3f43097f4b53149db3251860268b6e");
    eng_auth_message_free(msg, len);
    cJSON_Delete(p);
}

/* The enclave role: the record travels in the request. */
static void test_request_locator(void)
{
    cJSON *res = NULL;
    char err[512], pl[1024], kid[64], blob[512], bad[512];
    long long keys = eng_keystore_count(eng.ks);
    CU_ASSERT_EQUAL(eng_keysvc_source_for_role("standalone"),
                    ENG_KEY_SOURCE_KEYSTORE);
    eng.key_source = eng_keysvc_source_for_role("enclave");
    CU_ASSERT_EQUAL(eng.key_source, ENG_KEY_SOURCE_REQUEST);
    CU_ASSERT_EQUAL_FATAL(svc(&sign_op, OWNER, 1, "{\"secret\":\"" SECRET "\"}",
                              &res, err),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(eng_keystore_count(eng.ks), keys); /* nothing stored */
    snprintf(kid, sizeof kid, "%s",
             cJSON_GetObjectItem(res, "key_id")->valuestring);
    snprintf(blob, sizeof blob, "%s",
             cJSON_GetObjectItem(res, "sealed_key")->valuestring);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(res, "key_chain")->valuestring,
                           "test");
    cJSON_Delete(res);
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"sealed_key\":"
             "\"%s\",\"key_chain\":\"test\",\"key_address\":\"0xaddr\"}",
             kid, blob);
    CU_ASSERT_EQUAL(svc(&sign_op, OWNER, 0, pl, NULL, err), SIGNER_OK);
    /* Another address than the one sealed: refused. */
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"sealed_key\":"
             "\"%s\",\"key_chain\":\"test\",\"key_address\":\"0xother\"}",
             kid, blob);
    eng_keycache_free(eng.cache); /* force the locate step */
    eng.cache = NULL;
    CU_ASSERT_EQUAL(svc(&sign_op, OWNER, 0, pl, NULL, err),
                    SIGNER_ERR_FORBIDDEN);
    /* A tampered blob: refused. */
    snprintf(bad, sizeof bad, "%s", blob);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    snprintf(pl, sizeof pl,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"sealed_key\":"
             "\"%s\",\"key_chain\":\"test\",\"key_address\":\"0xaddr\"}",
             kid, bad);
    CU_ASSERT_EQUAL(svc(&sign_op, OWNER, 0, pl, NULL, err),
                    SIGNER_ERR_FORBIDDEN);
    /* No record at all. */
    snprintf(pl, sizeof pl, "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\"}",
             kid);
    CU_ASSERT_EQUAL(svc(&sign_op, OWNER, 0, pl, NULL, err),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sealed_key: required"));
    eng.key_source = ENG_KEY_SOURCE_KEYSTORE;
}

/* ---- through the dispatcher ------------------------------------------ */

static int dispatch(const char *body, int framed, const char *op,
                    const char *key_id, cJSON **out, char **raw)
{
    eng_request req;
    char *resp = NULL;
    size_t len = 0;
    int status;
    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = strlen(body);
    req.framed = framed;
    req.operation = op;
    req.key_id = key_id;
    req.peer = OWNER;
    status = eng_dispatch(&eng, &req, &resp, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    *out = cJSON_Parse(resp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*out);
    if (raw != NULL)
        *raw = resp;
    else
        free(resp);
    return status;
}

static const char *res_str(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "enclave_result"), k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The reference's bodies, unchanged: set_key {eth_key, secret}, then the
 * signing route with {transaction_payload, key_id, secret}. */
static void test_reference_bodies(void)
{
    cJSON *o;
    char kid[64], body[1024];
    const char *tp =
        "{\"value\":0.01,\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\","
        "\"nonce\":0,\"type\":2,\"chainId\":4,\"gas\":100000,"
        "\"maxFeePerGas\":100000000000,\"maxPriorityFeePerGas\":3000000000}";
    CU_ASSERT_EQUAL(dispatch("{\"eth_key\":\"0x4c0883a69102937d6231471b5dbb6"
                             "204fe5129617082792ae468d01a3f362318\","
                             "\"secret\":\"" SECRET "\"}",
                             0, "set_key", NULL, &o, NULL),
                    200);
    CU_ASSERT_STRING_EQUAL(res_str(o, "address"),
                           "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
    snprintf(kid, sizeof kid, "%s", res_str(o, "key_id"));
    cJSON_Delete(o);
    snprintf(body, sizeof body,
             "{\"transaction_payload\":%s,\"key_id\":\"%s\",\"secret\":\""
             SECRET "\"}",
             tp, kid);
    /* The test plugin (loaded first) owns the plain verb: name eth's. */
    CU_ASSERT_EQUAL(dispatch(body, 0, "eth.sign_transaction", kid, &o, NULL),
                    200);
    CU_ASSERT_EQUAL(strncmp(res_str(o, "transaction_signed"), "0x02", 4), 0);
    cJSON_Delete(o);
}

/* Runs body through the dispatcher with stderr (the log) captured into
 * log[cap]. */
static int dispatch_logged(const char *body, const char *op, char *log,
                           size_t cap)
{
    char path[] = "/tmp/signer-test-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(2), status;
    ssize_t n;
    cJSON *o;
    CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, 2);
    eng_log_set_level(SIGNER_LOG_INFO);
    status = dispatch(body, 0, op, NULL, &o, NULL);
    eng_log_set_level(SIGNER_LOG_ERROR);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, log, cap - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    cJSON_Delete(o);
    return status;
}

/* SIGNER_OP_SECRET: the error of an operation carrying key material is
 * logged by class only, never with the message that quotes its fields;
 * other operations' messages are logged. */
static void test_secret_ops_logging(void)
{
    char log[4096];
    CU_ASSERT_EQUAL(dispatch_logged("{\"eth_key\":\"0x11\",\"secret\":\""
                                    SECRET "\",\"marker_field_1\":1}",
                                    "set_key", log, sizeof log),
                    400);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "set_key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "bad request"));
    CU_ASSERT_PTR_NULL(strstr(log, "marker_field_1"));
    CU_ASSERT_PTR_NULL(strstr(log, SECRET));
    CU_ASSERT_EQUAL(dispatch_logged("{\"code\":-3}", "fail", log, sizeof log),
                    404);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "failed as asked"));
}

/* Frames echo the id token exactly; strict JSON names the place. */
static void test_frames_and_strict(void)
{
    cJSON *o;
    char *raw = NULL;
    CU_ASSERT_EQUAL(dispatch("{\"id\":9007199254740993,\"operation\":\"echo\","
                             "\"payload\":{\"message\":\"m\"}}",
                             1, NULL, NULL, &o, &raw),
                    200);
    CU_ASSERT_EQUAL(strncmp(raw, "{\"id\":9007199254740993,", 23), 0);
    free(raw);
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(dispatch("{\"id\":\"a\\u0062\",\"operation\":\"nope\"}", 1,
                             NULL, NULL, &o, &raw),
                    400);
    CU_ASSERT_EQUAL(strncmp(raw, "{\"id\":\"a\\u0062\",", 16), 0);
    free(raw);
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(dispatch("{\"operation\":\"echo\",\"payload\":{\"message\":"
                             "\"m\",\"message\":\"n\"}}",
                             0, NULL, NULL, &o, NULL),
                    400);
    CU_ASSERT_PTR_NOT_NULL(strstr(res_str(o, "error"),
                                  "at byte 45: duplicate member \"message\""));
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(dispatch("{\"operation\":\"echo\",\"payload\":{\"n\":1.}}",
                             0, NULL, NULL, &o, NULL),
                    400);
    CU_ASSERT_PTR_NOT_NULL(strstr(res_str(o, "error"), "at byte 37"));
    cJSON_Delete(o);
}

/* Hex as the MAC and the attestation PCRs are read: either case, exactly
 * two digits a byte, anything else refused. */
static void test_hex_decode(void)
{
    unsigned char out[3] = {0};

    CU_ASSERT_EQUAL(eng_hex_nibble('0'), 0);
    CU_ASSERT_EQUAL(eng_hex_nibble('9'), 9);
    CU_ASSERT_EQUAL(eng_hex_nibble('a'), 10);
    CU_ASSERT_EQUAL(eng_hex_nibble('F'), 15);
    CU_ASSERT_EQUAL(eng_hex_nibble('g'), -1);
    CU_ASSERT_EQUAL(eng_hex_nibble('x'), -1);
    CU_ASSERT_EQUAL(eng_hex_nibble(-1), -1);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 3, "00aBfF"), 0);
    CU_ASSERT_EQUAL(out[0], 0x00);
    CU_ASSERT_EQUAL(out[1], 0xab);
    CU_ASSERT_EQUAL(out[2], 0xff);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 3, "00abf"), -1);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 3, "00abff0"), -1);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 3, "0x00ab"), -1);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 3, "00ab g"), -1);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 3, NULL), -1);
    CU_ASSERT_EQUAL(eng_hex_decode(out, 0, ""), 0);
}

/* key_id syntax: a UUIDv4 in either case, nothing shorter or longer, a
 * non-hex byte anywhere refused. */
static void test_uuid_valid(void)
{
    static const char good[] = "123e4567-e89b-42d3-a456-426614174000";
    char t[40];
    size_t i;
    int refused = 0;
    CU_ASSERT_TRUE(eng_uuid_valid(good));
    CU_ASSERT_TRUE(eng_uuid_valid("123E4567-E89B-42D3-B456-426614174ABC"));
    CU_ASSERT_FALSE(eng_uuid_valid(NULL));
    CU_ASSERT_FALSE(eng_uuid_valid("123e4567-e89b-32d3-a456-426614174000"));
    CU_ASSERT_FALSE(eng_uuid_valid("123e4567-e89b-42d3-c456-426614174000"));
    CU_ASSERT_FALSE(eng_uuid_valid("123e4567-e89b-42d3-a456-42661417400"));
    CU_ASSERT_FALSE(eng_uuid_valid("123e4567-e89b-42d3-a456-4266141740000"));
    CU_ASSERT_FALSE(eng_uuid_valid("123e4567e-89b-42d3-a456-426614174000"));
    for (i = 0; i < 36; i++) {
        memcpy(t, good, sizeof good);
        t[i] = good[i] == '-' ? '0' : 'g';
        refused += !eng_uuid_valid(t);
        t[i] = '\0';
        refused += !eng_uuid_valid(t);
    }
    CU_ASSERT_EQUAL(refused, 72);
}

/* A secret is ENG_SECRET_MIN..ENG_SECRET_MAX printable ASCII characters:
 * one byte outside 0x20..0x7e at any position refuses it. */
static void test_secret_check(void)
{
    static const unsigned char outside[] = {0x01, 0x1f, 0x7f, 0x80, 0xff};
    char t[ENG_SECRET_MAX + 2];
    cJSON *v;
    size_t len = 0, n, i, k;
    int wrong = 0;
    for (n = ENG_SECRET_MIN - 1; n <= ENG_SECRET_MAX + 1; n++) {
        for (i = 0; i < n; i++)
            t[i] = (char)(0x20 + (i * 13) % 95); /* all of 0x20..0x7e */
        t[n] = '\0';
        v = cJSON_CreateString(t);
        len = 0;
        if (n < ENG_SECRET_MIN || n > ENG_SECRET_MAX)
            wrong += eng_auth_secret_check(v, &len) != -1;
        else
            wrong += eng_auth_secret_check(v, &len) != 0 || len != n;
        cJSON_Delete(v);
        if (n < ENG_SECRET_MIN || n > ENG_SECRET_MAX)
            continue;
        for (i = 0; i < n; i++)
            for (k = 0; k < sizeof outside; k++) {
                char keep = t[i];
                t[i] = (char)outside[k];
                v = cJSON_CreateString(t);
                wrong += eng_auth_secret_check(v, &len) != -1;
                cJSON_Delete(v);
                t[i] = keep;
            }
    }
    v = cJSON_CreateNumber(1);
    wrong += eng_auth_secret_check(v, &len) != -1;
    cJSON_Delete(v);
    CU_ASSERT_EQUAL(wrong, 0);
}

/* A freed secure block comes back wiped for the thread's next
 * allocation of its size (no trip through the heap's lock); a thread's
 * kept blocks return to the secure heap when it ends. */
static void *secure_churn(void *arg)
{
    unsigned char *p = eng_secure_alloc(48);
    (void)arg;
    if (p != NULL)
        memset(p, 0x5a, 48);
    eng_secure_free(p, 48);
    return p;
}

static void test_secure_reuse(void)
{
    unsigned char *p, *q, *r;
    size_t before, i, nonzero = 0;
    pthread_t t;
    void *tp = NULL;

    eng_secure_init(1 << 16);
    CU_ASSERT_FATAL(CRYPTO_secure_malloc_initialized());
    p = eng_secure_alloc(40);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(CRYPTO_secure_allocated(p));
    memset(p, 0xaa, 40);
    eng_secure_free(p, 40);
    r = eng_secure_alloc(41); /* another size: another block */
    q = eng_secure_alloc(40);
    CU_ASSERT_PTR_EQUAL(q, p);
    CU_ASSERT_PTR_NOT_EQUAL(r, p);
    for (i = 0; i < 40; i++)
        nonzero += q[i] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
    eng_secure_free(q, 40);
    eng_secure_free(r, 41);

    before = CRYPTO_secure_used();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, secure_churn, NULL), 0);
    CU_ASSERT_EQUAL(pthread_join(t, &tp), 0);
    CU_ASSERT_PTR_NOT_NULL(tp);
    CU_ASSERT_EQUAL(CRYPTO_secure_used(), before);
}

int main(void)
{
    CU_pSuite s;

    /* as signerd's main does: every request's JSON in the request arena,
     * cJSON's frees wiping */
    eng_wiping_allocators_install();
    opened_at = eng_unix_time();
    if (tu_engine_open(&eng, &cfg, &dir,
                       "auth = { max_failures = 3; lockout_seconds = 3; };\n"
                       "key_cache = { ttl_seconds = 3600; max_entries = 64; };\n"
                       "plugins = ( { name = \"test\"; settings = { greeting = "
                       "\"hi \"; }; },\n"
                       "            { name = \"eth\"; } );\n") != 0)
        return 1;
    s = CU_add_suite("auth", NULL, NULL);
    TU_ADD(s, test_throttle_per_client);
    TU_ADD(s, test_cache_after_auth);
    TU_ADD(s, test_hmac_message);
    TU_ADD(s, test_docs_example);
    TU_ADD(s, test_reference_bodies);
    TU_ADD(s, test_frames_and_strict);
    TU_ADD(s, test_secret_ops_logging);
    TU_ADD(s, test_request_locator);
    TU_ADD(s, test_hex_decode);
    TU_ADD(s, test_secure_reuse);
    TU_ADD(s, test_uuid_valid);
    TU_ADD(s, test_secret_check);
    return tu_engine_end(&eng, &cfg, dir);
}
