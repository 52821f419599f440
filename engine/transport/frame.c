/*
 * Frame codec of the host <-> enclave protocol (DESIGN.md section 4): a
 * 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "transport_internal.h"

/* Returns the size of the first complete frame in buf (4 + payload), 0 if
 * more bytes are needed, -1 if the announced payload exceeds max_body.
 * *payload_len is set as soon as the 4-byte header is present, even when 0
 * is returned (so the caller knows how much to wait for). */
long eng_frame_parse(const unsigned char *buf, size_t len, size_t max_body,
                     size_t *payload_len)
{
    uint32_t n;

    if (payload_len != NULL)
        *payload_len = 0;
    if (len < 4)
        return 0;
    n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
        ((uint32_t)buf[2] << 8) | (uint32_t)buf[3];
    if ((size_t)n > max_body)
        return -1;
    if (payload_len != NULL)
        *payload_len = n;
    if (len - 4 < (size_t)n)
        return 0;
    return (long)n + 4;
}

/* Writes the big-endian length of a payload of len bytes (len must fit in
 * 32 bits; larger values are clamped, which the caller never sends). */
void eng_frame_header(unsigned char out[4], size_t len)
{
    uint32_t n = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;

    out[0] = (unsigned char)(n >> 24);
    out[1] = (unsigned char)(n >> 16);
    out[2] = (unsigned char)(n >> 8);
    out[3] = (unsigned char)n;
}

/* Formats a transport-made error payload; malloc'd, NULL on ENOMEM. */
char *eng_frame_error_body(const char *id_json, int status, const char *msg,
                           size_t *len_out)
{
    char *out = NULL;
    int n;

    n = asprintf(&out,
                 "{\"id\":%s,\"enclave_status\":%d,"
                 "\"enclave_result\":{\"error\":\"%s\"}}",
                 id_json != NULL ? id_json : "null", status, msg);
    if (n < 0)
        return NULL;
    if (len_out != NULL)
        *len_out = (size_t)n;
    return out;
}

/* Raw JSON text of the request's "id" (number or string), else "null". */
void eng_frame_request_id(const char *json, size_t len, char *out,
                          size_t out_len)
{
    cJSON *root = NULL, *id;
    char *txt = NULL;

    snprintf(out, out_len, "null");
    root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        goto cleanup;
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id == NULL || !(cJSON_IsNumber(id) || cJSON_IsString(id)))
        goto cleanup;
    txt = cJSON_PrintUnformatted(id);
    if (txt != NULL && strlen(txt) < out_len)
        snprintf(out, out_len, "%s", txt);
cleanup:
    free(txt);
    cJSON_Delete(root);
}
