/* RFC 8785 JSON Canonicalization Scheme (JCS): the exact text an HMAC
 * covers.  Object members sorted by the UTF-16 code units of their names,
 * no whitespace, strings escaped as ECMAScript's JSON.stringify does, and
 * numbers in ECMAScript's Number.prototype.toString form (the shortest
 * digits that read back as the same double).  See docs/hmac.md. */
#ifndef ENG_JCS_H
#define ENG_JCS_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Longest text eng_jcs_number writes, NUL included. */
#define ENG_JCS_NUMBER_MAX 32

/* Writes d as ECMAScript prints it ("1e-7", "1e+21", "0.1", "-0" as "0").
 * Returns SIGNER_OK, or SIGNER_ERR_BAD_REQUEST for NaN or an infinity. */
int eng_jcs_number(char out[ENG_JCS_NUMBER_MAX], double d);

/* RFC 8785 text of v: malloc'd (free with free()), *len set when not
 * NULL.  Returns SIGNER_OK, SIGNER_ERR_BAD_REQUEST (a non-finite number or
 * a string that is not UTF-8) or SIGNER_ERR_NOMEM. */
int eng_jcs_serialize(char **out, size_t *len, const cJSON *v);

#endif
