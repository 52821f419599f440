/* The gateway's record cache: hit and miss, refresh, limits, CLOCK
 * eviction (a recently read entry survives), evicted entries wiped in
 * place, and consistency under concurrent readers and writers. */
#include "config.h"
#include "testutil.h"

#include <pthread.h>

#include "conf.h"
#include "gateway/gwconf.h"
#include "gateway/record_cache.h"

#define KID_FMT "%08x-1111-4111-8111-111111111111"

/* The record of key number n: a distinct key_id, address and text. */
static void rec_of(unsigned n, char *kid, char *addr, char *text)
{
    snprintf(kid, SIGNER_KEY_ID_LEN + 1, KID_FMT, n);
    snprintf(addr, 43, "0x%040x", n * 2654435761u);
    snprintf(text, 200, "U0VBTEVE-%u-%0120u==", n, n);
}

static void test_hit_miss_refresh(void)
{
    eng_gw_rcache *c = eng_gw_rcache_new(8);
    char kid[64], addr[64], text[256], chain[ENG_GW_RCACHE_CHAIN_MAX];
    char oaddr[SIGNER_MAX_ADDRESS], otext[512];
    size_t olen = 99;
    eng_gw_rcache_stats st;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    rec_of(1, kid, addr, text);
    CU_ASSERT_EQUAL(eng_gw_rcache_get(c, chain, sizeof chain, oaddr,
                                      sizeof oaddr, otext, sizeof otext,
                                      &olen, kid), 0);
    CU_ASSERT_EQUAL(olen, 0);
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, kid, "eth", addr, text,
                                      strlen(text)), SIGNER_OK);
    CU_ASSERT_EQUAL(eng_gw_rcache_get(c, chain, sizeof chain, oaddr,
                                      sizeof oaddr, otext, sizeof otext,
                                      &olen, kid), 1);
    CU_ASSERT_STRING_EQUAL(chain, "eth");
    CU_ASSERT_STRING_EQUAL(oaddr, addr);
    CU_ASSERT_STRING_EQUAL(otext, text);
    CU_ASSERT_EQUAL(olen, strlen(text));
    /* Another key_id misses; a refresh replaces the record. */
    CU_ASSERT_EQUAL(eng_gw_rcache_get(c, chain, sizeof chain, oaddr,
                                      sizeof oaddr, otext, sizeof otext,
                                      &olen,
                                      "22222222-2222-4222-8222-222222222222"),
                    0);
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, kid, "btc", "bc1q", "QUJD", 4),
                    SIGNER_OK);
    CU_ASSERT_EQUAL(eng_gw_rcache_get(c, chain, sizeof chain, oaddr,
                                      sizeof oaddr, otext, sizeof otext,
                                      &olen, kid), 1);
    CU_ASSERT_STRING_EQUAL(chain, "btc");
    CU_ASSERT_STRING_EQUAL(oaddr, "bc1q");
    CU_ASSERT_STRING_EQUAL(otext, "QUJD");
    eng_gw_rcache_stats_get(c, &st);
    CU_ASSERT_EQUAL(st.entries, 1);
    CU_ASSERT_EQUAL(st.max_entries, 8);
    CU_ASSERT_EQUAL(st.hits, 2);
    CU_ASSERT_EQUAL(st.misses, 2);
    CU_ASSERT_EQUAL(st.evictions, 0);
    eng_gw_rcache_free(c);
}

