/* The dispatcher: JSON request -> operation handler -> JSON answer, plus the
 * engine's lifecycle (open sealer, keystore, plugins) and its metrics. */
#ifndef ENG_DISPATCH_H
#define ENG_DISPATCH_H

#include "host.h"
#include "transport/transport.h"

/* eng_engine_open/close moved to startup.h. */
#include "startup.h"

/* Zeroed metrics counters for a new engine (freed with free()). */
struct eng_metrics *eng_metrics_new(void);

/* eng_server_callbacks.handle: thread-safe.  Returns the HTTP status and a
 * malloc'd JSON body {"enclave_status", "enclave_result"} (and "id" for
 * frames). */
int eng_dispatch(void *engine, const eng_request *req, char **resp,
                 size_t *resp_len);

/* eng_server_callbacks.metrics: Prometheus text, malloc'd. */
char *eng_metrics_text(void *engine);

/* Builds an error answer body (used by transports and the dispatcher). */
char *eng_error_body(int status, const char *message, const char *id_json,
                     size_t *len);

/* 1 if buf[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int eng_utf8_valid(const unsigned char *buf, size_t len);

#endif
