/* One HTTP/1.1 request and its response over an already connected socket,
 * through TLS (1.2 or later, SNI, certificate and hostname verification
 * against a CA bundle file) or, for tests, in plain text.  Everything runs
 * under one deadline: the socket is made non-blocking and every wait is a
 * poll(2) bounded by what is left, so a silent peer cannot hang a caller.
 *
 * Why OpenSSL directly rather than libcurl: the enclave has no DNS and no
 * TCP, only a vsock stream the caller has already connected to the proxy.
 * libcurl can adopt such a socket (CURLOPT_OPENSOCKETFUNCTION plus
 * CURLOPT_SOCKOPTFUNCTION returning CURL_SOCKOPT_ALREADY_CONNECTED) but it
 * still wants a resolvable URL and brings its connection cache, resolver
 * threads and protocol surface into the enclave image.  The exchange KMS
 * needs (one POST with Content-Length, one response with Content-Length) is
 * small; OpenSSL is already linked for the rest of the signer; with it we
 * own each step: SNI, SSL_set1_host, minimum TLS version, a bounded
 * response and one poll-based deadline.  See docs/aws.md. */
#ifndef ENG_AWS_HTTPS_H
#define ENG_AWS_HTTPS_H

#include <stddef.h>
#include <stdint.h>

#include "aws/sigv4.h"

#define ENG_HTTP_HEAD_MAX 16384
#define ENG_HTTP_BODY_MAX_DEFAULT 65536

/* Where and how to talk. */
typedef struct eng_https_cfg {
    const char *host;    /* Host header, SNI and the name the cert must hold */
    const char *ca_file; /* PEM bundle of trusted roots (TLS only) */
    int plain;           /* 1: no TLS (tests against local stand-ins) */
    size_t max_body;     /* 0: ENG_HTTP_BODY_MAX_DEFAULT */
} eng_https_cfg;

typedef struct eng_http_req {
    const char *method; /* "POST" */
    const char *path;   /* "/" */
    const eng_sigv4_header *headers; /* extra headers; no Host/Content-Length */
    size_t n_headers;
    const unsigned char *body;
    size_t body_len;
} eng_http_req;

typedef struct eng_http_resp {
    int status;               /* HTTP status, 0 when none was read */
    char error_type[128];     /* x-amzn-ErrorType, "" if absent */
    int retry_after;          /* Retry-After seconds, -1 if absent */
    unsigned char *body;      /* malloc'd, NUL-terminated; eng_http_resp_free */
    size_t body_len;
    char err[192];            /* why the exchange failed (no secrets) */
} eng_http_resp;

/* Sends req over the connected socket fd and reads the response into resp
 * before deadline_us (eng_now_us() clock).  The fd is left open and
 * non-blocking; the caller closes it.  SIGNER_OK with resp->status set
 * (any status); SIGNER_ERR_UNAVAILABLE for I/O errors, a closed connection
 * or the deadline (retryable); SIGNER_ERR_INTERNAL when TLS fails (an
 * untrusted or misnamed certificate, a protocol error: not retryable);
 * SIGNER_ERR_TOO_LARGE for an oversized response; resp->err says which. */
int eng_https_roundtrip(eng_http_resp *resp, int fd, const eng_https_cfg *cfg,
                        const eng_http_req *req, uint64_t deadline_us)
    __attribute__((warn_unused_result));
/* Wipes and frees the body. */
void eng_http_resp_free(eng_http_resp *resp);

/* Connects a TCP socket to ip:port (numeric IPv4/IPv6) before deadline_us.
 * 0 and *fd, or a negative signer_err (SIGNER_ERR_UNAVAILABLE). */
int eng_aws_connect_tcp(int *fd, const char *ip, int port,
                        uint64_t deadline_us);
/* Connects an AF_VSOCK stream to cid:port (the enclave's path to the
 * parent's proxy, cid 3) before deadline_us.  Same returns. */
int eng_aws_connect_vsock(int *fd, unsigned cid, unsigned port,
                          uint64_t deadline_us);

#endif
