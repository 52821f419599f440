/*
 * Recoverable ECDSA signatures over a 32-byte hash, checked by recovering
 * the signer's address before anything leaves the plugin.
 */
#include <string.h>

#include <secp256k1_recovery.h>

#include "eth.h"

int eth_sign_hash(const secp256k1_context *ctx, unsigned char rs[64],
                  int *recid, const unsigned char hash[32],
                  const unsigned char key[32], const unsigned char expect[20])
{
    secp256k1_ecdsa_recoverable_signature sig;
    secp256k1_ecdsa_signature plain;
    secp256k1_pubkey pk;
    unsigned char pub[65], addr[20];
    size_t publen = sizeof pub;
    int rc = SIGNER_ERR_INTERNAL, ok;

    memset(rs, 0, 64);
    *recid = 0;
    /* RFC 6979 nonce (NULL noncefp); the library always returns low-S */
    ok = secp256k1_ecdsa_sign_recoverable(ctx, &sig, hash, key, NULL, NULL);
    /* public by design: the verdict and the signature once produced */
    ETH_DECLASSIFY(&ok, sizeof ok);
    ETH_DECLASSIFY(&sig, sizeof sig);
    if (!ok)
        goto cleanup;
    if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, rs, recid,
                                                                 &sig))
        goto cleanup;
    /* belt and braces: refuse a high-S signature (normalize returns 1) */
    if (!secp256k1_ecdsa_recoverable_signature_convert(ctx, &plain, &sig) ||
        secp256k1_ecdsa_signature_normalize(ctx, NULL, &plain))
        goto cleanup;
    /* the public signature must recover to the key's address (skipped
     * only when the operator turned verify_signatures off) */
    if (expect == NULL) {
        rc = SIGNER_OK;
        goto cleanup;
    }
    if (!secp256k1_ecdsa_recover(ctx, &pk, &sig, hash))
        goto cleanup;
    if (!secp256k1_ec_pubkey_serialize(ctx, pub, &publen, &pk,
                                       SECP256K1_EC_UNCOMPRESSED) ||
        publen != 65)
        goto cleanup;
    eth_addr_from_pubkey(addr, pub);
    if (memcmp(addr, expect, 20) != 0)
        goto cleanup;
    rc = SIGNER_OK;

cleanup:
    if (rc != SIGNER_OK) {
        memset(rs, 0, 64);
        *recid = 0;
    }
    return rc;
}
