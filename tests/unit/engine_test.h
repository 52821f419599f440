/* Shared by the CUnit tests that run a whole engine (test_auth,
 * test_dispatch): opening one on a config in a private directory, and the
 * HMAC a client sends (docs/hmac.md). */
#ifndef ENGINE_TEST_H
#define ENGINE_TEST_H

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dispatch.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

/* Opens eng on a fresh private directory (*dir, data in *dir/data) and the
 * plugins of the build tree, with the config text conf after data_dir and
 * plugin_dir, then the CUnit registry.  0, or -1 with the cause on
 * stderr. */
static inline int tu_engine_open(eng_engine *eng, eng_config *cfg,
                                 char **dir, const char *conf)
{
    char text[4096], err[1024];

    if ((*dir = tu_tmpdir()) == NULL)
        return -1;
    eng_log_set_level(SIGNER_LOG_ERROR);
    snprintf(text, sizeof text,
             "data_dir = \"%s/data\";\nplugin_dir = \"%s/plugins/.libs\";\n%s",
             *dir, tu_builddir(), conf);
    if (eng_config_load_string(cfg, text, *dir, err, sizeof err) != 0 ||
        eng_engine_open(eng, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    return CU_initialize_registry() == CUE_SUCCESS ? 0 : -1;
}

/* Runs the registered suites, closes eng, removes and frees dir; the exit
 * status. */
static inline int tu_engine_end(eng_engine *eng, eng_config *cfg, char *dir)
{
    int rc = tu_run();
    eng_engine_close(eng);
    eng_config_free(cfg);
    tu_rmtree(dir);
    free(dir);
    return rc;
}

/* The MAC a client sends: hex of HMAC-SHA256(secret, "op\nkey_id\njcs\nts")
 * (the JCS of the covered fields), computed by OpenSSL. */
static inline void tu_hmac_hex(char out[65], const char *secret,
                               const char *op, const char *kid,
                               const char *jcs, long long ts)
{
    unsigned char mac[32];
    unsigned int len = 0;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s\n%s\n%s\n%lld", op, kid, jcs, ts);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg,
         strlen(msg), mac, &len);
    eng_hex_encode(out, mac, 32);
}

#endif
