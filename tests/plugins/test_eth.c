/*
 * Unit tests of the Ethereum plugin against the mock host.
 *
 * Sources of the expected values:
 *   - Keccak-256: "" and "abc" (Keccak team / Ethereum yellow paper usage),
 *     200 x 0xa3 (Keccak KAT), others cross-checked with ethers v6.15.0
 *     keccak256;
 *   - RLP: ethereum/tests RLPTests/rlptest.json;
 *   - EIP-155: the example in the EIP's text;
 *   - EIP-55: the EIP's examples;
 *   - the seed README: its set_key eth_key, and its sign_transaction request
 *     and response (the response was produced by that very key);
 *   - typed transactions, userOp and personal_sign signatures: ethers v6.15.0
 *     (Wallet.signTransaction / SigningKey.sign / Wallet.signMessage) with
 *     key 0x4646...46.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "../../plugins/eth/eth.h"
#include "mock_host.h"

static mock_host *M;
static secp256k1_context *SECP; /* for key derivation in the tests */
static const signer_plugin *P;
static void *CTX;

#define SECRET "5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d"
#define KEY46 "4646464646464646464646464646464646464646464646464646464646464646"
#define ADDR46 "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
#define SEED_KEY "6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a"
#define SEED_ADDR "0xe06C2c216fC36E2d40fB0199623032CC17b3B41b"

/* ---- helpers --------------------------------------------------------------- */

static void hex2bin(unsigned char *out, const char *hex)
{
    size_t i, n = strlen(hex) / 2;

    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static void bin2hex(char *out, const unsigned char *in, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
    out[2 * len] = '\0';
}

/* Runs op; returns the parsed result object (caller deletes) and status. */
static cJSON *run(const char *op, const char *payload, int *status)
{
    char *res = NULL;
    cJSON *j;

    mock_call(M, P, CTX, op, payload, &res, status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    j = cJSON_Parse(res);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    free(res);
    /* every path must give back its secure memory */
    CU_ASSERT_EQUAL(mock_host_secure_live(M), 0);
    return j;
}

static const char *field(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Imports a key; returns its key_id in out[37]. */
static void import_key(char out[37], const char *hexkey, const char *secret)
{
    char payload[512];
    int status;
    cJSON *j;

    snprintf(payload, sizeof payload, "{\"eth_key\":\"%s\",\"secret\":\"%s\"}",
             hexkey, secret);
    j = run("set_key", payload, &status);
    CU_ASSERT_EQUAL_FATAL(status, 200);
    snprintf(out, 37, "%s", field(j, "key_id"));
    CU_ASSERT_EQUAL(strlen(out), 36);
    cJSON_Delete(j);
}

static char KID46[37], KIDSEED[37];

/* sign_transaction with transaction_payload tp for key kid. */
static cJSON *sign_tx(const char *kid, const char *tp, int *status)
{
    size_t n = strlen(tp) + 256;
    char *payload = malloc(n);
    cJSON *j;

    snprintf(payload, n,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction_payload\":%s}",
             kid, tp);
    j = run("sign_transaction", payload, status);
    free(payload);
    return j;
}

/* Expects a signed tx with exactly the given hex and hash. */
static void expect_tx(const char *tp, const char *signed_hex,
                      const char *hash_hex)
{
    int status;
    cJSON *j = sign_tx(KID46, tp, &status);

    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(field(j, "transaction_signed"), signed_hex);
    if (hash_hex != NULL) {
        CU_ASSERT_STRING_EQUAL(field(j, "transaction_hash"), hash_hex);
    }
    if (status != 200 || strcmp(field(j, "transaction_signed"), signed_hex))
        fprintf(stderr, "\n  tp=%s\n  got=%s\n", tp, cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
}

/* Expects a 400 whose message contains want. */
static void expect_tx_error(const char *tp, const char *want)
{
    int status;
    long opens = mock_host_key_open_calls(M);
    cJSON *j = sign_tx(KID46, tp, &status);
    const char *msg = field(j, "error");

    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    /* validation happens before the key is unsealed */
    CU_ASSERT_EQUAL(mock_host_key_open_calls(M), opens);
    if (status != 400 || strstr(msg, want) == NULL)
        fprintf(stderr, "\n  tp=%s\n  status=%d msg=%s (want %s)\n", tp,
                status, msg, want);
    cJSON_Delete(j);
}

/* ---- suite setup ------------------------------------------------------------ */

static int suite_init(void)
{
    M = mock_host_new();
    if (M == NULL)
        return -1;
    if (signer_plugin_init(mock_host_get(M), &P, &CTX) != SIGNER_OK)
        return -1;
    return 0;
}

static int suite_clean(void)
{
    if (P != NULL && P->cleanup != NULL)
        P->cleanup(CTX);
    mock_host_free(M);
    return 0;
}

/* ---- Keccak ------------------------------------------------------------------- */

static void check_keccak(const void *in, size_t len, const char *want)
{
    unsigned char h[32];
    char hex[65];

    eth_keccak256(h, in, len);
    bin2hex(hex, h, 32);
    CU_ASSERT_STRING_EQUAL(hex, want);
}

static void test_keccak_vectors(void)
{
    unsigned char a3[200], buf[272];

    check_keccak("", 0,
                 "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    check_keccak("abc", 3,
                 "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    check_keccak("The quick brown fox jumps over the lazy dog", 43,
                 "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15");
    memset(a3, 0xa3, sizeof a3); /* crosses the 136-byte rate */
    check_keccak(a3, 200,
                 "3a57666b048777f2c953dc4456f45a2588e1cb6f2da760122d530ac2ce607d4a");
    memset(buf, 'a', sizeof buf);
    /* padding edge cases: 0x81 in one byte, full padding block, ... */
    check_keccak(buf, 135,
                 "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446");
    check_keccak(buf, 136,
                 "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e");
    check_keccak(buf, 137,
                 "d869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd484f1915f39");
    check_keccak(buf, 272,
                 "cf7fcd4f705ee749930d19ca84561a9bf62516bd90a471545fa2f49fdc7e63c8");
}

static void test_keccak_incremental(void)
{
    static unsigned char big[100000];
    unsigned char h1[32], h2[32];
    char hex[65];
    size_t i, off, step;
    eth_keccak k;

    for (i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)i;
    eth_keccak256(h1, big, sizeof big);
    bin2hex(hex, h1, 32);
    CU_ASSERT_STRING_EQUAL(
        hex, "2243a1fc1e4d9e7e63955159edad3b6d5b4bdcdbde72df78788e1fb97efbcaf8");
    for (step = 1; step < 300; step += 37) {
        eth_keccak_init(&k);
        for (off = 0; off < sizeof big; off += step)
            eth_keccak_update(&k, big + off,
                              sizeof big - off < step ? sizeof big - off : step);
        eth_keccak_final(&k, h2);
        CU_ASSERT_EQUAL(memcmp(h1, h2, 32), 0);
    }
}

/* Every message length from 32 to 451 bytes (one to four blocks, each
 * padding case at the 136-byte boundaries), absorbed in three updates that
 * split the message at varying offsets: h_0 = 32 zero bytes,
 * h_{n+1} = keccak256(h_n || m[0..n)) with m[i] = (7i + 3) mod 256.
 * Expected h_420 from ethers v6 keccak256 (the same chain in node). */
static void test_keccak_chain(void)
{
    unsigned char m[420], h[32];
    char hex[65];
    size_t i, n;
    eth_keccak k;

    for (i = 0; i < sizeof m; i++)
        m[i] = (unsigned char)(7 * i + 3);
    memset(h, 0, sizeof h);
    for (n = 0; n < sizeof m; n++) {
        eth_keccak_init(&k);
        eth_keccak_update(&k, h, sizeof h);
        eth_keccak_update(&k, m, n / 3);
        eth_keccak_update(&k, m + n / 3, n - n / 3);
        eth_keccak_final(&k, h);
    }
    bin2hex(hex, h, 32);
    CU_ASSERT_STRING_EQUAL(
        hex, "112e2a5482665a102eba981aea1962460fad50bc44fc0ad4978170a8d6ccf222");
}

/* ---- hex / u256 ------------------------------------------------------------- */

static void test_hex(void)
{
    unsigned char out[4];

    CU_ASSERT_EQUAL(eth_hex_decode(out, "00fFaB19", 8), 1);
    CU_ASSERT_EQUAL(out[0], 0x00);
    CU_ASSERT_EQUAL(out[1], 0xff);
    CU_ASSERT_EQUAL(out[2], 0xab);
    CU_ASSERT_EQUAL(out[3], 0x19);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "0g", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "g0", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "0:", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "/0", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "@0", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "`0", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "G0", 2), 0);
    CU_ASSERT_EQUAL(eth_hex_decode(out, "abc", 3), 0);
    CU_ASSERT_EQUAL(eth_hex_is_digits("09afAF", 6), 1);
    CU_ASSERT_EQUAL(eth_hex_is_digits("x", 1), 0);
}

/* Hex encoding (four bytes at a time, then byte by byte) gives what
 * printf's %02x gives, for every byte value at every position and every
 * length up to 40, and writes nothing past its 2 * len digits. */
static void test_hex_encode(void)
{
    unsigned char in[40];
    char out[2 * 40 + 8], want[2 * 40 + 1];
    size_t len, i, k, bad = 0;

    for (k = 0; k < 256; k++)
        for (len = 0; len <= sizeof in; len++) {
            for (i = 0; i < len; i++)
                in[i] = (unsigned char)(k + i * 37);
            for (i = 0; i < len; i++)
                snprintf(want + 2 * i, 3, "%02x", in[i]);
            memset(out, '#', sizeof out);
            eth_hex_raw(out, in, len);
            bad += memcmp(out, want, 2 * len) != 0 || out[2 * len] != '#';
        }
    CU_ASSERT_EQUAL(bad, 0);
    in[0] = 0x0a;
    in[1] = 0x2f;
    in[2] = 0x54;
    CU_ASSERT_EQUAL(eth_hex_encode(out, in, 3), 8);
    CU_ASSERT_STRING_EQUAL(out, "0x0a2f54");
}

/* The table decoder for public data agrees with the constant-time one on
 * every pair of bytes. */
static void test_hex_public(void)
{
    unsigned char a[1], b[1];
    char pair[2];
    int hi, lo, bad = 0;

    for (hi = 1; hi < 256; hi++)
        for (lo = 1; lo < 256; lo++) {
            int ra, rb;
            pair[0] = (char)hi;
            pair[1] = (char)lo;
            a[0] = b[0] = 0x5a;
            ra = eth_hex_decode(a, pair, 2);
            rb = eth_hex_decode_public(b, pair, 2);
            if (ra != rb || a[0] != b[0])
                bad++;
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(eth_hex_decode_public(a, "abc", 3), 0);
}

static void u256_hex(char *out, const eth_u256 *a)
{
    unsigned char be[32];
    size_t n = eth_u256_to_be(be, a);

    bin2hex(out, be, n);
}

static void test_u256(void)
{
    eth_u256 a;
    char hex[65];

    CU_ASSERT_EQUAL(eth_u256_parse_dec(&a, "1000", 4), ETH_NUM_OK);
    u256_hex(hex, &a);
    CU_ASSERT_STRING_EQUAL(hex, "03e8");
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&a, "0", 1), ETH_NUM_OK);
    u256_hex(hex, &a);
    CU_ASSERT_STRING_EQUAL(hex, "");
    /* 2^256 - 1 and 2^256 */
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&a,
        "115792089237316195423570985008687907853269984665640564039457584007913129639935",
        78), ETH_NUM_OK);
    u256_hex(hex, &a);
    CU_ASSERT_STRING_EQUAL(hex, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&a,
        "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        78), ETH_NUM_RANGE);
    CU_ASSERT_EQUAL(eth_u256_parse_hex(&a,
        "000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 67),
        ETH_NUM_OK);
    CU_ASSERT_EQUAL(eth_u256_parse_hex(&a,
        "10000000000000000000000000000000000000000000000000000000000000000", 65),
        ETH_NUM_RANGE);
    CU_ASSERT_EQUAL(eth_u256_parse_hex(&a, "", 0), ETH_NUM_SYNTAX);
    CU_ASSERT_EQUAL(eth_u256_parse_hex(&a, "1g", 2), ETH_NUM_SYNTAX);
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&a, "12a", 3), ETH_NUM_SYNTAX);
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&a, "-1", 2), ETH_NUM_SYNTAX);
    CU_ASSERT_EQUAL(eth_u256_parse_hex(&a, "DeadBeef", 8), ETH_NUM_OK);
    u256_hex(hex, &a);
    CU_ASSERT_STRING_EQUAL(hex, "deadbeef");
}

