/* Per-client token buckets (throttle.h): a fixed open-addressing table;
 * when it is full, the stalest bucket is reused. */
#include "config.h"
#include "gateway/throttle.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TH_SLOTS 4096
#define TH_KEY 128

typedef struct th_bucket {
    char key[TH_KEY];
    double tokens;
    uint64_t last_us;
} th_bucket;

struct eng_gw_throttle {
    double rate, burst;
    pthread_mutex_t mu;
    th_bucket slots[TH_SLOTS];
};

eng_gw_throttle *eng_gw_throttle_new(double rate, double burst)
{
    eng_gw_throttle *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->rate = rate;
    t->burst = burst < 1 ? 1 : burst;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

/* The client key: an address without its port. */
static void client_key(char out[TH_KEY], const char *client)
{
    const char *colon = strrchr(client, ':');
    size_t n = strlen(client);
    if (strncmp(client, "tls:", 4) != 0 && colon != NULL &&
        strchr(client, ':') != colon)
        colon = client[0] == '[' ? strrchr(client, ']') + 1 : NULL;
    if (strncmp(client, "tls:", 4) != 0 && colon != NULL)
        n = (size_t)(colon - client);
    if (n >= TH_KEY)
        n = TH_KEY - 1;
    memcpy(out, client, n);
    out[n] = '\0';
}

/* FNV-1a. */
static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* The bucket of key (found, a free slot, or the stalest of a probe run). */
static th_bucket *find(eng_gw_throttle *t, const char *key, uint64_t now)
{
    size_t i, h = hash(key), stale = h % TH_SLOTS;
    for (i = 0; i < 16; i++) {
        th_bucket *b = &t->slots[(h + i) % TH_SLOTS];
        if (strcmp(b->key, key) == 0)
            return b;
        if (b->key[0] == '\0' || b->last_us < t->slots[stale].last_us)
            stale = (h + i) % TH_SLOTS;
    }
    memset(&t->slots[stale], 0, sizeof t->slots[stale]);
    snprintf(t->slots[stale].key, TH_KEY, "%s", key);
    t->slots[stale].tokens = t->burst;
    t->slots[stale].last_us = now;
    return &t->slots[stale];
}

int eng_gw_throttle_take(eng_gw_throttle *t, const char *client)
{
    char key[TH_KEY];
    uint64_t now = eng_now_us();
    th_bucket *b;
    int wait = 0;
    if (t == NULL || t->rate <= 0 || client == NULL)
        return 0;
    client_key(key, client);
    pthread_mutex_lock(&t->mu);
    b = find(t, key, now);
    b->tokens += (double)(now - b->last_us) / 1e6 * t->rate;
    if (b->tokens > t->burst)
        b->tokens = t->burst;
    b->last_us = now;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        wait = (int)((1 - b->tokens) / t->rate) + 1;
    pthread_mutex_unlock(&t->mu);
    return wait;
}

void eng_gw_throttle_free(eng_gw_throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}
