/*
 * fuzz_dispatch: arbitrary bytes as a request body through eng_dispatch of
 * a real engine -- local sealer, SQLite keystore and key cache in a fresh
 * mkdtemp directory, the eth plugin loaded from FUZZ_PLUGIN_DIR (run.sh
 * points it at an instrumented eth.so) or $SIGNER_BUILDDIR/plugins/.libs --
 * so the input goes through the engine's JSON checks and accessors into the
 * plugin's handlers.
 *
 * Input: byte 0 chooses the transport view: bit 0 framed (1) or HTTP (0);
 * bits 1..3 the HTTP convenience route: 0-3 none (POST /), 4 set_key
 * (POST /key/import), 5 generate_key (POST /key), 6 sign_transaction and
 * 7 sign_userop with the imported key's id in the path.  The rest is the
 * body.  One key is imported at start-up (secret SECRET below); since its
 * key_id is random, every occurrence of the placeholder
 * 00000000-0000-4000-8000-000000000000 in the body is replaced by it, so
 * seeds and the fuzzer reach the signing paths.  Authentication never locks
 * (max_failures is at its maximum, lockout 0 s).
 *
 * Invariants: an HTTP status the API uses (never 500: bad input is the
 * caller's error), a body of exactly resp_len bytes that is a JSON object
 * with enclave_status equal to the status and an enclave_result object
 * (with an "error" string on failure, and "id" for frames), and neither the
 * stored key nor its secret in an answer (JSON-decoded, any case) unless the
 * request held them (raw or decoded: an error may quote a field name).
 */
#include "config.h"

#include <ftw.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dispatch.h"
#include "fuzz.h"
#include "log.h"
#include "util.h"

#define SECRET "5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d"
#define SEED_KEY "6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a"
#define PLACEHOLDER "00000000-0000-4000-8000-000000000000"

static eng_config cfg;
static eng_engine eng;
static int started;
static char dir[512];
static char key_id[SIGNER_KEY_ID_LEN + 1];

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void dispatch_cleanup(void)
{
    if (started) {
        eng_engine_close(&eng);
        eng_config_free(&cfg);
        started = 0;
    }
    if (dir[0] != '\0')
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

/* Runs one request; returns the status and the malloc'd answer. */
static int run(const char *body, size_t len, int framed, const char *op,
               const char *kid, char **resp, size_t *resp_len)
{
    eng_request req;

    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = len;
    req.framed = framed;
    req.operation = op;
    req.key_id = kid;
    req.peer = "fuzz";
    return eng_dispatch(&eng, &req, resp, resp_len);
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_dispatch: %s: %s\n", what, why);
    abort();
}

static int dispatch_setup(void)
{
    const char *tmp = getenv("TMPDIR"), *pdir = getenv("FUZZ_PLUGIN_DIR");
    char pbuf[512], text[2048], err[512];
    char *resp = NULL;
    size_t rlen = 0;
    cJSON *j;
    const cJSON *k;
    int status;

    if (started)
        return 0;
    eng_wiping_allocators_install();
#ifdef FUZZ_REGRESS
    eng_log_set_level(SIGNER_LOG_ERROR);
#else
    /* run.sh passes -close_fd_mask=3, so the log lines cost little and the
     * logging of fuzzer-made error messages is exercised */
    eng_log_set_level(SIGNER_LOG_DEBUG);
#endif
    if (pdir == NULL || pdir[0] == '\0') {
        const char *b = getenv("SIGNER_BUILDDIR");
        snprintf(pbuf, sizeof pbuf, "%s/plugins/.libs", b ? b : ".");
        pdir = pbuf;
    }
    snprintf(dir, sizeof dir, "%s/signer-fuzz-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", dir);
    atexit(dispatch_cleanup);
    snprintf(text, sizeof text,
             "data_dir = \"%s/data\";\n"
             "plugin_dir = \"%s\";\n"
             "log_level = \"error\";\n"
             "limits = { max_body = 65536; };\n"
             "auth = { max_failures = 1000000; lockout_seconds = 0; "
             "hmac_window = 3600; };\n"
             "key_cache = { ttl_seconds = 3600; max_entries = 64; };\n"
             "plugins = ( { name = \"eth\"; settings = { }; } );\n"
             "aliases = {\n"
             "  ethereum-key-generator_generate_key = \"generate_key\";\n"
             "  ethereum-signer_set_key = \"set_key\";\n"
             "  ethereum-signer_sign_transaction = \"sign_transaction\";\n"
             "};\n",
             dir, pdir);
    if (eng_config_load_string(&cfg, text, dir, err, sizeof err) != 0)
        die("config", err);
    if (eng_engine_open(&eng, &cfg, err, sizeof err) != 0)
        die("engine (is eth.so built? set FUZZ_PLUGIN_DIR)", err);
    started = 1;

    /* one imported key, so that signing is reachable */
    snprintf(text, sizeof text,
             "{\"operation\":\"set_key\",\"payload\":{\"eth_key\":\"" SEED_KEY
             "\",\"secret\":\"" SECRET "\"}}");
    status = run(text, strlen(text), 0, NULL, NULL, &resp, &rlen);
    j = resp ? cJSON_Parse(resp) : NULL;
    k = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "enclave_result"), "key_id");
    if (status != 200 || !cJSON_IsString(k) ||
        strlen(k->valuestring) != SIGNER_KEY_ID_LEN)
        die("set_key", resp ? resp : "no answer");
    memcpy(key_id, k->valuestring, sizeof key_id);
    cJSON_Delete(j);
    free(resp);
    return 0;
}

