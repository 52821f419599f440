/*
 * transaction_payload (JSON) -> validated eth_tx -> RLP.
 *
 *   type 0 (legacy, EIP-155):  rlp([nonce, gasPrice, gas, to, value, data,
 *                                   chainId, 0, 0])        signing payload
 *                              rlp([..., data, v, r, s])   v = 2*chainId+35+recid
 *   type 1 (EIP-2930): 0x01 || rlp([chainId, nonce, gasPrice, gas, to,
 *                                   value, data, accessList(, yParity, r, s)])
 *   type 2 (EIP-1559): 0x02 || rlp([chainId, nonce, maxPriorityFeePerGas,
 *                                   maxFeePerGas, gas, to, value, data,
 *                                   accessList(, yParity, r, s)])
 *   type 3 (EIP-4844): 0x03 || rlp([... type 2 ..., accessList,
 *                                   maxFeePerBlobGas, blobVersionedHashes
 *                                   (, yParity, r, s)])   (no sidecar)
 *   type 4 (EIP-7702): 0x04 || rlp([... type 2 ..., accessList,
 *                                   authorizationList(, yParity, r, s)])
 *
 * The body (items shared by both forms) is encoded once; the signing hash
 * and the signed form only add their tail and a list header, hashed and
 * hex-encoded piecewise, so the body is never copied.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eth.h"

#define ETH_TP "transaction_payload."

enum eth_field {
    ETH_F_TYPE,
    ETH_F_CHAIN_ID,
    ETH_F_NONCE,
    ETH_F_TO,
    ETH_F_VALUE,
    ETH_F_GAS,
    ETH_F_GAS_LIMIT,
    ETH_F_GAS_PRICE,
    ETH_F_MAX_FEE,
    ETH_F_MAX_PRIO,
    ETH_F_DATA,
    ETH_F_INPUT,
    ETH_F_ACCESS_LIST,
    ETH_F_MAX_FEE_BLOB,
    ETH_F_BLOB_HASHES,
    ETH_F_AUTH_LIST,
    ETH_F_FROM,
    ETH_F_COUNT
};

static const char *const eth_field_names[ETH_F_COUNT] = {
    "type",  "chainId", "nonce",    "to",           "value",
    "gas",   "gasLimit", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas",
    "data",  "input",   "accessList", "maxFeePerBlobGas", "blobVersionedHashes",
    "authorizationList", "from"};

/* The same, as paths for messages (no formatting per request). */
static const char *const eth_field_paths[ETH_F_COUNT] = {
    ETH_TP "type", ETH_TP "chainId", ETH_TP "nonce", ETH_TP "to",
    ETH_TP "value", ETH_TP "gas", ETH_TP "gasLimit", ETH_TP "gasPrice",
    ETH_TP "maxFeePerGas", ETH_TP "maxPriorityFeePerGas", ETH_TP "data",
    ETH_TP "input", ETH_TP "accessList", ETH_TP "maxFeePerBlobGas",
    ETH_TP "blobVersionedHashes", ETH_TP "authorizationList", ETH_TP "from"};

#define BIT(f) (1u << (f))
#define ETH_COMMON                                                             \
    (BIT(ETH_F_TYPE) | BIT(ETH_F_CHAIN_ID) | BIT(ETH_F_NONCE) |                \
     BIT(ETH_F_TO) | BIT(ETH_F_VALUE) | BIT(ETH_F_GAS) |                       \
     BIT(ETH_F_GAS_LIMIT) | BIT(ETH_F_DATA) | BIT(ETH_F_INPUT) |            \
     BIT(ETH_F_FROM))
#define ETH_1559                                                               \
    (ETH_COMMON | BIT(ETH_F_MAX_FEE) | BIT(ETH_F_MAX_PRIO) |                   \
     BIT(ETH_F_ACCESS_LIST))
#define ETH_1559_REQ                                                           \
    (BIT(ETH_F_CHAIN_ID) | BIT(ETH_F_NONCE) | BIT(ETH_F_MAX_FEE) |             \
     BIT(ETH_F_MAX_PRIO))
