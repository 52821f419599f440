/* The dispatcher: a request body -> the strict JSON front end -> the
 * operation's handler -> the JSON answer (HTTP status only here, at the
 * edge).  Also, until start-up moves to its own unit, the engine's
 * lifecycle. */
#ifndef ENG_DISPATCH_H
#define ENG_DISPATCH_H

#include "host.h"
#include "transport/transport.h"

/* Opens everything cfg names: data dir (0700), sealer, keystore, plugins,
 * aliases.  Returns 0, or -1 with one line naming the cause in err. */
int eng_engine_open(eng_engine *e, eng_config *cfg, char *err,
                    size_t err_len);
void eng_engine_close(eng_engine *e);

/* eng_server_callbacks.handle: thread-safe.  Returns the HTTP status and a
 * malloc'd JSON body {"enclave_status", "enclave_result"} (and, for
 * frames, "id" echoed exactly as sent). */
int eng_dispatch(void *engine, const eng_request *req, char **resp,
                 size_t *resp_len);

/* Builds an error answer body; id_json, when not NULL, is a frame's id
 * token exactly as received (already validated JSON).  malloc'd. */
char *eng_error_body(int status, const char *message, const char *id_json,
                     size_t *len);

#endif
