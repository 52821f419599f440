/*
 * Private declarations shared by the transport sources (listen.c, http.c,
 * frame.c, server.c) and their unit tests.  Not for the rest of the engine:
 * everything public is in transport.h.
 */
#ifndef ENG_TRANSPORT_INTERNAL_H
#define ENG_TRANSPORT_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>

#include "transport.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* Log levels of tlog (same numbering as the engine logger). */
enum { TLOG_ERROR = 0, TLOG_WARN = 1, TLOG_INFO = 2, TLOG_DEBUG = 3 };

/* One JSON line on stderr: {"ts":..., "level":..., "msg":...}.  Stand-in
 * for eng_log until the transport is switched over.  Never pass request
 * bodies or secrets. */
void eng_transport_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define tlog eng_transport_log

/* ---- listen.c ------------------------------------------------------------ */

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

/* ---- http.c -------------------------------------------------------------- */

/* What an HTTP request resolves to. */
enum eng_route_kind {
    ENG_ROUTE_DISPATCH = 1, /* to a worker: POST / and the key routes */
    ENG_ROUTE_HEALTHZ,
    ENG_ROUTE_READYZ,
    ENG_ROUTE_METRICS
};

typedef struct eng_http_route {
    int kind;              /* enum eng_route_kind */
    const char *operation; /* static string or NULL (POST /) */
    char key_id[65];       /* "" unless a /key/{id}/... route */
    const char *allow;     /* methods allowed, for a 405's Allow header */
} eng_http_route;

/* Resolves method + path (query string ignored).  Returns 0 and fills out,
 * or 404 (unknown path or implausible key id) or 405 (known path, wrong
 * method; out->allow is then set). */
int eng_http_route_resolve(eng_http_route *out, const char *method,
                           const char *path);

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
