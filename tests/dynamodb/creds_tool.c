/* Asks the AWS credential chain (engine/creds.c) for credentials N times and
 * prints what it got, for tests/dynamodb/creds.mjs.  The test credentials'
 * secret parts are printed as SHA-256 digests only.
 *
 *   creds_tool [N]      -> {"rc":0,"source":"container","access_key_id":"...",
 *                           "secret_sha256":"...","token_sha256":"...",
 *                           "expiration":1764500000}                       */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "creds.h"
#include "util.h"

static void digest(char out[65], const char *s)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), d);
    eng_hex_encode(out, d, sizeof d);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1, rc = SIGNER_ERR_UNAVAILABLE;
    eng_creds_chain *c = eng_creds_chain_new("eu-west-1", 1000);
    eng_aws_creds k;
    char s[65], t[65];
    if (c == NULL)
        return 1;
    for (int i = 0; i < n; i++)
        rc = eng_creds_chain_get(c, &k);
    if (rc != SIGNER_OK) {
        printf("{\"rc\":%d}\n", rc);
    } else {
        digest(s, k.secret_access_key);
        digest(t, k.session_token);
        printf("{\"rc\":0,\"source\":\"%s\",\"access_key_id\":\"%s\","
               "\"secret_sha256\":\"%s\",\"token_sha256\":\"%s\","
               "\"expiration\":%lld}\n", k.source, k.access_key_id, s, t,
               (long long)k.expiration);
    }
    eng_wipe(&k, sizeof k);
    eng_creds_chain_free(c);
    return 0;
}
