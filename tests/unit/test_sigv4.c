/* SigV4 against the official AWS signing test suite (tests/vectors/sigv4,
 * from awslabs/aws-c-auth): for every case, our canonical request, string
 * to sign, signature and Authorization header equal the suite's header-*
 * files.  Every case of the suite is run; none is skipped. */
#include "config.h"

#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signer/plugin.h>

#include "aws/sigv4.h"
#include "aws_test.h"
#include "testutil.h"

#define MAXH 32

/* A request.txt parsed into the signer's request shape. */
typedef struct parsed {
    char *text; /* request.txt, cut in place */
    char method[16];
    char *path, *query;
    eng_sigv4_header h[MAXH];
    char *hvals[MAXH]; /* folded continuation values (malloc'd) */
    size_t nh;
    char *body;
    size_t body_len;
} parsed;

/* Header lines "Name:value"; a line starting with whitespace continues the
 * previous value (kept with its line break: the signer folds it). */
static int parse_headers(parsed *p, char *line)
{
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n'), *colon;
        if (nl)
            *nl = '\0';
        if ((line[0] == ' ' || line[0] == '\t') && p->nh > 0) {
            size_t i = p->nh - 1, l = strlen(p->h[i].value) + strlen(line) + 2;
            char *v = malloc(l);
            snprintf(v, l, "%s\n%s", p->h[i].value, line);
            free(p->hvals[i]);
            p->hvals[i] = v;
            p->h[i].value = v;
        } else if ((colon = strchr(line, ':')) != NULL && p->nh < MAXH) {
            *colon = '\0';
            p->h[p->nh].name = line;
            p->h[p->nh++].value = colon + 1;
        } else {
            return -1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static int parse_request(parsed *p, char *text)
{
    char *nl, *sp1, *sp2, *blank;

    memset(p, 0, sizeof *p);
    p->text = text;
    if ((blank = strstr(text, "\n\n")) != NULL) {
        *blank = '\0';
        p->body = blank + 2;
        p->body_len = strlen(p->body);
    }
    if ((nl = strchr(text, '\n')) == NULL)
        return -1;
    *nl = '\0';
    sp1 = strchr(text, ' ');
    sp2 = strrchr(text, ' ');
    if (sp1 == NULL || sp2 == sp1 || (size_t)(sp1 - text) >= sizeof p->method)
        return -1;
    memcpy(p->method, text, (size_t)(sp1 - text));
    *sp2 = '\0';
    p->path = sp1 + 1;
    if ((p->query = strchr(p->path, '?')) != NULL)
        *p->query++ = '\0';
    return parse_headers(p, nl + 1);
}

static void parsed_free(parsed *p)
{
    size_t i;
    for (i = 0; i < p->nh; i++)
        free(p->hvals[i]);
    free(p->text);
}

static char *case_file(const char *dir, const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "sigv4/%s/%s", dir, name);
    return at_vector(rel, NULL);
}

/* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
static void amz_date(char out[17], const char *iso)
{
    size_t i, j = 0;
    for (i = 0; iso[i] != '\0' && j < 16; i++)
        if (iso[i] != '-' && iso[i] != ':')
            out[j++] = iso[i];
    out[j] = '\0';
}

static int flag(const cJSON *ctx, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, name));
}

/* The Authorization value from header-signed-request.txt. */
static char *expected_auth(const char *dir)
{
    char *t = case_file(dir, "header-signed-request.txt"), *a, *e, *r;
    if (t == NULL || (a = strstr(t, "\nAuthorization:")) == NULL) {
        free(t);
        return NULL;
    }
    a += strlen("\nAuthorization:");
    if ((e = strchr(a, '\n')) != NULL)
        *e = '\0';
    r = strdup(a);
    free(t);
    return r;
}

static void expect_file(const char *dir, const char *file, const char *got)
{
    char *want = case_file(dir, file);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (strcmp(want, got) != 0)
        fprintf(stderr, "\n%s/%s differs:\n--- want\n%s\n--- got\n%s\n",
                dir, file, want, got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(want);
}

static void fill_creds(eng_aws_creds *c, const cJSON *ctx)
{
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(ctx, "credentials");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(cr, "token");
    CU_ASSERT_EQUAL_FATAL(eng_aws_creds_set(c,
        cJSON_GetObjectItemCaseSensitive(cr, "access_key_id")->valuestring,
        cJSON_GetObjectItemCaseSensitive(cr, "secret_access_key")->valuestring,
        cJSON_IsString(tok) ? tok->valuestring : NULL, 0), SIGNER_OK);
}

static void run_case(const char *dir)
{
    char *ctxtext = case_file(dir, "context.json"), date[17], *auth;
    cJSON *ctx = cJSON_Parse(ctxtext);
    parsed p;
    eng_aws_creds creds;
    eng_sigv4_req req;
    eng_sigv4_out out;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_EQUAL_FATAL(parse_request(&p, case_file(dir, "request.txt")), 0);
    fill_creds(&creds, ctx);
    amz_date(date, cJSON_GetObjectItemCaseSensitive(ctx,
                                                    "timestamp")->valuestring);
    memset(&req, 0, sizeof req);
    req.method = p.method;
    req.path = p.path;
    req.query = p.query;
    req.headers = p.h;
    req.n_headers = p.nh;
    req.body = (const unsigned char *)p.body;
    req.body_len = p.body_len;
    req.region = cJSON_GetObjectItemCaseSensitive(ctx, "region")->valuestring;
    req.service = cJSON_GetObjectItemCaseSensitive(ctx, "service")->valuestring;
    req.amz_date = date;
    req.normalize_path = flag(ctx, "normalize");
    req.sign_body_header = flag(ctx, "sign_body");
    req.omit_session_token = flag(ctx, "omit_session_token");
    CU_ASSERT_EQUAL_FATAL(eng_sigv4_sign(&out, &creds, &req), SIGNER_OK);
    expect_file(dir, "header-canonical-request.txt", out.canonical_request);
    expect_file(dir, "header-string-to-sign.txt", out.string_to_sign);
    expect_file(dir, "header-signature.txt", out.signature);
    auth = expected_auth(dir);
    CU_ASSERT_PTR_NOT_NULL(auth);
    if (auth)
        CU_ASSERT_STRING_EQUAL(out.authorization, auth);
    free(auth);
    eng_sigv4_out_free(&out);
    eng_aws_creds_wipe(&creds);
    parsed_free(&p);
    cJSON_Delete(ctx);
    free(ctxtext);
}

/* Every directory of the suite is a case; all 38 must pass. */
static void test_suite_all_cases(void)
{
    char path[1024];
    DIR *d;
    struct dirent *ent;
    int n = 0;

    snprintf(path, sizeof path, "%s/tests/vectors/sigv4", at_srcdir());
    d = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((ent = readdir(d)) != NULL) {
        if (ent->d_name[0] == '.' || strcmp(ent->d_name, "README.md") == 0)
            continue;
        run_case(ent->d_name);
        n++;
    }
    closedir(d);
    CU_ASSERT_EQUAL(n, 38);
}

static void test_refusals(void)
{
    eng_aws_creds c;
    eng_sigv4_header h[] = { { "X-Other", "1" } };
    eng_sigv4_req req = { .method = "POST", .path = "/", .headers = h,
                          .n_headers = 1, .region = "us-east-1",
                          .service = "kms", .amz_date = "20150830T123600Z" };
    eng_sigv4_out out;

    CU_ASSERT_EQUAL(eng_aws_creds_set(&c, "", "s", NULL, 0),
                    SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_EQUAL(eng_aws_creds_set(&c, "AKID", "secret", "tok", 1000),
                    SIGNER_OK);
    /* no Host header */
    CU_ASSERT_EQUAL(eng_sigv4_sign(&out, &c, &req), SIGNER_ERR_BAD_REQUEST);
    CU_ASSERT_PTR_NULL(out.authorization);
    h[0].name = "Host";
    req.amz_date = "2015-08-30T12:36:00Z";
    CU_ASSERT_EQUAL(eng_sigv4_sign(&out, &c, &req), SIGNER_ERR_BAD_REQUEST);
    /* expiry: valid before, refused within the margin and after */
    CU_ASSERT_TRUE(eng_aws_creds_valid(&c, 900, 60));
    CU_ASSERT_FALSE(eng_aws_creds_valid(&c, 950, 60));
    CU_ASSERT_FALSE(eng_aws_creds_valid(&c, 1000, 0));
    eng_aws_creds_wipe(&c);
    CU_ASSERT_FALSE(eng_aws_creds_valid(&c, 0, 0));
    CU_ASSERT_EQUAL(c.secret_access_key[0], 0);
}

static void test_amz_date(void)
{
    char d[17];
    eng_sigv4_amz_date(d, 1440938160); /* 2015-08-30T12:36:00Z */
    CU_ASSERT_STRING_EQUAL(d, "20150830T123600Z");
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("sigv4", NULL, NULL);
    TU_ADD(s, test_suite_all_cases);
    TU_ADD(s, test_refusals);
    TU_ADD(s, test_amz_date);
    return tu_run();
}