#define ETH_NTYPES 5

static const unsigned eth_allowed[ETH_NTYPES] = {
    ETH_COMMON | BIT(ETH_F_GAS_PRICE),
    ETH_COMMON | BIT(ETH_F_GAS_PRICE) | BIT(ETH_F_ACCESS_LIST),
    ETH_1559,
    ETH_1559 | BIT(ETH_F_MAX_FEE_BLOB) | BIT(ETH_F_BLOB_HASHES),
    ETH_1559 | BIT(ETH_F_AUTH_LIST)};

static const unsigned eth_required[ETH_NTYPES] = {
    BIT(ETH_F_CHAIN_ID) | BIT(ETH_F_NONCE) | BIT(ETH_F_GAS_PRICE),
    BIT(ETH_F_CHAIN_ID) | BIT(ETH_F_NONCE) | BIT(ETH_F_GAS_PRICE),
    ETH_1559_REQ,
    ETH_1559_REQ | BIT(ETH_F_TO) | BIT(ETH_F_MAX_FEE_BLOB) |
        BIT(ETH_F_BLOB_HASHES),
    ETH_1559_REQ | BIT(ETH_F_TO) | BIT(ETH_F_AUTH_LIST)};

#define ETH_QTY_MSG "expected a quantity (integer or 0x-hex/decimal string)"
#define ETH_MAX_SAFE 9007199254740991.0 /* 2^53 - 1 */

/* Formats the message into err; returns SIGNER_ERR_BAD_REQUEST. */
int eth_fail(char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return SIGNER_ERR_BAD_REQUEST;
}

/* Parses a quantity: JSON integer <= 2^53-1, or a "0x"-hex / decimal string
 * <= 2^256-1 (2^64-1 when u64).  name is the field path for messages. */
int eth_qty(eth_u256 *r, char *err, size_t errcap, const signer_host *h,
                   const signer_json *v, const char *name, int u64)
{
    double d;
    const char *s;
    size_t len;
    int st;

    eth_u256_set_u64(r, 0);
    if (h->json_number(v, &d)) {
        if (d != d)
            return eth_fail(err, errcap, "%s: " ETH_QTY_MSG, name);
        if (d < 0)
            return eth_fail(err, errcap, "%s: must not be negative", name);
        if (d > ETH_MAX_SAFE)
            return eth_fail(err, errcap,
                            "%s: JSON number above 2^53-1 has lost precision; "
                            "send it as a string",
                            name);
        if (d != (double)(uint64_t)d)
            return eth_fail(err, errcap, "%s: must be an integer", name);
        eth_u256_set_u64(r, (uint64_t)d);
        return SIGNER_OK;
    }
    s = h->json_string(v, &len);
    if (s == NULL)
        return eth_fail(err, errcap, "%s: " ETH_QTY_MSG, name);
    if (eth_hex_has_prefix(s, len))
        st = eth_u256_parse_hex(r, s + 2, len - 2);
    else
        st = eth_u256_parse_dec(r, s, len);
    if (st == ETH_NUM_RANGE || (st == ETH_NUM_OK && u64 && !eth_u256_fits_u64(r))) {
        eth_u256_set_u64(r, 0);
        return eth_fail(err, errcap, "%s: exceeds 2^%d-1", name, u64 ? 64 : 256);
    }
    if (st != ETH_NUM_OK)
        return eth_fail(err, errcap, "%s: " ETH_QTY_MSG, name);
    return SIGNER_OK;
}

