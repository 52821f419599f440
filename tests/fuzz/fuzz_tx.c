/*
 * fuzz_tx: arbitrary text as the transaction_payload of sign_transaction,
 * run by the Ethereum plugin on the mock host with a known key
 * (transaction payload -> validation -> RLP -> signature), the plugin's
 * sources linked in.
 *
 * Invariants: the answer is 200 or 400/413 (never 500: nothing internal
 * fails on bad input), the status matches the handler's result, secure
 * memory is all given back, the secret and the key never appear in an
 * answer unless the request held them; a signed transaction is "0x" + hex of canonical RLP -- a list of
 * 9 items (legacy) or a type byte 1/2/3/4 and a list of 11/12/14/13 items consuming
 * every byte, r and s 1..32 bytes -- and transaction_hash is its Keccak-256;
 * a userOp signature is 65 bytes with v 27 or 28.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strcasestr */
#endif
#include <string.h>

#include <cjson/cJSON.h>

#include "../../plugins/eth/eth.h"
#include "../plugins/mock_host.h"
#include "fuzz.h"

#define SECRET "5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d"
#define KEY46 "4646464646464646464646464646464646464646464646464646464646464646"
#define ADDR46 "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
#define KID "11111111-1111-4111-8111-111111111111"

static mock_host *M;
static const signer_plugin *P;
static void *CTX;

static void fuzz_tx_cleanup(void)
{
    if (P != NULL && P->cleanup != NULL)
        P->cleanup(CTX);
    mock_host_free(M);
    M = NULL;
    P = NULL;
}

static int tx_setup(void)
{
    unsigned char key[32];

    if (M != NULL)
        return 0;
    M = mock_host_new();
    if (M == NULL || signer_plugin_init(mock_host_get(M), &P, &CTX) != 0) {
        fprintf(stderr, "fuzz_tx: cannot start the eth plugin\n");
        abort();
    }
    if (!eth_hex_decode(key, KEY46, 64) ||
        mock_host_key_add(M, KID, "eth", ADDR46, key, 32, SECRET) != 0) {
        fprintf(stderr, "fuzz_tx: cannot store the test key\n");
        abort();
    }
    atexit(fuzz_tx_cleanup);
    return 0;
}

FUZZ_INIT(tx)
{
    (void)argc;
    (void)argv;
    return tx_setup();
}

/* Decodes "0x" + even hex into a malloc'd buffer; NULL if malformed. */
static unsigned char *unhex(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out;

    if (n < 2 || s[0] != '0' || s[1] != 'x' || n % 2 != 0)
        return NULL;
    *len = (n - 2) / 2;
    out = malloc(*len ? *len : 1);
    if (out == NULL)
        abort();
    if (!eth_hex_decode(out, s + 2, n - 2)) {
        free(out);
        return NULL;
    }
    return out;
}

/* One canonical RLP item at p[0..n): returns its total size and sets
 * *payload / *plen / *is_list, or 0 if malformed or not canonical. */
static size_t rlp_item(const unsigned char *p, size_t n, size_t *off,
                       size_t *plen, int *is_list)
{
    unsigned b;
    size_t ll, len = 0, i;

    if (n == 0)
        return 0;
    b = p[0];
    *is_list = b >= 0xc0;
    if (b < 0x80) {
        *off = 0;
        *plen = 1;
        return 1;
    }
    if (b <= 0xb7 || (b >= 0xc0 && b <= 0xf7)) {
        len = b - (b >= 0xc0 ? 0xc0u : 0x80u);
        if (len > n - 1)
            return 0;
        /* a single byte below 0x80 must encode itself */
        if (!*is_list && len == 1 && p[1] < 0x80)
            return 0;
        *off = 1;
        *plen = len;
        return 1 + len;
    }
    ll = b - (b >= 0xf8 ? 0xf7u : 0xb7u);
    if (ll > 8 || ll > n - 1 || p[1] == 0)
        return 0;
    for (i = 0; i < ll; i++) {
        if (len > ((size_t)-1 >> 8))
            return 0;
        len = len << 8 | p[1 + i];
    }
    if (len < 56 || len > n - 1 - ll)
        return 0;
    *off = 1 + ll;
    *plen = len;
    return 1 + ll + len;
}

/* Validates a list's items (recursively); returns the item count or -1. */
static long rlp_list(const unsigned char *p, size_t n, size_t *last_sizes)
{
    long count = 0;
    size_t pos = 0;

    while (pos < n) {
        size_t off, plen, sz;
        int is_list;
        sz = rlp_item(p + pos, n - pos, &off, &plen, &is_list);
        if (sz == 0)
            return -1;
        if (is_list && rlp_list(p + pos + off, plen, NULL) < 0)
            return -1;
        if (last_sizes != NULL) {
            /* remember the payload lengths of the last three items */
            last_sizes[0] = last_sizes[1];
            last_sizes[1] = last_sizes[2];
            last_sizes[2] = is_list ? (size_t)-1 : plen;
            if (!is_list && plen == 1 && off == 0 && p[pos] == 0)
                last_sizes[2] = 0; /* 0x00 is not canonical for ints */
        }
        pos += sz;
        count++;
    }
    return count;
}

