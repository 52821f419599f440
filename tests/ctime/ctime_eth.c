/*
 * Constant-time test of the Ethereum plugin, in the style of libsecp256k1's
 * ctime_tests.c: the private key is marked undefined for valgrind's
 * memcheck, the plugin's real handlers run on the mock host, and memcheck
 * reports every conditional jump and every memory address that depends on
 * it.  Run by tests/ctime/run.sh under
 *     valgrind --error-exitcode=1 --track-origins=yes
 * A branch or table lookup on key bytes anywhere on these paths fails it.
 *
 * Paths covered (the plugin is compiled in with -DSIGNER_CTIME_TEST):
 *   - set_key: the eth_key hex string itself is made undefined as the
 *     plugin reads it (host json_string), with and without 0x, so the hex
 *     decoding (eth_hex.c), the range check (secp256k1_ec_seckey_verify),
 *     the public key and address derivation and the hand-over to the host
 *     are all on secret data; also an out-of-range key and a non-hex key;
 *   - generate_key: the host's random bytes are undefined;
 *   - sign_transaction (types 0, 1, 2), sign_userop, sign_message with keys
 *     that reach the plugin undefined through host key_open: Keccak of the
 *     public payload, secp256k1_ecdsa_sign_recoverable (RFC 6979 nonce),
 *     serialisation, the low-S check, and the recovery check against the
 *     stored address -- with verify_signatures on and off;
 *   - every answer is compared with the known-answer vectors of
 *     tests/plugins/test_eth.c, so the instrumented build signs the same.
 *
 * Declassified (public by design), by ETH_DECLASSIFY in the plugin: the
 * verdicts of hex decoding and of the key range checks, the public key
 * derived from the key, the verdict of signing and the signature once
 * produced.  Everything computed from those is then public.
 *
 * libsecp256k1 as packaged by Debian is built without valgrind support, so
 * its own declassification of two internal verdicts inside
 * secp256k1_ecdsa_sign_recoverable (the RFC 6979 nonce is in range; r and s
 * are non-zero -- each false with probability ~2^-128) is a no-op;
 * tests/ctime/valgrind.supp suppresses exactly those two, and run.sh checks
 * that the suppression matched at most 2 times per signature, the number
 * printed on the last line ("ctime_eth: N signatures").
 *
 * Exit status: 0 (valgrind decides), 1 if an answer is wrong, 77 if built
 * without valgrind/memcheck.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#define CTIME_HAVE_VALGRIND 1
#endif
#endif

#ifndef CTIME_HAVE_VALGRIND
int main(void)
{
    printf("ctime_eth: built without valgrind/memcheck.h: skipped\n");
    return 77;
}
#else

#include <valgrind/memcheck.h>

#include <cjson/cJSON.h>

#include "../../plugins/eth/eth.h"
#include "../plugins/mock_host.h"

#define SECRET "5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d"
#define KEY46 "4646464646464646464646464646464646464646464646464646464646464646"
#define ADDR46 "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
#define SEED_KEY "6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a"
#define SEED_ADDR "0xe06C2c216fC36E2d40fB0199623032CC17b3B41b"
/* the group order n: out of range */
#define KEY_N "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
#define KEY_NOTHEX "46464646464646464646464646464646464646464646464646464646464646g6"
#define KID_C "22222222-2222-4222-8222-222222222222"

/* Known answers (tests/plugins/test_eth.c: ethers v6 and the seed README). */
#define SEED_TP                                                                \
    "{\"value\":0.01,\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\","   \
    "\"nonce\":0,\"type\":2,\"chainId\":4,\"gas\":100000,"                     \
    "\"maxFeePerGas\":100000000000,\"maxPriorityFeePerGas\":3000000000}"
#define SEED_SIGNED_BY_SEED                                                    \
    "0x02f873048084b2d05e0085174876e800830186a094a5d3241a1591061f2a4bb69ca0215" \
    "f66520e67cf872386f26fc1000080c001a0532545d1f03732f14e079ffa654af836a9cf1c" \
    "119091f7c9bc3fd15874c5e05da01b40f921e10add034cec47e60c687c212de18fecd5812" \
    "88048ce173124960ab1"
