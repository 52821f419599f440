/*
 * Transports of signerd: listeners (TCP, unix, vsock), the HTTP/1.1 server
 * and the length-prefixed frame protocol, on libevent.  The wire formats
 * are described in docs/api.md (HTTP) and docs/frames.md (frames).
 *
 * Threading: N event loops (io_loops; default one per online CPU), each on
 * its own thread with its own connections.  The server thread only accepts
 * and hands each connection to a loop (round robin).  A request is passed
 * to the handler on its connection's loop with a completion handle; the
 * answer is written when eng_complete() is called -- at once (the
 * synchronous adapter around callbacks.handle) or later from any thread (an
 * asynchronous handler: a forward to an enclave, an outbound call).
 *
 * The transport knows no operation names, JSON shapes or secrets: HTTP
 * routes are resolved by callbacks.route, answers are opaque bytes.
 */
#ifndef ENG_TRANSPORT_H
#define ENG_TRANSPORT_H

#include <stddef.h>

enum eng_proto {
    ENG_PROTO_HTTP = 1,  /* HTTP/1.1, keep-alive, see docs/api.md        */
    ENG_PROTO_FRAMES = 2, /* 4-byte big-endian length + JSON, docs/frames.md */
    ENG_PROTO_HTTPS = 3, /* HTTP/1.1 over TLS, optional mTLS (tls.c)     */
    ENG_PROTO_RELAY = 4, /* bytes to an upstream, docs/proxy.md          */
    ENG_PROTO_HEALTH = 5 /* plain HTTP answering only GET /healthz,
                          * /readyz and /metrics: the probe port        */
};

/* A listen address:
 *   "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (TCP),
 *   "unix:/path/to/socket",
 *   "vsock:CID:PORT" with CID a number or "any" (VMADDR_CID_ANY). */
typedef struct eng_listen_spec {
    const char *address;
    int proto; /* enum eng_proto */
    const char *upstream; /* ENG_PROTO_RELAY: "HOST:PORT" (the proxy role) */
} eng_listen_spec;

typedef struct eng_limits {
    size_t max_body;        /* bytes of an HTTP body or a frame (413 above) */
    size_t max_header;      /* bytes of HTTP request line + headers (431)  */
    int max_connections;    /* open connections per listener; at the limit
                             * the oldest idle one is closed for a new one,
                             * and without an idle one the new is closed */
    int max_pipeline;       /* frames in flight per connection             */
    int max_inflight;       /* requests in flight, all loops; 503 above    */
    int read_timeout_ms;    /* a started request must complete within this */
    int write_timeout_ms;   /* a response must drain within this           */
    int idle_timeout_ms;    /* keep-alive connection with nothing pending  */
    int shutdown_timeout_ms;/* SIGTERM: how long in-flight work may finish */
    int max_per_peer;       /* open TCP connections from one IP address,
                             * per listener (0: the default, 256)          */
} eng_limits;

/* One request handed to the handler.  Valid until eng_complete(). */
typedef struct eng_request {
    const char *body; /* the raw JSON bytes (NUL-terminated after body_len) */
    size_t body_len;
    /* Set by callbacks.route for HTTP routes, else NULL: the operation the
     * route names (then body is the bare payload object) and the key id
     * taken from the path. */
    const char *operation;
    const char *key_id;
    int framed;              /* 1 for frames: echo "id", no HTTP          */
    const char *peer;        /* printable peer address, for logs          */
    const char *request_id;  /* 16 hex digits; HTTP answers carry it as
                              * X-Request-Id; use it in the access log    */
    const char *authorization; /* HTTP Authorization header value, or NULL;
                              * a secret: wiped with the body            */
    const char *peer_id;     /* https with a client certificate:
                              * "tls:sha256:HEX" of it, else NULL        */
} eng_request;

/* What callbacks.route resolved an HTTP request to. */
typedef struct eng_route_match {
    const char *operation; /* registered operation name, or NULL for the
                            * envelope route (the body names it); must stay
                            * valid while the server runs */
    char key_id[65];       /* "" unless the path carries one */
    const char *allow;     /* 405: the methods allowed on the path */
    const char *authorization; /* set by the transport after routing: the
                            * Authorization header, or NULL */
} eng_route_match;

/* The completion handle of one request (opaque). */
typedef struct eng_completion eng_completion;

