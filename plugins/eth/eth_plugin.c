/*
 * Ethereum chain plugin: init, op table and handlers.
 *
 *   generate_key     {secret}                          -> {key_id, address}
 *   set_key          {eth_key, secret}                 -> {key_id, address}
 *   sign_transaction {key_id, secret, transaction_payload}
 *                                    -> {transaction_signed, transaction_hash}
 *                    (a transaction_payload holding userOpHash is served by
 *                    sign_userop, as in the seed)
 *   sign_userop      {key_id, secret, transaction_payload: {userOpHash}}
 *                                                      -> {signature}
 *                    {key_id, secret, user_operation, entry_point, chainId,
 *                     entry_point_version}       -> {userOpHash, signature}
 *                    (hash computed in eth_userop.c)
 *   sign_message     {key_id, secret, message}         -> {signature}
 *                    (message: UTF-8 text, or {"raw": "0x..."} bytes)
 *   sign_typed_data  {key_id, secret, typed_data}      -> {signature, digest}
 *                    (eth_typed.c)
 *   sign_authorization {key_id, secret, authorization: {chainId, address,
 *                    nonce}}   -> {chainId, address, nonce, yParity, r, s,
 *                    signature}                        (eth_auth.c)
 *
 * Every op also accepts hmac and timestamp (HMAC authentication, checked by
 * host->key_open) and refuses any other field.  Input is validated before
 * the key is unsealed; the key lives in host->secure_alloc memory and is
 * wiped and freed on every path.  Nothing from the payload is ever logged.
 *
 * The context (host pointer and a randomised secp256k1 context) is read-only
 * after init, so handlers may run concurrently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1.h>

#include "eth.h"

#define ETH_CHAIN "eth"

/* Checks that payload is an object whose members are all in the common set
 * (key_id, secret, hmac, timestamp) or equal to own, each at most once. */
int eth_check_payload(const signer_host *h, signer_reply *reply,
                      const signer_json *payload, const char *own)
{
    const char *allowed[5] = {"key_id", "secret", "hmac", "timestamp", own};
    size_t nallowed = own != NULL ? 5 : 4;
    unsigned seen = 0;
    size_t n, i, j;

    if (h->json_type(payload) != SIGNER_JSON_OBJECT)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "payload: expected an object");
    n = h->json_count(payload);
    for (i = 0; i < n; i++) {
        const char *key = NULL;
        (void)h->json_at(payload, i, &key);
        for (j = 0; j < nallowed; j++) /* first letters, then strcmp */
            if (key != NULL && key[0] == allowed[j][0] &&
                strcmp(key, allowed[j]) == 0)
                break;
        if (j == nallowed)
            return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                  "%.64s: unknown field", key ? key : "");
        if (seen & (1u << j))
            return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                  "%s: duplicate field", allowed[j]);
        seen |= 1u << j;
    }
    return SIGNER_OK;
}

/* Unseals the payload's key into *key (secure memory, 32 bytes, freed by
 * the caller with secure_free even on failure) and parses its address;
 * with verify_signatures on, also sets *pub (eth_key_pubkey). */
int eth_open_key(const eth_ctx *c, signer_call *call, signer_reply *reply,
                 const signer_json *payload, unsigned char **key,
                 unsigned char addr[20], secp256k1_pubkey *pub)
{
    const signer_host *h = c->host;
    char text[SIGNER_MAX_ADDRESS];
    size_t klen = 0;
    int rc;

    memset(addr, 0, 20);
    memset(pub, 0, sizeof *pub);
    *key = h->secure_alloc(h, 32);
    if (*key == NULL)
        return h->reply_error(reply, SIGNER_ERR_NOMEM,
                              "out of secure memory");
    text[0] = '\0';
    rc = h->key_open(call, reply, *key, 32, &klen, text, sizeof text,
                     ETH_CHAIN, payload);
    if (rc != SIGNER_OK)
        return rc; /* key_open wrote the message (400/403/404/429/500) */
    text[sizeof text - 1] = '\0';
    /* The stored address was derived from this key by eth_store_key and is
     * authenticated by the sealer (AAD), so its checksum is not recomputed
     * here: "0x" and 40 hex digits. */
    if (klen != 32 || strlen(text) != 42 || !eth_hex_has_prefix(text, 42) ||
        !eth_hex_decode_public(addr, text + 2, 40)) {
        h->log(h, SIGNER_LOG_ERROR, "stored eth key record is malformed");
        return h->reply_error(reply, SIGNER_ERR_INTERNAL,
                              "key_id: stored key record is malformed");
    }
    if (c->verify && eth_key_pubkey(c, call, pub, *key, addr) != SIGNER_OK) {
        h->log(h, SIGNER_LOG_ERROR, "signature self-check failed");
        return h->reply_error(reply, SIGNER_ERR_INTERNAL, "signing failed");
    }
    return SIGNER_OK;
}

