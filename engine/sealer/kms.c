/* "aws-kms" sealer row (enclave role): seal with KMS Encrypt under the
 * blob's encryption context, unseal with KMS Decrypt + Recipient (a fresh
 * attestation document binding the enclave's RSA recipient key, rotated on
 * a schedule) and CMS; reference-wallet blobs open too.  The AWS
 * credentials come with each request through eng_seal_call; without them
 * the row cannot seal or unseal.  See docs/enclave.md and docs/aws.md. */
#include "config.h"
#include "sealer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms_sealer.h"
#include "log.h"
#include "enclave.h"
#include "util.h"

#define RKEY_MAX_AGE_DEFAULT 3600

struct kms {
    eng_kms_cfg cfg;
    char *region, *host, *ca_file, *key_id, *endpoint;
    char ip[64];
    eng_kms_tcp_target tcp;
    eng_kms_vsock_target vsock;
    eng_attest *attest;
    pthread_rwlock_t lock; /* readers use rkey; rotation writes */
    eng_aws_rkey *rkey;
    int64_t rkey_max_age;
};

static const char *const kms_settings[] = {
    "region", "kms_key_id", "endpoint", "host", "ca_file", "timeout_ms",
    "max_attempts", "plain", "recipient_key_max_age", NULL};

/* "vsock:CID:PORT" or "tcp:IP:PORT" into k's connector. */
static int parse_endpoint(struct kms *k, const char *ep, char *err,
                          size_t err_len)
{
    unsigned cid = 0, port = 0;
    const char *colon;
    if (sscanf(ep, "vsock:%u:%u", &cid, &port) == 2 && port > 0) {
        k->vsock.cid = cid;
        k->vsock.port = port;
        k->cfg.connect = eng_kms_connect_vsock;
        k->cfg.connect_arg = &k->vsock;
        return 0;
    }
    colon = strrchr(ep, ':');
    if (strncmp(ep, "tcp:", 4) == 0 && colon != NULL && colon > ep + 4 &&
        (size_t)(colon - ep - 4) < sizeof k->ip &&
        sscanf(colon + 1, "%u", &port) == 1 && port > 0 && port < 65536) {
        snprintf(k->ip, sizeof k->ip, "%.*s", (int)(colon - ep - 4), ep + 4);
        k->tcp.ip = k->ip;
        k->tcp.port = (int)port;
        k->cfg.connect = eng_kms_connect_tcp;
        k->cfg.connect_arg = &k->tcp;
        return 0;
    }
    snprintf(err, err_len, "sealer.endpoint '%s': expected vsock:CID:PORT "
             "(the parent's proxy, e.g. vsock:3:8000) or tcp:IP:PORT", ep);
    return -1;
}

/* A numeric setting in [lo, hi], or dflt. */
static int int_setting(const eng_backend_args *a, const char *name, long lo,
                       long hi, long dflt, long *out, char *err,
                       size_t err_len)
{
    const char *v = eng_backend_setting(a, name, NULL);
    char *end;
    *out = dflt;
    if (v == NULL)
        return 0;
    *out = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || *out < lo || *out > hi) {
        snprintf(err, err_len, "sealer.%s: a number from %ld to %ld (as a "
                 "string)", name, lo, hi);
        return -1;
    }
    return 0;
}

static int dup_settings(struct kms *k, const eng_backend_args *a, char *err,
                        size_t err_len)
{
    k->region = strdup(eng_backend_setting(a, "region", ""));
    k->key_id = strdup(eng_backend_setting(a, "kms_key_id", ""));
    k->endpoint = strdup(eng_backend_setting(a, "endpoint", "vsock:3:8000"));
    k->host = eng_backend_setting(a, "host", NULL)
                  ? strdup(eng_backend_setting(a, "host", NULL))
                  : NULL;
    k->ca_file = eng_backend_setting(a, "ca_file", NULL)
                     ? eng_backend_path(a, "ca_file", NULL)
                     : NULL;
    if (!k->region || !k->key_id || !k->endpoint) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (k->region[0] == '\0' || k->key_id[0] == '\0') {
        snprintf(err, err_len, "sealer aws-kms needs region and kms_key_id");
        return -1;
    }
    return 0;
}

