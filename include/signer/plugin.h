/*
 * enclave-signer plugin ABI.
 *
 * This is the only header a chain plugin includes.  A plugin is a shared
 * object that exports exactly one symbol, signer_plugin_init().  The engine
 * (signerd) hands it a signer_host: a versioned table of services (logging,
 * entropy, secure memory, JSON accessors on opaque request/reply handles,
 * sealing, keystore, the plugin's own config group).  The plugin answers with
 * a signer_plugin: its name and a NULL-terminated table of operations.
 *
 * Compatibility rules (SQLite's sqlite3_api_routines, plus a size field):
 *   - both structs start with abi_major, abi_minor, struct_size;
 *   - a different abi_major is refused;
 *   - new members are only ever appended, and bump abi_minor;
 *   - a reader checks struct_size before touching a member that was added
 *     after the version it was built against (SIGNER_HAS_MEMBER).
 *
 * Argument order follows libsecp256k1: context first, then outputs, then
 * inputs; every length follows its buffer.  Functions return an enum
 * signer_err (0 ok, negative failure) unless documented otherwise.
 */
#ifndef SIGNER_PLUGIN_H
#define SIGNER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIGNER_ABI_MAJOR 1
#define SIGNER_ABI_MINOR 3

#if defined(__GNUC__)
#define SIGNER_WARN_UNUSED __attribute__((warn_unused_result))
#define SIGNER_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SIGNER_EXPORT __attribute__((visibility("default")))
#else
#define SIGNER_WARN_UNUSED
#define SIGNER_PRINTF(f, a)
#define SIGNER_EXPORT
#endif

/* True when struct *s (with its struct_size field) is large enough to hold
 * member m.  Use before reading any member added after ABI 1.0. */
#define SIGNER_HAS_MEMBER(s, type, m)                                         \
    ((size_t)(s)->struct_size >= offsetof(type, m) + sizeof(((type *)0)->m))

/* Error codes.  Every failure a handler returns maps to one HTTP status. */
enum signer_err {
    SIGNER_OK = 0,
    SIGNER_ERR_BAD_REQUEST = -1, /* 400: malformed or invalid input        */
    SIGNER_ERR_FORBIDDEN = -2,   /* 403: wrong secret / HMAC               */
    SIGNER_ERR_NOT_FOUND = -3,   /* 404: unknown key_id / operation route  */
    SIGNER_ERR_CONFLICT = -4,    /* 409: key_id already exists             */
    SIGNER_ERR_TOO_LARGE = -5,   /* 413: body or field over its limit      */
    SIGNER_ERR_THROTTLED = -6,   /* 429: too many failed attempts          */
    SIGNER_ERR_INTERNAL = -7,    /* 500: bug, I/O or crypto failure        */
    SIGNER_ERR_UNAVAILABLE = -8, /* 503: overloaded or shutting down       */
    SIGNER_ERR_NOMEM = -9,       /* 500: out of memory                     */
    SIGNER_ERR_ABI = -10,        /* loader: incompatible plugin            */
    SIGNER_ERR_CONFIG = -11,     /* loader: bad plugin settings            */
    SIGNER_ERR_UNAUTHENTICATED = -12 /* 401 (ABI 1.2): no valid credentials */
};

/* HTTP status for an error code (200 for SIGNER_OK). */
static inline int signer_err_http_status(int err)
{
    switch (err) {
    case SIGNER_OK: return 200;
    case SIGNER_ERR_BAD_REQUEST: return 400;
    case SIGNER_ERR_FORBIDDEN: return 403;
    case SIGNER_ERR_NOT_FOUND: return 404;
    case SIGNER_ERR_CONFLICT: return 409;
    case SIGNER_ERR_TOO_LARGE: return 413;
    case SIGNER_ERR_THROTTLED: return 429;
    case SIGNER_ERR_UNAVAILABLE: return 503;
    case SIGNER_ERR_UNAUTHENTICATED: return 401;
    default: return 500;
    }
}

