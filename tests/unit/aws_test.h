/* Helpers shared by the AWS client tests (test_sigv4, test_https, test_kms,
 * test_cms): file reading from the source tree. */
#ifndef AWS_TEST_H
#define AWS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Source directory (for tests/vectors). */
static inline const char *at_srcdir(void)
{
    const char *s = getenv("SIGNER_SRCDIR");
    return s ? s : ".";
}

/* Reads a whole file (NUL-terminated, length in *len); NULL if absent. */
static inline char *at_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

/* Reads <srcdir>/tests/vectors/<rel>. */
static inline char *at_vector(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/vectors/%s", at_srcdir(), rel);
    return at_read(path, len);
}

#endif
