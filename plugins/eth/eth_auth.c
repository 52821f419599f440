/*
 * EIP-7702 authorizations.
 *
 *   authority signs keccak256(0x05 || rlp([chainId, address, nonce]))
 *   a signed tuple is rlp([chainId, address, nonce, yParity, r, s])
 *
 * sign_authorization {key_id, secret, authorization: {chainId, address,
 * nonce}} -> {chainId, address, nonce, yParity, r, s, signature}, as ethers'
 * Wallet.authorize: chainId, nonce and yParity as hex quantities, r and s as
 * 32-byte hex, signature r||s||v with v = 27 + yParity.  chainId 0 means any
 * chain.  The answer can be put as is into a type-4 authorizationList.
 */
#include <stdio.h>
#include <string.h>

#include "eth.h"

#define ETH_AUTH_MAGIC 0x05

typedef struct eth_auth {
    eth_u256 chain_id, nonce, y, r, s;
    unsigned char address[20];
} eth_auth;

/* Members of a tuple: index in names[], or -1. */
static int eth_auth_field(const char *key, const char *const *names, int n)
{
    int i;

    for (i = 0; key != NULL && i < n; i++)
        if (strcmp(key, names[i]) == 0)
            return i;
    return -1;
}

/* v (27/28, or 0/1) as yParity; must agree with a yParity given too. */
static int eth_auth_v(eth_auth *a, char *err, size_t errcap,
                      const signer_host *h, const signer_json *v,
                      int has_y, const char *path)
{
    eth_u256 y;
    int rc = eth_qty(&y, err, errcap, h, v, path, 1);

    if (rc != SIGNER_OK)
        return rc;
    if (y.w[0] >= 27)
        y.w[0] -= 27;
    if (y.w[0] > 1)
        return eth_fail(err, errcap, "%s: expected 27 or 28", path);
    if (has_y && eth_u256_cmp(&y, &a->y) != 0)
        return eth_fail(err, errcap, "%s: disagrees with yParity", path);
    a->y = y;
    return SIGNER_OK;
}

/* Parses {chainId, address, nonce} and, when signed, {yParity (or v), r, s}
 * from obj into a; name is obj's path. */
static int eth_auth_parse(eth_auth *a, char *err, size_t errcap,
                          const signer_host *h, const signer_json *obj,
                          const char *name, int signed_tuple)
{
    enum { A_CHAIN, A_ADDR, A_NONCE, A_Y, A_R, A_S, A_V, A_N };
    static const char *const names[A_N] = {"chainId", "address", "nonce",
                                           "yParity", "r", "s", "v"};
    const signer_json *fv[A_N] = {NULL};
    eth_u256 *dst[A_N] = {&a->chain_id, NULL, &a->nonce, &a->y,
                          &a->r,        &a->s, NULL};
    int nnames = signed_tuple ? A_N : A_Y, f, rc, i;
    char path[96];
    size_t n, j;

    memset(a, 0, sizeof *a);
    if (h->json_type(obj) != SIGNER_JSON_OBJECT)
        return eth_fail(err, errcap, "%s: expected an object {chainId, "
                        "address, nonce%s}", name,
                        signed_tuple ? ", yParity, r, s" : "");
    n = h->json_count(obj);
    for (j = 0; j < n; j++) {
        const char *key = NULL;
        const signer_json *v = h->json_at(obj, j, &key);
        f = eth_auth_field(key, names, nnames);
        if (f < 0 || fv[f] != NULL)
            return eth_fail(err, errcap, "%s.%.64s: unknown or duplicate "
                            "field", name, key ? key : "");
        fv[f] = v;
    }
    for (i = 0; i < nnames; i++) {
        snprintf(path, sizeof path, "%s.%s", name, names[i]);
        if (fv[i] == NULL && (i == A_V || (i == A_Y && fv[A_V] != NULL)))
            continue; /* v is optional; yParity may come from v */
        if (fv[i] == NULL)
            return eth_fail(err, errcap, "%s: required", path);
        if (i == A_ADDR)
            rc = eth_address(a->address, err, errcap, h, fv[i], path);
        else if (i == A_V)
            rc = eth_auth_v(a, err, errcap, h, fv[i], fv[A_Y] != NULL, path);
        else
            rc = eth_qty(dst[i], err, errcap, h, fv[i], path,
                         i == A_NONCE || i == A_Y);
        if (rc != SIGNER_OK)
            return rc;
        if (i == A_Y && a->y.w[0] > 1)
            return eth_fail(err, errcap, "%s: expected 0 or 1", path);
    }
    return SIGNER_OK;
}

/* Validates one signed tuple of an authorizationList (path name). */
int eth_auth_check(char *err, size_t errcap, const signer_host *h,
                   const signer_json *tuple, const char *name)
{
    eth_auth a;

    return eth_auth_parse(&a, err, errcap, h, tuple, name, 1);
}

