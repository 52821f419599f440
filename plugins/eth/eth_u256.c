/*
 * 256-bit unsigned quantities: parsing of hex / decimal digits, exact
 * conversion of an ether amount given as a JSON number (a double) to wei,
 * and minimal big-endian serialisation for RLP.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eth.h"

void eth_u256_set_u64(eth_u256 *r, uint64_t v)
{
    r->w[0] = v;
    r->w[1] = r->w[2] = r->w[3] = 0;
}

int eth_u256_is_zero(const eth_u256 *a)
{
    return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

int eth_u256_cmp(const eth_u256 *a, const eth_u256 *b)
{
    int i;

    for (i = 3; i >= 0; i--) {
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    }
    return 0;
}

int eth_u256_fits_u64(const eth_u256 *a)
{
    return (a->w[1] | a->w[2] | a->w[3]) == 0;
}

/* hi:lo = a * b */
static uint64_t eth_mul64(uint64_t a, uint64_t b, uint64_t *hi)
{
#if defined(__SIZEOF_INT128__)
    unsigned __int128 p = (unsigned __int128)a * b;
    *hi = (uint64_t)(p >> 64);
    return (uint64_t)p;
#else
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
    uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return (mid << 32) | (p00 & 0xffffffffu);
#endif
}

int eth_u256_mul_add(eth_u256 *r, uint64_t m, uint64_t add)
{
    uint64_t carry = add;
    int i;

    for (i = 0; i < 4; i++) {
        uint64_t hi, lo = eth_mul64(r->w[i], m, &hi);
        lo += carry;
        hi += (lo < carry);
        r->w[i] = lo;
        carry = hi;
    }
    return carry == 0;
}

int eth_u256_parse_hex(eth_u256 *r, const char *s, size_t len)
{
    size_t i;

    eth_u256_set_u64(r, 0);
    if (len == 0)
        return ETH_NUM_SYNTAX;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return ETH_NUM_SYNTAX;
        if (r->w[3] >> 60)
            return ETH_NUM_RANGE;
        r->w[3] = r->w[3] << 4 | r->w[2] >> 60;
        r->w[2] = r->w[2] << 4 | r->w[1] >> 60;
        r->w[1] = r->w[1] << 4 | r->w[0] >> 60;
        r->w[0] = r->w[0] << 4 | d;
    }
    return ETH_NUM_OK;
}

int eth_u256_parse_dec(eth_u256 *r, const char *s, size_t len)
{
    size_t i;
    int range = 0;

    eth_u256_set_u64(r, 0);
    if (len == 0)
        return ETH_NUM_SYNTAX;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < '0' || c > '9')
            return ETH_NUM_SYNTAX;
        /* keep scanning after an overflow so syntax errors win */
        if (!range && !eth_u256_mul_add(r, 10, c - '0'))
            range = 1;
    }
    return range ? ETH_NUM_RANGE : ETH_NUM_OK;
}

/* The fast path of eth_u256_from_ether: the decimal with the fewest places
 * (0..15) that reads back as d, m / 10^k, when it is the only one with that
 * many places.  m / 10^k in IEEE arithmetic (m < 2^53 and 10^k exact) is
 * the correctly rounded quotient, which is what strtod gives for the
 * decimal.  Such a decimal has the fewest significant digits of all that
 * read back as d, and below 16 digits there is only one, so its value is
 * the shortest form's.  1 with *r set, or 0 (take the reference path). */
static int eth_from_ether_fast(eth_u256 *r, double d)
{
    static const double p10[16] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                   1e15};
    uint64_t wei = 1; /* 10^(18-k) wei per unit of m */
    int k, e;

    for (k = 0; k < 16; k++) {
        double x = d * p10[k], m;
        if (!(x < 1e15)) /* 16 digits and more: the reference path */
            return 0;
        m = (double)(uint64_t)(x + 0.5); /* x < 2^50: x + 0.5 is exact */
        if (m / p10[k] != d)
            continue;
        if ((m - 1) / p10[k] == d || (m + 1) / p10[k] == d)
            return 0;
        eth_u256_set_u64(r, (uint64_t)m);
        for (e = 18 - k; e > 0; e--) /* 10^18 < 2^64 */
            wei *= 10;
        /* m * 10^(18-k) < 2^113: fits */
        return eth_u256_mul_add(r, wei, 0);
    }
    return 0;
}

