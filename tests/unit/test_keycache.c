/* Key cache: hit, miss, expiry, eviction by a colliding key_id, the
 * auxiliary slot (ABI 1.3). */
#include "config.h"
#include "testutil.h"

#include "host.h"
#include "keycache.h"
#include "startup.h"

static void test_hit_miss_expiry(void)
{
    eng_keycache *c = eng_keycache_new(16, 10);
    unsigned char plain[ENG_PLAIN_MAX];
    char chain[32], addr[SIGNER_MAX_ADDRESS];
    size_t plen = 0;
    const char *id = "11111111-1111-4111-8111-111111111111";
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(eng_keycache_get(c, plain, sizeof plain, &plen, chain,
                                     sizeof chain, addr, sizeof addr, id,
                                     1000), 0);
    eng_keycache_put(c, id, (const unsigned char *)"abc", 3, "eth", "0x1",
                     1000);
    CU_ASSERT_EQUAL(eng_keycache_get(c, plain, sizeof plain, &plen, chain,
                                     sizeof chain, addr, sizeof addr, id,
                                     1005), 1);
    CU_ASSERT_EQUAL(plen, 3);
    CU_ASSERT_EQUAL(memcmp(plain, "abc", 3), 0);
    CU_ASSERT_STRING_EQUAL(chain, "eth");
    CU_ASSERT_STRING_EQUAL(addr, "0x1");
    CU_ASSERT_EQUAL(eng_keycache_count(c, 1005), 1);
    /* eng_keycache_has: the same answer without a copy */
    CU_ASSERT_EQUAL(eng_keycache_has(c, id, 1005), 1);
    CU_ASSERT_EQUAL(eng_keycache_has(c, "22222222-2222-4222-8222-222222222222",
                                     1005), 0);
    CU_ASSERT_EQUAL(eng_keycache_has(c, id, 1010), 0);
    CU_ASSERT_EQUAL(eng_keycache_has(NULL, id, 1005), 0);
    /* Another key_id misses. */
    CU_ASSERT_EQUAL(eng_keycache_get(c, plain, sizeof plain, &plen, chain,
                                     sizeof chain, addr, sizeof addr,
                                     "22222222-2222-4222-8222-222222222222",
                                     1005), 0);
    /* Expired at 1010. */
    CU_ASSERT_EQUAL(eng_keycache_get(c, plain, sizeof plain, &plen, chain,
                                     sizeof chain, addr, sizeof addr, id,
                                     1010), 0);
    CU_ASSERT_EQUAL(eng_keycache_count(c, 1000), 0);
    eng_keycache_free(c);
}

static void test_eviction(void)
{
    eng_keycache *c = eng_keycache_new(1, 10); /* one slot: all collide */
    unsigned char plain[ENG_PLAIN_MAX];
    char chain[32], addr[SIGNER_MAX_ADDRESS];
    size_t plen;
    const char *a = "11111111-1111-4111-8111-111111111111";
    const char *b = "22222222-2222-4222-8222-222222222222";
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    eng_keycache_put(c, a, (const unsigned char *)"A", 1, "eth", "0xa", 1);
    eng_keycache_put(c, b, (const unsigned char *)"B", 1, "eth", "0xb", 1);
    CU_ASSERT_EQUAL(eng_keycache_get(c, plain, sizeof plain, &plen, chain,
                                     sizeof chain, addr, sizeof addr, a, 2), 0);
    CU_ASSERT_EQUAL(eng_keycache_get(c, plain, sizeof plain, &plen, chain,
                                     sizeof chain, addr, sizeof addr, b, 2), 1);
    CU_ASSERT_EQUAL(plain[0], 'B');
    CU_ASSERT_EQUAL(eng_keycache_has(c, a, 2), 0); /* evicted */
    CU_ASSERT_EQUAL(eng_keycache_has(c, b, 2), 1);
    eng_keycache_free(c);
    /* ttl 0 means no cache at all. */
    CU_ASSERT_PTR_NULL(eng_keycache_new(16, 0));
}

/* The secure heap start-up sizes holds the largest cache the config
 * accepts (a buddy allocator: the cache block takes the next power of two)
 * with room to spare; with the cache off it stays at 4 MiB. */
