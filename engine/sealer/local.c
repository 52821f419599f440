/* "local" sealer row: AES-256-GCM (OpenSSL EVP) under a master key file.
 * Its check value is HMAC-SHA256(master key, CHECK_LABEL), which identifies
 * the master key without revealing it. */
#include "config.h"
#include "sealer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

#define MASTER_LEN 32
#define AAD_LABEL "enclave-signer/seal/v1"
#define CHECK_LABEL "enclave-signer master key check v1"

struct local {
    unsigned char *key; /* MASTER_LEN bytes of secure memory */
    char *path;         /* the master key file */
};

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char *dir = eng_dirname(path);
    int fd;
    if (dir == NULL)
        return;
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Creates the master key file; 0, 1 if it already exists, -1 on error. */
static int create_master(const char *path, unsigned char *key, char *err,
                         size_t err_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 1;
        snprintf(err, err_len, "cannot create master key file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    if (eng_random(key, MASTER_LEN) != 0 ||
        write_all(fd, key, MASTER_LEN) != 0 || fsync(fd) != 0) {
        snprintf(err, err_len, "cannot write master key file %s: %s", path,
                 strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    fsync_dir_of(path);
    return 0;
}

static int read_master(const char *path, unsigned char *key, char *err,
                       size_t err_len)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open master key file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "master key file %s is not a regular file",
                 path);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, err_len,
                 "master key file %s is accessible by group or others (mode "
                 "%03o): chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    if (st.st_size != MASTER_LEN) {
        snprintf(err, err_len,
                 "master key file %s has %lld bytes, expected %d", path,
                 (long long)st.st_size, MASTER_LEN);
        close(fd);
        return -1;
    }
    n = read(fd, key, MASTER_LEN);
    close(fd);
    if (n != MASTER_LEN) {
        snprintf(err, err_len, "cannot read master key file %s", path);
        return -1;
    }
    return 0;
}

static void local_close(void *state)
{
    struct local *l = state;
    if (l == NULL)
        return;
    eng_secure_free(l->key, MASTER_LEN);
    free(l->path);
    free(l);
}

/* Creates (when allowed and absent) or reads the master key file. */
static int local_load(struct local *l, const eng_backend_args *args,
                      char *err, size_t err_len)
{
    struct stat st;
    int r;
    if (!args->create) {
        if (stat(l->path, &st) != 0 && errno == ENOENT) {
            snprintf(err, err_len, "master key file %s does not exist",
                     l->path);
            return SIGNER_ERR_NOT_FOUND;
        }
        r = 1;
    } else {
        r = create_master(l->path, l->key, err, err_len);
        if (r == 0 && eng_created_add(args->created, l->path, 0) != 0) {
            unlink(l->path);
            snprintf(err, err_len, "out of memory");
            return SIGNER_ERR_NOMEM;
        }
    }
    if (r == 1)
        r = read_master(l->path, l->key, err, err_len);
    return r < 0 ? SIGNER_ERR_CONFIG : SIGNER_OK;
}

static int local_open(void **state, const eng_backend_args *args, char *err,
                      size_t err_len)
{
    struct local *l = calloc(1, sizeof *l);
    int rc;
    *state = NULL;
    if (l == NULL || (l->key = eng_secure_alloc(MASTER_LEN)) == NULL ||
        (l->path = eng_backend_path(args, "master_key_file", "master.key")) ==
            NULL) {
        snprintf(err, err_len, "out of memory");
        local_close(l);
        return SIGNER_ERR_NOMEM;
    }
    if ((rc = local_load(l, args, err, err_len)) != SIGNER_OK) {
        local_close(l);
        return rc;
    }
    *state = l;
    return SIGNER_OK;
}

/* Feeds the AAD (EVP_CipherUpdate serves both directions): label, version
 * byte, then key_id, chain, address, each ended by NUL
 * so no two metas serialise alike. */
static int aead_aad(EVP_CIPHER_CTX *ctx, const signer_key_meta *meta)
{
    static const unsigned char version = ENG_SEAL_VERSION;
    int outl;
    const char *parts[3];
    size_t i;
    if (meta == NULL || meta->key_id == NULL || meta->chain == NULL ||
        meta->address == NULL)
        return 0;
    parts[0] = meta->key_id;
    parts[1] = meta->chain;
    parts[2] = meta->address;
    if (EVP_CipherUpdate(ctx, NULL, &outl, (const unsigned char *)AAD_LABEL,
                          (int)sizeof AAD_LABEL) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, &version, 1) != 1)
        return 0;
    for (i = 0; i < 3; i++)
        if (EVP_CipherUpdate(ctx, NULL, &outl,
                             (const unsigned char *)parts[i],
                              (int)strlen(parts[i]) + 1) != 1)
            return 0;
    return 1;
}

