/* The gateway pool prints small integers of a frame as raw digits (no
 * printf + sscanf per number): the bytes an enclave receives must be
 * exactly what cJSON prints for the same frame, for every kind of number
 * (integers on both sides of 10^15, negative, zero and -0, fractions,
 * numbers in arrays and nested objects). */
#include "config.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "gateway/pool.h"

static const char *const frame_text =
    "{\"operation\":\"sign_transaction\",\"payload\":{\"key_id\":\"k\","
    "\"a\":0,\"b\":-5,\"c\":100000000000,\"d\":999999999999999,"
    "\"e\":-999999999999999,\"f\":1e15,\"g\":0.01,\"h\":-0.0,"
    "\"i\":123456789012345678,\"j\":[1,2.5,-3,[4]],\"k\":{\"l\":42},"
    "\"m\":1.0,\"n\":3e2,\"s\":\"7\",\"t\":true,\"u\":null}}";

static atomic_int answered, answer_err;

static void on_done(void *arg, cJSON *answer, const char *text,
                    size_t text_len, int err, const char *why)
{
    (void)arg;
    (void)text;
    (void)text_len;
    (void)why;
    cJSON_Delete(answer);
    atomic_store(&answer_err, err);
    atomic_store(&answered, 1);
}

/* Reads exactly n bytes within 5 s.  0 or -1. */
static int read_n(int fd, unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&pf, 1, 5000) != 1 || (r = recv(fd, b + got, n - got, 0)) <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* A listening socket on 127.0.0.1; its port in *port. */
static int listen_local(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_frame_bytes_match_cjson(void)
{
    char ep[64], *want, answer[96];
    const char *const eps[1] = {ep};
    unsigned char hdr[4], *got;
    eng_gw_pool_conf pc;
    eng_gw_pool *p;
    cJSON *frame = cJSON_Parse(frame_text), *expect, *rx;
    struct pollfd pf;
    size_t len;
    int lfd, cfd, port = 0, i, n;
    char err[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(frame);
    expect = cJSON_Duplicate(frame, 1);
    lfd = listen_local(&port);
    CU_ASSERT_FATAL(lfd >= 0);
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    memset(&pc, 0, sizeof pc);
    pc.endpoints = eps;
    pc.n_endpoints = 1;
    pc.deadline_ms = 5000;
    pc.max_pipeline = 4;
    pc.reconnect_ms = 50;
    pc.max_frame = 65536;
    p = eng_gw_pool_start(&pc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    pf.fd = lfd;
    pf.events = POLLIN;
    CU_ASSERT_FATAL(poll(&pf, 1, 5000) == 1);
    cfd = accept(lfd, NULL, NULL);
    CU_ASSERT_FATAL(cfd >= 0);
    eng_gw_pool_forward(p, frame, 1, on_done, NULL);
    CU_ASSERT_FATAL(read_n(cfd, hdr, 4) == 0);
    len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 |
          hdr[3];
    got = calloc(1, len + 1);
    CU_ASSERT_FATAL(got != NULL && read_n(cfd, got, len) == 0);
    /* The same frame with the same id, printed by cJSON alone. */
    rx = cJSON_Parse((const char *)got);
    CU_ASSERT_FATAL(rx != NULL &&
                    cJSON_IsNumber(cJSON_GetObjectItem(rx, "id")));
    cJSON_AddNumberToObject(expect, "id",
                            cJSON_GetObjectItem(rx, "id")->valuedouble);
    want = cJSON_PrintUnformatted(expect);
    CU_ASSERT_STRING_EQUAL((const char *)got, want);
    /* The rewritten numbers are there, as digits. */
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)got, "\"d\":999999999999999,"));
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)got, "\"f\":1e+15,"));
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)got, "\"h\":-0,"));
    n = snprintf(answer + 4, sizeof answer - 4,
                 "{\"id\":%.0f,\"enclave_status\":200,\"enclave_result\":{}}",
                 cJSON_GetObjectItem(rx, "id")->valuedouble);
    answer[0] = answer[1] = answer[2] = 0;
    answer[3] = (char)n;
    CU_ASSERT_EQUAL(send(cfd, answer, (size_t)n + 4, 0), n + 4);
    for (i = 0; i < 500 && !atomic_load(&answered); i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    CU_ASSERT_EQUAL(atomic_load(&answered), 1);
    CU_ASSERT_EQUAL(atomic_load(&answer_err), SIGNER_OK);
    eng_gw_pool_free(p);
    close(cfd);
    close(lfd);
    free(got);
    free(want);
    cJSON_Delete(rx);
    cJSON_Delete(expect);
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("gw_frame_numbers", NULL, NULL);
    TU_ADD(s, test_frame_bytes_match_cjson);
    return tu_run();
}
