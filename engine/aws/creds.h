/* Where the gateway gets the AWS credentials it forwards to the enclave
 * (and uses for its own calls): the SDKs' default chain, in their order --
 * environment, web identity (IRSA: STS AssumeRoleWithWebIdentity),
 * container endpoint (ECS / EKS Pod Identity), EC2 instance metadata
 * (IMDSv2) -- cached until shortly before expiry.  Runs outside the
 * enclave, over libcurl.  See docs/aws.md. */
#ifndef ENG_AWS_CREDS_H
#define ENG_AWS_CREDS_H

#include <stddef.h>

#include "aws/sigv4.h"

typedef struct eng_aws_creds_chain eng_aws_creds_chain;

/* A chain for region (STS endpoint) that refreshes credentials expiring
 * within refresh_margin seconds (<= 0: 300).  NULL on allocation failure. */
eng_aws_creds_chain *eng_aws_creds_chain_new(const char *region,
                                             int refresh_margin);
/* Current credentials into *out (cached, or fetched from the first source
 * configured), the source's name into source ("env", "web-identity",
 * "container", "imds").  SIGNER_OK; SIGNER_ERR_NOT_FOUND when no source is
 * configured; SIGNER_ERR_UNAVAILABLE when the configured source fails
 * (err says why, naming no secret).  Thread-safe. */
int eng_aws_creds_chain_get(eng_aws_creds_chain *ch, eng_aws_creds *out,
                            char *source, size_t source_cap, char *err,
                            size_t err_cap)
    __attribute__((warn_unused_result));
/* Wipes the cache and frees the chain; NULL is a no-op. */
void eng_aws_creds_chain_free(eng_aws_creds_chain *ch);

/* The sources one by one.  SIGNER_OK; SIGNER_ERR_NOT_FOUND when the
 * source is not configured here (the chain moves on); another signer_err
 * when it is configured but failed (err says why). */
int eng_aws_creds_from_env(eng_aws_creds *out, char *err, size_t err_cap);
int eng_aws_creds_from_web_identity(eng_aws_creds *out, const char *region,
                                    char *err, size_t err_cap);
int eng_aws_creds_from_container(eng_aws_creds *out, char *err,
                                 size_t err_cap);
int eng_aws_creds_from_imds(eng_aws_creds *out, char *err, size_t err_cap);

/* Unix time of an ISO 8601 UTC timestamp ("2026-01-02T03:04:05Z", with
 * optional fraction); -1 if malformed. */
long long eng_aws_parse_time(const char *iso);

#endif
