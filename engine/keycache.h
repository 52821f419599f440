/* Cache of unsealed key records (key, secret) in locked memory, so a hot key
 * is not read from the keystore and unsealed on every signature.  Entries
 * expire after ttl seconds and are wiped on eviction, expiry and free.
 * Direct-mapped: a colliding key_id evicts the older entry. */
#ifndef ENG_KEYCACHE_H
#define ENG_KEYCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <signer/plugin.h>

typedef struct eng_keycache eng_keycache;

/* Bytes a plugin may keep with a cached key (its auxiliary slot: e.g. the
 * parsed public key, so it is derived once per unseal, not per request). */
#define ENG_KEYCACHE_AUX_MAX SIGNER_MAX_KEY_AUX

/* Where an entry was found or put: its slot and generation (gen 0: none).
 * A later put in the slot changes the generation, so a stale ref reaches
 * nothing. */
typedef struct eng_keycache_ref {
    size_t slot;
    uint64_t gen;
} eng_keycache_ref;

/* Bytes of locked memory a cache of max_entries takes (one block). */
size_t eng_keycache_bytes(size_t max_entries);

/* NULL when ttl_seconds is 0 (cache off) or memory is short. */
eng_keycache *eng_keycache_new(size_t max_entries, int ttl_seconds);

/* 1 on a hit (plain, chain, address copied), 0 on a miss. */
int eng_keycache_get(eng_keycache *c, unsigned char *plain, size_t plain_cap,
                     size_t *plain_len, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, const char *key_id,
                     int64_t now);

/* 1 if a live entry for key_id is cached (a check: nothing is copied). */
int eng_keycache_has(eng_keycache *c, const char *key_id, int64_t now);

void eng_keycache_put(eng_keycache *c, const char *key_id,
                      const unsigned char *plain, size_t plain_len,
                      const char *chain, const char *address, int64_t now);

/* eng_keycache_get / eng_keycache_put that also set *ref to the entry. */
int eng_keycache_get_ref(eng_keycache *c, unsigned char *plain,
                         size_t plain_cap, size_t *plain_len, char *chain,
                         size_t chain_cap, char *address, size_t address_cap,
                         const char *key_id, int64_t now,
                         eng_keycache_ref *ref);
void eng_keycache_put_ref(eng_keycache *c, const char *key_id,
                          const unsigned char *plain, size_t plain_len,
                          const char *chain, const char *address, int64_t now,
                          eng_keycache_ref *ref);

/* The auxiliary slot of the live entry ref names: 1 and aux copied when it
 * holds data, 0 when empty, gone (evicted, expired) or too big for cap. */
int eng_keycache_aux_get(eng_keycache *c, const eng_keycache_ref *ref,
                         unsigned char *aux, size_t aux_cap, size_t *aux_len,
                         int64_t now);

/* Fills the auxiliary slot of the live entry ref names (wiped with the
 * entry).  0, or -1 when the entry is gone or len is over the maximum. */
int eng_keycache_aux_put(eng_keycache *c, const eng_keycache_ref *ref,
                         const unsigned char *aux, size_t aux_len,
                         int64_t now);

/* Number of live entries (for tests and metrics). */
size_t eng_keycache_count(eng_keycache *c, int64_t now);

/* Wipes every entry and frees. */
void eng_keycache_free(eng_keycache *c);

#endif
