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

/* Keccak-f[1600] on st, lanes indexed x + 5y.  Rho and pi are written out
 * so that every rotation is by a constant. */
static void eth_keccak_f(uint64_t st[25])
{
    uint64_t a00 = st[0], a01 = st[1], a02 = st[2], a03 = st[3], a04 = st[4];
    uint64_t a05 = st[5], a06 = st[6], a07 = st[7], a08 = st[8], a09 = st[9];
    uint64_t a10 = st[10], a11 = st[11], a12 = st[12], a13 = st[13];
    uint64_t a14 = st[14], a15 = st[15], a16 = st[16], a17 = st[17];
    uint64_t a18 = st[18], a19 = st[19], a20 = st[20], a21 = st[21];
    uint64_t a22 = st[22], a23 = st[23], a24 = st[24];
    int round;

    for (round = 0; round < 24; round++) {
        uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
        uint64_t b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11,
            b12, b13, b14, b15, b16, b17, b18, b19, b20, b21, b22, b23, b24;

        /* theta */
        c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20;
        c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21;
        c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22;
        c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23;
        c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);

        /* rho + pi: B[y, 2x+3y] = ROT(A[x, y] ^ D[x], r[x, y]) */
        b00 = a00 ^ d0;
        b10 = ROL64(a01 ^ d1, 1);
        b20 = ROL64(a02 ^ d2, 62);
        b05 = ROL64(a03 ^ d3, 28);
        b15 = ROL64(a04 ^ d4, 27);
        b16 = ROL64(a05 ^ d0, 36);
        b01 = ROL64(a06 ^ d1, 44);
        b11 = ROL64(a07 ^ d2, 6);
        b21 = ROL64(a08 ^ d3, 55);
        b06 = ROL64(a09 ^ d4, 20);
        b07 = ROL64(a10 ^ d0, 3);
        b17 = ROL64(a11 ^ d1, 10);
        b02 = ROL64(a12 ^ d2, 43);
        b12 = ROL64(a13 ^ d3, 25);
        b22 = ROL64(a14 ^ d4, 39);
        b23 = ROL64(a15 ^ d0, 41);
        b08 = ROL64(a16 ^ d1, 45);
        b18 = ROL64(a17 ^ d2, 15);
        b03 = ROL64(a18 ^ d3, 21);
        b13 = ROL64(a19 ^ d4, 8);
        b14 = ROL64(a20 ^ d0, 18);
        b24 = ROL64(a21 ^ d1, 2);
        b09 = ROL64(a22 ^ d2, 61);
        b19 = ROL64(a23 ^ d3, 56);
        b04 = ROL64(a24 ^ d4, 14);

        /* chi + iota */
        a00 = b00 ^ (~b01 & b02);
        a01 = b01 ^ (~b02 & b03);
        a02 = b02 ^ (~b03 & b04);
        a03 = b03 ^ (~b04 & b00);
        a04 = b04 ^ (~b00 & b01);
        a05 = b05 ^ (~b06 & b07);
        a06 = b06 ^ (~b07 & b08);
        a07 = b07 ^ (~b08 & b09);
        a08 = b08 ^ (~b09 & b05);
        a09 = b09 ^ (~b05 & b06);
        a10 = b10 ^ (~b11 & b12);
        a11 = b11 ^ (~b12 & b13);
        a12 = b12 ^ (~b13 & b14);
        a13 = b13 ^ (~b14 & b10);
        a14 = b14 ^ (~b10 & b11);
        a15 = b15 ^ (~b16 & b17);
        a16 = b16 ^ (~b17 & b18);
        a17 = b17 ^ (~b18 & b19);
        a18 = b18 ^ (~b19 & b15);
        a19 = b19 ^ (~b15 & b16);
        a20 = b20 ^ (~b21 & b22);
        a21 = b21 ^ (~b22 & b23);
        a22 = b22 ^ (~b23 & b24);
        a23 = b23 ^ (~b24 & b20);
        a24 = b24 ^ (~b20 & b21);
        a00 ^= eth_keccak_rc[round];
    }

    st[0] = a00; st[1] = a01; st[2] = a02; st[3] = a03; st[4] = a04;
    st[5] = a05; st[6] = a06; st[7] = a07; st[8] = a08; st[9] = a09;
    st[10] = a10; st[11] = a11; st[12] = a12; st[13] = a13; st[14] = a14;
    st[15] = a15; st[16] = a16; st[17] = a17; st[18] = a18; st[19] = a19;
    st[20] = a20; st[21] = a21; st[22] = a22; st[23] = a23; st[24] = a24;
}

static uint64_t eth_load64le(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
           (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
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
    for (i = 0; i < 32; i++)
        out[i] = (unsigned char)(k->st[i >> 3] >> (8 * (i & 7)));
    /* the state may have absorbed a secret-derived message: wipe it */
    {
        volatile uint64_t *v = k->st;
        for (i = 0; i < 25; i++)
            v[i] = 0;
    }
    k->pos = 0;
}

void eth_keccak256(unsigned char out[32], const void *in, size_t len)
{
    eth_keccak k;

    eth_keccak_init(&k);
    eth_keccak_update(&k, in, len);
    eth_keccak_final(&k, out);
}
