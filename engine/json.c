#include "config.h"
#include "json.h"

#include <float.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <signer/plugin.h>

#include "util.h"

/* ---- UTF-8 ------------------------------------------------------------------ */

size_t eng_utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], cp;
        size_t n, k;
        if (c < 0x80) { /* ASCII: skip eight bytes at a time */
            uint64_t w;
            i++;
            while (i + 8 <= len &&
                   (memcpy(&w, s + i, 8), (w & 0x8080808080808080ull) == 0))
                i += 8;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        for (k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return len;
}

int eng_utf8_valid(const unsigned char *s, size_t len)
{
    return eng_utf8_check(s, len) == len;
}

/* ---- parser ------------------------------------------------------------------- */

const unsigned char eng_json_special[256] = {
    [0] = 1, [1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = 1, [6] = 1, [7] = 1,
    [8] = 1, [9] = 1, [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1, [15]
    = 1, [16] = 1, [17] = 1, [18] = 1, [19] = 1, [20] = 1, [21] = 1, [22] =
    1, [23] = 1, [24] = 1, [25] = 1, [26] = 1, [27] = 1, [28] = 1, [29] = 1,
    [30] = 1, [31] = 1, ['"'] = 1, ['\\'] = 1};

/* The flags (high bit of each byte) of the bytes of w a JSON string cannot
 * hold as they are: below 0x20, '"' or backslash.  The lowest flag is
 * exact (borrows only move up), so it marks the first such byte. */
static uint64_t special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) |
            ((b - ones) & ~b)) &
           (ones << 7);
}

#ifdef __SSE2__
/* The bits (one per byte) of the bytes s[0..16) a JSON string cannot hold
 * as they are: x <= 0x1f unsigned is min(x, 0x1f) == x. */
static unsigned special_mask16(const char *s)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i c = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    c = _mm_or_si128(c, _mm_cmpeq_epi8(x, _mm_set1_epi8('"')));
    c = _mm_or_si128(c, _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
    return (unsigned)_mm_movemask_epi8(c);
}
#endif

size_t eng_json_plain_run(const char *s, size_t len)
{
    uint64_t w, m;
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    while (i < len && !eng_json_special[(unsigned char)s[i]])
        i++;
    return i;
#endif
#ifdef __SSE2__
    for (; i + 16 <= len; i += 16) { /* sixteen bytes at a time */
        unsigned k = special_mask16(s + i);
        if (k != 0)
            return i + (size_t)__builtin_ctz(k);
    }
#endif
    for (; i + 8 <= len; i += 8) { /* eight bytes at a time */
        memcpy(&w, s + i, 8);
        if ((m = special_bytes(w)) != 0)
            return i + (size_t)__builtin_ctzll(m) / 8;
    }
    if (i == len)
        return len;
    w = 0x4141414141414141ull; /* the tail, padded with plain 'A's */
    memcpy(&w, s + i, len - i);
    m = special_bytes(w);
    return m != 0 ? i + (size_t)__builtin_ctzll(m) / 8 : len;
}

size_t eng_json_escape(char *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const char *end = s + len;
    size_t n = 0, run;
    for (;;) {
        const char *e = NULL;
        unsigned char c;
        /* a run of characters printed as they are */
        run = eng_json_plain_run(s, (size_t)(end - s));
        if (o != NULL)
            memcpy(o + n, s, run);
        n += run;
        s += run;
        if (s == end)
            return n;
        switch (c = (unsigned char)*s++) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default: break;
        }
        if (e != NULL) {
            if (o != NULL)
                memcpy(o + n, e, 2);
            n += 2;
            continue;
        }
        if (o != NULL) {
            memcpy(o + n, "\\u00", 4);
            o[n + 4] = hex[c >> 4];
            o[n + 5] = hex[c & 15];
        }
        n += 6;
    }
}

typedef struct parser {
    const char *b;
    size_t len, pos;
    int depth, max_depth;
    eng_json_error *err;
    eng_json_span *capture;
    const char *member; /* name of the member being parsed, for messages */
} parser;

static int fail(parser *p, size_t at, const char *fmt, ...)
    SIGNER_PRINTF(3, 4);

