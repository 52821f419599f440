/* KMS JSON 1.1 request bodies, answer parsing and error mapping: pure
 * functions, no I/O (see kms.h and docs/aws.md). */
#include "config.h"
#include "aws/kms.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <signer/plugin.h>

#include "aws/buf.h"
#include "util.h"

/* Adds name: base64(data) to obj.  0 ok. */
static int add_b64(cJSON *obj, const char *name, const unsigned char *data,
                   size_t len)
{
    char *b = eng_aws_b64_encode(data, len);
    cJSON *item;

    if (b == NULL)
        return -1;
    item = cJSON_AddStringToObject(obj, name, b);
    eng_wipe(b, strlen(b));
    free(b);
    return item ? 0 : -1;
}

static int add_context(cJSON *obj, const eng_kms_kv *ctx, size_t n)
{
    cJSON *c;
    size_t i;

    if (n == 0)
        return 0;
    if ((c = cJSON_AddObjectToObject(obj, "EncryptionContext")) == NULL)
        return -1;
    for (i = 0; i < n; i++)
        if (ctx[i].key == NULL || ctx[i].value == NULL ||
            cJSON_AddStringToObject(c, ctx[i].key, ctx[i].value) == NULL)
            return -1;
    return 0;
}

static int add_recipient(cJSON *obj, const unsigned char *doc, size_t len)
{
    cJSON *r;

    if (doc == NULL)
        return 0;
    if ((r = cJSON_AddObjectToObject(obj, "Recipient")) == NULL ||
        cJSON_AddStringToObject(r, "KeyEncryptionAlgorithm",
                                "RSAES_OAEP_SHA_256") == NULL)
        return -1;
    return add_b64(r, "AttestationDocument", doc, len);
}

/* Prints and frees obj (wiping the tree as cJSON frees it only if the
 * engine installed wiping allocators: print first, then delete). */
static char *finish(cJSON *obj, int ok)
{
    char *s = ok ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return s;
}

char *eng_kms_body_encrypt(const char *key_id, const unsigned char *plain,
                           size_t plain_len, const eng_kms_kv *ctx,
                           size_t n_ctx)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && key_id != NULL && plain_len > 0 &&
             plain_len <= ENG_KMS_PLAIN_MAX &&
             cJSON_AddStringToObject(o, "KeyId", key_id) != NULL &&
             add_b64(o, "Plaintext", plain, plain_len) == 0 &&
             add_context(o, ctx, n_ctx) == 0;
    return finish(o, ok);
}

char *eng_kms_body_decrypt(const char *key_id, const unsigned char *blob,
                           size_t blob_len, const eng_kms_kv *ctx,
                           size_t n_ctx, const unsigned char *doc,
                           size_t doc_len)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && blob_len > 0 && blob_len <= ENG_KMS_BLOB_MAX &&
             add_b64(o, "CiphertextBlob", blob, blob_len) == 0 &&
             add_context(o, ctx, n_ctx) == 0 &&
             (key_id == NULL ||
              cJSON_AddStringToObject(o, "KeyId", key_id) != NULL) &&
             add_recipient(o, doc, doc_len) == 0;
    return finish(o, ok);
}

char *eng_kms_body_generate_random(size_t n, const unsigned char *doc,
                                   size_t doc_len)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && n >= 1 && n <= 1024 &&
             cJSON_AddNumberToObject(o, "NumberOfBytes", (double)n) != NULL &&
             add_recipient(o, doc, doc_len) == 0;
    return finish(o, ok);
}

void eng_kms_body_free(char *body)
{
    if (body == NULL)
        return;
    eng_wipe(body, strlen(body));
    cJSON_free(body);
}

