/* Cache of unsealed key records (key, secret) in locked memory, so a hot key
 * is not read from the keystore and unsealed on every signature.  Entries
 * expire after ttl seconds and are wiped on eviction, expiry and free.
 * Direct-mapped: a colliding key_id evicts the older entry. */
#ifndef ENG_KEYCACHE_H
#define ENG_KEYCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct eng_keycache eng_keycache;

/* Bytes of locked memory a cache of max_entries takes (one block). */
size_t eng_keycache_bytes(size_t max_entries);

/* NULL when ttl_seconds is 0 (cache off) or memory is short. */
eng_keycache *eng_keycache_new(size_t max_entries, int ttl_seconds);

/* 1 on a hit (plain, chain, address copied), 0 on a miss. */
int eng_keycache_get(eng_keycache *c, unsigned char *plain, size_t plain_cap,
                     size_t *plain_len, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, const char *key_id,
                     int64_t now);

void eng_keycache_put(eng_keycache *c, const char *key_id,
                      const unsigned char *plain, size_t plain_len,
                      const char *chain, const char *address, int64_t now);

/* Number of live entries (for tests and metrics). */
size_t eng_keycache_count(eng_keycache *c, int64_t now);

/* Wipes every entry and frees. */
void eng_keycache_free(eng_keycache *c);

#endif