/* Appends a validated authorizationList as RLP. */
int eth_auth_list_rlp(eth_buf *b, const signer_host *h,
                      const signer_json *list)
{
    size_t outer = eth_rlp_list_begin(b), n = h->json_count(list), i;
    char err[8];

    for (i = 0; i < n; i++) {
        size_t start = eth_rlp_list_begin(b);
        eth_auth a;
        if (eth_auth_parse(&a, err, sizeof err, h, h->json_at(list, i, NULL),
                           "", 1) != SIGNER_OK)
            return 0;
        if (!eth_rlp_u256(b, &a.chain_id) || !eth_rlp_bytes(b, a.address, 20) ||
            !eth_rlp_u256(b, &a.nonce) || !eth_rlp_u256(b, &a.y) ||
            !eth_rlp_u256(b, &a.r) || !eth_rlp_u256(b, &a.s) ||
            !eth_rlp_list_end(b, start))
            return 0;
    }
    return eth_rlp_list_end(b, outer);
}

/* keccak256(0x05 || rlp([chainId, address, nonce])) */
static int eth_auth_hash(unsigned char out[32], const eth_auth *a)
{
    unsigned char stack[128];
    eth_buf b;
    int ok;

    eth_buf_init(&b, stack, sizeof stack);
    ok = eth_buf_append(&b, "\x05", 1);
    ok = ok && eth_rlp_u256(&b, &a->chain_id) &&
         eth_rlp_bytes(&b, a->address, 20) && eth_rlp_u256(&b, &a->nonce) &&
         eth_rlp_list_end(&b, 1);
    if (ok)
        eth_keccak256(out, b.p, b.len);
    eth_buf_cleanup(&b);
    return ok;
}

/* Writes v as a hex quantity ("0x0", "0x1f", ...) into out[67]. */
static void eth_auth_qty(char out[67], const eth_u256 *v)
{
    unsigned char be[32];
    size_t n = eth_u256_to_be(be, v), len;

    if (n == 0) {
        snprintf(out, 67, "0x0");
        return;
    }
    len = eth_hex_encode(out, be, n);
    if (out[2] == '0') /* drop the one leading zero digit */
        memmove(out + 2, out + 3, len - 2);
}

/* Adds the fields of a signed authorization to reply. */
static int eth_auth_reply(const signer_host *h, signer_reply *reply,
                          const eth_auth *a, const unsigned char rs[64],
                          int recid)
{
    unsigned char sig[65];
    char chain[67], nonce[67], r[67], s[67], sighex[2 * 65 + 3];
    char addr[ETH_ADDR_TEXT];

    eth_auth_qty(chain, &a->chain_id);
    eth_auth_qty(nonce, &a->nonce);
    eth_addr_checksum(addr, a->address);
    eth_hex_encode(r, rs, 32);
    eth_hex_encode(s, rs + 32, 32);
    memcpy(sig, rs, 64);
    sig[64] = (unsigned char)(27 + recid);
    eth_hex_encode(sighex, sig, 65);
    if (h->reply_string(reply, "chainId", chain) != SIGNER_OK ||
        h->reply_string(reply, "address", addr) != SIGNER_OK ||
        h->reply_string(reply, "nonce", nonce) != SIGNER_OK ||
        h->reply_string(reply, "yParity", recid ? "0x1" : "0x0") !=
            SIGNER_OK ||
        h->reply_string(reply, "r", r) != SIGNER_OK ||
        h->reply_string(reply, "s", s) != SIGNER_OK ||
        h->reply_string(reply, "signature", sighex) != SIGNER_OK)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    return SIGNER_OK;
}

/* sign_authorization handler (see the top of this file). */
int eth_sign_authorization(void *pctx, signer_call *call, signer_reply *reply,
                           const signer_json *payload)
{
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    const signer_json *obj;
    unsigned char hash[32], addr[20], rs[64];
    unsigned char *key = NULL;
    secp256k1_pubkey pub;
    char err[256];
    eth_auth a;
    int rc, recid;

    rc = eth_check_payload(h, reply, payload, "authorization");
    if (rc != SIGNER_OK)
        return rc;
    obj = h->json_get(payload, "authorization");
    if (obj == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "authorization: required");
    rc = eth_auth_parse(&a, err, sizeof err, h, obj, "authorization", 0);
    if (rc != SIGNER_OK)
        return h->reply_error(reply, rc, "%s", err);
    if (!eth_auth_hash(hash, &a))
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");

    rc = eth_open_key(c, call, reply, payload, &key, addr, &pub);
    if (rc != SIGNER_OK)
        goto cleanup;
    rc = eth_sign_hash(c->secp, rs, &recid, hash, key, c->verify ? &pub : NULL);
    if (rc != SIGNER_OK) {
        h->log(h, SIGNER_LOG_ERROR, "signature self-check failed");
        rc = h->reply_error(reply, rc, "signing failed");
        goto cleanup;
    }
    rc = eth_auth_reply(h, reply, &a, rs, recid);

cleanup:
    h->secure_free(h, key, 32);
    return rc;
}
