/* The gateway role (docs/gateway.md): the same HTTP API as a standalone
 * signer, served by forwarding every operation to an enclave over frames.
 * The gateway keeps only sealed keys: it attaches a key's sealed record to
 * each key-using request, stores the sealed record a key-creating answer
 * carries before it answers, and strips it from what the client sees.
 *
 * Plugins are loaded in this role only for their op tables (names,
 * aliases, routes, flags), so the API is exactly the standalone one; their
 * handlers are never called here.  A raw op's route (SIGNER_OP_RAW: /rpc)
 * is forwarded as the frame {operation, payload {body, key_id?, secret?}}
 * and answered with the enclave's raw text as the whole body.  Each frame
 * names the client ("client") for the enclave's wrong-secret backoff
 * (docs/frames.md). */
#ifndef ENG_GATEWAY_H
#define ENG_GATEWAY_H

#include <stddef.h>

#include "host.h"
#include "transport/transport.h"

typedef struct eng_gateway eng_gateway;

/* Reads the config's gateway group (enclaves, deadline_ms, ...) and starts
 * the enclave pool.  NULL with one line naming the cause in err. */
eng_gateway *eng_gateway_open(eng_engine *e, char *err, size_t err_len);

/* eng_server_callbacks.submit: ctx is the eng_gateway. */
void eng_gateway_submit(void *ctx, const eng_request *req,
                        eng_completion *done);

/* GET /readyz: the keystore works and some enclave is connected. */
int eng_gateway_ready(eng_gateway *g);

/* GET /metrics: the engine's series plus the gateway's (malloc'd). */
char *eng_gateway_metrics(eng_gateway *g);

/* Stops the pool (answering what is pending) and frees g. */
void eng_gateway_close(eng_gateway *g);

#endif
