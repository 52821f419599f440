/* Raw HTTP ops: credentials, payload and the outbound POST (see rpc.h). */
#include "config.h"
#include "rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "aws/buf.h"
#include "aws/creds.h"
#include "aws/curl.h"
#include "host.h"
#include "util.h"

#define RPC_CRED_MAX 768 /* decoded "key_id:secret" bytes */

/* Adds key_id and secret from "key_id:secret" in s[0..n). */
static int add_pair(cJSON *payload, char *s, size_t n)
{
    char *colon = memchr(s, ':', n);

    if (colon == NULL || colon == s || colon + 1 == s + n ||
        memchr(s, '\0', n) != NULL)
        return 0;
    *colon = '\0';
    s[n] = '\0';
    if (cJSON_AddStringToObject(payload, "key_id", s) == NULL ||
        cJSON_AddStringToObject(payload, "secret", colon + 1) == NULL)
        return SIGNER_ERR_NOMEM;
    return 1;
}

/* Credentials of an Authorization value into payload (see rpc.h). */
int eng_rpc_credentials(cJSON *payload, const char *authorization)
{
    unsigned char raw[RPC_CRED_MAX + 1];
    const char *v = authorization;
    size_t n = 0, vl;
    int rc = 0;

    if (v == NULL)
        return 0;
    vl = strlen(v);
    if (vl > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7 + strspn(v + 7, " ");
        n = strlen(v);
        if (n > RPC_CRED_MAX)
            return 0;
        memcpy(raw, v, n);
    } else if (vl > 6 && strncasecmp(v, "Basic ", 6) == 0) {
        v += 6 + strspn(v + 6, " ");
        if (eng_aws_b64_decode(raw, RPC_CRED_MAX, &n, v, strlen(v)) != 0)
            return 0;
    } else {
        return 0;
    }
    rc = add_pair(payload, (char *)raw, n);
    eng_wipe(raw, sizeof raw);
    if (rc != 1) {
        cJSON_DeleteItemFromObjectCaseSensitive(payload, "key_id");
        cJSON_DeleteItemFromObjectCaseSensitive(payload, "secret");
    }
    return rc;
}

/* {body, key_id, secret} of a raw op's request (see rpc.h). */
int eng_rpc_payload(cJSON **payload, signer_reply *reply,
                    const eng_request *req, size_t max_body)
{
    *payload = NULL;
    if (req->body_len > max_body)
        return eng_reply_error(reply, SIGNER_ERR_TOO_LARGE,
                               "body: larger than %zu bytes", max_body);
    if (memchr(req->body, '\0', req->body_len) != NULL)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "body: holds a NUL byte");
    if ((*payload = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(*payload, "body", req->body) == NULL ||
        eng_rpc_credentials(*payload, req->authorization) < 0)
        return eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    return SIGNER_OK;
}

/* scheme://host[:port] of url, for messages (see rpc.h). */
void eng_rpc_peer_name(char *out, size_t cap, const char *url)
{
    const char *s = strstr(url, "://"), *h, *at, *end;

    if (s == NULL) {
        snprintf(out, cap, "(not a URL)");
        return;
    }
    h = s + 3;
    end = h + strcspn(h, "/?#");
    at = memchr(h, '@', (size_t)(end - h));
    if (at != NULL)
        h = at + 1;
    snprintf(out, cap, "%.*s://%.*s", (int)(s - url), url, (int)(end - h), h);
}

/* The curl handle of one POST (options only). */
static CURL *post_handle(const char *url, struct curl_slist *hdrs,
                         const char *body, size_t len, long timeout_ms,
                         eng_curl_sink *sink)
{
    CURL *c = eng_curl_new(url, hdrs, timeout_ms, sink);

    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    return c;
}

/* One JSON POST under one timeout (host->http_post, see rpc.h). */
int eng_rpc_http_post(char **resp, size_t *resp_len, long *status, char *err,
                      size_t errcap, const char *url, const char *body,
                      size_t len, long timeout_ms, size_t max_resp)
{
    struct curl_slist *hdrs = NULL, *h2;
    eng_aws_buf ans = {0};
    eng_curl_sink sink = {&ans, max_resp, 0};
    char peer[160];
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    CURL *c = NULL;
    int rc;

    *resp = NULL;
    *resp_len = 0;
    *status = 0;
    eng_rpc_peer_name(peer, sizeof peer, url);
    if (eng_curl_global_init() != 0)
        return snprintf(err, errcap, "%s: HTTP client unavailable", peer),
               SIGNER_ERR_UNAVAILABLE;
    if ((h2 = curl_slist_append(hdrs, "Content-Type: application/json")) !=
        NULL)
        hdrs = h2;
    if (hdrs != NULL && (h2 = curl_slist_append(hdrs, "Expect:")) != NULL)
        hdrs = h2;
    if (hdrs != NULL &&
        (c = post_handle(url, hdrs, body, len, timeout_ms, &sink)) != NULL)
        cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (sink.over) {
        snprintf(err, errcap, "%s: answer larger than %zu bytes", peer,
                 max_resp);
        rc = SIGNER_ERR_TOO_LARGE;
    } else if (cc != CURLE_OK || ans.err) {
        snprintf(err, errcap, "%s: %s", peer,
                 cc == CURLE_OPERATION_TIMEDOUT
                     ? "no answer within the timeout"
                     : curl_easy_strerror(cc));
        rc = SIGNER_ERR_UNAVAILABLE;
    } else {
        eng_aws_buf_str(&ans, ""); /* an empty answer is "" too */
        *resp_len = ans.len;
        *resp = eng_aws_buf_take(&ans);
        return *resp != NULL ? SIGNER_OK : SIGNER_ERR_NOMEM;
    }
    eng_aws_buf_free(&ans);
    return rc;
}