/* value: a JSON number is ether (seed behaviour), a string is wei. */
static int eth_value(eth_u256 *r, char *err, size_t errcap,
                     const signer_host *h, const signer_json *v)
{
    double d;
    int st;

    if (!h->json_number(v, &d))
        return eth_qty(r, err, errcap, h, v, ETH_TP "value", 0);
    if (d != d)
        return eth_fail(err, errcap, ETH_TP "value: expected an amount");
    if (d < 0)
        return eth_fail(err, errcap, ETH_TP "value: must not be negative");
    if (d > ETH_MAX_SAFE)
        return eth_fail(err, errcap,
                        ETH_TP "value: JSON number above 2^53-1 has lost "
                               "precision; send wei as a string");
    st = eth_u256_from_ether(r, d);
    if (st == ETH_NUM_FRACTION)
        return eth_fail(err, errcap,
                        ETH_TP "value: not a whole number of wei (a JSON "
                               "number is in ether; send wei as a string)");
    if (st != ETH_NUM_OK)
        return eth_fail(err, errcap, ETH_TP "value: expected an amount");
    return SIGNER_OK;
}

/* data / input: "0x" followed by an even number of hex digits. */
static int eth_data(const char **hex, size_t *hexlen, char *err, size_t errcap,
                    const signer_host *h, const signer_json *v,
                    const char *name)
{
    size_t len;
    const char *s = h->json_string(v, &len);

    if (s == NULL || !eth_hex_has_prefix(s, len) || len % 2 != 0 ||
        !eth_hex_is_digits(s + 2, len - 2))
        return eth_fail(err, errcap,
                        "%s: expected 0x-prefixed hex with an even number of "
                        "digits",
                        name);
    *hex = s + 2;
    *hexlen = len - 2;
    return SIGNER_OK;
}

/* An address (EIP-55 checked when mixed case); name is the path. */
int eth_address(unsigned char out[20], char *err, size_t errcap,
                const signer_host *h, const signer_json *v, const char *name)
{
    size_t len;
    const char *s = h->json_string(v, &len);
    int st;

    if (s == NULL)
        return eth_fail(err, errcap, "%s: expected a 20-byte hex address",
                        name);
    st = eth_addr_parse(out, s, len);
    if (st == ETH_ADDR_CHECKSUM)
        return eth_fail(err, errcap,
                        "%s: bad EIP-55 checksum (use the checksummed form "
                        "or a single case)",
                        name);
    if (st != ETH_ADDR_OK)
        return eth_fail(err, errcap, "%s: expected a 20-byte hex address",
                        name);
    return SIGNER_OK;
}

/* 1 if v is 32 bytes as 64 hex digits, optional 0x; decoded into out when
 * not NULL. */
int eth_hex32(unsigned char *out, const signer_host *h, const signer_json *v)
{
    size_t len;
    const char *s = h->json_string(v, &len);
    unsigned char tmp[32];

    if (s == NULL)
        return 0;
    if (eth_hex_has_prefix(s, len)) {
        s += 2;
        len -= 2;
    }
    return len == 64 && eth_hex_decode(out ? out : tmp, s, 64);
}

/* accessList: [{address, storageKeys: [32-byte hex, ...]}, ...] */
static int eth_access_list_check(char *err, size_t errcap,
                                 const signer_host *h, const signer_json *al)
{
    size_t n, i;

    if (h->json_type(al) != SIGNER_JSON_ARRAY)
        return eth_fail(err, errcap,
                        ETH_TP "accessList: expected an array of "
                               "{address, storageKeys}");
    n = h->json_count(al);
    for (i = 0; i < n; i++) {
        const signer_json *e = h->json_at(al, i, NULL);
        const signer_json *addr = NULL, *keys = NULL;
        unsigned char a[20];
        char name[80];
        size_t m, j;
        int rc;

        if (h->json_type(e) != SIGNER_JSON_OBJECT)
            return eth_fail(err, errcap,
                            ETH_TP "accessList[%zu]: expected an object "
                                   "{address, storageKeys}",
                            i);
        m = h->json_count(e);
        for (j = 0; j < m; j++) {
            const char *k = NULL;
            const signer_json *f = h->json_at(e, j, &k);
            if (k != NULL && strcmp(k, "address") == 0 && addr == NULL)
                addr = f;
            else if (k != NULL && strcmp(k, "storageKeys") == 0 && keys == NULL)
                keys = f;
            else
                return eth_fail(err, errcap,
                                ETH_TP "accessList[%zu].%.64s: unknown or "
                                       "duplicate field",
                                i, k ? k : "");
        }
        if (addr == NULL)
            return eth_fail(err, errcap,
                            ETH_TP "accessList[%zu].address: required", i);
        snprintf(name, sizeof name, ETH_TP "accessList[%zu].address", i);
        rc = eth_address(a, err, errcap, h, addr, name);
        if (rc != SIGNER_OK)
            return rc;
        if (keys == NULL)
            return eth_fail(err, errcap,
                            ETH_TP "accessList[%zu].storageKeys: required", i);
        if (h->json_type(keys) != SIGNER_JSON_ARRAY)
            return eth_fail(err, errcap,
                            ETH_TP "accessList[%zu].storageKeys: expected an "
                                   "array of 32-byte hex strings",
                            i);
        m = h->json_count(keys);
        for (j = 0; j < m; j++) {
            if (!eth_hex32(NULL, h, h->json_at(keys, j, NULL)))
                return eth_fail(err, errcap,
                                ETH_TP "accessList[%zu].storageKeys[%zu]: "
                                       "expected a 32-byte hex string",
                                i, j);
        }
    }
    return SIGNER_OK;
}