static void check_signed(const char *signed_hex, const char *hash_hex)
{
    unsigned char *raw, h[32];
    char hh[2 * 32 + 3];
    size_t n, off, plen, sz, start = 0, last[3] = {0, 0, 0};
    int is_list;
    long items, want;

    raw = unhex(signed_hex, &n);
    FUZZ_CHECK(raw != NULL && n > 0);
    if (raw[0] < 0x80) {
        static const long count[5] = {0, 11, 12, 14, 13};
        FUZZ_CHECK(raw[0] >= 1 && raw[0] <= 4);
        want = count[raw[0]];
        start = 1;
    } else {
        want = 9;
    }
    sz = rlp_item(raw + start, n - start, &off, &plen, &is_list);
    FUZZ_CHECK(sz != 0 && is_list && start + sz == n);
    items = rlp_list(raw + start + off, plen, last);
    FUZZ_CHECK(items == want);
    /* r and s: 1..32 bytes (minimal integers, never zero) */
    FUZZ_CHECK(last[1] >= 1 && last[1] <= 32);
    FUZZ_CHECK(last[2] >= 1 && last[2] <= 32);
    eth_keccak256(h, raw, n);
    eth_hex_encode(hh, h, 32);
    FUZZ_CHECK(hash_hex != NULL && strcmp(hh, hash_hex) == 0);
    free(raw);
}

static const char *str_field(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

FUZZ_TARGET(tx)
{
    static const char pre[] =
        "{\"key_id\":\"" KID "\",\"secret\":\"" SECRET
        "\",\"transaction_payload\":";
    char *payload, *res = NULL;
    size_t n;
    int rc, status = 0;
    cJSON *j;

    if (M == NULL)
        FUZZ_CHECK(tx_setup() == 0);
    n = sizeof pre - 1 + size + 2;
    payload = malloc(n);
    if (payload == NULL)
        abort();
    memcpy(payload, pre, sizeof pre - 1);
    memcpy(payload + sizeof pre - 1, data, size);
    payload[sizeof pre - 1 + size] = '}';
    payload[sizeof pre - 1 + size + 1] = '\0';

    rc = mock_call(M, P, CTX, "sign_transaction", payload, &res, &status);
    FUZZ_CHECK(res != NULL);
    FUZZ_CHECK(status == 200 || status == 400 || status == 413);
    FUZZ_CHECK((rc == 0) == (status == 200));
    FUZZ_CHECK(mock_host_secure_live(M) == 0);
    /* the stored key and secret never appear in an answer -- unless the
     * request held them itself (an answer may quote an unknown field's name
     * or return calldata), raw or JSON-decoded */
    {
        cJSON *in = cJSON_ParseWithLength(payload + sizeof pre - 1, size);
        cJSON *outj = cJSON_Parse(res);
        int held = strcasestr(payload + sizeof pre - 1, SECRET) != NULL ||
                   strcasestr(payload + sizeof pre - 1, KEY46) != NULL ||
                   fuzz_json_has(in, SECRET) || fuzz_json_has(in, KEY46);
        if (!held)
            FUZZ_CHECK(!fuzz_json_has(outj, SECRET) &&
                       !fuzz_json_has(outj, KEY46));
        cJSON_Delete(in);
        cJSON_Delete(outj);
    }
    FUZZ_CHECK(strstr(mock_host_log_text(M), SECRET) == NULL);
    j = cJSON_Parse(res);
    FUZZ_CHECK(j != NULL && cJSON_IsObject(j));
    if (status == 200) {
        const char *sig = str_field(j, "signature");
        if (sig != NULL) {
            size_t sl = 0;
            unsigned char *b = unhex(sig, &sl);
            FUZZ_CHECK(b != NULL && sl == 65 && (b[64] == 27 || b[64] == 28));
            free(b);
        } else {
            FUZZ_CHECK(str_field(j, "transaction_signed") != NULL);
            check_signed(str_field(j, "transaction_signed"),
                         str_field(j, "transaction_hash"));
        }
    } else {
        const char *e = str_field(j, "error");
        FUZZ_CHECK(e != NULL && e[0] != '\0');
    }
    cJSON_Delete(j);
    free(res);
    free(payload);
    mock_host_log_clear(M);
    return 0;
}
