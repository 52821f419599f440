/*
 * Private declarations shared by the transport sources and their unit
 * tests.  Not for the rest of the engine: everything public is in
 * transport.h.
 *
 *   server.c  the server: start, run, stop, signals, limits, metrics
 *   loop.c    the event-loop type: one thread, its connections, the
 *             completion queue and hand-offs from the accepting thread
 *   conn.c    a connection: buffers, deadlines, states, closing, eviction
 *   listen.c  listen addresses, listeners, accepting and budgets
 *   http.c    the HTTP/1.1 protocol (parser, routes, answers)
 *   frame.c   the frames protocol (codec, pipelining)
 *
 * A connection owns a protocol: a table of operations (eng_proto_ops) its
 * loop calls when input arrives, when a request completes and when it
 * closes.  HTTP and frames are two such tables.  A byte relay (the proxy
 * role) is a third one that needs no requests: its on_read moves the
 * connection's input to an upstream bufferevent created on c->loop->base
 * (both sides then live on the loop's thread) and keeps it in c->pstate;
 * want_read applies back-pressure (the upstream's output under a
 * watermark); on_close frees the upstream; on_complete and
 * on_read_timeout stay NULL unless it submits requests.  The upstream's
 * callbacks call eng_conn_process(c) when it drains or answers, and
 * eng_conn_close(c) when it fails.  A new enum eng_proto value maps a
 * listener to the table in eng_lsn_open().
 */
#ifndef ENG_TRANSPORT_INTERNAL_H
#define ENG_TRANSPORT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "transport.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define ENG_OUT_HIGH (256u * 1024u)  /* stop taking requests above this output */
#define ENG_READ_SLACK (64u * 1024u) /* input allowed beyond one request */
#define ENG_MAX_PROTO_ERRORS 8       /* transport errors before a close */
#define ENG_DEFAULT_PER_PEER 256

/* Log levels of tlog (same numbering as the engine logger). */
enum { TLOG_ERROR = 0, TLOG_WARN = 1, TLOG_INFO = 2, TLOG_DEBUG = 3 };

/* One log line through the engine's logger.  Never pass request bodies or
 * secrets. */
void eng_transport_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define tlog eng_transport_log

typedef struct eng_loop eng_loop;
typedef struct eng_conn eng_conn;
typedef struct eng_lsn eng_lsn;

/* ---- protocols ------------------------------------------------------------ */

/* What a connection's loop asks of its protocol.  All on the loop thread. */
typedef struct eng_proto_ops {
    const char *name; /* "http", "frames": logs and metrics */
    /* Input was buffered or the state changed: take the requests (or bytes)
     * the connection's state allows. */
    void (*on_read)(eng_conn *c);
    /* A request of c completed: write its answer (the completion's answer
     * may be taken; the completion is freed by the caller). */
    void (*on_complete)(eng_conn *c, eng_completion *done);
    /* c is closing (its socket still open); releases protocol state.  May
     * be NULL. */
    void (*on_close)(eng_conn *c);
    /* 1 while c may take more input (HTTP: nothing in flight; frames:
     * fewer than max_pipeline). */
    int (*want_read)(const eng_conn *c);
    /* read_timeout_ms passed with a partial request: answer it (HTTP
     * 408) and return 1, or return 0 to close silently.  May be NULL. */
    int (*on_read_timeout)(eng_conn *c);
    /* Input high watermark: one full request plus some slack. */
    size_t (*read_high)(const eng_limits *l);
    /* 1: a new connection counts as a started request (HTTP), so a silent
     * socket is cut at read_timeout_ms. */
    int fresh_is_request;
    /* The connection was accepted (before any input).  May be NULL. */
    void (*on_open)(eng_conn *c);
    /* 1: the protocol ends the connection itself (a byte relay, holding
     * c->jobs while it runs): closing and draining neither stop its
     * on_read nor its reading; shutdown_timeout_ms still bounds it. */
    int own_lifetime;
} eng_proto_ops;

extern const eng_proto_ops eng_http_ops;
extern const eng_proto_ops eng_frames_ops;
extern const eng_proto_ops eng_relay_ops; /* relay.c, the proxy role */

/* ---- counters --------------------------------------------------------------- */

