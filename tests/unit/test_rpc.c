/*
 * The engine's side of raw HTTP ops (engine/rpc.c): credentials from the
 * Authorization header (Basic and Bearer, malformed values refused),
 * the payload of a raw op, the peer name of a URL in messages (no user
 * info, path or query), an outbound POST to a closed port failing
 * fast with a message naming the peer, and a POST to a one-shot stand-in
 * on 127.0.0.1 (the answer returned; an answer over the limit refused).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "host.h"
#include "rpc.h"

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Credentials of one Authorization value: 1 and key_id/secret, or 0. */
static int creds(const char *auth, char *kid, char *secret)
{
    cJSON *p = cJSON_CreateObject();
    int rc = eng_rpc_credentials(p, auth);

    kid[0] = secret[0] = '\0';
    if (str_of(p, "key_id") != NULL)
        snprintf(kid, 128, "%s", str_of(p, "key_id"));
    if (str_of(p, "secret") != NULL)
        snprintf(secret, 128, "%s", str_of(p, "secret"));
    cJSON_Delete(p);
    return rc;
}

static void test_credentials(void)
{
    char k[128], s[128];

    /* base64("abc-1:my secret:with colon") */
    CU_ASSERT_EQUAL(creds("Basic YWJjLTE6bXkgc2VjcmV0OndpdGggY29sb24=", k, s),
                    1);
    CU_ASSERT_STRING_EQUAL(k, "abc-1");
    CU_ASSERT_STRING_EQUAL(s, "my secret:with colon");
    CU_ASSERT_EQUAL(creds("bearer abc-2:s3cret", k, s), 1);
    CU_ASSERT_STRING_EQUAL(k, "abc-2");
    CU_ASSERT_STRING_EQUAL(s, "s3cret");
    CU_ASSERT_EQUAL(creds(NULL, k, s), 0);
    CU_ASSERT_EQUAL(creds("Bearer nocolon", k, s), 0);
    CU_ASSERT_STRING_EQUAL(k, "");
    CU_ASSERT_EQUAL(creds("Bearer :secret", k, s), 0);
    CU_ASSERT_EQUAL(creds("Bearer kid:", k, s), 0);
    CU_ASSERT_EQUAL(creds("Basic !!!notbase64", k, s), 0);
    CU_ASSERT_EQUAL(creds("Digest abc", k, s), 0);
    /* base64("a\0b:c"): a NUL inside is refused */
    CU_ASSERT_EQUAL(creds("Basic YQBiOmM=", k, s), 0);
}

static void test_payload(void)
{
    eng_request req;
    signer_reply reply;
    cJSON *p = NULL;

    memset(&req, 0, sizeof req);
    memset(&reply, 0, sizeof reply);
    req.body = "[1,2]";
    req.body_len = 5;
    req.authorization = "Bearer k1:sec";
    CU_ASSERT_EQUAL(eng_rpc_payload(&p, &reply, &req, 1024), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(str_of(p, "body"), "[1,2]");
    CU_ASSERT_STRING_EQUAL(str_of(p, "key_id"), "k1");
    CU_ASSERT_STRING_EQUAL(str_of(p, "secret"), "sec");
    cJSON_Delete(p);
    CU_ASSERT_EQUAL(eng_rpc_payload(&p, &reply, &req, 4),
                    SIGNER_ERR_TOO_LARGE);
    cJSON_Delete(p);
    req.body = "a\0b";
    req.body_len = 3;
    CU_ASSERT_EQUAL(eng_rpc_payload(&p, &reply, &req, 1024),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(reply.error, "NUL"));
    cJSON_Delete(p);
}

static void test_peer_name(void)
{
    char out[128];

    eng_rpc_peer_name(out, sizeof out,
                      "https://user:pw@node.example:8545/v3/APIKEY?x=1");
    CU_ASSERT_STRING_EQUAL(out, "https://node.example:8545");
    eng_rpc_peer_name(out, sizeof out, "http://127.0.0.1:1");
    CU_ASSERT_STRING_EQUAL(out, "http://127.0.0.1:1");
}

/* The transport keeps the Authorization value of a request head. */
static void test_http_head(void)
{
    static const char head[] = "POST /rpc HTTP/1.1\r\nHost: x\r\n"
                               "authorization:  Bearer k:s s \r\n"
                               "Content-Length: 2\r\n\r\n";
    char big[1400];
    eng_http_head h;
    int n;

    CU_ASSERT_EQUAL(eng_http_parse_head(&h, head, strlen(head), 8192),
                    (long)strlen(head));
    CU_ASSERT_STRING_EQUAL(h.authorization, "Bearer k:s s");
    CU_ASSERT_EQUAL(eng_http_parse_head(&h, "GET / HTTP/1.1\r\n\r\n", 18,
                                        8192),
                    18);
    CU_ASSERT_STRING_EQUAL(h.authorization, "");
    n = snprintf(big, sizeof big, "POST /rpc HTTP/1.1\r\nAuthorization: %0*d"
                 "\r\n\r\n", 1100, 7);
    CU_ASSERT_EQUAL(eng_http_parse_head(&h, big, (size_t)n, 8192), -431);
}

static void test_post_refused(void)
{
    char *resp = NULL, err[200];
    size_t len = 0;
    long status = -1;
    int rc;

    /* port 1 on loopback: nothing listens (connection refused at once) */
    rc = eng_rpc_http_post(&resp, &len, &status, err, sizeof err,
                           "http://127.0.0.1:1/path?key=SECRET", "{}", 2,
                           2000, 1024);
    CU_ASSERT_EQUAL(rc, SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NULL(resp);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "http://127.0.0.1:1"));
    CU_ASSERT_PTR_NULL(strstr(err, "SECRET"));
}

