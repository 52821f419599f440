/* libcurl for the engine's outbound HTTP clients (the AWS credentials
 * chain in creds.c, the raw op's POST in engine/rpc.c, the DynamoDB
 * keystore): process-wide set-up with wiping allocators, and the options
 * every request shares.  See docs/aws.md. */
#ifndef ENG_AWS_CURL_H
#define ENG_AWS_CURL_H

#include <stddef.h>

#include <curl/curl.h>

#include "aws/buf.h"

/* Where an answer goes: *buf, up to max bytes in all; over is set (and
 * the transfer aborted) when the answer is larger. */
typedef struct eng_curl_sink {
    eng_aws_buf *buf;
    size_t max;
    int over;
} eng_curl_sink;

/* Initialises libcurl once per process (thread-safe), with allocators
 * that wipe every block libcurl frees: it copies credentials and request
 * bodies into its own memory.  Call before any other libcurl use.  0, or -1
 * if libcurl could not be initialised. */
int eng_curl_global_init(void);

/* A new easy handle for one exchange with url: no signals, timeout_ms for
 * the connection and for the whole exchange, http and https only, no
 * redirects, headers hdrs (may be NULL), the answer into sink.  The caller
 * sets method and body, performs and cleans up.  NULL if out of memory. */
CURL *eng_curl_new(const char *url, struct curl_slist *hdrs, long timeout_ms,
                   eng_curl_sink *sink);

#endif