static int configure(struct kms *k, const eng_backend_args *a, char *err,
                     size_t err_len)
{
    long timeout, attempts, age;
    const char *plain = eng_backend_setting(a, "plain", "false");
    if (dup_settings(k, a, err, err_len) != 0 ||
        parse_endpoint(k, k->endpoint, err, err_len) != 0 ||
        int_setting(a, "timeout_ms", 100, 120000, 5000, &timeout, err,
                    err_len) != 0 ||
        int_setting(a, "max_attempts", 1, 10, 3, &attempts, err,
                    err_len) != 0 ||
        int_setting(a, "recipient_key_max_age", 60, 86400 * 30,
                    RKEY_MAX_AGE_DEFAULT, &age, err, err_len) != 0)
        return -1;
    if (strcmp(plain, "true") != 0 && strcmp(plain, "false") != 0) {
        snprintf(err, err_len, "sealer.plain: \"true\" or \"false\"");
        return -1;
    }
    k->cfg.plain = strcmp(plain, "true") == 0;
    if (!k->cfg.plain && k->ca_file == NULL) {
        snprintf(err, err_len, "sealer.ca_file: required (the CA bundle "
                 "that KMS's certificate chains to)");
        return -1;
    }
    k->cfg.region = k->region;
    k->cfg.host = k->host;
    k->cfg.ca_file = k->ca_file;
    k->cfg.timeout_ms = (int)timeout;
    k->cfg.max_attempts = (int)attempts;
    k->cfg.backoff_ms = 100;
    k->rkey_max_age = age;
    return 0;
}

static void kms_close(void *state)
{
    struct kms *k = state;
    if (k == NULL)
        return;
    eng_aws_rkey_free(k->rkey);
    pthread_rwlock_destroy(&k->lock);
    free(k->region);
    free(k->host);
    free(k->ca_file);
    free(k->key_id);
    free(k->endpoint);
    free(k);
}

