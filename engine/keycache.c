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
};

struct eng_keycache {
    pthread_mutex_t lock;
    struct entry *slots; /* secure memory */
    size_t n;
    int ttl;
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
    struct entry *e;
    int hit = 0;
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    e = &c->slots[slot_of(c, key_id)];
    if (e->expires != 0 && e->expires <= now) {
        eng_wipe(e, sizeof *e); /* expired: wipe now */
    } else if (e->expires != 0 && strcmp(e->key_id, key_id) == 0 &&
               e->plain_len <= plain_cap && strlen(e->chain) < chain_cap &&
               strlen(e->address) < address_cap) {
        memcpy(plain, e->plain, e->plain_len);
        *plain_len = e->plain_len;
        strcpy(chain, e->chain);
        strcpy(address, e->address);
        hit = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void eng_keycache_put(eng_keycache *c, const char *key_id,
                      const unsigned char *plain, size_t plain_len,
                      const char *chain, const char *address, int64_t now)
{
    struct entry *e;
    if (c == NULL || plain_len > ENG_PLAIN_MAX ||
        strlen(key_id) > SIGNER_KEY_ID_LEN ||
        strlen(chain) >= sizeof e->chain ||
        strlen(address) >= sizeof e->address)
        return;
    pthread_mutex_lock(&c->lock);
    e = &c->slots[slot_of(c, key_id)];
    eng_wipe(e, sizeof *e); /* evicts whatever was there */
    strcpy(e->key_id, key_id);
    strcpy(e->chain, chain);
    strcpy(e->address, address);
    memcpy(e->plain, plain, plain_len);
    e->plain_len = plain_len;
    e->expires = now + c->ttl;
    pthread_mutex_unlock(&c->lock);
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
