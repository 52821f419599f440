/* Deliberately broken plugins for the loader tests; one source, several
 * builds selected by -D:
 *   BAD_ABI      reports ABI major 99
 *   NO_SYMBOL    exports no signer_plugin_init
 *   DUP_OP       registers "echo", which the test plugin also registers
 *                (a second chain's verb: loads as dup_op.echo)
 *   DUP_ALIAS    declares an alias the test plugin already declares
 *   ABI_1_0      a plugin built for ABI 1.0: its op entries have only
 *                name, handler and flags (ops "ping" and "pong")
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

#if !defined(ABI_1_0)
#if defined(DUP_ALIAS)
static const char *const aliases[] = {"test-vendor_sign_transaction", NULL};
#define ALIASES aliases
#else
#define ALIASES NULL
#endif

static const signer_op ops[] = {
#if defined(DUP_OP)
    {.name = "echo", .handler = ping},
#elif defined(DUP_IN_TABLE)
    {.name = "ping", .handler = ping},
    {.name = "ping", .handler = ping},
#else
    {.name = "ping", .handler = ping, .aliases = ALIASES},
#endif
    {.name = NULL}};
#endif

#if defined(ABI_1_0)
/* The ABI 1.0 layout of signer_op. */
struct op_1_0 {
    const char *name;
    signer_op_handler handler;
    unsigned flags;
};
static const struct op_1_0 ops_1_0[] = {
    {"ping", ping, 0}, {"pong", ping, 0}, {NULL, NULL, 0}};
#define OPS ((const signer_op *)(const void *)ops_1_0)
#else
#define OPS ops
#endif

static const signer_plugin plugin = {
#if defined(BAD_ABI)
    99, 0, (uint32_t)sizeof(signer_plugin),
#elif defined(ABI_1_0)
    SIGNER_ABI_MAJOR, 0, (uint32_t)sizeof(signer_plugin),
#else
    SIGNER_PLUGIN_HEADER,
#endif
#if defined(WRONG_NAME)
    "someone_else",
#else
    PLUGIN_NAME,
#endif
    "0", OPS, cleanup};

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
