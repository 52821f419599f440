/* Small libcbor helpers shared by the attestation unit (internal). */
#ifndef ENG_ATTEST_CBOR_UTIL_H
#define ENG_ATTEST_CBOR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <cbor.h>

#define ENG_CBOR_MAX_DEPTH 8

/* A uint item in its shortest encoding; NULL on allocation failure. */
cbor_item_t *eng_cbor_uint(uint64_t v);

/* A definite text string item from a C string; NULL on failure. */
cbor_item_t *eng_cbor_text(const char *s);

/* A bstr item, or null when p is NULL. */
cbor_item_t *eng_cbor_bytes_or_null(const unsigned char *p, size_t len);

/* Adds key -> value to map and drops the caller's references (also on
 * failure, and when either is NULL).  1 ok, 0 failure. */
int eng_cbor_map_put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value);

/* Appends item to array and drops the caller's reference.  1 ok, 0 not. */
int eng_cbor_array_put(cbor_item_t *array, cbor_item_t *item);

/* Serializes item into a malloc'd buffer.  0 ok, -1 on failure. */
int eng_cbor_serialize(const cbor_item_t *item, unsigned char **out,
                       size_t *out_len);

/* Decodes exactly one well-formed item filling buf[0..len); NULL when
 * malformed, truncated, followed by extra bytes or nested too deep. */
cbor_item_t *eng_cbor_load(const unsigned char *buf, size_t len);

/* 1 if item is a definite text string equal to s. */
int eng_cbor_text_is(const cbor_item_t *item, const char *s);

/* The value of the text key in map (borrowed); NULL if item is not a map,
 * the key is absent, or it appears more than once. */
cbor_item_t *eng_cbor_map_get(const cbor_item_t *map, const char *key);

/* How many times the text key appears in map (0 if not a map). */
size_t eng_cbor_map_count(const cbor_item_t *map, const char *key);

/* Borrowed view of a definite byte string; 0 ok, -1 if not one. */
int eng_cbor_bytes(const cbor_item_t *item, const unsigned char **p,
                   size_t *len);

#endif
