/*
 * ERC-4337 userOpHash, computed as each EntryPoint's getUserOpHash does
 * (sources: @account-abstraction/contracts 0.6.0 interfaces/UserOperation.sol,
 * 0.7.0 and 0.8.0 core/UserOperationLib.sol, core/EntryPoint.sol, 0.8.0
 * core/Eip7702Support.sol).
 *
 *   v0.6  structHash = keccak(abi.encode(sender, nonce, keccak(initCode),
 *             keccak(callData), callGasLimit, verificationGasLimit,
 *             preVerificationGas, maxFeePerGas, maxPriorityFeePerGas,
 *             keccak(paymasterAndData)))
 *   v0.7  structHash = keccak(abi.encode(sender, nonce, keccak(initCode),
 *             keccak(callData), accountGasLimits, preVerificationGas,
 *             gasFees, keccak(paymasterAndData)))
 *         v0.6/v0.7 userOpHash = keccak(abi.encode(structHash, entryPoint,
 *             chainId))
 *   v0.8  structHash = keccak(abi.encode(PACKED_USEROP_TYPEHASH, <the v0.7
 *             words>)), userOpHash = keccak(0x1901 || domainSeparator ||
 *             structHash), domain {name "ERC4337", version "1", chainId,
 *             verifyingContract entryPoint}.  An initCode whose first 20
 *             bytes are 0x7702 followed by zeros (shorter initCode counts as
 *             zero-padded) hashes as keccak(delegate || initCode[20:]),
 *             delegate being the sender's EIP-7702 delegate (chain state:
 *             the caller must name it).
 *
 * v0.7/v0.8 accept the packed fields (initCode, accountGasLimits = verif ||
 * call gas, gasFees = priority fee || max fee, paymasterAndData = paymaster
 * || verif gas || postOp gas || data, 16-byte halves) or the unpacked RPC
 * form (factory/factoryData, callGasLimit ..., paymaster...), never both.
 *
 * The 32 bytes to sign are the hash itself ("raw", SimpleAccount v0.8) or
 * its EIP-191 personal-sign hash ("eip191", SimpleAccount v0.6/v0.7).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eth.h"

#define ETH_UO "user_operation."

/* ---- fields ------------------------------------------------------------- */

enum eth_uo_field {
    UO_SENDER,
    UO_NONCE,
    UO_INIT_CODE,
    UO_CALL_DATA,
    UO_CALL_GAS,
    UO_VERIF_GAS,
    UO_PRE_VERIF_GAS,
    UO_MAX_FEE,
    UO_MAX_PRIO,
    UO_PM_AND_DATA,
    UO_SIGNATURE,
    UO_ACCOUNT_GAS,
    UO_GAS_FEES,
    UO_FACTORY,
    UO_FACTORY_DATA,
    UO_PAYMASTER,
    UO_PM_VERIF_GAS,
    UO_PM_POSTOP_GAS,
    UO_PM_DATA,
    UO_EIP7702_AUTH,
    UO_COUNT
};

static const char *const eth_uo_names[UO_COUNT] = {
    "sender",
    "nonce",
    "initCode",
    "callData",
    "callGasLimit",
    "verificationGasLimit",
    "preVerificationGas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "paymasterAndData",
    "signature",
    "accountGasLimits",
    "gasFees",
    "factory",
    "factoryData",
    "paymaster",
    "paymasterVerificationGasLimit",
    "paymasterPostOpGasLimit",
    "paymasterData",
    "eip7702Auth"};

#define B(f) (1u << (f))
#define UO_BASE (B(UO_SENDER) | B(UO_NONCE) | B(UO_CALL_DATA) | \
                 B(UO_PRE_VERIF_GAS) | B(UO_SIGNATURE))
#define UO_GAS5 (B(UO_CALL_GAS) | B(UO_VERIF_GAS) | B(UO_MAX_FEE) | \
                 B(UO_MAX_PRIO))
