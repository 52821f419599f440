#include "config.h"
#include "jcs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signer/plugin.h>

#include "util.h"

/* ---- numbers ------------------------------------------------------------ */

/* Splits "%.*e" text into its digits (no dot) and decimal exponent. */
static int split_e(const char *text, char digits[20], int *exp)
{
    int k = 0;
    for (; *text != 'e' && *text != '\0'; text++)
        if (*text >= '0' && *text <= '9' && k < 19)
            digits[k++] = *text;
    digits[k] = '\0';
    if (*text != 'e')
        return -1;
    *exp = atoi(text + 1);
    return k;
}

/* Moves p digits one unit up or down in the last place (dir +1/-1),
 * carrying into the exponent: 999 -> 100 e+1, 100 -> 999 e-1. */
static void bump(char *digits, int p, int *exp, int dir)
{
    int i = p - 1;
    if (dir > 0) {
        while (i >= 0 && digits[i] == '9')
            digits[i--] = '0';
        if (i >= 0) {
            digits[i]++;
        } else {
            digits[0] = '1';
            (*exp)++;
        }
        return;
    }
    while (i >= 0 && digits[i] == '0')
        digits[i--] = '9';
    if (i >= 0)
        digits[i]--;
    if (digits[0] == '0') {
        memset(digits, '9', (size_t)p);
        (*exp)--;
    }
}

/* 1 if digits x 10^(exp - p + 1), read as a double, is d. */
static int reads_as(const char *digits, int p, int exp, double d)
{
    char buf[48];
    snprintf(buf, sizeof buf, "%c.%se%d", digits[0], p > 1 ? digits + 1 : "",
             exp);
    return strtod(buf, NULL) == d;
}

/* Shortest decimal digits and exponent n with 0.d1d2... x 10^n equal to
 * d > 0 once read back.  For each length the correctly rounded digits
 * (the closest) are tried, then their neighbours: next to a power of two
 * the interval that reads back as d is narrower below than above, so the
 * closest may miss where a neighbour hits (as ECMAScript requires). */
static int shortest_digits(char digits[20], int *n, double d)
{
    char buf[40], cand[20];
    int p, e = 0, k, dir;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (split_e(buf, digits, &e) != p)
            return -1;
        if (reads_as(digits, p, e, d))
            break;
        for (dir = 1; dir >= -1; dir -= 2) {
            int ce = e;
            memcpy(cand, digits, (size_t)p + 1);
            bump(cand, p, &ce, dir);
            if (reads_as(cand, p, ce, d)) {
                memcpy(digits, cand, (size_t)p + 1);
                e = ce;
                goto found;
            }
        }
    }
found:
    if (p > 17)
        return -1;
    k = p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    *n = e + 1;
    return k;
}