static void test_secure_heap_size(void)
{
    static const int maxes[] = {1, 100, 4096, 4097, 5000, 8192};
    eng_config cfg;
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    cfg.key_cache_ttl = 0;
    cfg.key_cache_max = 8192;
    CU_ASSERT_EQUAL(eng_engine_secure_heap_bytes(&cfg), (size_t)4 << 20);
    cfg.key_cache_ttl = 60;
    for (i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        size_t block = 1, heap;
        cfg.key_cache_max = maxes[i];
        heap = eng_engine_secure_heap_bytes(&cfg);
        while (block < eng_keycache_bytes((size_t)maxes[i]))
            block <<= 1;
        CU_ASSERT_EQUAL(heap & (heap - 1), 0);
        CU_ASSERT_TRUE(heap >= block + ((size_t)1 << 20));
    }
    CU_ASSERT_EQUAL(eng_keycache_bytes(8192), 8192 * eng_keycache_bytes(1));
}

/* The auxiliary slot: empty after put, filled through the ref, read back
 * by a later get's ref; gone with the entry (eviction, expiry); a stale
 * ref reaches nothing; over the maximum is refused. */
static void test_aux_slot(void)
{
    eng_keycache *c = eng_keycache_new(1, 10); /* one slot: all collide */
    unsigned char plain[ENG_PLAIN_MAX], aux[ENG_KEYCACHE_AUX_MAX + 1];
    unsigned char big[ENG_KEYCACHE_AUX_MAX + 1];
    char chain[32], addr[SIGNER_MAX_ADDRESS];
    size_t plen, alen = 99;
    eng_keycache_ref ra, rb, rg;
    const char *a = "11111111-1111-4111-8111-111111111111";
    const char *b = "22222222-2222-4222-8222-222222222222";
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memset(&ra, 0, sizeof ra);
    memset(big, 7, sizeof big);
    /* no ref: nothing */
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &ra, aux, sizeof aux, &alen, 1), 0);
    CU_ASSERT_EQUAL(alen, 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_put(c, &ra, big, 4, 1), -1);
    eng_keycache_put_ref(c, a, (const unsigned char *)"A", 1, "eth", "0xa", 1,
                         &ra);
    CU_ASSERT_NOT_EQUAL(ra.gen, 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &ra, aux, sizeof aux, &alen, 1), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_put(c, &ra, (const unsigned char *)"pub",
                                         3, 1), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_put(c, &ra, big, sizeof big, 1), -1);
    memset(&rg, 0, sizeof rg);
    CU_ASSERT_EQUAL(eng_keycache_get_ref(c, plain, sizeof plain, &plen, chain,
                                         sizeof chain, addr, sizeof addr, a,
                                         2, &rg), 1);
    CU_ASSERT_EQUAL(rg.gen, ra.gen);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &rg, aux, sizeof aux, &alen, 2), 1);
    CU_ASSERT_EQUAL(alen, 3);
    CU_ASSERT_EQUAL(memcmp(aux, "pub", 3), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &rg, aux, 2, &alen, 2), 0);
    /* b evicts a: a's ref is stale, b's slot starts empty */
    eng_keycache_put_ref(c, b, (const unsigned char *)"B", 1, "eth", "0xb", 3,
                         &rb);
    CU_ASSERT_NOT_EQUAL(rb.gen, ra.gen);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &ra, aux, sizeof aux, &alen, 3), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &rb, aux, sizeof aux, &alen, 3), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_put(c, &ra, big, 4, 3), -1);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &rb, aux, sizeof aux, &alen, 3), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_put(c, &rb, big, 4, 3), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &rb, aux, sizeof aux, &alen, 3), 1);
    /* expired (ttl 10 from 3) */
    CU_ASSERT_EQUAL(eng_keycache_aux_get(c, &rb, aux, sizeof aux, &alen, 13), 0);
    CU_ASSERT_EQUAL(eng_keycache_aux_put(c, &rb, big, 4, 13), -1);
    eng_keycache_free(c);
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("keycache", NULL, NULL);
    TU_ADD(s, test_hit_miss_expiry);
    TU_ADD(s, test_eviction);
    TU_ADD(s, test_aux_slot);
    TU_ADD(s, test_secure_heap_size);
    return tu_run();
}