/* Fixed description of an error code; never NULL. */
static inline const char *signer_err_str(int err)
{
    switch (err) {
    case SIGNER_OK: return "ok";
    case SIGNER_ERR_BAD_REQUEST: return "bad request";
    case SIGNER_ERR_FORBIDDEN: return "forbidden";
    case SIGNER_ERR_NOT_FOUND: return "not found";
    case SIGNER_ERR_CONFLICT: return "conflict";
    case SIGNER_ERR_TOO_LARGE: return "too large";
    case SIGNER_ERR_THROTTLED: return "too many attempts";
    case SIGNER_ERR_INTERNAL: return "internal error";
    case SIGNER_ERR_UNAVAILABLE: return "unavailable";
    case SIGNER_ERR_NOMEM: return "out of memory";
    case SIGNER_ERR_ABI: return "incompatible plugin ABI";
    case SIGNER_ERR_CONFIG: return "bad plugin configuration";
    case SIGNER_ERR_UNAUTHENTICATED: return "unauthenticated";
    default: return "unknown error";
    }
}

/* Opaque handles owned by the host. */
typedef struct signer_json signer_json;   /* borrowed view of a JSON value   */
typedef struct signer_reply signer_reply; /* result object being built       */
typedef struct signer_call signer_call;   /* one request in flight           */
typedef struct signer_conf signer_conf;   /* a group of the config file      */

enum signer_json_type {
    SIGNER_JSON_INVALID = 0, /* NULL handle */
    SIGNER_JSON_NULL,
    SIGNER_JSON_FALSE,
    SIGNER_JSON_TRUE,
    SIGNER_JSON_NUMBER,
    SIGNER_JSON_STRING,
    SIGNER_JSON_ARRAY,
    SIGNER_JSON_OBJECT
};

enum signer_log_level {
    SIGNER_LOG_ERROR = 0,
    SIGNER_LOG_WARN = 1,
    SIGNER_LOG_INFO = 2,
    SIGNER_LOG_DEBUG = 3
};

/* What a sealed key is bound to.  All three strings are NUL-terminated. */
typedef struct signer_key_meta {
    const char *key_id;  /* UUIDv4, 36 characters  */
    const char *chain;   /* plugin name, e.g. "eth" */
    const char *address; /* chain's address text    */
} signer_key_meta;

#define SIGNER_KEY_ID_LEN 36      /* characters, without the NUL */
#define SIGNER_MAX_ADDRESS 128    /* bytes, including the NUL     */
#define SIGNER_MAX_KEY 64         /* bytes of private key material */
#define SIGNER_MAX_KEY_AUX 64     /* bytes of a key's auxiliary slot (1.3) */

/*
 * An operation handler.  payload is the request's "payload" object (never
 * NULL; an absent payload is an empty object).  On success the handler adds
 * its result fields to reply and returns SIGNER_OK.  On failure it returns a
 * negative signer_err, normally through host->reply_error() so that the
 * message names the field or cause.  Handlers run on worker threads and may
 * run concurrently; plugin_ctx must be safe for that (read-only after init).
 */
typedef int (*signer_op_handler)(void *plugin_ctx, signer_call *call,
                                 signer_reply *reply,
                                 const signer_json *payload);

/* Op flags. */
/* The payload carries key material or secrets: the engine never logs the
 * operation's error messages (they may quote fields), only their class. */
#define SIGNER_OP_SECRET 0x1u
/* ABI 1.2: a raw HTTP op (a JSON-RPC endpoint, docs/api.md): the body is
 * not parsed; the handler's payload is {"body": the request body as text,
 * "key_id", "secret": from the request's Authorization header ("Basic
 * base64(key_id:secret)" or "Bearer key_id:secret"), absent when it has
 * none or a malformed one}; it answers through host->reply_raw.  Reached
 * by its routes only. */
#define SIGNER_OP_RAW 0x2u

/* ABI 1.1: a REST route to an operation (docs/plugins.md). */
typedef struct signer_route {
    const char *method;   /* "POST"; NULL ends a table */
    const char *path;     /* "/key/import", "/key/{key_id}/tx_signature":
                           * {key_id} matches one segment of 1..64
                           * characters [0-9A-Fa-f-], handed to the op as
                           * payload.key_id */
    const char *if_field; /* NULL, or the route applies only when the JSON
                           * body is an object with this member (tried
                           * before the routes without one) */
} signer_route;

