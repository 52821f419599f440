/* Enclave role: attestation device, mixed randomness, the `attestation`
 * operation and the device's warnings (see enclave.h, docs/enclave.md). */
#include "config.h"
#include "enclave.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/buf.h"
#include "host.h"
#include "log.h"
#include "util.h"

/* One engine per process: the device the role opened. */
static eng_attest *device;
static int warn_emulated, warn_debug_pcrs;

int eng_enclave_role(const eng_config *cfg)
{
    return cfg != NULL && cfg->role != NULL &&
           strcmp(cfg->role, "enclave") == 0;
}

eng_attest *eng_enclave_device(void) { return device; }

/* host->random_bytes in this role: OS CSPRNG XOR device GetRandom. */
static int enclave_random(const signer_host *host, unsigned char *out,
                          size_t len)
{
    (void)host;
    if (device == NULL)
        return SIGNER_ERR_UNAVAILABLE;
    return eng_attest_mix_random(device, out, len);
}

/* Logs each warning line of the device and remembers the two kinds. */
static void log_warnings(void)
{
    const char *w = eng_attest_warnings(device), *nl;
    char line[512];
    warn_emulated = strcmp(eng_attest_name(device), "emulated") == 0;
    warn_debug_pcrs = 0;
    while (w != NULL && *w != '\0') {
        nl = strchr(w, '\n');
        snprintf(line, sizeof line, "%.*s",
                 (int)(nl ? (size_t)(nl - w) : strlen(w)), w);
        if (strstr(line, "PCR0") != NULL)
            warn_debug_pcrs = 1;
        eng_log(SIGNER_LOG_WARN, "attestation: %s", line);
        w = nl ? nl + 1 : NULL;
    }
}

int eng_enclave_open(eng_engine *e, const eng_config *cfg, char *err,
                     size_t err_len)
{
    eng_attest_config ac;
    char why[512];
    if (!eng_enclave_role(cfg))
        return 0;
    memset(&ac, 0, sizeof ac);
    if (eng_attest_conf_parse(&ac, config_root_setting(&cfg->lc), cfg->dir,
                              why, sizeof why) != 0) {
        snprintf(err, err_len, "%s: %s", cfg->file, why);
        eng_attest_config_cleanup(&ac);
        return -1;
    }
    device = eng_attest_open(&ac, why, sizeof why);
    eng_attest_config_cleanup(&ac);
    if (device == NULL) {
        snprintf(err, err_len, "attestation device: %s", why);
        return -1;
    }
    log_warnings();
    e->host.random_bytes = enclave_random;
    eng_log(SIGNER_LOG_INFO, "attestation device: %s",
            eng_attest_name(device));
    return 0;
}

void eng_enclave_close(void)
{
    eng_attest_close(device);
    device = NULL;
    warn_emulated = warn_debug_pcrs = 0;
}

/* payload.nonce: strict base64 of 1..ENG_ATTEST_DATA_MAX bytes. */
static int nonce_of(signer_reply *reply, unsigned char *nonce, size_t *n,
                    const cJSON *payload)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(payload, "nonce");
    const cJSON *c;
    for (c = payload ? payload->child : NULL; c != NULL; c = c->next)
        if (strcmp(c->string, "nonce") != 0)
            return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                                   "unknown field (expected nonce)");
    if (!cJSON_IsString(v))
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "nonce: required, base64 of 1 to %d bytes",
                               ENG_ATTEST_DATA_MAX);
    if (eng_aws_b64_decode(nonce, ENG_ATTEST_DATA_MAX, n, v->valuestring,
                           strlen(v->valuestring)) != 0 || *n == 0)
        return eng_reply_error(reply, SIGNER_ERR_BAD_REQUEST,
                               "nonce: must be base64 of 1 to %d bytes",
                               ENG_ATTEST_DATA_MAX);
    return SIGNER_OK;
}

int eng_enclave_attestation_op(signer_reply *reply, const cJSON *payload)
{
    unsigned char nonce[ENG_ATTEST_DATA_MAX], *doc = NULL;
    eng_attest_req req;
    size_t n = 0, dlen = 0;
    char why[256], *b64 = NULL;
    int rc;

    if (device == NULL)
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "no attestation device in this role");
    if ((rc = nonce_of(reply, nonce, &n, payload)) != SIGNER_OK)
        return rc;
    memset(&req, 0, sizeof req);
    req.nonce = nonce;
    req.nonce_len = n;
    rc = eng_attest_document(device, &doc, &dlen, &req, why, sizeof why);
    if (rc != SIGNER_OK)
        return eng_reply_error(reply, SIGNER_ERR_UNAVAILABLE,
                               "attestation device: %s", why);
    if ((b64 = eng_aws_b64_encode(doc, dlen)) == NULL ||
        cJSON_AddStringToObject(reply->result, "document", b64) == NULL)
        rc = eng_reply_error(reply, SIGNER_ERR_NOMEM, "out of memory");
    free(b64);
    free(doc);
    return rc;
}

char *eng_enclave_metrics(void)
{
    char buf[512];
    if (device == NULL)
        return strdup("");
    snprintf(buf, sizeof buf,
             "# HELP signer_attestation_emulated 1 when attestation "
             "documents come from the emulated NSM (not a real enclave)\n"
             "# TYPE signer_attestation_emulated gauge\n"
             "signer_attestation_emulated %d\n"
             "# HELP signer_attestation_debug_pcrs 1 when PCR0 is all zero "
             "(a debug-mode enclave)\n"
             "# TYPE signer_attestation_debug_pcrs gauge\n"
             "signer_attestation_debug_pcrs %d\n",
             warn_emulated, warn_debug_pcrs);
    return strdup(buf);
}
