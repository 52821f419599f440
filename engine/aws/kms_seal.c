/* Sealed plaintext formats for the aws-kms sealer (see kms_seal.h). */
#include "config.h"
#include "aws/kms_seal.h"

#include <string.h>

#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "host.h"
#include "util.h"

#define REF_KEY_LEN 32

int eng_kms_plain_valid(const unsigned char *p, size_t len)
{
    size_t klen;

    if (p == NULL || len < 2 || len > ENG_PLAIN_MAX)
        return 0;
    klen = p[0];
    return klen > 0 && klen <= SIGNER_MAX_KEY && 1 + klen < len &&
           p[1 + klen] == len - 2 - klen && p[1 + klen] <= ENG_SECRET_MAX;
}

int eng_kms_seal_encode(unsigned char *out, size_t cap, size_t *out_len,
                        const unsigned char *plain, size_t plain_len)
{
    *out_len = 0;
    if (!eng_kms_plain_valid(plain, plain_len))
        return SIGNER_ERR_BAD_REQUEST;
    if (plain_len + 1 > cap)
        return SIGNER_ERR_TOO_LARGE;
    out[0] = ENG_KMS_SEAL_V1;
    memcpy(out + 1, plain, plain_len);
    *out_len = plain_len + 1;
    return SIGNER_OK;
}

int eng_kms_seal_decode(unsigned char *out, size_t cap, size_t *out_len,
                        int *format, const unsigned char *in, size_t in_len)
{
    int rc = SIGNER_ERR_BAD_REQUEST;

    *out_len = 0;
    *format = 0;
    if (in == NULL || in_len == 0)
        goto cleanup;
    if (in[0] == ENG_KMS_SEAL_V1) {
        if (!eng_kms_plain_valid(in + 1, in_len - 1) || in_len - 1 > cap)
            goto cleanup;
        memcpy(out, in + 1, in_len - 1);
        *out_len = in_len - 1;
        *format = ENG_KMS_FMT_V1;
        rc = SIGNER_OK;
    } else if (in[0] == '{') {
        rc = eng_kms_reference_parse(out, cap, out_len, (const char *)in,
                                     in_len);
        if (rc == SIGNER_OK)
            *format = ENG_KMS_FMT_REFERENCE;
    }
cleanup:
    if (rc != SIGNER_OK && out != NULL)
        eng_wipe(out, cap);
    return rc;
}

/* 1..64 hex digits (optional 0x), right-aligned into key[32]: the
 * reference stored hex(D.Bytes()), which drops leading zero bytes. */
static int ref_key(unsigned char key[REF_KEY_LEN], const char *hex)
{
    size_t n, i;
    unsigned char any = 0;

    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
        hex += 2;
    n = strlen(hex);
    if (n == 0 || n > 2 * REF_KEY_LEN)
        return -1;
    memset(key, 0, REF_KEY_LEN);
    for (i = 0; i < n; i++) {
        int d = eng_hex_nibble(hex[n - 1 - i]);
        if (d < 0)
            return -1;
        key[REF_KEY_LEN - 1 - i / 2] |= (unsigned char)(i % 2 ? d << 4 : d);
    }
    for (i = 0; i < REF_KEY_LEN; i++)
        any |= key[i];
    return any ? 0 : -1;
}

int eng_kms_reference_parse(unsigned char *out, size_t cap, size_t *out_len,
                            const char *json, size_t json_len)
{
    cJSON *o = cJSON_ParseWithLength(json, json_len);
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "secret");
    const cJSON *eth = cJSON_GetObjectItemCaseSensitive(o, "eth_key");
    unsigned char key[REF_KEY_LEN];
    size_t slen;
    int rc = SIGNER_ERR_BAD_REQUEST;

    *out_len = 0;
    if (!cJSON_IsString(sec) || !cJSON_IsString(eth) ||
        ref_key(key, eth->valuestring) != 0)
        goto cleanup;
    slen = strlen(sec->valuestring);
    if (slen == 0 || slen > ENG_SECRET_MAX || 2 + REF_KEY_LEN + slen > cap)
        goto cleanup;
    out[0] = REF_KEY_LEN;
    memcpy(out + 1, key, REF_KEY_LEN);
    out[1 + REF_KEY_LEN] = (unsigned char)slen;
    memcpy(out + 2 + REF_KEY_LEN, sec->valuestring, slen);
    *out_len = 2 + REF_KEY_LEN + slen;
    rc = SIGNER_OK;
cleanup:
    eng_wipe(key, sizeof key);
    cJSON_Delete(o);
    if (rc != SIGNER_OK && out != NULL)
        eng_wipe(out, cap);
    return rc;
}
