/* HTTP/1.1 over TLS (or plain) on a connected socket, one deadline (see
 * https.h and docs/aws.md). */
#include "config.h"
#include "aws/https.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signer/plugin.h>

#include "aws/buf.h"
#include "util.h"

typedef struct conn {
    int fd;
    SSL *ssl; /* NULL in plain mode */
    uint64_t deadline;
    eng_http_resp *resp;
} conn;

/* Records why the exchange failed and returns err. */
static int fail(conn *c, int err, const char *what)
{
    if (c->resp->err[0] == '\0')
        snprintf(c->resp->err, sizeof c->resp->err, "%s", what);
    return err;
}

/* Waits for events on fd until the deadline: 0 ready, -1 timed out or
 * failed. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        uint64_t now = eng_now_us();
        int ms, n;

        if (now >= deadline)
            return -1;
        ms = (int)((deadline - now + 999) / 1000);
        n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

/* Handles an SSL result that is not progress: waits when OpenSSL wants
 * I/O (0), or classifies the failure (negative signer_err). */
static int ssl_wait(conn *c, int ret, const char *op)
{
    int e = SSL_get_error(c->ssl, ret);
    long v;
    char msg[160];

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                    c->deadline) != 0)
            return fail(c, SIGNER_ERR_UNAVAILABLE, "deadline passed");
        return 0;
    }
    if ((v = SSL_get_verify_result(c->ssl)) != X509_V_OK) {
        snprintf(msg, sizeof msg, "TLS certificate refused: %s",
                 X509_verify_cert_error_string(v));
        return fail(c, SIGNER_ERR_INTERNAL, msg);
    }
    if (e == SSL_ERROR_SSL) {
        snprintf(msg, sizeof msg, "TLS %s failed: %s", op,
                 ERR_reason_error_string(ERR_peek_last_error())
                     ? ERR_reason_error_string(ERR_peek_last_error())
                     : "protocol error");
        return fail(c, SIGNER_ERR_INTERNAL, msg);
    }
    snprintf(msg, sizeof msg, "connection closed during TLS %s", op);
    return fail(c, SIGNER_ERR_UNAVAILABLE, msg);
}

/* A TLS 1.2+ client context trusting only cfg->ca_file. */
static SSL_CTX *tls_ctx(conn *c, const eng_https_cfg *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        fail(c, SIGNER_ERR_NOMEM, "TLS context: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file == NULL ||
        SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
        fail(c, SIGNER_ERR_INTERNAL, "cannot load the CA bundle");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* TLS handshake with SNI and hostname verification for cfg->host. */
static int tls_open(conn *c, const eng_https_cfg *cfg)
{
    SSL_CTX *ctx = tls_ctx(c, cfg);
    int ret, rc;

    if (ctx == NULL)
        return SIGNER_ERR_INTERNAL;
    c->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, cfg->host) != 1 ||
        SSL_set1_host(c->ssl, cfg->host) != 1)
        return fail(c, SIGNER_ERR_INTERNAL, "TLS setup failed");
    SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    while ((ret = SSL_connect(c->ssl)) != 1)
        if ((rc = ssl_wait(c, ret, "handshake")) != 0)
            return rc;
    return SIGNER_OK;
}

/* Writes all of buf before the deadline. */
static int io_write(conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (c->ssl != NULL) {
            size_t w = 0;
            int ret = SSL_write_ex(c->ssl, buf, len, &w), rc;
            if (ret != 1 && (rc = ssl_wait(c, ret, "write")) != 0)
                return rc;
            n = ret == 1 ? (ssize_t)w : 0;
        } else {
            n = send(c->fd, buf, len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                          errno == EINTR)) {
                if (wait_fd(c->fd, POLLOUT, c->deadline) != 0)
                    return fail(c, SIGNER_ERR_UNAVAILABLE,
                                "deadline passed");
                n = 0;
            } else if (n < 0) {
                return fail(c, SIGNER_ERR_UNAVAILABLE, "send failed");
            }
        }
        buf += n;
        len -= (size_t)n;
    }
    return SIGNER_OK;
}

/* Reads what is available (waiting until the deadline): bytes read, 0 at
 * end of stream, or a negative signer_err. */