/* type: absent is 2; else a quantity 0..4.  An unsupported type is named
 * in the message. */
static int eth_tx_type(int *type, char *err, size_t errcap,
                       const signer_host *h, const signer_json *v)
{
    eth_u256 t;
    char text[80];
    size_t len;
    const char *s;

    *type = 2;
    if (v == NULL)
        return SIGNER_OK;
    if (eth_qty(&t, err, errcap, h, v, ETH_TP "type", 0) != SIGNER_OK) {
        s = h->json_string(v, &len);
        if (s != NULL)
            snprintf(text, sizeof text, "\"%.40s\"", s);
        else
            snprintf(text, sizeof text, "%s", "this value");
    } else if (!eth_u256_fits_u64(&t)) {
        snprintf(text, sizeof text, "%s", "above 2^64");
    } else if (t.w[0] >= ETH_NTYPES) {
        snprintf(text, sizeof text, "%llu", (unsigned long long)t.w[0]);
    } else {
        *type = (int)t.w[0];
        return SIGNER_OK;
    }
    return eth_fail(err, errcap,
                    ETH_TP "type: type %s is not supported (0 legacy, "
                           "1 EIP-2930, 2 EIP-1559, 3 EIP-4844, 4 EIP-7702)",
                    text);
}

/* Collects the members of tp into fv[]: each must be a known field, of this
 * type, and appear once (bounded: at most ETH_F_COUNT + 1 iterations before
 * an error). */
static int eth_tx_members(const signer_json *fv[ETH_F_COUNT], unsigned *seen,
                          char *err, size_t errcap, const signer_host *h,
                          const signer_json *tp, int type)
{
    size_t n = h->json_count(tp), i;
    int f;

    for (i = 0; i < n; i++) {
        const char *key = NULL;
        const signer_json *v = h->json_at(tp, i, &key);
        for (f = 0; f < ETH_F_COUNT; f++) /* first letters, then strcmp */
            if (key != NULL && key[0] == eth_field_names[f][0] &&
                strcmp(key, eth_field_names[f]) == 0)
                break;
        if (f == ETH_F_COUNT)
            return eth_fail(err, errcap, ETH_TP "%.64s: unknown field",
                            key ? key : "");
        if (*seen & BIT(f))
            return eth_fail(err, errcap, ETH_TP "%s: duplicate field",
                            eth_field_names[f]);
        if (!(eth_allowed[type] & BIT(f)))
            return eth_fail(err, errcap,
                            ETH_TP "%s: %s is not a field of type %d",
                            eth_field_names[f], eth_field_names[f], type);
        *seen |= BIT(f);
        fv[f] = v;
    }
    return SIGNER_OK;
}

