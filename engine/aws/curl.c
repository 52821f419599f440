/* libcurl set-up shared by the outbound HTTP clients (see curl.h). */
#include "config.h"
#include "aws/curl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* libcurl copies credentials and request bodies into its own memory: every
 * block it frees is wiped first. */
static char *wiping_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;

static void curl_setup(void)
{
    curl_ready = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc,
                                      eng_wiping_free, eng_wiping_realloc,
                                      wiping_strdup, calloc) == CURLE_OK;
}

int eng_curl_global_init(void)
{
    pthread_once(&curl_once, curl_setup);
    return curl_ready ? 0 : -1;
}

/* libcurl's write callback: appends to the sink up to its limit. */
static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    eng_curl_sink *k = arg;

    if (k->buf->len + size * n > k->max) {
        k->over = 1;
        return 0; /* aborts the transfer */
    }
    eng_aws_buf_add(k->buf, data, size * n);
    return k->buf->err ? 0 : size * n;
}

CURL *eng_curl_new(const char *url, struct curl_slist *hdrs, long timeout_ms,
                   eng_curl_sink *sink)
{
    CURL *c = curl_easy_init();

    if (c == NULL)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    return c;
}
