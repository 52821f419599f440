#include "config.h"
#include "util.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <cjson/cJSON.h>
#include <event2/event.h>

int eng_secure_init(size_t heap_bytes)
{
    if (CRYPTO_secure_malloc_initialized())
        return 1;
    /* minsize 32: keys and secrets are small. */
    return CRYPTO_secure_malloc_init(heap_bytes, 32) == 1;
}

/* Each thread keeps a few freed blocks (wiped, so zeroed) for the next
 * request's allocations of the same size: the secure heap's allocator
 * takes a process-wide write lock per call.  A thread's blocks go back to
 * the heap when it ends. */
#define SECURE_KEEP 4
static __thread struct {
    void *p[SECURE_KEEP];
    size_t len[SECURE_KEEP];
    int registered;
} kept;
static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static int kept_ok;

static void kept_release(void *unused)
{
    int i;
    (void)unused;
    for (i = 0; i < SECURE_KEEP; i++)
        if (kept.p[i] != NULL) {
            CRYPTO_secure_clear_free(kept.p[i], kept.len[i], __FILE__,
                                     __LINE__);
            kept.p[i] = NULL;
        }
}

static void kept_init(void)
{
    kept_ok = pthread_key_create(&kept_key, kept_release) == 0;
}

void *eng_secure_alloc(size_t len)
{
    int i;
    if (len == 0)
        len = 1;
    for (i = 0; i < SECURE_KEEP; i++)
        if (kept.p[i] != NULL && kept.len[i] == len) {
            void *p = kept.p[i];
            kept.p[i] = NULL;
            return p;
        }
    return CRYPTO_secure_zalloc(len, __FILE__, __LINE__);
}

/* Keeps p (wiped) in a free slot of this thread; 0 when none is free. */
static int kept_put(void *p, size_t len)
{
    int i;
    if (!kept.registered) { /* the thread's end returns its blocks */
        pthread_once(&kept_once, kept_init);
        if (!kept_ok || pthread_setspecific(kept_key, &kept) != 0)
            return 0;
        kept.registered = 1;
    }
    for (i = 0; i < SECURE_KEEP; i++)
        if (kept.p[i] == NULL) {
            eng_wipe(p, len);
            kept.p[i] = p;
            kept.len[i] = len;
            return 1;
        }
    return 0;
}

void eng_secure_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    if (len == 0)
        len = 1;
    if (len <= 4096 && kept_put(p, len))
        return;
    CRYPTO_secure_clear_free(p, len, __FILE__, __LINE__);
}

void eng_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        explicit_bzero(p, len); /* glibc's memset, never elided */
}

int eng_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int eng_random(unsigned char *out, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(out + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int eng_uuid_v4(char out[37])
{
    unsigned char b[16];
    char hex[33];
    if (eng_random(b, sizeof b) != 0)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    eng_hex_encode(hex, b, sizeof b);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
    return 0;
}

int eng_uuid_valid(const char *s)
{
    /* 1 for a hex digit, 2 for '-'; NUL is neither, so a short string
     * fails at its end */
    static const unsigned char cls[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
        ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1,
        ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['A'] = 1, ['B'] = 1,
        ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['-'] = 2};
    size_t i;
    if (s == NULL)
        return 0;
    for (i = 0; i < 36; i++) {
        unsigned want = (i == 8 || i == 13 || i == 18 || i == 23) ? 2 : 1;
        if (cls[(unsigned char)s[i]] != want)
            return 0;
    }
    /* s[19] is a hex digit (checked above), never the NUL strchr finds */
    return s[36] == '\0' && s[14] == '4' && strchr("89abAB", s[19]) != NULL;
}

size_t eng_u64_decimal(char *out, uint64_t v)
{
    char t[20];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(out, t + i, sizeof t - i);
    return sizeof t - i;
}

void eng_hex_encode(char *out, const unsigned char *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int eng_hex_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int eng_hex_decode(unsigned char *out, size_t len, const char *hex)
{
    size_t i;
    if (hex == NULL || strlen(hex) != 2 * len)
        return -1;
    for (i = 0; i < len; i++) {
        int hi = eng_hex_nibble(hex[2 * i]);
        int lo = eng_hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

uint64_t eng_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t eng_unix_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

char *eng_path_join(const char *dir, const char *path)
{
    char *out;
    size_t n;
    if (path == NULL)
        return NULL;
    if (path[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(path);
    n = strlen(dir) + strlen(path) + 2;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

char *eng_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

void eng_wiping_free(void *p)
{
    if (p == NULL)
        return;
    eng_wipe(p, malloc_usable_size(p));
    free(p);
}

void *eng_wiping_realloc(void *p, size_t n)
{
    size_t old;
    void *q;
    if (p == NULL)
        return malloc(n);
    if (n == 0) {
        eng_wiping_free(p);
        return NULL;
    }
    old = malloc_usable_size(p);
    if ((q = malloc(n)) == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    eng_wiping_free(p);
    return q;
}

/* ---- the request arena ------------------------------------------------- */

__thread eng_arena eng_arena_tls;
static int arena_enabled; /* cJSON's free hook knows the arena */

void eng_arena_begin(void)
{
    if (arena_enabled && eng_arena_tls.depth++ == 0)
        ASAN_POISON_MEMORY_REGION(eng_arena_tls.buf, ENG_ARENA_BYTES);
}

void eng_arena_end(void)
{
    eng_arena *a = &eng_arena_tls;
    if (a->depth == 0 || --a->depth > 0)
        return;
    ASAN_UNPOISON_MEMORY_REGION(a->buf, ENG_ARENA_BYTES);
    eng_wipe(a->buf, a->used);
    a->used = 0;
    /* Under ASan a tree that outlived its request is caught at its first
     * use: nothing of the arena is addressable until the next scope. */
    ASAN_POISON_MEMORY_REGION(a->buf, ENG_ARENA_BYTES);
}

/* cJSON's free: arena blocks are wiped when their scope closes. */
static void json_free_hook(void *p)
{
    if (!eng_arena_owns(p))
        eng_wiping_free(p);
}

void eng_wiping_allocators_install(void)
{
    cJSON_Hooks hooks = {malloc, json_free_hook};
    arena_enabled = 1;
    event_set_mem_functions(malloc, eng_wiping_realloc, eng_wiping_free);
    cJSON_InitHooks(&hooks);
}

/* Request ids only need to be unique in the logs, not secret: a per-thread
 * xorshift64* seeded once from getrandom, so no syscall per request. */
void eng_request_id(char out[17])
{
    static __thread uint64_t state;
    unsigned char b[8];
    uint64_t x;
    int i;
    if (state == 0 && (eng_random((unsigned char *)&state, sizeof state) != 0 ||
                       state == 0))
        state = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&state;
    x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state = x;
    x *= 0x2545f4914f6cdd1dull;
    for (i = 0; i < 8; i++)
        b[i] = (unsigned char)(x >> (8 * i));
    eng_hex_encode(out, b, sizeof b);
}
