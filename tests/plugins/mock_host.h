/*
 * A mock signer_host for plugin unit tests (after collectd's plugin_mock.c):
 * run a plugin's handlers without the daemon.
 *
 * It is built on the engine's real services: the JSON accessors, replies,
 * key_create / key_open (engine/keysvc.c: secret rules, HMAC per
 * docs/hmac.md, throttling per key_id and client), sealing with the local
 * sealer (AES-256-GCM under a master key in a temporary directory) and an
 * in-memory SQLite keystore.  What is mock:
 *   - random_bytes: queued fixed bytes first (mock_host_queue_random), then
 *     either OpenSSL RAND_bytes (default) or a deterministic SHA-256 stream
 *     (mock_host_set_seed); can be made to fail;
 *   - secure_alloc via calloc, counting live allocations; secure_free wipes;
 *   - logging into a buffer (mock_host_log_text);
 *   - config: the plugin's settings group is a cJSON object
 *     (mock_host_set_settings), read by conf_int / conf_bool / conf_string
 *     with dotted paths;
 *   - hooks: a key_create that fails once, a count of key_open calls,
 *     throttling off unless mock_host_set_throttle.
 *
 * Everything is guarded by one mutex, so handlers may be called from
 * several threads at once.
 *
 * Typical use:
 *     mock_host *m = mock_host_new();
 *     const signer_plugin *p; void *ctx;
 *     signer_plugin_init(mock_host_get(m), &p, &ctx);
 *     char *res; int status;
 *     mock_call(m, p, ctx, "generate_key", "{\"secret\":\"...\"}", &res,
 *               &status);
 *     ... assert on status / res (a JSON object text) ...
 *     free(res);
 *     p->cleanup(ctx);
 *     mock_host_free(m);
 */
#ifndef MOCK_HOST_H
#define MOCK_HOST_H

#include <stddef.h>

#include <signer/plugin.h>

typedef struct mock_host mock_host;

/* A new mock host with an empty keystore; NULL when out of memory. */
mock_host *mock_host_new(void);
/* Frees the host and everything it holds (wiping stored keys). */
void mock_host_free(mock_host *m);
/* The signer_host table to hand to signer_plugin_init (borrowed). */
const signer_host *mock_host_get(mock_host *m);

/*
 * Runs operation op of plugin p (ctx from its init) on payload_json (NULL
 * means "{}").  On return *result_json (malloc'd, free with free()) holds
 * the result object, or {"error": message} on failure, and *http_status
 * the HTTP status (400 for an unparsable payload, 404 for an unknown op).
 * Returns the handler's signer_err.  A handler that returns SIGNER_OK after
 * calling reply_error, or an error without a message, is reported as 500
 * with an error naming the contract violation.
 */
int mock_call(mock_host *m, const signer_plugin *p, void *ctx, const char *op,
              const char *payload_json, char **result_json, int *http_status);

/* A call handle for invoking call-taking services (seal, unseal,
 * keystore_put/get, key_create, key_open) directly from test code; valid
 * until mock_host_free. */
signer_call *mock_host_call(mock_host *m);

/* Appends bytes that the next random_bytes calls return first. */
void mock_host_queue_random(mock_host *m, const unsigned char *bytes,
                            size_t len);
/* Switches random_bytes (after the queue) to a deterministic stream
 * SHA-256(seed || counter); seed NULL returns to RAND_bytes. */
void mock_host_set_seed(mock_host *m, const char *seed);
/* When on, random_bytes fails with SIGNER_ERR_INTERNAL. */
void mock_host_set_random_fail(mock_host *m, int on);

/* Throttle: after max_failures wrong secrets for one key_id, key_open
 * answers 429 (0, the default, disables throttling). */
void mock_host_set_throttle(mock_host *m, int max_failures);
/* Makes the next key_create return err (SIGNER_OK to clear). */
void mock_host_fail_next_key_create(mock_host *m, int err);

/* Inserts a key record directly; returns SIGNER_OK or an error. */
int mock_host_key_add(mock_host *m, const char *key_id, const char *chain,
                      const char *address, const unsigned char *key,
                      size_t key_len, const char *secret);
/* Looks a record up: 1 found (outputs filled, each may be NULL), 0 not. */
int mock_host_key_find(mock_host *m, const char *key_id, char *chain,
                       size_t chain_cap, char *address, size_t address_cap,
                       unsigned char *key, size_t key_cap, size_t *key_len);
/* Number of stored keys. */
size_t mock_host_key_count(mock_host *m);

/* Number of secure_alloc blocks not yet secure_free'd. */
long mock_host_secure_live(mock_host *m);
/* Number of key_open calls so far (whatever their outcome). */
long mock_host_key_open_calls(mock_host *m);

/* Log lines so far ("LEVEL message\n" each), borrowed; and clearing it. */
const char *mock_host_log_text(mock_host *m);
void mock_host_log_clear(mock_host *m);

/* Sets the plugin's settings group from JSON text; 0 ok, -1 bad JSON.
 * Call before signer_plugin_init. */
int mock_host_set_settings(mock_host *m, const char *json);

/* HMAC helper for tests: writes the 64-hex HMAC that key_open expects for
 * operation op on key_id, covering the object covered_json (the fields the
 * op declares, e.g. {"transaction_payload": {...}}) at timestamp, into
 * out[65].  1 on success, 0 on failure. */
int mock_host_hmac(char out[65], const char *secret, const char *op,
                   const char *key_id, const char *covered_json,
                   long long timestamp);

#endif /* MOCK_HOST_H */
