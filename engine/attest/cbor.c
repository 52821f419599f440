/* libcbor helpers and a well-formedness pre-check (RFC 8949 appendix C)
 * that bounds every declared length by the bytes actually present. */
#include "config.h"
#include "attest/attest.h"
#include "attest/cbor_util.h"

#include <stdlib.h>
#include <string.h>

cbor_item_t *eng_cbor_uint(uint64_t v)
{
    if (v <= UINT8_MAX)
        return cbor_build_uint8((uint8_t)v);
    if (v <= UINT16_MAX)
        return cbor_build_uint16((uint16_t)v);
    if (v <= UINT32_MAX)
        return cbor_build_uint32((uint32_t)v);
    return cbor_build_uint64(v);
}

cbor_item_t *eng_cbor_text(const char *s)
{
    return cbor_build_stringn(s, strlen(s));
}

cbor_item_t *eng_cbor_bytes_or_null(const unsigned char *p, size_t len)
{
    if (p == NULL)
        return cbor_new_null();
    return cbor_build_bytestring(p, len);
}

int eng_cbor_map_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
    int ok = 0;
    if (map != NULL && key != NULL && value != NULL)
        ok = cbor_map_add(map, (struct cbor_pair){.key = key, .value = value});
    if (key != NULL)
        cbor_decref(&key);
    if (value != NULL)
        cbor_decref(&value);
    return ok;
}

int eng_cbor_array_put(cbor_item_t *array, cbor_item_t *item)
{
    int ok = 0;
    if (array != NULL && item != NULL)
        ok = cbor_array_push(array, item);
    if (item != NULL)
        cbor_decref(&item);
    return ok;
}

int eng_cbor_serialize(const cbor_item_t *item, unsigned char **out,
                       size_t *out_len)
{
    unsigned char *buf = NULL;
    size_t cap = 0, n;
    *out = NULL;
    *out_len = 0;
    if (item == NULL)
        return -1;
    n = cbor_serialize_alloc(item, &buf, &cap);
    if (n == 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* Reads the head at b[*pos]: major type, additional info, argument. */
static int wf_head(const unsigned char *b, size_t len, size_t *pos, int *mt,
                   int *ai, uint64_t *arg)
{
    size_t n, i;
    if (*pos >= len)
        return 0;
    *mt = b[*pos] >> 5;
    *ai = b[*pos] & 0x1f;
    (*pos)++;
    if (*ai < 24 || *ai == 31) {
        *arg = (uint64_t)*ai;
        return 1;
    }
    if (*ai > 27)
        return 0; /* reserved */
    n = (size_t)1 << (*ai - 24);
    if (len - *pos < n)
        return 0;
    *arg = 0;
    for (i = 0; i < n; i++)
        *arg = (*arg << 8) | b[(*pos)++];
    return 1;
}

static int wf_item(const unsigned char *b, size_t len, size_t *pos,
                   int depth);

/* Indefinite byte/text string: definite chunks of major type mt, then break. */
static int wf_chunks(const unsigned char *b, size_t len, size_t *pos, int mt)
{
    for (;;) {
        int cmt, cai;
        uint64_t arg;
        if (*pos < len && b[*pos] == 0xff) {
            (*pos)++;
            return 1;
        }
        if (!wf_head(b, len, pos, &cmt, &cai, &arg) || cmt != mt || cai == 31)
            return 0;
        if (arg > len - *pos)
            return 0;
        *pos += (size_t)arg;
    }
}

/* count items (or until break when indefinite). */
static int wf_items(const unsigned char *b, size_t len, size_t *pos,
                    int depth, int indefinite, uint64_t count)
{
    uint64_t i;
    if (indefinite) {
        for (;;) {
            if (*pos < len && b[*pos] == 0xff) {
                (*pos)++;
                return 1;
            }
            if (!wf_item(b, len, pos, depth))
                return 0;
        }
    }
    if (count > len - *pos) /* each item takes at least one byte */
        return 0;
    for (i = 0; i < count; i++)
        if (!wf_item(b, len, pos, depth))
            return 0;
    return 1;
}

static int wf_item(const unsigned char *b, size_t len, size_t *pos,
                   int depth)
{
    int mt, ai, indef;
    uint64_t arg;
    if (depth < 0 || !wf_head(b, len, pos, &mt, &ai, &arg))
        return 0;
    indef = ai == 31;
    switch (mt) {
    case 0: case 1:
        return !indef;
    case 2: case 3:
        if (indef)
            return wf_chunks(b, len, pos, mt);
        if (arg > len - *pos)
            return 0;
        *pos += (size_t)arg;
        return 1;
    case 4:
        return wf_items(b, len, pos, depth - 1, indef, arg);
    case 5:
        if (!indef && arg > (len - *pos) / 2)
            return 0;
        if (!wf_items(b, len, pos, depth - 1, indef, indef ? 0 : arg * 2))
            return 0;
        return 1;
    case 6:
        return !indef && wf_item(b, len, pos, depth - 1);
    default: /* 7: simple values and floats; a lone break is malformed */
        return !indef;
    }
}

int eng_cbor_well_formed(const unsigned char *buf, size_t len, int max_depth)
{
    size_t pos = 0;
    if (buf == NULL || len == 0)
        return 0;
    return wf_item(buf, len, &pos, max_depth) && pos == len;
}

cbor_item_t *eng_cbor_load(const unsigned char *buf, size_t len)
{
    struct cbor_load_result res;
    cbor_item_t *item;
    if (!eng_cbor_well_formed(buf, len, ENG_CBOR_MAX_DEPTH))
        return NULL;
    item = cbor_load(buf, len, &res);
    if (item == NULL)
        return NULL;
    if (res.error.code != CBOR_ERR_NONE || res.read != len) {
        cbor_decref(&item);
        return NULL;
    }
    return item;
}

int eng_cbor_text_is(const cbor_item_t *item, const char *s)
{
    size_t n = strlen(s);
    return item != NULL && cbor_isa_string(item) &&
           cbor_string_is_definite(item) && cbor_string_length(item) == n &&
           memcmp(cbor_string_handle(item), s, n) == 0;
}

cbor_item_t *eng_cbor_map_get(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *pairs;
    cbor_item_t *found = NULL;
    size_t i, n;
    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    pairs = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (i = 0; i < n; i++) {
        if (!eng_cbor_text_is(pairs[i].key, key))
            continue;
        if (found != NULL)
            return NULL; /* duplicate key */
        found = pairs[i].value;
    }
    return found;
}

size_t eng_cbor_map_count(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *pairs;
    size_t i, n, count = 0;
    if (map == NULL || !cbor_isa_map(map))
        return 0;
    pairs = cbor_map_handle(map);
    n = cbor_map_size(map);
    for (i = 0; i < n; i++)
        count += eng_cbor_text_is(pairs[i].key, key) ? 1 : 0;
    return count;
}

int eng_cbor_bytes(const cbor_item_t *item, const unsigned char **p,
                   size_t *len)
{
    if (item == NULL || !cbor_isa_bytestring(item) ||
        !cbor_bytestring_is_definite(item))
        return -1;
    *p = cbor_bytestring_handle(item);
    *len = cbor_bytestring_length(item);
    return 0;
}
