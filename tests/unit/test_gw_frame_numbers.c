/* The gateway pool prints small integers of a frame as raw digits (no
 * printf + sscanf per number): the bytes an enclave receives must be
 * exactly what cJSON prints for the same frame, for every kind of number
 * (integers on both sides of 10^15, negative, zero and -0, fractions,
 * numbers in arrays and nested objects). */
#include "config.h"
#include "gw_pool_test.h"
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

static void test_frame_bytes_match_cjson(void)
{
    char *want, answer[96];
    unsigned char *got;
    eng_gw_pool *p;
    cJSON *frame = cJSON_Parse(frame_text), *expect, *rx;
    int lfd, cfd, i, n;
    CU_ASSERT_PTR_NOT_NULL_FATAL(frame);
    expect = cJSON_Duplicate(frame, 1);
    p = tu_pool_with_peer(&lfd, &cfd);
    eng_gw_pool_forward(p, frame, 1, on_done, NULL);
    got = (unsigned char *)tu_read_frame(cfd);
    CU_ASSERT_FATAL(got != NULL);
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
