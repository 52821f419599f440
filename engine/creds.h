/* AWS credentials for the gateway: found as the AWS SDKs find them, cached
 * until shortly before they expire.  The gateway uses them for DynamoDB and
 * attaches them to each frame for the enclave's KMS calls.  See
 * docs/gateway.md. */
#ifndef ENG_CREDS_H
#define ENG_CREDS_H

#include <stddef.h>
#include <time.h>
#include <signer/plugin.h>

/* Short-lived AWS credentials.  Whoever holds a copy wipes it. */
typedef struct eng_aws_creds {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096]; /* "" for long-term keys */
    time_t expiration;        /* 0: does not expire */
    char source[16];          /* "env", "web-identity", "container", "imds" */
} eng_aws_creds;

/* Fills *out with current credentials.  SIGNER_OK, or a negative
 * signer_err (SIGNER_ERR_UNAVAILABLE when no source answers). */
typedef int (*eng_aws_creds_fn)(void *ctx, eng_aws_creds *out);

/* Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
 * SIGNER_ERR_UNAVAILABLE when the first two are not both set. */
int eng_aws_creds_from_env(void *ctx, eng_aws_creds *out);

typedef struct eng_creds_chain eng_creds_chain;

/* A credential chain over, in this order (as the AWS SDKs):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. IRSA web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME) -> STS AssumeRoleWithWebIdentity at
 *      https://sts.REGION.amazonaws.com (AWS_ENDPOINT_URL_STS overrides);
 *   3. container credentials (EKS Pod Identity, ECS):
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI, with the
 *      Authorization header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN;
 *   4. IMDSv2 at http://169.254.169.254 (AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      overrides; AWS_EC2_METADATA_DISABLED=true skips it).
 * The environment is read when the chain is created.  NULL on ENOMEM. */
eng_creds_chain *eng_creds_chain_new(const char *region, long timeout_ms);

/* eng_aws_creds_fn over a chain: returns the cached credentials while they
 * are valid for at least another 5 minutes, else asks the sources again.
 * Thread-safe. */
int eng_creds_chain_get(void *chain, eng_aws_creds *out);

void eng_creds_chain_free(eng_creds_chain *c);

/* Initialises libcurl once per process, with allocators that wipe every
 * block libcurl frees (it copies credentials and bodies).  0 or -1. */
int eng_curl_global_init(void);

#endif