int eng_jcs_number(char out[ENG_JCS_NUMBER_MAX], double d)
{
    char dg[20];
    int k, n, i, pos = 0;
    if (!isfinite(d))
        return SIGNER_ERR_BAD_REQUEST;
    if (d == 0) { /* also -0 */
        strcpy(out, "0");
        return SIGNER_OK;
    }
    if (d < 0) {
        out[pos++] = '-';
        d = -d;
    }
    if ((k = shortest_digits(dg, &n, d)) < 0)
        return SIGNER_ERR_INTERNAL;
    if (k <= n && n <= 21) { /* integer: digits then zeros */
        memcpy(out + pos, dg, (size_t)k);
        pos += k;
        for (i = k; i < n; i++)
            out[pos++] = '0';
    } else if (0 < n && n <= 21) { /* dot inside the digits */
        memcpy(out + pos, dg, (size_t)n);
        pos += n;
        out[pos++] = '.';
        memcpy(out + pos, dg + n, (size_t)(k - n));
        pos += k - n;
    } else if (-6 < n && n <= 0) { /* 0.000ddd */
        out[pos++] = '0';
        out[pos++] = '.';
        for (i = 0; i < -n; i++)
            out[pos++] = '0';
        memcpy(out + pos, dg, (size_t)k);
        pos += k;
    } else { /* d[.ddd]e+-x */
        out[pos++] = dg[0];
        if (k > 1) {
            out[pos++] = '.';
            memcpy(out + pos, dg + 1, (size_t)(k - 1));
            pos += k - 1;
        }
        pos += snprintf(out + pos, (size_t)(ENG_JCS_NUMBER_MAX - pos),
                        "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    out[pos] = '\0';
    return SIGNER_OK;
}

/* ---- output buffer ------------------------------------------------------- */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    int err;
} jbuf;

static void put(jbuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *q;
        while (b->len + n + 1 > cap)
            cap *= 2;
        /* Grown by copy so the old block is wiped: HMAC'd payloads may
         * carry secrets. */
        if ((q = malloc(cap)) == NULL) {
            b->err = SIGNER_ERR_NOMEM;
            return;
        }
        if (b->p != NULL) {
            memcpy(q, b->p, b->len);
            eng_wipe(b->p, b->cap);
            free(b->p);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* ---- strings -------------------------------------------------------------- */

/* JSON.stringify's escaping: the two-character escapes, \u00xx (lowercase)
 * for other controls, everything else (U+007F, U+2028, ...) as is. */
static void put_string(jbuf *b, const char *s)
{
    const char *run = s;
    char esc[8];
    put(b, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"': put(b, "\\\"", 2); break;
        case '\\': put(b, "\\\\", 2); break;
        case '\b': put(b, "\\b", 2); break;
        case '\f': put(b, "\\f", 2); break;
        case '\n': put(b, "\\n", 2); break;
        case '\r': put(b, "\\r", 2); break;
        case '\t': put(b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        }
    }
    put(b, run, (size_t)(s - run));
    put(b, "\"", 1);
}

/* Next UTF-16 code unit of a UTF-8 string (*pending carries the low
 * surrogate of a pair).  0 at the end.  A malformed sequence counts as one
 * U+FFFD per byte and never reads past the terminator. */
static unsigned next_unit(const unsigned char **s, unsigned *pending)
{
    const unsigned char *p = *s;
    unsigned cp, n, i;
    if (*pending) {
        cp = *pending;
        *pending = 0;
        return cp;
    }
    if (*p == 0)
        return 0;
    n = *p < 0x80 ? 0 : *p < 0xe0 ? 1 : *p < 0xf0 ? 2 : 3;
    cp = n == 0 ? *p : n == 1 ? (*p & 0x1fu) : n == 2 ? (*p & 0x0fu)
                                                       : (*p & 0x07u);
    for (i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *s = p + 1;
            return 0xfffd;
        }
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    *s = p + n + 1;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *pending = 0xdc00 | (cp & 0x3ff);
        return 0xd800 | (cp >> 10);
    }
    return cp;
}

/* Orders member names by UTF-16 code units (RFC 8785 section 3.2.3). */
static int cmp_names(const void *x, const void *y)
{
    const unsigned char *a =
        (const unsigned char *)(*(const cJSON *const *)x)->string;
    const unsigned char *b =
        (const unsigned char *)(*(const cJSON *const *)y)->string;
    unsigned pa = 0, pb = 0;
    for (;;) {
        unsigned ua = next_unit(&a, &pa), ub = next_unit(&b, &pb);
        if (ua != ub)
            return ua < ub ? -1 : 1;
        if (ua == 0)
            return 0;
    }
}

/* ---- values ---------------------------------------------------------------- */

static void put_value(jbuf *b, const cJSON *v, int depth);

static void put_object(jbuf *b, const cJSON *v, int depth)
{
    const cJSON *c, **arr;
    size_t n = 0, i;
    for (c = v->child; c != NULL; c = c->next)
        n++;
    if (n == 0) {
        put(b, "{}", 2);
        return;
    }
    if ((arr = malloc(n * sizeof *arr)) == NULL) {
        b->err = SIGNER_ERR_NOMEM;
        return;
    }
    for (i = 0, c = v->child; c != NULL; c = c->next)
        arr[i++] = c;
    qsort(arr, n, sizeof *arr, cmp_names);
    put(b, "{", 1);
    for (i = 0; i < n; i++) {
        if (i)
            put(b, ",", 1);
        put_string(b, arr[i]->string ? arr[i]->string : "");
        put(b, ":", 1);
        put_value(b, arr[i], depth + 1);
    }
    put(b, "}", 1);
    free(arr);
}

static void put_value(jbuf *b, const cJSON *v, int depth)
{
    char num[ENG_JCS_NUMBER_MAX];
    const cJSON *c;
    if (b->err)
        return;
    if (depth > CJSON_NESTING_LIMIT) {
        b->err = SIGNER_ERR_BAD_REQUEST;
        return;
    }
    switch (v->type & 0xff) {
    case cJSON_NULL: put(b, "null", 4); break;
    case cJSON_False: put(b, "false", 5); break;
    case cJSON_True: put(b, "true", 4); break;
    case cJSON_Number:
        if (eng_jcs_number(num, v->valuedouble) != SIGNER_OK)
            b->err = SIGNER_ERR_BAD_REQUEST;
        else
            put(b, num, strlen(num));
        break;
    case cJSON_String:
        put_string(b, v->valuestring ? v->valuestring : "");
        break;
    case cJSON_Array:
        put(b, "[", 1);
        for (c = v->child; c != NULL; c = c->next) {
            if (c != v->child)
                put(b, ",", 1);
            put_value(b, c, depth + 1);
        }
        put(b, "]", 1);
        break;
    case cJSON_Object: put_object(b, v, depth); break;
    default: b->err = SIGNER_ERR_BAD_REQUEST;
    }
}

int eng_jcs_serialize(char **out, size_t *len, const cJSON *v)
{
    jbuf b = {NULL, 0, 0, 0};
    *out = NULL;
    if (v == NULL)
        return SIGNER_ERR_BAD_REQUEST;
    put_value(&b, v, 0);
    if (b.err == 0 && b.p == NULL)
        b.err = SIGNER_ERR_INTERNAL;
    if (b.err != 0) {
        if (b.p != NULL)
            eng_wipe(b.p, b.cap);
        free(b.p);
        return b.err;
    }
    *out = b.p;
    if (len != NULL)
        *len = b.len;
    return SIGNER_OK;
}
