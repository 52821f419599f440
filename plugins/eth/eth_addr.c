/*
 * Ethereum addresses: last 20 bytes of Keccak-256 of the 64-byte public key;
 * EIP-55 mixed-case checksum (a letter is upper case when the matching
 * nibble of keccak(lowercase hex) is >= 8).
 */
#include <string.h>

#include "eth.h"

void eth_addr_from_pubkey(unsigned char out[20], const unsigned char pub[65])
{
    unsigned char h[32];

    eth_keccak256(h, pub + 1, 64);
    memcpy(out, h + 12, 20);
}

int eth_addr_from_seckey(const secp256k1_context *ctx, unsigned char out[20],
                         const unsigned char key[32])
{
    secp256k1_pubkey pk;
    unsigned char pub[65];
    size_t publen = sizeof pub;
    int ok;

    memset(out, 0, 20);
    ok = secp256k1_ec_pubkey_create(ctx, &pk, key);
    /* public by design: the verdict and the public key */
    ETH_DECLASSIFY(&ok, sizeof ok);
    ETH_DECLASSIFY(&pk, sizeof pk);
    if (!ok)
        return 0;
    if (!secp256k1_ec_pubkey_serialize(ctx, pub, &publen, &pk,
                                       SECP256K1_EC_UNCOMPRESSED) ||
        publen != 65)
        return 0;
    eth_addr_from_pubkey(out, pub);
    return 1;
}

void eth_addr_checksum(char out[ETH_ADDR_TEXT], const unsigned char addr[20])
{
    unsigned char h[32];
    size_t i;

    eth_hex_encode(out, addr, 20);
    eth_keccak256(h, out + 2, 40);
    for (i = 0; i < 40; i++) {
        unsigned nib = (h[i / 2] >> (i % 2 ? 0 : 4)) & 15;
        char c = out[2 + i];
        if (c >= 'a' && c <= 'f' && nib >= 8)
            out[2 + i] = (char)(c - 'a' + 'A');
    }
}

int eth_addr_parse(unsigned char out[20], const char *s, size_t len)
{
    char want[ETH_ADDR_TEXT];
    int lower = 0, upper = 0;
    size_t i;

    memset(out, 0, 20);
    if (eth_hex_has_prefix(s, len)) {
        s += 2;
        len -= 2;
    }
    if (len != 40 || !eth_hex_decode_public(out, s, 40)) /* public */
        return ETH_ADDR_SYNTAX;
    for (i = 0; i < 40; i++) {
        if (s[i] >= 'a' && s[i] <= 'f')
            lower = 1;
        else if (s[i] >= 'A' && s[i] <= 'F')
            upper = 1;
    }
    if (lower && upper) {
        eth_addr_checksum(want, out);
        if (memcmp(want + 2, s, 40) != 0) {
            memset(out, 0, 20);
            return ETH_ADDR_CHECKSUM;
        }
    }
    return ETH_ADDR_OK;
}