/* Signs hash and writes 0x r||s||v (v = 27 + recid) as field "signature";
 * the signature is verified against pub when verify_signatures is on. */
int eth_reply_sig65(const eth_ctx *c, signer_reply *reply,
                    const unsigned char hash[32], const unsigned char *key,
                    const secp256k1_pubkey *pub)
{
    const signer_host *h = c->host;
    unsigned char sig[65];
    char hex[2 * 65 + 3];
    int recid, rc;

    rc = eth_sign_hash(c->secp, sig, &recid, hash, key,
                       c->verify ? pub : NULL);
    if (rc != SIGNER_OK) {
        h->log(h, SIGNER_LOG_ERROR, "signature self-check failed");
        return h->reply_error(reply, rc, "signing failed");
    }
    sig[64] = (unsigned char)(27 + recid);
    eth_hex_encode(hex, sig, 65);
    if (h->reply_string(reply, "signature", hex) != SIGNER_OK)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    return SIGNER_OK;
}

/* Derives the address of key and stores it through host->key_create. */
static int eth_store_key(const eth_ctx *c, signer_call *call,
                         signer_reply *reply, const unsigned char *key,
                         const signer_json *payload)
{
    const signer_host *h = c->host;
    unsigned char addr[20];
    char text[ETH_ADDR_TEXT];

    if (!eth_addr_from_seckey(c->secp, addr, key))
        return h->reply_error(reply, SIGNER_ERR_INTERNAL,
                              "public key derivation failed");
    eth_addr_checksum(text, addr);
    return h->key_create(call, reply, ETH_CHAIN, text, key, 32, payload);
}

static int eth_generate_key(void *pctx, signer_call *call, signer_reply *reply,
                            const signer_json *payload)
{
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    unsigned char *key = NULL;
    int rc, tries, ok;

    rc = eth_check_payload(h, reply, payload, NULL);
    if (rc != SIGNER_OK)
        return rc;
    key = h->secure_alloc(h, 32);
    if (key == NULL)
        return h->reply_error(reply, SIGNER_ERR_NOMEM,
                              "out of secure memory");
    /* redraw while 0 or >= n (probability ~2^-128 per draw) */
    for (tries = 0;; tries++) {
        if (tries == 16) {
            rc = h->reply_error(reply, SIGNER_ERR_INTERNAL,
                                "entropy source yields no valid key");
            goto cleanup;
        }
        if (h->random_bytes(h, key, 32) != SIGNER_OK) {
            rc = h->reply_error(reply, SIGNER_ERR_INTERNAL,
                                "entropy source failed");
            goto cleanup;
        }
        ok = secp256k1_ec_seckey_verify(c->secp, key);
        ETH_DECLASSIFY(&ok, sizeof ok); /* only the verdict is public */
        if (ok)
            break;
    }
    rc = eth_store_key(c, call, reply, key, payload);

cleanup:
    h->secure_free(h, key, 32);
    return rc;
}