static void check_ether(double d, int want_st, const char *want_hex)
{
    eth_u256 a;
    char hex[65];
    int st = eth_u256_from_ether(&a, d);

    CU_ASSERT_EQUAL(st, want_st);
    if (want_hex != NULL) {
        u256_hex(hex, &a);
        CU_ASSERT_STRING_EQUAL(hex, want_hex);
    }
}

static void test_ether(void)
{
    check_ether(0.01, ETH_NUM_OK, "2386f26fc10000");     /* 10^16 */
    check_ether(1, ETH_NUM_OK, "0de0b6b3a7640000");      /* 10^18 */
    check_ether(0, ETH_NUM_OK, "");
    check_ether(1e-18, ETH_NUM_OK, "01");
    check_ether(1.5, ETH_NUM_OK, "14d1120d7b160000");    /* 1.5e18 */
    check_ether(0.1 + 0.2, ETH_NUM_OK, "0429d069189e0028"); /* 300000000000000040 */
    check_ether(123456.789, ETH_NUM_OK, "1a249b1f0565f8c88000"); /* 1.23456789e23 */
    check_ether(1e-19, ETH_NUM_FRACTION, NULL);
    check_ether(1.0000000000000002e-18, ETH_NUM_FRACTION, NULL);
    check_ether(-1, ETH_NUM_SYNTAX, NULL);
    check_ether(1e300, ETH_NUM_RANGE, NULL);
}

/* The fast path agrees with the reference (shortest printf form) on typed
 * amounts of 1 to 17 digits at every scale, and on random doubles. */
static void test_ether_fast(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    /* fewer under valgrind (make check runs the full count) */
    int i, bad = 0, n = getenv("SIGNER_VALGRIND") != NULL ? 20000 : 200000;

    for (i = 0; i < n; i++) {
        eth_u256 a, b;
        char text[64];
        double d;
        int sa, sb;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (i % 2 == 0) { /* a decimal someone typed */
            snprintf(text, sizeof text, "%llue%d",
                     (unsigned long long)(x % 100000000000000000ull) >>
                         (x >> 58),
                     (int)((x >> 40) % 36) - 30);
            d = strtod(text, NULL);
        } else { /* any double up to 2^53 */
            uint64_t bits =
                (x >> 12) | ((uint64_t)(970 + (x >> 52) % 83) << 52);
            memcpy(&d, &bits, sizeof d);
        }
        if (!(d <= 9007199254740991.0))
            continue;
        sa = eth_u256_from_ether(&a, d);
        sb = eth_u256_from_ether_shortest(&b, d);
        if (sa != sb || (sa == ETH_NUM_OK && eth_u256_cmp(&a, &b) != 0)) {
            if (bad++ < 5)
                fprintf(stderr, "\nfrom_ether(%.17g): fast and reference "
                                "differ\n", d);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- RLP ---------------------------------------------------------------------- */

static void rlp_expect(eth_buf *b, const char *want)
{
    char *hex = malloc(2 * b->len + 1);

    bin2hex(hex, b->p, b->len);
    CU_ASSERT_STRING_EQUAL(hex, want);
    free(hex);
    b->len = 0;
}

static int rlp_str(eth_buf *b, const char *s)
{
    return eth_rlp_bytes(b, (const unsigned char *)s, strlen(s));
}

static void test_rlp_vectors(void)
{
    unsigned char stack[64];
    eth_buf b;
    eth_u256 u;
    size_t l1, l2, l3, i;
    const unsigned char zero = 0, one = 1, x7f = 0x7f;
    char *want;

    eth_buf_init(&b, stack, sizeof stack);
    CU_ASSERT(eth_rlp_bytes(&b, NULL, 0));
    rlp_expect(&b, "80");
    CU_ASSERT(eth_rlp_bytes(&b, &zero, 1));
    rlp_expect(&b, "00");
    CU_ASSERT(eth_rlp_bytes(&b, &one, 1));
    rlp_expect(&b, "01");
    CU_ASSERT(eth_rlp_bytes(&b, &x7f, 1));
    rlp_expect(&b, "7f");
    CU_ASSERT(rlp_str(&b, "dog"));
    rlp_expect(&b, "83646f67");
    CU_ASSERT(rlp_str(&b, "Lorem ipsum dolor sit amet, consectetur adipisicing eli"));
    rlp_expect(&b, "b74c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c69");
    CU_ASSERT(rlp_str(&b, "Lorem ipsum dolor sit amet, consectetur adipisicing elit"));
    rlp_expect(&b, "b8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974");

    /* integers */
    CU_ASSERT(eth_rlp_u64(&b, 0));
    rlp_expect(&b, "80");
    CU_ASSERT(eth_rlp_u64(&b, 1));
    rlp_expect(&b, "01");
    CU_ASSERT(eth_rlp_u64(&b, 15));
    rlp_expect(&b, "0f");
    CU_ASSERT(eth_rlp_u64(&b, 16));
    rlp_expect(&b, "10");
    CU_ASSERT(eth_rlp_u64(&b, 79));
    rlp_expect(&b, "4f");
    CU_ASSERT(eth_rlp_u64(&b, 127));
    rlp_expect(&b, "7f");
    CU_ASSERT(eth_rlp_u64(&b, 128));
    rlp_expect(&b, "8180");
    CU_ASSERT(eth_rlp_u64(&b, 1000));
    rlp_expect(&b, "8203e8");
    CU_ASSERT(eth_rlp_u64(&b, 1024));
    rlp_expect(&b, "820400");
    CU_ASSERT(eth_rlp_u64(&b, 100000));
    rlp_expect(&b, "830186a0");
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&u, "83729609699884896815286331701780722", 35), ETH_NUM_OK);
    CU_ASSERT(eth_rlp_u256(&b, &u));
    rlp_expect(&b, "8f102030405060708090a0b0c0d0e0f2");
    CU_ASSERT_EQUAL(eth_u256_parse_dec(&u, "105315505618206987246253880190783558935785933862974822347068935681", 66), ETH_NUM_OK);
    CU_ASSERT(eth_rlp_u256(&b, &u));
    rlp_expect(&b, "9c0100020003000400050006000700080009000a000b000c000d000e01");
    CU_ASSERT_EQUAL(eth_u256_parse_hex(&u, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 64), ETH_NUM_OK);
    CU_ASSERT(eth_rlp_u256(&b, &u));
    rlp_expect(&b, "a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");

    /* lists */
    l1 = eth_rlp_list_begin(&b);
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    rlp_expect(&b, "c0");
    l1 = eth_rlp_list_begin(&b);
    CU_ASSERT(rlp_str(&b, "cat") && rlp_str(&b, "dog"));
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    rlp_expect(&b, "c88363617483646f67");
    l1 = eth_rlp_list_begin(&b);
    CU_ASSERT(rlp_str(&b, "dog") && rlp_str(&b, "god") && rlp_str(&b, "cat"));
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    rlp_expect(&b, "cc83646f6783676f6483636174");
    /* multilist ["zw", [4], 1] */
    l1 = eth_rlp_list_begin(&b);
    CU_ASSERT(rlp_str(&b, "zw"));
    l2 = eth_rlp_list_begin(&b);
    CU_ASSERT(eth_rlp_u64(&b, 4));
    CU_ASSERT(eth_rlp_list_end(&b, l2));
    CU_ASSERT(eth_rlp_u64(&b, 1));
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    rlp_expect(&b, "c6827a77c10401");
    /* listsoflists2 [ [], [[]], [ [], [[]] ] ] */
    l1 = eth_rlp_list_begin(&b);
    l2 = eth_rlp_list_begin(&b);
    CU_ASSERT(eth_rlp_list_end(&b, l2));
    l2 = eth_rlp_list_begin(&b);
    l3 = eth_rlp_list_begin(&b);
    CU_ASSERT(eth_rlp_list_end(&b, l3));
    CU_ASSERT(eth_rlp_list_end(&b, l2));
    l2 = eth_rlp_list_begin(&b);
    l3 = eth_rlp_list_begin(&b);
    CU_ASSERT(eth_rlp_list_end(&b, l3));
    l3 = eth_rlp_list_begin(&b);
    {
        size_t l4 = eth_rlp_list_begin(&b);
        CU_ASSERT(eth_rlp_list_end(&b, l4));
    }
    CU_ASSERT(eth_rlp_list_end(&b, l3));
    CU_ASSERT(eth_rlp_list_end(&b, l2));
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    rlp_expect(&b, "c7c0c1c0c3c0c1c0");
    /* shortListMax1: payload of exactly 55 bytes */
    l1 = eth_rlp_list_begin(&b);
    for (i = 0; i < 11; i++)
        CU_ASSERT(rlp_str(&b, i % 3 == 0 ? "asdf" : i % 3 == 1 ? "qwer" : "zxcv"));
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    rlp_expect(&b, "f784617364668471776572847a78637684617364668471776572847a78637684617364668471776572847a78637684617364668471776572");
    /* longList2: 32 x [asdf, qwer, zxcv] -> f90200 ...; grows to the heap */
    l1 = eth_rlp_list_begin(&b);
    for (i = 0; i < 32; i++) {
        l2 = eth_rlp_list_begin(&b);
        CU_ASSERT(rlp_str(&b, "asdf") && rlp_str(&b, "qwer") && rlp_str(&b, "zxcv"));
        CU_ASSERT(eth_rlp_list_end(&b, l2));
    }
    CU_ASSERT(eth_rlp_list_end(&b, l1));
    want = malloc(6 + 32 * 32 + 1);
    strcpy(want, "f90200");
    for (i = 0; i < 32; i++)
        strcat(want, "cf84617364668471776572847a786376");
    rlp_expect(&b, want);
    free(want);
    /* a hex string decoded in place; single byte < 0x80 is itself */
    CU_ASSERT(eth_rlp_hex(&b, "7f", 2));
    rlp_expect(&b, "7f");
    CU_ASSERT(eth_rlp_hex(&b, "80", 2));
    rlp_expect(&b, "8180");
    CU_ASSERT(eth_rlp_hex(&b, "", 0));
    rlp_expect(&b, "80");
    CU_ASSERT_FALSE(eth_rlp_hex(&b, "zz", 2));
    eth_buf_cleanup(&b);
}

/* ---- addresses --------------------------------------------------------------- */

static void check_eip55(const char *text)
{
    unsigned char a[20];
    char out[ETH_ADDR_TEXT], lower[64], upper[64];
    size_t i;

    CU_ASSERT_EQUAL(eth_addr_parse(a, text, strlen(text)), ETH_ADDR_OK);
    eth_addr_checksum(out, a);
    CU_ASSERT_STRING_EQUAL(out, text);
    /* single-case forms are accepted, with or without 0x */
    for (i = 0; text[i]; i++) {
        lower[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] + 32 : text[i]);
        upper[i] = (char)(text[i] >= 'a' && text[i] <= 'f' ? text[i] - 32 : text[i]);
    }
    lower[i] = upper[i] = '\0';
    CU_ASSERT_EQUAL(eth_addr_parse(a, lower, strlen(lower)), ETH_ADDR_OK);
    CU_ASSERT_EQUAL(eth_addr_parse(a, upper, strlen(upper)), ETH_ADDR_OK);
    CU_ASSERT_EQUAL(eth_addr_parse(a, lower + 2, strlen(lower) - 2), ETH_ADDR_OK);
    /* flip the case of one letter: bad checksum */
    for (i = 2; text[i]; i++) {
        if ((text[i] >= 'a' && text[i] <= 'f') || (text[i] >= 'A' && text[i] <= 'F')) {
            char bad[64];
            strcpy(bad, text);
            bad[i] = (char)(bad[i] ^ 32);
            CU_ASSERT_EQUAL(eth_addr_parse(a, bad, strlen(bad)), ETH_ADDR_CHECKSUM);
            break;
        }
    }
}