static ssize_t io_read(conn *c, char *buf, size_t cap)
{
    for (;;) {
        ssize_t n;
        if (c->ssl != NULL) {
            size_t r = 0;
            int ret = SSL_read_ex(c->ssl, buf, cap, &r), rc;
            if (ret == 1)
                return (ssize_t)r;
            if (SSL_get_error(c->ssl, ret) == SSL_ERROR_ZERO_RETURN)
                return 0;
            if ((rc = ssl_wait(c, ret, "read")) != 0)
                return rc;
            continue;
        }
        n = recv(c->fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return fail(c, SIGNER_ERR_UNAVAILABLE, "recv failed");
        if (wait_fd(c->fd, POLLIN, c->deadline) != 0)
            return fail(c, SIGNER_ERR_UNAVAILABLE, "deadline passed");
    }
}

/* Request head: request line, Host, Content-Length, the caller's headers. */
static void build_head(eng_aws_buf *b, const eng_https_cfg *cfg,
                       const eng_http_req *req)
{
    size_t i;

    eng_aws_buf_fmt(b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n", req->method,
                    req->path ? req->path : "/", cfg->host, req->body_len);
    for (i = 0; i < req->n_headers; i++)
        eng_aws_buf_fmt(b, "%s: %s\r\n", req->headers[i].name,
                        req->headers[i].value);
    eng_aws_buf_str(b, "\r\n");
}

/* Value of header name in a response head ("" terminated copy), or NULL. */
static const char *head_value(const char *head, const char *name, char *out,
                              size_t cap)
{
    const char *p = strstr(head, "\r\n");
    size_t nl = strlen(name);

    while (p != NULL && p[2] != '\r' && p[2] != '\0') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (end == NULL)
            return NULL;
        if ((size_t)(end - line) > nl && line[nl] == ':' &&
            strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            size_t l;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            l = (size_t)(end - v);
            while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t'))
                l--;
            if (l >= cap)
                l = cap - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return out;
        }
        p = end;
    }
    return NULL;
}

/* Status line and the headers we use.  Content-Length into *clen (-1 when
 * absent: body runs to end of stream). */
static int parse_head(conn *c, const char *head, long long *clen)
{
    char v[128], *end;
    int status;

    if (strncmp(head, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)head[9]) ||
        head[8] != ' ')
        return fail(c, SIGNER_ERR_UNAVAILABLE, "malformed HTTP status line");
    status = atoi(head + 9);
    if (status < 100 || status > 599)
        return fail(c, SIGNER_ERR_UNAVAILABLE, "malformed HTTP status");
    c->resp->status = status;
    *clen = -1;
    if (head_value(head, "Content-Length", v, sizeof v) != NULL) {
        errno = 0;
        *clen = strtoll(v, &end, 10);
        if (errno != 0 || *end != '\0' || end == v || *clen < 0)
            return fail(c, SIGNER_ERR_UNAVAILABLE, "bad Content-Length");
    }
    if (head_value(head, "Transfer-Encoding", v, sizeof v) != NULL)
        return fail(c, SIGNER_ERR_UNAVAILABLE,
                    "chunked responses are not supported");
    if (head_value(head, "x-amzn-ErrorType", c->resp->error_type,
                   sizeof c->resp->error_type) == NULL)
        c->resp->error_type[0] = '\0';
    if (head_value(head, "Retry-After", v, sizeof v) != NULL &&
        isdigit((unsigned char)v[0]))
        c->resp->retry_after = atoi(v);
    return SIGNER_OK;
}