static int eth_set_key(void *pctx, signer_call *call, signer_reply *reply,
                       const signer_json *payload)
{
    static const char bad[] =
        "eth_key: expected a private key of 64 hex digits (optional 0x), "
        "at least 1 and below the secp256k1 group order";
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    const signer_json *v;
    unsigned char *key = NULL;
    const char *s;
    size_t len;
    int rc, ok;

    rc = eth_check_payload(h, reply, payload, "eth_key");
    if (rc != SIGNER_OK)
        return rc;
    v = h->json_get(payload, "eth_key");
    if (v == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "eth_key: required");
    s = h->json_string(v, &len);
    if (s == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST, "%s", bad);
    /* a prefix is looked for only in a 66-character string (known from the
     * public length), so no branch ever reads a digit of the key */
    if (len == 66 && eth_hex_has_prefix(s, len)) {
        s += 2;
        len -= 2;
    }
    if (len != 64)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST, "%s", bad);
    key = h->secure_alloc(h, 32);
    if (key == NULL)
        return h->reply_error(reply, SIGNER_ERR_NOMEM,
                              "out of secure memory");
    /* both checks are constant time; only their verdict is branched on */
    ok = eth_hex_decode(key, s, 64); /* verdict declassified inside */
    if (ok) {
        ok = secp256k1_ec_seckey_verify(c->secp, key);
        ETH_DECLASSIFY(&ok, sizeof ok);
    }
    if (!ok) {
        rc = h->reply_error(reply, SIGNER_ERR_BAD_REQUEST, "%s", bad);
        goto cleanup;
    }
    rc = eth_store_key(c, call, reply, key, payload);

cleanup:
    h->secure_free(h, key, 32);
    return rc;
}

/* sign_userop's user_operation form: the userOpHash is computed here and
 * signed raw or EIP-191 as the EntryPoint version's SimpleAccount expects. */
static int eth_sign_user_operation(const eth_ctx *c, signer_call *call,
                                   signer_reply *reply,
                                   const signer_json *payload)
{
    const signer_host *h = c->host;
    unsigned char op_hash[32], to_sign[32], addr[20];
    unsigned char *key = NULL;
    secp256k1_pubkey pub;
    char err[320], hex[2 * 32 + 3];
    int rc;

    rc = eth_userop_hash(op_hash, to_sign, err, sizeof err, h, payload);
    if (rc != SIGNER_OK)
        return h->reply_error(reply, rc, "%s", err);
    rc = eth_open_key(c, call, reply, payload, &key, addr, &pub);
    if (rc == SIGNER_OK)
        rc = eth_reply_sig65(c, reply, to_sign, key, &pub);
    h->secure_free(h, key, 32);
    if (rc != SIGNER_OK)
        return rc;
    eth_hex_encode(hex, op_hash, 32);
    if (h->reply_string(reply, "userOpHash", hex) != SIGNER_OK)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    return SIGNER_OK;
}

static int eth_sign_userop(void *pctx, signer_call *call, signer_reply *reply,
                           const signer_json *payload)
{
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    const signer_json *tp, *uh = NULL;
    unsigned char hash[32], addr[20];
    unsigned char *key = NULL;
    secp256k1_pubkey pub;
    const char *s;
    size_t len, n, i;
    int rc;

    if (h->json_get(payload, "user_operation") != NULL)
        return eth_sign_user_operation(c, call, reply, payload);
    rc = eth_check_payload(h, reply, payload, "transaction_payload");
    if (rc != SIGNER_OK)
        return rc;
    tp = h->json_get(payload, "transaction_payload");
    if (tp == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "transaction_payload: required");
    if (h->json_type(tp) != SIGNER_JSON_OBJECT)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "transaction_payload: expected an object");
    n = h->json_count(tp);
    for (i = 0; i < n; i++) {
        const char *k = NULL;
        const signer_json *f = h->json_at(tp, i, &k);
        if (k == NULL || strcmp(k, "userOpHash") != 0 || uh != NULL)
            return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                  "transaction_payload.%.64s: not allowed "
                                  "with userOpHash",
                                  k ? k : "");
        uh = f;
    }
    if (uh == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "transaction_payload.userOpHash: required");
    s = h->json_string(uh, &len);
    if (s != NULL && eth_hex_has_prefix(s, len)) {
        s += 2;
        len -= 2;
    }
    if (s == NULL || len != 64 || !eth_hex_decode(hash, s, 64))
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "transaction_payload.userOpHash: expected 32 "
                              "bytes as 64 hex digits (optional 0x)");

    rc = eth_open_key(c, call, reply, payload, &key, addr, &pub);
    if (rc == SIGNER_OK)
        rc = eth_reply_sig65(c, reply, hash, key, &pub);
    h->secure_free(h, key, 32);
    return rc;
}