FUZZ_INIT(dispatch)
{
    (void)argc;
    (void)argv;
    return dispatch_setup();
}

static int is_api_status(int s)
{
    return s == 200 || s == 400 || s == 403 || s == 404 || s == 409 ||
           s == 413 || s == 429 || s == 503;
}

/* 1 if needle occurs in hay[0..n), ignoring case (hex may be re-cased). */
static int contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle), i;

    for (i = 0; i + m <= n; i++)
        if (strncasecmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

FUZZ_TARGET(dispatch)
{
    static const char *const route_op[8] = {
        NULL, NULL, NULL, NULL, "set_key", "generate_key",
        "sign_transaction", "sign_userop"};
    const char *op, *kid = NULL;
    char *body, *resp = NULL;
    size_t len, rlen = 0, i;
    int framed, status, secret_in;
    cJSON *j, *res;
    const cJSON *st;

    if (!started)
        dispatch_setup();
    if (size < 1)
        return 0;
    framed = data[0] & 1;
    op = route_op[(data[0] >> 1) & 7];
    if (op != NULL && strncmp(op, "sign_", 5) == 0)
        kid = key_id;
    len = size - 1;
    body = fuzz_dup(data + 1, len, 0);
    for (i = 0; i + SIGNER_KEY_ID_LEN <= len; i++)
        if (memcmp(body + i, PLACEHOLDER, SIGNER_KEY_ID_LEN) == 0)
            memcpy(body + i, key_id, SIGNER_KEY_ID_LEN);
    secret_in = contains(body, len, SECRET) || contains(body, len, SEED_KEY);

    status = run(body, len, framed, op, kid, &resp, &rlen);
    FUZZ_CHECK(resp != NULL);
    FUZZ_CHECK(strlen(resp) == rlen);
    if (!is_api_status(status))
        fprintf(stderr, "status %d: %s\n", status, resp);
    FUZZ_CHECK(is_api_status(status));
    j = cJSON_Parse(resp);
    FUZZ_CHECK(cJSON_IsObject(j));
    st = cJSON_GetObjectItemCaseSensitive(j, "enclave_status");
    FUZZ_CHECK(cJSON_IsNumber(st) && st->valueint == status);
    res = cJSON_GetObjectItemCaseSensitive(j, "enclave_result");
    FUZZ_CHECK(cJSON_IsObject(res));
    if (status != 200) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(res, "error");
        FUZZ_CHECK(cJSON_IsString(e) && e->valuestring[0] != '\0');
    }
    if (framed)
        FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(j, "id") != NULL);
    if (!secret_in) {
        cJSON *in = cJSON_ParseWithLength(body, len);
        secret_in = fuzz_json_has(in, SECRET) || fuzz_json_has(in, SEED_KEY);
        cJSON_Delete(in);
    }
    if (!secret_in)
        FUZZ_CHECK(!fuzz_json_has(j, SECRET) && !fuzz_json_has(j, SEED_KEY));
    cJSON_Delete(j);
    free(resp);
    free(body);
    return 0;
}