#define SEED_SIGNED_BY_46                                                      \
    "0x02f873048084b2d05e0085174876e800830186a094a5d3241a1591061f2a4bb69ca0215" \
    "f66520e67cf872386f26fc1000080c080a020a57337fa5f3d79935ccf8c203b6963bf0de2" \
    "1ef65ef2c053bb84bcbc63e91ea0364b2839b6e394ccf7e32f2797bef9540631b496969be" \
    "57fbfb033e58bac7c9c"
#define LEGACY_TP                                                              \
    "{\"type\":0,\"nonce\":9,\"gasPrice\":\"20000000000\",\"gas\":21000,"      \
    "\"to\":\"0x3535353535353535353535353535353535353535\","                   \
    "\"value\":\"1000000000000000000\",\"chainId\":1}"
#define LEGACY_SIGNED_BY_46                                                    \
    "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de" \
    "0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e15906" \
    "20aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6" \
    "d83"
#define TYPE1_TP                                                               \
    "{\"type\":1,\"nonce\":5,\"gasPrice\":\"0x3b9aca00\",\"gasLimit\":50000,"  \
    "\"to\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\",\"value\":\"12345\"," \
    "\"chainId\":137,\"data\":\"0xdeadbeef\",\"accessList\":[{\"address\":"    \
    "\"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359\",\"storageKeys\":["         \
    "\"0x0000000000000000000000000000000000000000000000000000000000000001\"]}]}"
#define USEROP_HASH "5033589a303c005b7e7818f4bf00e7361335f51f648be16c028951f90a1585d4"
#define USEROP_SIG_BY_46                                                       \
    "0xd59127483c9fa9f92b7e1393363ab96aaf1a9c9e9e997c85ca71118eff908a12540159d2" \
    "78850e5a23bc13306a82aa68505e27ffc48c7e8a28589cbeca85a51d1b"
#define HELLO_SIG_BY_46                                                        \
    "0xf63c93dc642a4839770b35abf9cb304ac2f1b5463d9a9abd87546feaa0af992e659cf08" \
    "7c433e45c45f6135cb819ab1922c6359dbb1b8c8d7a54141de2cd4beb1b"

static int failures;
static long signatures;

/* ---- the key as the plugin reads it: undefined ----------------------------- */

static const char *(*real_json_string)(const signer_json *v, size_t *len);

/* host->json_string, wrapped: when the string is one of the test keys,
 * its 64 key digits (not the public "0x") become undefined before the
 * plugin sees them. */
static const char *ct_json_string(const signer_json *v, size_t *len)
{
    static const char *const keys[] = {KEY46, SEED_KEY, KEY_N, KEY_NOTHEX};
    const char *s = real_json_string(v, len);
    size_t i;

    if (s == NULL || *len < 64)
        return s;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (memcmp(s + *len - 64, keys[i], 64) == 0 &&
            (*len == 64 || (*len == 66 && s[0] == '0' && s[1] == 'x'))) {
            VALGRIND_MAKE_MEM_UNDEFINED(s + *len - 64, 64);
            break;
        }
    return s;
}

/* The host's own sealing (AES-GCM in OpenSSL, constant time by design) is
 * not under test: a key is made defined as the plugin hands it to
 * key_create, and a key comes back from key_open undefined, so the plugin's
 * use of it is what memcheck watches. */
static int (*real_key_create)(signer_call *, signer_reply *, const char *,
                              const char *, const unsigned char *, size_t,
                              const signer_json *);
static int (*real_key_open)(signer_call *, signer_reply *, unsigned char *,
                            size_t, size_t *, char *, size_t, const char *,
                            const signer_json *);

static int ct_key_create(signer_call *call, signer_reply *reply,
                         const char *chain, const char *address,
                         const unsigned char *key, size_t key_len,
                         const signer_json *payload)
{
    VALGRIND_MAKE_MEM_DEFINED(key, key_len);
    return real_key_create(call, reply, chain, address, key, key_len,
                           payload);
}

