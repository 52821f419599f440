/*
 * Transports of signerd: listeners (TCP, unix, vsock), the HTTP/1.1 server
 * and the length-prefixed frame protocol, all on libevent, plus the worker
 * pool that runs requests off the I/O thread.
 *
 * Threading (default): one I/O thread runs the event loop (accept, read,
 * parse, write).  Complete requests are queued to `workers` threads which
 * call callbacks.handle(); its answer is handed back to the I/O thread and
 * written.  A slow signature therefore never delays accepting or reading
 * other connections.  With io_loops = N the accepting thread hands each
 * connection to one of N event-loop threads that run handle() themselves:
 * faster on few cores, at the price that a request delays the other
 * connections of its loop (never accepting, never the other loops).
 */
#ifndef ENG_TRANSPORT_H
#define ENG_TRANSPORT_H

#include <stddef.h>

enum eng_proto {
    ENG_PROTO_HTTP = 1,  /* HTTP/1.1, keep-alive, see DESIGN.md section 3 */
    ENG_PROTO_FRAMES = 2 /* 4-byte big-endian length + JSON, section 4    */
};

/* A listen address:
 *   "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (TCP),
 *   "unix:/path/to/socket",
 *   "vsock:CID:PORT" with CID a number or "any" (VMADDR_CID_ANY). */
typedef struct eng_listen_spec {
    const char *address;
    int proto; /* enum eng_proto */
} eng_listen_spec;

typedef struct eng_limits {
    size_t max_body;        /* bytes of an HTTP body or a frame (413 above) */
    size_t max_header;      /* bytes of HTTP request line + headers (431)  */
    int max_connections;    /* open client connections; more are closed    */
    int max_pipeline;       /* frames in flight per connection             */
    int max_inflight;       /* requests queued or running; 503 above       */
    int read_timeout_ms;    /* a started request must complete within this */
    int write_timeout_ms;   /* a response must drain within this           */
    int idle_timeout_ms;    /* keep-alive connection with nothing pending  */
    int shutdown_timeout_ms;/* SIGTERM: how long in-flight work may finish */
} eng_limits;

/* One request handed to a worker. */
typedef struct eng_request {
    const char *body; /* the raw JSON bytes (not NUL-terminated) */
    size_t body_len;
    /* Set by HTTP convenience routes, else NULL:
     *   POST /key                         -> operation "generate_key"
     *   POST /key/import                  -> "set_key"
     *   POST /key/{id}/tx_signature       -> "sign_transaction", key_id id
     *   POST /key/{id}/userop_signature   -> "sign_userop", key_id id
     * With a route, body is the bare payload object. */
    const char *operation;
    const char *key_id;
    int framed;        /* 1 for frames: echo "id", no HTTP */
    const char *peer;  /* printable peer address, for logs */
} eng_request;

typedef struct eng_server_callbacks {
    void *ctx;
    /* Worker thread.  Returns the HTTP status; *resp is a malloc'd JSON body
     * of *resp_len bytes (always set, even on error).  Must be thread-safe. */
    int (*handle)(void *ctx, const eng_request *req, char **resp,
                  size_t *resp_len);
    /* I/O thread.  Prometheus text for GET /metrics (malloc'd), or NULL.
     * The transport appends its own signer_transport_* series to it. */
    char *(*metrics)(void *ctx);
    /* I/O thread.  Nonzero when ready to serve (GET /readyz). */
    int (*ready)(void *ctx);
    /* I/O thread, on SIGHUP.  May be NULL. */
    void (*reload)(void *ctx);
} eng_server_callbacks;

typedef struct eng_server_config {
    const eng_listen_spec *listen;
    size_t n_listen;
    eng_limits limits;
    int workers; /* worker threads; 0 = number of online CPUs */
    /* 0: one I/O thread plus the worker pool.  N > 0: the listening
     * thread only accepts, and hands each connection (round robin) to one
     * of N event loops, each on its own thread, which reads, handles and
     * answers its connections' requests itself (no hand-off between
     * threads; a request delays only the connections of its own loop). */
    int io_loops;
} eng_server_config;

typedef struct eng_server eng_server;

/* Fills limits with the defaults (documented in conf/standalone.conf). */
void eng_limits_default(eng_limits *limits);

/* Creates a server; copies cfg (strings included).  Limits that are zero
 * or negative take their default.  NULL on ENOMEM. */
eng_server *eng_server_new(const eng_server_config *cfg,
                           const eng_server_callbacks *cb);

/* Binds every listener.  On failure returns -1 and writes one line naming
 * the address and the reason into err.  Logs "listening on PROTO ADDR" with
 * the real port for each (port 0 picks a free one). */
int eng_server_start(eng_server *s, char *err, size_t err_len);

/* Actual bound port of listener i (TCP; also vsock when it fits an int),
 * or -1 (unix sockets, bad index). */
int eng_server_port(const eng_server *s, size_t i);

/* Runs the event loop and the workers until SIGTERM/SIGINT or
 * eng_server_stop(): then stops accepting, lets in-flight requests finish
 * (bounded by shutdown_timeout_ms), joins the workers and returns 0. */
int eng_server_run(eng_server *s);

/* Asks a running server to stop (thread-safe; call after
 * eng_server_start; a stop before eng_server_run makes it return at once). */
void eng_server_stop(eng_server *s);

/* Replaces the limits (I/O thread, e.g. from the reload callback). */
void eng_server_set_limits(eng_server *s, const eng_limits *limits);

void eng_server_free(eng_server *s);

/* ---- pure helpers, exposed for unit tests and fuzzing -------------------- */

/* Frame decoder: given buf[0..len), returns the total size of the first
 * complete frame (4 + payload; the payload starts at offset 4) and sets
 * *payload_len; returns 0 if more bytes are needed; -1 if the announced
 * length exceeds max_body.  *payload_len is set as soon as the 4-byte
 * header is there, even when 0 is returned. */
long eng_frame_parse(const unsigned char *buf, size_t len, size_t max_body,
                     size_t *payload_len);

/* Writes the 4-byte big-endian header for a payload of len bytes. */
void eng_frame_header(unsigned char out[4], size_t len);

/* Parsed HTTP request head. */
typedef struct eng_http_head {
    char method[16];
    char path[256];
    size_t content_length;
    int has_content_length;
    int keep_alive;  /* per HTTP version and Connection header */
    int chunked;     /* Transfer-Encoding: chunked was sent (refused) */
    int expect_continue;
} eng_http_head;

/* Parses an HTTP/1.x request head in buf[0..len).  Returns the number of
 * bytes of the head (through the blank line) when complete, 0 if more bytes
 * are needed, or a negative HTTP status (-400, -414, -431, -501, -505)
 * when the head is invalid or larger than max_header. */
long eng_http_parse_head(eng_http_head *head, const char *buf, size_t len,
                         size_t max_header);

#endif /* ENG_TRANSPORT_H */
