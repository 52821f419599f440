/* Shared helpers for the engine's CUnit tests. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh private directory under /tmp; the caller removes it. */
static inline char *tu_tmpdir(void)
{
    char tmpl[] = "/tmp/signer-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void tu_rmtree(const char *dir)
{
    char cmd[512];
    if (dir == NULL || strncmp(dir, "/tmp/signer-test-", 17) != 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* How much slower than a plain build this run is allowed to be, for the
 * upper bounds of timing checks: 10 under valgrind, 3 under ASan/UBSan
 * (scripts/test.sh sets SIGNER_VALGRIND, SIGNER_SANITIZED), else 1. */
static inline int tu_slow(void)
{
    return getenv("SIGNER_VALGRIND") ? 10 : getenv("SIGNER_SANITIZED") ? 3 : 1;
}

/* Directory holding built plugin modules (libtool's .libs). */
static inline const char *tu_builddir(void)
{
    const char *b = getenv("SIGNER_BUILDDIR");
    return b ? b : ".";
}

/* Runs the registered suites; exit status = number of failures. */
static inline int tu_run(void)
{
    unsigned fails;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}

#define TU_ADD(suite, fn) CU_add_test(suite, #fn, fn)

/* For main(): a fresh private directory into *dir and the CUnit registry.
 * 0, or -1 (nothing to undo but *dir, which tu_end takes). */
static inline int tu_begin(char **dir)
{
    *dir = tu_tmpdir();
    if (*dir == NULL || CU_initialize_registry() != CUE_SUCCESS)
        return -1;
    return 0;
}

/* For main(): runs the registered suites, removes and frees dir; the exit
 * status. */
static inline int tu_end(char *dir)
{
    int rc = tu_run();
    tu_rmtree(dir);
    free(dir);
    return rc;
}

#endif
