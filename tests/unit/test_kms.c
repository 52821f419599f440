/* KMS client: request bodies, answer parsing, error mapping and the sealed
 * plaintext formats without a network; retries, backoff, Retry-After and
 * the deadline against a scripted local HTTP server; and an end-to-end run
 * against moto_server (a third-party KMS implementation): Encrypt/Decrypt
 * round trip with an encryption context, a wrong context refused, and
 * moto's plaintext answer to a Recipient request refused by our client.
 * The moto part is skipped, saying so, where moto is not installed. */
#include "config.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signer/plugin.h>

#include "aws/buf.h"
#include "aws/kms.h"
#include "aws/kms_seal.h"
#include "aws/kms_sealer.h"
#include "aws_test.h"
#include "host.h"
#include "testutil.h"
#include "util.h"

static const eng_kms_kv CTX[] = { { "key_id", "k-1" }, { "chain", "eth" },
                                  { "address", "0xabc" } };

/* Parses a body and returns the decoded base64 at obj[name] (malloc'd). */
static unsigned char *b64_at(const cJSON *obj, const char *name, size_t *len)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    unsigned char *out;

    CU_ASSERT_FATAL(cJSON_IsString(f));
    out = malloc(strlen(f->valuestring) + 1);
    CU_ASSERT_EQUAL_FATAL(eng_aws_b64_decode(out, strlen(f->valuestring),
                                             len, f->valuestring,
                                             strlen(f->valuestring)), 0);
    return out;
}

static void test_body_encrypt(void)
{
    const unsigned char plain[] = "\x01\x02secret\x00bytes";
    char *b = eng_kms_body_encrypt("alias/k", plain, sizeof plain - 1, CTX, 3);
    cJSON *o = cJSON_Parse(b), *c;
    unsigned char *p;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "KeyId")->valuestring,
                           "alias/k");
    p = b64_at(o, "Plaintext", &n);
    CU_ASSERT(n == sizeof plain - 1 && memcmp(p, plain, n) == 0);
    c = cJSON_GetObjectItem(o, "EncryptionContext");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(c), 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(c, "key_id")->valuestring, "k-1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(c, "address")->valuestring,
                           "0xabc");
    free(p);
    cJSON_Delete(o);
    eng_kms_body_free(b);
    /* empty or oversized plaintext: no body */
    CU_ASSERT_PTR_NULL(eng_kms_body_encrypt("k", plain, 0, NULL, 0));
    CU_ASSERT_PTR_NULL(eng_kms_body_encrypt("k", plain, 4097, NULL, 0));
}

static void test_body_decrypt_recipient(void)
{
    const unsigned char blob[] = "BLOB", doc[] = "\x84\x44\xa1\x01\x38\x22";
    char *b = eng_kms_body_decrypt(NULL, blob, 4, CTX, 3, doc, 6);
    cJSON *o = cJSON_Parse(b), *r;
    unsigned char *p;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    p = b64_at(o, "CiphertextBlob", &n);
    CU_ASSERT(n == 4 && memcmp(p, blob, 4) == 0);
    free(p);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(o, "KeyId"));
    r = cJSON_GetObjectItem(o, "Recipient");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "KeyEncryptionAlgorithm")
                               ->valuestring, "RSAES_OAEP_SHA_256");
    p = b64_at(r, "AttestationDocument", &n);
    CU_ASSERT(n == 6 && memcmp(p, doc, 6) == 0);
    free(p);
    cJSON_Delete(o);
    eng_kms_body_free(b);
    b = eng_kms_body_decrypt("arn:k", blob, 4, NULL, 0, NULL, 0);
    o = cJSON_Parse(b);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(o, "Recipient"));
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(o, "EncryptionContext"));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(o, "KeyId")->valuestring,
                           "arn:k");
    cJSON_Delete(o);
    eng_kms_body_free(b);
    b = eng_kms_body_generate_random(32, NULL, 0);
    CU_ASSERT_STRING_EQUAL(b, "{\"NumberOfBytes\":32}");
    eng_kms_body_free(b);
    CU_ASSERT_PTR_NULL(eng_kms_body_generate_random(0, NULL, 0));
}