/* the packed-only fields; any of them selects the packed form */
#define UO_PACKED_ONLY (B(UO_INIT_CODE) | B(UO_ACCOUNT_GAS) | \
                        B(UO_GAS_FEES) | B(UO_PM_AND_DATA))

enum eth_uo_form { UO_FORM_V06, UO_FORM_PACKED, UO_FORM_UNPACKED };

static const unsigned eth_uo_allowed[3] = {
    UO_BASE | UO_GAS5 | B(UO_INIT_CODE) | B(UO_PM_AND_DATA),
    UO_BASE | UO_PACKED_ONLY | B(UO_EIP7702_AUTH),
    UO_BASE | UO_GAS5 | B(UO_FACTORY) | B(UO_FACTORY_DATA) |
        B(UO_PAYMASTER) | B(UO_PM_VERIF_GAS) | B(UO_PM_POSTOP_GAS) |
        B(UO_PM_DATA) | B(UO_EIP7702_AUTH)};

static const unsigned eth_uo_required[3] = {
    (UO_BASE & ~B(UO_SIGNATURE)) | UO_GAS5,
    (UO_BASE & ~B(UO_SIGNATURE)) | B(UO_ACCOUNT_GAS) | B(UO_GAS_FEES),
    (UO_BASE & ~B(UO_SIGNATURE)) | UO_GAS5};

/* top-level payload members of the user_operation form */
enum eth_uo_top {
    TOP_KEY_ID,
    TOP_SECRET,
    TOP_HMAC,
    TOP_TIMESTAMP,
    TOP_USER_OP,
    TOP_ENTRY_POINT,
    TOP_CHAIN_ID,
    TOP_VERSION,
    TOP_SCHEME,
    TOP_DELEGATE,
    TOP_COUNT
};

static const char *const eth_uo_top_names[TOP_COUNT] = {
    "key_id",      "secret",  "hmac",
    "timestamp",   "user_operation",      "entry_point",
    "chainId",     "entry_point_version", "signature_scheme",
    "eip7702_delegate"};

/* A byte string to hash: head[0..head_len) then the bytes that tail's hex
 * digits encode (borrowed from the request). */
typedef struct eth_uo_bytes {
    unsigned char head[52];
    size_t head_len;
    const char *tail;
    size_t tail_len; /* hex digits, even */
} eth_uo_bytes;

typedef struct eth_uo_ctx {
    const signer_host *h;
    char *err;
    size_t errcap;
    int version; /* 6, 7 or 8 */
    enum eth_uo_form form;
    const signer_json *f[UO_COUNT];
} eth_uo_ctx;

/* ---- small parsers ------------------------------------------------------ */

#define UO_QTY_MSG "expected a quantity (integer or 0x-hex/decimal string)"
#define UO_MAX_SAFE 9007199254740991.0 /* 2^53 - 1 */

static int eth_uo_fail(const eth_uo_ctx *u, const char *fmt, ...)
    SIGNER_PRINTF(2, 3);

static int eth_uo_fail(const eth_uo_ctx *u, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(u->err, u->errcap, fmt, ap);
    va_end(ap);
    return SIGNER_ERR_BAD_REQUEST;
}

/* Writes a as 32 big-endian bytes. */
static void eth_uo_be32(unsigned char out[32], const eth_u256 *a)
{
    int i, j;

    for (i = 0; i < 4; i++)
        for (j = 0; j < 8; j++)
            out[8 * i + j] = (unsigned char)(a->w[3 - i] >> (56 - 8 * j));
}

/* Parses a quantity below 2^bits (bits 128 or 256): JSON integer <= 2^53-1,
 * or a 0x-hex / decimal string.  name is the field path. */
