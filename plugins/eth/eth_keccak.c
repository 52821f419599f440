/*
 * Keccak-256 as used by Ethereum: Keccak-f[1600], rate 136 bytes, capacity
 * 512 bits, original Keccak padding (0x01 ... 0x80; FIPS 202 SHA3-256 uses
 * 0x06 and gives different digests).
 */
#include <string.h>

#include "eth.h"

static const uint64_t eth_keccak_rc[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
    0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};

#define ROL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* Lane complementing: the permutation keeps the lanes at these positions
 * (x + 5y) inverted.  With that invariant, chi's B[x] ^ (~B[x+1] & B[x+2])
 * can be computed in every lane but one per plane as B[x] ^ (B[x+1] & B[x+2])
 * or B[x] ^ (B[x+1] | B[x+2]) (De Morgan): 5 NOTs per round instead of 25.
 * The set is the one from the Keccak team's implementation overview.
 * Applying it twice restores the lanes. */
static void eth_keccak_complement(uint64_t st[25])
{
    st[1] = ~st[1];
    st[2] = ~st[2];
    st[8] = ~st[8];
    st[12] = ~st[12];
    st[17] = ~st[17];
    st[20] = ~st[20];
}

/* Writes to t one round of Keccak-f[1600] (theta, rho, pi, chi, iota with
 * constant rc) applied to s, both in the complemented representation above.
 * Output lanes are computed one plane (5 lanes) at a time so that only
 * c/d0..4 and b0..4 are live and stay in registers; lanes are read from and
 * written to memory.  The empty asm with a memory clobber (a compiler
 * barrier, no instruction) stops gcc -O2 from carrying all 25 lanes in
 * registers from one round to the next and spilling them (callgrind:
 * ~224 instructions a round with it, ~233 as a non-inlined call, ~288 for
 * the 25-variable version this replaces). */
static inline __attribute__((always_inline)) void
eth_keccak_round(const uint64_t *s, uint64_t *t, uint64_t rc)
{
    uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4, b0, b1, b2, b3, b4;

    __asm__ volatile("" ::: "memory");
    /* theta */
    c0 = s[0] ^ s[5] ^ s[10] ^ s[15] ^ s[20];
    c1 = s[1] ^ s[6] ^ s[11] ^ s[16] ^ s[21];
    c2 = s[2] ^ s[7] ^ s[12] ^ s[17] ^ s[22];
    c3 = s[3] ^ s[8] ^ s[13] ^ s[18] ^ s[23];
    c4 = s[4] ^ s[9] ^ s[14] ^ s[19] ^ s[24];
    d0 = c4 ^ ROL64(c1, 1);
    d1 = c0 ^ ROL64(c2, 1);
    d2 = c1 ^ ROL64(c3, 1);
    d3 = c2 ^ ROL64(c4, 1);
    d4 = c3 ^ ROL64(c0, 1);

    /* rho + pi into plane y of B: B[x, y] = ROT(A'[x + 3y, x], r), then chi
     * (+ iota in lane 0); where a lane needs a NOT it is taken once */
    b0 = s[0] ^ d0;
    b1 = ROL64(s[6] ^ d1, 44);
    b2 = ROL64(s[12] ^ d2, 43);
    b3 = ROL64(s[18] ^ d3, 21);
    b4 = ROL64(s[24] ^ d4, 14);
    t[0] = b0 ^ (b1 | b2) ^ rc;
    t[1] = b1 ^ (~b2 | b3);
    t[2] = b2 ^ (b3 & b4);
    t[3] = b3 ^ (b4 | b0);
    t[4] = b4 ^ (b0 & b1);

    b0 = ROL64(s[3] ^ d3, 28);
    b1 = ROL64(s[9] ^ d4, 20);
    b2 = ROL64(s[10] ^ d0, 3);
    b3 = ROL64(s[16] ^ d1, 45);
    b4 = ROL64(s[22] ^ d2, 61);
    t[5] = b0 ^ (b1 | b2);
    t[6] = b1 ^ (b2 & b3);
    t[7] = b2 ^ (b3 | ~b4);
    t[8] = b3 ^ (b4 | b0);
    t[9] = b4 ^ (b0 & b1);

    b0 = ROL64(s[1] ^ d1, 1);
    b1 = ROL64(s[7] ^ d2, 6);
    b2 = ROL64(s[13] ^ d3, 25);
    b3 = ROL64(s[19] ^ d4, 8);
    b4 = ROL64(s[20] ^ d0, 18);
    t[10] = b0 ^ (b1 | b2);
    t[11] = b1 ^ (b2 & b3);
    b3 = ~b3;
    t[12] = b2 ^ (b3 & b4);
    t[13] = b3 ^ (b4 | b0);
    t[14] = b4 ^ (b0 & b1);

    b0 = ROL64(s[4] ^ d4, 27);
    b1 = ROL64(s[5] ^ d0, 36);
    b2 = ROL64(s[11] ^ d1, 10);
    b3 = ROL64(s[17] ^ d2, 15);
    b4 = ROL64(s[23] ^ d3, 56);
    t[15] = b0 ^ (b1 & b2);
    t[16] = b1 ^ (b2 | b3);
    b3 = ~b3;
    t[17] = b2 ^ (b3 | b4);
    t[18] = b3 ^ (b4 & b0);
    t[19] = b4 ^ (b0 | b1);

    b0 = ROL64(s[2] ^ d2, 62);
    b1 = ROL64(s[8] ^ d3, 55);
    b2 = ROL64(s[14] ^ d4, 39);
    b3 = ROL64(s[15] ^ d0, 41);
    b4 = ROL64(s[21] ^ d1, 2);
    t[24] = b4 ^ (b0 & b1);
    t[23] = b3 ^ (b4 | b0);
    t[22] = b2 ^ (b3 & b4);
    b1 = ~b1;
    t[20] = b0 ^ (b1 & b2);
    t[21] = b1 ^ (b2 | b3);
}