static int kms_open(void **state, const eng_backend_args *args, char *err,
                    size_t err_len)
{
    struct kms *k = calloc(1, sizeof *k);
    *state = NULL;
    if (k == NULL) {
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    pthread_rwlock_init(&k->lock, NULL);
    if (configure(k, args, err, err_len) != 0) {
        kms_close(k);
        return SIGNER_ERR_CONFIG;
    }
    k->attest = eng_enclave_device();
    if (k->attest == NULL && args->create) {
        snprintf(err, err_len, "sealer aws-kms needs role = \"enclave\" and "
                 "an attestation device (attestation = \"nsm\")");
        kms_close(k);
        return SIGNER_ERR_CONFIG;
    }
    if (args->create &&
        eng_aws_rkey_new(&k->rkey, eng_unix_time()) != SIGNER_OK) {
        snprintf(err, err_len, "cannot make the RSA recipient key");
        kms_close(k);
        return SIGNER_ERR_INTERNAL;
    }
    *state = k;
    return SIGNER_OK;
}

/* Rotates the recipient key when it is due (the write lock waits for the
 * calls still using the old one). */
static void rotate_if_due(struct kms *k)
{
    int64_t now = eng_unix_time();
    int due, rc;
    pthread_rwlock_rdlock(&k->lock);
    due = k->rkey == NULL || now - k->rkey->created >= k->rkey_max_age;
    pthread_rwlock_unlock(&k->lock);
    if (!due)
        return;
    pthread_rwlock_wrlock(&k->lock);
    rc = k->rkey == NULL ? eng_aws_rkey_new(&k->rkey, now)
                         : eng_aws_rkey_rotate(&k->rkey, now, k->rkey_max_age);
    pthread_rwlock_unlock(&k->lock);
    if (rc < 0)
        eng_log(SIGNER_LOG_ERROR, "aws-kms: rotating the RSA recipient key "
                                  "failed; keeping the old one");
    else if (rc == 1)
        eng_log(SIGNER_LOG_INFO, "aws-kms: RSA recipient key rotated");
}

/* Fills c from a KMS failure: msg naming KMS, retry hint. */
static int call_failed(eng_seal_call *c, int rc, const eng_kms_err *ke,
                       const char *what)
{
    const char *m = ke->msg[0] ? ke->msg : signer_err_str(rc);
    if (c == NULL)
        return rc;
    c->retry_after = rc == SIGNER_ERR_UNAVAILABLE
                         ? (ke->retry_after > 0 ? ke->retry_after : 1)
                         : 0;
    if (strncmp(m, "KMS", 3) == 0 || strncmp(m, "credentials", 11) == 0)
        snprintf(c->msg, sizeof c->msg, "%s", m);
    else
        snprintf(c->msg, sizeof c->msg, "KMS %s: %.480s", what, m);
    return rc;
}

static int need_creds(eng_seal_call *c)
{
    if (c != NULL && c->creds != NULL)
        return 0;
    if (c != NULL)
        snprintf(c->msg, sizeof c->msg, "credentials: required for KMS "
                 "(the request carried no AWS credentials)");
    return -1;
}

static int kms_seal_call(void *state, eng_seal_call *c, unsigned char **blob,
                         size_t *blob_len, const signer_key_meta *meta,
                         const unsigned char *plain, size_t plain_len)
{
    struct kms *k = state;
    eng_kms_err ke;
    int rc;
    *blob = NULL;
    *blob_len = 0;
    if (need_creds(c) != 0)
        return SIGNER_ERR_BAD_REQUEST;
    memset(&ke, 0, sizeof ke);
    rc = eng_kms_seal(&k->cfg, blob, blob_len, &ke, c->creds, k->key_id,
                      meta, plain, plain_len);
    return rc == SIGNER_OK ? rc : call_failed(c, rc, &ke, "Encrypt");
}

/* A fresh document binding the recipient key (read lock held). */
static int fresh_document(struct kms *k, unsigned char **doc, size_t *len,
                          eng_seal_call *c)
{
    eng_attest_req req;
    char why[256];
    memset(&req, 0, sizeof req);
    req.public_key = k->rkey->spki;
    req.public_key_len = k->rkey->spki_len;
    if (eng_attest_document(k->attest, doc, len, &req, why, sizeof why) ==
        SIGNER_OK)
        return SIGNER_OK;
    snprintf(c->msg, sizeof c->msg, "attestation device: %s", why);
    return SIGNER_ERR_UNAVAILABLE;
}

static int kms_unseal_call(void *state, eng_seal_call *c,
                           unsigned char *plain, size_t plain_cap,
                           size_t *plain_len, const signer_key_meta *meta,
                           const unsigned char *blob, size_t blob_len)
{
    struct kms *k = state;
    unsigned char *doc = NULL;
    size_t dlen = 0;
    eng_kms_err ke;
    int rc, fmt = 0;
    *plain_len = 0;
    if (need_creds(c) != 0)
        return SIGNER_ERR_BAD_REQUEST;
    if (k->attest == NULL) {
        snprintf(c->msg, sizeof c->msg, "no attestation device");
        return SIGNER_ERR_UNAVAILABLE;
    }
    rotate_if_due(k);
    memset(&ke, 0, sizeof ke);
    pthread_rwlock_rdlock(&k->lock);
    rc = fresh_document(k, &doc, &dlen, c);
    if (rc == SIGNER_OK) {
        rc = eng_kms_unseal(&k->cfg, plain, plain_cap, plain_len, &fmt, &ke,
                            c->creds, meta, blob, blob_len, k->rkey, doc,
                            dlen);
        if (rc != SIGNER_OK)
            call_failed(c, rc, &ke, "Decrypt");
    }
    pthread_rwlock_unlock(&k->lock);
    free(doc);
    c->format = fmt;
    return rc;
}

static int kms_seal(void *state, unsigned char **blob, size_t *blob_len,
                    const signer_key_meta *meta, const unsigned char *plain,
                    size_t plain_len)
{
    return kms_seal_call(state, NULL, blob, blob_len, meta, plain, plain_len);
}

static int kms_unseal(void *state, unsigned char *plain, size_t plain_cap,
                      size_t *plain_len, const signer_key_meta *meta,
                      const unsigned char *blob, size_t blob_len)
{
    /* without a call there are no credentials: SIGNER_ERR_BAD_REQUEST */
    return kms_unseal_call(state, NULL, plain, plain_cap, plain_len, meta,
                           blob, blob_len);
}

static int kms_ready(void *state)
{
    struct kms *k = state;
    int ok;
    if (k == NULL || k->attest == NULL)
        return 0;
    pthread_rwlock_rdlock(&k->lock);
    ok = k->rkey != NULL;
    pthread_rwlock_unlock(&k->lock);
    return ok;
}

static void kms_describe(void *state, char *out, size_t out_len)
{
    struct kms *k = state;
    snprintf(out, out_len, "AWS KMS key %s in %s via %s", k->key_id,
             k->region, k->endpoint);
}

const eng_sealer_methods eng_sealer_aws_kms = {
    {"aws-kms", kms_settings, kms_open},
    kms_seal,     kms_unseal,
    kms_ready,    NULL,         kms_describe, kms_close,      kms_seal_call,
    kms_unseal_call};