static int eth_uo_qty(const eth_uo_ctx *u, eth_u256 *r, const signer_json *v,
                      const char *pre, const char *name, int bits)
{
    const signer_host *h = u->h;
    const char *s;
    size_t len;
    double d;
    int st;

    eth_u256_set_u64(r, 0);
    if (h->json_number(v, &d)) {
        if (d != d || d < 0 || d > UO_MAX_SAFE || d != (double)(uint64_t)d)
            return eth_uo_fail(u,
                               "%s%s: expected a non-negative integer up to "
                               "2^53-1 (send larger values as a string)",
                               pre, name);
        eth_u256_set_u64(r, (uint64_t)d);
        return SIGNER_OK;
    }
    s = h->json_string(v, &len);
    if (s == NULL)
        return eth_uo_fail(u, "%s%s: " UO_QTY_MSG, pre, name);
    if (eth_hex_has_prefix(s, len))
        st = eth_u256_parse_hex(r, s + 2, len - 2);
    else
        st = eth_u256_parse_dec(r, s, len);
    if (st == ETH_NUM_RANGE ||
        (st == ETH_NUM_OK && bits == 128 && (r->w[2] | r->w[3]) != 0))
        return eth_uo_fail(u, "%s%s: exceeds 2^%d-1", pre, name, bits);
    if (st != ETH_NUM_OK)
        return eth_uo_fail(u, "%s%s: " UO_QTY_MSG, pre, name);
    return SIGNER_OK;
}

/* "0x" followed by an even number of hex digits (exactly exact bytes when
 * exact > 0). */
static int eth_uo_hex(const eth_uo_ctx *u, const char **hex, size_t *hexlen,
                      const signer_json *v, const char *name, size_t exact)
{
    size_t len;
    const char *s = u->h->json_string(v, &len);

    if (s == NULL || !eth_hex_has_prefix(s, len) || len % 2 != 0 ||
        !eth_hex_is_digits(s + 2, len - 2))
        return eth_uo_fail(u,
                           ETH_UO "%s: expected 0x-prefixed hex with an even "
                                  "number of digits",
                           name);
    if (exact != 0 && len - 2 != 2 * exact)
        return eth_uo_fail(u, ETH_UO "%s: expected exactly %zu bytes", name,
                           exact);
    *hex = s + 2;
    *hexlen = len - 2;
    return SIGNER_OK;
}

static int eth_uo_address(const eth_uo_ctx *u, unsigned char out[20],
                          const signer_json *v, const char *path)
{
    size_t len;
    const char *s = u->h->json_string(v, &len);
    int st = s != NULL ? eth_addr_parse(out, s, len) : ETH_ADDR_SYNTAX;

    if (st == ETH_ADDR_CHECKSUM)
        return eth_uo_fail(u,
                           "%s: bad EIP-55 checksum (use the checksummed "
                           "form or a single case)",
                           path);
    if (st != ETH_ADDR_OK)
        return eth_uo_fail(u, "%s: expected a 20-byte hex address", path);
    return SIGNER_OK;
}

/* Keccak of head || bytes(tail).  The hex was validated when parsed. */
static void eth_uo_bytes_hash(unsigned char out[32], const eth_uo_bytes *b)
{
    unsigned char chunk[256];
    eth_keccak k;
    size_t off, n = b->tail_len / 2;

    eth_keccak_init(&k);
    eth_keccak_update(&k, b->head, b->head_len);
    for (off = 0; off < n; off += sizeof chunk) {
        size_t m = n - off < sizeof chunk ? n - off : sizeof chunk;
        if (!eth_hex_decode(chunk, b->tail + 2 * off, 2 * m))
            memset(chunk, 0, sizeof chunk); /* unreachable: validated */
        eth_keccak_update(&k, chunk, m);
    }
    eth_keccak_final(&k, out);
}

/* ---- the user_operation object ----------------------------------------- */

/* Collects the members of user_operation into u->f (JSON null = absent),
 * picks the form and checks allowed and required fields. */
