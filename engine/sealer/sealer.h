/* Sealers turn key material into an opaque blob bound to its metadata
 * (key_id, chain, address) and back.  Each backend is a row of methods
 * (like SQLite's sqlite3_io_methods), picked by name from the config's
 * sealer.type; nothing above this header knows which row it has.
 * Rows: "local" (AES-256-GCM under a 32-byte master key file, local.c) and
 * "none" (roles that never seal, e.g. a gateway).  A new backend (aws-kms)
 * is one more row in sealer.c. */
#ifndef ENG_SEALER_H
#define ENG_SEALER_H

#include <stddef.h>
#include <signer/plugin.h>

#include "backend.h"

#define ENG_SEAL_VERSION 0x01
#define ENG_SEAL_NONCE 12
#define ENG_SEAL_TAG 16
#define ENG_SEAL_OVERHEAD (1 + ENG_SEAL_NONCE + ENG_SEAL_TAG)

/* Bytes of a sealer check value (see check_value below). */
#define ENG_SEALER_CHECK_LEN 32

typedef struct eng_sealer eng_sealer;

struct eng_aws_creds;

/* Per-call context of the *_call methods: what a remote sealer (aws-kms)
 * needs from the request, and why it failed.  Never holds a secret in msg. */
typedef struct eng_seal_call {
    const struct eng_aws_creds *creds; /* the frame's AWS credentials, or
                                          NULL when it carried none */
    char msg[512];   /* on failure: a cause safe to log and show */
    int retry_after; /* seconds, with SIGNER_ERR_UNAVAILABLE */
    int format;      /* unseal: the blob's format (0 native; 2 reference) */
} eng_seal_call;

/* One sealer backend.  Every method receives the state its open made. */
typedef struct eng_sealer_methods {
    /* name (sealer.type in the config), settings, open (SIGNER_ERR_NOT_FOUND
     * when its key material is absent and args->create is 0); first, so a
     * row converts to its methods (engine/backend.h). */
    eng_backend_row row;
    int (*seal)(void *state, unsigned char **blob, size_t *blob_len,
                const signer_key_meta *meta, const unsigned char *plain,
                size_t plain_len);
    int (*unseal)(void *state, unsigned char *plain, size_t plain_cap,
                  size_t *plain_len, const signer_key_meta *meta,
                  const unsigned char *blob, size_t blob_len);
    /* 1 if it can seal and unseal now (GET /readyz), else 0. */
    int (*ready)(void *state);
    /* A value that identifies the sealing key without revealing it; the
     * keystore records it so start-up refuses another key.  SIGNER_OK, or
     * SIGNER_ERR_NOT_FOUND if this backend has none. */
    int (*check_value)(void *state, unsigned char out[ENG_SEALER_CHECK_LEN]);
    /* What an operator must restore for the keys sealed so far, e.g.
     * "master key file /var/lib/x/master.key". */
    void (*describe)(void *state, char *out, size_t out_len);
    /* Wipes its secrets and frees state (NULL is a no-op). */
    void (*close)(void *state);
    /* Optional: seal and unseal with a per-call context (credentials in,
     * cause out).  NULL: the plain seal/unseal above are used. */
    int (*seal_call)(void *state, eng_seal_call *c, unsigned char **blob,
                     size_t *blob_len, const signer_key_meta *meta,
                     const unsigned char *plain, size_t plain_len);
    int (*unseal_call)(void *state, eng_seal_call *c, unsigned char *plain,
                       size_t plain_cap, size_t *plain_len,
                       const signer_key_meta *meta,
                       const unsigned char *blob, size_t blob_len);
} eng_sealer_methods;

extern const eng_sealer_methods eng_sealer_local;
extern const eng_sealer_methods eng_sealer_none;
extern const eng_sealer_methods eng_sealer_aws_kms;

/* The row named name, or NULL. */
const eng_sealer_methods *eng_sealer_find(const char *name);
/* The row names as "\"local\", \"none\"" for messages. */
void eng_sealer_names(char *out, size_t out_len);

/* Opens the row named name into *out (NULL on failure).  Returns the row's
 * open result; SIGNER_ERR_CONFIG for an unknown name. */
int eng_sealer_open(eng_sealer **out, const char *name,
                    const eng_backend_args *args, char *err, size_t err_len)
    SIGNER_WARN_UNUSED;

/* The "local" row on one master key file, created (32 random bytes, mode
 * 0600, fsync'd) if absent; an existing one must be exactly 32 bytes and not
 * readable by group or others.  NULL with a reason in err. */
eng_sealer *eng_sealer_local_open(const char *master_key_path, char *err,
                                  size_t err_len);

/* Seals plain into a malloc'd blob (local: version | nonce | ciphertext |
 * tag, with the version and meta as AAD).  SIGNER_OK or a negative
 * signer_err; SIGNER_ERR_UNAVAILABLE when s is NULL or "none". */
int eng_sealer_seal(eng_sealer *s, unsigned char **blob, size_t *blob_len,
                    const signer_key_meta *meta, const unsigned char *plain,
                    size_t plain_len) SIGNER_WARN_UNUSED;

/* Opens a blob sealed for exactly meta.  Any change to blob or meta gives
 * SIGNER_ERR_FORBIDDEN; plain is wiped on failure. */
int eng_sealer_unseal(eng_sealer *s, unsigned char *plain, size_t plain_cap,
                      size_t *plain_len, const signer_key_meta *meta,
                      const unsigned char *blob, size_t blob_len)
    SIGNER_WARN_UNUSED;

/* eng_sealer_seal / eng_sealer_unseal with a per-call context c (its msg
 * and retry_after filled on failure); rows without *_call methods ignore
 * c->creds. */
int eng_sealer_seal_call(eng_sealer *s, eng_seal_call *c,
                         unsigned char **blob, size_t *blob_len,
                         const signer_key_meta *meta,
                         const unsigned char *plain, size_t plain_len)
    SIGNER_WARN_UNUSED;
int eng_sealer_unseal_call(eng_sealer *s, eng_seal_call *c,
                           unsigned char *plain, size_t plain_cap,
                           size_t *plain_len, const signer_key_meta *meta,
                           const unsigned char *blob, size_t blob_len)
    SIGNER_WARN_UNUSED;

/* 1 if s can seal and unseal now; 0 for NULL. */
int eng_sealer_ready(eng_sealer *s);

/* The row's check value (see eng_sealer_methods.check_value). */
int eng_sealer_check_value(eng_sealer *s,
                           unsigned char out[ENG_SEALER_CHECK_LEN])
    SIGNER_WARN_UNUSED;

/* The row's description of its key material ("" for NULL). */
void eng_sealer_describe(eng_sealer *s, char *out, size_t out_len);

/* Closes (wiping key material); NULL is a no-op. */
void eng_sealer_close(eng_sealer *s);
/* Same as eng_sealer_close (older name). */
void eng_sealer_free(eng_sealer *s);

#endif