static int ct_key_open(signer_call *call, signer_reply *reply,
                       unsigned char *key, size_t key_cap, size_t *key_len,
                       char *address, size_t address_cap, const char *chain,
                       const signer_json *payload)
{
    int rc = real_key_open(call, reply, key, key_cap, key_len, address,
                           address_cap, chain, payload);
    if (rc == SIGNER_OK)
        VALGRIND_MAKE_MEM_UNDEFINED(key, *key_len);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------- */

typedef struct env {
    mock_host *m;
    const signer_plugin *p;
    void *ctx;
    const char *name;
} env;

/* A mock host whose json_string is wrapped, and the plugin started on it
 * (the secp256k1 context is created and randomised here, before any key
 * is marked). */
static void env_start(env *e, const char *name, const char *settings)
{
    signer_host *h;

    e->name = name;
    e->m = mock_host_new();
    if (e->m == NULL || (settings && mock_host_set_settings(e->m, settings)))
        abort();
    /* the mock's table is ours to patch: it lives in the mock_host */
    h = (signer_host *)(void *)mock_host_get(e->m);
    real_json_string = h->json_string;
    h->json_string = ct_json_string;
    real_key_create = h->key_create;
    h->key_create = ct_key_create;
    real_key_open = h->key_open;
    h->key_open = ct_key_open;
    if (signer_plugin_init(h, &e->p, &e->ctx) != SIGNER_OK) {
        fprintf(stderr, "ctime_eth: plugin init failed\n");
        abort();
    }
}

static void env_stop(env *e)
{
    e->p->cleanup(e->ctx);
    mock_host_free(e->m);
}

static void fail(const char *what, const char *got, const char *want)
{
    fprintf(stderr, "ctime_eth: %s:\n  got  %s\n  want %s\n", what, got,
            want);
    failures++;
}

/* Runs op and checks the status; returns the answer (caller deletes).
 * Counts a signature for every successful signing operation. */
static cJSON *call(env *e, const char *op, const char *payload,
                   int want_status)
{
    char *res = NULL, what[160];
    int status = 0;
    cJSON *j;

    mock_call(e->m, e->p, e->ctx, op, payload, &res, &status);
    snprintf(what, sizeof what, "%s: %s", e->name, op);
    if (status != want_status) {
        char ws[16];
        snprintf(ws, sizeof ws, "%d", want_status);
        fail(what, res ? res : "no answer", ws);
    }
    if (status == 200 && strncmp(op, "sign_", 5) == 0)
        signatures++;
    if (mock_host_secure_live(e->m) != 0)
        fail(what, "secure memory still allocated", "none");
    j = res ? cJSON_Parse(res) : NULL;
    free(res);
    return j != NULL ? j : cJSON_CreateObject();
}

/* Checks that string field of j equals want (any string when want is
 * NULL); copies it into out (when given). */
static void field(env *e, const char *op, const cJSON *j, const char *name,
                  const char *want, char *out, size_t out_cap)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, name);
    char what[160];

    snprintf(what, sizeof what, "%s: %s: %s", e->name, op, name);
    if (!cJSON_IsString(f))
        fail(what, "absent", want ? want : "a string");
    else if (want != NULL && strcmp(f->valuestring, want) != 0)
        fail(what, f->valuestring, want);
    else if (out != NULL)
        snprintf(out, out_cap, "%s", f->valuestring);
}

static void expect(env *e, const char *op, const char *payload,
                   int want_status, const char *name, const char *want)
{
    cJSON *j = call(e, op, payload, want_status);

    field(e, op, j, name, want, NULL, 0);
    cJSON_Delete(j);
}

static void import(env *e, const char *hexkey, const char *want_addr,
                   char kid[37])
{
    char payload[512];
    cJSON *j;

    snprintf(payload, sizeof payload, "{\"eth_key\":\"%s\",\"secret\":\"%s\"}",
             hexkey, SECRET);
    j = call(e, "set_key", payload, 200);
    field(e, "set_key", j, "key_id", NULL, kid, 37);
    field(e, "set_key", j, "address", want_addr, NULL, 0);
    cJSON_Delete(j);
}

