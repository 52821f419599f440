/* DynamoDB keystore: sealed key records in a DynamoDB table, over the
 * DynamoDB JSON API (HTTPS, SigV4) with libcurl.  Used by the gateway role;
 * see docs/gateway.md for the table schema and the migration from the
 * reference wallet's table. */
#ifndef ENG_KEYSTORE_DYNAMODB_H
#define ENG_KEYSTORE_DYNAMODB_H

#include <stddef.h>
#include <time.h>
#include <signer/plugin.h>

#include "aws/sigv4.h"

/* Fills *out with current AWS credentials.  SIGNER_OK, or a negative
 * signer_err (SIGNER_ERR_UNAVAILABLE when no source answers). */
typedef int (*eng_aws_creds_fn)(void *ctx, eng_aws_creds *out);

typedef struct eng_ddb_config {
    const char *table;    /* required */
    const char *region;   /* required, e.g. "eu-west-1" */
    const char *endpoint; /* NULL: https://dynamodb.REGION.amazonaws.com */
    const char *ca_file;  /* NULL: the system's CA bundle */
    long timeout_ms;      /* per attempt; <= 0: 2000 */
    int max_attempts;     /* attempts on throttling/5xx/network; <= 0: 5 */
} eng_ddb_config;

/* One sealed key record as the table holds it. */
typedef struct eng_ddb_record {
    char chain[32];                 /* "eth" when the item has none      */
    char address[SIGNER_MAX_ADDRESS];
    char format[32];                /* "reference" when the item has none */
    unsigned char *blob;            /* malloc'd, decoded from base64     */
    size_t blob_len;
} eng_ddb_record;

typedef struct eng_ddb eng_ddb;

/* Opens a client for cfg (strings copied).  creds is asked for credentials
 * before every request.  NULL with a reason in err. */
eng_ddb *eng_ddb_open(const eng_ddb_config *cfg, eng_aws_creds_fn creds,
                      void *creds_ctx, char *err, size_t err_len);

/* PutItem with attribute_not_exists(key_id): durable when it returns
 * SIGNER_OK; SIGNER_ERR_CONFLICT if key_id exists; SIGNER_ERR_UNAVAILABLE
 * when DynamoDB throttles or cannot be reached after the retries. */
int eng_ddb_put(eng_ddb *d, const signer_key_meta *meta, const char *format,
                const unsigned char *blob, size_t blob_len)
    SIGNER_WARN_UNUSED;

/* GetItem with ConsistentRead.  SIGNER_ERR_NOT_FOUND when absent; rec->blob
 * is malloc'd on success (release with eng_ddb_record_clear). */
int eng_ddb_get(eng_ddb *d, eng_ddb_record *rec, const char *key_id)
    SIGNER_WARN_UNUSED;
void eng_ddb_record_clear(eng_ddb_record *rec);

/* Some key_id of the table (meta items skipped), from a paged Scan.
 * SIGNER_ERR_NOT_FOUND when the table holds no key. */
int eng_ddb_any_key_id(eng_ddb *d, char *key_id, size_t cap)
    SIGNER_WARN_UNUSED;

/* DescribeTable: 1 when the table is ACTIVE and reachable, else 0. */
int eng_ddb_ready(eng_ddb *d);

/* CreateTable (partition key key_id, on-demand billing, point-in-time
 * recovery enabled where the server offers it), then waits up to wait_ms for ACTIVE.  SIGNER_OK also
 * when the table already exists.  A reason in err on failure. */
int eng_ddb_create_table(eng_ddb *d, long wait_ms, char *err,
                         size_t err_len) SIGNER_WARN_UNUSED;

/* Counters for /metrics. */
typedef struct eng_ddb_stats {
    unsigned long long requests, retries, throttled, errors;
} eng_ddb_stats;
void eng_ddb_stats_get(eng_ddb *d, eng_ddb_stats *out);

void eng_ddb_close(eng_ddb *d);

#endif
