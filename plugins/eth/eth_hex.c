/*
 * Hex codec.  Decoding is branch-free per character (libsodium's
 * sodium_hex2bin arithmetic) so that secret keys can be decoded without
 * secret-dependent branches or table lookups.
 */
#include <stdint.h>
#include <string.h>

#include "eth.h"

/* The two lowercase digits of every byte value (public data only: the
 * index is the byte). */
#define H4(x) #x "0" #x "1" #x "2" #x "3" #x "4" #x "5" #x "6" #x "7" \
              #x "8" #x "9" #x "a" #x "b" #x "c" #x "d" #x "e" #x "f"
static const char hex_pairs[513] =
    H4(0) H4(1) H4(2) H4(3) H4(4) H4(5) H4(6) H4(7)
    H4(8) H4(9) H4(a) H4(b) H4(c) H4(d) H4(e) H4(f);
#undef H4

/* The 8 hex digits of the 4 bytes at in, in order: each byte spread into
 * two lanes of a word (high nibble first), then every lane turned into
 * its digit at once ('0' + n, plus 39 when n > 9). */
static uint64_t hex_word(const unsigned char *in)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint32_t v;
    uint64_t y, n;

    memcpy(&v, in, 4);
    y = v;
    y = (y | y << 16) & 0x0000ffff0000ffffull;
    y = (y | y << 8) & 0x00ff00ff00ff00ffull; /* b0 0 b1 0 b2 0 b3 0 */
    n = ((y >> 4) & 0x0f0f0f0f0f0f0f0full) | (y & 0x000f000f000f000full) << 8;
    return n + ones * '0' + (((n + ones * 6) >> 4) & ones) * 39;
}

void eth_hex_raw(char *out, const unsigned char *in, size_t len)
{
    size_t i = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 4 <= len; i += 4) {
        uint64_t w = hex_word(in + i);
        memcpy(out + 2 * i, &w, 8);
    }
#endif
    for (; i < len; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * in[i], 2);
}

size_t eth_hex_encode(char *out, const unsigned char *in, size_t len)
{
    out[0] = '0';
    out[1] = 'x';
    eth_hex_raw(out + 2, in, len);
    out[2 + 2 * len] = '\0';
    return 2 + 2 * len;
}

/* Value of hex digit c in the low 4 bits, and *ok &= 0xff if c is a digit
 * (0 otherwise).  No branches, no table. */
static unsigned eth_hex_nibble(unsigned char c, unsigned char *ok)
{
    unsigned char num = (unsigned char)(c ^ 48u);
    unsigned char num0 = (unsigned char)((num - 10u) >> 8);
    unsigned char alpha = (unsigned char)((c & ~32u) - 55u);
    unsigned char alpha0 =
        (unsigned char)(((alpha - 10u) ^ (alpha - 16u)) >> 8);

    *ok &= (unsigned char)(num0 | alpha0);
    return (unsigned)((num0 & num) | (alpha0 & alpha)) & 15u;
}

int eth_hex_decode(unsigned char *out, const char *hex, size_t hexlen)
{
    unsigned char ok = 0xff;
    size_t i;

    if (hexlen % 2 != 0)
        return 0;
    for (i = 0; i < hexlen / 2; i++) {
        unsigned char okc = 0xff;
        unsigned hi = eth_hex_nibble((unsigned char)hex[2 * i], &okc);
        unsigned char okd = 0xff;
        unsigned lo = eth_hex_nibble((unsigned char)hex[2 * i + 1], &okd);
        ok &= (unsigned char)(okc & okd);
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    ETH_DECLASSIFY(&ok, sizeof ok); /* the verdict is public */
    if (ok != 0xff) {
        volatile unsigned char *v = out;
        for (i = 0; i < hexlen / 2; i++)
            v[i] = 0;
        return 0;
    }
    return 1;
}

int eth_hex_decode_public(unsigned char *out, const char *hex, size_t hexlen)
{
    /* nibble + 1 of each hex digit, 0 for any other byte */
    static const unsigned char nib[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6']
    = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] =
    13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] =
    13, ['D'] = 14, ['E'] = 15, ['F'] = 16};
    unsigned char bad = 0;
    size_t i;

    if (hexlen % 2 != 0)
        return 0;
    for (i = 0; i < hexlen / 2; i++) {
        unsigned hi = nib[(unsigned char)hex[2 * i]];
        unsigned lo = nib[(unsigned char)hex[2 * i + 1]];
        bad |= (unsigned char)(hi == 0 || lo == 0);
        out[i] = (unsigned char)((hi - 1) << 4 | ((lo - 1) & 15));
    }
    if (bad) {
        memset(out, 0, hexlen / 2);
        return 0;
    }
    return 1;
}

int eth_hex_has_prefix(const char *s, size_t len)
{
    return len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

int eth_hex_is_digits(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char ok = 0xff;
        (void)eth_hex_nibble((unsigned char)s[i], &ok);
        if (ok != 0xff)
            return 0;
    }
    return 1;
}