static void test_addresses(void)
{
    const secp256k1_context *ctx = SECP;
    unsigned char key[32], a[20];
    char text[ETH_ADDR_TEXT];

    check_eip55("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    check_eip55("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
    check_eip55("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB");
    check_eip55("0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb");
    check_eip55(ADDR46);
    CU_ASSERT_EQUAL(eth_addr_parse(a, "0x1234", 6), ETH_ADDR_SYNTAX);
    CU_ASSERT_EQUAL(eth_addr_parse(a, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", 42), ETH_ADDR_SYNTAX);
    CU_ASSERT_EQUAL(eth_addr_parse(a, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00", 44), ETH_ADDR_SYNTAX);

    hex2bin(key, KEY46);
    CU_ASSERT(eth_addr_from_seckey(ctx, a, key));
    eth_addr_checksum(text, a);
    CU_ASSERT_STRING_EQUAL(text, ADDR46);
    hex2bin(key, SEED_KEY);
    CU_ASSERT(eth_addr_from_seckey(ctx, a, key));
    eth_addr_checksum(text, a);
    CU_ASSERT_STRING_EQUAL(text, SEED_ADDR);
    memset(key, 0, 32);
    CU_ASSERT_FALSE(eth_addr_from_seckey(ctx, a, key));
}

/* ---- transactions at the eth_tx level --------------------------------------- */

static void test_eip155_sighash(void)
{
    const char *tp =
        "{\"type\":0,\"nonce\":9,\"gasPrice\":\"20000000000\",\"gas\":21000,"
        "\"to\":\"0x3535353535353535353535353535353535353535\","
        "\"value\":\"1000000000000000000\",\"chainId\":1}";
    const signer_host *h = mock_host_get(M);
    cJSON *j = cJSON_Parse(tp);
    unsigned char stack[256], hash[32];
    char err[256], hex[65];
    eth_buf b;
    eth_tx tx;

    CU_ASSERT_EQUAL_FATAL(eth_tx_parse(&tx, err, sizeof err, h,
                                       (const signer_json *)j), SIGNER_OK);
    eth_buf_init(&b, stack, sizeof stack);
    CU_ASSERT(eth_tx_body(&b, h, &tx));
    CU_ASSERT(eth_tx_sighash(hash, &b, &tx));
    bin2hex(hex, hash, 32);
    CU_ASSERT_STRING_EQUAL(
        hex, "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53");
    eth_buf_cleanup(&b);
    cJSON_Delete(j);
}

/* EIP-2681: the largest nonce is 2^64-2; it parses and is encoded as an
 * 8-byte RLP string (2^64-1 is refused in test_tx_field_errors). */
static void test_nonce_eip2681(void)
{
    const char *tp =
        "{\"type\":0,\"nonce\":\"0xfffffffffffffffe\",\"gasPrice\":1,\"gas\":21000,"
        "\"to\":\"0x3535353535353535353535353535353535353535\",\"value\":0,"
        "\"chainId\":1}";
    const signer_host *h = mock_host_get(M);
    cJSON *j = cJSON_Parse(tp);
    unsigned char stack[256];
    char err[256];
    eth_buf b;
    eth_tx tx;

    CU_ASSERT_EQUAL_FATAL(eth_tx_parse(&tx, err, sizeof err, h,
                                       (const signer_json *)j), SIGNER_OK);
    CU_ASSERT_EQUAL(tx.nonce.w[0], UINT64_MAX - 1);
    eth_buf_init(&b, stack, sizeof stack);
    CU_ASSERT_FATAL(eth_tx_body(&b, h, &tx));
    /* the body (no list header) starts with the nonce: 0x88, 8 bytes */
    CU_ASSERT_FATAL(b.len > 9);
    CU_ASSERT_EQUAL(b.p[0], 0x88);
    CU_ASSERT_EQUAL(memcmp(b.p + 1, "\xff\xff\xff\xff\xff\xff\xff\xfe", 8), 0);
    eth_buf_cleanup(&b);
    cJSON_Delete(j);
}

/* ---- plugin: keys ---------------------------------------------------------------- */

static void test_init_and_table(void)
{
    const signer_op *o;
    int n = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(P);
    CU_ASSERT_STRING_EQUAL(P->name, "eth");
    CU_ASSERT_EQUAL(signer_plugin_check(P), SIGNER_OK);
    for (o = P->ops; o->name != NULL; o++)
        n++;
    CU_ASSERT_EQUAL(n, 8); /* 7 signing ops + rpc (eth_rpc.c) */
    CU_ASSERT_EQUAL(signer_plugin_init(NULL, NULL, NULL), SIGNER_ERR_INTERNAL);
    {
        signer_host bad = *mock_host_get(M);
        const signer_plugin *p2;
        void *c2;
        bad.abi_major = 2;
        CU_ASSERT_EQUAL(signer_plugin_init(&bad, &p2, &c2), SIGNER_ERR_ABI);
        bad.abi_major = SIGNER_ABI_MAJOR;
        bad.struct_size = 16;
        CU_ASSERT_EQUAL(signer_plugin_init(&bad, &p2, &c2), SIGNER_ERR_ABI);
    }
    /* init fails cleanly when entropy fails */
    {
        mock_host *m2 = mock_host_new();
        const signer_plugin *p2 = NULL;
        void *c2 = NULL;
        mock_host_set_random_fail(m2, 1);
        CU_ASSERT_NOT_EQUAL(signer_plugin_init(mock_host_get(m2), &p2, &c2), SIGNER_OK);
        CU_ASSERT_PTR_NULL(p2);
        CU_ASSERT_PTR_NULL(c2);
        mock_host_free(m2);
    }
}

static void test_set_key(void)
{
    char addr[64];
    unsigned char key[64];
    size_t klen = 0;

    import_key(KID46, KEY46, SECRET);
    import_key(KIDSEED, "0x" SEED_KEY, SECRET);
    CU_ASSERT(mock_host_key_find(M, KID46, NULL, 0, addr, sizeof addr, key,
                                 sizeof key, &klen));
    CU_ASSERT_STRING_EQUAL(addr, ADDR46);
    CU_ASSERT_EQUAL(klen, 32);
    CU_ASSERT(mock_host_key_find(M, KIDSEED, NULL, 0, addr, sizeof addr, NULL,
                                 0, NULL));
    CU_ASSERT_STRING_EQUAL(addr, SEED_ADDR);
}

static void test_set_key_errors(void)
{
    static const char *const bad_keys[] = {
        "\"\"",
        "\"464646464646464646464646464646464646464646464646464646464646464\"", /* 63 */
        "\"46464646464646464646464646464646464646464646464646464646464646460\"", /* 65 */
        "\"g646464646464646464646464646464646464646464646464646464646464646\"",
        "\"0000000000000000000000000000000000000000000000000000000000000000\"", /* 0 */
        "\"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141\"", /* n */
        "\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"",
        "1234",
        "null",
    };
    char payload[256];
    size_t i, before = mock_host_key_count(M);
    int status;
    cJSON *j;

    for (i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        snprintf(payload, sizeof payload,
                 "{\"eth_key\":%s,\"secret\":\"" SECRET "\"}", bad_keys[i]);
        j = run("set_key", payload, &status);
        CU_ASSERT_EQUAL(status, 400);
        CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "eth_key"));
        /* the value is never echoed */
        if (strlen(bad_keys[i]) > 10)
            CU_ASSERT_PTR_NULL(strstr(field(j, "error"), "464646"));
        cJSON_Delete(j);
    }
    /* n - 1 is the largest valid key */
    j = run("set_key",
            "{\"eth_key\":\"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140\","
            "\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 200);
    cJSON_Delete(j);
    before++;
    /* missing key, bad secret, unknown field */
    j = run("set_key", "{\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "eth_key"));
    cJSON_Delete(j);
    j = run("set_key", "{\"eth_key\":\"" KEY46 "\",\"secret\":\"short\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "secret"));
    cJSON_Delete(j);
    j = run("set_key", "{\"eth_key\":\"" KEY46 "\",\"secret\":\"" SECRET "\",\"extra\":1}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "extra"));
    cJSON_Delete(j);
    j = run("set_key", "[1]", &status);
    CU_ASSERT_EQUAL(status, 400);
    cJSON_Delete(j);
    /* keystore failure is passed through */
    mock_host_fail_next_key_create(M, SIGNER_ERR_CONFLICT);
    j = run("set_key", "{\"eth_key\":\"" KEY46 "\",\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 409);
    cJSON_Delete(j);
    CU_ASSERT_EQUAL(mock_host_key_count(M), before);
}

static void test_generate_key(void)
{
    unsigned char zeros[32], ones[32], k46[32], key[64];
    char addr[64];
    size_t klen = 0;
    int status;
    cJSON *j;

    /* 0 and 2^256-1 are redrawn; the third draw is used */
    memset(zeros, 0, 32);
    memset(ones, 0xff, 32);
    hex2bin(k46, KEY46);
    mock_host_queue_random(M, zeros, 32);
    mock_host_queue_random(M, ones, 32);
    mock_host_queue_random(M, k46, 32);
    j = run("generate_key", "{\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(field(j, "address"), ADDR46);
    CU_ASSERT_EQUAL(strlen(field(j, "key_id")), 36);
    CU_ASSERT(mock_host_key_find(M, field(j, "key_id"), NULL, 0, addr,
                                 sizeof addr, key, sizeof key, &klen));
    CU_ASSERT_EQUAL(klen, 32);
    CU_ASSERT_EQUAL(memcmp(key, k46, 32), 0);
    cJSON_Delete(j);

    /* real randomness: address must match the stored key */
    j = run("generate_key", "{\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT(mock_host_key_find(M, field(j, "key_id"), NULL, 0, addr,
                                 sizeof addr, key, sizeof key, &klen));
    {
        unsigned char a[20];
        char text[ETH_ADDR_TEXT];
        CU_ASSERT(eth_addr_from_seckey(SECP, a, key));
        eth_addr_checksum(text, a);
        CU_ASSERT_STRING_EQUAL(text, field(j, "address"));
        CU_ASSERT_STRING_EQUAL(text, addr);
    }
    cJSON_Delete(j);

    /* errors */
    j = run("generate_key", "{\"secret\":\"tooshort\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "secret"));
    cJSON_Delete(j);
    j = run("generate_key", "{}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "secret"));
    cJSON_Delete(j);
    j = run("generate_key", "{\"secret\":\"" SECRET "\",\"eth_key\":\"" KEY46 "\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "eth_key"));
    CU_ASSERT_PTR_NULL(strstr(field(j, "error"), KEY46));
    cJSON_Delete(j);
    mock_host_set_random_fail(M, 1);
    j = run("generate_key", "{\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 500);
    cJSON_Delete(j);
    mock_host_set_random_fail(M, 0);
    /* an entropy source stuck on an invalid value gives up */
    {
        int i;
        for (i = 0; i < 16; i++)
            mock_host_queue_random(M, zeros, 32);
        j = run("generate_key", "{\"secret\":\"" SECRET "\"}", &status);
        CU_ASSERT_EQUAL(status, 500);
        cJSON_Delete(j);
    }
}

/* ---- plugin: transactions ---------------------------------------------------- */

#define SEED_TP                                                                \
    "{\"value\":0.01,\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\","   \
    "\"nonce\":0,\"type\":2,\"chainId\":4,\"gas\":100000,"                     \
    "\"maxFeePerGas\":100000000000,\"maxPriorityFeePerGas\":3000000000}"
#define SEED_SIGNED                                                            \
    "0x02f873048084b2d05e0085174876e800830186a094a5d3241a1591061f2a4bb69ca0215" \
    "f66520e67cf872386f26fc1000080c001a0532545d1f03732f14e079ffa654af836a9cf1c" \
    "119091f7c9bc3fd15874c5e05da01b40f921e10add034cec47e60c687c212de18fecd5812" \
    "88048ce173124960ab1"
#define SEED_HASH "0x74b4789b79b019b62a535b9fbacf6b3161ca6d2deffe36565c2814520e97fdd3"

/* Reads one RLP item header at p (end at e): sets *off (payload start) and
 * *len (payload length); returns 1 for a list, 0 for a string, -1 on error. */
static int rlp_item(const unsigned char *p, const unsigned char *e, size_t *off,
                    size_t *len)
{
    unsigned b;
    size_t n, i;

    if (p >= e)
        return -1;
    b = p[0];
    if (b < 0x80) {
        *off = 0;
        *len = 1;
        return 0;
    }
    if (b < 0xb8 || (b >= 0xc0 && b < 0xf8)) {
        *off = 1;
        *len = b >= 0xc0 ? b - 0xc0u : b - 0x80u;
    } else {
        n = b >= 0xf8 ? b - 0xf7u : b - 0xb7u;
        if (p + 1 + n > e)
            return -1;
        *len = 0;
        for (i = 0; i < n; i++)
            *len = *len << 8 | p[1 + i];
        *off = 1 + n;
    }
    if (p + *off + *len > e)
        return -1;
    return b >= 0xc0;
}

/*
 * Decodes a signed typed transaction (0x-hex), rebuilds its signing payload
 * (type || rlp(items without yParity, r, s)), recovers the signer and writes
 * its EIP-55 address.  Also returns the number of list items and copies the
 * raw item at index want_item (with its header) as hex into item_hex.
 */
static int recover_typed(char addr[ETH_ADDR_TEXT], size_t *nitems,
                         size_t want_item, char *item_hex, const char *hex)
{
    size_t n = (strlen(hex) - 2) / 2, off, len, pos, k = 0, i;
    size_t starts[16], lens[16];
    unsigned char *raw = malloc(n), *uns = malloc(n + 16), h[32], sig[64],
                  pub[65], a[20];
    size_t publen = 65, ulen, hl;
    secp256k1_ecdsa_recoverable_signature rsig;
    secp256k1_pubkey pk;
    int ok = 0, recid;

    hex2bin(raw, hex + 2);
    if (raw[0] > 0x7f || rlp_item(raw + 1, raw + n, &off, &len) != 1 ||
        1 + off + len != n)
        goto out;
    for (pos = 1 + off; pos < n && k < 16; k++) {
        size_t o2, l2;
        if (rlp_item(raw + pos, raw + n, &o2, &l2) < 0)
            goto out;
        starts[k] = pos;
        lens[k] = o2 + l2;
        pos += o2 + l2;
    }
    *nitems = k;
    if (k < 4 || pos != n)
        goto out;
    if (want_item < k && item_hex != NULL)
        bin2hex(item_hex, raw + starts[want_item], lens[want_item]);
    /* yParity, r, s are the last three items */
    memset(sig, 0, 64);
    for (i = 0; i < 2; i++) {
        size_t o2, l2;
        if (rlp_item(raw + starts[k - 2 + i], raw + n, &o2, &l2) != 0 || l2 > 32)
            goto out;
        memcpy(sig + 32 * i + 32 - l2, raw + starts[k - 2 + i] + o2, l2);
    }
    recid = raw[starts[k - 3]] == 0x80 ? 0 : raw[starts[k - 3]];
    if (recid > 1)
        goto out;
    ulen = starts[k - 3] - starts[0];
    uns[0] = raw[0];
    hl = eth_rlp_header(uns + 1, 0xc0, ulen);
    memcpy(uns + 1 + hl, raw + starts[0], ulen);
    eth_keccak256(h, uns, 1 + hl + ulen);
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(SECP, &rsig, sig, recid) ||
        !secp256k1_ecdsa_recover(SECP, &pk, &rsig, h) ||
        !secp256k1_ec_pubkey_serialize(SECP, pub, &publen, &pk, SECP256K1_EC_UNCOMPRESSED))
        goto out;
    eth_addr_from_pubkey(a, pub);
    eth_addr_checksum(addr, a);
    ok = 1;
out:
    free(raw);
    free(uns);
    return ok;
}

/* The seed README's request with the seed README's key gives the seed
 * README's answer, byte for byte; the signature recovers to the key. */
static void test_seed_transaction(void)
{
    char addr[ETH_ADDR_TEXT], item[200];
    const char *hex;
    size_t nitems = 0;
    int status;
    cJSON *j = sign_tx(KIDSEED, SEED_TP, &status);

    CU_ASSERT_EQUAL_FATAL(status, 200);
    hex = field(j, "transaction_signed");
    CU_ASSERT_STRING_EQUAL(hex, SEED_SIGNED);
    CU_ASSERT_STRING_EQUAL(field(j, "transaction_hash"), SEED_HASH);
    /* well-formed type 2: 12 items, value (item 6) is 0x2386f26fc10000 */
    CU_ASSERT_EQUAL_FATAL(strncmp(hex, "0x02", 4), 0);
    CU_ASSERT_FATAL(recover_typed(addr, &nitems, 6, item, hex));
    CU_ASSERT_EQUAL(nitems, 12);
    CU_ASSERT_STRING_EQUAL(item, "872386f26fc10000");
    CU_ASSERT_STRING_EQUAL(addr, SEED_ADDR);
    cJSON_Delete(j);
}

/* settings.verify_signatures: on (the default) a record whose address is not
 * the key's is refused with 500 by the recovery check; off, the same record
 * signs; a non-boolean value fails init.  The bytes do not depend on it. */
static void test_verify_setting(void)
{
    static const char *other = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F";
    static const char *kid = "0b0e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    unsigned char key[32];
    const signer_plugin *p2 = NULL;
    void *c2 = NULL;
    mock_host *m2;
    char *res = NULL, payload[512];
    int status = 0;

    hex2bin(key, SEED_KEY);
    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction_payload\":%s}", kid, SEED_TP);
    /* Default plugin: mismatching record -> 500. */
    CU_ASSERT_EQUAL_FATAL(mock_host_key_add(M, kid, "eth", other, key, 32,
                                            SECRET), SIGNER_OK);
    CU_ASSERT_EQUAL(mock_call(M, P, CTX, "sign_transaction", payload, &res,
                              &status), SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(status, 500);
    CU_ASSERT_PTR_NULL(strstr(res, "transaction_signed"));
    free(res);
    res = NULL;

    /* verify_signatures = false: the same record signs, same bytes. */
    m2 = mock_host_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
    CU_ASSERT_EQUAL(mock_host_set_settings(m2, "{\"verify_signatures\":false}"), 0);
    CU_ASSERT_EQUAL_FATAL(signer_plugin_init(mock_host_get(m2), &p2, &c2),
                          SIGNER_OK);
    CU_ASSERT_EQUAL_FATAL(mock_host_key_add(m2, kid, "eth", other, key, 32,
                                            SECRET), SIGNER_OK);
    CU_ASSERT_EQUAL(mock_call(m2, p2, c2, "sign_transaction", payload, &res,
                              &status), SIGNER_OK);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(res, SEED_SIGNED + 2));
    free(res);
    p2->cleanup(c2);
    mock_host_free(m2);

    /* A string is not a boolean. */
    m2 = mock_host_new();
    CU_ASSERT_EQUAL(mock_host_set_settings(m2, "{\"verify_signatures\":\"no\"}"), 0);
    CU_ASSERT_EQUAL(signer_plugin_init(mock_host_get(m2), &p2, &c2),
                    SIGNER_ERR_CONFIG);
    mock_host_free(m2);
}

/* eth_sig_verify refuses a corrupted signature: one bit flipped in r or in
 * s, the high-S twin, another key's public key or another hash. */
static void test_sig_verify_corrupted(void)
{
    static const unsigned char n_be[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
        0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    unsigned char key[32], other[32], hash[32], rs[64], bad[64];
    secp256k1_pubkey pub, pub_other;
    int recid, i, borrow = 0;

    hex2bin(key, SEED_KEY);
    hex2bin(other, KEY46);
    memset(hash, 0x5a, sizeof hash);
    CU_ASSERT_FATAL(secp256k1_ec_pubkey_create(SECP, &pub, key));
    CU_ASSERT_FATAL(secp256k1_ec_pubkey_create(SECP, &pub_other, other));
    CU_ASSERT_EQUAL_FATAL(eth_sign_hash(SECP, rs, &recid, hash, key, &pub),
                          SIGNER_OK);
    CU_ASSERT_EQUAL(eth_sig_verify(SECP, rs, hash, &pub), SIGNER_OK);
    memcpy(bad, rs, 64);
    bad[31] ^= 0x01; /* r */
    CU_ASSERT_EQUAL(eth_sig_verify(SECP, bad, hash, &pub), SIGNER_ERR_INTERNAL);
    memcpy(bad, rs, 64);
    bad[40] ^= 0x80; /* s */
    CU_ASSERT_EQUAL(eth_sig_verify(SECP, bad, hash, &pub), SIGNER_ERR_INTERNAL);
    /* s' = n - s verifies mathematically but is high-S: refused */
    memcpy(bad, rs, 32);
    for (i = 31; i >= 0; i--) {
        int d = n_be[i] - rs[32 + i] - borrow;
        borrow = d < 0;
        bad[32 + i] = (unsigned char)(d + (borrow ? 256 : 0));
    }
    CU_ASSERT_EQUAL(eth_sig_verify(SECP, bad, hash, &pub), SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(eth_sig_verify(SECP, rs, hash, &pub_other),
                    SIGNER_ERR_INTERNAL);
    hash[0] ^= 1;
    CU_ASSERT_EQUAL(eth_sig_verify(SECP, rs, hash, &pub), SIGNER_ERR_INTERNAL);
    /* signing with a public key that is not the key's: outputs zeroed */
    hash[0] ^= 1;
    CU_ASSERT_EQUAL(eth_sign_hash(SECP, rs, &recid, hash, key, &pub_other),
                    SIGNER_ERR_INTERNAL);
    memset(bad, 0, 64);
    CU_ASSERT_EQUAL(memcmp(rs, bad, 64), 0);
}

/* A host whose key cache hands the plugin a key's auxiliary slot (ABI 1.3):
 * one slot, counting gets and puts; `poison` makes it hold another key's
 * public key (a corrupted cache entry). */
static struct {
    unsigned char slot[SIGNER_MAX_KEY_AUX];
    size_t len;
    int gets, puts;
} AUX;

static int aux_get(signer_call *call, unsigned char *aux, size_t cap,
                   size_t *len)
{
    (void)call;
    AUX.gets++;
    if (AUX.len == 0 || AUX.len > cap)
        return 0;
    memcpy(aux, AUX.slot, AUX.len);
    *len = AUX.len;
    return 1;
}

static int aux_put(signer_call *call, const unsigned char *aux, size_t len)
{
    (void)call;
    AUX.puts++;
    CU_ASSERT_FATAL(len <= sizeof AUX.slot);
    memcpy(AUX.slot, aux, len);
    AUX.len = len;
    return SIGNER_OK;
}

/* The public key is derived once and then read from the slot; a signature
 * that does not verify (here: against a corrupted cached public key) is
 * refused with 500 and no signed transaction. */
static void test_verify_cached_pubkey(void)
{
    static const char *kid = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    const signer_plugin *p2 = NULL;
    void *c2 = NULL;
    unsigned char key[32], key46[32];
    secp256k1_pubkey wrong;
    char *res = NULL, payload[512];
    int status = 0;
    mock_host *m2 = mock_host_new();
    signer_host *h2; /* the mock's own table (its services find the mock
                      * from the table's address), given a slot */

    CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
    h2 = (signer_host *)mock_host_get(m2);
    memset(&AUX, 0, sizeof AUX);
    h2->key_aux_get = aux_get;
    h2->key_aux_put = aux_put;
    CU_ASSERT_EQUAL_FATAL(signer_plugin_init(h2, &p2, &c2), SIGNER_OK);
    hex2bin(key, SEED_KEY);
    CU_ASSERT_EQUAL_FATAL(mock_host_key_add(m2, kid, "eth", SEED_ADDR, key,
                                            32, SECRET), SIGNER_OK);
    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction_payload\":%s}", kid, SEED_TP);
    CU_ASSERT_EQUAL(mock_call(m2, p2, c2, "sign_transaction", payload, &res,
                              &status), SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(res, SEED_SIGNED + 2));
    free(res);
    res = NULL;
    CU_ASSERT_EQUAL(AUX.puts, 1);
    CU_ASSERT_EQUAL(AUX.len, sizeof(secp256k1_pubkey));
    CU_ASSERT_EQUAL(mock_call(m2, p2, c2, "sign_transaction", payload, &res,
                              &status), SIGNER_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(res, SEED_SIGNED + 2));
    free(res);
    res = NULL;
    CU_ASSERT_EQUAL(AUX.gets, 2);
    CU_ASSERT_EQUAL(AUX.puts, 1); /* the second request used the slot */

    hex2bin(key46, KEY46);
    CU_ASSERT_FATAL(secp256k1_ec_pubkey_create(SECP, &wrong, key46));
    memcpy(AUX.slot, &wrong, sizeof wrong);
    CU_ASSERT_EQUAL(mock_call(m2, p2, c2, "sign_transaction", payload, &res,
                              &status), SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(status, 500);
    CU_ASSERT_PTR_NULL(strstr(res, "transaction_signed"));
    free(res);
    p2->cleanup(c2);
    mock_host_free(m2);
}

/* The same payload with freshly generated keys: well-formed, recovers to
 * the address generate_key returned. */
static void test_generated_key_signs(void)
{
    char addr[ETH_ADDR_TEXT], item[200], kid[37], want[ETH_ADDR_TEXT];
    size_t nitems = 0;
    int status, round;
    cJSON *j;

    for (round = 0; round < 20; round++) {
        j = run("generate_key", "{\"secret\":\"" SECRET "\"}", &status);
        CU_ASSERT_EQUAL_FATAL(status, 200);
        snprintf(kid, sizeof kid, "%s", field(j, "key_id"));
        snprintf(want, sizeof want, "%s", field(j, "address"));
        cJSON_Delete(j);
        j = sign_tx(kid, SEED_TP, &status);
        CU_ASSERT_EQUAL_FATAL(status, 200);
        CU_ASSERT_FATAL(recover_typed(addr, &nitems, 6, item,
                                      field(j, "transaction_signed")));
        CU_ASSERT_EQUAL(nitems, 12);
        CU_ASSERT_STRING_EQUAL(item, "872386f26fc10000");
        CU_ASSERT_STRING_EQUAL(addr, want);
        cJSON_Delete(j);
    }
}

static void test_tx_vectors(void)
{
    /* EIP-155 example, quantities as strings and as a number of ether */
    expect_tx("{\"type\":0,\"nonce\":9,\"gasPrice\":\"20000000000\",\"gas\":21000,"
              "\"to\":\"0x3535353535353535353535353535353535353535\","
              "\"value\":\"1000000000000000000\",\"chainId\":1}",
              "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
              NULL);
    expect_tx("{\"type\":\"0x0\",\"nonce\":\"0x9\",\"gasPrice\":\"0x4a817c800\",\"gasLimit\":\"21000\","
              "\"to\":\"0x3535353535353535353535353535353535353535\","
              "\"value\":1,\"chainId\":\"1\",\"data\":\"0x\"}",
              "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
              NULL);
    /* the seed's payload signed by 0x46..46 (type defaults to 2) */
    expect_tx("{\"value\":0.01,\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\","
              "\"nonce\":0,\"chainId\":4,\"gas\":100000,"
              "\"maxFeePerGas\":100000000000,\"maxPriorityFeePerGas\":3000000000}",
              "0x02f873048084b2d05e0085174876e800830186a094a5d3241a1591061f2a4bb69ca0215f66520e67cf872386f26fc1000080c080a020a57337fa5f3d79935ccf8c203b6963bf0de21ef65ef2c053bb84bcbc63e91ea0364b2839b6e394ccf7e32f2797bef9540631b496969be57fbfb033e58bac7c9c",
              "0x35c0e192440b6b59825594c49974aafeacd1aa9af88aaba069cad1689ce20d7f");
    /* type 1 with an access list */
    expect_tx("{\"type\":1,\"nonce\":5,\"gasPrice\":\"0x3b9aca00\",\"gasLimit\":50000,"
              "\"to\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"value\":\"12345\","
              "\"chainId\":137,\"data\":\"0xdeadbeef\",\"accessList\":["
              "{\"address\":\"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359\",\"storageKeys\":["
              "\"0x0000000000000000000000000000000000000000000000000000000000000001\","
              "\"0xabababababababababababababababababababababababababababababababab\"]},"
              "{\"address\":\"0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb\",\"storageKeys\":[]}]}",
              "0x01f8df818905843b9aca0082c350945aaeb6053f3e94c9b9a09f33669435e7ef1beaed82303984deadbeeff872f85994fb6916095ca1df60bb79ce92ce3ea74c37c5d359f842a00000000000000000000000000000000000000000000000000000000000000001a0ababababababababababababababababababababababababababababababababd694dbf03b407c01e7cd3cbea99509d93f8dddc8c6fbc001a0df62c725a655955e4a0aeb9edcebc18b0b794b3975f0cef4e4475970fd8d841da02558df1507997b6abf2f3a3c1e28d63636f9204ec4db0734f9b92ec550ef2c65",
              "0xeae7aaf9712a026889ebf9d85a23b7c4f46a262e874bc622eca25e878b9db791");
    /* type 2 contract creation via input, 2^256-1 fee, access list */
    expect_tx("{\"type\":2,\"nonce\":1000000,"
              "\"maxFeePerGas\":\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\","
              "\"maxPriorityFeePerGas\":0,\"gas\":3000000,\"to\":null,\"value\":\"0\",\"chainId\":1,"
              "\"input\":\"0x6080604052000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\","
              "\"accessList\":[{\"address\":\"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb\","
              "\"storageKeys\":[\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"]}]}",
              "0x02f8ed01830f424080a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff832dc6c08080b8416080604052000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000f838f794d1220a0cf47c7b9be7a2e6ba89f429762e7b9adbe1a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff01a0c7effef99f3e8c8a50bde753279ffc3103c0b27087ab06b8369774075dc3da15a03c5e53c3c7199f125a9e7379a9c5cb5c4563c94fce06cd030c96e540ba5f1e11",
              "0x152f71e33bb7dea9ae518ec5018c994b9f9f0fa932430d688fb345c637f20f6b");
    /* legacy contract creation, large chainId, data of one byte < 0x80 */
    expect_tx("{\"type\":0,\"nonce\":0,\"gasPrice\":1,\"gas\":21000,\"value\":0,"
              "\"chainId\":11155111,\"data\":\"0x7f\"}",
              "0xf84f800182520880807f8401546d72a0dd74433d802b54f5072817f4e2ff27c040e0224f1f9de793d14b41768dad12bfa0729e5775a13eb028a3d9ab63700a89f97798fecaca61f4fa51f369c023ef9b0b",
              "0x22170e2ef74899a9d5ae73b697a0aed4ec9f5c3eb39687b7b0d5cda490ad7e98");
    /* big decimal value, data and input equal (case-insensitively) */
    expect_tx("{\"type\":2,\"nonce\":7,\"maxFeePerGas\":30000000000,\"maxPriorityFeePerGas\":1500000000,"
              "\"gas\":21000,\"gasLimit\":\"0x5208\",\"to\":\"0xABABABABABABABABABABABABABABABABABABABAB\","
              "\"value\":\"123456789012345678901234567890\",\"chainId\":10,\"data\":\"0x\",\"input\":\"0x\"}",
              "0x02f8780a078459682f008506fc23ac0082520894abababababababababababababababababababab8d018ee90ff6c373e0ee4e3f0ad280c001a02bb55786405821cd4451a3908f4030b6c1ea0847234647fa501e08328ff9b68fa0708bfe410f1776681a0799ff74c7152e985ad72266477faf4cbfd090fba2b738",
              "0x8590c118ab2c3438b3e5e8465552ecdc59672b338b74dc0e1b73c1be574e5c44");
    /* 2^53-1 nonce as a number; value 0.1+0.2 ether; s with a leading zero */
    expect_tx("{\"type\":2,\"nonce\":9007199254740991,\"maxFeePerGas\":2,\"maxPriorityFeePerGas\":1,"
              "\"gas\":21000,\"to\":\"0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\","
              "\"value\":0.30000000000000004,\"chainId\":1}",
              "0x02f87001871fffffffffffff010282520894cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd880429d069189e002880c080a035c5f5f000812b7e98cfe06cfa301a1579bd8df6928b13ef30b2e5d29e7596a39f042d346b8becd614cbb1f84abbe8583028ec131c9683e668f069610d385b64",
              "0xb6e46cfadaf96c8ae966e18ba5a57d6a2a607009bb3575c1eca504960ab3d845");
}

static void test_tx_large_data(void)
{
    /* 100 kB of calldata: heap path of the buffers, hash over many blocks */
    size_t n = 100000, i, len = 2 * n + 512;
    char *tp = malloc(len), *p;
    int status;
    cJSON *j;

    p = tp + sprintf(tp, "{\"nonce\":1,\"gas\":5000000,\"maxFeePerGas\":10,"
                         "\"maxPriorityFeePerGas\":1,\"chainId\":1,\"data\":\"0x");
    for (i = 0; i < n; i++)
        p += sprintf(p, "%02x", (unsigned)(i & 255));
    strcpy(p, "\"}");
    j = sign_tx(KID46, tp, &status);
    CU_ASSERT_EQUAL(status, 200);
    /* 02 fa LLLLLL ... to 80, value 80, data header ba 0186a0 (100000 bytes) */
    CU_ASSERT_EQUAL(strlen(field(j, "transaction_signed")),
                    2 + 2 * (1 + 4 + 1 + 1 + 1 + 1 + 4 + 1 + 1 + 4 + 100000 + 1 + 1 + 33 + 33));
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "transaction_signed"), "8080ba0186a0"));
    cJSON_Delete(j);
    free(tp);
}

#define BASE(extra)                                                            \
    "{\"type\":2,\"chainId\":4,\"nonce\":0,\"gas\":100000,"                    \
    "\"maxFeePerGas\":100000000000,\"maxPriorityFeePerGas\":3000000000," extra \
    "\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\"}"
#define LEGACY(extra)                                                          \
    "{\"type\":0,\"nonce\":0,\"gas\":21000," extra                             \
    "\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\"}"

static void test_tx_field_errors(void)
{
    static const struct {
        const char *tp, *want;
    } cases[] = {
        {BASE("\"gasPrice\":1,"), "transaction_payload.gasPrice"},
        {BASE("\"foo\":1,"), "transaction_payload.foo"},
        {BASE("\"from\":\"0x00\","), "transaction_payload.from"},
        {BASE("\"nonce\":1,"), "transaction_payload.nonce: duplicate"},
        {"{\"type\":2,\"chainId\":4,\"nonce\":0,\"gas\":100000,\"maxFeePerGas\":\"abc\","
         "\"maxPriorityFeePerGas\":1}",
         "transaction_payload.maxFeePerGas: expected a quantity (integer or 0x-hex/decimal string)"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":100000,\"maxFeePerGas\":-1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.maxFeePerGas"},
        {"{\"chainId\":4,\"nonce\":1.5,\"gas\":100000,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce"},
        {"{\"chainId\":4,\"nonce\":9007199254740993,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce"},
        {"{\"chainId\":4,\"nonce\":9007199254740992,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce"},
        {"{\"chainId\":4,\"nonce\":\"0x10000000000000000\",\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce: exceeds 2^64-1"},
        {"{\"chainId\":4,\"nonce\":\"0xffffffffffffffff\",\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce: exceeds 2^64-2 (EIP-2681)"},
        {"{\"chainId\":4,\"nonce\":\"18446744073709551615\",\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce: exceeds 2^64-2 (EIP-2681)"},
        {"{\"chainId\":4,\"nonce\":\" 1\",\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":true,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.gas"},
        {"{\"chainId\":4,\"nonce\":0,\"gasLimit\":\"x\",\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.gasLimit"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"gasLimit\":2,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.gasLimit"},
        {"{\"chainId\":\"0x\",\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.chainId"},
        {"{\"chainId\":0,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.chainId"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":2}",
         "transaction_payload.maxPriorityFeePerGas"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":"
         "\"115792089237316195423570985008687907853269984665640564039457584007913129639936\"}",
         "transaction_payload.maxPriorityFeePerGas: exceeds 2^256-1"},
        {BASE("\"value\":\"0x10000000000000000000000000000000000000000000000000000000000000000\","),
         "transaction_payload.value"},
        {BASE("\"value\":1e-19,"), "transaction_payload.value"},
        {BASE("\"value\":-0.5,"), "transaction_payload.value"},
        {BASE("\"value\":1e20,"), "transaction_payload.value"},
        {BASE("\"value\":\"1.5\","), "transaction_payload.value"},
        {BASE("\"value\":\"-1\","), "transaction_payload.value"},
        {BASE("\"value\":null,"), "transaction_payload.value"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0,"
         "\"to\":\"0xa5d3241A1591061F2a4bB69CA0215F66520E67cf\"}",
         "transaction_payload.to: bad EIP-55 checksum"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0,\"to\":\"0x1234\"}",
         "transaction_payload.to"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0,\"to\":5}",
         "transaction_payload.to"},
        {"{\"chainId\":4,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0,\"to\":\"\"}",
         "transaction_payload.to"},
        {BASE("\"data\":\"0x123\","), "transaction_payload.data"},
        {BASE("\"data\":\"abcd\","), "transaction_payload.data"},
        {BASE("\"data\":\"0xzz\","), "transaction_payload.data"},
        {BASE("\"data\":7,"), "transaction_payload.data"},
        {BASE("\"input\":\"0x1\","), "transaction_payload.input"},
        {BASE("\"data\":\"0x12\",\"input\":\"0x34\","), "transaction_payload.input"},
        {BASE("\"data\":\"0x12\",\"input\":\"0x1234\","), "transaction_payload.input"},
        {"{\"chainId\":4,\"nonce\":0,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.gas"},
        {"{\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.chainId"},
        {"{\"chainId\":1,\"gas\":1,\"maxFeePerGas\":1,\"maxPriorityFeePerGas\":0}",
         "transaction_payload.nonce"},
        {"{\"chainId\":1,\"nonce\":0,\"gas\":1,\"maxFeePerGas\":1}",
         "transaction_payload.maxPriorityFeePerGas"},
        {"{\"chainId\":1,\"nonce\":0,\"gas\":1,\"maxPriorityFeePerGas\":1}",
         "transaction_payload.maxFeePerGas"},
        {LEGACY("\"chainId\":1,"), "transaction_payload.gasPrice"},
        {LEGACY("\"gasPrice\":1,"), "transaction_payload.chainId"},
        {LEGACY("\"gasPrice\":1,\"chainId\":1,\"accessList\":[],"), "transaction_payload.accessList"},
        {LEGACY("\"gasPrice\":1,\"chainId\":1,\"maxFeePerGas\":1,"), "transaction_payload.maxFeePerGas"},
        {"{\"type\":1,\"chainId\":1,\"nonce\":0,\"gas\":1,\"gasPrice\":1,\"maxPriorityFeePerGas\":1}",
         "transaction_payload.maxPriorityFeePerGas"},
        {"{\"type\":5,\"chainId\":1,\"nonce\":0,\"gas\":1}", "transaction_payload.type"},
        {"{\"type\":-1,\"chainId\":1,\"nonce\":0,\"gas\":1}", "transaction_payload.type"},
        {"{\"type\":\"eip1559\",\"chainId\":1,\"nonce\":0,\"gas\":1}", "transaction_payload.type"},
        {"{\"type\":null,\"chainId\":1,\"nonce\":0,\"gas\":1}", "transaction_payload.type"},
        {BASE("\"accessList\":{},"), "transaction_payload.accessList"},
        {BASE("\"accessList\":[5],"), "transaction_payload.accessList[0]"},
        {BASE("\"accessList\":[{\"address\":\"0x12\",\"storageKeys\":[]}],"),
         "transaction_payload.accessList[0].address"},
        {BASE("\"accessList\":[{\"storageKeys\":[]}],"), "transaction_payload.accessList[0].address"},
        {BASE("\"accessList\":[{\"address\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"}],"),
         "transaction_payload.accessList[0].storageKeys"},
        {BASE("\"accessList\":[{\"address\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"storageKeys\":{}}],"),
         "transaction_payload.accessList[0].storageKeys"},
        {BASE("\"accessList\":[{\"address\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"storageKeys\":[],\"x\":1}],"),
         "transaction_payload.accessList[0].x"},
        {BASE("\"accessList\":[{\"address\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"storageKeys\":[]},"
              "{\"address\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"storageKeys\":[\"0x01\"]}],"),
         "transaction_payload.accessList[1].storageKeys[0]"},
        {BASE("\"accessList\":[{\"address\":\"0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"storageKeys\":[]}],"),
         "transaction_payload.accessList[0].address: bad EIP-55 checksum"},
        {"[]", "transaction_payload"},
        {"\"x\"", "transaction_payload: expected an object"},
        {"null", "transaction_payload: expected an object"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_tx_error(cases[i].tp, cases[i].want);
}

static void test_payload_errors(void)
{
    int status;
    cJSON *j;
    long opens;

    /* missing transaction_payload */
    j = run("sign_transaction", "{\"key_id\":\"x\",\"secret\":\"" SECRET "\"}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "transaction_payload"));
    cJSON_Delete(j);
    /* unknown top-level field */
    j = run("sign_transaction", "{\"key_id\":\"x\",\"secret\":\"" SECRET "\",\"bogus\":1,"
            "\"transaction_payload\":" SEED_TP "}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "bogus"));
    CU_ASSERT_PTR_NULL(strstr(field(j, "error"), SECRET));
    cJSON_Delete(j);
    /* unknown key_id -> 404, missing key_id -> 400 */
    j = sign_tx("00000000-0000-4000-8000-000000000000", SEED_TP, &status);
    CU_ASSERT_EQUAL(status, 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "key_id"));
    cJSON_Delete(j);
    j = run("sign_transaction", "{\"secret\":\"" SECRET "\",\"transaction_payload\":" SEED_TP "}", &status);
    CU_ASSERT_EQUAL(status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), "key_id"));
    cJSON_Delete(j);
    /* wrong secret -> 403, no result fields */
    {
        char payload[1024];
        snprintf(payload, sizeof payload,
                 "{\"key_id\":\"%s\",\"secret\":\"%s\",\"transaction_payload\":" SEED_TP "}",
                 KID46, "0000000000000000000000000000000000000000000000000000000000000000");
        opens = mock_host_key_open_calls(M);
        j = run("sign_transaction", payload, &status);
        CU_ASSERT_EQUAL(status, 403);
        CU_ASSERT_EQUAL(mock_host_key_open_calls(M), opens + 1);
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(j, "transaction_signed"));
        cJSON_Delete(j);
        /* wrong secret on sign_userop and sign_message too */
        snprintf(payload, sizeof payload,
                 "{\"key_id\":\"%s\",\"secret\":\"wrong-secret-wrong-secret\",\"message\":\"hi\"}", KID46);
        j = run("sign_message", payload, &status);
        CU_ASSERT_EQUAL(status, 403);
        cJSON_Delete(j);
        snprintf(payload, sizeof payload,
                 "{\"key_id\":\"%s\",\"secret\":\"wrong-secret-wrong-secret\","
                 "\"transaction_payload\":{\"userOpHash\":\"" KEY46 "\"}}", KID46);
        j = run("sign_userop", payload, &status);
        CU_ASSERT_EQUAL(status, 403);
        cJSON_Delete(j);
    }
    /* payload not an object */
    j = run("sign_transaction", "42", &status);
    CU_ASSERT_EQUAL(status, 400);
    cJSON_Delete(j);
}

/* ---- userOp and messages ------------------------------------------------------- */

#define USEROP_HASH "5033589a303c005b7e7818f4bf00e7361335f51f648be16c028951f90a1585d4"
#define USEROP_SIG                                                             \
    "0xd59127483c9fa9f92b7e1393363ab96aaf1a9c9e9e997c85ca71118eff908a12540159d2" \
    "78850e5a23bc13306a82aa68505e27ffc48c7e8a28589cbeca85a51d1b"

/* payload_fmt is a test constant with two %s: the key_id and arg */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void expect_sig(const char *op, const char *payload_fmt, const char *arg,
                       int want_status, const char *want)
{
    char payload[2048];
    int status;
    cJSON *j;

    snprintf(payload, sizeof payload, payload_fmt, KID46, arg);
    j = run(op, payload, &status);
    CU_ASSERT_EQUAL(status, want_status);
    if (want_status == 200) {
        CU_ASSERT_STRING_EQUAL(field(j, "signature"), want);
    } else {
        CU_ASSERT_PTR_NOT_NULL(strstr(field(j, "error"), want));
    }
    if (status != want_status)
        fprintf(stderr, "\n  %s %s -> %d %s\n", op, payload, status,
                cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
}
#pragma GCC diagnostic pop

static void test_userop(void)
{
    const char *fmt = "{\"key_id\":\"%s\",\"secret\":\"" SECRET
                      "\",\"transaction_payload\":{\"userOpHash\":\"%s\"}}";

    /* seed form (no 0x) through both operations, and with 0x */
    expect_sig("sign_transaction", fmt, USEROP_HASH, 200, USEROP_SIG);
    expect_sig("sign_userop", fmt, USEROP_HASH, 200, USEROP_SIG);
    expect_sig("sign_userop", fmt, "0x" USEROP_HASH, 200, USEROP_SIG);
    expect_sig("sign_userop", fmt, "0X5033589A303C005B7E7818F4BF00E7361335F51F648BE16C028951F90A1585D4",
               200, USEROP_SIG);
    /* errors */
    expect_sig("sign_userop", fmt, "1234", 400, "transaction_payload.userOpHash");
    expect_sig("sign_userop", fmt, USEROP_HASH "00", 400, "transaction_payload.userOpHash");
    expect_sig("sign_userop", fmt, "zz33589a303c005b7e7818f4bf00e7361335f51f648be16c028951f90a1585d4",
               400, "transaction_payload.userOpHash");
    expect_sig("sign_transaction",
               "{\"key_id\":\"%s\",\"secret\":\"" SECRET
               "\",\"transaction_payload\":{\"userOpHash\":\"%s\",\"nonce\":1}}",
               USEROP_HASH, 400, "transaction_payload.nonce");
    expect_sig("sign_userop",
               "{\"key_id\":\"%s\",\"secret\":\"" SECRET
               "\",\"transaction_payload\":{\"nonce\":1}}%s",
               "", 400, "transaction_payload.nonce");
    expect_sig("sign_userop",
               "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\"}%s",
               "", 400, "transaction_payload");
    expect_sig("sign_userop",
               "{\"key_id\":\"%s\",\"secret\":\"" SECRET
               "\",\"transaction_payload\":{\"userOpHash\":5}}%s",
               "", 400, "transaction_payload.userOpHash");
    expect_sig("sign_userop",
               "{\"key_id\":\"%s\",\"secret\":\"" SECRET
               "\",\"message\":\"x\",\"transaction_payload\":{\"userOpHash\":\"%s\"}}",
               USEROP_HASH, 400, "message");
}

static void test_sign_message(void)
{
    const char *fmt = "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"message\":\"%s\"}";
    char longmsg[301];

    expect_sig("sign_message", fmt, "hello", 200,
               "0xf63c93dc642a4839770b35abf9cb304ac2f1b5463d9a9abd87546feaa0af992e659cf087c433e45c45f6135cb819ab1922c6359dbb1b8c8d7a54141de2cd4beb1b");
    /* a 0x string is text (ethers' signMessage(string)); bytes are
     * {"raw": ...}, tested in test_eth_breadth.c */
    expect_sig("sign_message", fmt, "0xdeadbeef", 200,
               "0xa749cd847112f7ac53cbdc6245c5d905f8ef3d9f3ab9b58b09d25215b188aef53589474b59d5e01cf3475fe2c793520a058c6b5e971626a41ede3fe4e18e83771b");
    expect_sig("sign_message", fmt, "", 200,
               "0xff65394fc6cc70eee8e5ee1160dfa355a0484ad2988b65d01aee4bf58288958f082ce5e2c2d9d49130a2b1e8d01850cc00b0f17637f029570420e5a4a8d724fd1c");
    expect_sig("sign_message", fmt, "h\xc3\xa9llo \xe2\x9c\x93", 200,
               "0x4c34601ec942bba3de39a8bdca5291f30ee052c4d4c883525a0609bbfed68b00388c2970a5d199948563aed23e211fb534562c7d547ff2121e3dd4bd38d65d541b");
    memset(longmsg, 'x', 300);
    longmsg[300] = '\0';
    expect_sig("sign_message", fmt, longmsg, 200,
               "0xda3107ea6c17e72658b4c2cc8041d30a819a0a84638d5cfe2e96c40978e7f8d43f1ff0aab1eedb837ed4bbecd862f2f5c1f092cce0609cdfd7c3b5f205c6546a1c");
    expect_sig("sign_message", "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\"}%s", "",
               400, "message");
    expect_sig("sign_message", "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"message\":5}%s", "",
               400, "message");
    expect_sig("sign_message", "{\"key_id\":\"%s\",\"secret\":\"" SECRET "\",\"message\":\"x\",\"to\":1}%s", "",
               400, "to");
}

/* HMAC authentication is the host's business; the plugin lets the fields
 * through to key_open. */
static void test_hmac_mode(void)
{
    char payload[1024], mac[65];
    long long ts = (long long)time(NULL);
    int status;
    cJSON *j;

    CU_ASSERT_FATAL(mock_host_hmac(mac, SECRET, "sign_transaction", KIDSEED,
                                   "{\"transaction_payload\":" SEED_TP "}",
                                   ts));
    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"hmac\":\"%s\",\"timestamp\":%lld,"
             "\"transaction_payload\":" SEED_TP "}",
             KIDSEED, mac, ts);
    j = run("sign_transaction", payload, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(field(j, "transaction_signed"), SEED_SIGNED);
    cJSON_Delete(j);
    mac[0] = mac[0] == '0' ? '1' : '0';
    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"hmac\":\"%s\",\"timestamp\":%lld,"
             "\"transaction_payload\":" SEED_TP "}",
             KIDSEED, mac, ts);
    j = run("sign_transaction", payload, &status);
    CU_ASSERT_EQUAL(status, 403);
    cJSON_Delete(j);
}

static void test_throttle(void)
{
    char payload[1024], kid[37];
    int status, i;
    cJSON *j;

    import_key(kid, KEY46, SECRET); /* a fresh record: no failures yet */
    mock_host_set_throttle(M, 3);
    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"wrong-secret-wrong-secret\",\"message\":\"hi\"}",
             kid);
    for (i = 0; i < 3; i++) {
        j = run("sign_message", payload, &status);
        CU_ASSERT_EQUAL(status, 403);
        cJSON_Delete(j);
    }
    j = run("sign_message", payload, &status);
    CU_ASSERT_EQUAL(status, 429);
    cJSON_Delete(j);
    mock_host_set_throttle(M, 0);
}

/* ---- concurrency ---------------------------------------------------------------- */

static void *worker(void *arg)
{
    int i, *bad = arg;

    for (i = 0; i < 25; i++) {
        char payload[1024], *res = NULL;
        int status;
        snprintf(payload, sizeof payload,
                 "{\"key_id\":\"%s\",\"secret\":\"" SECRET
                 "\",\"transaction_payload\":" SEED_TP "}",
                 KIDSEED);
        mock_call(M, P, CTX, "sign_transaction", payload, &res, &status);
        if (status != 200 || res == NULL || strstr(res, &SEED_SIGNED[2]) == NULL)
            (*bad)++;
        free(res);
    }
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t t[4];
    int bad[4] = {0, 0, 0, 0}, i;

    for (i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, worker, &bad[i]), 0);
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(bad[i], 0);
    }
    CU_ASSERT_EQUAL(mock_host_secure_live(M), 0);
}

/* The built module: loads with RTLD_NOW (no unresolved engine symbols),
 * exports signer_plugin_init only, and signs like the sources linked here.
 * Skipped when plugins/.libs/eth.so was not built (direct gcc builds). */
static void test_dlopen_plugin(void)
{
    const char *dir = getenv("SIGNER_BUILDDIR");
    char path[4096], *res = NULL;
    unsigned char key[32];
    const signer_plugin *p = NULL;
    void *ctx = NULL, *so;
    signer_plugin_init_fn init;
    mock_host *m;
    int status;

    snprintf(path, sizeof path, "%s/plugins/.libs/eth.so", dir ? dir : ".");
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "(skipped: %s not built) ", path);
        return;
    }
    so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(so);
    init = (signer_plugin_init_fn)dlsym(so, "signer_plugin_init");
    CU_ASSERT_PTR_NOT_NULL_FATAL(init);
    CU_ASSERT_PTR_NULL(dlsym(so, "eth_keccak256"));
    CU_ASSERT_PTR_NULL(dlsym(so, "eth_tx_parse"));
    m = mock_host_new();
    CU_ASSERT_EQUAL_FATAL(init(mock_host_get(m), &p, &ctx), SIGNER_OK);
    CU_ASSERT_NOT_EQUAL(init, signer_plugin_init); /* really the module's */
    hex2bin(key, SEED_KEY);
    CU_ASSERT_EQUAL(mock_host_key_add(m, "11111111-1111-4111-8111-111111111111",
                                      "eth", SEED_ADDR, key, 32, SECRET),
                    SIGNER_OK);
    mock_call(m, p, ctx, "sign_transaction",
              "{\"key_id\":\"11111111-1111-4111-8111-111111111111\",\"secret\":\"" SECRET
              "\",\"transaction_payload\":" SEED_TP "}",
              &res, &status);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_PTR_NOT_NULL(res != NULL ? strstr(res, SEED_SIGNED) : NULL);
    free(res);
    CU_ASSERT_EQUAL(mock_host_secure_live(m), 0);
    p->cleanup(ctx);
    mock_host_free(m);
    dlclose(so);
}