static int eth_uo_collect(eth_uo_ctx *u, const signer_json *op)
{
    const signer_host *h = u->h;
    unsigned seen = 0, allowed, required;
    size_t n, i;
    int j;

    if (h->json_type(op) != SIGNER_JSON_OBJECT)
        return eth_uo_fail(u, "user_operation: expected an object");
    n = h->json_count(op);
    for (i = 0; i < n; i++) {
        const char *key = NULL;
        const signer_json *v = h->json_at(op, i, &key);
        for (j = 0; j < UO_COUNT; j++)
            if (key != NULL && strcmp(key, eth_uo_names[j]) == 0)
                break;
        if (j == UO_COUNT)
            return eth_uo_fail(u, ETH_UO "%.64s: unknown field",
                               key ? key : "");
        if (seen & B(j))
            return eth_uo_fail(u, ETH_UO "%s: duplicate field",
                               eth_uo_names[j]);
        seen |= B(j);
        u->f[j] = h->json_type(v) == SIGNER_JSON_NULL ? NULL : v;
    }
    seen = 0;
    for (j = 0; j < UO_COUNT; j++)
        if (u->f[j] != NULL)
            seen |= B(j);
    u->form = u->version == 6            ? UO_FORM_V06
              : (seen & UO_PACKED_ONLY) ? UO_FORM_PACKED
                                        : UO_FORM_UNPACKED;
    allowed = eth_uo_allowed[u->form];
    if (u->version != 8)
        allowed &= ~B(UO_EIP7702_AUTH);
    required = eth_uo_required[u->form];
    for (j = 0; j < UO_COUNT; j++) {
        if ((seen & B(j)) && !(allowed & B(j)))
            return eth_uo_fail(
                u, ETH_UO "%s: not a field of %s", eth_uo_names[j],
                u->form == UO_FORM_V06 ? "an EntryPoint v0.6 user operation"
                : u->version == 7 && j == UO_EIP7702_AUTH
                    ? "an EntryPoint v0.7 user operation"
                : u->form == UO_FORM_PACKED
                    ? "the packed form (initCode, accountGasLimits, gasFees, "
                      "paymasterAndData are given)"
                    : "an EntryPoint v0.7/v0.8 user operation");
        if ((required & B(j)) && !(seen & B(j)))
            return eth_uo_fail(u, ETH_UO "%s: required", eth_uo_names[j]);
    }
    if (u->f[UO_SIGNATURE] != NULL &&
        h->json_type(u->f[UO_SIGNATURE]) != SIGNER_JSON_STRING)
        return eth_uo_fail(u, ETH_UO "signature: expected a string (it is "
                              "not part of the hash)");
    if (u->f[UO_EIP7702_AUTH] != NULL &&
        h->json_type(u->f[UO_EIP7702_AUTH]) != SIGNER_JSON_OBJECT)
        return eth_uo_fail(u, ETH_UO "eip7702Auth: expected an object");
    return SIGNER_OK;
}

/* Word w (32 bytes) of a field that is a quantity below 2^bits. */
static int eth_uo_word(const eth_uo_ctx *u, unsigned char w[32], int field,
                       int bits)
{
    eth_u256 v;
    int rc = eth_uo_qty(u, &v, u->f[field], ETH_UO, eth_uo_names[field], bits);

    if (rc == SIGNER_OK)
        eth_uo_be32(w, &v);
    return rc;
}

/* bytes32 of two 128-bit quantities: high field then low field. */
static int eth_uo_pair(const eth_uo_ctx *u, unsigned char w[32], int hi,
                       int lo)
{
    unsigned char a[32], b[32];
    int rc;

    rc = eth_uo_word(u, a, hi, 128);
    if (rc == SIGNER_OK)
        rc = eth_uo_word(u, b, lo, 128);
    if (rc != SIGNER_OK)
        return rc;
    memcpy(w, a + 16, 16);
    memcpy(w + 16, b + 16, 16);
    return SIGNER_OK;
}

/* Optional packed bytes field -> b (tail only; absent = empty). */
static int eth_uo_tail(const eth_uo_ctx *u, eth_uo_bytes *b, int field)
{
    memset(b, 0, sizeof *b);
    b->tail = "";
    if (u->f[field] == NULL)
        return SIGNER_OK;
    return eth_uo_hex(u, &b->tail, &b->tail_len, u->f[field],
                      eth_uo_names[field], 0);
}

