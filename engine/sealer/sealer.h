/* Sealers turn key material into an opaque blob bound to its metadata
 * (key_id, chain, address) and back.  Backend here: "local", AES-256-GCM
 * under a 32-byte master key file. */
#ifndef ENG_SEALER_H
#define ENG_SEALER_H

#include <stddef.h>
#include <signer/plugin.h>

#define ENG_SEAL_VERSION 0x01
#define ENG_SEAL_NONCE 12
#define ENG_SEAL_TAG 16
#define ENG_SEAL_OVERHEAD (1 + ENG_SEAL_NONCE + ENG_SEAL_TAG)

typedef struct eng_sealer eng_sealer;

/* Opens the local sealer.  The master key file is created (32 random bytes,
 * mode 0600, fsync'd) if absent; an existing one must be exactly 32 bytes and
 * not readable by group or others.  NULL with a reason in err. */
eng_sealer *eng_sealer_local_open(const char *master_key_path, char *err,
                                  size_t err_len);

/* Seals plain into a malloc'd blob: version | nonce | ciphertext | tag, with
 * the version and meta as AAD.  SIGNER_OK or a negative signer_err. */
int eng_sealer_seal(eng_sealer *s, unsigned char **blob, size_t *blob_len,
                    const signer_key_meta *meta, const unsigned char *plain,
                    size_t plain_len) SIGNER_WARN_UNUSED;

/* Opens a blob sealed for exactly meta.  Any change to blob or meta gives
 * SIGNER_ERR_FORBIDDEN; plain is wiped on failure. */
int eng_sealer_unseal(eng_sealer *s, unsigned char *plain, size_t plain_cap,
                      size_t *plain_len, const signer_key_meta *meta,
                      const unsigned char *blob, size_t blob_len)
    SIGNER_WARN_UNUSED;

void eng_sealer_free(eng_sealer *s);

#endif
