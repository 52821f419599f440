/* The gateway's record cache (docs/gateway.md, "Record cache"): key_id ->
 * the key's sealed record as the gateway attaches it to a frame (chain,
 * address and the base64 text of the sealed blob).  Sealed records never
 * change once stored, so a hit spares the keystore (SQLite or DynamoDB)
 * and the base64 encoding on every key-using request.  No secret is held:
 * a sealed blob opens only inside an enclave.
 *
 * Bounded (max_entries slots allocated once), evicted by CLOCK (a hit only
 * sets a bit), thread-safe (one mutex), and every slot is wiped in place
 * when its entry is evicted and when the cache is freed. */
#ifndef ENG_GATEWAY_RECORD_CACHE_H
#define ENG_GATEWAY_RECORD_CACHE_H

#include <stddef.h>

#include <signer/plugin.h>

/* Base64 texts longer than this are not cached (looked up each time). */
#define ENG_GW_RCACHE_TEXT_MAX 8192
/* gateway.record_cache_max_entries when the config does not set it. */
#define ENG_GW_RCACHE_DEFAULT_ENTRIES 4096
/* The largest gateway.record_cache_max_entries accepted. */
#define ENG_GW_RCACHE_MAX_ENTRIES 1000000
/* Chain names as the keystore returns them (capacity, NUL included). */
#define ENG_GW_RCACHE_CHAIN_MAX 64

typedef struct eng_gw_rcache eng_gw_rcache;

/* Counters for /metrics. */
typedef struct eng_gw_rcache_stats {
    size_t entries, max_entries;
    unsigned long long hits, misses, evictions;
} eng_gw_rcache_stats;

/* A cache of at most max_entries records (1..ENG_GW_RCACHE_MAX_ENTRIES).
 * NULL on ENOMEM or a size out of range (0 means "off": no cache). */
eng_gw_rcache *eng_gw_rcache_new(size_t max_entries);

/* Wipes every slot and frees c (NULL is a no-op). */
void eng_gw_rcache_free(eng_gw_rcache *c);

/* Looks key_id up.  1 on a hit with chain, address (NUL-terminated) and
 * text[0..*text_len) (NUL-terminated) copied out; 0 on a miss or when an
 * output is too small (outputs wiped). */
int eng_gw_rcache_get(eng_gw_rcache *c, char *chain, size_t chain_cap,
                      char *address, size_t address_cap, char *text,
                      size_t text_cap, size_t *text_len, const char *key_id);

/* Inserts (or refreshes) key_id's record, evicting the least recently
 * used entry CLOCK finds when full.  SIGNER_OK, or SIGNER_ERR_TOO_LARGE
 * when a field is over its limit (nothing cached), SIGNER_ERR_NOMEM. */
int eng_gw_rcache_put(eng_gw_rcache *c, const char *key_id,
                      const char *chain, const char *address,
                      const char *text, size_t text_len);

/* The counters now. */
void eng_gw_rcache_stats_get(eng_gw_rcache *c, eng_gw_rcache_stats *out);

/* 1 if the n bytes at needle occur anywhere in c's storage (live, evicted
 * or free slots), else 0: lets tests prove evicted entries are wiped. */
int eng_gw_rcache_holds(eng_gw_rcache *c, const void *needle, size_t n);

#endif
