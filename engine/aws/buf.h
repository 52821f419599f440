/* Base64 and a growable byte buffer for the AWS client (requests,
 * canonical strings, responses).  Every release wipes: these buffers
 * carry credentials and key material.  See docs/aws.md. */
#ifndef ENG_AWS_BUF_H
#define ENG_AWS_BUF_H

#include <stddef.h>

typedef struct eng_aws_buf {
    char *p;      /* NUL-terminated while err == 0 */
    size_t len;
    size_t cap;
    int err;      /* sticky: 1 after an allocation failure */
} eng_aws_buf;

/* Room for n more bytes and a NUL without another move: the first
 * reservation of an empty buffer is taken as the caller's estimate of the
 * whole, later growth doubles.  0, or -1 after an allocation failure. */
int eng_aws_buf_reserve(eng_aws_buf *b, size_t n);
/* Appends n bytes for the caller to fill, returning where they start (the
 * NUL after them is written); NULL after an allocation failure. */
char *eng_aws_buf_extend(eng_aws_buf *b, size_t n);
/* Appends len bytes (the buffer stays NUL-terminated). */
void eng_aws_buf_add(eng_aws_buf *b, const void *data, size_t len);
/* Appends a NUL-terminated string. */
void eng_aws_buf_str(eng_aws_buf *b, const char *s);
/* Appends a printf-formatted string. */
void eng_aws_buf_fmt(eng_aws_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Wipes and frees the contents; the buffer is empty and reusable after. */
void eng_aws_buf_free(eng_aws_buf *b);
/* Hands the string to the caller (malloc'd) and empties the buffer; NULL
 * after an allocation failure. */
char *eng_aws_buf_take(eng_aws_buf *b);



/* Padded base64 of in[0..len), malloc'd (wipe before free if secret). */
char *eng_aws_b64_encode(const unsigned char *in, size_t len);
/* Decodes padded base64 (no whitespace) into out[0..cap).  0 ok, -1 when
 * malformed or over cap (out wiped then). */
int eng_aws_b64_decode(unsigned char *out, size_t cap, size_t *out_len,
                       const char *in, size_t in_len);
#endif