/* ---- request memory: the arena while a request scope is open (util.h),
 * else malloc (cJSON frees it through the same allocator) ---- */

static void *req_alloc(size_t n)
{
    void *q = eng_arena_alloc(n);
    return q != NULL ? q : malloc(n);
}

/* Releases a block of req_alloc: wiped (whole) and freed, or left to the
 * arena, which wipes it when the request ends. */
static void req_drop(void *q)
{
    if (q == NULL || eng_arena_owns(q))
        return;
    eng_wipe(q, malloc_usable_size(q)); /* sized without reading it */
    free(q);
}

/* A fresh node of one type (what cJSON_Create* give). */
static cJSON *new_node(int type)
{
    cJSON *n = req_alloc(sizeof *n);
    if (n != NULL) {
        memset(n, 0, sizeof *n);
        n->type = type;
    }
    return n;
}

static int fail(parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    p->err->offset = at;
    va_start(ap, fmt);
    vsnprintf(p->err->cause, sizeof p->err->cause, fmt, ap);
    va_end(ap);
    return SIGNER_ERR_BAD_REQUEST;
}

static inline void skip_ws(parser *p)
{
    if (p->pos < p->len && (unsigned char)p->b[p->pos] > ' ')
        return; /* the common case: no whitespace at all */
    while (p->pos < p->len &&
           (p->b[p->pos] == ' ' || p->b[p->pos] == '\t' ||
            p->b[p->pos] == '\n' || p->b[p->pos] == '\r'))
        p->pos++;
}

static int peek(const parser *p)
{
    return p->pos < p->len ? (unsigned char)p->b[p->pos] : -1;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A \u escape at p->pos (after the backslash and 'u'), surrogate pairs
 * joined.  Writes UTF-8 into o, returns bytes written or -1. */
static int unicode_escape(parser *p, char *o, size_t *n)
{
    size_t at = p->pos - 2;
    unsigned cp, lo;
    if (p->pos + 4 > p->len || hex4(p->b + p->pos, &cp) < 0)
        return fail(p, at, "\\u needs four hex digits");
    p->pos += 4;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(p, at, "lone low surrogate \\u%04x", cp);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (p->pos + 6 > p->len || p->b[p->pos] != '\\' ||
            p->b[p->pos + 1] != 'u' || hex4(p->b + p->pos + 2, &lo) < 0 ||
            lo < 0xdc00 || lo > 0xdfff)
            return fail(p, at, "lone high surrogate \\u%04x", cp);
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0)
        return fail(p, at, "string contains a NUL character (\\u0000)");
    *n = put_utf8(o, cp);
    return SIGNER_OK;
}

/* One escape after a backslash. */
static int escape(parser *p, char *o, size_t *n)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k;
    int c = peek(p);
    if (c < 0)
        return fail(p, p->pos, "unterminated string");
    p->pos++;
    if (c == 'u')
        return unicode_escape(p, o, n);
    if (c == 0 || (k = strchr(from, c)) == NULL)
        return fail(p, p->pos - 2, "invalid escape \\%c",
                    c >= 0x20 && c < 0x7f ? c : '?');
    *o = to[k - from];
    *n = 1;
    return SIGNER_OK;
}

/* A string at p->pos (the opening quote), decoded into a malloc'd buffer
 * (wipe before freeing). */
static int string_value(parser *p, char **out, size_t *out_len)
{
    size_t start = p->pos++, cap, n = 0, k = 0;
    char *o;
    int rc, verbatim = 1;
    /* Decoded text is never longer than the source.  A run of plain
     * characters first (most strings are nothing else). */
    cap = p->pos + eng_json_plain_run(p->b + p->pos, p->len - p->pos);
    for (; cap < p->len && p->b[cap] != '"'; cap++) {
        if ((unsigned char)p->b[cap] < 0x20)
            verbatim = 0;
        if (p->b[cap] == '\\') {
            verbatim = 0;
            cap++;
        }
    }
    if ((o = req_alloc(cap - p->pos + 1)) == NULL)
        return SIGNER_ERR_NOMEM;
    if (verbatim && cap < p->len) { /* no escape, no control: one copy */
        n = cap - p->pos;
        memcpy(o, p->b + p->pos, n);
        o[n] = '\0';
        p->pos = cap + 1;
        *out = o;
        *out_len = n;
        return SIGNER_OK;
    }
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            rc = fail(p, start, "unterminated string");
            break;
        }
        if (c == '"') {
            p->pos++;
            o[n] = '\0';
            *out = o;
            *out_len = n;
            return SIGNER_OK;
        }
        if (c < 0x20) {
            rc = fail(p, p->pos, "raw control character 0x%02x in a string",
                      (unsigned)c);
            break;
        }
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        if ((rc = escape(p, o + n, &k)) != SIGNER_OK)
            break;
        n += k;
    }
    req_drop(o);
    return rc;
}

