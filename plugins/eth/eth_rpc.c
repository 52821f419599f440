/*
 * The Ethereum JSON-RPC 2.0 endpoint, POST /rpc (docs/api.md): op "rpc",
 * a raw op (SIGNER_OP_RAW, ABI 1.2).  The engine hands over the body as
 * text and the key_id and secret of the Authorization header; the key is
 * opened once per HTTP request through host->key_open (secrets, throttling
 * and the key cache are the engine's), then every request of the (batch)
 * body is answered:
 *
 *   eth_accounts            -> [the key's checksummed address]
 *   eth_chainId             -> the node's, else settings.chain_id
 *   eth_signTransaction     [tx]              -> raw signed tx hex
 *   eth_sign                [address, data]   -> 65-byte signature (EIP-191)
 *   personal_sign           [data, address]   -> same
 *   eth_signTypedData_v4    [address, typed data object or JSON text]
 *   eth_sendTransaction     [tx] (node only)  -> tx hash: nonce, gas, fees
 *                           and chainId filled from the node when absent
 *   anything else: forwarded unchanged to the node, or -32601 without one.
 *
 * The downstream node is settings.rpc_downstream_url, overridden by the
 * environment variable SIGNER_RPC_DOWNSTREAM; every exchange with it is
 * bounded by settings.rpc_timeout_ms.  JSON is parsed and printed by the
 * host (ABI 1.2), answers are written here, and transactions are encoded
 * and signed by eth_tx.c as for sign_transaction.  Error codes are listed
 * in docs/api.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eth.h"

#define RPC_BATCH_MAX 1000
#define RPC_NODE_MAX (16u * 1024u * 1024u) /* bytes of a node's answer */
#define RPC_TIMEOUT_DEFAULT 10000

enum {
    RPC_PARSE = -32700,
    RPC_INVALID = -32600,
    RPC_NO_METHOD = -32601,
    RPC_PARAMS = -32602,
    RPC_INTERNAL = -32603,
    RPC_SIGNER = -32000,       /* the signer refused or failed */
    RPC_UNAUTHORIZED = -32001, /* with HTTP 401 */
    RPC_NODE = -32002          /* the downstream node is unreachable */
};

struct eth_rpc_conf {
    char *url;       /* downstream node, or NULL */
    long long chain_id; /* settings.chain_id, 0 if absent */
    long timeout_ms;
};

/* One HTTP request being answered. */
typedef struct rpc_req {
    const eth_ctx *c;
    const signer_host *h;
    signer_call *call;
    unsigned char *key; /* secure memory, 32 bytes */
    unsigned char addr[20];
    secp256k1_pubkey pub; /* the key's public key, for verification */
    long next_id;       /* ids of our own requests to the node */
} rpc_req;

/* The outcome of one method: a result (JSON text) or an error. */
typedef struct rpc_ans {
    eth_buf res;
    int code;         /* 0, or the JSON-RPC error code */
    char msg[400];
    const signer_json *node_error; /* the node's error object, passed on */
} rpc_ans;

/* ---- JSON text ------------------------------------------------------------ */

static int put(eth_buf *b, const char *s)
{
    return eth_buf_append(b, s, strlen(s));
}

/* Appends s[0..n) as a JSON string. */
static int put_str(eth_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int ok = eth_buf_append(b, "\"", 1);

    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e[7] = {'\\', (char)ch, 0, 0, 0, 0, 0};
        if (ch == '"' || ch == '\\') {
            ok = eth_buf_append(b, e, 2);
        } else if (ch < 0x20) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[ch >> 4];
            e[5] = hex[ch & 15];
            ok = eth_buf_append(b, e, 6);
        } else {
            ok = eth_buf_append(b, s + i, 1);
        }
    }
    return ok && eth_buf_append(b, "\"", 1);
}

/* Appends the JSON text of v (printed by the host). */
static int put_json(eth_buf *b, const signer_host *h, const signer_json *v)
{
    size_t n = 0;
    char *s = h->json_print(v, &n);
    int ok = s != NULL && eth_buf_append(b, s, n);

    h->free(s);
    return ok;
}