static void sign_tx(env *e, const char *kid, const char *tp,
                    const char *want)
{
    char payload[2048];

    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction_payload\":%s}",
             kid, tp);
    expect(e, "sign_transaction", payload, 200, "transaction_signed", want);
}

static void sign_more(env *e, const char *kid)
{
    char payload[512];

    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"transaction_payload\":{\"userOpHash\":\"" USEROP_HASH
             "\"}}",
             kid);
    expect(e, "sign_userop", payload, 200, "signature", USEROP_SIG_BY_46);
    snprintf(payload, sizeof payload,
             "{\"key_id\":\"%s\",\"secret\":\"" SECRET
             "\",\"message\":\"hello\"}",
             kid);
    expect(e, "sign_message", payload, 200, "signature", HELLO_SIG_BY_46);
}

/* Stores KEY46 under KID_C straight into the host's keystore (key_open
 * hands it to the plugin undefined, as if unsealed from disk). */
static void add_secret_key(env *e)
{
    unsigned char key[32];

    if (!eth_hex_decode(key, KEY46, 64))
        abort();
    if (mock_host_key_add(e->m, KID_C, "eth", ADDR46, key, sizeof key,
                          SECRET) != SIGNER_OK)
        abort();
    memset(key, 0, sizeof key);
}

int main(void)
{
    env a, b;
    char kid46[37] = "", kidseed[37] = "";
    unsigned char rnd[32];
    size_t i;

    if (!RUNNING_ON_VALGRIND)
        fprintf(stderr, "ctime_eth: not under valgrind: only the answers "
                        "are checked (use tests/ctime/run.sh)\n");

    /* A: verify_signatures on (the default) */
    env_start(&a, "verify", NULL);

    /* set_key: with 0x, without, out of range, not hex */
    import(&a, "0x" KEY46, ADDR46, kid46);
    import(&a, SEED_KEY, SEED_ADDR, kidseed);
    expect(&a, "set_key",
           "{\"eth_key\":\"" KEY_N "\",\"secret\":\"" SECRET "\"}", 400,
           "error", NULL);
    expect(&a, "set_key",
           "{\"eth_key\":\"0x" KEY_NOTHEX "\",\"secret\":\"" SECRET "\"}",
           400, "error", NULL);

    /* generate_key from undefined entropy (KEY46's bytes: known address) */
    for (i = 0; i < sizeof rnd; i++)
        rnd[i] = 0x46;
    VALGRIND_MAKE_MEM_UNDEFINED(rnd, sizeof rnd);
    mock_host_queue_random(a.m, rnd, sizeof rnd);
    expect(&a, "generate_key", "{\"secret\":\"" SECRET "\"}", 200, "address",
           ADDR46);

    /* signing with keys that reach the plugin undefined */
    sign_tx(&a, kidseed, SEED_TP, SEED_SIGNED_BY_SEED);
    sign_tx(&a, kid46, SEED_TP, SEED_SIGNED_BY_46);
    sign_tx(&a, kid46, LEGACY_TP, LEGACY_SIGNED_BY_46);
    sign_tx(&a, kid46, TYPE1_TP, NULL);
    sign_more(&a, kid46);
    add_secret_key(&a);
    sign_tx(&a, KID_C, SEED_TP, SEED_SIGNED_BY_46);
    sign_more(&a, KID_C);
    env_stop(&a);

    /* B: verify_signatures off: the signature leaves without recovery */
    env_start(&b, "no-verify", "{\"verify_signatures\":false}");
    add_secret_key(&b);
    sign_tx(&b, KID_C, SEED_TP, SEED_SIGNED_BY_46);
    sign_tx(&b, KID_C, LEGACY_TP, LEGACY_SIGNED_BY_46);
    sign_more(&b, KID_C);
    env_stop(&b);

    printf("ctime_eth: %d wrong answers\n", failures);
    printf("ctime_eth: %ld signatures\n", signatures);
    return failures ? 1 : 0;
}
#endif /* CTIME_HAVE_VALGRIND */
