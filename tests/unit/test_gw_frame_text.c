/* The gateway's spliced frames (engine/gateway/frame_text.c): the scanner
 * finds a top-level member's value text in JSON the strict parser
 * accepted (and only a top-level one), says when it cannot tell (escaped
 * member names), the builder escapes what it quotes, the pool sends a
 * text frame with its id as the last member, byte for byte, and finds the
 * id of an answer without parsing it when the id comes first. */
#include "config.h"
#include "gw_pool_test.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "gateway/frame_text.h"
#include "gateway/pool.h"
#include "json.h"

/* The span of name in json, as a NUL-terminated copy in out ("" when
 * absent); the scanner's return value. */
static int span_of(const char *json, const char *name, char *out,
                   size_t cap)
{
    const char *v = NULL;
    size_t n = 0;
    int rc = eng_gw_member_span(json, strlen(json), name, &v, &n);
    out[0] = '\0';
    if (rc == 1 && n < cap) {
        memcpy(out, v, n);
        out[n] = '\0';
    }
    return rc;
}

static void test_member_span(void)
{
    char v[256];
    CU_ASSERT_EQUAL(span_of("{\"operation\":\"x\",\"payload\":{\"a\":1}}",
                            "payload", v, sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "{\"a\":1}");
    /* whitespace everywhere, payload first, strings with braces, quotes
     * and backslashes inside, nested arrays */
    CU_ASSERT_EQUAL(span_of(" {\n \"payload\" :\t{ \"s\": \"}\\\"{\\\\\", "
                            "\"l\": [1, {\"payload\": 2}, \"]\"] } ,"
                            " \"operation\" : \"sign\" } ",
                            "payload", v, sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "{ \"s\": \"}\\\"{\\\\\", \"l\": [1, "
                              "{\"payload\": 2}, \"]\"] }");
    CU_ASSERT_EQUAL(span_of("{\"operation\":\"sign\"}", "operation", v,
                            sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "\"sign\"");
    /* only top-level members count; a prefix of the name does not */
    CU_ASSERT_EQUAL(span_of("{\"x\":{\"payload\":{}},\"pay\":1,"
                            "\"payloads\":2}",
                            "payload", v, sizeof v), 0);
    CU_ASSERT_EQUAL(span_of("{}", "payload", v, sizeof v), 0);
    CU_ASSERT_EQUAL(span_of("{\"n\":-1.5e3,\"t\":true,\"payload\":null}",
                            "payload", v, sizeof v), 1);
    CU_ASSERT_STRING_EQUAL(v, "null");
    /* an escaped member name may spell "payload": the caller must parse */
    CU_ASSERT_EQUAL(span_of("{\"pay\\u006coad\":{},\"payload\":{}}",
                            "payload", v, sizeof v), -1);
    CU_ASSERT_EQUAL(span_of("[1]", "payload", v, sizeof v), -1);
}

static void test_object_empty(void)
{
    CU_ASSERT_TRUE(eng_gw_object_empty("{}", 2));
    CU_ASSERT_TRUE(eng_gw_object_empty(" { \n } ", 7));
    CU_ASSERT_FALSE(eng_gw_object_empty("{\"a\":1}", 7));
    CU_ASSERT_FALSE(eng_gw_object_empty("{", 1));
    CU_ASSERT_FALSE(eng_gw_object_empty("", 0));
}

/* Quoted strings come back from the strict parser unchanged, and are
 * written as cJSON prints them. */
static void test_text_escapes(void)
{
    static const char *const vals[] = {"plain", "q\"uote", "back\\slash",
                                       "tab\tnl\nctl\x01\x1f\b\f\r", "",
                                       "\xc3\xa9"};
    eng_gw_text t = {NULL, 0, 0, 0};
    eng_json_error jerr;
    cJSON *root = NULL, *want = cJSON_CreateObject();
    size_t i, len = 0;
    char *out, *printed, name[8];
    eng_aws_buf_str(&t, "{");
    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        snprintf(name, sizeof name, "k%zu", i);
        eng_gw_text_member(&t, i == 0, name, vals[i]);
        cJSON_AddStringToObject(want, name, vals[i]);
    }
    eng_aws_buf_str(&t, "}");
    len = t.len;
    out = eng_aws_buf_take(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(len, strlen(out));
    CU_ASSERT_PTR_NULL(t.p);
    printed = cJSON_PrintUnformatted(want);
    CU_ASSERT_PTR_NOT_NULL_FATAL(printed);
    CU_ASSERT_STRING_EQUAL(out, printed);
    cJSON_free(printed);
    cJSON_Delete(want);
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&root, NULL, out, len, 4, &jerr),
                          SIGNER_OK);
    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        const cJSON *v;
        snprintf(name, sizeof name, "k%zu", i);
        v = cJSON_GetObjectItemCaseSensitive(root, name);
        CU_ASSERT_TRUE(cJSON_IsString(v) && strcmp(v->valuestring,
                                                   vals[i]) == 0);
    }
    eng_json_free(root);
    free(out);
}