static int local_seal(void *state, unsigned char **blob, size_t *blob_len,
                      const signer_key_meta *meta, const unsigned char *plain,
                      size_t plain_len)
{
    struct local *s = state;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *out = NULL;
    int outl = 0, fin = 0, rc = SIGNER_ERR_INTERNAL;
    size_t total = ENG_SEAL_OVERHEAD + plain_len;

    *blob = NULL;
    *blob_len = 0;
    if (plain_len > 4096)
        return SIGNER_ERR_TOO_LARGE;
    if ((out = malloc(total)) == NULL)
        return SIGNER_ERR_NOMEM;
    out[0] = ENG_SEAL_VERSION;
    if (eng_random(out + 1, ENG_SEAL_NONCE) != 0)
        goto cleanup;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        goto cleanup;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->key, out + 1) !=
            1 ||
        !aead_aad(ctx, meta) ||
        EVP_EncryptUpdate(ctx, out + 1 + ENG_SEAL_NONCE, &outl, plain,
                          (int)plain_len) != 1 ||
        EVP_EncryptFinal_ex(ctx, out + 1 + ENG_SEAL_NONCE + outl, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ENG_SEAL_TAG,
                            out + 1 + ENG_SEAL_NONCE + plain_len) != 1)
        goto cleanup;
    *blob = out;
    *blob_len = total;
    out = NULL;
    rc = SIGNER_OK;
cleanup:
    free(out);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static int local_unseal(void *state, unsigned char *plain, size_t plain_cap,
                        size_t *plain_len, const signer_key_meta *meta,
                        const unsigned char *blob, size_t blob_len)
{
    struct local *s = state;
    EVP_CIPHER_CTX *ctx = NULL;
    int outl = 0, fin = 0, rc = SIGNER_ERR_FORBIDDEN;
    size_t ct_len;

    *plain_len = 0;
    if (blob_len < ENG_SEAL_OVERHEAD || blob[0] != ENG_SEAL_VERSION)
        return SIGNER_ERR_FORBIDDEN;
    ct_len = blob_len - ENG_SEAL_OVERHEAD;
    if (ct_len > plain_cap)
        return SIGNER_ERR_TOO_LARGE;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        return SIGNER_ERR_NOMEM;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->key, blob + 1) !=
            1 ||
        !aead_aad(ctx, meta) ||
        EVP_DecryptUpdate(ctx, plain, &outl, blob + 1 + ENG_SEAL_NONCE,
                          (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ENG_SEAL_TAG,
                            (void *)(blob + 1 + ENG_SEAL_NONCE + ct_len)) !=
            1 ||
        EVP_DecryptFinal_ex(ctx, plain + outl, &fin) != 1) {
        eng_wipe(plain, plain_cap);
        goto cleanup;
    }
    *plain_len = (size_t)(outl + fin);
    rc = SIGNER_OK;
cleanup:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

/* The key is read once at open: ready while open. */
static int local_ready(void *state) { return state != NULL; }

static int local_check_value(void *state,
                             unsigned char out[ENG_SEALER_CHECK_LEN])
{
    struct local *l = state;
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), l->key, MASTER_LEN,
             (const unsigned char *)CHECK_LABEL, sizeof CHECK_LABEL - 1, out,
             &n) == NULL ||
        n != ENG_SEALER_CHECK_LEN) {
        eng_wipe(out, ENG_SEALER_CHECK_LEN);
        return SIGNER_ERR_INTERNAL;
    }
    return SIGNER_OK;
}

static void local_describe(void *state, char *out, size_t out_len)
{
    snprintf(out, out_len, "master key file %s",
             ((struct local *)state)->path);
}

static const char *const local_settings[] = {"master_key_file", NULL};

const eng_sealer_methods eng_sealer_local = {
    {"local", local_settings, local_open},
    local_seal,  local_unseal,
    local_ready, local_check_value, local_describe, local_close,
    NULL,        NULL};
