/*
 * fuzz_config: eng_config_load_string on arbitrary text, then
 * eng_config_free (whether loading succeeded or not).
 *
 * Inputs containing "include" (any case) are skipped: libconfig's @include
 * would read arbitrary files (a terminal or a FIFO would block the fuzzer),
 * and the config file is operator input anyway.
 *
 * Invariants: 0 or -1; on -1 a NUL-terminated, non-empty message that fits
 * err; on 0 the documented ranges hold (at least one listener, known
 * protocols, limits within their bounds, a data_dir, every plugin with a
 * name), the command-line overrides work on the result, and freeing is
 * clean (LeakSanitizer checks the rest).
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include <signer/plugin.h>

#include "conf.h"
#include "fuzz.h"

/*
 * libconfig 1.5 (Debian 12's libconfig9 1.5-0.4) leaks the token that its
 * parser discards after a syntax error: a string's buffer (`a = 5 "x";`,
 * allocated in strbuf_append) or an empty string (`max_b""...`, allocated
 * in libconfig_yylex) -- reproducible with libconfig alone, without any
 * engine code.  The leak is bounded (one token per failed parse; signerd
 * parses at start and on SIGHUP), so these two scanner allocation sites are
 * suppressed for LeakSanitizer, in libFuzzer and in an ASan build of
 * tests/fuzz/regress alike.  A leaked config tree (settings are allocated by
 * the parser, not the scanner) would still be reported.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

FUZZ_INIT(config)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int has_include(const uint8_t *d, size_t n)
{
    size_t i;

    for (i = 0; i + 7 <= n; i++)
        if (strncasecmp((const char *)d + i, "include", 7) == 0)
            return 1;
    return 0;
}

FUZZ_TARGET(config)
{
    eng_config c;
    char err[256];
    char *text;
    int r;

    if (has_include(data, size))
        return 0;
    text = fuzz_dup(data, size, 1);
    memset(err, 'x', sizeof err);
    r = eng_config_load_string(&c, text, "/nonexistent/fuzz-config-dir", err,
                               sizeof err);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(err[0] != '\0');
    } else {
        size_t i;
        int replaced = 0;
        FUZZ_CHECK(c.data_dir != NULL && c.data_dir[0] != '\0');
        FUZZ_CHECK(c.role != NULL);
        FUZZ_CHECK(c.n_listen >= 1 && c.listen != NULL);
        for (i = 0; i < c.n_listen; i++) {
            FUZZ_CHECK(c.listen[i].address != NULL);
            FUZZ_CHECK(c.listen[i].proto >= ENG_PROTO_HTTP &&
                       c.listen[i].proto <= ENG_PROTO_HEALTH);
            /* an upstream exactly on relay listeners, and those only in
             * the proxy role */
            FUZZ_CHECK((c.listen[i].proto == ENG_PROTO_RELAY) ==
                       (c.listen[i].upstream != NULL));
            FUZZ_CHECK(c.listen[i].proto != ENG_PROTO_RELAY ||
                       strcmp(c.role, "proxy") == 0);
        }
        FUZZ_CHECK(c.limits.max_body >= 64);
        FUZZ_CHECK(c.workers >= 0 && c.workers <= 256);
        FUZZ_CHECK(c.log_level >= SIGNER_LOG_ERROR &&
                   c.log_level <= SIGNER_LOG_DEBUG);
        FUZZ_CHECK(c.hmac_window >= 1 && c.hmac_window <= 3600);
        FUZZ_CHECK(c.max_failures >= 1 && c.max_failures <= 1000000);
        FUZZ_CHECK(c.lockout_seconds >= 0 && c.lockout_seconds <= 86400);
        FUZZ_CHECK(c.n_plugins >= 1 && c.plugins != NULL);
        for (i = 0; i < c.n_plugins; i++)
            FUZZ_CHECK(c.plugins[i].name != NULL);
        for (i = 0; i < c.n_aliases; i++)
            FUZZ_CHECK(c.aliases[i].from != NULL && c.aliases[i].to != NULL);
        /* the overrides signerd applies after loading */
        FUZZ_CHECK(eng_config_add_listen(&c, "frames=127.0.0.1:0", &replaced,
                                         err, sizeof err) == 0);
        FUZZ_CHECK(eng_config_add_listen(&c, "unix:/tmp/x", &replaced, err,
                                         sizeof err) == 0);
        FUZZ_CHECK(c.n_listen == 2);
        FUZZ_CHECK(eng_config_set_data_dir(&c, "/tmp/d") == 0);
        FUZZ_CHECK(eng_config_set_plugin_dir(&c, "/tmp/p") == 0);
    }
    eng_config_free(&c);
    free(text);
    return 0;
}