/* ---- one-shot stand-in: answers one request on 127.0.0.1 ---------------- */

static struct {
    int lfd;
    pthread_t th;
    char req[4096]; /* what it received */
} S;

static void *serve_one(void *arg)
{
    static const char answer[] = "HTTP/1.1 201 Created\r\nContent-Length: 16"
                                 "\r\nConnection: close\r\n\r\n"
                                 "{\"result\":\"0x1\"}";
    struct pollfd p = {S.lfd, POLLIN, 0};
    struct timeval tv = {5, 0};
    size_t len = 0;
    ssize_t n;
    int fd;

    (void)arg;
    if (poll(&p, 1, 5000) != 1 || (fd = accept(S.lfd, NULL, NULL)) < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* the client sends "{}" last: read until it arrives */
    while (len < sizeof S.req - 1 &&
           (n = recv(fd, S.req + len, sizeof S.req - 1 - len, 0)) > 0) {
        len += (size_t)n;
        S.req[len] = '\0';
        if (strstr(S.req, "\r\n\r\n{}") != NULL)
            break;
    }
    if (send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL) < 0)
        fprintf(stderr, "stand-in: send failed\n");
    close(fd);
    return NULL;
}

/* Starts the stand-in; its URL into url.  0, or -1. */
static int serve_start(char *url, size_t cap)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof a;

    memset(S.req, 0, sizeof S.req);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((S.lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    if (bind(S.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(S.lfd, 1) != 0 ||
        getsockname(S.lfd, (struct sockaddr *)&a, &alen) != 0 ||
        pthread_create(&S.th, NULL, serve_one, NULL) != 0) {
        close(S.lfd);
        return -1;
    }
    snprintf(url, cap, "http://127.0.0.1:%d/rpc", ntohs(a.sin_port));
    return 0;
}

static void serve_stop(void)
{
    pthread_join(S.th, NULL);
    close(S.lfd);
}

/* One POST of "{}" to a fresh stand-in, answers up to max bytes; the
 * post's result (-1000 when the stand-in did not start). */
static int post_once(char **resp, size_t *len, long *status, char *err,
                     size_t errcap, size_t max)
{
    char url[64];
    int rc;

    *resp = NULL;
    *len = 0;
    *status = -1;
    if (serve_start(url, sizeof url) != 0)
        return -1000;
    rc = eng_rpc_http_post(resp, len, status, err, errcap, url, "{}", 2, 5000,
                           max);
    serve_stop();
    return rc;
}

static void test_post_answer(void)
{
    char *resp, err[200] = "";
    size_t len;
    long status;

    CU_ASSERT_EQUAL(post_once(&resp, &len, &status, err, sizeof err, 1024),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(status, 201);
    CU_ASSERT_EQUAL(len, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_STRING_EQUAL(resp, "{\"result\":\"0x1\"}");
    CU_ASSERT(strncmp(S.req, "POST /rpc HTTP/1.1\r\n", 20) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(S.req,
                                  "\r\nContent-Type: application/json\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(S.req, "\r\nContent-Length: 2\r\n"));
    free(resp);
    /* one byte over the limit: refused, nothing returned */
    CU_ASSERT_EQUAL(post_once(&resp, &len, &status, err, sizeof err, 15),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NULL(resp);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "answer larger than 15 bytes"));
}

int main(void)
{
    CU_pSuite s;
    unsigned failures;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return CU_get_error();
    s = CU_add_suite("rpc", NULL, NULL);
    CU_add_test(s, "Authorization credentials", test_credentials);
    CU_add_test(s, "raw op payload", test_payload);
    CU_add_test(s, "peer names", test_peer_name);
    CU_add_test(s, "Authorization in the HTTP head", test_http_head);
    CU_add_test(s, "POST to a closed port", test_post_refused);
    CU_add_test(s, "POST and its answer, within the limit and over it",
                test_post_answer);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures == 0 ? 0 : 1;
}