/* Reads the head (up to ENG_HTTP_HEAD_MAX) and the body (up to max). */
static int read_response(conn *c, size_t max)
{
    eng_aws_buf in = { 0 };
    char chunk[4096], *sep = NULL;
    long long clen = -1;
    size_t hlen = 0;
    ssize_t n;
    int rc = SIGNER_OK;

    for (;;) {
        if (sep == NULL && (sep = in.p ? strstr(in.p, "\r\n\r\n") : NULL)) {
            hlen = (size_t)(sep - in.p) + 4;
            sep[2] = '\0';
            if ((rc = parse_head(c, in.p, &clen)) != SIGNER_OK)
                goto cleanup;
            sep[2] = '\r';
        }
        if (sep == NULL && in.len > ENG_HTTP_HEAD_MAX) {
            rc = fail(c, SIGNER_ERR_TOO_LARGE, "response head too large");
            goto cleanup;
        }
        if (sep != NULL && clen >= 0 && in.len - hlen >= (size_t)clen)
            break;
        if (sep != NULL && in.len - hlen > max) {
            rc = fail(c, SIGNER_ERR_TOO_LARGE, "response body too large");
            goto cleanup;
        }
        if ((n = io_read(c, chunk, sizeof chunk)) < 0) {
            rc = (int)n;
            goto cleanup;
        }
        if (n == 0 && (sep == NULL || clen >= 0)) {
            rc = fail(c, SIGNER_ERR_UNAVAILABLE,
                      "connection closed before the full response");
            goto cleanup;
        }
        if (n == 0)
            break;
        eng_aws_buf_add(&in, chunk, (size_t)n);
        if (in.err) {
            rc = fail(c, SIGNER_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
    }
    c->resp->body_len = clen >= 0 ? (size_t)clen : in.len - hlen;
    if (c->resp->body_len > max) {
        rc = fail(c, SIGNER_ERR_TOO_LARGE, "response body too large");
        goto cleanup;
    }
    if ((c->resp->body = malloc(c->resp->body_len + 1)) == NULL) {
        rc = fail(c, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    memcpy(c->resp->body, in.p + hlen, c->resp->body_len);
    c->resp->body[c->resp->body_len] = '\0';
cleanup:
    eng_wipe(chunk, sizeof chunk);
    eng_aws_buf_free(&in);
    return rc;
}

int eng_https_roundtrip(eng_http_resp *resp, int fd, const eng_https_cfg *cfg,
                        const eng_http_req *req, uint64_t deadline_us)
{
    conn c = { .fd = fd, .ssl = NULL, .deadline = deadline_us, .resp = resp };
    eng_aws_buf head = { 0 };
    int rc;

    memset(resp, 0, sizeof *resp);
    resp->retry_after = -1;
    if (fd < 0 || cfg == NULL || cfg->host == NULL || req == NULL ||
        req->method == NULL)
        return fail(&c, SIGNER_ERR_INTERNAL, "bad HTTPS call");
    if (set_nonblocking(fd) != 0)
        return fail(&c, SIGNER_ERR_UNAVAILABLE, "socket unusable");
    if (!cfg->plain && (rc = tls_open(&c, cfg)) != SIGNER_OK)
        goto cleanup;
    build_head(&head, cfg, req);
    if (head.err) {
        rc = fail(&c, SIGNER_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = io_write(&c, head.p, head.len)) != SIGNER_OK ||
        (req->body_len > 0 &&
         (rc = io_write(&c, (const char *)req->body, req->body_len)) !=
             SIGNER_OK))
        goto cleanup;
    rc = read_response(&c, cfg->max_body ? cfg->max_body
                                         : ENG_HTTP_BODY_MAX_DEFAULT);
cleanup:
    eng_aws_buf_free(&head);
    if (c.ssl != NULL) {
        if (rc == SIGNER_OK)
            SSL_shutdown(c.ssl); /* one non-blocking try; no waiting */
        SSL_free(c.ssl);
    }
    ERR_clear_error();
    if (rc != SIGNER_OK) {
        free(resp->body);
        resp->body = NULL;
        resp->body_len = 0;
    }
    return rc;
}

void eng_http_resp_free(eng_http_resp *resp)
{
    if (resp == NULL)
        return;
    if (resp->body != NULL) {
        eng_wipe(resp->body, resp->body_len);
        free(resp->body);
    }
    resp->body = NULL;
    resp->body_len = 0;
}

/* Non-blocking connect of a fresh socket to addr, bounded by deadline. */
static int connect_addr(int *fd, int family, const struct sockaddr *addr,
                        socklen_t alen, uint64_t deadline_us)
{
    int s, err = 0;
    socklen_t elen = sizeof err;

    *fd = -1;
    if ((s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return SIGNER_ERR_UNAVAILABLE;
    if (connect(s, addr, alen) != 0) {
        if (errno != EINPROGRESS || wait_fd(s, POLLOUT, deadline_us) != 0 ||
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
            err != 0) {
            close(s);
            return SIGNER_ERR_UNAVAILABLE;
        }
    }
    *fd = s;
    return SIGNER_OK;
}

int eng_aws_connect_tcp(int *fd, const char *ip, int port,
                        uint64_t deadline_us)
{
    struct sockaddr_in a4 = { .sin_family = AF_INET };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

    *fd = -1;
    if (port <= 0 || port > 65535 || ip == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    a4.sin_port = a6.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a4.sin_addr) == 1)
        return connect_addr(fd, AF_INET, (struct sockaddr *)&a4, sizeof a4,
                            deadline_us);
    if (inet_pton(AF_INET6, ip, &a6.sin6_addr) == 1)
        return connect_addr(fd, AF_INET6, (struct sockaddr *)&a6, sizeof a6,
                            deadline_us);
    return SIGNER_ERR_UNAVAILABLE;
}

int eng_aws_connect_vsock(int *fd, unsigned cid, unsigned port,
                          uint64_t deadline_us)
{
    struct sockaddr_vm a;

    memset(&a, 0, sizeof a);
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = port;
    return connect_addr(fd, AF_VSOCK, (struct sockaddr *)&a, sizeof a,
                        deadline_us);
}