static int eth_sign_transaction(void *pctx, signer_call *call,
                                signer_reply *reply,
                                const signer_json *payload)
{
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    const signer_json *tp;
    unsigned char body_stack[768], hex_stack[1600];
    unsigned char hash[32], txhash[32], addr[20], rs[64];
    char hashhex[2 * 32 + 3], err[256];
    unsigned char *key = NULL;
    secp256k1_pubkey pub;
    eth_buf body, hex;
    eth_tx tx;
    int rc, recid;

    tp = h->json_get(payload, "transaction_payload");
    if (h->json_type(tp) == SIGNER_JSON_OBJECT &&
        h->json_get(tp, "userOpHash") != NULL)
        return eth_sign_userop(pctx, call, reply, payload);

    eth_buf_init(&body, body_stack, sizeof body_stack);
    eth_buf_init(&hex, hex_stack, sizeof hex_stack);
    rc = eth_check_payload(h, reply, payload, "transaction_payload");
    if (rc != SIGNER_OK)
        goto cleanup;
    rc = eth_tx_parse(&tx, err, sizeof err, h, tp);
    if (rc != SIGNER_OK) {
        rc = h->reply_error(reply, rc, "%s", err);
        goto cleanup;
    }
    /* one allocation up front for large calldata instead of regrowth */
    if (tx.data_hex_len / 2 + 512 > body.cap &&
        eth_buf_reserve(&body, tx.data_hex_len / 2 + 1024) == NULL) {
        rc = h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (!eth_tx_body(&body, h, &tx) || !eth_tx_sighash(hash, &body, &tx)) {
        rc = h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }

    rc = eth_open_key(c, call, reply, payload, &key, addr, &pub);
    if (rc != SIGNER_OK)
        goto cleanup;
    if (tx.has_from && memcmp(tx.from, addr, 20) != 0) {
        rc = h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                            "transaction_payload.from: is not the address "
                            "of key_id");
        goto cleanup;
    }
    rc = eth_sign_hash(c->secp, rs, &recid, hash, key,
                       c->verify ? &pub : NULL);
    h->secure_free(h, key, 32);
    key = NULL;
    if (rc != SIGNER_OK) {
        h->log(h, SIGNER_LOG_ERROR, "signature self-check failed");
        rc = h->reply_error(reply, rc, "signing failed");
        goto cleanup;
    }
    if (!eth_tx_finish(&hex, txhash, &body, &tx, rs, recid)) {
        rc = h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    eth_hex_encode(hashhex, txhash, 32);
    if (h->reply_string(reply, "transaction_signed", (const char *)hex.p) !=
            SIGNER_OK ||
        h->reply_string(reply, "transaction_hash", hashhex) != SIGNER_OK) {
        rc = h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = SIGNER_OK;

cleanup:
    if (key != NULL)
        h->secure_free(h, key, 32);
    eth_buf_cleanup(&hex);
    eth_buf_cleanup(&body);
    return rc;
}

/* message: a string is its UTF-8 text (as ethers' signMessage(string) and
 * viem); {"raw": "0x..."} is bytes (viem's form).  Sets *text or *hex (the
 * digits after 0x) and their length. */
static int eth_message_arg(const signer_host *h, signer_reply *reply,
                           const signer_json *v, const char **text,
                           const char **hex, size_t *len)
{
    const signer_json *raw;
    const char *key = NULL;

    *text = *hex = NULL;
    *len = 0;
    if (v == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "message: required");
    *text = h->json_string(v, len);
    if (*text != NULL)
        return SIGNER_OK;
    if (h->json_type(v) != SIGNER_JSON_OBJECT)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "message: expected a string (UTF-8 text) or "
                              "{\"raw\": \"0x...\"} (bytes)");
    raw = h->json_at(v, 0, &key);
    if (h->json_count(v) != 1 || key == NULL || strcmp(key, "raw") != 0)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "message: an object must be {\"raw\": "
                              "\"0x...\"} and nothing else");
    *hex = h->json_string(raw, len);
    if (*hex == NULL || !eth_hex_has_prefix(*hex, *len) || *len % 2 != 0 ||
        !eth_hex_is_digits(*hex + 2, *len - 2))
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "message.raw: expected 0x-prefixed hex with an "
                              "even number of digits");
    *hex += 2;
    *len -= 2;
    return SIGNER_OK;
}

/* EIP-191 personal_sign: keccak("\x19Ethereum Signed Message:\n" || decimal
 * byte length || message bytes). */
