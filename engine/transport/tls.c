/* TLS for https listeners (tls.h). */
#include "config.h"
#include "tls.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The allowlist hangs off the SSL_CTX. */
typedef struct tls_allow {
    char **items;
    size_t n;
} tls_allow;

static int allow_index = -1;

/* "sha256:HEX" of cert into out (72 bytes). */
static void fingerprint(X509 *cert, char *out, size_t out_len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    size_t o;
    out[0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || out_len < 7 + 2 * n + 1)
        return;
    o = (size_t)snprintf(out, out_len, "sha256:");
    for (i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, out_len - o, "%02x", md[i]);
}

/* RFC 2253 subject of cert into out. */
static void subject(X509 *cert, char *out, size_t out_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;
    out[0] = '\0';
    if (b == NULL)
        return;
    X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    n = BIO_read(b, out, (int)out_len - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

/* The leaf certificate must be on the allowlist (if there is one). */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(
        x, SSL_get_ex_data_X509_STORE_CTX_idx());
    const tls_allow *a =
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), allow_index);
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    char fp[80], subj[512];
    size_t i;
    if (!ok || X509_STORE_CTX_get_error_depth(x) != 0 || a == NULL ||
        a->n == 0)
        return ok;
    fingerprint(cert, fp, sizeof fp);
    subject(cert, subj, sizeof subj);
    for (i = 0; i < a->n; i++)
        if (strcasecmp(a->items[i], fp) == 0 || strcmp(a->items[i], subj) == 0)
            return 1;
    X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
    return 0;
}

static void allow_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                       long argl, void *argp)
{
    tls_allow *a = ptr;
    size_t i;
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (a == NULL)
        return;
    for (i = 0; i < a->n; i++)
        free(a->items[i]);
    free(a->items);
    free(a);
}

/* Client verification: the CA bundle and the allowlist. */
static int tls_mtls(SSL_CTX *ctx, const eng_tls_conf *conf, char *err,
                    size_t err_len)
{
    tls_allow *a;
    size_t n = 0;
    STACK_OF(X509_NAME) *names;
    if (SSL_CTX_load_verify_locations(ctx, conf->client_ca, NULL) != 1 ||
        (names = SSL_load_client_CA_file(conf->client_ca)) == NULL) {
        snprintf(err, err_len, "tls.client_ca %s: cannot be read as PEM",
                 conf->client_ca);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       verify_cb);
    while (conf->allow != NULL && conf->allow[n] != NULL)
        n++;
    if ((a = calloc(1, sizeof *a)) == NULL ||
        (n > 0 && (a->items = calloc(n, sizeof *a->items)) == NULL)) {
        free(a);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (a->n = 0; a->n < n; a->n++)
        if ((a->items[a->n] = strdup(conf->allow[a->n])) == NULL)
            break;
    SSL_CTX_set_ex_data(ctx, allow_index, a);
    return 0;
}

void *eng_tls_ctx_new(const eng_tls_conf *conf, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (allow_index < 0)
        allow_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
                                               allow_free);
    if (ctx == NULL) {
        snprintf(err, err_len, "tls: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Resumed sessions (with a verified client certificate) need an id
     * context, or OpenSSL fails the resumption with an internal error. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"signerd", 7);
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1) {
        snprintf(err, err_len, "tls.cert %s: cannot be read as a PEM "
                               "certificate chain", conf->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->key_file, SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_len, "tls.key %s: cannot be read, or does not "
                               "match tls.cert", conf->key_file);
        goto fail;
    }
    if (conf->client_ca != NULL && tls_mtls(ctx, conf, err, err_len) != 0)
        goto fail;
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

void eng_tls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

struct bufferevent *eng_tls_bev_new(struct event_base *base, int fd,
                                    void *ctx)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL)
        return NULL;
    /* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl (and frees it). */
    return bufferevent_openssl_socket_new(base, fd, ssl,
                                          BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

void eng_tls_peer_id(struct bufferevent *bev, char *out, size_t out_len)
{
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *cert = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    char fp[80];
    out[0] = '\0';
    if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    fingerprint(cert, fp, sizeof fp);
    snprintf(out, out_len, "tls:%s", fp);
}

int eng_tls_fingerprint_file(const char *pem, char *out, size_t out_len)
{
    FILE *f = fopen(pem, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    if (cert == NULL)
        return -1;
    fingerprint(cert, out, out_len);
    X509_free(cert);
    return out[0] != '\0' ? 0 : -1;
}
