/* The gateway's enclave pool: persistent frame connections to one or more
 * enclave endpoints, on one event loop of its own.  Requests are pipelined
 * and matched by frame id, bounded by a per-request deadline, and fail
 * over to another enclave when theirs goes down -- but only when the
 * request cannot have executed, or is safe to run twice (docs/gateway.md).
 * The frame format is docs/frames.md. */
#ifndef ENG_GATEWAY_POOL_H
#define ENG_GATEWAY_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "gateway/frame_text.h"

typedef struct eng_gw_pool eng_gw_pool;

/* The outcome of one forward, on the thread of the set that sent it:
 * text[0..text_len) the answer frame as received, "id" included (valid
 * during the call only; NULL on failure); answer the same frame parsed,
 * without its "id" (owned by the callee), when the pool had to parse it
 * to find the id, else NULL (an enclave's answer starts {"id":N,: the
 * callee parses the text if it needs the tree); err a signer_err with
 * why naming the cause (never request content). */
typedef void (*eng_gw_done)(void *arg, cJSON *answer, const char *text,
                            size_t text_len, int err, const char *why);

typedef struct eng_gw_pool_conf {
    const char *const *endpoints; /* "vsock:CID:PORT", "HOST:PORT", "unix:P" */
    size_t n_endpoints;
    int deadline_ms;     /* per request, from submission to answer */
    int max_pipeline;    /* frames in flight per connection */
    int reconnect_ms;    /* between connection attempts to a down enclave */
    int health_ms;       /* idle connections are probed this often (0: off) */
    size_t max_frame;    /* largest answer accepted */
} eng_gw_pool_conf;

/* Creates the pool and starts its thread; connections are opened at once.
 * NULL with the cause in err. */
eng_gw_pool *eng_gw_pool_start(const eng_gw_pool_conf *conf, char *err,
                               size_t err_len);

/* Forwards frame (an object without "id"; the pool adds its own and takes
 * ownership; wiped and freed).  retryable: the operation changes nothing
 * when it runs twice, so it may be sent again to another enclave after a
 * connection loss.  done is called exactly once, on the pool thread. */
void eng_gw_pool_forward(eng_gw_pool *p, cJSON *frame, int retryable,
                         eng_gw_done done, void *arg);

/* eng_gw_pool_forward for a frame already printed: frame holds an object
 * text without "id" (taken: its buffer is wiped and freed); the pool adds
 * its id as the last member. */
void eng_gw_pool_forward_text(eng_gw_pool *p, eng_gw_text *frame,
                              int retryable, eng_gw_done done, void *arg);

/* Enclaves whose connection is up now. */
int eng_gw_pool_up(eng_gw_pool *p);

/* Prometheus lines about the pool appended to out (malloc'd growth). */
char *eng_gw_pool_metrics(eng_gw_pool *p, char *out);

/* Stops the thread; pending requests are answered 503 first. */
void eng_gw_pool_free(eng_gw_pool *p);

#endif