static int eth_sign_message(void *pctx, signer_call *call, signer_reply *reply,
                            const signer_json *payload)
{
    static const char prefix[] = "\x19" "Ethereum Signed Message:\n";
    const eth_ctx *c = pctx;
    const signer_host *h = c->host;
    unsigned char hash[32], addr[20];
    unsigned char *key = NULL;
    secp256k1_pubkey pub;
    char num[24];
    const char *text, *hex;
    size_t len, nbytes;
    int rc;
    eth_keccak k;

    rc = eth_check_payload(h, reply, payload, "message");
    if (rc != SIGNER_OK)
        return rc;
    rc = eth_message_arg(h, reply, h->json_get(payload, "message"), &text,
                         &hex, &len);
    if (rc != SIGNER_OK)
        return rc;
    nbytes = hex != NULL ? len / 2 : len;

    eth_keccak_init(&k);
    eth_keccak_update(&k, prefix, sizeof prefix - 1);
    snprintf(num, sizeof num, "%zu", nbytes);
    eth_keccak_update(&k, num, strlen(num));
    if (hex != NULL) {
        unsigned char chunk[256];
        size_t off;
        for (off = 0; off < nbytes; off += sizeof chunk) {
            size_t m = nbytes - off < sizeof chunk ? nbytes - off : sizeof chunk;
            if (!eth_hex_decode(chunk, hex + 2 * off, 2 * m))
                return h->reply_error(reply, SIGNER_ERR_INTERNAL,
                                      "message: hex decoding failed");
            eth_keccak_update(&k, chunk, m);
        }
    } else {
        eth_keccak_update(&k, text, len);
    }
    eth_keccak_final(&k, hash);

    rc = eth_open_key(c, call, reply, payload, &key, addr, &pub);
    if (rc == SIGNER_OK)
        rc = eth_reply_sig65(c, reply, hash, key, &pub);
    h->secure_free(h, key, 32);
    return rc;
}

/* What an HMAC covers per op (docs/hmac.md): every field the op reads
 * besides key_id and the credential. */
static const char *const eth_hmac_tx[] = {"transaction_payload", NULL};
static const char *const eth_hmac_userop[] = {
    "transaction_payload", "user_operation", "entry_point", "chainId",
    "entry_point_version", "signature_scheme", "eip7702_delegate", NULL};
static const char *const eth_hmac_msg[] = {"message", NULL};
static const char *const eth_hmac_typed[] = {"typed_data", NULL};
static const char *const eth_hmac_auth[] = {"authorization", NULL};

/* The reference wallet's REST routes and operation names, so its clients
 * work unchanged (docs/plugins.md): POST /key generates, or imports when
 * the body holds eth_key. */
static const signer_route eth_generate_routes[] = {
    {"POST", "/key", NULL}, {NULL, NULL, NULL}};
static const signer_route eth_set_key_routes[] = {
    {"POST", "/key", "eth_key"}, {"POST", "/key/import", NULL},
    {NULL, NULL, NULL}};
static const signer_route eth_sign_tx_routes[] = {
    {"POST", "/key/{key_id}/tx_signature", NULL}, {NULL, NULL, NULL}};
static const signer_route eth_sign_userop_routes[] = {
    {"POST", "/key/{key_id}/userop_signature", NULL}, {NULL, NULL, NULL}};
static const signer_route eth_rpc_routes[] = {
    {"POST", "/rpc", NULL}, {NULL, NULL, NULL}};
static const char *const eth_generate_aliases[] = {
    "ethereum-key-generator_generate_key", NULL};
static const char *const eth_set_key_aliases[] = {"ethereum-signer_set_key",
                                                  NULL};
static const char *const eth_sign_tx_aliases[] = {
    "ethereum-signer_sign_transaction", NULL};

