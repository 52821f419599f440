/*
 * Recoverable ECDSA signatures over a 32-byte hash, checked before anything
 * leaves the plugin: secp256k1_ecdsa_verify against the key's public key.
 * A deterministic (RFC 6979) signer whose signature is corrupted by a fault
 * can leak its key, so every signature is verified (settings.
 * verify_signatures, on by default).  The public key is derived once per
 * unseal and kept in the host's key cache (the key's auxiliary slot, ABI
 * 1.3), so the check costs one verification, not a recovery plus a hash.
 */
#include <string.h>

#include <secp256k1_recovery.h>

#include "eth.h"

int eth_key_pubkey(const eth_ctx *c, signer_call *call, secp256k1_pubkey *pub,
                   const unsigned char *key, const unsigned char addr[20])
{
    const signer_host *h = c->host;
    int aux = SIGNER_HAS_MEMBER(h, signer_host, key_aux_put) &&
              h->key_aux_get != NULL && h->key_aux_put != NULL;
    unsigned char ser[65], derived[20];
    size_t len = 0, serlen = sizeof ser;
    int ok;

    if (aux && h->key_aux_get(call, (unsigned char *)pub, sizeof *pub, &len) ==
                   1 &&
        len == sizeof *pub)
        return SIGNER_OK;
    ok = secp256k1_ec_pubkey_create(c->secp, pub, key);
    /* public by design: the verdict and the public key */
    ETH_DECLASSIFY(&ok, sizeof ok);
    ETH_DECLASSIFY(pub, sizeof *pub);
    if (!ok || !secp256k1_ec_pubkey_serialize(c->secp, ser, &serlen, pub,
                                              SECP256K1_EC_UNCOMPRESSED) ||
        serlen != sizeof ser)
        return SIGNER_ERR_INTERNAL;
    /* the key must be the one the stored (sealed) address names */
    eth_addr_from_pubkey(derived, ser);
    if (memcmp(derived, addr, 20) != 0)
        return SIGNER_ERR_INTERNAL;
    if (aux) /* not cached (cache off, evicted): derived again next time */
        (void)h->key_aux_put(call, (const unsigned char *)pub, sizeof *pub);
    return SIGNER_OK;
}

int eth_sig_verify(const secp256k1_context *ctx, const unsigned char rs[64],
                   const unsigned char hash[32], const secp256k1_pubkey *pub)
{
    secp256k1_ecdsa_signature sig;
    /* parse, refuse high-S (normalize returns 1), then verify */
    if (!secp256k1_ecdsa_signature_parse_compact(ctx, &sig, rs) ||
        secp256k1_ecdsa_signature_normalize(ctx, NULL, &sig) ||
        secp256k1_ecdsa_verify(ctx, &sig, hash, pub) != 1)
        return SIGNER_ERR_INTERNAL;
    return SIGNER_OK;
}

int eth_sign_hash(const secp256k1_context *ctx, unsigned char rs[64],
                  int *recid, const unsigned char hash[32],
                  const unsigned char key[32], const secp256k1_pubkey *pub)
{
    secp256k1_ecdsa_recoverable_signature sig;
    secp256k1_ecdsa_signature plain;
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
    if (pub == NULL) {
        /* verify_signatures = false: only refuse a high-S signature */
        if (!secp256k1_ecdsa_recoverable_signature_convert(ctx, &plain,
                                                           &sig) ||
            secp256k1_ecdsa_signature_normalize(ctx, NULL, &plain))
            goto cleanup;
        rc = SIGNER_OK;
        goto cleanup;
    }
    /* the signature as it leaves (its serialized bytes) must verify */
    rc = eth_sig_verify(ctx, rs, hash, pub);

cleanup:
    if (rc != SIGNER_OK) {
        memset(rs, 0, 64);
        *recid = 0;
    }
    return rc;
}
