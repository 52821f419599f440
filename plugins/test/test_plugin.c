/*
 * The minimal test plugin (in the spirit of OpenSSL's p_test.c): one
 * operation, "echo", that returns payload.message, and "fail" that answers
 * the error code in payload.code.  Settings: `greeting` (string) is
 * prepended to the echo; `fail_init = true` makes init fail, so the loader's
 * all-or-nothing path can be tested.  Used only by tests.
 */
#include <stdlib.h>
#include <string.h>

#include <signer/plugin.h>

struct test_ctx {
    const signer_host *host;
    char greeting[64];
};

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

static const signer_op test_ops[] = {
    {"echo", test_echo, 0, NULL},
    {"fail", test_fail, 0, NULL},
    {NULL, NULL, 0, NULL}};

static void test_cleanup(void *pctx) { free(pctx); }

static const signer_plugin test_plugin = {
    SIGNER_PLUGIN_HEADER, "test", "1.0", test_ops, test_cleanup};

int signer_plugin_init(const signer_host *host, const signer_plugin **out,
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