/* blobVersionedHashes: at least one 32-byte hash, version byte 0x01. */
static int eth_blob_hashes_check(char *err, size_t errcap,
                                 const signer_host *h, const signer_json *a)
{
    size_t n, i;

    if (h->json_type(a) != SIGNER_JSON_ARRAY || h->json_count(a) == 0)
        return eth_fail(err, errcap,
                        ETH_TP "blobVersionedHashes: expected a non-empty "
                               "array of 32-byte hex hashes");
    n = h->json_count(a);
    for (i = 0; i < n; i++) {
        unsigned char hash[32];
        if (!eth_hex32(hash, h, h->json_at(a, i, NULL)))
            return eth_fail(err, errcap,
                            ETH_TP "blobVersionedHashes[%zu]: expected a "
                                   "32-byte hex string",
                            i);
        if (hash[0] != 0x01)
            return eth_fail(err, errcap,
                            ETH_TP "blobVersionedHashes[%zu]: version byte "
                                   "must be 0x01 (KZG)",
                            i);
    }
    return SIGNER_OK;
}

/* authorizationList: at least one signed tuple. */
static int eth_auth_list_check(char *err, size_t errcap, const signer_host *h,
                               const signer_json *a)
{
    char name[64];
    size_t n, i;
    int rc;

    if (h->json_type(a) != SIGNER_JSON_ARRAY || h->json_count(a) == 0)
        return eth_fail(err, errcap,
                        ETH_TP "authorizationList: expected a non-empty array "
                               "of {chainId, address, nonce, yParity, r, s}");
    n = h->json_count(a);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof name, ETH_TP "authorizationList[%zu]", i);
        rc = eth_auth_check(err, errcap, h, h->json_at(a, i, NULL), name);
        if (rc != SIGNER_OK)
            return rc;
    }
    return SIGNER_OK;
}

/* The fields only types 3 and 4 have, and from. */
static int eth_tx_extras(eth_tx *tx, char *err, size_t errcap,
                         const signer_host *h,
                         const signer_json *const fv[ETH_F_COUNT])
{
    int rc;

    if (tx->type >= 3 && !tx->has_to)
        return eth_fail(err, errcap,
                        ETH_TP "to: required in a type %d transaction (it "
                               "cannot create a contract)",
                        tx->type);
    if (fv[ETH_F_MAX_FEE_BLOB] != NULL) {
        rc = eth_qty(&tx->max_fee_blob, err, errcap, h, fv[ETH_F_MAX_FEE_BLOB],
                     ETH_TP "maxFeePerBlobGas", 0);
        if (rc != SIGNER_OK)
            return rc;
    }
    if (fv[ETH_F_BLOB_HASHES] != NULL) {
        rc = eth_blob_hashes_check(err, errcap, h, fv[ETH_F_BLOB_HASHES]);
        if (rc != SIGNER_OK)
            return rc;
        tx->blob_hashes = fv[ETH_F_BLOB_HASHES];
    }
    if (fv[ETH_F_AUTH_LIST] != NULL) {
        rc = eth_auth_list_check(err, errcap, h, fv[ETH_F_AUTH_LIST]);
        if (rc != SIGNER_OK)
            return rc;
        tx->auth_list = fv[ETH_F_AUTH_LIST];
    }
    if (fv[ETH_F_FROM] != NULL) {
        rc = eth_address(tx->from, err, errcap, h, fv[ETH_F_FROM],
                         ETH_TP "from");
        if (rc != SIGNER_OK)
            return rc;
        tx->has_from = 1;
    }
    return SIGNER_OK;
}