typedef struct eng_counters {
    _Atomic uint64_t accepted, rejected_conns, evicted, requests_http;
    _Atomic uint64_t requests_frames, busy_rejects, proto_errors;
    _Atomic uint64_t read_timeouts, write_timeouts, idle_timeouts;
    _Atomic uint64_t log_suppressed;
} eng_counters;

/* ---- completions (one per request) ------------------------------------------ */

struct eng_completion {
    eng_completion *next;
    eng_conn *c;         /* holds a reference until delivered */
    eng_loop *loop;
    eng_request req;     /* points into this struct */
    char *body;          /* wiped and freed by eng_complete */
    size_t body_len;
    char *auth;          /* Authorization header: wiped with the body */
    char key_id[65];
    char peer[80];
    char peer_id[80];         /* https: client certificate id */
    char rid[17];
    int head;            /* HTTP HEAD: the answer carries no body */
    int keep_alive;      /* HTTP */
    int status;
    char *resp;
    size_t resp_len;
    atomic_int completed;
};

/* ---- connections --------------------------------------------------------------- */

struct eng_conn {
    eng_loop *loop;
    eng_lsn *lsn;             /* listener (its budget), NULL if none */
    const eng_proto_ops *ops;
    eng_conn *prev, *next;    /* the loop's list */
    struct bufferevent *bev;  /* NULL once closed */
    struct event *timer;      /* the one deadline of the current state */
    uint64_t timer_at;        /* ms the timer is due, 0 if not pending */
    int reading;              /* reading enabled (by us) */
    struct event *rd;         /* direct: its own read event, else NULL */
    size_t read_high;         /* direct: input limit (bev watermark else) */
    int refs;                 /* list membership + one per request */
    int dead;                 /* closed: completions are dropped */
    int jobs;                 /* requests in flight */
    int closing;              /* take no more requests; close when flushed */
    int read_eof;             /* the peer shut its side down */
    int lingering;            /* SHUT_WR sent, discarding input */
    int fresh;                /* HTTP: no request completed yet */
    int idle_counted;         /* in its loop's idle list of its listener */
    eng_conn *idle_prev, *idle_next; /* that list, oldest first */
    int proto_errors;         /* transport-made error answers */
    size_t lingered;          /* bytes discarded while lingering */
    uint64_t req_start;       /* ms: partial request began, 0 if none */
    uint64_t write_start;     /* ms: output became non-empty, 0 if empty */
    uint64_t idle_since;      /* ms: nothing pending since, 0 if busy */
    uint64_t linger_start;    /* ms */
    int direct;               /* plain socket: answers written at once */
    int write_armed;          /* direct: EV_WRITE on until output drains */
    int reprocess;            /* direct: a flush unblocked pending input */
    struct {                  /* HTTP state */
        int continue_sent;    /* 100 Continue sent for this request */
    } http;
    void *pstate;             /* other protocols' state (on_close frees) */
    unsigned char peer_ip[16];/* TCP peer address bytes (per-peer cap) */
    int peer_ip_len;          /* 4, 16 or 0 (not TCP) */
    char peer[80];
    char peer_id[80];         /* https: client certificate id, "" if none */
};

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t eng_now_ms(void);

/* Serves an accepted socket on loop l (its thread).  evict: first close
 * the oldest idle connection of the same listener (the listener is at its
 * budget); without one the new connection is closed instead. */
void eng_conn_new(eng_loop *l, int fd, eng_lsn *lsn,
                  const struct sockaddr *addr, int alen, int evict);

/* A request of c was taken: leaves the idle state (and its listener's
 * idle list) at once. */
void eng_conn_busy(eng_conn *c);

/* Sets the input limit of c: reading pauses while this much is
 * buffered (0: no limit). */
void eng_conn_set_read_high(eng_conn *c, size_t high);

/* Reference counting (loop thread); the last unref frees. */
void eng_conn_ref(eng_conn *c);
void eng_conn_unref(eng_conn *c);

/* Closes the socket now (why: debug log or NULL); the struct lives on
 * while completions reference it. */
void eng_conn_close(eng_conn *c, const char *why);

/* Lets the protocol take requests, then updates reading and deadlines. */
void eng_conn_process(eng_conn *c);

/* Recomputes reading, deadlines and closes a finished connection. */
void eng_conn_after(eng_conn *c);

/* Queues bytes; takes ownership of data (malloc'd, freed when sent). */
void eng_conn_write(eng_conn *c, char *data, size_t len);