static int set_err(eng_kms_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(eng_kms_err *err, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int eng_kms_parse_field(unsigned char *out, size_t cap, size_t *out_len,
                        eng_kms_err *err, const char *body, size_t body_len,
                        const char *name, int refuse_plaintext)
{
    cJSON *o = cJSON_ParseWithLength(body, body_len);
    const cJSON *f, *p;
    int rc = SIGNER_ERR_INTERNAL;

    *out_len = 0;
    if (!cJSON_IsObject(o)) {
        rc = set_err(err, rc, "KMS answer is not a JSON object");
        goto cleanup;
    }
    p = cJSON_GetObjectItemCaseSensitive(o, "Plaintext");
    if (refuse_plaintext && p != NULL && !cJSON_IsNull(p)) {
        rc = set_err(err, rc, "KMS answered a Plaintext to a Recipient "
                     "request: refused (not a Nitro-aware KMS?)");
        goto cleanup;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(f)) {
        rc = set_err(err, rc, "KMS answer lacks %s", name);
        goto cleanup;
    }
    if (eng_aws_b64_decode(out, cap, out_len, f->valuestring,
                           strlen(f->valuestring)) != 0) {
        rc = strlen(f->valuestring) / 4 * 3 > cap + 2
                 ? set_err(err, SIGNER_ERR_TOO_LARGE, "KMS %s too large", name)
                 : set_err(err, rc, "KMS %s is not valid base64", name);
        goto cleanup;
    }
    rc = SIGNER_OK;
cleanup:
    cJSON_Delete(o);
    if (rc != SIGNER_OK)
        eng_wipe(out, cap);
    return rc;
}

/* "com.amazonaws.kms#AccessDeniedException" or
 * "AccessDeniedException:http://..." -> "AccessDeniedException". */
static void exception_name(char *out, size_t cap, const char *raw)
{
    const char *h = strrchr(raw, '#'), *s = h ? h + 1 : raw;
    size_t n = strcspn(s, ":"), i, j = 0;

    for (i = 0; i < n && j + 1 < cap; i++)
        if (isalnum((unsigned char)s[i]))
            out[j++] = s[i];
    out[j] = '\0';
}

/* The answer's message, printable ASCII only, into out. */
static void answer_message(char *out, size_t cap, const cJSON *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
    size_t i, j = 0;

    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(o, "Message");
    out[0] = '\0';
    if (!cJSON_IsString(m))
        return;
    for (i = 0; m->valuestring[i] != '\0' && j + 1 < cap; i++)
        out[j++] = isprint((unsigned char)m->valuestring[i])
                       ? m->valuestring[i] : '?';
    out[j] = '\0';
}

typedef struct kms_exc {
    const char *name;
    int rc;
    int retryable;
    const char *cause;
} kms_exc;

static const kms_exc kms_exceptions[] = {
    { "AccessDeniedException", SIGNER_ERR_INTERNAL, 0,
      "the key policy does not allow this role, or the enclave's attestation "
      "(PCR0 / ImageSha384) does not match the policy" },
    { "InvalidCiphertextException", SIGNER_ERR_FORBIDDEN, 0,
      "the sealed key is corrupted or bound to another key_id, chain or "
      "address (encryption context)" },
    { "IncorrectKeyException", SIGNER_ERR_FORBIDDEN, 0,
      "the sealed key was made under another KMS key" },
    { "InvalidSignatureException", SIGNER_ERR_INTERNAL, 0,
      "the request signature is wrong (credentials or clock)" },
    { "UnrecognizedClientException", SIGNER_ERR_INTERNAL, 0,
      "the access key is unknown" },
    { "ExpiredTokenException", SIGNER_ERR_INTERNAL, 0,
      "the session token expired" },
    { "NotFoundException", SIGNER_ERR_INTERNAL, 0,
      "the KMS key does not exist" },
    { "DisabledException", SIGNER_ERR_INTERNAL, 0, "the KMS key is disabled" },
    { "KMSInvalidStateException", SIGNER_ERR_INTERNAL, 0,
      "the KMS key is not in a usable state" },
    { "ThrottlingException", SIGNER_ERR_UNAVAILABLE, 1, "KMS is throttling" },
    { "LimitExceededException", SIGNER_ERR_UNAVAILABLE, 1,
      "a KMS request quota is exceeded" },
    { "KMSInternalException", SIGNER_ERR_UNAVAILABLE, 1, "KMS internal error" },
    { "KeyUnavailableException", SIGNER_ERR_UNAVAILABLE, 1,
      "the KMS key is temporarily unavailable" },
    { "DependencyTimeoutException", SIGNER_ERR_UNAVAILABLE, 1,
      "KMS timed out on a dependency" },
};

static const kms_exc *find_exception(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof kms_exceptions / sizeof kms_exceptions[0]; i++)
        if (strcmp(kms_exceptions[i].name, name) == 0)
            return &kms_exceptions[i];
    return NULL;
}

int eng_kms_map_error(eng_kms_err *err, int *retryable, int status,
                      const char *error_type, const char *body,
                      size_t body_len, int transport_rc,
                      const char *transport_msg)
{
    cJSON *o = NULL;
    const cJSON *t;
    const kms_exc *x;
    char kmsmsg[128] = "";
    int rc;

    err->http_status = status;
    err->type[0] = '\0';
    *retryable = 0;
    if (status == 0) { /* no answer: the transport failed */
        *retryable = transport_rc == SIGNER_ERR_UNAVAILABLE;
        snprintf(err->msg, sizeof err->msg, "KMS unreachable: %s",
                 transport_msg ? transport_msg : "transport error");
        return *retryable ? SIGNER_ERR_UNAVAILABLE : SIGNER_ERR_INTERNAL;
    }
    if (body != NULL && (o = cJSON_ParseWithLength(body, body_len)) != NULL) {
        t = cJSON_GetObjectItemCaseSensitive(o, "__type");
        if (cJSON_IsString(t))
            exception_name(err->type, sizeof err->type, t->valuestring);
        answer_message(kmsmsg, sizeof kmsmsg, o);
    }
    if (err->type[0] == '\0' && error_type != NULL)
        exception_name(err->type, sizeof err->type, error_type);
    cJSON_Delete(o);
    x = find_exception(err->type);
    if (x != NULL) {
        *retryable = x->retryable;
        rc = x->rc;
    } else {
        *retryable = status >= 500;
        rc = status >= 500 ? SIGNER_ERR_UNAVAILABLE : SIGNER_ERR_INTERNAL;
    }
    snprintf(err->msg, sizeof err->msg, "KMS refused the call (HTTP %d "
             "%.95s): %.200s%s%.127s", status,
             err->type[0] ? err->type : "no error type",
             x ? x->cause : (status >= 500 ? "KMS server error"
                                           : "unexpected KMS error"),
             kmsmsg[0] ? "; KMS says: " : "", kmsmsg);
    return rc;
}
