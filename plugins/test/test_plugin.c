/*
 * The template chain plugin "test" (docs/plugins.md, "adding a chain in
 * three steps"): what a chain plugin is made of, with the simplest
 * possible "chain" -- a 32-byte symmetric key whose "signature" over a
 * transaction string is HMAC-SHA256 (OpenSSL), and whose address is the
 * first 20 bytes of SHA-256 of the key, in hex.  Used by the engine's tests
 * beside eth; copy it to start a new chain.
 *
 * Operations (each with its routes and aliases in the op table):
 *   generate_key      {secret}                      -> {key_id, address}
 *                     POST /test/key
 *   sign_transaction  {key_id, secret, transaction} -> {signature, address}
 *                     POST /test/key/{key_id}/signature,
 *                     alias test-vendor_sign_transaction
 *   echo              {message} -> {echo}: settings.greeting + message
 *   fail              {code}    -> the error code asked for
 * Keys are created and opened only through the host's key services
 * (key_create, key_open): sealing, storage, secrets and throttling are the
 * engine's.  Settings: greeting (string), fail_init (true: init fails).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <signer/plugin.h>

#define TEST_CHAIN "test"
#define TEST_KEY_LEN 32

struct test_ctx {
    const signer_host *host;
    char greeting[64];
};

/* Lowercase hex of in[0..len) into out (2 * len + 1 bytes). */
static void test_hex(char *out, const unsigned char *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* The address of a key: "0x" + hex of SHA-256(key)[0..20). */
static int test_address(char out[43], const unsigned char *key, size_t len)
{
    unsigned char d[32];
    unsigned int dl = 0;

    if (EVP_Digest(key, len, d, &dl, EVP_sha256(), NULL) != 1)
        return SIGNER_ERR_INTERNAL;
    out[0] = '0';
    out[1] = 'x';
    test_hex(out + 2, d, 20);
    return SIGNER_OK;
}

/* generate_key: a fresh key from the host's entropy, sealed and stored by
 * the host's key_create (which also checks payload.secret). */
static int test_generate_key(void *pctx, signer_call *call,
                             signer_reply *reply, const signer_json *payload)
{
    struct test_ctx *ctx = pctx;
    const signer_host *h = ctx->host;
    unsigned char *key = h->secure_alloc(h, TEST_KEY_LEN);
    char addr[43];
    int rc;

    if (key == NULL)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    rc = h->random_bytes(h, key, TEST_KEY_LEN);
    if (rc == SIGNER_OK)
        rc = test_address(addr, key, TEST_KEY_LEN);
    if (rc != SIGNER_OK)
        rc = h->reply_error(reply, rc, "cannot draw a key");
    else
        rc = h->key_create(call, reply, TEST_CHAIN, addr, key, TEST_KEY_LEN,
                           payload);
    h->secure_free(h, key, TEST_KEY_LEN);
    return rc;
}

/* sign_transaction: opens the key (payload.key_id authenticated by
 * payload.secret or HMAC) and answers HMAC-SHA256(key, transaction). */
static int test_sign_transaction(void *pctx, signer_call *call,
                                 signer_reply *reply,
                                 const signer_json *payload)
{
    struct test_ctx *ctx = pctx;
    const signer_host *h = ctx->host;
    unsigned char *key = NULL, mac[32];
    unsigned int ml = 0;
    size_t key_len = 0, tl = 0;
    char addr[SIGNER_MAX_ADDRESS], hex[65];
    const char *tx = h->json_string(h->json_get(payload, "transaction"), &tl);
    int rc;

    if (tx == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "transaction: required string");
    if ((key = h->secure_alloc(h, SIGNER_MAX_KEY)) == NULL)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    rc = h->key_open(call, reply, key, SIGNER_MAX_KEY, &key_len, addr,
                     sizeof addr, TEST_CHAIN, payload);
    if (rc != SIGNER_OK)
        goto cleanup;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)tx, tl,
             mac, &ml) == NULL) {
        rc = h->reply_error(reply, SIGNER_ERR_INTERNAL, "HMAC failed");
        goto cleanup;
    }
    test_hex(hex, mac, sizeof mac);
    rc = h->reply_string(reply, "signature", hex);
    if (rc == SIGNER_OK)
        rc = h->reply_string(reply, "address", addr);
