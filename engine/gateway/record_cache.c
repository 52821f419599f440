/* The gateway's record cache (record_cache.h): a fixed array of slots, a
 * chained hash index over them, CLOCK eviction, one mutex. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "config.h"
#include "gateway/record_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One cached record.  text is kept (wiped) across reuse of the slot. */
typedef struct rc_slot {
    char key_id[SIGNER_KEY_ID_LEN + 1];
    char chain[ENG_GW_RCACHE_CHAIN_MAX];
    char address[SIGNER_MAX_ADDRESS];
    char *text; /* text_cap bytes, malloc'd */
    size_t text_len, text_cap;
    int32_t next; /* next slot in the same bucket, -1 ends */
    unsigned char used, ref;
} rc_slot;

struct eng_gw_rcache {
    pthread_mutex_t mu;
    rc_slot *slots;
    int32_t *buckets; /* first slot of each chain, -1 if none */
    size_t n_buckets; /* a power of two >= max */
    size_t max, n_used, hand;
    unsigned long long hits, misses, evictions;
};

/* FNV-1a of a key_id, reduced to a bucket. */
static size_t rc_bucket(const eng_gw_rcache *c, const char *key_id)
{
    uint32_t h = 2166136261u;
    for (; *key_id != '\0'; key_id++)
        h = (h ^ (unsigned char)*key_id) * 16777619u;
    return h & (c->n_buckets - 1);
}

/* The slot holding key_id, or -1. */
static int32_t rc_find(const eng_gw_rcache *c, const char *key_id)
{
    int32_t i = c->buckets[rc_bucket(c, key_id)];
    while (i >= 0 && strcmp(c->slots[i].key_id, key_id) != 0)
        i = c->slots[i].next;
    return i;
}

/* Takes slot i out of its chain and wipes it in place. */
static void rc_evict(eng_gw_rcache *c, int32_t i)
{
    rc_slot *s = &c->slots[i];
    int32_t *pp = &c->buckets[rc_bucket(c, s->key_id)];
    while (*pp >= 0 && *pp != i)
        pp = &c->slots[*pp].next;
    if (*pp == i)
        *pp = s->next;
    eng_wipe(s->key_id, sizeof s->key_id);
    eng_wipe(s->chain, sizeof s->chain);
    eng_wipe(s->address, sizeof s->address);
    if (s->text != NULL)
        eng_wipe(s->text, s->text_cap);
    s->text_len = 0;
    s->next = -1;
    s->used = s->ref = 0;
    c->evictions++;
}

/* A slot for a new entry: a never-used one, else CLOCK's victim (wiped). */
static int32_t rc_take_slot(eng_gw_rcache *c)
{
    size_t steps;
    if (c->n_used < c->max)
        return (int32_t)c->n_used++;
    for (steps = 0; steps < 2 * c->max; steps++) {
        rc_slot *s = &c->slots[c->hand];
        int32_t i = (int32_t)c->hand;
        c->hand = (c->hand + 1) % c->max;
        if (s->ref) {
            s->ref = 0;
            continue;
        }
        rc_evict(c, i);
        return i;
    }
    rc_evict(c, (int32_t)c->hand); /* unreachable: every bit was cleared */
    return (int32_t)c->hand;
}

/* Makes s->text hold at least need bytes.  0, or -1 on ENOMEM (the slot
 * then has no buffer). */
static int rc_reserve(rc_slot *s, size_t need)
{
    size_t cap = 256;
    if (s->text != NULL && s->text_cap >= need)
        return 0;
    while (cap < need)
        cap *= 2;
    if (s->text != NULL) {
        eng_wipe(s->text, s->text_cap);
        free(s->text);
    }
    s->text_cap = 0;
    if ((s->text = malloc(cap)) == NULL)
        return -1;
    s->text_cap = cap;
    return 0;
}