/* A number's text as number_span reads it: its significant digits m
 * (exact while there are at most 19 of them), how many there are, and the
 * decimal exponent (exp_big when its written part passes 100000). */
typedef struct num_parts {
    uint64_t m;
    int digits;
    int exp_big;
    long e;
} num_parts;

/* The digits from b[i] into np (frac: after the point, each one lowers the
 * exponent); returns the index after them. */
static size_t digits_into(const char *b, size_t i, size_t len, num_parts *np,
                          int frac)
{
    for (; i < len && b[i] >= '0' && b[i] <= '9'; i++) {
        np->m = np->m * 10 + (uint64_t)(b[i] - '0');
        np->digits += np->m != 0;
        np->e -= frac;
    }
    return i;
}

/* RFC 8259 number grammar, read once: the end offset and the parts, or
 * fails. */
static int number_span(parser *p, size_t *end, num_parts *np)
{
    size_t i = p->pos;
    const char *b = p->b;
    long x = 0;
    int neg = 0;
    memset(np, 0, sizeof *np);
    if (i < p->len && b[i] == '-')
        i++;
    if (i >= p->len || b[i] < '0' || b[i] > '9')
        return fail(p, i, "a digit expected");
    if (b[i] == '0' && i + 1 < p->len && b[i + 1] >= '0' && b[i + 1] <= '9')
        return fail(p, i, "leading zero in a number");
    i = digits_into(b, i, p->len, np, 0);
    if (i < p->len && b[i] == '.') {
        if (++i >= p->len || b[i] < '0' || b[i] > '9')
            return fail(p, i, "a digit expected after '.'");
        i = digits_into(b, i, p->len, np, 1);
    }
    if (i < p->len && (b[i] == 'e' || b[i] == 'E')) {
        if (++i < p->len && (b[i] == '+' || b[i] == '-'))
            neg = b[i++] == '-';
        if (i >= p->len || b[i] < '0' || b[i] > '9')
            return fail(p, i, "a digit expected in the exponent");
        for (; i < p->len && b[i] >= '0' && b[i] <= '9'; i++) {
            if (x < 100000)
                x = x * 10 + (b[i] - '0');
            else
                np->exp_big = 1;
        }
        np->e += neg ? -x : x;
    }
    *end = i;
    return SIGNER_OK;
}

/* Names the member a refused number belongs to ("... in \"nonce\""). */
static int in_member(parser *p, int rc)
{
    size_t n = strlen(p->err->cause);
    if (rc == SIGNER_ERR_BAD_REQUEST && p->member != NULL)
        snprintf(p->err->cause + n, sizeof p->err->cause - n, " in \"%.32s\"",
                 p->member);
    return rc;
}

/* Clinger's fast path: a number of at most 15 significant digits m and
 * a decimal exponent e with |e| <= 22 is m * 10^e or m / 10^-e, both
 * factors exact doubles, so the one IEEE operation rounds correctly:
 * strtod's result.  1 when taken. */
static int number_fast(const num_parts *np, int negative, double *d)
{
    static const double pow10[] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
    return 0; /* extended precision would round twice */
#endif
    if (np->digits > 15 || np->exp_big || np->e < -22 || np->e > 22)
        return 0; /* m may not even fit: strtod */
    *d = np->e < 0 ? (double)np->m / pow10[-np->e]
                   : (double)np->m * pow10[np->e];
    if (negative)
        *d = -*d;
    return 1;
}

/* The double of the number text b[0..n) (a valid RFC 8259 number, read
 * into np): number_fast, else strtod on a copy (on the stack when
 * short). */
