/* The dispatcher: a request body -> the strict JSON front end -> the
 * operation's handler -> the JSON answer (HTTP status only here, at the
 * edge).  The engine's lifecycle is in startup.h. */
#ifndef ENG_DISPATCH_H
#define ENG_DISPATCH_H

#include "host.h"
#include "transport/transport.h"

#include "startup.h"

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