/* Counts a transport-made error answer; after ENG_MAX_PROTO_ERRORS the
 * connection is closed once its answers are flushed. */
void eng_conn_proto_error(eng_conn *c);

/* Wipes and drops everything buffered as input. */
void eng_conn_discard_input(eng_conn *c);

/* Closes the oldest idle connection of listener lsn on l; 1 if one was. */
int eng_conn_evict_idle(eng_loop *l, const eng_lsn *lsn);

/* Hands a request of c to the handler: body (malloc'd, NUL after len)
 * is taken on success.  Returns 0; -1 at max_inflight and -2 out of
 * memory, then body is untouched and the caller answers 503 and wipes it. */
int eng_conn_submit(eng_conn *c, char *body, size_t len,
                    const eng_route_match *route, int head, int keep_alive,
                    const char *rid);

/* ---- loops ------------------------------------------------------------------- */

/* A loop's idle connections of one listener. */
typedef struct eng_idle {
    eng_conn *head, *tail;
    _Atomic uint64_t oldest_ms;
} eng_idle;

/* A socket accepted by the server thread, waiting for its loop. */
typedef struct eng_handoff {
    struct eng_handoff *next;
    int fd;
    int evict;
    eng_lsn *lsn;
    struct sockaddr_storage addr;
    socklen_t alen;
} eng_handoff;

struct eng_loop {
    eng_server *srv;
    int index;
    struct event_base *base;
    struct event *ev_done;    /* completions queued */
    struct event *ev_adopt;   /* hand-offs or new limits queued */
    struct event *ev_stop;
    struct event *ev_grace;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;       /* dhead/dtail, ahead/atail, new_limits */
    eng_completion *dhead, *dtail;
    eng_handoff *ahead, *atail;
    eng_limits limits;        /* this loop's copy (its thread) */
    eng_limits new_limits;
    int limits_pending;
    eng_conn *conns;
    int n_conns;
    int jobs;                 /* this loop's requests not yet delivered */
    int draining;
    atomic_int stop_requested;
    /* Per listener: idle connections, oldest first, and the time the
     * oldest became idle (0: none), read by the accepting thread. */
    eng_idle *idle;
    eng_counters st;
};

/* Creates loop number index of s (its thread starts in eng_loop_start). */
eng_loop *eng_loop_new(eng_server *s, int index);
int eng_loop_start(eng_loop *l);
/* Asks the loop to drain and stop (thread-safe). */
void eng_loop_stop(eng_loop *l);
/* Joins its thread; then drops what was never delivered. */
void eng_loop_join(eng_loop *l);
void eng_loop_free(eng_loop *l);
/* Queues an accepted socket for l (server thread). */
int eng_loop_handoff(eng_loop *l, int fd, eng_lsn *lsn,
                     const struct sockaddr *addr, int alen, int evict);
/* Passes new limits to l (applied on its thread). */
void eng_loop_set_limits(eng_loop *l, const eng_limits *limits);
/* Ends the loop once draining and nothing is left. */
void eng_loop_maybe_finish(eng_loop *l);

/* ---- listeners (listen.c) ------------------------------------------------------ */

struct eng_lsn {
    eng_server *srv;
    int index;
    struct evconnlistener *l;
    struct event *retry;
    int proto;
    void *tls_ctx;            /* https: the server's SSL_CTX */
    const eng_proto_ops *ops;
    int port;
    char addr[160];           /* printable bound address */
    char *unix_path;          /* to unlink on shutdown, or NULL */
    atomic_int n_conns;       /* open connections (its budget) */
    uint64_t last_reject_log;
};

/* A parsed listen address. */
typedef struct eng_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family; /* AF_INET, AF_INET6, AF_UNIX or AF_VSOCK */
} eng_sockaddr;

/* Parses a listen address (see eng_listen_spec) into out.  Resolves host
 * names with getaddrinfo.  Returns 0, or -1 with a reason in err. */
int eng_listen_parse(const char *address, eng_sockaddr *out, char *err,
                     size_t err_len);

/* Creates a non-blocking, close-on-exec listening socket for address:
 * parses it, removes a stale unix socket file (refuses if another process
 * still listens on it), binds, chmods unix sockets 0660 and listens.
 * Returns the fd, or -1 with "ADDRESS: reason" in err. */
int eng_listen_open(const char *address, char *err, size_t err_len);

