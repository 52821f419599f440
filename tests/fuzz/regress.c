/*
 * Replays every stored fuzz input through its target, built with the
 * normal compiler (no libFuzzer): each file of tests/fuzz/corpus/<target>/
 * (the seeds) and of tests/fuzz/crashes/<target>/ (each crash the fuzzers
 * found, kept as a regression test).  Part of `make check`.
 *
 * The targets are the very fuzz_*.c files that run.sh builds for libFuzzer,
 * compiled with -DFUZZ_REGRESS so that their entry points are named
 * fuzz_<target>_init / fuzz_<target>_one.  A target checks its invariants
 * itself and aborts when one fails; the name of the input being replayed is
 * printed first, so the log names the culprit.
 *
 * Environment: top_srcdir (set by `make check`; default ".") locates the
 * inputs, SIGNER_BUILDDIR the eth.so that fuzz_dispatch loads.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_REGRESS_DECLARE(name)                                            \
    int fuzz_##name##_init(int *argc, char ***argv);                           \
    int fuzz_##name##_one(const uint8_t *data, size_t size);

FUZZ_REGRESS_DECLARE(dispatch)
FUZZ_REGRESS_DECLARE(tx)
FUZZ_REGRESS_DECLARE(frame)
FUZZ_REGRESS_DECLARE(http)
FUZZ_REGRESS_DECLARE(config)

typedef struct target {
    const char *name;
    int (*init)(int *argc, char ***argv);
    int (*one)(const uint8_t *data, size_t size);
} target;

#define T(name) {#name, fuzz_##name##_init, fuzz_##name##_one}
static const target targets[] = {T(dispatch), T(tx), T(frame), T(http),
                                  T(config)};
#undef T

/* Reads a whole file; NULL on error. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        size_t r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap ? 2 * cap : 4096);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = cap ? 2 * cap : 4096;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int skip_name(const struct dirent *d)
{
    return d->d_name[0] != '.' && strncmp(d->d_name, "README", 6) != 0;
}

/* Replays every file of dir through t; returns the number replayed, or -1
 * when a file cannot be read.  A missing dir counts as empty. */
static long replay_dir(const target *t, const char *dir, int *inited)
{
    struct dirent **names = NULL;
    long done = 0;
    int n, i;

    n = scandir(dir, &names, skip_name, alphasort);
    if (n < 0)
        return errno == ENOENT ? 0 : -1;
    for (i = 0; i < n; i++) {
        char path[4096];
        unsigned char *data;
        size_t len = 0;

        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        data = slurp(path, &len);
        if (data == NULL) {
            fprintf(stderr, "regress: cannot read %s\n", path);
            done = -1;
            continue;
        }
        if (!*inited) {
            int argc = 1;
            char *args[] = {(char *)"regress", NULL}, **argv = args;
            t->init(&argc, &argv);
            *inited = 1;
        }
        printf("fuzz_%s %s\n", t->name, path);
        fflush(stdout);
        t->one(data, len);
        free(data);
        if (done >= 0)
            done++;
    }
    free(names);
    return done;
}

int main(void)
{
    const char *src = getenv("top_srcdir");
    size_t i;
    int failed = 0;

    if (src == NULL || src[0] == '\0')
        src = ".";
    for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const target *t = &targets[i];
        char dir[4096];
        long seeds, crashes;
        int inited = 0;

        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src, t->name);
        seeds = replay_dir(t, dir, &inited);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/crashes/%s", src, t->name);
        crashes = replay_dir(t, dir, &inited);
        printf("fuzz_%s: %ld seeds, %ld crash inputs replayed\n", t->name,
               seeds, crashes);
        /* no seeds means the inputs were not found: fail, not pass */
        if (seeds <= 0 || crashes < 0) {
            fprintf(stderr, "regress: fuzz_%s: inputs missing or unreadable "
                            "under %s/tests/fuzz\n",
                    t->name, src);
            failed = 1;
        }
    }
    return failed;
}
