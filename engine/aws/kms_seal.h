/* The plaintexts the aws-kms sealer hands to KMS Encrypt, and the ones it
 * accepts back from Decrypt:
 *   v1:        0x01 || ENG_PLAIN layout ([key_len][key][secret_len][secret],
 *              engine/host.h) -- what this engine seals;
 *   reference: the reference wallet's JSON {"secret": "...", "eth_key":
 *              "<hex>"} (eth_key may have fewer than 64 digits: left-padded
 *              to 32 bytes), converted to the ENG_PLAIN layout.
 * See docs/aws.md. */
#ifndef ENG_AWS_KMS_SEAL_H
#define ENG_AWS_KMS_SEAL_H

#include <stddef.h>

#define ENG_KMS_SEAL_V1 0x01

enum eng_kms_seal_format {
    ENG_KMS_FMT_V1 = 1,
    ENG_KMS_FMT_REFERENCE = 2
};

/* v1 plaintext (version byte + plain, which must be a valid ENG_PLAIN
 * layout) into out[0..cap).  SIGNER_OK, BAD_REQUEST for a bad layout,
 * TOO_LARGE over cap. */
int eng_kms_seal_encode(unsigned char *out, size_t cap, size_t *out_len,
                        const unsigned char *plain, size_t plain_len)
    __attribute__((warn_unused_result));

/* Any accepted plaintext (v1 or reference JSON) into the ENG_PLAIN layout
 * in out[0..cap); *format says which it was.  SIGNER_OK or
 * SIGNER_ERR_BAD_REQUEST (unknown version, bad layout, bad JSON); out
 * wiped on failure. */
int eng_kms_seal_decode(unsigned char *out, size_t cap, size_t *out_len,
                        int *format, const unsigned char *in, size_t in_len)
    __attribute__((warn_unused_result));

/* The reference wallet's {"secret","eth_key"} JSON into the ENG_PLAIN
 * layout (32-byte key, left-padded).  Same returns. */
int eng_kms_reference_parse(unsigned char *out, size_t cap, size_t *out_len,
                            const char *json, size_t json_len)
    __attribute__((warn_unused_result));

/* 1 if p[0..len) is a well-formed ENG_PLAIN layout. */
int eng_kms_plain_valid(const unsigned char *p, size_t len);

#endif