eng_gw_rcache *eng_gw_rcache_new(size_t max_entries)
{
    eng_gw_rcache *c;
    size_t i;
    if (max_entries == 0 || max_entries > ENG_GW_RCACHE_MAX_ENTRIES ||
        (c = calloc(1, sizeof *c)) == NULL)
        return NULL;
    c->max = max_entries;
    for (c->n_buckets = 1; c->n_buckets < max_entries; c->n_buckets *= 2)
        ;
    c->slots = calloc(max_entries, sizeof *c->slots);
    c->buckets = malloc(c->n_buckets * sizeof *c->buckets);
    if (c->slots == NULL || c->buckets == NULL) {
        free(c->slots);
        free(c->buckets);
        free(c);
        return NULL;
    }
    for (i = 0; i < c->n_buckets; i++)
        c->buckets[i] = -1;
    for (i = 0; i < max_entries; i++)
        c->slots[i].next = -1;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void eng_gw_rcache_free(eng_gw_rcache *c)
{
    size_t i;
    if (c == NULL)
        return;
    for (i = 0; i < c->max; i++) {
        rc_slot *s = &c->slots[i];
        if (s->text != NULL) {
            eng_wipe(s->text, s->text_cap);
            free(s->text);
        }
    }
    eng_wipe(c->slots, c->max * sizeof *c->slots);
    free(c->slots);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Copies slot s out; 1, or 0 with the outputs wiped when one is small. */
static int rc_copy_out(const rc_slot *s, char *chain, size_t chain_cap,
                       char *address, size_t address_cap, char *text,
                       size_t text_cap, size_t *text_len)
{
    size_t cl = strlen(s->chain), al = strlen(s->address);
    if (cl >= chain_cap || al >= address_cap || s->text_len >= text_cap) {
        eng_wipe(chain, chain_cap);
        eng_wipe(address, address_cap);
        eng_wipe(text, text_cap);
        return 0;
    }
    memcpy(chain, s->chain, cl + 1);
    memcpy(address, s->address, al + 1);
    memcpy(text, s->text, s->text_len);
    text[s->text_len] = '\0';
    *text_len = s->text_len;
    return 1;
}

int eng_gw_rcache_get(eng_gw_rcache *c, char *chain, size_t chain_cap,
                      char *address, size_t address_cap, char *text,
                      size_t text_cap, size_t *text_len, const char *key_id)
{
    int32_t i;
    int hit = 0;
    *text_len = 0;
    if (c == NULL || strlen(key_id) > SIGNER_KEY_ID_LEN)
        return 0;
    pthread_mutex_lock(&c->mu);
    if ((i = rc_find(c, key_id)) >= 0) {
        hit = rc_copy_out(&c->slots[i], chain, chain_cap, address,
                          address_cap, text, text_cap, text_len);
        c->slots[i].ref = 1;
    }
    if (hit)
        c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

int eng_gw_rcache_put(eng_gw_rcache *c, const char *key_id,
                      const char *chain, const char *address,
                      const char *text, size_t text_len)
{
    size_t kl = strlen(key_id), cl = strlen(chain), al = strlen(address), b;
    rc_slot *s;
    int32_t i;
    int rc = SIGNER_OK;
    if (c == NULL || kl == 0 || kl > SIGNER_KEY_ID_LEN ||
        cl >= ENG_GW_RCACHE_CHAIN_MAX || al >= SIGNER_MAX_ADDRESS ||
        text_len > ENG_GW_RCACHE_TEXT_MAX)
        return SIGNER_ERR_TOO_LARGE;
    pthread_mutex_lock(&c->mu);
    if ((i = rc_find(c, key_id)) < 0) {
        i = rc_take_slot(c);
        b = rc_bucket(c, key_id);
        c->slots[i].next = c->buckets[b];
        c->buckets[b] = i;
    }
    s = &c->slots[i];
    if (rc_reserve(s, text_len + 1) != 0) {
        memcpy(s->key_id, key_id, kl + 1); /* so the eviction unlinks it */
        rc_evict(c, i);
        c->evictions--;
        rc = SIGNER_ERR_NOMEM;
        goto cleanup;
    }
    eng_wipe(s->text, s->text_cap);
    memcpy(s->key_id, key_id, kl + 1);
    memcpy(s->chain, chain, cl + 1);
    memcpy(s->address, address, al + 1);
    memcpy(s->text, text, text_len);
    s->text[text_len] = '\0';
    s->text_len = text_len;
    s->used = 1;
    s->ref = 1;
cleanup:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void eng_gw_rcache_stats_get(eng_gw_rcache *c, eng_gw_rcache_stats *out)
{
    size_t i, n = 0;
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    for (i = 0; i < c->n_used; i++)
        n += c->slots[i].used;
    out->entries = n;
    out->max_entries = c->max;
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
}

int eng_gw_rcache_holds(eng_gw_rcache *c, const void *needle, size_t n)
{
    size_t i;
    int found = 0;
    if (c == NULL || n == 0)
        return 0;
    pthread_mutex_lock(&c->mu);
    for (i = 0; i < c->max && !found; i++) {
        const rc_slot *s = &c->slots[i];
        found = memmem(s->key_id, sizeof s->key_id, needle, n) != NULL ||
                memmem(s->chain, sizeof s->chain, needle, n) != NULL ||
                memmem(s->address, sizeof s->address, needle, n) != NULL ||
                (s->text != NULL &&
                 memmem(s->text, s->text_cap, needle, n) != NULL);
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}
