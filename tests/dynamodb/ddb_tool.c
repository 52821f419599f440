/* Drives the DynamoDB keystore client from the command line, for the tests
 * in tests/dynamodb/run.mjs.  Prints one JSON object: the call's result code
 * and, for get, the record; always the client's counters.
 *
 *   ddb_tool ENDPOINT TABLE REGION create
 *   ddb_tool ENDPOINT TABLE REGION ready
 *   ddb_tool ENDPOINT TABLE REGION put KEY_ID CHAIN ADDRESS FORMAT HEXBLOB
 *   ddb_tool ENDPOINT TABLE REGION get KEY_ID
 * and through the "dynamodb" keystore row (engine/keystore/keystore.h):
 *   ddb_tool ENDPOINT TABLE REGION row-put KEY_ID CHAIN ADDRESS HEXBLOB
 *   ddb_tool ENDPOINT TABLE REGION row-get KEY_ID
 *   ddb_tool ENDPOINT TABLE REGION row-meta NAME HEXVALUE   (put, then get)
 *   ddb_tool ENDPOINT TABLE REGION row-any
 *
 * Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN; DDB_TIMEOUT_MS and DDB_MAX_ATTEMPTS tune the client. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "keystore/dynamodb.h"
#include "keystore/keystore.h"
#include "util.h"

static int hex_decode(unsigned char *out, size_t cap, const char *hex,
                      size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

static int env_creds(void *ctx, eng_aws_creds *out)
{
    char err[128];
    (void)ctx;
    return eng_aws_creds_from_env(out, err, sizeof err);
}

static int do_put(eng_ddb *d, char **argv)
{
    static unsigned char blob[65536];
    size_t len;
    signer_key_meta meta = {argv[0], argv[1], argv[2]};
    if (hex_decode(blob, sizeof blob, argv[4], &len) != 0)
        return SIGNER_ERR_BAD_REQUEST;
    return eng_ddb_put(d, &meta, argv[3], blob, len);
}

static int do_get(eng_ddb *d, const char *key_id)
{
    eng_ddb_record rec;
    int rc = eng_ddb_get(d, &rec, key_id);
    if (rc == SIGNER_OK) {
        char *hex = malloc(rec.blob_len * 2 + 1);
        if (hex == NULL)
            return SIGNER_ERR_NOMEM;
        eng_hex_encode(hex, rec.blob, rec.blob_len);
        printf("\"chain\":\"%s\",\"address\":\"%s\",\"format\":\"%s\","
               "\"blob\":\"%s\",", rec.chain, rec.address, rec.format, hex);
        free(hex);
        eng_ddb_record_clear(&rec);
    }
    return rc;
}

static void print_hex(const char *name, const unsigned char *b, size_t n)
{
    char *hex = malloc(n * 2 + 1);
    if (hex == NULL)
        return;
    eng_hex_encode(hex, b, n);
    printf("\"%s\":\"%s\",", name, hex);
    free(hex);
}

static int row_cmd(eng_keystore *ks, int argc, char **argv)
{
    static unsigned char buf[65536];
    char chain[32], address[SIGNER_MAX_ADDRESS], id[64];
    unsigned char *blob = NULL;
    size_t len;
    int rc = SIGNER_ERR_BAD_REQUEST;
    if (strcmp(argv[0], "row-put") == 0 && argc == 5 &&
        hex_decode(buf, sizeof buf, argv[4], &len) == 0) {
        signer_key_meta meta = {argv[1], argv[2], argv[3]};
        rc = eng_keystore_put(ks, &meta, buf, len);
    } else if (strcmp(argv[0], "row-get") == 0 && argc == 2) {
        rc = eng_keystore_get(ks, chain, sizeof chain, address, sizeof address,
                              &blob, &len, argv[1]);
        if (rc == SIGNER_OK) {
            printf("\"chain\":\"%s\",\"address\":\"%s\",", chain, address);
            print_hex("blob", blob, len);
        }
        free(blob);
    } else if (strcmp(argv[0], "row-meta") == 0 && argc == 3 &&
               hex_decode(buf, sizeof buf, argv[2], &len) == 0) {
        rc = eng_keystore_meta_put(ks, argv[1], buf, len);
        if (rc == SIGNER_OK &&
            (rc = eng_keystore_meta_get(ks, buf, sizeof buf, &len, argv[1])) == SIGNER_OK)
            print_hex("value", buf, len);
    } else if (strcmp(argv[0], "row-any") == 0 &&
               (rc = eng_keystore_any_key_id(ks, id, sizeof id)) == SIGNER_OK) {
        printf("\"key_id\":\"%s\",", id);
    }
    printf("\"ready\":%d,\"count\":%lld,", eng_keystore_ready(ks),
           eng_keystore_count(ks));
    return rc;
}

/* Opens the "dynamodb" row with the same settings as the direct client. */
static int run_row(const eng_ddb_config *cfg, int argc, char **argv)
{
    char err[256] = "", t[32], m[32];
    eng_setting set[] = {{"table", cfg->table}, {"region", cfg->region},
                         {"endpoint", cfg->endpoint}, {"timeout_ms", t},
                         {"max_attempts", m}};
    eng_backend_args args = {NULL, set, 5, 1, NULL};
    eng_keystore *ks = NULL;
    int rc;
    snprintf(t, sizeof t, "%ld", cfg->timeout_ms);
    snprintf(m, sizeof m, "%d", cfg->max_attempts);
    if ((rc = eng_keystore_open(&ks, "dynamodb", &args, err, sizeof err)) != SIGNER_OK) {
        fprintf(stderr, "ddb_tool: %s\n", err);
        return rc;
    }
    rc = row_cmd(ks, argc, argv);
    eng_keystore_close(ks);
    return rc;
}