static const signer_op eth_ops[] = {
    {.name = "generate_key", .handler = eth_generate_key,
     .flags = SIGNER_OP_SECRET, .routes = eth_generate_routes,
     .aliases = eth_generate_aliases},
    {.name = "set_key", .handler = eth_set_key, .flags = SIGNER_OP_SECRET,
     .routes = eth_set_key_routes, .aliases = eth_set_key_aliases},
    {.name = "sign_transaction", .handler = eth_sign_transaction,
     .flags = SIGNER_OP_SECRET, .routes = eth_sign_tx_routes,
     .aliases = eth_sign_tx_aliases, .hmac_fields = eth_hmac_tx},
    {.name = "sign_userop", .handler = eth_sign_userop,
     .flags = SIGNER_OP_SECRET, .routes = eth_sign_userop_routes,
     .hmac_fields = eth_hmac_userop},
    {.name = "sign_message", .handler = eth_sign_message,
     .flags = SIGNER_OP_SECRET, .hmac_fields = eth_hmac_msg},
    {.name = "sign_typed_data", .handler = eth_sign_typed_data,
     .flags = SIGNER_OP_SECRET, .hmac_fields = eth_hmac_typed},
    {.name = "sign_authorization", .handler = eth_sign_authorization,
     .flags = SIGNER_OP_SECRET, .hmac_fields = eth_hmac_auth},
    {.name = "rpc", .handler = eth_rpc,
     .flags = SIGNER_OP_SECRET | SIGNER_OP_RAW, .routes = eth_rpc_routes},
    {.name = NULL}};

static void eth_cleanup(void *pctx)
{
    eth_ctx *c = pctx;

    if (c == NULL)
        return;
    if (c->secp != NULL)
        secp256k1_context_destroy(c->secp);
    eth_rpc_free(c);
    free(c);
}

static const signer_plugin eth_plugin = {
    SIGNER_PLUGIN_HEADER, ETH_CHAIN, "0.1.0", eth_ops, eth_cleanup};

SIGNER_EXPORT int signer_plugin_init(const signer_host *host,
                                     const signer_plugin **out,
                                     void **plugin_ctx)
{
    unsigned char seed[32];
    eth_ctx *c = NULL;
    int rc = SIGNER_ERR_INTERNAL;

    if (out == NULL || plugin_ctx == NULL)
        return SIGNER_ERR_INTERNAL;
    *out = NULL;
    *plugin_ctx = NULL;
    if (signer_host_check(host) != SIGNER_OK)
        return SIGNER_ERR_ABI;
    if (host->log == NULL || host->random_bytes == NULL ||
        host->secure_alloc == NULL || host->secure_free == NULL ||
        host->wipe == NULL || host->json_type == NULL ||
        host->json_get == NULL || host->json_count == NULL ||
        host->json_at == NULL || host->json_string == NULL ||
        host->json_number == NULL || host->reply_string == NULL ||
        host->reply_error == NULL || host->key_create == NULL ||
        host->key_open == NULL)
        return SIGNER_ERR_ABI;

    c = calloc(1, sizeof *c);
    if (c == NULL)
        return SIGNER_ERR_NOMEM;
    c->host = host;
    /* settings.verify_signatures (default true): verify every signature
     * against the key's public key before it is returned (eth_sign.c). */
    c->verify = 1;
    if (host->conf_bool != NULL &&
        host->conf_bool(host->settings, "verify_signatures", &c->verify) < 0) {
        host->log(host, SIGNER_LOG_ERROR,
                  "settings.verify_signatures must be true or false");
        rc = SIGNER_ERR_CONFIG;
        goto cleanup;
    }
    if (!c->verify)
        host->log(host, SIGNER_LOG_WARN,
                  "verify_signatures = false: signatures are not verified "
                  "before they are returned");
    if ((rc = eth_rpc_init(c)) != SIGNER_OK)
        goto cleanup;
    rc = SIGNER_ERR_INTERNAL;
    c->secp = secp256k1_context_create(ETH_SECP_CONTEXT_FLAGS);
    if (c->secp == NULL) {
        rc = SIGNER_ERR_NOMEM;
        goto cleanup;
    }
    /* blinding for side-channel protection; done once, so the context is
     * read-only afterwards and shared by all worker threads */
    if (host->random_bytes(host, seed, sizeof seed) != SIGNER_OK ||
        !secp256k1_context_randomize(c->secp, seed)) {
        host->log(host, SIGNER_LOG_ERROR,
                  "cannot randomise the secp256k1 context");
        goto cleanup;
    }
    *out = &eth_plugin;
    *plugin_ctx = c;
    c = NULL;
    rc = SIGNER_OK;

cleanup:
    host->wipe(seed, sizeof seed);
    eth_cleanup(c);
    return rc;
}
