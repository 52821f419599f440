/* Growable, wiping byte buffer (see buf.h). */
#include "config.h"
#include "aws/buf.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

/* Moves b to a block of cap bytes; the old block is wiped before it is
 * released (not realloc).  0 or -1 (err set). */
static int buf_move(eng_aws_buf *b, size_t cap)
{
    char *n;

    if ((n = malloc(cap)) == NULL) {
        b->err = 1;
        return -1;
    }
    if (b->p != NULL) {
        memcpy(n, b->p, b->len);
        eng_wipe(b->p, b->cap);
        free(b->p);
    }
    b->p = n;
    b->cap = cap;
    return 0;
}

static int buf_grow(eng_aws_buf *b, size_t need)
{
    size_t cap;

    if (b->err)
        return -1;
    if (b->len + need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1)
        cap *= 2;
    return buf_move(b, cap);
}

int eng_aws_buf_reserve(eng_aws_buf *b, size_t n)
{
    size_t cap;

    if (b->err)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    /* the first reservation is the caller's estimate; later ones double */
    cap = b->p == NULL ? n + 1 : (b->len + n + 1) * 2;
    return buf_move(b, cap < 64 ? 64 : cap);
}

char *eng_aws_buf_extend(eng_aws_buf *b, size_t n)
{
    char *at;
    if (buf_grow(b, n) != 0)
        return NULL;
    at = b->p + b->len;
    b->len += n;
    b->p[b->len] = '\0';
    return at;
}

void eng_aws_buf_add(eng_aws_buf *b, const void *data, size_t len)
{
    char *at = eng_aws_buf_extend(b, len);
    if (at != NULL && len > 0)
        memcpy(at, data, len);
}

void eng_aws_buf_str(eng_aws_buf *b, const char *s)
{
    eng_aws_buf_add(b, s, strlen(s));
}

void eng_aws_buf_fmt(eng_aws_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = 1;
        return;
    }
    if (buf_grow(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void eng_aws_buf_free(eng_aws_buf *b)
{
    if (b->p != NULL) {
        eng_wipe(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

char *eng_aws_buf_take(eng_aws_buf *b)
{
    char *s;

    if (b->err) {
        eng_aws_buf_free(b);
        return NULL;
    }
    if (b->p == NULL)
        eng_aws_buf_add(b, "", 0);
    s = b->err ? NULL : b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    return s;
}

char *eng_aws_b64_encode(const unsigned char *in, size_t len)
{
    size_t n = 4 * ((len + 2) / 3) + 1;
    char *out;

    if (len > (size_t)INT_MAX / 2 || (out = malloc(n)) == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

int eng_aws_b64_decode(unsigned char *out, size_t cap, size_t *out_len,
                       const char *in, size_t in_len)
{
    size_t pad = 0, n, i;
    unsigned char *tmp;
    int got;

    *out_len = 0;
    if (in_len == 0)
        return 0;
    if (in_len % 4 != 0 || in_len > (size_t)INT_MAX / 2)
        return -1;
    for (i = 0; i < in_len; i++) {
        char c = in[i];
        int ok = isalnum((unsigned char)c) || c == '+' || c == '/' ||
                 (c == '=' && i >= in_len - 2);
        if (!ok || (pad > 0 && c != '='))
            return -1;
        pad += c == '=';
    }
    n = in_len / 4 * 3 - pad;
    if (n > cap || (tmp = malloc(in_len / 4 * 3)) == NULL)
        return -1;
    got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)in_len);
    if (got < 0 || (size_t)got != n + pad) {
        eng_wipe(tmp, in_len / 4 * 3);
        free(tmp);
        return -1;
    }
    memcpy(out, tmp, n);
    eng_wipe(tmp, in_len / 4 * 3);
    free(tmp);
    *out_len = n;
    return 0;
}
