/*
 * fuzz_http: the HTTP/1.x request-head parser eng_http_parse_head over
 * arbitrary bytes, then the router and the response formatters on what it
 * returns.
 *
 * Input: [0..1] max_header selector, [2] where to cut a prefix, then the
 * bytes received so far.
 *
 * Invariants: the result is 0, a head length in 1..min(len, max_header)
 * ending in '\n', or -400/-414/-431/-501/-505; 0 only while fewer than
 * max_header bytes are there, -431 only when at least max_header are; a
 * parsed head has a NUL-terminated upper-case method and an origin-form
 * path of printable characters; content_length is 0 without a
 * Content-Length header and never above SIZE_MAX/2; parsing exactly the
 * head gives the same head, and any shorter prefix of it is "incomplete".
 */
#include "config.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "transport/transport.h"
#include "transport/transport_internal.h"

static int is_status(long r)
{
    return r == -400 || r == -414 || r == -431 || r == -501 || r == -505;
}

static void head_check(const eng_http_head *h)
{
    size_t n, i;

    n = strnlen(h->method, sizeof h->method);
    FUZZ_CHECK(n > 0 && n < sizeof h->method);
    for (i = 0; i < n; i++)
        FUZZ_CHECK(h->method[i] >= 'A' && h->method[i] <= 'Z');
    n = strnlen(h->path, sizeof h->path);
    FUZZ_CHECK(n > 0 && n < sizeof h->path && h->path[0] == '/');
    for (i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)h->path[i] > 0x20 &&
                   (unsigned char)h->path[i] < 0x7f);
    FUZZ_CHECK(h->has_content_length == 0 || h->has_content_length == 1);
    FUZZ_CHECK(h->has_content_length || h->content_length == 0);
    FUZZ_CHECK(h->content_length <= (size_t)-1 / 2);
    FUZZ_CHECK(h->keep_alive == 0 || h->keep_alive == 1);
    FUZZ_CHECK(h->chunked == 0 || h->chunked == 1);
    FUZZ_CHECK(h->expect_continue == 0 || h->expect_continue == 1);
}

static int head_equal(const eng_http_head *a, const eng_http_head *b)
{
    return strcmp(a->method, b->method) == 0 &&
           strcmp(a->path, b->path) == 0 &&
           a->content_length == b->content_length &&
           a->has_content_length == b->has_content_length &&
           a->keep_alive == b->keep_alive && a->chunked == b->chunked &&
           a->expect_continue == b->expect_continue;
}

/* The path the routes see: no query, no repeated slash, still rooted. */
static void route_check(const eng_http_head *h)
{
    char p[sizeof h->path];

    memcpy(p, h->path, sizeof p);
    eng_http_normalise_path(p);
    FUZZ_CHECK(p[0] == '/');
    FUZZ_CHECK(strstr(p, "//") == NULL);
    FUZZ_CHECK(strpbrk(p, "?#") == NULL);
    FUZZ_CHECK(strlen(p) <= strlen(h->path));
}

/* The answer the server would send for status: a head that fits and an
 * error body that is JSON. */
static void answer_check(int status, int keep_alive)
{
    char out[512];
    size_t n, blen = 0;
    char *body = eng_http_error_body(status, "bad request", &blen);
    cJSON *j;

    FUZZ_CHECK(body != NULL && strlen(body) == blen);
    j = cJSON_Parse(body);
    FUZZ_CHECK(j != NULL);
    cJSON_Delete(j);
    FUZZ_CHECK(eng_http_reason(status) != NULL);
    n = eng_http_format_head(out, sizeof out, status, "application/json",
                             blen, keep_alive, NULL);
    FUZZ_CHECK(n > 0 && n < sizeof out && strlen(out) == n);
    FUZZ_CHECK(n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
    /* too small a buffer is refused, not overrun */
    FUZZ_CHECK(eng_http_format_head(out, 8, status, "application/json", blen,
                                    keep_alive, NULL) == 0);
    free(body);
}

FUZZ_INIT(http)
{
    (void)argc;
    (void)argv;
    return 0;
}

FUZZ_TARGET(http)
{
    static const size_t big[] = {0, 1, 2, 16, 256, 8192, 65536, (size_t)-1};
    eng_http_head h, h2;
    size_t max_header, len, lim;
    char *buf;
    long r;

    if (size < 3)
        return 0;
    max_header = data[0] == 0xff ? big[data[1] & 7]
                                 : ((size_t)data[0] << 8 | data[1]);
    len = size - 3;
    buf = fuzz_dup(data + 3, len, 0);
    r = eng_http_parse_head(&h, buf, len, max_header);
    lim = len < max_header ? len : max_header;

    FUZZ_CHECK(r == 0 || is_status(r) || (r > 0 && (size_t)r <= lim));
    if (r == 0)
        FUZZ_CHECK(len < max_header);
    if (r == -431)
        FUZZ_CHECK(len >= max_header);
    if (r < 0)
        answer_check((int)-r, 0);
    if (r > 0) {
        size_t cut;
        char *exact;
        FUZZ_CHECK(buf[r - 1] == '\n');
        head_check(&h);
        route_check(&h);
        /* exactly the head: the same head */
        exact = fuzz_dup((const uint8_t *)buf, (size_t)r, 0);
        FUZZ_CHECK(eng_http_parse_head(&h2, exact, (size_t)r, max_header) == r);
        FUZZ_CHECK(head_equal(&h, &h2));
        free(exact);
        /* a shorter prefix: incomplete */
        cut = (size_t)data[2] % (size_t)r;
        exact = fuzz_dup((const uint8_t *)buf, cut, 0);
        FUZZ_CHECK(eng_http_parse_head(&h2, exact, cut, max_header) == 0);
        free(exact);
        answer_check(200, h.keep_alive);
    }
    free(buf);
    return 0;
}