static int number_double(const char *b, size_t n, const num_parts *np,
                         double *d)
{
    char stack[64], *text = stack;
    if (number_fast(np, b[0] == '-', d))
        return SIGNER_OK;
    if (n >= sizeof stack && (text = malloc(n + 1)) == NULL)
        return SIGNER_ERR_NOMEM;
    memcpy(text, b, n);
    text[n] = '\0';
    *d = strtod(text, NULL);
    if (text != stack)
        free(text);
    return SIGNER_OK;
}

static int number_value(parser *p, cJSON **out)
{
    size_t end = 0, start = p->pos;
    num_parts np;
    int rc;
    double d;
    if ((rc = number_span(p, &end, &np)) != SIGNER_OK)
        return in_member(p, rc);
    if ((rc = number_double(p->b + start, end - start, &np, &d)) !=
        SIGNER_OK)
        return rc;
    if (isinf(d))
        return in_member(p, fail(p, start, "number overflows a double"));
    if (d == 0 && np.digits > 0) /* a non-zero digit read as zero */
        return in_member(p, fail(p, start, "number underflows a double"));
    p->pos = end;
    if ((*out = new_node(cJSON_Number)) == NULL)
        return SIGNER_ERR_NOMEM;
    /* valueint as cJSON_CreateNumber sets it: saturated */
    (*out)->valuedouble = d;
    (*out)->valueint = d >= INT_MAX   ? INT_MAX
                       : d <= INT_MIN ? INT_MIN
                                      : (int)d;
    return SIGNER_OK;
}

static int literal(parser *p, const char *word, int type, cJSON **out)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->b + p->pos, word, n) != 0)
        return fail(p, p->pos, "unexpected character");
    p->pos += n;
    *out = new_node(type);
    return *out != NULL ? SIGNER_OK : SIGNER_ERR_NOMEM;
}

static int value(parser *p, cJSON **out);

/* Appends item to c's children as cJSON_AddItemToArray does (the first
 * child's prev is the last child). */
static void link_child(cJSON *c, cJSON *item)
{
    cJSON *first = c->child;
    item->next = NULL;
    if (first == NULL) {
        c->child = item;
        item->prev = item;
        return;
    }
    first->prev->next = item;
    item->prev = first->prev;
    first->prev = item;
}

static int array_value(parser *p, cJSON **out)
{
    cJSON *arr = new_node(cJSON_Array), *item = NULL;
    int rc = SIGNER_OK;
    if (arr == NULL)
        return SIGNER_ERR_NOMEM;
    p->pos++;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        *out = arr;
        return SIGNER_OK;
    }
    for (;;) {
        if ((rc = value(p, &item)) != SIGNER_OK)
            break;
        link_child(arr, item);
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) == ']') {
            p->pos++;
            *out = arr;
            return SIGNER_OK;
        }
        rc = fail(p, p->pos, peek(p) < 0 ? "unexpected end of input"
                                         : "',' or ']' expected");
        break;
    }
    eng_json_free(arr);
    return rc;
}

/* Member names seen in one object, for the duplicate check. */
typedef struct seen_name {
    const char *name;
    size_t at;
} seen_name;

static int cmp_seen(const void *x, const void *y)
{
    const seen_name *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->at < b->at ? -1 : 1);
}

/* Refuses an object with two members of the same (decoded) name: the
 * smallest such name (strcmp order), at its second occurrence.  Small
 * objects (every request's) by pairs, without allocating; larger ones
 * sorted. */
