/* The engine's side of raw HTTP ops (SIGNER_OP_RAW, ABI 1.2: the eth
 * plugin's JSON-RPC endpoint, docs/api.md): the handler's payload made of
 * the body text and the credentials of the Authorization header, and the
 * host's outbound HTTP POST (libcurl) that a plugin uses to reach a
 * downstream node.  The JSON-RPC protocol itself is the plugin's. */
#ifndef ENG_RPC_H
#define ENG_RPC_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "transport/transport.h"

/* Adds "key_id" and "secret" to payload from an Authorization value
 * "Basic base64(key_id:secret)" or "Bearer key_id:secret" (scheme in any
 * case).  Returns 1 when both were added, 0 when the value is absent or
 * malformed (nothing added), SIGNER_ERR_NOMEM.  Decoded bytes are wiped. */
int eng_rpc_credentials(cJSON *payload, const char *authorization);

/* The payload of a raw op: {"body": req's body text, key_id, secret}.
 * SIGNER_OK, or an error written to reply (413 above max_body, 400 for a
 * body holding a NUL byte, out of memory). */
int eng_rpc_payload(cJSON **payload, signer_reply *reply,
                    const eng_request *req, size_t max_body);

/* Writes "scheme://host[:port]" of url into out (no user info, path or
 * query, which may hold API keys), for messages. */
void eng_rpc_peer_name(char *out, size_t cap, const char *url);

/* host->http_post (include/signer/plugin.h). */
int eng_rpc_http_post(char **resp, size_t *resp_len, long *status, char *err,
                      size_t errcap, const char *url, const char *body,
                      size_t len, long timeout_ms, size_t max_resp);

#endif