typedef struct signer_op {
    const char *name; /* plain verb, e.g. "sign_transaction"; NULL ends */
    signer_op_handler handler;
    unsigned flags;
    /* ABI 1.1 (read only when the plugin's abi_minor >= 1): */
    const signer_route *routes;  /* REST routes, {NULL} ends; may be NULL */
    const char *const *aliases;  /* other names of the op ("vendor_verb"),
                                  * NULL ends; may be NULL */
    /* The payload fields an HMAC covers (NULL-terminated), e.g.
     * {"transaction_payload", NULL}; in HMAC mode any other field (besides
     * key_id, hmac, timestamp) is refused.  NULL: every field but hmac,
     * timestamp and secret.  The MAC layout is in docs/hmac.md. */
    const char *const *hmac_fields;
} signer_op;

/* Bytes of one signer_op entry as laid out by a plugin of ABI 1.minor;
 * the engine walks a plugin's op table with this stride.  1.2 added a flag
 * (SIGNER_OP_RAW), no member: 1.1 and 1.2 entries have the same size. */
static inline size_t signer_op_stride(unsigned abi_minor)
{
    return abi_minor == 0 ? 3 * sizeof(void *) : sizeof(signer_op);
}

typedef struct signer_plugin {
    uint16_t abi_major;   /* SIGNER_ABI_MAJOR */
    uint16_t abi_minor;   /* SIGNER_ABI_MINOR */
    uint32_t struct_size; /* sizeof(signer_plugin) */
    const char *name;     /* chain name, also the sealed-key chain tag */
    const char *version;
    const signer_op *ops; /* table ending with {NULL, NULL, 0} */
    /* Called once at unload with the ctx init returned; may be NULL. */
    void (*cleanup)(void *plugin_ctx);
} signer_plugin;

typedef struct signer_host signer_host;

struct signer_host {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size; /* sizeof(signer_host) as the engine knows it */

    /* This plugin's own "settings" group from the config (may be empty). */
    const signer_conf *settings;

    /* ---- logging ------------------------------------------------------ */
    /* Logs one line tagged with the plugin's name.  Never pass secrets. */
    void (*log)(const signer_host *host, int level, const char *fmt, ...)
        SIGNER_PRINTF(3, 4);

    /* ---- entropy ------------------------------------------------------ */
    /* Fills out[0..len) from the system CSPRNG (getrandom / NSM). */
    int (*random_bytes)(const signer_host *host, unsigned char *out,
                        size_t len);

    /* ---- secure memory ------------------------------------------------- */
    /* Zeroed memory, locked (mlock) where possible; NULL on failure. */
    void *(*secure_alloc)(const signer_host *host, size_t len);
    /* Wipes len bytes and frees memory from secure_alloc; NULL is a no-op. */
    void (*secure_free)(const signer_host *host, void *p, size_t len);
    /* Wipes memory in a way the compiler cannot elide. */
    void (*wipe)(void *p, size_t len);
    /* 1 if equal, 0 if not; time depends only on len. */
    int (*ct_equal)(const void *a, const void *b, size_t len);

    /* ---- config --------------------------------------------------------- */
    /* Each returns 1 if found (and sets *out), 0 if absent, SIGNER_ERR_CONFIG
     * if present with another type.  path is relative to the group. */
    int (*conf_int)(const signer_conf *group, const char *path,
                    long long *out);
    int (*conf_bool)(const signer_conf *group, const char *path, int *out);
    int (*conf_string)(const signer_conf *group, const char *path,
                       const char **out);

    /* ---- JSON accessors (read-only; handles borrowed from the request) -- */
    int (*json_type)(const signer_json *v);
    /* Member of an object, or NULL if v is not an object or has no key. */
    const signer_json *(*json_get)(const signer_json *v, const char *key);
    /* Number of members/elements of an object or array, else 0. */
    size_t (*json_count)(const signer_json *v);
    /* i-th element of an array or member of an object (then *key is set
     * when key is not NULL); NULL when out of range.  Walking i = 0, 1, 2,
     * ... is O(1) per step, so a loop over all elements is linear. */
    const signer_json *(*json_at)(const signer_json *v, size_t i,
                                  const char **key);
    /* String value and its byte length, or NULL if not a string.  The JSON
     * parser rejects strings with embedded NUL, so strlen(s) == *len. */
    const char *(*json_string)(const signer_json *v, size_t *len);
    /* 1 and *out set if v is a number, else 0. */
    int (*json_number)(const signer_json *v, double *out);