#define SMALL_OBJECT 16
static int check_duplicates(parser *p, const cJSON *obj, const size_t *at,
                            size_t n)
{
    const char *names[SMALL_OBJECT], *best = NULL;
    size_t i, j, best_at = 0;
    const cJSON *c;
    seen_name *s;
    int rc = SIGNER_OK;
    if (n < 2)
        return SIGNER_OK;
    if (n <= SMALL_OBJECT) {
        for (i = 0, c = obj->child; c != NULL && i < n; c = c->next, i++)
            names[i] = c->string;
        for (j = 1; j < n; j++)
            for (i = 0; i < j; i++)
                if (names[i][0] == names[j][0] && /* most differ here */
                    strcmp(names[i], names[j]) == 0) {
                    if (best == NULL || strcmp(names[j], best) < 0) {
                        best = names[j];
                        best_at = at[j];
                    }
                    break;
                }
        return best == NULL ? SIGNER_OK
                            : fail(p, best_at, "duplicate member \"%.40s\"",
                                   best);
    }
    if ((s = malloc(n * sizeof *s)) == NULL)
        return SIGNER_ERR_NOMEM;
    for (i = 0, c = obj->child; c != NULL && i < n; c = c->next, i++) {
        s[i].name = c->string;
        s[i].at = at[i];
    }
    qsort(s, n, sizeof *s, cmp_seen);
    for (i = 1; i < n && rc == SIGNER_OK; i++)
        if (strcmp(s[i - 1].name, s[i].name) == 0)
            rc = fail(p, s[i].at, "duplicate member \"%.40s\"", s[i].name);
    free(s);
    return rc;
}

/* Records where each member name starts: in the caller's stack array
 * (SMALL_OBJECT entries) first, then grown on the heap. */
static int note_at(size_t **at, size_t *cap, size_t n, size_t pos,
                   size_t *stack)
{
    if (n == *cap) {
        size_t c = *cap * 2;
        size_t *q = *at == stack ? malloc(c * sizeof *q)
                                 : realloc(*at, c * sizeof *q);
        if (q == NULL)
            return SIGNER_ERR_NOMEM;
        if (*at == stack)
            memcpy(q, stack, n * sizeof *q);
        *at = q;
        *cap = c;
    }
    (*at)[n] = pos;
    return SIGNER_OK;
}

/* One "name": value member into obj. */
static int member(parser *p, cJSON *obj)
{
    char *name = NULL;
    const char *saved;
    size_t nlen = 0, vstart;
    cJSON *item = NULL;
    int rc;
    if (peek(p) != '"')
        return fail(p, p->pos, peek(p) < 0 ? "unexpected end of input"
                                           : "a member name expected");
    if ((rc = string_value(p, &name, &nlen)) != SIGNER_OK)
        return rc;
    skip_ws(p);
    if (peek(p) != ':') {
        rc = fail(p, p->pos, "':' expected");
        goto cleanup;
    }
    p->pos++;
    skip_ws(p);
    vstart = p->pos;
    saved = p->member;
    p->member = name;
    rc = value(p, &item);
    p->member = saved;
    if (rc != SIGNER_OK)
        goto cleanup;
    if (p->depth == 1 && p->capture != NULL && p->capture->name != NULL &&
        strcmp(name, p->capture->name) == 0) {
        p->capture->text = p->b + vstart;
        p->capture->len = p->pos - vstart;
    }
    /* the decoded name becomes the member's (freed by cJSON_Delete through
     * the same allocator): no copy */
    item->string = name;
    name = NULL;
    link_child(obj, item);
    item = NULL;
cleanup:
    req_drop(name);
    eng_json_free(item);
    return rc;
}

static int object_value(parser *p, cJSON **out)
{
    cJSON *obj = new_node(cJSON_Object);
    size_t stack[SMALL_OBJECT], *at = stack, cap = SMALL_OBJECT, n = 0;
    int rc = SIGNER_OK;
    if (obj == NULL)
        return SIGNER_ERR_NOMEM;
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        *out = obj;
        return SIGNER_OK;
    }
    for (;;) {
        if ((rc = note_at(&at, &cap, n, p->pos, stack)) != SIGNER_OK ||
            (rc = member(p, obj)) != SIGNER_OK)
            break;
        n++;
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (peek(p) == '}') {
            p->pos++;
            if ((rc = check_duplicates(p, obj, at, n)) == SIGNER_OK) {
                if (at != stack)
                    free(at);
                *out = obj;
                return SIGNER_OK;
            }
            break;
        }
        rc = fail(p, p->pos, peek(p) < 0 ? "unexpected end of input"
                                         : "',' or '}' expected");
        break;
    }
    if (at != stack)
        free(at);
    eng_json_free(obj);
    return rc;
}

/* A string node that takes the decoded buffer itself (cJSON frees it
 * through the same allocator): no copy. */
