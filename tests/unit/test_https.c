/* The HTTPS client against local servers started by the test (threads on
 * 127.0.0.1) with a CA and certificates made at test time: a good
 * certificate works (and the server sees SNI and Host); a wrong hostname
 * and an untrusted CA are refused; a server that never answers (in the
 * handshake or after the request) gives a deadline error, no hang; an
 * oversized answer is refused; plain mode works for local stand-ins. */
#include "config.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signer/plugin.h>

#include "aws/https.h"
#include "aws_test.h"
#include "testutil.h"
#include "util.h"

#define HOST "kms.test.local"

static char *tmpdir;
static char ca_file[512], other_ca_file[512];
static EVP_PKEY *leaf_key;
static X509 *leaf_cert;

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

/* A certificate for key, signed by (ica, ikey) or self-signed. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *ica,
                      EVP_PKEY *ikey, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    static long serial = 1;

    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_set_version(x, 2);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, ica ? X509_get_subject_name(ica) : name);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&v3, ica ? ica : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                              san ? "critical,CA:FALSE" : "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (san != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x, ikey ? ikey : key, EVP_sha256()) <= 0) {
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(name);
    return x;
}

static int write_pem(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL || x == NULL)
        return -1;
    ok = PEM_write_X509(f, x) == 1;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int setup(void)
{
    EVP_PKEY *ca_key = new_key(), *other_key = new_key();
    X509 *ca = new_cert(ca_key, "test root", NULL, NULL, NULL);
    X509 *other = new_cert(other_key, "other root", NULL, NULL, NULL);

    signal(SIGPIPE, SIG_IGN);
    tmpdir = tu_tmpdir();
    if (tmpdir == NULL)
        return -1;
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", tmpdir);
    snprintf(other_ca_file, sizeof other_ca_file, "%s/other.pem", tmpdir);
    int rc = write_pem(ca_file, ca) | write_pem(other_ca_file, other);

    leaf_key = new_key();
    leaf_cert = new_cert(leaf_key, HOST, ca, ca_key, "DNS:" HOST);
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    return rc != 0 || leaf_cert == NULL ? -1 : 0;
}

static int teardown(void)
{
    X509_free(leaf_cert);
    EVP_PKEY_free(leaf_key);
    tu_rmtree(tmpdir);
    free(tmpdir);
    return 0;
}

enum srv_mode { SRV_ANSWER, SRV_SILENT, SRV_SILENT_AFTER_TLS, SRV_HUGE };

typedef struct srv {
    int lfd, port, tls;
    enum srv_mode mode;
    pthread_t th;
    char sni[128];
    char request[4096]; /* what the server read */
} srv;

/* Reads until the client closes or 10 s pass (a silent peer). */
static void drain(int fd, SSL *ssl)
{
    char b[512];
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (poll(&p, 1, 10000) > 0) {
        int n = ssl ? SSL_read(ssl, b, sizeof b) : (int)recv(fd, b, sizeof b, 0);
        if (n <= 0)
            break;
    }
}

static int srv_io(srv *s, SSL *ssl, int fd, void *b, size_t n, int wr)
{
    if (ssl)
        return wr ? SSL_write(ssl, b, (int)n) : SSL_read(ssl, b, (int)n);
    return wr ? (int)send(fd, b, n, MSG_NOSIGNAL) : (int)recv(fd, b, n, 0);
    (void)s;
}

/* Reads one request (head and Content-Length body), answers with a JSON
 * body echoing the body length it got. */
static void srv_answer(srv *s, SSL *ssl, int fd)
{
    size_t len = 0;
    char *e, resp[512], body[128];
    int n;
    static char big[200000];

    while (len < sizeof s->request - 1 &&
           (n = srv_io(s, ssl, fd, s->request + len,
                       sizeof s->request - 1 - len, 0)) > 0) {
        len += (size_t)n;
        s->request[len] = '\0';
        if ((e = strstr(s->request, "\r\n\r\n")) != NULL) {
            char *cl = strstr(s->request, "Content-Length: ");
            if (cl && len - (size_t)(e + 4 - s->request) >=
                          (size_t)atoi(cl + 16))
                break;
        }
    }
    if (s->mode == SRV_SILENT_AFTER_TLS) {
        drain(fd, ssl);
        return;
    }
    if (s->mode == SRV_HUGE) {
        memset(big, 'x', sizeof big);
        n = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: "
                     "%zu\r\n\r\n", sizeof big);
        srv_io(s, ssl, fd, resp, (size_t)n, 1);
        srv_io(s, ssl, fd, big, sizeof big, 1);
        return;
    }
    snprintf(body, sizeof body, "{\"got\":%zu}", len);
    n = snprintf(resp, sizeof resp, "HTTP/1.1 400 Bad Request\r\n"
                 "x-amzn-ErrorType: ThrottlingException\r\nRetry-After: 7\r\n"
                 "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    srv_io(s, ssl, fd, resp, (size_t)n, 1);
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    struct pollfd p = { .fd = s->lfd, .events = POLLIN };
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd;

    if (poll(&p, 1, 10000) <= 0 || (fd = accept(s->lfd, NULL, NULL)) < 0)
        return NULL;
    if (s->mode == SRV_SILENT) {
        drain(fd, NULL);
        goto done;
    }
    if (s->tls) {
        struct timeval tv = { 10, 0 };
        const char *sn;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_use_certificate(ctx, leaf_cert);
        SSL_CTX_use_PrivateKey(ctx, leaf_key);
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1)
            goto done;
        if ((sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) != NULL)
            snprintf(s->sni, sizeof s->sni, "%s", sn);
    }
    srv_answer(s, ssl, fd);
    if (ssl)
        SSL_shutdown(ssl);
done:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return NULL;
}

static void srv_start(srv *s, int tls, enum srv_mode mode)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof a;

    memset(s, 0, sizeof *s);
    s->tls = tls;
    s->mode = mode;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(s->lfd >= 0);
    CU_ASSERT_FATAL(bind(s->lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(listen(s->lfd, 4) == 0);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    CU_ASSERT_FATAL(pthread_create(&s->th, NULL, srv_main, s) == 0);
}

static void srv_stop(srv *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* One exchange with a server of the given kind; returns the client's rc. */
static int exchange(srv *s, int tls, enum srv_mode mode, const char *host,
                    const char *ca, eng_http_resp *resp, uint64_t budget_us)
{
    eng_sigv4_header h[] = { { "X-Amz-Target", "TrentService.Encrypt" } };
    eng_http_req req = { .method = "POST", .path = "/", .headers = h,
                         .n_headers = 1, .body = (const unsigned char *)"{}",
                         .body_len = 2 };
    eng_https_cfg cfg = { .host = host, .ca_file = ca, .plain = !tls,
                          .max_body = 4096 };
    int fd, rc;

    srv_start(s, tls, mode);
    CU_ASSERT_EQUAL_FATAL(eng_aws_connect_tcp(&fd, "127.0.0.1", s->port,
                                              eng_now_us() + 2000000),
                          SIGNER_OK);
    rc = eng_https_roundtrip(resp, fd, &cfg, &req, eng_now_us() + budget_us);
    close(fd);
    srv_stop(s);
    return rc;
}

static void test_good_certificate(void)
{
    srv s;
    eng_http_resp r;
    char want[32];

    CU_ASSERT_EQUAL_FATAL(exchange(&s, 1, SRV_ANSWER, HOST, ca_file, &r,
                                   5000000), SIGNER_OK);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(r.error_type, "ThrottlingException");
    CU_ASSERT_EQUAL(r.retry_after, 7);
    CU_ASSERT_STRING_EQUAL(s.sni, HOST);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "POST / HTTP/1.1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "Host: " HOST "\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "Content-Length: 2\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request,
                                  "X-Amz-Target: TrentService.Encrypt\r\n"));
    snprintf(want, sizeof want, "{\"got\":%zu}", strlen(s.request));
    CU_ASSERT_STRING_EQUAL((char *)r.body, want);
    CU_ASSERT_EQUAL(r.body_len, strlen(want));
    eng_http_resp_free(&r);
}

static void test_wrong_hostname_refused(void)
{
    srv s;
    eng_http_resp r;

    CU_ASSERT_EQUAL(exchange(&s, 1, SRV_ANSWER, "kms.elsewhere.test", ca_file,
                             &r, 5000000), SIGNER_ERR_INTERNAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "certificate"));
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_PTR_NULL(r.body);
    CU_ASSERT_EQUAL(s.request[0], '\0'); /* nothing was sent */
}

static void test_untrusted_ca_refused(void)
{
    srv s;
    eng_http_resp r;

    CU_ASSERT_EQUAL(exchange(&s, 1, SRV_ANSWER, HOST, other_ca_file, &r,
                             5000000), SIGNER_ERR_INTERNAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "certificate"));
    CU_ASSERT_EQUAL(s.request[0], '\0');
}

static void expect_deadline(int tls, enum srv_mode mode)
{
    srv s;
    eng_http_resp r;
    uint64_t t0 = eng_now_us(), el;

    CU_ASSERT_EQUAL(exchange(&s, tls, mode, HOST, ca_file, &r, 500000),
                    SIGNER_ERR_UNAVAILABLE);
    el = eng_now_us() - t0;
    CU_ASSERT_STRING_EQUAL(r.err, "deadline passed");
    CU_ASSERT(el >= 450000 && el < 5000000); /* bounded: no hang */
}

static void test_silent_server_deadline(void)
{
    expect_deadline(1, SRV_SILENT);           /* no TLS handshake */
    expect_deadline(1, SRV_SILENT_AFTER_TLS); /* no HTTP answer */
    expect_deadline(0, SRV_SILENT_AFTER_TLS); /* plain, no answer */
}

static void test_oversized_refused(void)
{
    srv s;
    eng_http_resp r;

    CU_ASSERT_EQUAL(exchange(&s, 1, SRV_HUGE, HOST, ca_file, &r, 5000000),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NULL(r.body);
}

static void test_plain_mode(void)
{
    srv s;
    eng_http_resp r;

    CU_ASSERT_EQUAL_FATAL(exchange(&s, 0, SRV_ANSWER, HOST, NULL, &r,
                                   5000000), SIGNER_OK);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "Host: " HOST "\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)r.body, "\"got\":"));
    eng_http_resp_free(&r);
}

static void test_connect_refused(void)
{
    int fd, l = socket(AF_INET, SOCK_STREAM, 0), port;
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof a;

    /* a port that was just free: nothing listens there */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, (struct sockaddr *)&a, sizeof a);
    getsockname(l, (struct sockaddr *)&a, &al);
    port = ntohs(a.sin_port);
    close(l);
    CU_ASSERT_EQUAL(eng_aws_connect_tcp(&fd, "127.0.0.1", port,
                                        eng_now_us() + 1000000),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fd, -1);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("https", setup, teardown);
    TU_ADD(s, test_good_certificate);
    TU_ADD(s, test_wrong_hostname_refused);
    TU_ADD(s, test_untrusted_ca_refused);
    TU_ADD(s, test_silent_server_deadline);
    TU_ADD(s, test_oversized_refused);
    TU_ADD(s, test_plain_mode);
    TU_ADD(s, test_connect_refused);
    return tu_run();
}
