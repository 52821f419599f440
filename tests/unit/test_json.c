/* The strict JSON front end (RFC 8259): what it refuses, with the byte
 * offset and cause, and what it keeps exact (a frame id's token). */
#include "config.h"
#include "testutil.h"

#include "json.h"
#include "util.h"

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

/* Random valid number texts (up to 18 integer and 18 fraction digits,
 * exponents to +-40): the fast path (Clinger's) and strtod agree to the
 * bit on every one. */
static void test_numbers_random(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char t[64];
    int k, bad = 0;
    for (k = 0; k < 50000; k++) {
        size_t n = 0;
        int i, nint, nfrac, e;
        cJSON *v = NULL;
        eng_json_error err;
        double want;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
        if (RND() % 2)
            t[n++] = '-';
        nint = (int)(RND() % 19);
        t[n++] = (char)(nint == 0 ? '0' : '1' + RND() % 9);
        for (i = 1; i < nint; i++)
            t[n++] = (char)('0' + RND() % 10);
        if ((nfrac = (int)(RND() % 19)) > 0) {
            t[n++] = '.';
            for (i = 0; i < nfrac; i++)
                t[n++] = (char)('0' + RND() % (i % 3 ? 10 : 2));
        }
        if (RND() % 3 == 0) {
            e = (int)(RND() % 81) - 40;
            n += (size_t)snprintf(t + n, sizeof t - n, "%s%d",
                                  RND() % 2 ? "e" : "E", e);
        }
#undef RND
        t[n] = '\0';
        want = strtod(t, NULL);
        if (eng_json_parse(&v, NULL, t, n, 4, &err) != SIGNER_OK ||
            memcmp(&v->valuedouble, &want, sizeof want) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "\n%s: %.17g, strtod %.17g\n", t,
                        v ? v->valuedouble : 0.0, want);
        }
        eng_json_free(v);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* With the wiping allocators installed, a request scope takes the parsed
 * tree from the thread's arena: nothing to free node by node, a mixed
 * tree (a malloc'd member added) released correctly, and the used part
 * wiped when the outermost scope closes, not before (and, under ASan, no
 * longer addressable). */
static void test_arena(void)
{
    static const char text[] =
        "{\"key_id\":\"k\",\"secret\":\"correct horse battery\","
        "\"tx\":{\"value\":0.01,\"nonce\":7,\"ok\":true}}";
    cJSON *v = NULL, *sec;
    char *secret;
    eng_json_error e;
    eng_wiping_allocators_install();
    CU_ASSERT_PTR_NULL(eng_arena_alloc(8)); /* no scope open */
    eng_arena_begin();
    eng_arena_begin(); /* nested: the outer scope owns the arena */
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&v, NULL, text, sizeof text - 1, 64,
                                         &e),
                          SIGNER_OK);
    sec = cJSON_GetObjectItemCaseSensitive(v, "secret");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sec);
    secret = sec->valuestring;
    CU_ASSERT_TRUE(eng_arena_owns(v));
    CU_ASSERT_TRUE(eng_arena_owns(secret));
    CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(v, "tx"), "nonce")
                        ->valuedouble,
                    7.0);
    /* cJSON's own delete and a malloc'd member in the arena's tree */
    cJSON_DeleteItemFromObjectCaseSensitive(v, "key_id");
    CU_ASSERT_PTR_NOT_NULL(cJSON_AddStringToObject(v, "added", "heap"));
    CU_ASSERT_FALSE(eng_arena_owns(
        cJSON_GetObjectItemCaseSensitive(v, "added")));
    eng_json_free(v);
    eng_arena_end();
    CU_ASSERT_STRING_EQUAL(secret, "correct horse battery"); /* still open */
    eng_arena_end();
#ifdef ENG_ARENA_ASAN
    /* closed: a late use of the tree is an ASan error (look, then close
     * again) */
    CU_ASSERT_TRUE(__asan_address_is_poisoned(secret));
    CU_ASSERT_TRUE(__asan_address_is_poisoned(v));
    ASAN_UNPOISON_MEMORY_REGION(secret, 8);
#endif
    CU_ASSERT_EQUAL(secret[0], 0); /* wiped with the scope */
    CU_ASSERT_EQUAL(memcmp(secret, "\0\0\0\0\0\0\0\0", 8), 0);
    ASAN_POISON_MEMORY_REGION(secret, 8);
    /* no scope: malloc again */
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&v, NULL, text, sizeof text - 1, 64,
                                         &e),
                          SIGNER_OK);
    CU_ASSERT_FALSE(eng_arena_owns(v));
    eng_json_free(v);
}

/* A body larger than the arena: what does not fit comes from malloc, and
 * the release path frees exactly that (valgrind/ASan: no leak, no bad
 * free). */
static void test_arena_overflow(void)
{
    size_t n = 40000, i, len = 0;
    char *text = malloc(n + 64);
    cJSON *v = NULL;
    eng_json_error e;
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    eng_wiping_allocators_install();
    len += (size_t)sprintf(text, "[");
    for (i = 0; len + 32 < n; i++)
        len += (size_t)sprintf(text + len, "%s\"s%zu-%s\"", i ? "," : "", i,
                               "abcdefghijklmnopqrstuvwxyz");
    text[len++] = ']';
    eng_arena_begin();
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&v, NULL, text, len, 64, &e),
                          SIGNER_OK);
    CU_ASSERT_TRUE(eng_arena_owns(v));
    CU_ASSERT_FALSE(eng_arena_owns(cJSON_GetArrayItem(v, (int)i - 1)));
    CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(v, (int)i - 1)->valuestring +
                               strlen(cJSON_GetArrayItem(v, (int)i - 1)
                                          ->valuestring) -
                               3,
                           "xyz");
    eng_json_free(v);
    eng_arena_end();
    free(text);
}

/* The plain run (eight bytes at a time) ends exactly where a byte-by-byte
 * scan finds the first control, '"' or backslash, at every offset and
 * length, next to UTF-8 bytes (which are plain). */
static void test_plain_run(void)
{
    static const unsigned char specials[] = {0x00, 0x01, 0x1f, '"', '\\'};
    static const unsigned char plain[] = {0x20, 0x21, 0x23, 0x5b, 0x5d,
                                          0x7f, 0x80, 0xc3, 0xff, 'A'};
    unsigned char buf[40];
    size_t len, at, k, bad = 0;
    for (len = 0; len <= sizeof buf; len++)
        for (at = 0; at <= len; at++)
            for (k = 0; k < sizeof specials; k++) {
                size_t i, want = len, got;
                for (i = 0; i < len; i++)
                    buf[i] = plain[(i * 7 + k) % sizeof plain];
                if (at < len) {
                    buf[at] = specials[k];
                    want = at;
                    if (at + 1 < len) /* a second one after it */
                        buf[len - 1] = specials[(k + 1) % sizeof specials];
                }
                got = eng_json_plain_run((const char *)buf, len);
                bad += got != want;
            }
    CU_ASSERT_EQUAL(bad, 0);
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
    TU_ADD(s, test_numbers_random);
    TU_ADD(s, test_plain_run);
    TU_ADD(s, test_capture);
    TU_ADD(s, test_arena);
    TU_ADD(s, test_arena_overflow);
    return tu_run();
}