/* Nothing secret or from the payload reaches the log. */
static void test_log_clean(void)
{
    const char *log = mock_host_log_text(M);

    CU_ASSERT_PTR_NULL(strstr(log, SECRET));
    CU_ASSERT_PTR_NULL(strstr(log, KEY46));
    CU_ASSERT_PTR_NULL(strstr(log, SEED_KEY));
    CU_ASSERT_PTR_NULL(strstr(log, "a5D3241A"));
}

void eth_test_add_mock_suite(void);
void eth_test_add_breadth_suite(void);

int main(void)
{
    CU_pSuite s;
    unsigned failures;

    SECP = secp256k1_context_create(SECP256K1_CONTEXT_NONE);

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("eth_primitives", NULL, NULL);
    CU_add_test(s, "keccak vectors", test_keccak_vectors);
    CU_add_test(s, "keccak incremental", test_keccak_incremental);
    CU_add_test(s, "keccak chain of 420 lengths", test_keccak_chain);
    CU_add_test(s, "hex", test_hex);
    CU_add_test(s, "hex_encode", test_hex_encode);
    CU_add_test(s, "hex_public", test_hex_public);
    CU_add_test(s, "u256", test_u256);
    CU_add_test(s, "ether to wei", test_ether);
    CU_add_test(s, "ether to wei, fast path", test_ether_fast);
    CU_add_test(s, "rlp vectors", test_rlp_vectors);
    CU_add_test(s, "addresses and EIP-55", test_addresses);
    s = CU_add_suite("eth_plugin", suite_init, suite_clean);
    CU_add_test(s, "init and op table", test_init_and_table);
    CU_add_test(s, "EIP-155 signing hash", test_eip155_sighash);
    CU_add_test(s, "EIP-2681 largest nonce", test_nonce_eip2681);
    CU_add_test(s, "set_key", test_set_key);
    CU_add_test(s, "set_key errors", test_set_key_errors);
    CU_add_test(s, "generate_key", test_generate_key);
    CU_add_test(s, "seed transaction", test_seed_transaction);
    CU_add_test(s, "verify_signatures setting", test_verify_setting);
    CU_add_test(s, "corrupted signatures refused", test_sig_verify_corrupted);
    CU_add_test(s, "verify: cached public key", test_verify_cached_pubkey);
    CU_add_test(s, "generated keys sign", test_generated_key_signs);
    CU_add_test(s, "transaction vectors", test_tx_vectors);
    CU_add_test(s, "large calldata", test_tx_large_data);
    CU_add_test(s, "transaction field errors", test_tx_field_errors);
    CU_add_test(s, "payload errors", test_payload_errors);
    CU_add_test(s, "userOp", test_userop);
    CU_add_test(s, "sign_message", test_sign_message);
    CU_add_test(s, "hmac mode", test_hmac_mode);
    CU_add_test(s, "throttle", test_throttle);
    CU_add_test(s, "concurrent signing", test_concurrent);
    CU_add_test(s, "log has no secrets", test_log_clean);
    CU_add_test(s, "dlopen the built module", test_dlopen_plugin);

    eth_test_add_mock_suite();
    eth_test_add_breadth_suite();

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    secp256k1_context_destroy(SECP);
    return failures == 0 ? 0 : 1;
}