typedef struct eng_server_callbacks {
    void *ctx;
    /* Synchronous handler, on the connection's loop thread.  Returns the
     * HTTP status; *resp is a malloc'd body of *resp_len bytes (always
     * set, even on error).  Must be thread-safe (loops run in parallel).
     * Used through an adapter when submit is NULL. */
    int (*handle)(void *ctx, const eng_request *req, char **resp,
                  size_t *resp_len);
    /* Loop thread.  Prometheus text for GET /metrics (malloc'd), or NULL.
     * The transport appends its own signer_transport_* series to it. */
    char *(*metrics)(void *ctx);
    /* Loop thread.  Nonzero when ready to serve (GET /readyz). */
    int (*ready)(void *ctx);
    /* Server thread, on SIGHUP.  May be NULL. */
    void (*reload)(void *ctx);
    /* Asynchronous handler (optional; replaces handle): called on the
     * loop thread; must call eng_complete(done, ...) exactly once, from
     * any thread, before or after returning.  req stays valid until then. */
    void (*submit)(void *ctx, const eng_request *req, eng_completion *done);
    /* Loop thread: resolves an HTTP request other than the transport's own
     * GET /healthz, /readyz, /metrics.  path has its query removed and
     * repeated slashes merged; body is the complete request body.  Returns
     * 0 (out filled), 404, or 405 (out->allow set).  NULL: only POST / is
     * served, as the envelope route. */
    int (*route)(void *ctx, const char *method, const char *path,
                 const char *body, size_t body_len, eng_route_match *out);
    /* Loop thread: the body of an error the transport answers itself (404,
     * 405, 408, 411, 413, 431, 503 ...), so the API's error shape is the
     * engine's: malloc'd, *len set; id_json is a frame's raw "id" (or
     * "null"), NULL for HTTP.  NULL callback or answer: the transport's
     * own {"enclave_status":S,"enclave_result":{"error":M}}. */
    char *(*error_body)(void *ctx, int status, const char *msg,
                        const char *id_json, size_t *len);
} eng_server_callbacks;

typedef struct eng_server_config {
    const eng_listen_spec *listen;
    size_t n_listen;
    eng_limits limits;
    /* Event loops, each on its own thread, that read, handle and answer
     * their connections' requests; 0 = one per online CPU. */
    int io_loops;
    /* Deprecated (the worker pool is gone): used as io_loops when io_loops
     * is 0, so old configs keep their thread count. */
    int workers;
    /* SSL_CTX of the https listeners (eng_tls_ctx_new), NULL if none. */
    void *tls_ctx;
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

/* Number of event loops the server runs (after eng_server_start). */
int eng_server_loops(const eng_server *s);

/* Runs the loops until SIGTERM/SIGINT or eng_server_stop(): then stops
 * accepting, lets in-flight requests finish (bounded by
 * shutdown_timeout_ms), joins the loops and returns 0. */
int eng_server_run(eng_server *s);

/* Asks a running server to stop (thread-safe; call after
 * eng_server_start; a stop before eng_server_run makes it return at once). */
void eng_server_stop(eng_server *s);

/* Replaces the limits (server thread, e.g. from the reload callback). */
void eng_server_set_limits(eng_server *s, const eng_limits *limits);

void eng_server_free(eng_server *s);

/* On an event loop's thread: its event base (so a handler can keep its own
 * connections on the loop that serves the request); NULL on other threads. */
/* A new event base whose epoll changes are applied once per iteration: a
 * read paused and resumed, or write interest added and dropped, within one
 * iteration costs no epoll_ctl.  NULL on ENOMEM. */
struct event_base *eng_event_base_new(void);

struct event_base *eng_loop_current_base(void);
/* On an event loop's thread: fn(arg) runs on that thread after its event
 * loop ends and before its base is freed (to free what lives on the base).
 * 0, or -1 off a loop thread or without memory. */
int eng_loop_at_exit(void (*fn)(void *arg), void *arg);

/* Completes a request: status is the HTTP status (frames ignore it), body
 * a malloc'd answer of len bytes whose ownership passes to the transport
 * (NULL: a 500 error answer is made).  Thread-safe; call exactly once per
 * handle.  The request (and its body, which is wiped) must not be used
 * afterwards.  The answer is written on the connection's own loop, or
 * dropped if the client has gone.  Every request must be completed before
 * eng_server_free (a loop waits for its requests up to
 * shutdown_timeout_ms when the server stops). */
void eng_complete(eng_completion *done, int status, char *body, size_t len);

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
    int expect_continue; /* HTTP/1.1 "Expect: 100-continue" (not 1.0) */
    int minor;       /* HTTP/1.x minor version */
    char authorization[1024]; /* Authorization value ("" if absent): a
                               * secret, wiped by the caller */
} eng_http_head;

/* Parses an HTTP/1.x request head in buf[0..len).  Returns the number of
 * bytes of the head (through the blank line) when complete, 0 if more bytes
 * are needed, or a negative HTTP status (-400, -414, -431, -501, -505)
 * when the head is invalid or larger than max_header. */
long eng_http_parse_head(eng_http_head *head, const char *buf, size_t len,
                         size_t max_header);

/* Normalises a request target in place: drops the query and fragment and
 * merges repeated slashes ("//key//x" -> "/key/x"), as nginx does. */
void eng_http_normalise_path(char *path);

#endif /* ENG_TRANSPORT_H */
