/* Deliberately broken plugins for the loader tests; one source, several
 * builds selected by -D:
 *   BAD_ABI      reports ABI major 99
 *   NO_SYMBOL    exports no signer_plugin_init
 *   DUP_OP       registers "echo", which the test plugin also registers
 *   WRONG_NAME   calls itself "someone_else"
 *   DUP_IN_TABLE lists "ping" twice */
#include <stdlib.h>
#include <signer/plugin.h>

static int ping(void *ctx, signer_call *call, signer_reply *reply,
                const signer_json *payload)
{
    (void)ctx; (void)call; (void)reply; (void)payload;
    return SIGNER_OK;
}


static void cleanup(void *ctx) { (void)ctx; }

static const signer_op ops[] = {
#if defined(DUP_OP)
    {"echo", ping, 0, NULL},
#elif defined(DUP_IN_TABLE)
    {"ping", ping, 0, NULL},
    {"ping", ping, 0, NULL},
#else
    {"ping", ping, 0, NULL},
#endif
    {NULL, NULL, 0, NULL}};

static const signer_plugin plugin = {
#if defined(BAD_ABI)
    99, 0, (uint32_t)sizeof(signer_plugin),
#else
    SIGNER_PLUGIN_HEADER,
#endif
#if defined(WRONG_NAME)
    "someone_else",
#else
    PLUGIN_NAME,
#endif
    "0", ops, cleanup};

#if defined(NO_SYMBOL)
int signer_plugin_start(const signer_host *host, const signer_plugin **out,
                        void **ctx);
int signer_plugin_start(const signer_host *host, const signer_plugin **out,
                        void **ctx)
#else
int signer_plugin_init(const signer_host *host, const signer_plugin **out,
                       void **ctx)
#endif
{
    (void)host;
    *out = &plugin;
    *ctx = NULL;
    return SIGNER_OK;
}