/* Writes the printable local address of a listening socket into out
 * ("127.0.0.1:8080", "[::1]:8080", "unix:/p", "vsock:4294967295:5000")
 * and returns its port (TCP and vsock) or -1. */
int eng_listen_describe(int fd, char *out, size_t out_len);

/* Printable form of a peer address (for logs); never fails. */
void eng_sockaddr_print(const struct sockaddr *sa, socklen_t len, char *out,
                        size_t out_len);

/* Opens listener i of s on the server's base; 0 or -1 with err. */
int eng_lsn_open(eng_server *s, eng_lsn *ls, const eng_listen_spec *sp,
                 char *err, size_t err_len);
/* Stops accepting and removes a unix socket file. */
void eng_lsn_close(eng_lsn *ls);

/* Per-peer accounting (TCP): 1 if one more connection from ip is allowed
 * on listener ls (and counts it), 0 if the cap is reached. */
int eng_peer_take(eng_server *s, const eng_lsn *ls, const unsigned char *ip,
                  int ip_len);
/* Address bytes of a TCP peer into ip: 4 or 16, or 0 (not TCP). */
int eng_peer_ip(const struct sockaddr *addr, unsigned char ip[16]);
/* Releases a connection counted by eng_peer_take. */
void eng_peer_release(eng_server *s, const eng_lsn *ls,
                      const unsigned char *ip, int ip_len);

/* ---- server (server.c) --------------------------------------------------------- */

const eng_server_callbacks *eng_server_cb(const eng_server *s);
struct event_base *eng_server_base(const eng_server *s);
void *eng_server_tls(const eng_server *s); /* SSL_CTX or NULL */
const eng_limits *eng_server_limits(const eng_server *s);
atomic_int *eng_server_inflight(eng_server *s);
eng_counters *eng_server_counters(eng_server *s);
int eng_server_draining(const eng_server *s);
int eng_server_n_loops(const eng_server *s);
int eng_server_n_listeners(const eng_server *s);
eng_loop *eng_server_loop(const eng_server *s, int i);
/* Chooses the loop for a new connection of ls; *evict set when ls is at
 * its budget and that loop holds an idle connection of it.  NULL: refuse. */
eng_loop *eng_server_pick_loop(eng_server *s, const eng_lsn *ls,
                               int *evict);

/* Called by each loop's thread as it ends. */
void eng_server_loop_exited(eng_server *s);

/* The callback's Prometheus text followed by the transport's own series;
 * malloc'd, NULL on ENOMEM. */
char *eng_server_metrics(eng_server *s, size_t *len_out);

/* Access-log line of a transport-made answer, rate-limited per server (a
 * token bucket: bursts of 20, 20 a second; the next line that passes says
 * how many were suppressed). */
void eng_server_log_refusal(eng_server *s, const char *rid, int status,
                            const char *peer, const char *msg);

/* ---- http.c -------------------------------------------------------------- */

/* Standard reason phrase of an HTTP status ("Unknown" if none). */
const char *eng_http_reason(int status);

/* Formats an error body {"enclave_status":S,"enclave_result":{"error":M}}
 * into a malloc'd string; *len_out gets its length.  NULL on ENOMEM. */
char *eng_http_error_body(int status, const char *msg, size_t *len_out);

/* Formats a response head into out (status line, Content-Type,
 * Content-Length, Connection, optional extra header lines each ending in
 * CRLF, blank line).  Returns its length, or 0 if out is too small. */
size_t eng_http_format_head(char *out, size_t out_len, int status,
                            const char *content_type, size_t body_len,
                            int keep_alive, const char *extra);

/* ---- frame.c ------------------------------------------------------------- */

/* Formats a transport error frame payload
 * {"id":ID,"enclave_status":S,"enclave_result":{"error":M}} (ID is the raw
 * JSON text of the request id, or "null") into a malloc'd string. */
char *eng_frame_error_body(const char *id_json, int status, const char *msg,
                           size_t *len_out);

/* Extracts the "id" member of a request frame's JSON as raw JSON text (a
 * number or a re-encoded string) into out; writes "null" when absent,
 * unparsable or of another type.  Used only for transport-made errors. */
void eng_frame_request_id(const char *json, size_t len, char *out,
                          size_t out_len);

#endif /* ENG_TRANSPORT_INTERNAL_H */