    /* ---- reply ---------------------------------------------------------- */
    /* Adds a string field to the result object. */
    int (*reply_string)(signer_reply *reply, const char *key,
                        const char *value) SIGNER_WARN_UNUSED;
    /* Sets the error message of the reply and returns err, so a handler can
     * write `return host->reply_error(reply, SIGNER_ERR_BAD_REQUEST, ...)`.
     * The message must name the field or cause and never contain secrets. */
    int (*reply_error)(signer_reply *reply, int err, const char *fmt, ...)
        SIGNER_PRINTF(3, 4);

    /* ---- sealing and keystore (low level) ------------------------------ */
    /* Seals plain[0..plain_len) bound to meta.  *blob is allocated by the
     * host; release it with host->free. */
    int (*seal)(signer_call *call, unsigned char **blob, size_t *blob_len,
                const signer_key_meta *meta, const unsigned char *plain,
                size_t plain_len) SIGNER_WARN_UNUSED;
    /* Opens a blob sealed for exactly meta into plain (capacity plain_cap,
     * secure memory recommended).  Any tampering or a different meta fails
     * with SIGNER_ERR_FORBIDDEN. */
    int (*unseal)(signer_call *call, unsigned char *plain, size_t plain_cap,
                  size_t *plain_len, const signer_key_meta *meta,
                  const unsigned char *blob, size_t blob_len)
        SIGNER_WARN_UNUSED;
    /* Stores a sealed blob durably (it survives kill -9 once this returns).
     * SIGNER_ERR_CONFLICT if key_id exists. */
    int (*keystore_put)(signer_call *call, const signer_key_meta *meta,
                        const unsigned char *blob, size_t blob_len)
        SIGNER_WARN_UNUSED;
    /* Fetches a record: chain and address copied into the given buffers,
     * *blob allocated (free with host->free).  SIGNER_ERR_NOT_FOUND if
     * absent. */
    int (*keystore_get)(signer_call *call, char *chain, size_t chain_cap,
                        char *address, size_t address_cap,
                        unsigned char **blob, size_t *blob_len,
                        const char *key_id) SIGNER_WARN_UNUSED;
    void (*free)(void *p);

    /* ---- keys (high level: what chain plugins normally use) ------------ */
    /*
     * key_create: validates payload.secret (20..128 printable ASCII), draws
     * a fresh key_id, seals {key, secret} bound to (key_id, chain, address)
     * and stores it durably.  Adds "key_id" and "address" to reply.
     * Errors are written to reply (400 naming "secret", 500 ...).
     */
    int (*key_create)(signer_call *call, signer_reply *reply,
                      const char *chain, const char *address,
                      const unsigned char *key, size_t key_len,
                      const signer_json *payload) SIGNER_WARN_UNUSED;
    /*
     * key_open: reads payload.key_id and authenticates the caller with
     * payload.secret (constant-time compare) or payload.hmac + timestamp
     * (HMAC-SHA256 keyed by the secret over the operation, the key_id, the
     * RFC 8785 canonical JSON of the fields the op's hmac_fields declare
     * and the timestamp -- docs/hmac.md -- within the configured window,
     * never twice).  On success copies the private
     * key into key (capacity key_cap, use secure memory) and the address
     * into address.  404 unknown key_id, 403 wrong secret, 429 throttled,
     * 400 malformed; the message is in reply.  On failure key is wiped.
     */
    int (*key_open)(signer_call *call, signer_reply *reply,
                    unsigned char *key, size_t key_cap, size_t *key_len,
                    char *address, size_t address_cap, const char *chain,
                    const signer_json *payload) SIGNER_WARN_UNUSED;