static int string_node(parser *p, cJSON **out)
{
    char *s = NULL;
    size_t n = 0;
    int rc = string_value(p, &s, &n);
    if (rc != SIGNER_OK)
        return rc;
    if ((*out = new_node(cJSON_String)) == NULL) {
        req_drop(s);
        return SIGNER_ERR_NOMEM;
    }
    (*out)->valuestring = s;
    return SIGNER_OK;
}

static int value(parser *p, cJSON **out)
{
    int c, rc;
    *out = NULL;
    skip_ws(p);
    c = peek(p);
    if (c == '{' || c == '[') {
        if (++p->depth > p->max_depth)
            return fail(p, p->pos, "JSON nested deeper than %d levels",
                        p->max_depth);
        rc = c == '{' ? object_value(p, out) : array_value(p, out);
        p->depth--;
        return rc;
    }
    if (c == '"')
        return string_node(p, out);
    if (c == '-' || (c >= '0' && c <= '9'))
        return number_value(p, out);
    if (c == 't')
        return literal(p, "true", cJSON_True, out);
    if (c == 'f')
        return literal(p, "false", cJSON_False, out);
    if (c == 'n')
        return literal(p, "null", cJSON_NULL, out);
    if (c < 0)
        return fail(p, p->pos, "unexpected end of input");
    return fail(p, p->pos, "unexpected character '%c'",
                c >= 0x20 && c < 0x7f ? c : '?');
}

int eng_json_parse(cJSON **out, eng_json_span *capture, const char *buf,
                   size_t len, int max_depth, eng_json_error *err)
{
    parser p;
    size_t bad;
    const char *nul;
    int rc;
    *out = NULL;
    memset(&p, 0, sizeof p);
    p.b = buf;
    p.len = len;
    p.max_depth = max_depth;
    p.err = err;
    p.capture = capture;
    if (capture != NULL) {
        capture->text = NULL;
        capture->len = 0;
    }
    if ((nul = memchr(buf, 0, len)) != NULL)
        return fail(&p, (size_t)(nul - buf), "contains a NUL character");
    if ((bad = eng_utf8_check((const unsigned char *)buf, len)) != len)
        return fail(&p, bad, "not valid UTF-8");
    if ((rc = value(&p, out)) != SIGNER_OK)
        return rc;
    skip_ws(&p);
    if (p.pos != len) {
        eng_json_free(*out);
        *out = NULL;
        return fail(&p, p.pos, "trailing data after the JSON value");
    }
    return SIGNER_OK;
}

cJSON *eng_json_get(const cJSON *obj, const char *name)
{
    const cJSON *c;
    if (obj == NULL || name == NULL)
        return NULL;
    for (c = obj->child; c != NULL; c = c->next)
        if (c->string != NULL && c->string[0] == name[0] && /* most differ */
            strcmp(c->string, name) == 0)
            return (cJSON *)c;
    return NULL;
}

cJSON *eng_json_string_member(const char *name, const char *value)
{
    size_t kn = strlen(name) + 1, vn = strlen(value) + 1;
    cJSON *n = new_node(cJSON_String);
    if (n == NULL)
        return NULL;
    if ((n->string = req_alloc(kn)) == NULL ||
        (n->valuestring = req_alloc(vn)) == NULL) {
        eng_json_free(n);
        return NULL;
    }
    memcpy(n->string, name, kn);
    memcpy(n->valuestring, value, vn);
    return n;
}

/* ---- the one release path -------------------------------------------------- */

/* What cJSON_Delete does (v and the siblings after it, children first;
 * references and constant names are not ours), with every string, member
 * name and number wiped before its block is freed: whole blocks, sized
 * without reading them, so no branch on secrets.  Blocks in the request
 * arena are left to it (wiped when the request ends).  The parser bounds
 * the depth. */
void eng_json_free(cJSON *v)
{
    cJSON *next;
    for (; v != NULL; v = next) {
        next = v->next;
        if (!(v->type & cJSON_IsReference)) {
            eng_json_free(v->child);
            req_drop(v->valuestring);
        }
        if (!(v->type & cJSON_StringIsConst))
            req_drop(v->string);
        req_drop(v); /* the number with it */
    }
}
