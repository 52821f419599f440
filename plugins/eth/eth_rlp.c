/*
 * Canonical RLP encoding (Ethereum Yellow Paper, appendix B) into a buffer
 * that lives on the caller's stack until it outgrows it.
 *
 * Lists are written items first; eth_rlp_list_end() then moves the items up
 * by the header length.  Each byte is moved once per enclosing list, so the
 * cost is linear in the output for a fixed nesting depth (transactions nest
 * at most three deep).
 */
#include <stdlib.h>
#include <string.h>

#include "eth.h"

void eth_buf_init(eth_buf *b, unsigned char *stack, size_t cap)
{
    b->p = stack;
    b->len = 0;
    b->cap = cap;
    b->heap = NULL;
    b->oom = 0;
}

void eth_buf_cleanup(eth_buf *b)
{
    free(b->heap);
    b->heap = NULL;
    b->p = NULL;
    b->len = b->cap = 0;
}

unsigned char *eth_buf_reserve(eth_buf *b, size_t n)
{
    size_t cap;
    unsigned char *np;

    if (b->oom)
        return NULL;
    if (n <= b->cap - b->len)
        return b->p + b->len;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return NULL;
    }
    cap = b->cap * 2;
    if (cap < b->len + n)
        cap = b->len + n;
    if (cap < 256)
        cap = 256;
    if (b->heap != NULL) {
        np = realloc(b->heap, cap);
    } else {
        np = malloc(cap);
        if (np != NULL && b->len > 0)
            memcpy(np, b->p, b->len);
    }
    if (np == NULL) {
        b->oom = 1;
        return NULL;
    }
    b->heap = b->p = np;
    b->cap = cap;
    return b->p + b->len;
}

int eth_buf_append(eth_buf *b, const void *in, size_t n)
{
    unsigned char *w = eth_buf_reserve(b, n);

    if (w == NULL)
        return 0;
    if (n > 0)
        memcpy(w, in, n);
    b->len += n;
    return 1;
}

size_t eth_rlp_header(unsigned char out[9], unsigned base, size_t len)
{
    size_t n = 0, i;
    size_t t;

    if (len < 56) {
        out[0] = (unsigned char)(base + len);
        return 1;
    }
    for (t = len; t > 0; t >>= 8)
        n++;
    out[0] = (unsigned char)(base + 55 + n);
    for (i = 0; i < n; i++)
        out[n - i] = (unsigned char)(len >> (8 * i));
    return n + 1;
}

int eth_rlp_bytes(eth_buf *b, const unsigned char *s, size_t len)
{
    unsigned char hdr[9];
    size_t h;
    unsigned char *w;

    if (len == 1 && s[0] < 0x80)
        return eth_buf_append(b, s, 1);
    h = eth_rlp_header(hdr, 0x80, len);
    w = eth_buf_reserve(b, h + len);
    if (w == NULL)
        return 0;
    memcpy(w, hdr, h);
    if (len > 0)
        memcpy(w + h, s, len);
    b->len += h + len;
    return 1;
}

int eth_rlp_u256(eth_buf *b, const eth_u256 *v)
{
    unsigned char be[32];
    size_t n = eth_u256_to_be(be, v);

    return eth_rlp_bytes(b, be, n);
}

int eth_rlp_u64(eth_buf *b, uint64_t v)
{
    eth_u256 u;

    eth_u256_set_u64(&u, v);
    return eth_rlp_u256(b, &u);
}

int eth_rlp_hex(eth_buf *b, const char *hex, size_t hexlen)
{
    unsigned char hdr[9];
    size_t n = hexlen / 2, h;
    unsigned char *w;

    if (hexlen % 2 != 0)
        return 0;
    if (n == 1) {
        unsigned char one;
        if (!eth_hex_decode(&one, hex, 2))
            return 0;
        return eth_rlp_bytes(b, &one, 1);
    }
    h = eth_rlp_header(hdr, 0x80, n);
    w = eth_buf_reserve(b, h + n);
    if (w == NULL)
        return 0;
    memcpy(w, hdr, h);
    if (!eth_hex_decode(w + h, hex, hexlen))
        return 0;
    b->len += h + n;
    return 1;
}

size_t eth_rlp_list_begin(const eth_buf *b)
{
    return b->len;
}

int eth_rlp_list_end(eth_buf *b, size_t start)
{
    unsigned char hdr[9];
    size_t plen = b->len - start;
    size_t h = eth_rlp_header(hdr, 0xc0, plen);

    if (eth_buf_reserve(b, h) == NULL)
        return 0;
    memmove(b->p + start + h, b->p + start, plen);
    memcpy(b->p + start, hdr, h);
    b->len += h;
    return 1;
}