/* initCode: packed (first 20 bytes moved to head) or factory||factoryData. */
static int eth_uo_init_code(const eth_uo_ctx *u, eth_uo_bytes *b)
{
    const char *hex;
    size_t len, m;
    int rc;

    if (u->form != UO_FORM_UNPACKED) {
        rc = eth_uo_tail(u, b, UO_INIT_CODE);
        if (rc != SIGNER_OK)
            return rc;
        m = b->tail_len / 2 < 20 ? b->tail_len / 2 : 20;
        if (!eth_hex_decode(b->head, b->tail, 2 * m))
            return eth_uo_fail(u, ETH_UO "initCode: bad hex");
        b->head_len = m;
        b->tail += 2 * m;
        b->tail_len -= 2 * m;
        return SIGNER_OK;
    }
    rc = eth_uo_tail(u, b, UO_FACTORY_DATA);
    if (rc != SIGNER_OK)
        return rc;
    if (u->f[UO_FACTORY] == NULL)
        return b->tail_len == 0
                   ? SIGNER_OK
                   : eth_uo_fail(u, ETH_UO "factoryData: requires factory");
    b->head_len = 20;
    hex = u->h->json_string(u->f[UO_FACTORY], &len);
    /* v0.8's RPC form names an EIP-7702 account with factory "0x7702" */
    if (u->version == 8 && hex != NULL && len == 6 &&
        strcmp(hex + 2, "7702") == 0 && eth_hex_has_prefix(hex, len)) {
        memset(b->head, 0, 20);
        b->head[0] = 0x77;
        b->head[1] = 0x02;
        return SIGNER_OK;
    }
    return eth_uo_address(u, b->head, u->f[UO_FACTORY], ETH_UO "factory");
}

/* paymasterAndData: packed, or paymaster || uint128 verification gas ||
 * uint128 postOp gas || paymasterData. */
static int eth_uo_paymaster(const eth_uo_ctx *u, eth_uo_bytes *b)
{
    unsigned char w[32];
    int rc, j;

    if (u->form != UO_FORM_UNPACKED)
        return eth_uo_tail(u, b, UO_PM_AND_DATA);
    rc = eth_uo_tail(u, b, UO_PM_DATA);
    if (rc != SIGNER_OK)
        return rc;
    if (u->f[UO_PAYMASTER] == NULL) {
        for (j = UO_PM_VERIF_GAS; j <= UO_PM_DATA; j++)
            if (u->f[j] != NULL)
                return eth_uo_fail(u, ETH_UO "%s: requires paymaster",
                                   eth_uo_names[j]);
        return SIGNER_OK;
    }
    rc = eth_uo_address(u, b->head, u->f[UO_PAYMASTER], ETH_UO "paymaster");
    for (j = UO_PM_VERIF_GAS; rc == SIGNER_OK && j <= UO_PM_POSTOP_GAS; j++) {
        memset(w, 0, sizeof w); /* absent: 0, as viem and ethers' tools do */
        if (u->f[j] != NULL)
            rc = eth_uo_word(u, w, j, 128);
        memcpy(b->head + 20 + 16 * (j - UO_PM_VERIF_GAS), w + 16, 16);
    }
    b->head_len = 52;
    return rc;
}

/* EIP-7702 initCode marker: 0x7702 then zeros up to 20 bytes. */
static int eth_uo_is_7702(const eth_uo_bytes *init)
{
    size_t i;

    if (init->head_len < 2 || init->head[0] != 0x77 || init->head[1] != 0x02)
        return 0;
    for (i = 2; i < init->head_len; i++)
        if (init->head[i] != 0)
            return 0;
    return 1;
}

/* The v0.8 7702 delegate: payload.eip7702_delegate or
 * user_operation.eip7702Auth.address (they must agree). */