static void test_limits(void)
{
    eng_gw_rcache *c = eng_gw_rcache_new(4);
    char big[ENG_GW_RCACHE_TEXT_MAX + 2], chain[ENG_GW_RCACHE_CHAIN_MAX];
    char oaddr[SIGNER_MAX_ADDRESS], otext[16];
    const char *kid = "33333333-3333-4333-8333-333333333333";
    size_t olen;
    CU_ASSERT_PTR_NULL(eng_gw_rcache_new(0)); /* 0: off */
    CU_ASSERT_PTR_NULL(eng_gw_rcache_new(ENG_GW_RCACHE_MAX_ENTRIES + 1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, kid, "eth", "0x1", big,
                                      strlen(big)), SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, "33333333-3333-4333-8333-33333333"
                                         "33330",
                                      "eth", "0x1", "QQ==", 4),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, "", "eth", "0x1", "QQ==", 4),
                    SIGNER_ERR_TOO_LARGE);
    CU_ASSERT_FALSE(eng_gw_rcache_holds(c, "AAAAAAAA", 8));
    /* An output too small for the text: a miss with the outputs wiped. */
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, kid, "eth", "0x1",
                                      "QUJDREVGR0hJSktMTU5P", 20), SIGNER_OK);
    memset(otext, 'z', sizeof otext);
    CU_ASSERT_EQUAL(eng_gw_rcache_get(c, chain, sizeof chain, oaddr,
                                      sizeof oaddr, otext, sizeof otext,
                                      &olen, kid), 0);
    CU_ASSERT_EQUAL(otext[0], 0);
    CU_ASSERT_EQUAL(otext[sizeof otext - 1], 0);
    eng_gw_rcache_free(c);
}

static int get1(eng_gw_rcache *c, unsigned n)
{
    char kid[64], addr[64], text[256], chain[ENG_GW_RCACHE_CHAIN_MAX];
    char oaddr[SIGNER_MAX_ADDRESS], otext[512];
    size_t olen;
    rec_of(n, kid, addr, text);
    return eng_gw_rcache_get(c, chain, sizeof chain, oaddr, sizeof oaddr,
                             otext, sizeof otext, &olen, kid);
}

static void put1(eng_gw_rcache *c, unsigned n)
{
    char kid[64], addr[64], text[256];
    rec_of(n, kid, addr, text);
    CU_ASSERT_EQUAL(eng_gw_rcache_put(c, kid, "eth", addr, text,
                                      strlen(text)), SIGNER_OK);
}

/* CLOCK: when full, the entry read since the last sweep survives; the
 * evicted entry's bytes are gone from the cache's memory. */
static void test_eviction_and_wipe(void)
{
    eng_gw_rcache *c = eng_gw_rcache_new(4);
    char kid[64], addr[64], text[256];
    eng_gw_rcache_stats st;
    unsigned n;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (n = 1; n <= 4; n++)
        put1(c, n);
    put1(c, 5); /* the sweep clears every bit, then takes key 1's slot */
    CU_ASSERT_EQUAL(get1(c, 1), 0);
    for (n = 2; n <= 5; n++)
        CU_ASSERT_EQUAL(get1(c, n), 1);
    /* The reads set every bit again: put 6 sweeps them clear and evicts 2
     * (next after the hand); a read of 3 then sets its bit, so put 7
     * passes over 3 and evicts 4. */
    put1(c, 6);
    CU_ASSERT_EQUAL(get1(c, 2), 0);
    CU_ASSERT_EQUAL(get1(c, 3), 1);
    put1(c, 7);
    CU_ASSERT_EQUAL(get1(c, 3), 1);
    CU_ASSERT_EQUAL(get1(c, 4), 0);
    CU_ASSERT_EQUAL(get1(c, 7), 1);
    eng_gw_rcache_stats_get(c, &st);
    CU_ASSERT_EQUAL(st.entries, 4);
    CU_ASSERT_EQUAL(st.evictions, 3);
    /* Evicted records leave nothing behind; live ones are found. */
    for (n = 1; n <= 7; n++) {
        int live = n == 3 || n == 5 || n == 6 || n == 7;
        rec_of(n, kid, addr, text);
        CU_ASSERT_EQUAL(eng_gw_rcache_holds(c, text, strlen(text)), live);
        CU_ASSERT_EQUAL(eng_gw_rcache_holds(c, kid, strlen(kid)), live);
        CU_ASSERT_EQUAL(eng_gw_rcache_holds(c, addr, strlen(addr)), live);
    }
    eng_gw_rcache_free(c);
}

#define TH 4
#define OPS 20000
#define KEYS 48

typedef struct worker {
    eng_gw_rcache *c;
    unsigned seed;
    int bad;
    unsigned long long gets;
} worker;