    /* ---- ABI 1.2: raw answers, JSON text, outbound HTTP ---------------- */
    /* Parses text[0..len) (strict JSON, any value) into *out: a tree owned
     * by call, wiped and freed when the call ends.  SIGNER_ERR_BAD_REQUEST
     * with the byte offset and cause in err; SIGNER_ERR_NOMEM. */
    int (*json_parse)(signer_call *call, const signer_json **out, char *err,
                      size_t errcap, const char *text, size_t len)
        SIGNER_WARN_UNUSED;
    /* Compact JSON text of v (NUL-terminated, *len set when len is not
     * NULL; release with host->free), or NULL. */
    char *(*json_print)(const signer_json *v, size_t *len);
    /* Makes json[0..len) the whole answer body, instead of the result
     * object, sent with the HTTP status of err (SIGNER_OK: 200).  Returns
     * err.  For SIGNER_OP_RAW ops. */
    int (*reply_raw)(signer_reply *reply, int err, const char *json,
                     size_t len);
    /* POSTs body[0..len) as application/json to an http:// or https:// url
     * (no redirects) and waits at most timeout_ms for the whole exchange.
     * SIGNER_OK with *resp (NUL-terminated, release with host->free),
     * *resp_len and the HTTP *status; SIGNER_ERR_UNAVAILABLE when the peer
     * cannot be reached, fails or does not answer in time, and
     * SIGNER_ERR_TOO_LARGE above max_resp bytes, with the cause in err
     * (naming the peer by scheme, host and port only). */
    int (*http_post)(signer_call *call, char **resp, size_t *resp_len,
                     long *status, char *err, size_t errcap, const char *url,
                     const char *body, size_t len, long timeout_ms,
                     size_t max_resp) SIGNER_WARN_UNUSED;

    /* ---- ABI 1.3: the key's auxiliary slot (check SIGNER_HAS_MEMBER) --- */
    /*
     * Data a plugin derives from a key (e.g. its parsed public key), kept
     * with the unsealed key in the engine's key cache so it is computed
     * once per unseal instead of on every request; wiped with the cached
     * key (eviction, expiry, shutdown).  Both act on the key this call's
     * last successful key_open returned.  Nothing in the slot is trusted
     * more than the plugin trusts its own memory: derive it from the key.
     * key_aux_get: 1 and aux[0..*aux_len) copied when the slot holds data;
     * 0 when it is empty, the key is not cached, or aux_cap is too small.
     * key_aux_put: stores aux[0..aux_len), aux_len <= SIGNER_MAX_KEY_AUX;
     * SIGNER_OK, or SIGNER_ERR_NOT_FOUND when the key is not cached (the
     * plugin then derives the data again next time).
     */
    int (*key_aux_get)(signer_call *call, unsigned char *aux, size_t aux_cap,
                       size_t *aux_len);
    int (*key_aux_put)(signer_call *call, const unsigned char *aux,
                       size_t aux_len);
};

/* Refuses a host or plugin table of another major version or too small to
 * hold the ABI 1.0 members.  Returns SIGNER_OK or SIGNER_ERR_ABI. */
static inline int signer_host_check(const signer_host *h)
{
    if (h == NULL || h->abi_major != SIGNER_ABI_MAJOR)
        return SIGNER_ERR_ABI;
    if (!SIGNER_HAS_MEMBER(h, signer_host, key_open))
        return SIGNER_ERR_ABI;
    return SIGNER_OK;
}

static inline int signer_plugin_check(const signer_plugin *p)
{
    if (p == NULL || p->abi_major != SIGNER_ABI_MAJOR)
        return SIGNER_ERR_ABI;
    if (!SIGNER_HAS_MEMBER(p, signer_plugin, cleanup))
        return SIGNER_ERR_ABI;
    return SIGNER_OK;
}

/* Initialiser for a plugin's signer_plugin header fields. */
#define SIGNER_PLUGIN_HEADER                                                  \
    SIGNER_ABI_MAJOR, SIGNER_ABI_MINOR, (uint32_t)sizeof(signer_plugin)

/*
 * The one symbol a plugin exports.  Validate the host with
 * signer_host_check(), read settings, allocate the plugin context, and set
 * *out (static storage) and *plugin_ctx.  Return SIGNER_OK, or a negative
 * signer_err after releasing everything (the engine then dlcloses).
 */
typedef int (*signer_plugin_init_fn)(const signer_host *host,
                                     const signer_plugin **out,
                                     void **plugin_ctx);

SIGNER_EXPORT int signer_plugin_init(const signer_host *host,
                                     const signer_plugin **out,
                                     void **plugin_ctx);

#ifdef __cplusplus
}
#endif

#endif /* SIGNER_PLUGIN_H */
