/* The gateway's AWS credentials chain, each source against a local
 * stand-in endpoint on 127.0.0.1 started by the test: environment,
 * container endpoint (full URI + authorization token file), web identity
 * (STS AssumeRoleWithWebIdentity), IMDSv2; the chain's order and its cache.
 * The real metadata address is never contacted: IMDS is disabled except
 * where the test points it at its own server. */
#include "config.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <signer/plugin.h>

#include "aws/creds.h"
#include "aws_test.h"
#include "testutil.h"
#include "util.h"

static char *tmpdir;
static int port;
static char base[64];

/* ---- stand-in endpoint: one request per connection --------------------- */

static struct {
    int lfd;
    volatile int stop;
    pthread_t th;
    int hits_container, hits_sts, hits_imds_token, hits_imds_creds;
    int expires_in; /* seconds from now in the answers */
    char last_body[4096];
} S;

static void iso(char *out, size_t cap, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void reply(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu"
                     "\r\nConnection: close\r\n\r\n", status, strlen(body));
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 ||
        send(fd, body, strlen(body), MSG_NOSIGNAL) < 0)
        fprintf(stderr, "stand-in: send failed\n");
}

/* Reads one request (head + Content-Length body) into req. */
static size_t read_req(int fd, char *req, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    char *e, *cl;

    while (len < cap - 1 && (n = recv(fd, req + len, cap - 1 - len, 0)) > 0) {
        len += (size_t)n;
        req[len] = '\0';
        if ((e = strstr(req, "\r\n\r\n")) != NULL) {
            cl = strcasestr(req, "Content-Length:");
            if (cl == NULL || len - (size_t)(e + 4 - req) >=
                                  (size_t)atoi(cl + 15))
                break;
        }
    }
    return len;
}

static void json_creds(char *out, size_t cap, const char *token_field)
{
    char exp[32];
    iso(exp, sizeof exp, eng_unix_time() + S.expires_in);
    snprintf(out, cap, "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIACONT\","
             "\"SecretAccessKey\":\"contsecret\",\"%s\":\"conttoken\","
             "\"Expiration\":\"%s\"}", token_field, exp);
}

static void route(int fd, char *req)
{
    char body[1024], exp[32], *b = strstr(req, "\r\n\r\n") + 4;

    snprintf(S.last_body, sizeof S.last_body, "%s", b);
    if (strncmp(req, "GET /creds ", 11) == 0) {
        S.hits_container++;
        json_creds(body, sizeof body, "Token");
        reply(fd, strstr(req, "\r\nAuthorization: tok-123\r\n") ? 200 : 401,
              body);
    } else if (strncmp(req, "POST /sts ", 10) == 0) {
        S.hits_sts++;
        iso(exp, sizeof exp, eng_unix_time() + S.expires_in);
        snprintf(body, sizeof body, "<AssumeRoleWithWebIdentityResponse><"
                 "AssumeRoleWithWebIdentityResult><Credentials><SessionToken>"
                 "ststoken</SessionToken><SecretAccessKey>stssecret</Secret"
                 "AccessKey><Expiration>%s</Expiration><AccessKeyId>ASIASTS"
                 "</AccessKeyId></Credentials></AssumeRoleWithWebIdentity"
                 "Result></AssumeRoleWithWebIdentityResponse>", exp);
        reply(fd, 200, body);
    } else if (strncmp(req, "PUT /latest/api/token ", 22) == 0) {
        S.hits_imds_token++;
        reply(fd, strcasestr(req, "\r\nX-aws-ec2-metadata-token-ttl-seconds:"
                             " 21600\r\n") ? 200 : 400, "imds-token");
    } else if (!strcasestr(req, "\r\nX-aws-ec2-metadata-token: imds-token\r\n")) {
        reply(fd, 401, "");
    } else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/ ",
                       48) == 0) {
        reply(fd, 200, "role-x\n");
    } else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/"
                       "role-x ", 54) == 0) {
        S.hits_imds_creds++;
        json_creds(body, sizeof body, "Token");
        reply(fd, 200, body);
    } else {
        reply(fd, 404, "");
    }
}

