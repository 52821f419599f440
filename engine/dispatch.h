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

/* A request parsed by the dispatcher's front half (gateway role): the
 * operation as the client named it, its payload, the frame id token. */
typedef struct eng_parsed {
    char *opname;      /* malloc'd */
    cJSON *payload;    /* owned; free with eng_json_free (wipes) */
    char *id_raw;      /* frames: the "id" token as sent (malloc'd), else NULL */
    size_t op_index;   /* for metrics */
    int secret_op;     /* SIGNER_OP_SECRET: log errors by class only */
} eng_parsed;

/* Steps parse, route and find-op of eng_dispatch without running the
 * handler.  SIGNER_OK with out filled (the caller frees it), or an error
 * whose answer is in *resp (accounted and logged already). */
int eng_dispatch_parse(void *engine, const eng_request *req,
                       eng_parsed *out, char **resp, size_t *resp_len);

/* Metrics and the access log line of a request answered elsewhere. */
void eng_dispatch_account(void *engine, const eng_request *req,
                          size_t op_index, const char *opname, int status,
                          uint64_t t0, const char *msg);

#endif