/* Growth keeps every byte (the buffer moves several times). */
static void test_text_growth(void)
{
    eng_gw_text t = {NULL, 0, 0, 0};
    size_t i, len = 0;
    char *out;
    for (i = 0; i < 5000; i++)
        eng_aws_buf_add(&t, i % 2 ? "b" : "a", 1);
    len = t.len;
    out = eng_aws_buf_take(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(len, 5000);
    CU_ASSERT_EQUAL(out[0], 'a');
    CU_ASSERT_EQUAL(out[4999], 'b');
    CU_ASSERT_EQUAL(out[5000], '\0');
    free(out);
}

/* The id of an enclave's answer read from its text: the layout the
 * enclave prints, and nothing else. */
static void test_answer_id(void)
{
    static const char ok[] = "{\"id\":42,\"enclave_status\":200}";
    static const char big[] = "{\"id\":123456789012345,\"x\":1}";
    static const char *const bad[] = {
        "{\"id\":0,\"x\":1}",                /* 0 is no id */
        "{\"id\":1234567890123456,\"x\":1}", /* 16 digits */
        "{\"id\":\"7\",\"x\":1}",              /* a string */
        "{ \"id\":7,\"x\":1}",                /* another layout */
        "{\"id\":77"};                        /* cut short */
    uint64_t id = 0;
    size_t i;
    CU_ASSERT_EQUAL(eng_gw_answer_id(ok, strlen(ok), &id), 8);
    CU_ASSERT_EQUAL(id, 42);
    CU_ASSERT_EQUAL(eng_gw_answer_id(big, strlen(big), &id), 21);
    CU_ASSERT_EQUAL(id, 123456789012345ull);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(eng_gw_answer_id(bad[i], strlen(bad[i]), &id), 0);
}

/* A first reservation is the estimate: the frame is built without a move
 * while it stays within it, and grows past it by doubling. */
static void test_text_reserve(void)
{
    eng_gw_text t = {NULL, 0, 0, 0};
    const char *first;
    size_t i;
    CU_ASSERT_EQUAL(eng_aws_buf_reserve(&t, 1000), 0);
    CU_ASSERT_EQUAL(t.cap, 1001);
    first = t.p;
    for (i = 0; i < 1000; i++)
        eng_aws_buf_add(&t, "x", 1);
    CU_ASSERT_PTR_EQUAL(t.p, first);
    eng_aws_buf_add(&t, "y", 1);
    CU_ASSERT_TRUE(t.cap >= 2002);
    CU_ASSERT_EQUAL(t.len, 1001);
    CU_ASSERT_EQUAL(t.p[1000], 'y');
    CU_ASSERT_EQUAL(t.p[1001], '\0');
    eng_aws_buf_free(&t);
    CU_ASSERT_PTR_NULL(t.p);
}

static atomic_int answered, answer_err, trees;

/* An answer {"id":N,...} comes as text only; another layout parsed, with
 * its id removed. */
static void on_done(void *arg, cJSON *answer, const char *text,
                    size_t text_len, int err, const char *why)
{
    (void)arg;
    (void)why;
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text != NULL && text_len > 6 && memcmp(text, "{\"id\":", 6) == 0)
        CU_ASSERT_PTR_NULL(answer);
    if (answer != NULL) {
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(answer, "id"));
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(answer, "enclave_status"));
        atomic_fetch_add(&trees, 1);
    }
    cJSON_Delete(answer);
    atomic_store(&answer_err, err);
    atomic_fetch_add(&answered, 1);
}

/* Forwards text through p and checks the bytes the enclave gets: text
 * with ,"id":N (or "id":N in an empty object) before its last brace.
 * Returns the id, or 0. */
static unsigned long long forward_one(eng_gw_pool *p, int cfd,
                                      const char *text)
{
    eng_gw_text t = {NULL, 0, 0, 0};
    unsigned long long id = 0;
    char *got, want[256];
    size_t n = strlen(text);
    eng_aws_buf_str(&t, text);
    eng_gw_pool_forward_text(p, &t, 1, on_done, NULL);
    CU_ASSERT_PTR_NULL(t.p); /* taken */
    got = tu_read_frame(cfd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(sscanf(strstr(got, "\"id\":") + 5, "%llu", &id), 1);
    snprintf(want, sizeof want, "%.*s%s\"id\":%llu}", (int)(n - 1), text,
             n > 2 ? "," : "", id);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    return id;
}

static void test_pool_text_frame(void)
{
    char answer[96];
    eng_gw_pool *p;
    unsigned long long ids[2];
    int lfd, cfd, i, n;
    p = tu_pool_with_peer(&lfd, &cfd);
    for (i = 0; i < 200 && eng_gw_pool_up(p) == 0; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    ids[0] = forward_one(p, cfd, "{\"operation\":\"sign\",\"payload\":"
                                 "{ \"key_id\" : \"k\", \"v\": 1.50 }}");
    ids[1] = forward_one(p, cfd, "{}");
    CU_ASSERT_TRUE(ids[0] > 0 && ids[1] > ids[0]);
    for (i = 0; i < 2; i++) {
        n = i == 0 ? snprintf(answer + 4, sizeof answer - 4,
                              "{\"id\":%llu,\"enclave_status\":200,"
                              "\"enclave_result\":{}}",
                              ids[i])
                   : snprintf(answer + 4, sizeof answer - 4,
                              "{\"enclave_status\":200,"
                              "\"enclave_result\":{},\"id\":%llu}",
                              ids[i]);
        answer[0] = answer[1] = answer[2] = 0;
        answer[3] = (char)n;
        CU_ASSERT_EQUAL(send(cfd, answer, (size_t)n + 4, 0), n + 4);
    }
    for (i = 0; i < 500 && atomic_load(&answered) < 2; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    CU_ASSERT_EQUAL(atomic_load(&answered), 2);
    CU_ASSERT_EQUAL(atomic_load(&trees), 1); /* the id-last answer */
    CU_ASSERT_EQUAL(atomic_load(&answer_err), SIGNER_OK);
    eng_gw_pool_free(p);
    close(cfd);
    close(lfd);
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("gw_frame_text", NULL, NULL);
    TU_ADD(s, test_member_span);
    TU_ADD(s, test_object_empty);
    TU_ADD(s, test_text_escapes);
    TU_ADD(s, test_text_growth);
    TU_ADD(s, test_text_reserve);
    TU_ADD(s, test_answer_id);
    TU_ADD(s, test_pool_text_frame);
    return tu_run();
}
