/*
 * Shared glue of the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Each target is one file that builds two ways:
 *   - with clang -fsanitize=fuzzer,address,undefined (tests/fuzz/run.sh):
 *     FUZZ_TARGET(name) is libFuzzer's LLVMFuzzerTestOneInput and
 *     FUZZ_INIT(name) its LLVMFuzzerInitialize;
 *   - with the normal compiler and -DFUZZ_REGRESS (tests/fuzz/regress, part
 *     of `make check`): they become fuzz_<name>_one / fuzz_<name>_init, so
 *     that one program links every target and replays the stored corpora
 *     and crash inputs through them.
 *
 * A target returns 0 for every input.  A broken invariant calls
 * FUZZ_CHECK's abort(), which libFuzzer reports as a crash and which makes
 * the regression program fail.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef FUZZ_REGRESS
#define FUZZ_TARGET(name)                                                     \
    int fuzz_##name##_one(const uint8_t *data, size_t size);                   \
    int fuzz_##name##_one(const uint8_t *data, size_t size)
#define FUZZ_INIT(name)                                                       \
    int fuzz_##name##_init(int *argc, char ***argv);                           \
    int fuzz_##name##_init(int *argc, char ***argv)
#else
#define FUZZ_TARGET(name)                                                     \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);              \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#define FUZZ_INIT(name)                                                       \
    int LLVMFuzzerInitialize(int *argc, char ***argv);                         \
    int LLVMFuzzerInitialize(int *argc, char ***argv)
#endif

/* Aborts with the failed condition and its location: libFuzzer saves the
 * input as a crash, the regression program stops with a failure. */
#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* A heap copy of data[0..size) of exactly size bytes (plus a NUL when nul
 * is set), so that AddressSanitizer catches a read one byte past the end;
 * aborts when out of memory. */
static inline char *fuzz_dup(const uint8_t *data, size_t size, int nul)
{
    char *p = malloc(size + (nul ? 1 : 0) + (size == 0 && !nul ? 1 : 0));
    size_t i;

    if (p == NULL)
        abort();
    for (i = 0; i < size; i++)
        p[i] = (char)data[i];
    if (nul)
        p[size] = '\0';
    return p;
}

#ifdef cJSON__h
#include <strings.h>
/* 1 if needle occurs, ignoring case, in a member name or string value
 * anywhere in the JSON tree v -- the text a client sees once the JSON is
 * decoded (escapes such as \u0034 undone, hex possibly re-cased). */
static inline int fuzz_json_has(const cJSON *v, const char *needle)
{
    size_t m = strlen(needle);

    for (; v != NULL; v = v->next) {
        const char *ss[2];
        size_t k;
        ss[0] = v->string;
        ss[1] = cJSON_IsString(v) ? v->valuestring : NULL;
        for (k = 0; k < 2; k++) {
            const char *s = ss[k];
            size_t n, i;
            if (s == NULL)
                continue;
            n = strlen(s);
            for (i = 0; i + m <= n; i++)
                if (strncasecmp(s + i, needle, m) == 0)
                    return 1;
        }
        if (v->child != NULL && fuzz_json_has(v->child, needle))
            return 1;
    }
    return 0;
}
#endif

#endif /* FUZZ_H */