static void test_parse_field(void)
{
    unsigned char out[64];
    size_t n = 9;
    eng_kms_err e = { 0 };
    const char *cfr = "{\"CiphertextForRecipient\":\"aGVsbG8=\","
                      "\"KeyId\":\"k\",\"Plaintext\":null}";
    const char *plain = "{\"Plaintext\":\"aGVsbG8=\",\"KeyId\":\"k\"}";

    CU_ASSERT_EQUAL(eng_kms_parse_field(out, sizeof out, &n, &e, cfr,
                    strlen(cfr), "CiphertextForRecipient", 1), SIGNER_OK);
    CU_ASSERT(n == 5 && memcmp(out, "hello", 5) == 0);
    /* a Plaintext answer to a Recipient request is refused */
    CU_ASSERT_EQUAL(eng_kms_parse_field(out, sizeof out, &n, &e, plain,
                    strlen(plain), "CiphertextForRecipient", 1),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "Plaintext"));
    CU_ASSERT_EQUAL(out[0], 0);
    CU_ASSERT_EQUAL(eng_kms_parse_field(out, sizeof out, &n, &e, plain,
                    strlen(plain), "Plaintext", 0), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_kms_parse_field(out, sizeof out, &n, &e, "{}", 2,
                    "CiphertextBlob", 0), SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(eng_kms_parse_field(out, sizeof out, &n, &e,
                    "{\"CiphertextBlob\":\"a$==\"}", 23, "CiphertextBlob", 0),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_EQUAL(eng_kms_parse_field(out, 3, &n, &e, plain, strlen(plain),
                    "Plaintext", 0), SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(eng_kms_parse_field(out, sizeof out, &n, &e, "[1", 2,
                    "Plaintext", 0), SIGNER_ERR_INTERNAL);
}

static void test_map_error(void)
{
    eng_kms_err e;
    int retry;
    const char *denied = "{\"__type\":\"AccessDeniedException\",\"message\":"
                         "\"User is not authorized\"}";
    const char *thr = "{\"__type\":\"com.amazonaws.kms#ThrottlingException\","
                      "\"Message\":\"Rate exceeded\"}";
    const char *inv = "{\"__type\":\"InvalidCiphertextException\"}";

    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 400, "", denied,
                    strlen(denied), 0, NULL), SIGNER_ERR_INTERNAL);
    CU_ASSERT_FALSE(retry);
    CU_ASSERT_STRING_EQUAL(e.type, "AccessDeniedException");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "KMS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "PCR0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "User is not authorized"));
    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 400, NULL, thr,
                    strlen(thr), 0, NULL), SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_TRUE(retry);
    CU_ASSERT_STRING_EQUAL(e.type, "ThrottlingException");
    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 400, NULL, inv,
                    strlen(inv), 0, NULL), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "encryption context"));
    /* type only in the header, AWS's "Name:url" form */
    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 400,
                    "AccessDeniedException:http://internal.amazon.com/", "",
                    0, 0, NULL), SIGNER_ERR_INTERNAL);
    CU_ASSERT_STRING_EQUAL(e.type, "AccessDeniedException");
    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 503, NULL, "<html>", 6, 0,
                    NULL), SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_TRUE(retry);
    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 0, NULL, NULL, 0,
                    SIGNER_ERR_UNAVAILABLE, "deadline passed"),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_TRUE(retry);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "deadline passed"));
    CU_ASSERT_EQUAL(eng_kms_map_error(&e, &retry, 0, NULL, NULL, 0,
                    SIGNER_ERR_INTERNAL, "TLS certificate refused"),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_FALSE(retry);
}

/* ENG_PLAIN layout for a key and a secret. */
static size_t make_plain(unsigned char *p, const unsigned char *key,
                         size_t klen, const char *secret)
{
    size_t slen = strlen(secret);
    p[0] = (unsigned char)klen;
    memcpy(p + 1, key, klen);
    p[1 + klen] = (unsigned char)slen;
    memcpy(p + 2 + klen, secret, slen);
    return 2 + klen + slen;
}

