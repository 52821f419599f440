/* The enclave role's engine-level pieces: the attestation device (NSM or
 * emulated) opened at start, NSM randomness mixed into key generation, the
 * `attestation` frame operation, the device's warnings for the log and
 * /metrics, and the worker pool that runs requests off the event loops
 * (KMS calls block).  See docs/enclave.md. */
#ifndef ENG_ENCLAVE_H
#define ENG_ENCLAVE_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "attest/attest.h"
#include "transport/transport.h"

typedef struct eng_engine eng_engine;
typedef struct eng_config eng_config;

/* The frame operations answered by the engine itself in this role. */
#define ENG_ENCLAVE_OP_ATTESTATION "attestation"
#define ENG_ENCLAVE_OP_HEALTH "health"

/* 1 if cfg's role is "enclave". */
int eng_enclave_role(const eng_config *cfg);

/* In the enclave role: opens the attestation device the config names
 * (`attestation`, `emulated_nsm`), logs its warnings, and makes
 * host->random_bytes mix device randomness in.  Call before the sealer and
 * the plugins are opened.  Other roles: nothing.  0, or -1 with err. */
int eng_enclave_open(eng_engine *e, const eng_config *cfg, char *err,
                     size_t err_len);

/* Closes the device (NULL-safe; other roles: nothing). */
void eng_enclave_close(void);

/* The process's open attestation device, or NULL outside the enclave
 * role.  The aws-kms sealer takes its documents from it. */
eng_attest *eng_enclave_device(void);

/* The `attestation` operation: payload {nonce: base64, at most 512 bytes}
 * -> reply {document: base64}, a fresh document from the device.
 * SIGNER_OK or a signer_err written to reply. */
int eng_enclave_attestation_op(signer_reply *reply, const cJSON *payload);

/* The `health` probe of a gateway's pool (docs/frames.md): when req is a
 * frame {"id", "operation": "health", "payload"?: {}} (at most 256 bytes),
 * sets *resp to {"id", "enclave_status": 200, "enclave_result": {"status":
 * "ok", "attestation": device name, "attested": true for a real NSM}} and
 * returns 1; no plugin, key, access-log line or worker thread is involved.
 * Otherwise 0 (the request goes on to the dispatcher). */
int eng_enclave_health(const eng_request *req, char **resp,
                       size_t *resp_len);

/* 1 when req cannot block and may run on the event loop that read it
 * instead of a pool thread: the sealer is local (no KMS call can happen),
 * or the frame's sealed record is already in the key cache (opening it
 * needs no KMS Decrypt; a frame that does not parse is refused before
 * any).  0 otherwise, e.g. a key-creating frame with a remote sealer (the
 * pool's threads run it). */
int eng_enclave_inline_ok(const eng_request *req);

/* A frame's top-level "client" (docs/frames.md): the client a gateway
 * serves, which the per-(key_id, client) auth throttle then counts instead
 * of the gateway's address.  In the enclave role it is copied into
 * out[cap] with trust_client_field = true (the default), and ignored
 * (out = "") with false; other roles refuse it, as does a value that is
 * not 1..cap-1 printable characters without spaces: a 400 written to
 * reply. */
int eng_enclave_frame_client(signer_reply *reply, char *out, size_t cap,
                             const cJSON *v);

/* Prometheus lines about the device (malloc'd, "" outside the role):
 * signer_attestation_emulated, signer_attestation_debug_pcrs. */
char *eng_enclave_metrics(void);

/* ---- worker pool (enclave_pool.c) ---- */

typedef struct eng_pool eng_pool;

/* The synchronous handler a pool runs for each request. */
typedef int (*eng_pool_handler)(void *ctx, const eng_request *req,
                                char **resp, size_t *resp_len);

/* A pool of n (1..64) threads running handler(ctx, ...) for submitted
 * requests, completing each with eng_complete.  NULL on failure. */
eng_pool *eng_pool_new(int n, eng_pool_handler handler, void *ctx);

/* eng_server_callbacks.submit: queues req (the transport's max_inflight
 * bounds the queue). */
void eng_pool_submit(void *pool, const eng_request *req,
                     eng_completion *done);

/* Runs what is queued, joins the threads and frees (NULL is a no-op). */
void eng_pool_free(eng_pool *p);

#endif