static int eth_uo_delegate(const eth_uo_ctx *u, unsigned char out[20],
                           const signer_json *top_delegate)
{
    const signer_json *auth = u->f[UO_EIP7702_AUTH], *a = NULL;
    unsigned char other[20];
    int rc;

    if (auth != NULL) {
        a = u->h->json_get(auth, "address");
        if (a == NULL)
            return eth_uo_fail(u, ETH_UO "eip7702Auth.address: required");
    }
    if (top_delegate == NULL && a == NULL)
        return eth_uo_fail(u,
                           ETH_UO "initCode: starts with the EIP-7702 marker, "
                                  "so the hash needs the sender's delegate "
                                  "address from chain state; give it as "
                                  "eip7702_delegate (or "
                                  "user_operation.eip7702Auth.address)");
    if (top_delegate != NULL) {
        rc = eth_uo_address(u, out, top_delegate, "eip7702_delegate");
        if (rc != SIGNER_OK || a == NULL)
            return rc;
    }
    rc = eth_uo_address(u, a != NULL && top_delegate != NULL ? other : out, a,
                        ETH_UO "eip7702Auth.address");
    if (rc == SIGNER_OK && top_delegate != NULL && memcmp(other, out, 20) != 0)
        return eth_uo_fail(u, "eip7702_delegate: differs from "
                              "user_operation.eip7702Auth.address");
    return rc;
}

/* keccak(initCode), or for a v0.8 EIP-7702 initCode keccak(delegate ||
 * initCode[20:]). */
static int eth_uo_init_hash(const eth_uo_ctx *u, unsigned char out[32],
                            eth_uo_bytes *init, const signer_json *delegate)
{
    int rc;

    if (u->version != 8 || !eth_uo_is_7702(init)) {
        if (delegate != NULL)
            return eth_uo_fail(u, "eip7702_delegate: only used by an "
                                  "EntryPoint v0.8 user operation whose "
                                  "initCode starts with the EIP-7702 marker");
        eth_uo_bytes_hash(out, init);
        return SIGNER_OK;
    }
    rc = eth_uo_delegate(u, init->head, delegate);
    if (rc != SIGNER_OK)
        return rc;
    init->head_len = 20; /* initCode[20:] is the tail already */
    eth_uo_bytes_hash(out, init);
    return SIGNER_OK;
}

/* The ABI words after sender and nonce: v0.6 (8 words) or v0.7/v0.8 (6). */
static int eth_uo_words(const eth_uo_ctx *u, unsigned char w[][32],
                        size_t *nw, const signer_json *delegate)
{
    static const int gas6[5] = {UO_CALL_GAS, UO_VERIF_GAS, UO_PRE_VERIF_GAS,
                                UO_MAX_FEE, UO_MAX_PRIO};
    eth_uo_bytes init, call, pm;
    const char *hex;
    size_t len;
    int rc, i;

    rc = eth_uo_hex(u, &hex, &len, u->f[UO_CALL_DATA], "callData", 0);
    memset(&call, 0, sizeof call);
    call.tail = hex;
    call.tail_len = len;
    if (rc == SIGNER_OK)
        rc = eth_uo_init_code(u, &init);
    if (rc == SIGNER_OK)
        rc = eth_uo_paymaster(u, &pm);
    if (rc == SIGNER_OK)
        rc = eth_uo_init_hash(u, w[0], &init, delegate);
    if (rc != SIGNER_OK)
        return rc;
    eth_uo_bytes_hash(w[1], &call);
    if (u->form == UO_FORM_V06) {
        for (i = 0; rc == SIGNER_OK && i < 5; i++)
            rc = eth_uo_word(u, w[2 + i], gas6[i], 256);
        eth_uo_bytes_hash(w[7], &pm);
        *nw = 8;
        return rc;
    }
    if (u->form == UO_FORM_PACKED) {
        rc = eth_uo_hex(u, &hex, &len, u->f[UO_ACCOUNT_GAS],
                        "accountGasLimits", 32);
        if (rc == SIGNER_OK && !eth_hex_decode(w[2], hex, 64))
            rc = eth_uo_fail(u, ETH_UO "accountGasLimits: bad hex");
        if (rc == SIGNER_OK)
            rc = eth_uo_hex(u, &hex, &len, u->f[UO_GAS_FEES], "gasFees", 32);
        if (rc == SIGNER_OK && !eth_hex_decode(w[4], hex, 64))
            rc = eth_uo_fail(u, ETH_UO "gasFees: bad hex");
    } else {
        rc = eth_uo_pair(u, w[2], UO_VERIF_GAS, UO_CALL_GAS);
        if (rc == SIGNER_OK)
            rc = eth_uo_pair(u, w[4], UO_MAX_PRIO, UO_MAX_FEE);
    }
    if (rc == SIGNER_OK)
        rc = eth_uo_word(u, w[3], UO_PRE_VERIF_GAS, 256);
    eth_uo_bytes_hash(w[5], &pm);
    *nw = 6;
    return rc;
}