static void test_seal_v1(void)
{
    unsigned char key[32], plain[ENG_PLAIN_MAX], sealed[ENG_PLAIN_MAX + 1],
        back[ENG_PLAIN_MAX];
    size_t plen, slen, blen;
    int fmt;

    memset(key, 0x5a, sizeof key);
    plen = make_plain(plain, key, 32, "a-secret-of-twenty-plus-chars");
    CU_ASSERT_EQUAL_FATAL(eng_kms_seal_encode(sealed, sizeof sealed, &slen,
                                              plain, plen), SIGNER_OK);
    CU_ASSERT_EQUAL(sealed[0], ENG_KMS_SEAL_V1);
    CU_ASSERT_EQUAL(slen, plen + 1);
    CU_ASSERT_EQUAL_FATAL(eng_kms_seal_decode(back, sizeof back, &blen, &fmt,
                                              sealed, slen), SIGNER_OK);
    CU_ASSERT_EQUAL(fmt, ENG_KMS_FMT_V1);
    CU_ASSERT(blen == plen && memcmp(back, plain, plen) == 0);
    /* bad layouts, unknown version, truncation */
    plain[1 + 32] ^= 1;
    CU_ASSERT_EQUAL(eng_kms_seal_encode(sealed, sizeof sealed, &slen, plain,
                                        plen), SIGNER_ERR_BAD_REQUEST);
    plain[1 + 32] ^= 1;
    CU_ASSERT_EQUAL(eng_kms_seal_encode(sealed, 10, &slen, plain, plen),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(eng_kms_seal_encode(sealed, sizeof sealed, &slen, plain,
                                        plen), SIGNER_OK);
    sealed[0] = 0x02;
    CU_ASSERT_EQUAL(eng_kms_seal_decode(back, sizeof back, &blen, &fmt,
                                        sealed, slen), SIGNER_ERR_BAD_REQUEST);
    sealed[0] = ENG_KMS_SEAL_V1;
    CU_ASSERT_EQUAL(eng_kms_seal_decode(back, sizeof back, &blen, &fmt,
                                        sealed, slen - 1),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(blen, 0);
    CU_ASSERT_EQUAL(back[0], 0);
}

static void hex2bin(unsigned char *out, const char *hex)
{
    size_t i;
    for (i = 0; hex[2 * i]; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* The real reference plaintext from the KMS vector decodes to its key and
 * secret. */
static void test_reference_vector_plaintext(void)
{
    size_t jlen = 0, n;
    char *json = at_vector("nitro/expected_plaintext.json", &jlen);
    unsigned char out[ENG_PLAIN_MAX], key[32];
    const char *sec = "9779d2b8f0bc495b1691ce1a2baf800453e18a58d4eea8bf1fe996a0ab291dba";
    int fmt;

    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    hex2bin(key, "25e82557e8d2d154503f8e371a36b27b067c5c60793737e76313de1a431e8099");
    CU_ASSERT_EQUAL_FATAL(eng_kms_seal_decode(out, sizeof out, &n, &fmt,
                          (unsigned char *)json, jlen), SIGNER_OK);
    CU_ASSERT_EQUAL(fmt, ENG_KMS_FMT_REFERENCE);
    CU_ASSERT_EQUAL(n, 2 + 32 + 64);
    CU_ASSERT_EQUAL(out[0], 32);
    CU_ASSERT(memcmp(out + 1, key, 32) == 0);
    CU_ASSERT_EQUAL(out[33], 64);
    CU_ASSERT(memcmp(out + 34, sec, 64) == 0);
    CU_ASSERT_TRUE(eng_kms_plain_valid(out, n));
    free(json);
}

static int ref(unsigned char *out, size_t *n, const char *json)
{
    return eng_kms_reference_parse(out, ENG_PLAIN_MAX, n, json, strlen(json));
}

static void test_reference_short_keys(void)
{
    unsigned char out[ENG_PLAIN_MAX], want[32];
    size_t n;

    /* 62 digits (one leading zero byte dropped by the reference) */
    CU_ASSERT_EQUAL(ref(out, &n, "{\"secret\":\"s\",\"eth_key\":"
        "\"e82557e8d2d154503f8e371a36b27b067c5c60793737e76313de1a431e8099\"}"),
        SIGNER_OK);
    hex2bin(want, "00e82557e8d2d154503f8e371a36b27b067c5c60793737e76313de1a431e8099");
    CU_ASSERT(memcmp(out + 1, want, 32) == 0);
    /* odd digit count, 0x prefix */
    CU_ASSERT_EQUAL(ref(out, &n, "{\"eth_key\":\"0xabc\",\"secret\":\"xy\"}"),
                    SIGNER_OK);
    memset(want, 0, 32);
    want[30] = 0x0a;
    want[31] = 0xbc;
    CU_ASSERT(memcmp(out + 1, want, 32) == 0);
    CU_ASSERT(n == 36 && out[33] == 2 && memcmp(out + 34, "xy", 2) == 0);
    /* refused: too long, not hex, zero, missing fields, not JSON */
    CU_ASSERT_EQUAL(ref(out, &n, "{\"secret\":\"s\",\"eth_key\":\"1"
        "25e82557e8d2d154503f8e371a36b27b067c5c60793737e76313de1a431e8099\"}"),
        SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(ref(out, &n, "{\"secret\":\"s\",\"eth_key\":\"zz\"}"),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(ref(out, &n, "{\"secret\":\"s\",\"eth_key\":\"000\"}"),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(ref(out, &n, "{\"eth_key\":\"01\"}"),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(ref(out, &n, "{\"secret\":\"\",\"eth_key\":\"01\"}"),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(ref(out, &n, "{\"secret\":\"s\",\"eth_key\":\"01\""),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(n, 0);
}

/* A scripted plain-HTTP KMS: answers connection i with answers[i] (NULL:
 * stays silent until the client leaves), records the last request. */
typedef struct stub {
    int lfd, port, n_answers, conns;
    const char *answers[8];
    int ctx_seen[8]; /* request i carried an EncryptionContext */
    char request[16384];
    pthread_t th;
} stub;

static void stub_read_request(stub *s, int fd)
{
    size_t len = 0;
    ssize_t n;
    char *e;

    while (len < sizeof s->request - 1 &&
           (n = recv(fd, s->request + len, sizeof s->request - 1 - len, 0)) > 0) {
        len += (size_t)n;
        s->request[len] = '\0';
        if ((e = strstr(s->request, "\r\n\r\n")) != NULL) {
            char *cl = strstr(s->request, "Content-Length: ");
            if (cl && len - (size_t)(e + 4 - s->request) >= (size_t)atoi(cl + 16))
                return;
        }
    }
}

static void *stub_main(void *arg)
{
    stub *s = arg;
    int i;

    for (i = 0; i < s->n_answers; i++) {
        struct pollfd p = { .fd = s->lfd, .events = POLLIN };
        struct timeval tv = { 5, 0 };
        int fd;
        if (poll(&p, 1, 5000) <= 0 || (fd = accept(s->lfd, NULL, NULL)) < 0)
            break;
        s->conns++;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        stub_read_request(s, fd);
        s->ctx_seen[i] = strstr(s->request, "\"EncryptionContext\"") != NULL;
        if (s->answers[i] != NULL) {
            const char *body = strchr(s->answers[i], '|') + 1;
            char *a = malloc(strlen(body) + 256);
            int n = sprintf(a, "HTTP/1.1 %.3s X\r\nContent-Type: application/"
                            "x-amz-json-1.1\r\nRetry-After: 0\r\nContent-Length:"
                            " %zu\r\n\r\n%s", s->answers[i], strlen(body), body);
            if (send(fd, a, (size_t)n, MSG_NOSIGNAL) < 0)
                fprintf(stderr, "stub: send failed\n");
            free(a);
        } else {
            char b[64];
            while (recv(fd, b, sizeof b, 0) > 0)
                ;
        }
        close(fd);
    }
    return NULL;
}

static int listen_any(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

static void stub_start(stub *s)
{
    s->lfd = listen_any(&s->port);
    CU_ASSERT_FATAL(s->lfd >= 0);
    CU_ASSERT_FATAL(pthread_create(&s->th, NULL, stub_main, s) == 0);
}

static void stub_stop(stub *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static eng_kms_tcp_target stub_target;

static void stub_cfg(eng_kms_cfg *cfg, stub *s)
{
    stub_target.ip = "127.0.0.1";
    stub_target.port = s->port;
    memset(cfg, 0, sizeof *cfg);
    cfg->region = "us-east-1";
    cfg->plain = 1;
    cfg->connect = eng_kms_connect_tcp;
    cfg->connect_arg = &stub_target;
    cfg->timeout_ms = 5000;
    cfg->max_attempts = 3;
    cfg->backoff_ms = 20;
}

static void test_creds(eng_aws_creds *c, int64_t expiration)
{
    CU_ASSERT_EQUAL_FATAL(eng_aws_creds_set(c, "AKIDTEST", "secretkeytest",
                                            "sessiontokentest", expiration),
                          SIGNER_OK);
}

/* Stub answers: "<status>|<JSON body>". */
#define THROTTLE "400|{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"
#define ENC_OK "200|{\"CiphertextBlob\":\"AQID\",\"KeyId\":\"k-arn\"}"
#define DENIED "400|{\"__type\":\"AccessDeniedException\",\"message\":\"PCR0 mismatch\"}"

static void test_retry_then_success(void)
{
    stub s = { .n_answers = 3, .answers = { THROTTLE, THROTTLE, ENC_OK } };
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char *blob;
    size_t blen;
    char date[17], cred[256];

    stub_start(&s);
    stub_cfg(&cfg, &s);
    test_creds(&c, eng_unix_time() + 3600);
    CU_ASSERT_EQUAL(eng_kms_encrypt(&cfg, &blob, &blen, &e, &c, "k",
                    (const unsigned char *)"\x01\x01x\x01y", 5, CTX, 3),
                    SIGNER_OK);
    stub_stop(&s);
    CU_ASSERT_EQUAL(s.conns, 3);
    CU_ASSERT_EQUAL(e.attempts, 3);
    CU_ASSERT(blen == 3 && memcmp(blob, "\x01\x02\x03", 3) == 0);
    free(blob);
    /* what went on the wire: the JSON 1.1 protocol, signed with the token */
    eng_sigv4_amz_date(date, eng_unix_time());
    snprintf(cred, sizeof cred, "Credential=AKIDTEST/%.8s/us-east-1/kms/"
             "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
             "x-amz-security-token;x-amz-target, Signature=", date);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "POST / HTTP/1.1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "Host: kms.us-east-1.amazonaws.com\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "X-Amz-Target: TrentService.Encrypt\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request,
                           "Content-Type: application/x-amz-json-1.1\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "X-Amz-Security-Token: sessiontokentest\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, cred));
    CU_ASSERT_PTR_NULL(strstr(s.request, "secretkeytest"));
    eng_aws_creds_wipe(&c);
}

static void test_throttled_gives_up(void)
{
    stub s = { .n_answers = 3, .answers = { THROTTLE, THROTTLE, THROTTLE } };
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char *blob;
    size_t blen;

    stub_start(&s);
    stub_cfg(&cfg, &s);
    test_creds(&c, 0);
    CU_ASSERT_EQUAL(eng_kms_encrypt(&cfg, &blob, &blen, &e, &c, "k",
                    (const unsigned char *)"\x01\x01x\x01y", 5, NULL, 0),
                    SIGNER_ERR_UNAVAILABLE);
    stub_stop(&s);
    CU_ASSERT_EQUAL(s.conns, 3);
    CU_ASSERT_EQUAL(e.attempts, 3);
    CU_ASSERT(e.retry_after >= 1);
    CU_ASSERT_STRING_EQUAL(e.type, "ThrottlingException");
    CU_ASSERT_PTR_NULL(blob);
}

static void test_access_denied_not_retried(void)
{
    stub s = { .n_answers = 1, .answers = { DENIED } };
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char out[64];
    size_t n;

    stub_start(&s);
    stub_cfg(&cfg, &s);
    test_creds(&c, 0);
    CU_ASSERT_EQUAL(eng_kms_decrypt(&cfg, out, sizeof out, &n, &e, &c, NULL,
                    (const unsigned char *)"blob", 4, CTX, 3),
                    SIGNER_ERR_INTERNAL);
    stub_stop(&s);
    CU_ASSERT_EQUAL(s.conns, 1);
    CU_ASSERT_EQUAL(e.http_status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "AccessDeniedException"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "attestation"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "X-Amz-Target: TrentService.Decrypt\r\n"));
}

static void test_deadline_no_hang(void)
{
    stub s = { .n_answers = 3 }; /* every connection: silence */
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char out[64];
    size_t n;
    uint64_t t0 = eng_now_us(), el;

    stub_start(&s);
    stub_cfg(&cfg, &s);
    cfg.timeout_ms = 600;
    test_creds(&c, 0);
    CU_ASSERT_EQUAL(eng_kms_decrypt(&cfg, out, sizeof out, &n, &e, &c, NULL,
                    (const unsigned char *)"blob", 4, NULL, 0),
                    SIGNER_ERR_UNAVAILABLE);
    el = eng_now_us() - t0;
    /* unblock the stub's remaining accepts */
    {
        int fd, k;
        for (k = s.conns; k < s.n_answers; k++)
            if (eng_aws_connect_tcp(&fd, "127.0.0.1", s.port,
                                    eng_now_us() + 1000000) == SIGNER_OK)
                close(fd);
    }
    stub_stop(&s);
    CU_ASSERT(el >= 550000 && el < 5000000); /* bounded: no hang */
    CU_ASSERT(e.retry_after >= 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "KMS unreachable"));
}

static int connects;
static int counting_connect(void *arg, int *fd, uint64_t deadline)
{
    (void)arg;
    (void)deadline;
    connects++;
    *fd = -1;
    return SIGNER_ERR_UNAVAILABLE;
}

static void test_expired_credentials_refused(void)
{
    eng_kms_cfg cfg = { .region = "us-east-1", .plain = 1,
                        .connect = counting_connect };
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char *blob;
    size_t blen;

    test_creds(&c, eng_unix_time() - 1);
    connects = 0;
    CU_ASSERT_EQUAL(eng_kms_encrypt(&cfg, &blob, &blen, &e, &c, "k",
                    (const unsigned char *)"\x01\x01x\x01y", 5, NULL, 0),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "credentials"));
    test_creds(&c, eng_unix_time() + 10); /* within the margin */
    CU_ASSERT_EQUAL(eng_kms_encrypt(&cfg, &blob, &blen, &e, &c, "k",
                    (const unsigned char *)"\x01\x01x\x01y", 5, NULL, 0),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(connects, 0);
    /* connection refused: retried, then 503-class */
    test_creds(&c, 0);
    cfg.backoff_ms = 1;
    CU_ASSERT_EQUAL(eng_kms_encrypt(&cfg, &blob, &blen, &e, &c, "k",
                    (const unsigned char *)"\x01\x01x\x01y", 5, NULL, 0),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(connects, 3);
}

/* The real KMS CiphertextForRecipient served by the stub: the Recipient
 * path opens it with the vector's key to the reference plaintext, which
 * decodes as a reference-wallet blob. */
static void test_recipient_real_vector(void)
{
    size_t blen = 0, klen = 0, n, plen;
    char *b64 = at_vector("nitro/ciphertext_for_recipient.b64", &blen);
    char *k64 = at_vector("nitro/recipient_rsa_private_key_pkcs1_der.b64", &klen);
    char *answer;
    unsigned char der[2048], plain[ENG_PLAIN_MAX], layout[ENG_PLAIN_MAX];
    const unsigned char doc[] = "attestation-document-bytes";
    eng_aws_rkey *rk = NULL;
    stub s = { .n_answers = 1 };
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    int fmt;

    CU_ASSERT_FATAL(b64 != NULL && k64 != NULL);
    while (klen && k64[klen - 1] == '\n')
        k64[--klen] = '\0';
    while (blen && b64[blen - 1] == '\n')
        b64[--blen] = '\0';
    CU_ASSERT_EQUAL_FATAL(eng_aws_b64_decode(der, sizeof der, &n, k64, klen), 0);
    CU_ASSERT_EQUAL_FATAL(eng_aws_rkey_from_der(&rk, der, n, 0), SIGNER_OK);
    answer = malloc(blen + 128);
    sprintf(answer, "200|{\"CiphertextForRecipient\":\"%s\",\"KeyId\":\"k\","
            "\"Plaintext\":null}", b64);
    s.answers[0] = answer;
    stub_start(&s);
    stub_cfg(&cfg, &s);
    test_creds(&c, 0);
    CU_ASSERT_EQUAL(eng_kms_decrypt_recipient(&cfg, plain, sizeof plain,
                    &plen, &e, &c, NULL, (const unsigned char *)"blob", 4,
                    NULL, 0, rk, doc, sizeof doc - 1), SIGNER_OK);
    stub_stop(&s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.request, "\"KeyEncryptionAlgorithm\":"
                                  "\"RSAES_OAEP_SHA_256\""));
    CU_ASSERT_EQUAL_FATAL(eng_kms_seal_decode(layout, sizeof layout, &n, &fmt,
                                              plain, plen), SIGNER_OK);
    CU_ASSERT_EQUAL(fmt, ENG_KMS_FMT_REFERENCE);
    CU_ASSERT(n == 98 && layout[0] == 32 && layout[1] == 0x25);
    eng_aws_rkey_free(rk);
    free(answer);
    free(b64);
    free(k64);
}

/* A "200|{CiphertextForRecipient: <the real vector>}" answer (malloc'd)
 * and the vector's key. */
static char *vector_answer(eng_aws_rkey **rk)
{
    size_t blen = 0, klen = 0, n;
    char *b64 = at_vector("nitro/ciphertext_for_recipient.b64", &blen);
    char *k64 = at_vector("nitro/recipient_rsa_private_key_pkcs1_der.b64", &klen);
    char *answer;
    unsigned char der[2048];

    CU_ASSERT_FATAL(b64 != NULL && k64 != NULL);
    while (klen && k64[klen - 1] == '\n')
        k64[--klen] = '\0';
    while (blen && b64[blen - 1] == '\n')
        b64[--blen] = '\0';
    CU_ASSERT_EQUAL_FATAL(eng_aws_b64_decode(der, sizeof der, &n, k64, klen), 0);
    CU_ASSERT_EQUAL_FATAL(eng_aws_rkey_from_der(rk, der, n, 0), SIGNER_OK);
    answer = malloc(blen + 128);
    sprintf(answer, "200|{\"CiphertextForRecipient\":\"%s\",\"KeyId\":\"k\"}",
            b64);
    free(b64);
    free(k64);
    return answer;
}

static const signer_key_meta META = { "0b6c3f5e-7d2a-4c1b-9e8f-123456789abc",
                                      "eth", "0xabc" };

/* A reference-wallet blob: KMS refuses it under our context, the sealer
 * asks once more without one and accepts the reference JSON. */
static void test_unseal_reference_fallback(void)
{
    eng_aws_rkey *rk = NULL;
    char *answer = vector_answer(&rk);
    stub s = { .n_answers = 2, .answers = {
        "400|{\"__type\":\"InvalidCiphertextException\"}", answer } };
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char plain[ENG_PLAIN_MAX];
    size_t n;
    int fmt;
    const unsigned char doc[] = "doc";

    stub_start(&s);
    stub_cfg(&cfg, &s);
    test_creds(&c, 0);
    CU_ASSERT_EQUAL(eng_kms_unseal(&cfg, plain, sizeof plain, &n, &fmt, &e,
                    &c, &META, (const unsigned char *)"blob", 4, rk, doc, 3),
                    SIGNER_OK);
    stub_stop(&s);
    CU_ASSERT_EQUAL(s.conns, 2);
    CU_ASSERT_TRUE(s.ctx_seen[0]);
    CU_ASSERT_FALSE(s.ctx_seen[1]);
    CU_ASSERT_EQUAL(fmt, ENG_KMS_FMT_REFERENCE);
    CU_ASSERT(n == 98 && plain[0] == 32 && plain[1] == 0x25);
    eng_aws_rkey_free(rk);
    free(answer);
}

/* A reference JSON coming back from a Decrypt under our context is not a
 * blob this engine sealed: refused, no second call. */
static void test_unseal_format_bound_to_context(void)
{
    eng_aws_rkey *rk = NULL;
    char *answer = vector_answer(&rk);
    stub s = { .n_answers = 1, .answers = { answer } };
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    unsigned char plain[ENG_PLAIN_MAX];
    size_t n;
    int fmt;

    stub_start(&s);
    stub_cfg(&cfg, &s);
    test_creds(&c, 0);
    CU_ASSERT_EQUAL(eng_kms_unseal(&cfg, plain, sizeof plain, &n, &fmt, &e,
                    &c, &META, (const unsigned char *)"blob", 4, rk,
                    (const unsigned char *)"doc", 3), SIGNER_ERR_FORBIDDEN);
    stub_stop(&s);
    CU_ASSERT_EQUAL(s.conns, 1);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(plain[0], 0);
    eng_aws_rkey_free(rk);
    free(answer);
}

/* ---- moto_server: a third-party KMS implementation ---------------------- */

static pid_t moto_pid = -1;
static int moto_port;
static eng_kms_tcp_target moto_target;

static int moto_init(void)
{
    int fd, l, i;

    if (system("python3 -c 'import moto.server' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\nSKIP moto tests: python3 module moto is not "
                "installed (pip install 'moto[server]')\n");
        return 0;
    }
    l = listen_any(&moto_port); /* pick a free port, then hand it to moto */
    close(l);
    if ((moto_pid = fork()) == 0) {
        char port[16];
        int null = open("/dev/null", O_WRONLY);
        snprintf(port, sizeof port, "%d", moto_port);
        dup2(null, 1);
        dup2(null, 2);
        execlp("python3", "python3", "-m", "moto.server", "-H", "127.0.0.1",
               "-p", port, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 300; i++) { /* up to 30 s on a loaded machine */
        if (eng_aws_connect_tcp(&fd, "127.0.0.1", moto_port,
                                eng_now_us() + 100000) == SIGNER_OK) {
            close(fd);
            return 0;
        }
        if (waitpid(moto_pid, NULL, WNOHANG) == moto_pid) {
            moto_pid = -1;
            break;
        }
        poll(NULL, 0, 100);
    }
    fprintf(stderr, "\nmoto_server did not start\n");
    return -1;
}

static int moto_cleanup(void)
{
    if (moto_pid > 0) {
        kill(moto_pid, SIGTERM);
        waitpid(moto_pid, NULL, 0);
        moto_pid = -1;
    }
    return 0;
}

static void moto_cfg(eng_kms_cfg *cfg)
{
    moto_target.ip = "127.0.0.1";
    moto_target.port = moto_port;
    memset(cfg, 0, sizeof *cfg);
    cfg->region = "us-east-1";
    cfg->host = "127.0.0.1";
    cfg->plain = 1;
    cfg->connect = eng_kms_connect_tcp;
    cfg->connect_arg = &moto_target;
    cfg->timeout_ms = 10000;
}

/* CreateKey through the same SigV4 + HTTP pieces (test-only call); the
 * KeyId into key_id. */
static void moto_create_key(char *key_id, size_t cap, const eng_aws_creds *c)
{
    char date[17], host[32];
    const char *body = "{\"KeySpec\":\"SYMMETRIC_DEFAULT\"}";
    eng_sigv4_header sh[] = { { "Content-Type", "application/x-amz-json-1.1" },
                              { "Host", host },
                              { "X-Amz-Target", "TrentService.CreateKey" } };
    eng_sigv4_req sr = { .method = "POST", .path = "/", .headers = sh,
                         .n_headers = 3, .body = (const unsigned char *)body,
                         .body_len = strlen(body), .region = "us-east-1",
                         .service = "kms", .amz_date = date };
    eng_sigv4_out so;
    eng_sigv4_header hh[5];
    eng_http_req hr = { .method = "POST", .path = "/", .headers = hh,
                        .n_headers = 5, .body = sr.body, .body_len = sr.body_len };
    eng_https_cfg hc = { .host = host, .plain = 1 };
    eng_http_resp r;
    cJSON *o;
    int fd;

    snprintf(host, sizeof host, "127.0.0.1");
    eng_sigv4_amz_date(date, eng_unix_time());
    CU_ASSERT_EQUAL_FATAL(eng_sigv4_sign(&so, c, &sr), SIGNER_OK);
    hh[0] = sh[0];
    hh[1] = sh[2];
    hh[2] = (eng_sigv4_header){ "X-Amz-Date", date };
    hh[3] = (eng_sigv4_header){ "X-Amz-Security-Token", c->session_token };
    hh[4] = (eng_sigv4_header){ "Authorization", so.authorization };
    CU_ASSERT_EQUAL_FATAL(eng_aws_connect_tcp(&fd, "127.0.0.1", moto_port,
                                              eng_now_us() + 5000000), SIGNER_OK);
    CU_ASSERT_EQUAL_FATAL(eng_https_roundtrip(&r, fd, &hc, &hr,
                                              eng_now_us() + 10000000), SIGNER_OK);
    close(fd);
    eng_sigv4_out_free(&so);
    CU_ASSERT_EQUAL_FATAL(r.status, 200);
    o = cJSON_Parse((char *)r.body);
    snprintf(key_id, cap, "%s", cJSON_GetObjectItem(cJSON_GetObjectItem(o,
             "KeyMetadata"), "KeyId")->valuestring);
    cJSON_Delete(o);
    eng_http_resp_free(&r);
}

static void test_moto_round_trip(void)
{
    eng_kms_cfg cfg;
    eng_kms_err e;
    eng_aws_creds c;
    char key_id[128];
    unsigned char key[32], plain[ENG_PLAIN_MAX], sealed[ENG_PLAIN_MAX + 1],
        *blob = NULL, back[ENG_KMS_PLAIN_MAX], rnd[32];
    size_t plen, slen, blen, n;
    const eng_kms_kv other[] = { { "key_id", "k-2" }, { "chain", "eth" },
                                 { "address", "0xabc" } };
    const unsigned char doc[] = "not-a-real-attestation-document";
    eng_aws_rkey *rk = NULL;

    if (moto_pid <= 0) {
        fprintf(stderr, "SKIPPED (moto not installed) ");
        return;
    }
    moto_cfg(&cfg);
    test_creds(&c, eng_unix_time() + 900);
    moto_create_key(key_id, sizeof key_id, &c);
    memset(key, 0x42, sizeof key);
    plen = make_plain(plain, key, 32, "a-secret-of-twenty-plus-chars");
    CU_ASSERT_EQUAL_FATAL(eng_kms_seal_encode(sealed, sizeof sealed, &slen,
                                              plain, plen), SIGNER_OK);
    CU_ASSERT_EQUAL_FATAL(eng_kms_encrypt(&cfg, &blob, &blen, &e, &c, key_id,
                          sealed, slen, CTX, 3), SIGNER_OK);
    CU_ASSERT(blen > slen);
    /* same context: opens to exactly what was sealed */
    CU_ASSERT_EQUAL(eng_kms_decrypt(&cfg, back, sizeof back, &n, &e, &c, NULL,
                    blob, blen, CTX, 3), SIGNER_OK);
    CU_ASSERT(n == slen && memcmp(back, sealed, n) == 0);
    /* another key_id in the context: refused by KMS, mapped to FORBIDDEN */
    CU_ASSERT_EQUAL(eng_kms_decrypt(&cfg, back, sizeof back, &n, &e, &c, NULL,
                    blob, blen, other, 3), SIGNER_ERR_FORBIDDEN);
    CU_ASSERT_STRING_EQUAL(e.type, "InvalidCiphertextException");
    CU_ASSERT_EQUAL(n, 0);
    /* moto ignores Recipient and answers a Plaintext: we refuse it */
    CU_ASSERT_EQUAL_FATAL(eng_aws_rkey_new(&rk, eng_unix_time()), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_kms_decrypt_recipient(&cfg, back, sizeof back, &n, &e,
                    &c, NULL, blob, blen, CTX, 3, rk, doc, sizeof doc - 1),
                    SIGNER_ERR_INTERNAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "Plaintext"));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(back[0], 0);
    /* GenerateRandom: 32 bytes, not all zero */
    memset(rnd, 0, sizeof rnd);
    CU_ASSERT_EQUAL(eng_kms_generate_random(&cfg, rnd, sizeof rnd, &e, &c,
                                            NULL, NULL, 0), SIGNER_OK);
    CU_ASSERT(memcmp(rnd, back, sizeof rnd) != 0 || rnd[0] | rnd[1] | rnd[2]);
    /* the sealer's own step: context {key_id, chain, address} from meta */
    free(blob);
    blob = NULL;
    CU_ASSERT_EQUAL_FATAL(eng_kms_seal(&cfg, &blob, &blen, &e, &c, key_id,
                                       &META, plain, plen), SIGNER_OK);
    {
        const eng_kms_kv mctx[] = { { "key_id", META.key_id },
                                    { "chain", "eth" }, { "address", "0xabc" } };
        unsigned char layout[ENG_PLAIN_MAX];
        int fmt;
        CU_ASSERT_EQUAL(eng_kms_decrypt(&cfg, back, sizeof back, &n, &e, &c,
                        NULL, blob, blen, mctx, 3), SIGNER_OK);
        CU_ASSERT_EQUAL(eng_kms_seal_decode(layout, sizeof layout, &slen,
                        &fmt, back, n), SIGNER_OK);
        CU_ASSERT(fmt == ENG_KMS_FMT_V1 && slen == plen &&
                  memcmp(layout, plain, plen) == 0);
        /* and the unseal step refuses moto's plaintext answer */
        CU_ASSERT_EQUAL(eng_kms_unseal(&cfg, layout, sizeof layout, &n, &fmt,
                        &e, &c, &META, blob, blen, rk, doc, sizeof doc - 1),
                        SIGNER_ERR_INTERNAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "Plaintext"));
    }
    eng_aws_rkey_free(rk);
    free(blob);
    eng_aws_creds_wipe(&c);
}

int main(void)
{
    CU_pSuite s, m;

    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("kms", NULL, NULL);
    TU_ADD(s, test_body_encrypt);
    TU_ADD(s, test_body_decrypt_recipient);
    TU_ADD(s, test_parse_field);
    TU_ADD(s, test_map_error);
    TU_ADD(s, test_seal_v1);
    TU_ADD(s, test_reference_vector_plaintext);
    TU_ADD(s, test_reference_short_keys);
    TU_ADD(s, test_retry_then_success);
    TU_ADD(s, test_throttled_gives_up);
    TU_ADD(s, test_access_denied_not_retried);
    TU_ADD(s, test_deadline_no_hang);
    TU_ADD(s, test_expired_credentials_refused);
    TU_ADD(s, test_recipient_real_vector);
    TU_ADD(s, test_unseal_reference_fallback);
    TU_ADD(s, test_unseal_format_bound_to_context);
    m = CU_add_suite("kms_moto", moto_init, moto_cleanup);
    TU_ADD(m, test_moto_round_trip);
    return tu_run();
}