int eth_u256_from_ether(eth_u256 *r, double d)
{
    if (isfinite(d) && d > 0 && eth_from_ether_fast(r, d))
        return ETH_NUM_OK;
    return eth_u256_from_ether_shortest(r, d);
}

int eth_u256_from_ether_shortest(eth_u256 *r, double d)
{
    char buf[64];
    const char *p;
    uint64_t mant = 0;
    int ndigits = 0, frac = 0, exp10 = 0, seen_point = 0, prec, lo, hi;
    long e;

    eth_u256_set_u64(r, 0);
    if (!isfinite(d) || d < 0)
        return ETH_NUM_SYNTAX;
    if (d == 0)
        return ETH_NUM_OK;

    /* shortest decimal that reads back as the same double.  Amounts people
     * type are short, so try 1..6 digits in turn; beyond that binary search
     * 7..17: round-tripping is monotonic in the precision (the nearest
     * (p+1)-digit decimal is at least as close to d as the nearest p-digit
     * one) and 17 digits always round-trip. */
    lo = 7;
    hi = 17;
    for (prec = 1; prec < 7; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            lo = hi = 0; /* buf holds it already */
            break;
        }
    }
    while (lo < hi) {
        prec = lo + (hi - lo) / 2;
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            hi = prec;
        else
            lo = prec + 1;
    }
    if (lo != 0)
        snprintf(buf, sizeof buf, "%.*g", lo, d);

    /* buf is [digits][.digits][e[+-]digits]; the point follows the locale
     * of snprintf, so accept ',' as well */
    for (p = buf; *p != '\0' && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.' || *p == ',') {
            seen_point = 1;
            continue;
        }
        if (*p < '0' || *p > '9')
            return ETH_NUM_SYNTAX;
        if (ndigits == 0 && *p == '0') {
            if (seen_point)
                frac++;
            continue;
        }
        if (ndigits >= 19)
            return ETH_NUM_SYNTAX; /* cannot happen with %.17g */
        mant = mant * 10 + (uint64_t)(*p - '0');
        ndigits++;
        if (seen_point)
            frac++;
    }
    if (*p == 'e' || *p == 'E') {
        char *end;
        e = strtol(p + 1, &end, 10);
        if (*end != '\0' || e < -400 || e > 400)
            return ETH_NUM_SYNTAX;
        exp10 = (int)e;
    }
    if (mant == 0)
        return ETH_NUM_OK;
    /* value = mant * 10^(exp10 - frac) ether = mant * 10^(exp10-frac+18) wei */
    exp10 = exp10 - frac + 18;
    while (exp10 < 0 && mant % 10 == 0) {
        mant /= 10;
        exp10++;
    }
    if (exp10 < 0)
        return ETH_NUM_FRACTION;
    eth_u256_set_u64(r, mant);
    while (exp10-- > 0) {
        if (!eth_u256_mul_add(r, 10, 0)) {
            eth_u256_set_u64(r, 0);
            return ETH_NUM_RANGE;
        }
    }
    return ETH_NUM_OK;
}

size_t eth_u256_to_be(unsigned char out[32], const eth_u256 *a)
{
    size_t n = 0;
    int w, b;

    /* most significant non-zero byte first: the top word from its first
     * non-zero byte (counted, not searched), the words below it whole */
    for (w = 3; w >= 0 && a->w[w] == 0; w--)
        ;
    if (w < 0)
        return 0;
    for (b = 7 - __builtin_clzll(a->w[w]) / 8; b >= 0; b--)
        out[n++] = (unsigned char)(a->w[w] >> (8 * b));
    for (w--; w >= 0; w--)
        for (b = 7; b >= 0; b--)
            out[n++] = (unsigned char)(a->w[w] >> (8 * b));
    return n;
}