/* structHash of the user operation (v0.8: with its EIP-712 type hash). */
static int eth_uo_struct_hash(const eth_uo_ctx *u, unsigned char out[32],
                              const signer_json *delegate)
{
    static const char type[] =
        "PackedUserOperation(address sender,uint256 nonce,bytes initCode,"
        "bytes callData,bytes32 accountGasLimits,uint256 preVerificationGas,"
        "bytes32 gasFees,bytes paymasterAndData)";
    unsigned char w[11][32];
    size_t nw = 0, skip;
    int rc;

    memset(w, 0, sizeof w);
    skip = u->version == 8 ? 1 : 0;
    if (skip)
        eth_keccak256(w[0], type, sizeof type - 1);
    rc = eth_uo_address(u, w[skip] + 12, u->f[UO_SENDER], ETH_UO "sender");
    if (rc == SIGNER_OK)
        rc = eth_uo_word(u, w[skip + 1], UO_NONCE, 256);
    if (rc == SIGNER_OK)
        rc = eth_uo_words(u, w + skip + 2, &nw, delegate);
    if (rc != SIGNER_OK)
        return rc;
    eth_keccak256(out, w, 32 * (skip + 2 + nw));
    return SIGNER_OK;
}

/* userOpHash from the struct hash, entry point and chain id. */
static void eth_uo_final(unsigned char out[32], int version,
                         const unsigned char shash[32],
                         const unsigned char ep[20],
                         const unsigned char chain[32])
{
    static const char dtype[] = "EIP712Domain(string name,string version,"
                                "uint256 chainId,address verifyingContract)";
    unsigned char w[5][32], msg[66];

    memset(w, 0, sizeof w);
    if (version != 8) {
        memcpy(w[0], shash, 32);
        memcpy(w[1] + 12, ep, 20);
        memcpy(w[2], chain, 32);
        eth_keccak256(out, w, 3 * 32);
        return;
    }
    eth_keccak256(w[0], dtype, sizeof dtype - 1);
    eth_keccak256(w[1], "ERC4337", 7);
    eth_keccak256(w[2], "1", 1);
    memcpy(w[3], chain, 32);
    memcpy(w[4] + 12, ep, 20);
    msg[0] = 0x19;
    msg[1] = 0x01;
    eth_keccak256(msg + 2, w, sizeof w);
    memcpy(msg + 34, shash, 32);
    eth_keccak256(out, msg, sizeof msg);
}

/* ---- the payload -------------------------------------------------------- */

/* Collects the top-level members (each at most once, no others). */
static int eth_uo_top(const eth_uo_ctx *u, const signer_json *top[TOP_COUNT],
                      const signer_json *payload)
{
    const signer_host *h = u->h;
    size_t n = h->json_count(payload), i;
    int j;

    for (i = 0; i < n; i++) {
        const char *key = NULL;
        const signer_json *v = h->json_at(payload, i, &key);
        for (j = 0; j < TOP_COUNT; j++)
            if (key != NULL && strcmp(key, eth_uo_top_names[j]) == 0)
                break;
        if (j == TOP_COUNT)
            return eth_uo_fail(u, "%.64s: not allowed with user_operation",
                               key ? key : "");
        if (top[j] != NULL)
            return eth_uo_fail(u, "%s: duplicate field", eth_uo_top_names[j]);
        top[j] = v;
    }
    for (j = TOP_USER_OP; j <= TOP_VERSION; j++)
        if (top[j] == NULL)
            return eth_uo_fail(u, "%s: required with user_operation",
                               eth_uo_top_names[j]);
    return SIGNER_OK;
}

