/* The strict JSON front end (RFC 8259): what it refuses, with the byte
 * offset and cause, and what it keeps exact (a frame id's token). */
#include "config.h"
#include "testutil.h"

#include "json.h"

#include <signer/plugin.h>

static void refuse(const char *text, size_t len, size_t at, const char *cause)
{
    cJSON *v = NULL;
    eng_json_error e;
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(eng_json_parse(&v, NULL, text, len, 64, &e),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NULL(v);
    if (e.offset != at || strstr(e.cause, cause) == NULL)
        fprintf(stderr, "\n%.*s -> at %zu '%s', want at %zu '%s'\n",
                (int)len, text, e.offset, e.cause, at, cause);
    CU_ASSERT_EQUAL(e.offset, at);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.cause, cause));
}

#define REFUSE(t, at, cause) refuse(t, sizeof(t) - 1, at, cause)

static void test_refused(void)
{
    REFUSE("{\"a\":1,\"a\":2}", 7, "duplicate member \"a\"");
    REFUSE("{\"x\":{\"b\":1,\"c\":{},\"b\":2}}", 19, "duplicate member \"b\"");
    REFUSE("[{\"k\":1,\"\\u006b\":2}]", 8, "duplicate member \"k\"");
    /* several names twice: the smallest, at its second occurrence (small
     * objects by pairs, large ones sorted: the same answer) */
    REFUSE("{\"z\":1,\"b\":1,\"z\":2,\"b\":2,\"b\":3}", 19,
           "duplicate member \"b\"");
    REFUSE("{\"m00\":0,\"m01\":1,\"m02\":2,\"m03\":3,\"m04\":4,\"m05\":5,"
           "\"m06\":6,\"m07\":7,\"m08\":8,\"m09\":9,\"m10\":10,"
           "\"m11\":11,\"m12\":12,\"m13\":13,\"m14\":14,\"m15\":15,"
           "\"m16\":16,\"m17\":17,\"m18\":18,\"m19\":19,\"m07\":0,"
           "\"m03\":1}",
           179, "duplicate member \"m03\"");
    REFUSE("{\"n\":01}", 5, "leading zero");
    REFUSE("{\"n\":-01}", 6, "leading zero");
    REFUSE("{\"n\":1.}", 7, "after '.'");
    REFUSE("{\"n\":.5}", 5, "unexpected character '.'");
    REFUSE("{\"n\":1e}", 7, "exponent");
    REFUSE("{\"n\":+1}", 5, "unexpected character '+'");
    REFUSE("{\"n\":1e400}", 5, "overflows a double in \"n\"");
    REFUSE("{\"n\":-1e400}", 5, "overflows");
    REFUSE("{\"n\":1e-400}", 5, "underflows");
    REFUSE("{\"s\":\"a\tb\"}", 7, "raw control character 0x09");
    REFUSE("{\"s\":\"\\ud800\"}", 6, "lone high surrogate");
    REFUSE("{\"s\":\"\\udc00x\"}", 6, "lone low surrogate");
    REFUSE("{\"s\":\"\\ud800\\u0041\"}", 6, "lone high surrogate");
    REFUSE("{\"s\":\"\\u0000\"}", 6, "NUL");
    REFUSE("{\"s\":\"\xed\xa0\x80\"}", 6, "UTF-8");
    REFUSE("{\"s\":\"\xc0\xaf\"}", 6, "UTF-8");
    REFUSE("{\"s\":\"\\x\"}", 6, "invalid escape");
    REFUSE("{\"s\":\"abc", 5, "unterminated string");
    REFUSE("{\"a\":1} x", 8, "trailing data");
    REFUSE("{\"a\":1,}", 7, "member name expected");
    REFUSE("[1,]", 3, "unexpected character ']'");
    REFUSE("{'a':1}", 1, "member name expected");
    REFUSE("   ", 3, "unexpected end of input");
    REFUSE("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
           "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
           64, "nested deeper than 64");
    refuse("{\"a\":\0}", 7, 5, "NUL");
}

static void test_accepted(void)
{
    static const char text[] =
        "{\"a\":[0,-0,1.5e-300,4.9e-324,1E+2,0.000001,true,false,null],"
        "\"s\":\"\\ud83d\\ude00 \\u00e9 \\\" \\/\",\"o\":{\"a\":{\"a\":1}}}";
    cJSON *v = NULL, *a;
    eng_json_error e;
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&v, NULL, text, sizeof text - 1, 64,
                                         &e),
                          SIGNER_OK);
    a = cJSON_GetObjectItem(v, "a");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(a), 9);
    CU_ASSERT_EQUAL(cJSON_GetArrayItem(a, 4)->valuedouble, 100.0);
    CU_ASSERT_TRUE(cJSON_GetArrayItem(a, 3)->valuedouble > 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(v, "s")->valuestring,
                           "\xf0\x9f\x98\x80 \xc3\xa9 \" /");
    eng_json_free(v);
}

/* A frame id comes back exactly as sent: 2^53 + 1 has no double. */
/* Numbers are the doubles strtod gives for their text (integers of up to
 * 15 digits are converted without it), signs and zeros included. */
static void test_numbers(void)
{
    static const char *const texts[] = {
        "0", "-0", "7", "-42", "100000", "123456789012345",
        "-999999999999999", "1234567890123456", "9007199254740993",
        "0.01", "1e2", "-0.0", "12345678901234567890", NULL};
    const char *const *t;
    for (t = texts; *t != NULL; t++) {
        cJSON *v = NULL;
        eng_json_error e;
        double want = strtod(*t, NULL);
        CU_ASSERT_EQUAL_FATAL(
            eng_json_parse(&v, NULL, *t, strlen(*t), 64, &e), SIGNER_OK);
        CU_ASSERT(cJSON_IsNumber(v));
        CU_ASSERT(memcmp(&v->valuedouble, &want, sizeof want) == 0);
        eng_json_free(v);
    }
}

static void test_capture(void)
{
    static const char text[] =
        "{\"x\":{\"id\":1},\"id\":9007199254740993 ,\"op\":\"a\"}";
    eng_json_span id = {"id", NULL, 0};
    cJSON *v = NULL;
    eng_json_error e;
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&v, &id, text, sizeof text - 1, 64,
                                         &e),
                          SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(id.text);
    CU_ASSERT_EQUAL(id.len, 16);
    CU_ASSERT_EQUAL(strncmp(id.text, "9007199254740993", id.len), 0);
    eng_json_free(v);
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("json", NULL, NULL);
    TU_ADD(s, test_refused);
    TU_ADD(s, test_accepted);
    TU_ADD(s, test_numbers);
    TU_ADD(s, test_capture);
    return tu_run();
}