/* Random puts and gets over KEYS keys; every hit must be the whole,
 * consistent record of the key asked for. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    int i;
    for (i = 0; i < OPS; i++) {
        char kid[64], addr[64], text[256], chain[ENG_GW_RCACHE_CHAIN_MAX];
        char oaddr[SIGNER_MAX_ADDRESS], otext[512];
        size_t olen;
        unsigned n = (unsigned)rand_r(&w->seed) % KEYS;
        rec_of(n, kid, addr, text);
        if (rand_r(&w->seed) % 4 == 0) {
            if (eng_gw_rcache_put(w->c, kid, "eth", addr, text,
                                  strlen(text)) != SIGNER_OK)
                w->bad++;
            continue;
        }
        w->gets++;
        if (eng_gw_rcache_get(w->c, chain, sizeof chain, oaddr, sizeof oaddr,
                              otext, sizeof otext, &olen, kid) &&
            (strcmp(chain, "eth") != 0 || strcmp(oaddr, addr) != 0 ||
             strcmp(otext, text) != 0 || olen != strlen(text)))
            w->bad++;
    }
    return NULL;
}

static void test_concurrency(void)
{
    eng_gw_rcache *c = eng_gw_rcache_new(16);
    pthread_t t[TH];
    worker w[TH];
    eng_gw_rcache_stats st;
    unsigned long long gets = 0;
    int i, bad = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (i = 0; i < TH; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = c;
        w[i].seed = 1234u + (unsigned)i;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, worker_main, &w[i]),
                              0);
    }
    for (i = 0; i < TH; i++) {
        pthread_join(t[i], NULL);
        bad += w[i].bad;
        gets += w[i].gets;
    }
    CU_ASSERT_EQUAL(bad, 0);
    eng_gw_rcache_stats_get(c, &st);
    CU_ASSERT_EQUAL(st.hits + st.misses, gets);
    CU_ASSERT(st.hits > 0);
    CU_ASSERT(st.evictions > 0);
    CU_ASSERT_EQUAL(st.entries, 16);
    eng_gw_rcache_free(c);
}

#define GW_CONF "role = \"gateway\";\nsealer = { type = \"none\"; };\n" \
                "plugins = ( { name = \"eth\"; } );\n" \
                "gateway = { enclaves = [\"127.0.0.1:9\"]; %s };\n"

/* gateway.record_cache_max_entries: n (or -1 with err naming it). */
static int conf_entries(const char *setting, char *err, size_t n)
{
    eng_config cfg;
    eng_gw_conf gc;
    char text[512];
    int rc;
    snprintf(text, sizeof text, GW_CONF, setting);
    memset(&gc, 0, sizeof gc);
    if ((rc = eng_config_load_string(&cfg, text, "/etc/x", err, n)) == 0)
        rc = eng_gw_conf_load(&gc, &cfg, err, n);
    if (rc == 0)
        rc = gc.record_cache_max_entries;
    eng_gw_conf_free(&gc);
    eng_config_free(&cfg);
    return rc;
}

static void test_conf(void)
{
    char err[512];
    CU_ASSERT_EQUAL(conf_entries("", err, sizeof err),
                    ENG_GW_RCACHE_DEFAULT_ENTRIES);
    CU_ASSERT_EQUAL(conf_entries("record_cache_max_entries = 0;", err,
                                 sizeof err), 0);
    CU_ASSERT_EQUAL(conf_entries("record_cache_max_entries = 10;", err,
                                 sizeof err), 10);
    CU_ASSERT_EQUAL(conf_entries("record_cache_max_entries = -1;", err,
                                 sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gateway.record_cache_max_entries"));
    CU_ASSERT_EQUAL(conf_entries("record_cache_max_entries = 1000001;", err,
                                 sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "outside 0..1000000"));
    CU_ASSERT_EQUAL(conf_entries("record_cache_max_entries = \"9\";", err,
                                 sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "must be an integer"));
}

int main(void)
{
    CU_pSuite s;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("gw_record_cache", NULL, NULL);
    TU_ADD(s, test_hit_miss_refresh);
    TU_ADD(s, test_limits);
    TU_ADD(s, test_eviction_and_wipe);
    TU_ADD(s, test_concurrency);
    TU_ADD(s, test_conf);
    return tu_run();
}