int eth_tx_parse(eth_tx *tx, char *err, size_t errcap, const signer_host *h,
                 const signer_json *tp)
{
    const signer_json *fv[ETH_F_COUNT] = {NULL};
    const char *gas_name;
    unsigned seen = 0;
    size_t i;
    int f, rc;
    static const struct {
        int field;
        int u64;
        size_t off;
    } qty[] = {
        {ETH_F_CHAIN_ID, 1, offsetof(eth_tx, chain_id)},
        {ETH_F_NONCE, 1, offsetof(eth_tx, nonce)},
        {ETH_F_GAS, 1, offsetof(eth_tx, gas)},
        {ETH_F_GAS_PRICE, 0, offsetof(eth_tx, gas_price)},
        {ETH_F_MAX_FEE, 0, offsetof(eth_tx, max_fee)},
        {ETH_F_MAX_PRIO, 0, offsetof(eth_tx, max_prio)},
    };

    memset(tx, 0, sizeof *tx);
    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (h->json_type(tp) == SIGNER_JSON_INVALID)
        return eth_fail(err, errcap, "transaction_payload: required");
    if (h->json_type(tp) != SIGNER_JSON_OBJECT)
        return eth_fail(err, errcap, "transaction_payload: expected an object");

    rc = eth_tx_type(&tx->type, err, errcap, h, h->json_get(tp, "type"));
    if (rc != SIGNER_OK)
        return rc;
    rc = eth_tx_members(fv, &seen, err, errcap, h, tp, tx->type);
    if (rc != SIGNER_OK)
        return rc;
    if (!(seen & (BIT(ETH_F_GAS) | BIT(ETH_F_GAS_LIMIT))))
        return eth_fail(err, errcap, ETH_TP "gas: required (or gasLimit)");
    for (f = 0; f < ETH_F_COUNT; f++)
        if ((eth_required[tx->type] & BIT(f)) && !(seen & BIT(f)))
            return eth_fail(err, errcap,
                            ETH_TP "%s: required in a type %d transaction",
                            eth_field_names[f], tx->type);

    /* quantities */
    gas_name = eth_field_paths[ETH_F_GAS];
    if (fv[ETH_F_GAS] == NULL) {
        fv[ETH_F_GAS] = fv[ETH_F_GAS_LIMIT];
        fv[ETH_F_GAS_LIMIT] = NULL;
        gas_name = eth_field_paths[ETH_F_GAS_LIMIT];
    }
    for (i = 0; i < sizeof qty / sizeof qty[0]; i++) {
        const signer_json *v = fv[qty[i].field];
        eth_u256 *dst = (eth_u256 *)((char *)tx + qty[i].off);
        if (v == NULL)
            continue;
        rc = eth_qty(dst, err, errcap, h, v,
                     qty[i].field == ETH_F_GAS
                         ? gas_name
                         : eth_field_paths[qty[i].field],
                     qty[i].u64);
        if (rc != SIGNER_OK)
            return rc;
    }
    if (fv[ETH_F_GAS_LIMIT] != NULL) {
        eth_u256 gl;
        rc = eth_qty(&gl, err, errcap, h, fv[ETH_F_GAS_LIMIT],
                     ETH_TP "gasLimit", 1);
        if (rc != SIGNER_OK)
            return rc;
        if (eth_u256_cmp(&gl, &tx->gas) != 0)
            return eth_fail(err, errcap,
                            ETH_TP "gasLimit: differs from gas (give one)");
    }
    if (eth_u256_is_zero(&tx->chain_id))
        return eth_fail(err, errcap, ETH_TP "chainId: must be at least 1");
    /* EIP-2681: a nonce of 2^64-1 can never be included (the account's
     * nonce could not be incremented past it) */
    if (tx->nonce.w[0] == UINT64_MAX)
        return eth_fail(err, errcap,
                        ETH_TP "nonce: exceeds 2^64-2 (EIP-2681)");
    if (tx->type >= 2 && eth_u256_cmp(&tx->max_prio, &tx->max_fee) > 0)
        return eth_fail(err, errcap,
                        ETH_TP "maxPriorityFeePerGas: exceeds maxFeePerGas");

    /* to: absent or null = contract creation */
    if (fv[ETH_F_TO] != NULL && h->json_type(fv[ETH_F_TO]) != SIGNER_JSON_NULL) {
        rc = eth_address(tx->to, err, errcap, h, fv[ETH_F_TO], ETH_TP "to");
        if (rc != SIGNER_OK)
            return rc;
        tx->has_to = 1;
    }

    /* value */
    if (fv[ETH_F_VALUE] != NULL) {
        rc = eth_value(&tx->value, err, errcap, h, fv[ETH_F_VALUE]);
        if (rc != SIGNER_OK)
            return rc;
    }

    /* data / input */
    tx->data_hex = "";
    tx->data_hex_len = 0;
    if (fv[ETH_F_DATA] != NULL) {
        rc = eth_data(&tx->data_hex, &tx->data_hex_len, err, errcap, h,
                      fv[ETH_F_DATA], ETH_TP "data");
        if (rc != SIGNER_OK)
            return rc;
    }
    if (fv[ETH_F_INPUT] != NULL) {
        const char *ih;
        size_t il;
        rc = eth_data(&ih, &il, err, errcap, h, fv[ETH_F_INPUT],
                      ETH_TP "input");
        if (rc != SIGNER_OK)
            return rc;
        if (fv[ETH_F_DATA] == NULL) {
            tx->data_hex = ih;
            tx->data_hex_len = il;
        } else {
            size_t k;
            if (il != tx->data_hex_len)
                return eth_fail(err, errcap,
                                ETH_TP "input: differs from data (give one)");
            for (k = 0; k < il; k++) {
                char a = ih[k], b = tx->data_hex[k];
                if (a >= 'A' && a <= 'F')
                    a = (char)(a - 'A' + 'a');
                if (b >= 'A' && b <= 'F')
                    b = (char)(b - 'A' + 'a');
                if (a != b)
                    return eth_fail(err, errcap,
                                    ETH_TP "input: differs from data (give "
                                           "one)");
            }
        }
    }

    /* accessList */
    if (fv[ETH_F_ACCESS_LIST] != NULL) {
        rc = eth_access_list_check(err, errcap, h, fv[ETH_F_ACCESS_LIST]);
        if (rc != SIGNER_OK)
            return rc;
        tx->access_list = fv[ETH_F_ACCESS_LIST];
    }
    return eth_tx_extras(tx, err, errcap, h, fv);
}

