/* The strict JSON front end (RFC 8259) for request bodies, and the one
 * path that frees a parsed request: every string wiped first.  Refused,
 * with the byte offset and the cause: invalid UTF-8, NUL (raw or \u0000),
 * raw control characters in strings, lone surrogates, duplicate member
 * names at any depth, leading zeros, "1.", ".5", numbers that overflow or
 * underflow a double, nesting deeper than the limit, trailing data. */
#ifndef ENG_JSON_H
#define ENG_JSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Where and why a body was refused. */
typedef struct eng_json_error {
    size_t offset;   /* byte offset into the body */
    char cause[96];  /* e.g. "duplicate member \"id\"" */
} eng_json_error;

/* The raw text of one member of the root object (e.g. a frame's "id"),
 * exactly as sent; a view into the parsed buffer. */
typedef struct eng_json_span {
    const char *name; /* member to capture (set by the caller), or NULL */
    const char *text; /* NULL when absent */
    size_t len;
} eng_json_span;

/* Parses buf[0..len) into *out (a cJSON tree; free with eng_json_free).
 * max_depth bounds the nesting.  capture may be NULL.  SIGNER_OK,
 * SIGNER_ERR_BAD_REQUEST with err filled, or SIGNER_ERR_NOMEM. */
int eng_json_parse(cJSON **out, eng_json_span *capture, const char *buf,
                   size_t len, int max_depth, eng_json_error *err);

/* The number of bytes at the start of s[0..len) that a JSON string holds
 * as they are (no control, '"' or backslash; NUL is a control). */
size_t eng_json_plain_run(const char *s, size_t len);

/* The bytes of s[0..len) as the body of a JSON string, escaped as cJSON
 * prints it (", \\ and \b \f \n \r \t by letter, other controls as
 * \u00XX): written at o unless o is NULL; returns their number. */
size_t eng_json_escape(char *o, const char *s, size_t len);

/* The member of obj named name (case-sensitive), or NULL: what
 * cJSON_GetObjectItemCaseSensitive gives, first bytes compared first. */
cJSON *eng_json_get(const cJSON *obj, const char *name);

/* A string member name: value (copies) for a tree of the current request:
 * the node and both strings from the request arena while a request scope
 * is open (util.h), else malloc; released by eng_json_free or cJSON_Delete.
 * NULL when out of memory. */
cJSON *eng_json_string_member(const char *name, const char *value);

/* Wipes every string, member name and number of v (and of the siblings
 * after it, which cJSON_Delete also frees), then frees it; blocks of the
 * request arena are left to it.  NULL is a no-op.  The one way request
 * trees are released. */
void eng_json_free(cJSON *v);

/* Offset of the first byte of buf[0..len) that is not valid UTF-8 (no
 * overlongs, no surrogates), or len when all of it is. */
size_t eng_utf8_check(const unsigned char *buf, size_t len);

/* 1 if buf[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int eng_utf8_valid(const unsigned char *buf, size_t len);

/* 1 for the bytes a JSON string cannot hold as they are (controls, '"'
 * and backslash; NUL included), else 0: for scanning and printing. */
extern const unsigned char eng_json_special[256];

#endif