/* entry_point_version and signature_scheme -> u->version, *eip191. */
static int eth_uo_version(eth_uo_ctx *u, int *eip191,
                          const signer_json *ver, const signer_json *scheme)
{
    const char *s = u->h->json_string(ver, NULL);

    u->version = s == NULL                 ? 0
                 : strcmp(s, "0.6") == 0 ? 6
                 : strcmp(s, "0.7") == 0 ? 7
                 : strcmp(s, "0.8") == 0 ? 8
                                         : 0;
    if (u->version == 0)
        return eth_uo_fail(u, "entry_point_version: expected \"0.6\", "
                              "\"0.7\" or \"0.8\"");
    /* what SimpleAccount of that version validates */
    *eip191 = u->version != 8;
    if (scheme == NULL)
        return SIGNER_OK;
    s = u->h->json_string(scheme, NULL);
    if (s != NULL && strcmp(s, "eip191") == 0)
        *eip191 = 1;
    else if (s != NULL && strcmp(s, "raw") == 0)
        *eip191 = 0;
    else
        return eth_uo_fail(u, "signature_scheme: expected \"eip191\" or "
                              "\"raw\"");
    return SIGNER_OK;
}

/* userOpHash and the digest to sign for a user_operation payload (eth.h). */
int eth_userop_hash(unsigned char op_hash[32], unsigned char to_sign[32],
                    char *err, size_t errcap, const signer_host *h,
                    const signer_json *payload)
{
    static const char prefix[] = "\x19" "Ethereum Signed Message:\n32";
    const signer_json *top[TOP_COUNT];
    unsigned char ep[20], chain[32], shash[32], msg[sizeof prefix - 1 + 32];
    eth_u256 cid;
    eth_uo_ctx u;
    int rc, eip191 = 0;

    memset(op_hash, 0, 32);
    memset(to_sign, 0, 32);
    memset(top, 0, sizeof top);
    memset(&u, 0, sizeof u);
    u.h = h;
    u.err = err;
    u.errcap = errcap;
    if (h->json_type(payload) != SIGNER_JSON_OBJECT)
        return eth_uo_fail(&u, "payload: expected an object");
    rc = eth_uo_top(&u, top, payload);
    if (rc == SIGNER_OK)
        rc = eth_uo_version(&u, &eip191, top[TOP_VERSION], top[TOP_SCHEME]);
    if (rc == SIGNER_OK)
        rc = eth_uo_address(&u, ep, top[TOP_ENTRY_POINT], "entry_point");
    if (rc == SIGNER_OK)
        rc = eth_uo_qty(&u, &cid, top[TOP_CHAIN_ID], "", "chainId", 256);
    if (rc == SIGNER_OK)
        rc = eth_uo_collect(&u, top[TOP_USER_OP]);
    if (rc == SIGNER_OK)
        rc = eth_uo_struct_hash(&u, shash, top[TOP_DELEGATE]);
    if (rc != SIGNER_OK)
        return rc;
    eth_uo_be32(chain, &cid);
    eth_uo_final(op_hash, u.version, shash, ep, chain);
    if (!eip191) {
        memcpy(to_sign, op_hash, 32);
        return SIGNER_OK;
    }
    memcpy(msg, prefix, sizeof prefix - 1);
    memcpy(msg + sizeof prefix - 1, op_hash, 32);
    eth_keccak256(to_sign, msg, sizeof msg);
    return SIGNER_OK;
}
