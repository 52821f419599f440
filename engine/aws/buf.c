/* Growable, wiping byte buffer (see buf.h). */
#include "config.h"
#include "aws/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int buf_grow(eng_aws_buf *b, size_t need)
{
    size_t cap;
    char *n;

    if (b->err)
        return -1;
    if (b->len + need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1)
        cap *= 2;
    /* Not realloc: the old block is wiped before it is released. */
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

void eng_aws_buf_add(eng_aws_buf *b, const void *data, size_t len)
{
    if (buf_grow(b, len) != 0)
        return;
    if (len > 0)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
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