/* Appends the (validated) access list as an RLP list. */
static int eth_access_list_rlp(eth_buf *b, const signer_host *h,
                               const signer_json *al)
{
    size_t outer = eth_rlp_list_begin(b), n, i;

    n = al != NULL ? h->json_count(al) : 0;
    for (i = 0; i < n; i++) {
        const signer_json *e = h->json_at(al, i, NULL);
        const signer_json *keys = h->json_get(e, "storageKeys");
        const char *s;
        size_t len, m, j, entry, klist;
        unsigned char a[20];

        entry = eth_rlp_list_begin(b);
        s = h->json_string(h->json_get(e, "address"), &len);
        if (s == NULL || eth_addr_parse(a, s, len) != ETH_ADDR_OK ||
            !eth_rlp_bytes(b, a, 20))
            return 0;
        klist = eth_rlp_list_begin(b);
        m = h->json_count(keys);
        for (j = 0; j < m; j++) {
            unsigned char k[33];
            k[0] = 0x80 + 32;
            if (!eth_hex32(k + 1, h, h->json_at(keys, j, NULL)) ||
                !eth_buf_append(b, k, 33))
                return 0;
        }
        if (!eth_rlp_list_end(b, klist) || !eth_rlp_list_end(b, entry))
            return 0;
    }
    return eth_rlp_list_end(b, outer);
}

/* Appends the (validated) blob versioned hashes as an RLP list. */
static int eth_blob_hashes_rlp(eth_buf *b, const signer_host *h,
                               const signer_json *a)
{
    size_t start = eth_rlp_list_begin(b), n = h->json_count(a), i;

    for (i = 0; i < n; i++) {
        unsigned char k[33];
        k[0] = 0x80 + 32;
        if (!eth_hex32(k + 1, h, h->json_at(a, i, NULL)) ||
            !eth_buf_append(b, k, 33))
            return 0;
    }
    return eth_rlp_list_end(b, start);
}