static int run(eng_ddb *d, int argc, char **argv)
{
    char err[256] = "";
    const char *cmd = argv[0];
    if (strcmp(cmd, "create") == 0) {
        int rc = eng_ddb_create_table(d, 5000, err, sizeof err);
        if (rc != SIGNER_OK)
            fprintf(stderr, "%s\n", err);
        return rc;
    }
    if (strcmp(cmd, "ready") == 0) {
        printf("\"ready\":%d,", eng_ddb_ready(d));
        return SIGNER_OK;
    }
    if (strcmp(cmd, "put") == 0 && argc == 6)
        return do_put(d, argv + 1);
    if (strcmp(cmd, "get") == 0 && argc == 2)
        return do_get(d, argv[1]);
    fprintf(stderr, "ddb_tool: unknown command or arguments\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char err[256];
    const char *t = getenv("DDB_TIMEOUT_MS"), *m = getenv("DDB_MAX_ATTEMPTS");
    eng_ddb_config cfg = {.table = argc > 2 ? argv[2] : NULL,
                          .region = argc > 3 ? argv[3] : NULL,
                          .endpoint = argc > 1 ? argv[1] : NULL,
                          .timeout_ms = t ? atol(t) : 0,
                          .max_attempts = m ? atoi(m) : 0};
    eng_ddb_stats st;
    eng_ddb *d;
    int rc;
    if (argc < 5) {
        fprintf(stderr, "usage: ddb_tool ENDPOINT TABLE REGION CMD [ARGS]\n");
        return 2;
    }
    if ((d = eng_ddb_open(&cfg, env_creds, NULL, err, sizeof err)) == NULL) {
        fprintf(stderr, "ddb_tool: %s\n", err);
        return 1;
    }
    printf("{");
    if (strncmp(argv[4], "row-", 4) == 0) {
        printf("\"rc\":%d}\n", run_row(&cfg, argc - 4, argv + 4));
        eng_ddb_close(d);
        return 0;
    }
    rc = run(d, argc - 4, argv + 4);
    eng_ddb_stats_get(d, &st);
    printf("\"rc\":%d,\"requests\":%llu,\"retries\":%llu,\"throttled\":%llu,"
           "\"errors\":%llu}\n", rc, st.requests, st.retries, st.throttled,
           st.errors);
    eng_ddb_close(d);
    return 0;
}