cleanup:
    h->secure_free(h, key, SIGNER_MAX_KEY);
    return rc;
}

/* echo: settings.greeting followed by payload.message. */
static int test_echo(void *pctx, signer_call *call, signer_reply *reply,
                     const signer_json *payload)
{
    struct test_ctx *ctx = pctx;
    const signer_host *h = ctx->host;
    const char *msg;
    size_t len;
    char *out;
    int rc;
    (void)call;
    msg = h->json_string(h->json_get(payload, "message"), &len);
    if (msg == NULL)
        return h->reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                              "message: required string");
    out = malloc(strlen(ctx->greeting) + len + 1);
    if (out == NULL)
        return h->reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    strcpy(out, ctx->greeting);
    strcat(out, msg);
    rc = h->reply_string(reply, "echo", out);
    free(out);
    return rc;
}

/* fail: answers the error code in payload.code (for the engine's tests). */
static int test_fail(void *pctx, signer_call *call, signer_reply *reply,
                     const signer_json *payload)
{
    struct test_ctx *ctx = pctx;
    double code = 0;
    (void)call;
    if (!ctx->host->json_number(ctx->host->json_get(payload, "code"), &code))
        code = SIGNER_ERR_INTERNAL;
    return ctx->host->reply_error(reply, (int)code, "failed as asked (%d)",
                                  (int)code);
}

/* The op table: verbs, handlers, REST routes and other names. */
static const signer_route test_generate_routes[] = {
    {"POST", "/test/key", NULL}, {NULL, NULL, NULL}};
static const signer_route test_sign_routes[] = {
    {"POST", "/test/key/{key_id}/signature", NULL}, {NULL, NULL, NULL}};
static const char *const test_sign_aliases[] = {
    "test-vendor_sign_transaction", NULL};

static const signer_op test_ops[] = {
    {.name = "generate_key", .handler = test_generate_key,
     .flags = SIGNER_OP_SECRET, .routes = test_generate_routes},
    {.name = "sign_transaction", .handler = test_sign_transaction,
     .flags = SIGNER_OP_SECRET, .routes = test_sign_routes,
     .aliases = test_sign_aliases},
    {.name = "echo", .handler = test_echo},
    {.name = "fail", .handler = test_fail},
    {.name = NULL}};

static void test_cleanup(void *pctx) { free(pctx); }

static const signer_plugin test_plugin = {
    SIGNER_PLUGIN_HEADER, TEST_CHAIN, "1.1", test_ops, test_cleanup};

/* The one exported symbol: checks the host, reads settings, returns the
 * table and a context. */
SIGNER_EXPORT int signer_plugin_init(const signer_host *host,
                                     const signer_plugin **out,
                                     void **plugin_ctx)
{
    struct test_ctx *ctx;
    const char *greeting = "";
    int fail = 0;
    if (signer_host_check(host) != SIGNER_OK)
        return SIGNER_ERR_ABI;
    if (host->conf_bool(host->settings, "fail_init", &fail) < 0 ||
        host->conf_string(host->settings, "greeting", &greeting) < 0)
        return SIGNER_ERR_CONFIG;
    if (fail)
        return SIGNER_ERR_CONFIG;
    if (strlen(greeting) >= sizeof ctx->greeting)
        return SIGNER_ERR_CONFIG;
    if ((ctx = calloc(1, sizeof *ctx)) == NULL)
        return SIGNER_ERR_NOMEM;
    ctx->host = host;
    strcpy(ctx->greeting, greeting);
    *out = &test_plugin;
    *plugin_ctx = ctx;
    return SIGNER_OK;
}