/* Zeroes n lanes through a volatile pointer, so the stores are kept. */
static void eth_keccak_wipe(volatile uint64_t *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        v[i] = 0;
}

/* Keccak-f[1600] on st, lanes indexed x + 5y: 24 rounds, two per
 * iteration (st -> e -> st), so no state is copied between rounds.  e
 * holds intermediate state and is wiped. */
static void eth_keccak_f(uint64_t st[25])
{
    uint64_t e[25];
    int i;

    eth_keccak_complement(st);
    for (i = 0; i < 24; i += 2) {
        eth_keccak_round(st, e, eth_keccak_rc[i]);
        eth_keccak_round(e, st, eth_keccak_rc[i + 1]);
    }
    eth_keccak_complement(st);
    eth_keccak_wipe(e, 25);
}

static uint64_t eth_load64le(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
           (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* Writes v to p[0..8) little-endian (gcc merges the byte stores). */
static void eth_store64le(unsigned char *p, uint64_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
    p[4] = (unsigned char)(v >> 32);
    p[5] = (unsigned char)(v >> 40);
    p[6] = (unsigned char)(v >> 48);
    p[7] = (unsigned char)(v >> 56);
}

void eth_keccak_init(eth_keccak *k)
{
    memset(k, 0, sizeof *k);
}

void eth_keccak_update(eth_keccak *k, const void *in, size_t len)
{
    const unsigned char *p = in;

    /* a lane (8 bytes) at a time wherever the position is lane-aligned,
     * else a byte; the rate (136) is a whole number of lanes */
    while (len > 0) {
        if ((k->pos & 7) == 0 && len >= 8) {
            k->st[k->pos >> 3] ^= eth_load64le(p);
            p += 8;
            len -= 8;
            k->pos += 8;
        } else {
            k->st[k->pos >> 3] ^= (uint64_t)*p++ << (8 * (k->pos & 7));
            len--;
            k->pos++;
        }
        if (k->pos == ETH_KECCAK_RATE) {
            eth_keccak_f(k->st);
            k->pos = 0;
        }
    }
}

void eth_keccak_final(eth_keccak *k, unsigned char out[32])
{
    size_t i;

    k->st[k->pos >> 3] ^= (uint64_t)0x01 << (8 * (k->pos & 7));
    k->st[(ETH_KECCAK_RATE - 1) >> 3] ^= (uint64_t)0x80
                                         << (8 * ((ETH_KECCAK_RATE - 1) & 7));
    eth_keccak_f(k->st);
    for (i = 0; i < 4; i++)
        eth_store64le(out + 8 * i, k->st[i]);
    /* the state may have absorbed a secret-derived message: wipe it */
    eth_keccak_wipe(k->st, 25);
    k->pos = 0;
}

void eth_keccak256(unsigned char out[32], const void *in, size_t len)
{
    eth_keccak k;

    eth_keccak_init(&k);
    eth_keccak_update(&k, in, len);
    eth_keccak_final(&k, out);
}
