/* RFC 8785 canonical JSON: the number forms of ECMAScript (the RFC's
 * appendix B values, as V8's JSON.stringify prints them), member order by
 * UTF-16 code units, JSON.stringify's string escaping. */
#include "config.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>

#include <signer/plugin.h>

#include "jcs.h"
#include "json.h"

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void test_numbers_rfc8785(void)
{
    static const struct {
        uint64_t bits;
        const char *text;
    } v[] = {
        {0x0000000000000000ULL, "0"},
        {0x8000000000000000ULL, "0"},
        {0x0000000000000001ULL, "5e-324"},
        {0x8000000000000001ULL, "-5e-324"},
        {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
        {0xffefffffffffffffULL, "-1.7976931348623157e+308"},
        {0x4340000000000000ULL, "9007199254740992"},
        {0xc340000000000000ULL, "-9007199254740992"},
        {0x4430000000000000ULL, "295147905179352830000"},
        {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
        {0x44b52d02c7e14af6ULL, "1e+23"},
        {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
        {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
        {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
        {0x444b1ae4d6e2ef50ULL, "1e+21"},
        {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
        {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
        {0x41b3de4355555553ULL, "333333333.3333332"},
        {0x41b3de4355555554ULL, "333333333.33333325"},
        {0x41b3de4355555555ULL, "333333333.3333333"},
        {0x41b3de4355555556ULL, "333333333.3333334"},
        {0x41b3de4355555557ULL, "333333333.33333343"},
        {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
        {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
    };
    char out[ENG_JCS_NUMBER_MAX];
    size_t i;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        CU_ASSERT_EQUAL(eng_jcs_number(out, from_bits(v[i].bits)), SIGNER_OK);
        if (strcmp(out, v[i].text) != 0)
            fprintf(stderr, "\n%016llx: got %s want %s\n",
                    (unsigned long long)v[i].bits, out, v[i].text);
        CU_ASSERT_STRING_EQUAL(out, v[i].text);
    }
    CU_ASSERT_EQUAL(eng_jcs_number(out, NAN), SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(eng_jcs_number(out, INFINITY), SIGNER_ERR_BAD_REQUEST);
}

/* Canonical text of a strict-parsed JSON text. */
static char *canon(const char *text)
{
    cJSON *v = NULL;
    eng_json_error e;
    char *out = NULL;
    CU_ASSERT_EQUAL_FATAL(eng_json_parse(&v, NULL, text, strlen(text), 100,
                                         &e),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(eng_jcs_serialize(&out, NULL, v), SIGNER_OK);
    eng_json_free(v);
    return out;
}

static void expect_canon(const char *in, const char *want)
{
    char *got = canon(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n%s -> %s, want %s\n", in, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

/* What JSON.stringify prints for values spelled otherwise. */
static void test_number_spellings(void)
{
    expect_canon("[0.1e1, 1E-7, 0.0000001, 1000000000000000000000, 1e15,"
                 " 0.30000000000000004, 3.0, -0.0, 1e-6, 123456789012e-3]",
                 "[1,1e-7,1e-7,1e+21,1000000000000000,0.30000000000000004,"
                 "3,0,0.000001,123456789.012]");
    /* 2^53 + 1 has no double: it reads as 2^53. */
    expect_canon("[9007199254740993]", "[9007199254740992]");
}

/* Next to a power of two the interval that reads back as the value is
 * narrower below: the closest 16 digits miss and the next ones up are
 * ECMAScript's answer (V8 prints these). */
static void test_power_of_two_boundaries(void)
{
    static const struct {
        int exp;
        const char *text;
    } v[] = {
        {-1017, "7.120236347223045e-307"},
        {-1007, "7.291122019556398e-304"},
        {-957, "8.209073602596753e-289"},
        {-1074, "5e-324"},
        {1023, "8.98846567431158e+307"},
        {-1, "0.5"},
    };
    char out[ENG_JCS_NUMBER_MAX];
    size_t i;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        CU_ASSERT_EQUAL(eng_jcs_number(out, ldexp(1.0, v[i].exp)), SIGNER_OK);
        if (strcmp(out, v[i].text) != 0)
            fprintf(stderr, "\n2^%d: got %s want %s\n", v[i].exp, out,
                    v[i].text);
        CU_ASSERT_STRING_EQUAL(out, v[i].text);
    }
}

/* Values one ULP apart canonicalise differently (the old %1.15g did not). */
static void test_one_ulp(void)
{
    char a[ENG_JCS_NUMBER_MAX], b[ENG_JCS_NUMBER_MAX];
    double x = 0.1 + 0.2;
    CU_ASSERT_EQUAL(eng_jcs_number(a, x), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_jcs_number(b, nextafter(x, 1.0)), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(a, "0.30000000000000004");
    CU_ASSERT_STRING_EQUAL(b, "0.3000000000000001");
    CU_ASSERT_EQUAL(eng_jcs_number(a, 1e300), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_jcs_number(b, nextafter(1e300, 0)), SIGNER_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

static void test_order_and_strings(void)
{
    /* RFC 8785 section 3.2.3: UTF-16 order puts U+1F600 (a surrogate
     * pair, D83D...) before U+FB33 and after U+00E9... */
    expect_canon("{\"\\ufb33\":1,\"\\ud83d\\ude00\":2,\"\\u00e9\":3,"
                 "\"a\":4,\"\\r\":5,\"1\":6,\"10\":7,\"2\":8}",
                 "{\"\\r\":5,\"1\":6,\"10\":7,\"2\":8,\"a\":4,"
                 "\"\xc3\xa9\":3,\"\xf0\x9f\x98\x80\":2,\"\xef\xac\xb3\":1}");
    /* JSON.stringify's escapes: short forms, \u00xx for other controls,
     * '/' and U+007F and U+2028 as they are. */
    expect_canon("[\"\\u0008\\t\\n\\f\\r\\u001f\\\"\\\\\\/\\u007f\\u2028\"]",
                 "[\"\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\x7f\xe2\x80\xa8\"]");
    expect_canon(" { \"b\" : [ true , false , null , {} , [] ] , \"a\" : \"\" } ",
                 "{\"a\":\"\",\"b\":[true,false,null,{},[]]}");
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("jcs", NULL, NULL);
    TU_ADD(s, test_numbers_rfc8785);
    TU_ADD(s, test_number_spellings);
    TU_ADD(s, test_one_ulp);
    TU_ADD(s, test_power_of_two_boundaries);
    TU_ADD(s, test_order_and_strings);
    return tu_run();
}
