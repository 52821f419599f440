/* Key cache: hit, miss, expiry, eviction by a colliding key_id. */
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

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("keycache", NULL, NULL);
    TU_ADD(s, test_hit_miss_expiry);
    TU_ADD(s, test_eviction);
    TU_ADD(s, test_secure_heap_size);
    return tu_run();
}