int eth_tx_body(eth_buf *b, const signer_host *h, const eth_tx *tx)
{
    static const unsigned char none[1];
    int ok;

    if (tx->type != 0 && !eth_rlp_u256(b, &tx->chain_id))
        return 0;
    ok = eth_rlp_u256(b, &tx->nonce);
    if (tx->type >= 2)
        ok = ok && eth_rlp_u256(b, &tx->max_prio) &&
             eth_rlp_u256(b, &tx->max_fee);
    else
        ok = ok && eth_rlp_u256(b, &tx->gas_price);
    ok = ok && eth_rlp_u256(b, &tx->gas) &&
         (tx->has_to ? eth_rlp_bytes(b, tx->to, 20) : eth_rlp_bytes(b, none, 0)) &&
         eth_rlp_u256(b, &tx->value) &&
         eth_rlp_hex(b, tx->data_hex, tx->data_hex_len);
    if (ok && tx->type != 0)
        ok = eth_access_list_rlp(b, h, tx->access_list);
    if (ok && tx->type == 3)
        ok = eth_rlp_u256(b, &tx->max_fee_blob) &&
             eth_blob_hashes_rlp(b, h, tx->blob_hashes);
    if (ok && tx->type == 4)
        ok = eth_auth_list_rlp(b, h, tx->auth_list);
    return ok;
}

/* Keccak of [type byte] || list header(b->len) || b. */
static void eth_tx_hash_parts(unsigned char out[32], const unsigned char *pre,
                              size_t prelen, const eth_buf *b)
{
    eth_keccak k;

    eth_keccak_init(&k);
    eth_keccak_update(&k, pre, prelen);
    eth_keccak_update(&k, b->p, b->len);
    eth_keccak_final(&k, out);
}

/* pre = [type] || header for a list of payload length len; returns length */
static size_t eth_tx_prefix(unsigned char pre[10], const eth_tx *tx, size_t len)
{
    size_t n = 0;

    if (tx->type != 0)
        pre[n++] = (unsigned char)tx->type;
    return n + eth_rlp_header(pre + n, 0xc0, len);
}

int eth_tx_sighash(unsigned char out[32], eth_buf *b, const eth_tx *tx)
{
    unsigned char pre[10];
    size_t body = b->len;
    int ok = 1;

    memset(out, 0, 32);
    if (tx->type == 0) /* EIP-155: chainId, 0, 0 */
        ok = eth_rlp_u256(b, &tx->chain_id) && eth_buf_append(b, "\x80\x80", 2);
    if (ok)
        eth_tx_hash_parts(out, pre, eth_tx_prefix(pre, tx, b->len), b);
    b->len = body;
    return ok;
}

/* Appends a 32-byte big-endian integer as a canonical RLP integer. */
static int eth_rlp_be32(eth_buf *b, const unsigned char *be)
{
    size_t skip = 0;

    while (skip < 32 && be[skip] == 0)
        skip++;
    return eth_rlp_bytes(b, be + skip, 32 - skip);
}

int eth_tx_finish(eth_buf *hex, unsigned char txhash[32], eth_buf *b,
                  const eth_tx *tx, const unsigned char rs[64], int recid)
{
    unsigned char pre[10];
    size_t prelen, total;
    char *w;
    int ok;

    memset(txhash, 0, 32);
    if (tx->type == 0) {
        eth_u256 v = tx->chain_id; /* chainId * 2 + 35 + recid */
        ok = eth_u256_mul_add(&v, 2, 35 + (uint64_t)recid) &&
             eth_rlp_u256(b, &v);
    } else {
        ok = eth_rlp_u64(b, (uint64_t)recid);
    }
    ok = ok && eth_rlp_be32(b, rs) && eth_rlp_be32(b, rs + 32);
    if (!ok)
        return 0;
    prelen = eth_tx_prefix(pre, tx, b->len);
    total = prelen + b->len;
    w = (char *)eth_buf_reserve(hex, 2 * total + 3);
    if (w == NULL)
        return 0;
    w[0] = '0';
    w[1] = 'x';
    eth_hex_raw(w + 2, pre, prelen);
    eth_hex_raw(w + 2 + 2 * prelen, b->p, b->len);
    w[2 + 2 * total] = '\0';
    hex->len += 2 * total + 2;
    eth_tx_hash_parts(txhash, pre, prelen, b);
    return 1;
}