static void *serve(void *arg)
{
    char req[8192];
    (void)arg;
    while (!S.stop) {
        struct pollfd p = { .fd = S.lfd, .events = POLLIN };
        struct timeval tv = { 5, 0 };
        int fd;
        if (poll(&p, 1, 100) <= 0 || (fd = accept(S.lfd, NULL, NULL)) < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (read_req(fd, req, sizeof req) > 0 && strstr(req, "\r\n\r\n"))
            route(fd, req);
        close(fd);
    }
    return NULL;
}

static const char *ENV_VARS[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL };

/* Every source unconfigured; IMDS off so nothing leaves 127.0.0.1. */
static void clean_env(void)
{
    int i;
    for (i = 0; ENV_VARS[i] != NULL; i++)
        unsetenv(ENV_VARS[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    S.expires_in = 3600;
}

static void write_file(const char *name, const char *text, char *path,
                       size_t cap)
{
    FILE *f;
    snprintf(path, cap, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof a;

    tmpdir = tu_tmpdir();
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    S.lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (tmpdir == NULL || S.lfd < 0 ||
        bind(S.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(S.lfd, 16) != 0)
        return -1;
    getsockname(S.lfd, (struct sockaddr *)&a, &al);
    port = ntohs(a.sin_port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return pthread_create(&S.th, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int teardown(void)
{
    S.stop = 1;
    pthread_join(S.th, NULL);
    close(S.lfd);
    tu_rmtree(tmpdir);
    free(tmpdir);
    clean_env();
    return 0;
}

static void test_parse_time(void)
{
    CU_ASSERT_EQUAL(eng_aws_parse_time("2015-08-30T12:36:00Z"), 1440938160);
    CU_ASSERT_EQUAL(eng_aws_parse_time("2015-08-30T12:36:00.123Z"),
                    1440938160);
    CU_ASSERT_EQUAL(eng_aws_parse_time("2015-08-30T12:36:00+00:00"),
                    1440938160);
    CU_ASSERT_EQUAL(eng_aws_parse_time("2015-08-30 12:36:00"), -1);
    CU_ASSERT_EQUAL(eng_aws_parse_time("2015-08-30T12:36:00+02:00"), -1);
}

static void test_env(void)
{
    eng_aws_creds c;
    char err[128];

    clean_env();
    CU_ASSERT_EQUAL(eng_aws_creds_from_env(&c, err, sizeof err),
                    SIGNER_ERR_NOT_FOUND);
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    CU_ASSERT_EQUAL(eng_aws_creds_from_env(&c, err, sizeof err), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(c.access_key_id, "AKIAENV");
    CU_ASSERT_STRING_EQUAL(c.secret_access_key, "envsecret");
    CU_ASSERT_STRING_EQUAL(c.session_token, "envtoken");
    CU_ASSERT_EQUAL(c.expiration, 0);
    eng_aws_creds_wipe(&c);
}

static void test_container(void)
{
    eng_aws_creds c;
    char err[256], url[128], tokfile[512];
    int before;

    clean_env();
    CU_ASSERT_EQUAL(eng_aws_creds_from_container(&c, err, sizeof err),
                    SIGNER_ERR_NOT_FOUND);
    snprintf(url, sizeof url, "%s/creds", base);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    write_file("token", "tok-123\n", tokfile, sizeof tokfile);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokfile, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-file-set", 1);
    CU_ASSERT_EQUAL_FATAL(eng_aws_creds_from_container(&c, err, sizeof err),
                          SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(c.access_key_id, "ASIACONT");
    CU_ASSERT_STRING_EQUAL(c.session_token, "conttoken");
    CU_ASSERT(llabs(c.expiration - (eng_unix_time() + 3600)) <= 2);
    /* the token from the variable when there is no file; a wrong one */
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    CU_ASSERT_EQUAL(eng_aws_creds_from_container(&c, err, sizeof err),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "container"));
    CU_ASSERT_PTR_NULL(strstr(err, "ignored-when-file-set"));
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-123", 1);
    CU_ASSERT_EQUAL(eng_aws_creds_from_container(&c, err, sizeof err),
                    SIGNER_OK);
    /* plain http to anything but loopback / the agent: refused unasked */
    before = S.hits_container;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
    CU_ASSERT_EQUAL(eng_aws_creds_from_container(&c, err, sizeof err),
                    SIGNER_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(S.hits_container, before);
    eng_aws_creds_wipe(&c);
}

static void test_web_identity(void)
{
    eng_aws_creds c;
    char err[256], url[128], tokfile[512];

    clean_env();
    CU_ASSERT_EQUAL(eng_aws_creds_from_web_identity(&c, "eu-west-1", err,
                                                    sizeof err),
                    SIGNER_ERR_NOT_FOUND);
    write_file("jwt", "eyJhbGciOi.jwt+body/x=\n", tokfile, sizeof tokfile);
    snprintf(url, sizeof url, "%s/sts", base);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokfile, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/signer", 1);
    setenv("AWS_ROLE_SESSION_NAME", "gw-1", 1);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    CU_ASSERT_EQUAL_FATAL(eng_aws_creds_from_web_identity(&c, "eu-west-1",
                          err, sizeof err), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(c.access_key_id, "ASIASTS");
    CU_ASSERT_STRING_EQUAL(c.secret_access_key, "stssecret");
    CU_ASSERT_STRING_EQUAL(c.session_token, "ststoken");
    CU_ASSERT(c.expiration > eng_unix_time());
    CU_ASSERT_PTR_NOT_NULL(strstr(S.last_body,
                                  "Action=AssumeRoleWithWebIdentity"));
    CU_ASSERT_PTR_NOT_NULL(strstr(S.last_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A"
                                  "123456789012%3Arole%2Fsigner"));
    CU_ASSERT_PTR_NOT_NULL(strstr(S.last_body, "RoleSessionName=gw-1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(S.last_body,
                                  "WebIdentityToken=eyJhbGciOi.jwt%2Bbody%2Fx%3D"));
    eng_aws_creds_wipe(&c);
}

static void test_imds(void)
{
    eng_aws_creds c;
    char err[256];

    clean_env();
    CU_ASSERT_EQUAL(eng_aws_creds_from_imds(&c, err, sizeof err),
                    SIGNER_ERR_NOT_FOUND); /* disabled */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, 1);
    CU_ASSERT_EQUAL_FATAL(eng_aws_creds_from_imds(&c, err, sizeof err),
                          SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(c.access_key_id, "ASIACONT");
    CU_ASSERT_STRING_EQUAL(c.session_token, "conttoken");
    CU_ASSERT(S.hits_imds_token >= 1 && S.hits_imds_creds >= 1);
    eng_aws_creds_wipe(&c);
    clean_env();
}

static void test_chain_order_and_cache(void)
{
    eng_aws_creds_chain *ch = eng_aws_creds_chain_new("us-east-1", 300);
    eng_aws_creds c;
    char src[16], err[256], url[128];
    int hits;

    clean_env();
    CU_ASSERT_EQUAL(eng_aws_creds_chain_get(ch, &c, src, sizeof src, err,
                                            sizeof err), SIGNER_ERR_NOT_FOUND);
    snprintf(url, sizeof url, "%s/creds", base);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-123", 1);
    hits = S.hits_container;
    CU_ASSERT_EQUAL(eng_aws_creds_chain_get(ch, &c, src, sizeof src, err,
                                            sizeof err), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(src, "container");
    CU_ASSERT_EQUAL(eng_aws_creds_chain_get(ch, &c, src, sizeof src, err,
                                            sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(S.hits_container, hits + 1); /* cached */
    eng_aws_creds_chain_free(ch);
    /* credentials expiring within the margin are fetched again */
    ch = eng_aws_creds_chain_new("us-east-1", 300);
    S.expires_in = 100;
    CU_ASSERT_EQUAL(eng_aws_creds_chain_get(ch, &c, src, sizeof src, err,
                                            sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_aws_creds_chain_get(ch, &c, src, sizeof src, err,
                                            sizeof err), SIGNER_OK);
    CU_ASSERT_EQUAL(S.hits_container, hits + 3);
    /* environment comes first */
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    CU_ASSERT_EQUAL(eng_aws_creds_chain_get(ch, &c, src, sizeof src, err,
                                            sizeof err), SIGNER_OK);
    CU_ASSERT_STRING_EQUAL(src, "env");
    CU_ASSERT_STRING_EQUAL(c.access_key_id, "AKIAENV");
    eng_aws_creds_wipe(&c);
    eng_aws_creds_chain_free(ch);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("creds", setup, teardown);
    TU_ADD(s, test_parse_time);
    TU_ADD(s, test_env);
    TU_ADD(s, test_container);
    TU_ADD(s, test_web_identity);
    TU_ADD(s, test_imds);
    TU_ADD(s, test_chain_order_and_cache);
    return tu_run();
}