/* Sets an error answer; returns -1. */
static int fail(rpc_ans *a, int code, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);
static int fail(rpc_ans *a, int code, const char *fmt, ...)
{
    va_list ap;

    a->code = code;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* A result that is a JSON string. */
static int ok_str(rpc_ans *a, const char *s)
{
    return put_str(&a->res, s, strlen(s))
               ? 0
               : fail(a, RPC_INTERNAL, "out of memory");
}

/* "0x" + minimal hex of v ("0x0" for zero) into out[68]. */
static void qty_hex(char out[68], const eth_u256 *v)
{
    unsigned char be[32];
    size_t n = eth_u256_to_be(be, v), i = 0;
    char digits[65];

    if (n == 0) {
        snprintf(out, 68, "0x0");
        return;
    }
    eth_hex_raw(digits, be, n);
    digits[2 * n] = '\0';
    while (digits[i] == '0')
        i++;
    snprintf(out, 68, "0x%s", digits + i);
}

/* Rewrites a signer message's "prefix..." as "params[i]...". */
static void rename_path(char *msg, size_t cap, const char *prefix, int i)
{
    size_t pl = strlen(prefix);
    char tmp[400];

    if (strncmp(msg, prefix, pl) != 0)
        return;
    snprintf(tmp, sizeof tmp, "params[%d]%s", i, msg + pl);
    snprintf(msg, cap, "%s", tmp);
}

/* ---- the downstream node --------------------------------------------------- */

/* POSTs text to the node and parses its answer (an object) into *out. */
static int node_post(rpc_req *r, rpc_ans *a, const char *text, size_t len,
                     const signer_json **out)
{
    const signer_host *h = r->h;
    const struct eth_rpc_conf *rc = r->c->rpc;
    char *resp = NULL, err[240];
    size_t rl = 0;
    long status = 0;
    int e;

    e = h->http_post(r->call, &resp, &rl, &status, err, sizeof err, rc->url,
                     text, len, rc->timeout_ms, RPC_NODE_MAX);
    if (e != SIGNER_OK)
        return fail(a, RPC_NODE, "downstream node %s", err);
    e = h->json_parse(r->call, out, err, sizeof err, resp, rl);
    h->free(resp);
    if (e != SIGNER_OK || h->json_type(*out) != SIGNER_JSON_OBJECT)
        return fail(a, RPC_NODE,
                    "downstream node answered HTTP %ld without a JSON-RPC "
                    "object",
                    status);
    return 0;
}

/* Takes result or error out of a node's answer object. */
static int node_result(rpc_ans *a, const signer_host *h,
                       const signer_json *ans, const signer_json **result)
{
    const signer_json *err = h->json_get(ans, "error");

    if (err != NULL && h->json_type(err) != SIGNER_JSON_NULL) {
        a->node_error = err;
        return fail(a, RPC_NODE, "downstream node refused the request");
    }
    *result = h->json_get(ans, "result");
    if (*result == NULL)
        return fail(a, RPC_NODE, "downstream node answered without result");
    return 0;
}

/* Calls method(params_json) on the node; *result borrowed from the call. */
static int node_call(rpc_req *r, rpc_ans *a, const char *method,
                     const char *params_json, const signer_json **result)
{
    unsigned char stack[512];
    const signer_json *ans;
    char head[128];
    eth_buf b;
    int rc;

    eth_buf_init(&b, stack, sizeof stack);
    snprintf(head, sizeof head,
             "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"%s\",\"params\":",
             ++r->next_id, method);
    if (!put(&b, head) || !put(&b, params_json) || !put(&b, "}")) {
        eth_buf_cleanup(&b);
        return fail(a, RPC_INTERNAL, "out of memory");
    }
    rc = node_post(r, a, (const char *)b.p, b.len, &ans);
    eth_buf_cleanup(&b);
    if (rc != 0)
        return rc;
    return node_result(a, r->h, ans, result);
}

/* A quantity answer of the node ("0x..."). */
static int node_qty(rpc_req *r, rpc_ans *a, const char *method,
                    const char *params_json, eth_u256 *out)
{
    const signer_json *res;
    const char *s;
    size_t len;

    if (node_call(r, a, method, params_json, &res) != 0)
        return -1;
    s = r->h->json_string(res, &len);
    if (s == NULL || !eth_hex_has_prefix(s, len) ||
        eth_u256_parse_hex(out, s + 2, len - 2) != ETH_NUM_OK)
        return fail(a, RPC_NODE, "downstream node: %s answered no quantity",
                    method);
    return 0;
}

/* Forwards the request item unchanged and passes the answer back. */
static int node_forward(rpc_req *r, rpc_ans *a, const signer_json *item)
{
    const signer_host *h = r->h;
    const signer_json *ans, *res;
    size_t n = 0;
    char *text = h->json_print(item, &n);
    int rc;

    if (text == NULL)
        return fail(a, RPC_INTERNAL, "out of memory");
    rc = node_post(r, a, text, n, &ans);
    h->free(text);
    if (rc != 0 || node_result(a, h, ans, &res) != 0)
        return -1;
    return put_json(&a->res, h, res) ? 0 : fail(a, RPC_INTERNAL,
                                                 "out of memory");
}

/* ---- signing ------------------------------------------------------------------ */

/* Signs hash into "0x" r||s||v (v = 27 + recid), out[133]. */
static int sign65(rpc_req *r, rpc_ans *a, char out[133],
                  const unsigned char hash[32])
{
    unsigned char sig[65];
    int recid;

    if (eth_sign_hash(r->c->secp, sig, &recid, hash, r->key,
                      r->c->verify ? &r->pub : NULL) != SIGNER_OK) {
        r->h->log(r->h, SIGNER_LOG_ERROR, "signature self-check failed");
        return fail(a, RPC_SIGNER, "signing failed");
    }
    sig[64] = (unsigned char)(27 + recid);
    eth_hex_encode(out, sig, 65);
    return 0;
}

/* params[i] must be the key's address. */
static int param_is_key(rpc_req *r, rpc_ans *a, const signer_json *params,
                        int i)
{
    unsigned char addr[20];
    char name[24];

    snprintf(name, sizeof name, "params[%d]", i);
    if (eth_address(addr, a->msg, sizeof a->msg, r->h,
                    r->h->json_at(params, (size_t)i, NULL), name) !=
        SIGNER_OK)
        return a->code = RPC_PARAMS, -1;
    if (memcmp(addr, r->addr, 20) != 0)
        return fail(a, RPC_PARAMS, "%s: is not the address of this key",
                    name);
    return 0;
}

/* EIP-191 of the hex bytes in params[i] ("0x..."). */
static int param_msg_hash(rpc_req *r, rpc_ans *a, unsigned char hash[32],
                          const signer_json *params, int i)
{
    static const char prefix[] = "\x19" "Ethereum Signed Message:\n";
    size_t len = 0;
    const char *s = r->h->json_string(r->h->json_at(params, (size_t)i, NULL),
                                      &len);
    unsigned char chunk[256];
    char num[24];
    eth_keccak k;

    if (s == NULL || !eth_hex_has_prefix(s, len) || len % 2 != 0 ||
        !eth_hex_is_digits(s + 2, len - 2))
        return fail(a, RPC_PARAMS,
                    "params[%d]: expected the message as 0x-prefixed hex "
                    "bytes",
                    i);
    s += 2;
    len = (len - 2) / 2;
    eth_keccak_init(&k);
    eth_keccak_update(&k, prefix, sizeof prefix - 1);
    snprintf(num, sizeof num, "%zu", len);
    eth_keccak_update(&k, num, strlen(num));
    for (size_t off = 0; off < len; off += sizeof chunk) {
        size_t m = len - off < sizeof chunk ? len - off : sizeof chunk;
        if (!eth_hex_decode(chunk, s + 2 * off, 2 * m))
            return fail(a, RPC_PARAMS, "params[%d]: bad hex", i);
        eth_keccak_update(&k, chunk, m);
    }
    eth_keccak_final(&k, hash);
    return 0;
}

/* Signs the complete transaction object tp; the raw hex into a->res when
 * raw is NULL, else into *raw (malloc'd). */
static int sign_tx(rpc_req *r, rpc_ans *a, const signer_json *tp, char **raw)
{
    const signer_host *h = r->h;
    unsigned char stack[768], hstack[1600], hash[32], txhash[32], rs[64];
    eth_buf body, hex;
    eth_tx tx;
    int recid, rc = -1;

    eth_buf_init(&body, stack, sizeof stack);
    eth_buf_init(&hex, hstack, sizeof hstack);
    if (eth_tx_parse(&tx, a->msg, sizeof a->msg, h, tp) != SIGNER_OK) {
        rename_path(a->msg, sizeof a->msg, "transaction_payload", 0);
        a->code = RPC_PARAMS;
        goto cleanup;
    }
    if (tx.has_from && memcmp(tx.from, r->addr, 20) != 0) {
        fail(a, RPC_PARAMS, "params[0].from: is not the address of this key");
        goto cleanup;
    }
    if (!eth_tx_body(&body, h, &tx) || !eth_tx_sighash(hash, &body, &tx)) {
        fail(a, RPC_INTERNAL, "out of memory");
        goto cleanup;
    }
    if (eth_sign_hash(r->c->secp, rs, &recid, hash, r->key,
                      r->c->verify ? &r->pub : NULL) != SIGNER_OK) {
        fail(a, RPC_SIGNER, "signing failed");
        goto cleanup;
    }
    if (!eth_tx_finish(&hex, txhash, &body, &tx, rs, recid)) {
        fail(a, RPC_INTERNAL, "out of memory");
        goto cleanup;
    }
    if (raw != NULL)
        rc = (*raw = strdup((const char *)hex.p)) != NULL
                 ? 0
                 : fail(a, RPC_INTERNAL, "out of memory");
    else
        rc = ok_str(a, (const char *)hex.p);

cleanup:
    eth_buf_cleanup(&hex);
    eth_buf_cleanup(&body);
    return rc;
}

/* ---- filling a transaction (eth_signTransaction, eth_sendTransaction) ---- */

/* What is known about a transaction being completed. */
typedef struct tx_fill {
    const signer_json *tx;
    int type; /* 0, 1, 2 ... as sent or chosen */
    eth_buf extra; /* ,"field":"0x.." members to add */
} tx_fill;

/* Appends ,"name":"value". */
static int add_field(tx_fill *f, const char *name, const char *value)
{
    return put(&f->extra, ",\"") && put(&f->extra, name) &&
           put(&f->extra, "\":\"") && put(&f->extra, value) &&
           put(&f->extra, "\"");
}

static int has(const rpc_req *r, const tx_fill *f, const char *name)
{
    return r->h->json_get(f->tx, name) != NULL;
}

/* type: as sent; else 0 with gasPrice (1 with an access list too), else 2. */
static int fill_type(rpc_req *r, rpc_ans *a, tx_fill *f)
{
    const signer_json *t = r->h->json_get(f->tx, "type");
    eth_u256 v;

    if (t != NULL) {
        if (eth_qty(&v, a->msg, sizeof a->msg, r->h, t, "params[0].type",
                    1) != SIGNER_OK)
            return a->code = RPC_PARAMS, -1;
        f->type = v.w[0] > 4 ? 9 : (int)v.w[0];
        return 0;
    }
    f->type = has(r, f, "gasPrice") ? (has(r, f, "accessList") ? 1 : 0) : 2;
    if (f->type != 2 && !add_field(f, "type", f->type ? "0x1" : "0x0"))
        return fail(a, RPC_INTERNAL, "out of memory");
    return 0;
}

/* The chain id: the downstream node's, else settings.chain_id.  1 found
 * (in v), 0 neither configured, -1 the node failed (answered in a). */
static int chain_id_of(rpc_req *r, rpc_ans *a, eth_u256 *v)
{
    if (r->c->rpc->url != NULL)
        return node_qty(r, a, "eth_chainId", "[]", v) != 0 ? -1 : 1;
    if (r->c->rpc->chain_id <= 0)
        return 0;
    eth_u256_set_u64(v, (uint64_t)r->c->rpc->chain_id);
    return 1;
}

/* chainId: the node's, else settings.chain_id. */
static int fill_chain(rpc_req *r, rpc_ans *a, tx_fill *f)
{
    eth_u256 v;
    char hex[68];
    int rc;

    if (has(r, f, "chainId"))
        return 0;
    if ((rc = chain_id_of(r, a, &v)) <= 0)
        return rc; /* none: eth_tx_parse names the missing field */
    qty_hex(hex, &v);
    return add_field(f, "chainId", hex) ? 0 : fail(a, RPC_INTERNAL, "oom");
}

/* params of eth_estimateGas: [the object as sent, with from]. */
static int estimate_params(rpc_req *r, eth_buf *est, const tx_fill *f,
                           const char *addr)
{
    if (!put(est, "[") || !put_json(est, r->h, f->tx))
        return 0;
    if (!has(r, f, "from")) {
        est->len -= 1; /* the closing brace */
        if (!put(est, est->len > 2 ? ",\"from\":\"" : "\"from\":\"") ||
            !put(est, addr) || !put(est, "\"}"))
            return 0;
    }
    return put(est, "]") && eth_buf_append(est, "", 1);
}

/* nonce (pending count) and gas (eth_estimateGas) from the node. */
static int fill_nonce_gas(rpc_req *r, rpc_ans *a, tx_fill *f)
{
    char addr[ETH_ADDR_TEXT], params[96], hex[68];
    unsigned char stack[512];
    eth_u256 v;
    eth_buf est;
    int rc;

    eth_addr_checksum(addr, r->addr);
    if (!has(r, f, "nonce")) {
        snprintf(params, sizeof params, "[\"%s\",\"pending\"]", addr);
        if (node_qty(r, a, "eth_getTransactionCount", params, &v) != 0)
            return -1;
        qty_hex(hex, &v);
        if (!add_field(f, "nonce", hex))
            return fail(a, RPC_INTERNAL, "out of memory");
    }
    if (has(r, f, "gas") || has(r, f, "gasLimit"))
        return 0;
    eth_buf_init(&est, stack, sizeof stack);
    rc = estimate_params(r, &est, f, addr)
             ? node_qty(r, a, "eth_estimateGas", (const char *)est.p, &v)
             : fail(a, RPC_INTERNAL, "out of memory");
    eth_buf_cleanup(&est);
    if (rc != 0)
        return -1;
    qty_hex(hex, &v);
    return add_field(f, "gas", hex) ? 0 : fail(a, RPC_INTERNAL, "oom");
}

/* Fees: gasPrice (types 0, 1) or maxPriorityFeePerGas and maxFeePerGas =
 * 2 * base fee + tip (types 2+), from the node. */
static int fill_fees(rpc_req *r, rpc_ans *a, tx_fill *f)
{
    const signer_json *blk, *bf;
    eth_u256 tip, base;
    const char *s;
    size_t len;
    char hex[68];

    if (f->type < 2) {
        if (has(r, f, "gasPrice"))
            return 0;
        if (node_qty(r, a, "eth_gasPrice", "[]", &base) != 0)
            return -1;
        qty_hex(hex, &base);
        return add_field(f, "gasPrice", hex) ? 0 : fail(a, RPC_INTERNAL, "oom");
    }
    if (has(r, f, "maxFeePerGas") && has(r, f, "maxPriorityFeePerGas"))
        return 0;
    if (node_qty(r, a, "eth_maxPriorityFeePerGas", "[]", &tip) != 0 ||
        node_call(r, a, "eth_getBlockByNumber", "[\"latest\",false]", &blk) !=
            0)
        return -1;
    bf = r->h->json_get(blk, "baseFeePerGas");
    s = r->h->json_string(bf, &len);
    if (s == NULL || !eth_hex_has_prefix(s, len) ||
        eth_u256_parse_hex(&base, s + 2, len - 2) != ETH_NUM_OK ||
        !eth_u256_fits_u64(&tip) || !eth_u256_mul_add(&base, 2, tip.w[0]))
        return fail(a, RPC_NODE,
                    "downstream node: the latest block has no base fee; send "
                    "gasPrice or the EIP-1559 fees");
    if (!has(r, f, "maxPriorityFeePerGas")) {
        qty_hex(hex, &tip);
        if (!add_field(f, "maxPriorityFeePerGas", hex))
            return fail(a, RPC_INTERNAL, "out of memory");
    }
    if (has(r, f, "maxFeePerGas"))
        return 0;
    qty_hex(hex, &base);
    return add_field(f, "maxFeePerGas", hex) ? 0 : fail(a, RPC_INTERNAL, "oom");
}

/* The transaction params[0] completed with the fields it lacks, parsed by
 * the host into *out. */
static int fill_tx(rpc_req *r, rpc_ans *a, const signer_json *params,
                   const signer_json **out)
{
    const signer_host *h = r->h;
    unsigned char s1[256], s2[1024];
    tx_fill f;
    eth_buf all;
    char err[200];
    int rc = -1;

    memset(&f, 0, sizeof f);
    f.tx = h->json_at(params, 0, NULL);
    if (h->json_type(f.tx) != SIGNER_JSON_OBJECT)
        return fail(a, RPC_PARAMS, "params[0]: expected a transaction object");
    eth_buf_init(&f.extra, s1, sizeof s1);
    eth_buf_init(&all, s2, sizeof s2);
    if (fill_type(r, a, &f) != 0 || fill_chain(r, a, &f) != 0)
        goto cleanup;
    if (r->c->rpc->url != NULL && f.type <= 4 &&
        (fill_nonce_gas(r, a, &f) != 0 || fill_fees(r, a, &f) != 0))
        goto cleanup;
    if (!put_json(&all, h, f.tx) || (all.len -= 1, 0) ||
        (f.extra.len > 0 && !eth_buf_append(&all, f.extra.p, f.extra.len)) ||
        !put(&all, "}")) {
        fail(a, RPC_INTERNAL, "out of memory");
        goto cleanup;
    }
    /* {} plus extras would start with "{,": drop that comma */
    if (all.len > 2 && all.p[1] == ',')
        all.p[1] = ' ';
    if (h->json_parse(r->call, out, err, sizeof err, (const char *)all.p,
                      all.len) != SIGNER_OK) {
        fail(a, RPC_INTERNAL, "transaction: %s", err);
        goto cleanup;
    }
    rc = 0;

cleanup:
    eth_buf_cleanup(&all);
    eth_buf_cleanup(&f.extra);
    return rc;
}

/* ---- methods ----------------------------------------------------------------- */

typedef int (*rpc_method_fn)(rpc_req *r, rpc_ans *a,
                             const signer_json *params);

/* params must be an array of at least n elements. */
static int need_params(rpc_req *r, rpc_ans *a, const signer_json *params,
                       size_t n)
{
    if (r->h->json_type(params) != SIGNER_JSON_ARRAY ||
        r->h->json_count(params) < n)
        return fail(a, RPC_PARAMS, "params: expected an array of %zu "
                                   "element%s", n, n == 1 ? "" : "s");
    return 0;
}

static int m_accounts(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    char addr[ETH_ADDR_TEXT];

    (void)params;
    eth_addr_checksum(addr, r->addr);
    return put(&a->res, "[") && put_str(&a->res, addr, strlen(addr)) &&
                   put(&a->res, "]")
               ? 0
               : fail(a, RPC_INTERNAL, "out of memory");
}

static int m_chain_id(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    eth_u256 v;
    char hex[68];
    int rc;

    (void)params;
    if ((rc = chain_id_of(r, a, &v)) < 0)
        return -1;
    if (rc == 0) {
        return fail(a, RPC_NO_METHOD,
                    "eth_chainId: no downstream node (settings."
                    "rpc_downstream_url or SIGNER_RPC_DOWNSTREAM) and no "
                    "settings.chain_id are configured");
    }
    qty_hex(hex, &v);
    return ok_str(a, hex);
}

static int m_sign_tx(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    const signer_json *tx;

    if (need_params(r, a, params, 1) != 0 || fill_tx(r, a, params, &tx) != 0)
        return -1;
    return sign_tx(r, a, tx, NULL);
}

static int m_send_tx(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    const signer_json *tx, *res;
    char *raw = NULL, *p = NULL;
    int rc = -1;

    if (r->c->rpc->url == NULL)
        return fail(a, RPC_NO_METHOD,
                    "eth_sendTransaction: no downstream node is configured "
                    "(settings.rpc_downstream_url or SIGNER_RPC_DOWNSTREAM)");
    if (need_params(r, a, params, 1) != 0 || fill_tx(r, a, params, &tx) != 0 ||
        sign_tx(r, a, tx, &raw) != 0)
        return -1;
    if ((p = malloc(strlen(raw) + 5)) == NULL) {
        fail(a, RPC_INTERNAL, "out of memory");
    } else {
        snprintf(p, strlen(raw) + 5, "[\"%s\"]", raw);
        if (node_call(r, a, "eth_sendRawTransaction", p, &res) == 0)
            rc = put_json(&a->res, r->h, res)
                     ? 0
                     : fail(a, RPC_INTERNAL, "out of memory");
    }
    free(p);
    free(raw);
    return rc;
}

/* eth_sign [address, data] and personal_sign [data, address]. */
static int sign_data(rpc_req *r, rpc_ans *a, const signer_json *params,
                     int data_at)
{
    unsigned char hash[32];
    char sig[133];

    if (need_params(r, a, params, 2) != 0 ||
        param_is_key(r, a, params, 1 - data_at) != 0 ||
        param_msg_hash(r, a, hash, params, data_at) != 0 ||
        sign65(r, a, sig, hash) != 0)
        return -1;
    return ok_str(a, sig);
}

static int m_eth_sign(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    return sign_data(r, a, params, 1);
}

static int m_personal_sign(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    return sign_data(r, a, params, 0);
}

static int m_typed_v4(rpc_req *r, rpc_ans *a, const signer_json *params)
{
    const signer_json *td;
    unsigned char digest[32];
    char sig[133], err[200];
    const char *s;
    size_t len;

    if (need_params(r, a, params, 2) != 0 || param_is_key(r, a, params, 0))
        return -1;
    td = r->h->json_at(params, 1, NULL);
    if ((s = r->h->json_string(td, &len)) != NULL &&
        r->h->json_parse(r->call, &td, err, sizeof err, s, len) != SIGNER_OK)
        return fail(a, RPC_PARAMS, "params[1]: typed data text is not JSON: "
                                   "%s", err);
    if (eth_typed_digest(digest, a->msg, sizeof a->msg, r->h, td) !=
        SIGNER_OK) {
        rename_path(a->msg, sizeof a->msg, "typed_data", 1);
        return a->code = RPC_PARAMS, -1;
    }
    return sign65(r, a, sig, digest) == 0 ? ok_str(a, sig) : -1;
}

static const struct {
    const char *name;
    rpc_method_fn fn;
} rpc_methods[] = {
    {"eth_accounts", m_accounts},
    {"eth_requestAccounts", m_accounts},
    {"eth_chainId", m_chain_id},
    {"eth_signTransaction", m_sign_tx},
    {"eth_sendTransaction", m_send_tx},
    {"eth_sign", m_eth_sign},
    {"personal_sign", m_personal_sign},
    {"eth_signTypedData_v4", m_typed_v4},
};

/* ---- requests ------------------------------------------------------------------ */

/* Validates a request object; *method and *params set.  -32600 otherwise. */
static int check_request(rpc_req *r, rpc_ans *a, const signer_json *item,
                         const char **method, const signer_json **params)
{
    const signer_host *h = r->h;
    const char *v;
    size_t len;
    int t;

    if (h->json_type(item) != SIGNER_JSON_OBJECT)
        return fail(a, RPC_INVALID, "invalid request: expected an object");
    v = h->json_string(h->json_get(item, "jsonrpc"), &len);
    if (v == NULL || strcmp(v, "2.0") != 0)
        return fail(a, RPC_INVALID, "jsonrpc: must be \"2.0\"");
    *method = h->json_string(h->json_get(item, "method"), &len);
    if (*method == NULL)
        return fail(a, RPC_INVALID, "method: required, a string");
    *params = h->json_get(item, "params");
    t = h->json_type(*params);
    if (*params != NULL && t != SIGNER_JSON_ARRAY && t != SIGNER_JSON_OBJECT)
        return fail(a, RPC_INVALID, "params: must be an array or an object");
    return 0;
}

/* Runs one request into a. */
static void run_request(rpc_req *r, rpc_ans *a, const signer_json *item)
{
    const signer_json *params = NULL;
    const char *method = NULL;

    if (check_request(r, a, item, &method, &params) != 0)
        return;
    for (size_t i = 0; i < sizeof rpc_methods / sizeof rpc_methods[0]; i++)
        if (strcmp(method, rpc_methods[i].name) == 0) {
            (void)rpc_methods[i].fn(r, a, params);
            return;
        }
    if (r->c->rpc->url != NULL) {
        (void)node_forward(r, a, item);
        return;
    }
    fail(a, RPC_NO_METHOD,
         "method not found: %.64s (no downstream node is configured)",
         method);
}

/* The id of a request: its JSON text when it is a string, number or null;
 * NULL for a notification.  *valid 0 when present with another type. */
static const signer_json *request_id(const signer_host *h,
                                     const signer_json *item, int *present)
{
    const signer_json *id = h->json_get(item, "id");
    int t = h->json_type(id);

    *present = id != NULL;
    if (t == SIGNER_JSON_STRING || t == SIGNER_JSON_NUMBER ||
        t == SIGNER_JSON_NULL)
        return id;
    return NULL;
}

/* Appends the response object of a to out. */
static int put_response(eth_buf *out, const signer_host *h,
                        const signer_json *id, const rpc_ans *a)
{
    char code[24];

    if (!put(out, "{\"jsonrpc\":\"2.0\",\"id\":") ||
        !(id != NULL ? put_json(out, h, id) : put(out, "null")))
        return 0;
    if (a->code == 0)
        return put(out, ",\"result\":") &&
               eth_buf_append(out, a->res.p, a->res.len) && put(out, "}");
    if (a->node_error != NULL)
        return put(out, ",\"error\":") && put_json(out, h, a->node_error) &&
               put(out, "}");
    snprintf(code, sizeof code, "%d", a->code);
    return put(out, ",\"error\":{\"code\":") && put(out, code) &&
           put(out, ",\"message\":") && put_str(out, a->msg, strlen(a->msg)) &&
           put(out, "}}");
}

/* Answers one item of the body; nothing for a notification.  *wrote 1
 * when a response was appended. */
static int answer_item(rpc_req *r, eth_buf *out, const signer_json *item,
                       int *wrote)
{
    unsigned char stack[512];
    const signer_json *id = NULL;
    rpc_ans a;
    int present = 0, ok = 1;

    memset(&a, 0, sizeof a);
    eth_buf_init(&a.res, stack, sizeof stack);
    *wrote = 0;
    if (r->h->json_type(item) == SIGNER_JSON_OBJECT)
        id = request_id(r->h, item, &present);
    if (present && id == NULL)
        fail(&a, RPC_INVALID, "id: must be a string, a number or null");
    else
        run_request(r, &a, item);
    if (present || a.code == RPC_INVALID) {
        ok = put_response(out, r->h, id, &a);
        *wrote = 1;
    }
    eth_buf_cleanup(&a.res);
    return ok;
}

/* ---- the op ----------------------------------------------------------------------- */

/* A whole answer that is one error with id null, with HTTP status of err. */
static int reply_error_obj(const signer_host *h, signer_reply *reply, int err,
                           int code, const char *msg)
{
    unsigned char stack[640];
    rpc_ans a;
    eth_buf out;
    int rc;

    memset(&a, 0, sizeof a);
    a.code = code;
    snprintf(a.msg, sizeof a.msg, "%s", msg);
    eth_buf_init(&out, stack, sizeof stack);
    rc = put_response(&out, h, NULL, &a)
             ? h->reply_raw(reply, err, (const char *)out.p, out.len)
             : h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    eth_buf_cleanup(&out);
    return rc;
}

/* Answers the parsed body: one request or a batch. */
static int answer_body(rpc_req *r, signer_reply *reply, const signer_json *b)
{
    const signer_host *h = r->h;
    unsigned char stack[1024];
    size_t n = h->json_count(b), i, wrote_n = 0;
    eth_buf out;
    int ok = 1, wrote = 0, rc;

    eth_buf_init(&out, stack, sizeof stack);
    if (h->json_type(b) != SIGNER_JSON_ARRAY) {
        ok = answer_item(r, &out, b, &wrote);
    } else if (n == 0 || n > RPC_BATCH_MAX) {
        eth_buf_cleanup(&out);
        return reply_error_obj(h, reply, SIGNER_OK, RPC_INVALID,
                               n == 0 ? "invalid request: empty batch"
                                      : "invalid request: batch of more "
                                        "than 1000 requests");
    } else {
        ok = put(&out, "[");
        for (i = 0; ok && i < n; i++) {
            size_t mark = out.len; /* a notification leaves no comma */
            ok = (wrote_n == 0 || put(&out, ",")) &&
                 answer_item(r, &out, h->json_at(b, i, NULL), &wrote);
            if (ok && !wrote)
                out.len = mark;
            wrote_n += (size_t)wrote;
        }
        /* only notifications: nothing at all */
        if (wrote_n == 0)
            out.len = 0;
        else
            ok = ok && put(&out, "]");
    }
    rc = !ok ? h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory")
             : h->reply_raw(reply, SIGNER_OK,
                            out.len ? (const char *)out.p : "", out.len);
    eth_buf_cleanup(&out);
    return rc;
}

/* Authentication failed: 401 (429 throttled, 5xx engine faults). */
static int reply_auth_failure(const signer_host *h, signer_reply *reply,
                              int rc)
{
    if (rc == SIGNER_ERR_THROTTLED)
        return reply_error_obj(h, reply, rc, -32005,
                               "too many failed attempts for this key_id; "
                               "retry later");
    if (rc == SIGNER_ERR_INTERNAL || rc == SIGNER_ERR_UNAVAILABLE ||
        rc == SIGNER_ERR_NOMEM)
        return reply_error_obj(h, reply, rc, RPC_INTERNAL,
                               "the key service failed");
    return reply_error_obj(h, reply, SIGNER_ERR_UNAUTHENTICATED,
                           RPC_UNAUTHORIZED,
                           "unauthorized: wrong key_id or secret in the "
                           "Authorization header");
}

/* The rpc op: the JSON-RPC endpoint (see the top of this file). */
int eth_rpc(void *pctx, signer_call *call, signer_reply *reply,
            const signer_json *payload)
{
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    rpc_req r;
    const signer_json *b;
    const char *text;
    char err[200];
    size_t len = 0;
    int rc;

    if (c->rpc == NULL)
        return h->reply_error(reply, SIGNER_ERR_INTERNAL,
                              "rpc: the host lacks ABI 1.2 services");
    if (h->json_get(payload, "key_id") == NULL ||
        h->json_get(payload, "secret") == NULL)
        return reply_error_obj(h, reply, SIGNER_ERR_UNAUTHENTICATED,
                               RPC_UNAUTHORIZED,
                               "unauthorized: send Authorization: Basic "
                               "base64(key_id:secret) or Bearer "
                               "key_id:secret");
    memset(&r, 0, sizeof r);
    r.c = c;
    r.h = h;
    r.call = call;
    rc = eth_open_key(c, call, reply, payload, &r.key, r.addr, &r.pub);
    if (rc != SIGNER_OK) {
        rc = reply_auth_failure(h, reply, rc);
        goto cleanup;
    }
    text = h->json_string(h->json_get(payload, "body"), &len);
    if (text == NULL || h->json_parse(call, &b, err, sizeof err, text, len) !=
                            SIGNER_OK) {
        char msg[240];
        snprintf(msg, sizeof msg, "parse error: %s",
                 text == NULL ? "no body" : err);
        rc = reply_error_obj(h, reply, SIGNER_OK, RPC_PARSE, msg);
        goto cleanup;
    }
    rc = answer_body(&r, reply, b);

cleanup:
    h->secure_free(h, r.key, 32);
    return rc;
}

/* Reads the rpc settings (and SIGNER_RPC_DOWNSTREAM) into c->rpc. */
int eth_rpc_init(eth_ctx *c)
{
    const signer_host *h = c->host;
    const char *url = NULL, *env = getenv("SIGNER_RPC_DOWNSTREAM");
    long long t = RPC_TIMEOUT_DEFAULT;
    struct eth_rpc_conf *rc;

    if (!SIGNER_HAS_MEMBER(h, signer_host, http_post) || h->http_post == NULL)
        return SIGNER_OK; /* an older host: the rpc op says so */
    if ((rc = calloc(1, sizeof *rc)) == NULL)
        return SIGNER_ERR_NOMEM;
    c->rpc = rc;
    if (h->conf_string(h->settings, "rpc_downstream_url", &url) < 0 ||
        h->conf_int(h->settings, "chain_id", &rc->chain_id) < 0 ||
        h->conf_int(h->settings, "rpc_timeout_ms", &t) < 0 || t < 100 ||
        t > 600000 || rc->chain_id < 0) {
        h->log(h, SIGNER_LOG_ERROR,
               "settings: rpc_downstream_url must be a string, chain_id a "
               "positive integer, rpc_timeout_ms 100..600000");
        return SIGNER_ERR_CONFIG;
    }
    rc->timeout_ms = (long)t;
    if (env != NULL && env[0] != '\0')
        url = env;
    if (url == NULL || url[0] == '\0')
        return SIGNER_OK;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        h->log(h, SIGNER_LOG_ERROR,
               "rpc downstream URL must start with http:// or https://");
        return SIGNER_ERR_CONFIG;
    }
    return (rc->url = strdup(url)) != NULL ? SIGNER_OK : SIGNER_ERR_NOMEM;
}

/* Frees c->rpc. */
void eth_rpc_free(eth_ctx *c)
{
    if (c->rpc != NULL)
        free(c->rpc->url);
    free(c->rpc);
    c->rpc = NULL;
}
