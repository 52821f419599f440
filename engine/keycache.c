#include "config.h"
#include "keycache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "util.h"

struct entry {
    char key_id[SIGNER_KEY_ID_LEN + 1];
    char chain[32];
    char address[SIGNER_MAX_ADDRESS];
    unsigned char plain[ENG_PLAIN_MAX];
    size_t plain_len;
    int64_t expires;
    uint64_t gen;                           /* set by put; never 0 */
    unsigned char aux[ENG_KEYCACHE_AUX_MAX]; /* the plugin's, see the header */
    size_t aux_len;
};

/* 4096 entries (the default) stay one 2 MiB block of the secure heap */
_Static_assert(sizeof(struct entry) <= 512, "a cache entry outgrew 512 bytes");

struct eng_keycache {
    pthread_mutex_t lock;
    struct entry *slots; /* secure memory */
    size_t n;
    int ttl;
    uint64_t next_gen;
};

size_t eng_keycache_bytes(size_t max_entries)
{
    return max_entries * sizeof(struct entry);
}

eng_keycache *eng_keycache_new(size_t max_entries, int ttl_seconds)
{
    eng_keycache *c;
    if (ttl_seconds <= 0 || max_entries == 0)
        return NULL;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return NULL;
    c->slots = eng_secure_alloc(max_entries * sizeof *c->slots);
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    c->n = max_entries;
    c->ttl = ttl_seconds;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static size_t slot_of(const eng_keycache *c, const char *key_id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *key_id; key_id++)
        h = (h ^ (unsigned char)*key_id) * 1099511628211ull;
    return (size_t)(h % c->n);
}

int eng_keycache_get(eng_keycache *c, unsigned char *plain, size_t plain_cap,
                     size_t *plain_len, char *chain, size_t chain_cap,
                     char *address, size_t address_cap, const char *key_id,
                     int64_t now)
{
    return eng_keycache_get_ref(c, plain, plain_cap, plain_len, chain,
                                chain_cap, address, address_cap, key_id, now,
                                NULL);
}

int eng_keycache_get_ref(eng_keycache *c, unsigned char *plain,
                         size_t plain_cap, size_t *plain_len, char *chain,
                         size_t chain_cap, char *address, size_t address_cap,
                         const char *key_id, int64_t now,
                         eng_keycache_ref *ref)
{
    struct entry *e;
    size_t slot;
    int hit = 0;
    if (c == NULL)
        return 0;
    slot = slot_of(c, key_id);
    pthread_mutex_lock(&c->lock);
    e = &c->slots[slot];
    if (e->expires != 0 && e->expires <= now) {
        eng_wipe(e, sizeof *e); /* expired: wipe now */
    } else if (e->expires != 0 && strcmp(e->key_id, key_id) == 0 &&
               e->plain_len <= plain_cap && strlen(e->chain) < chain_cap &&
               strlen(e->address) < address_cap) {
        memcpy(plain, e->plain, e->plain_len);
        *plain_len = e->plain_len;
        strcpy(chain, e->chain);
        strcpy(address, e->address);
        if (ref != NULL) {
            ref->slot = slot;
            ref->gen = e->gen;
        }
        hit = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

/* 1 if a live entry for key_id is there (nothing copied). */
int eng_keycache_has(eng_keycache *c, const char *key_id, int64_t now)
{
    struct entry *e;
    int hit;
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    e = &c->slots[slot_of(c, key_id)];
    hit = e->expires > now && strcmp(e->key_id, key_id) == 0;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void eng_keycache_put(eng_keycache *c, const char *key_id,
                      const unsigned char *plain, size_t plain_len,
                      const char *chain, const char *address, int64_t now)
{
    eng_keycache_put_ref(c, key_id, plain, plain_len, chain, address, now,
                         NULL);
}

void eng_keycache_put_ref(eng_keycache *c, const char *key_id,
                          const unsigned char *plain, size_t plain_len,
                          const char *chain, const char *address, int64_t now,
                          eng_keycache_ref *ref)
{
    struct entry *e;
    size_t slot;
    if (c == NULL || plain_len > ENG_PLAIN_MAX ||
        strlen(key_id) > SIGNER_KEY_ID_LEN ||
        strlen(chain) >= sizeof e->chain ||
        strlen(address) >= sizeof e->address)
        return;
    slot = slot_of(c, key_id);
    pthread_mutex_lock(&c->lock);
    e = &c->slots[slot];
    eng_wipe(e, sizeof *e); /* evicts whatever was there */
    strcpy(e->key_id, key_id);
    strcpy(e->chain, chain);
    strcpy(e->address, address);
    memcpy(e->plain, plain, plain_len);
    e->plain_len = plain_len;
    e->expires = now + c->ttl;
    e->gen = ++c->next_gen;
    if (ref != NULL) {
        ref->slot = slot;
        ref->gen = e->gen;
    }
    pthread_mutex_unlock(&c->lock);
}

/* The live entry ref names, or NULL; the lock is held. */
static struct entry *ref_entry(eng_keycache *c, const eng_keycache_ref *ref,
                               int64_t now)
{
    struct entry *e;
    if (ref == NULL || ref->gen == 0 || ref->slot >= c->n)
        return NULL;
    e = &c->slots[ref->slot];
    if (e->gen != ref->gen || e->expires == 0 || e->expires <= now)
        return NULL;
    return e;
}

int eng_keycache_aux_get(eng_keycache *c, const eng_keycache_ref *ref,
                         unsigned char *aux, size_t aux_cap, size_t *aux_len,
                         int64_t now)
{
    struct entry *e;
    int hit = 0;
    *aux_len = 0;
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    e = ref_entry(c, ref, now);
    if (e != NULL && e->aux_len > 0 && e->aux_len <= aux_cap) {
        memcpy(aux, e->aux, e->aux_len);
        *aux_len = e->aux_len;
        hit = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

int eng_keycache_aux_put(eng_keycache *c, const eng_keycache_ref *ref,
                         const unsigned char *aux, size_t aux_len,
                         int64_t now)
{
    struct entry *e;
    int rc = -1;
    if (c == NULL || aux_len > ENG_KEYCACHE_AUX_MAX)
        return -1;
    pthread_mutex_lock(&c->lock);
    e = ref_entry(c, ref, now);
    if (e != NULL) {
        eng_wipe(e->aux, sizeof e->aux);
        memcpy(e->aux, aux, aux_len);
        e->aux_len = aux_len;
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

size_t eng_keycache_count(eng_keycache *c, int64_t now)
{
    size_t i, n = 0;
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < c->n; i++)
        if (c->slots[i].expires > now)
            n++;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void eng_keycache_free(eng_keycache *c)
{
    if (c == NULL)
        return;
    eng_secure_free(c->slots, c->n * sizeof *c->slots);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
