/* TLS under HTTP for the https listeners (docs/gateway.md): OpenSSL via
 * libevent's bufferevent_openssl, optional mTLS with a client CA and an
 * allowlist of certificate subjects or SHA-256 fingerprints. */
#ifndef ENG_TRANSPORT_TLS_H
#define ENG_TRANSPORT_TLS_H

#include <stddef.h>

struct bufferevent;
struct event_base;

/* TLS settings (the config's tls group). */
typedef struct eng_tls_conf {
    const char *cert_file;  /* PEM chain, leaf first */
    const char *key_file;   /* PEM private key */
    const char *client_ca;  /* PEM CA bundle: clients must present a
                             * certificate it issued (mTLS); NULL: no mTLS */
    const char *const *allow; /* NULL-ended; "sha256:HEX" or an RFC 2253
                             * subject ("CN=x,O=y"); empty: any client the
                             * CA issued */
} eng_tls_conf;

/* An SSL_CTX for the server side (TLS 1.2+).  NULL with the cause in
 * err. */
void *eng_tls_ctx_new(const eng_tls_conf *conf, char *err, size_t err_len);
void eng_tls_ctx_free(void *ctx);

/* A bufferevent doing the server side of TLS on the accepted fd (closes fd
 * on failure). */
struct bufferevent *eng_tls_bev_new(struct event_base *base, int fd,
                                    void *ctx);

/* "tls:sha256:HEX" of the verified client certificate into out, or "". */
void eng_tls_peer_id(struct bufferevent *bev, char *out, size_t out_len);

/* "sha256:HEX" of a PEM certificate file, for allowlists (0, or -1). */
int eng_tls_fingerprint_file(const char *pem, char *out, size_t out_len);

#endif
