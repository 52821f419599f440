/* Small engine utilities: secure memory, wiping, constant-time compare,
 * entropy, UUIDs and hex. */
#ifndef ENG_UTIL_H
#define ENG_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Sets up the locked secure heap (OpenSSL's, mlocked and excluded from core
 * dumps) of heap_bytes; returns 1 if locked memory is in use, 0 if the heap
 * could not be created (memory is then plain and the caller logs it). */
int eng_secure_init(size_t heap_bytes);
void *eng_secure_alloc(size_t len);          /* zeroed, NULL on failure */
/* Wipes (len: what was allocated), NULL is a no-op; a few small blocks
 * stay with the thread for its next allocations of the same size. */
void eng_secure_free(void *p, size_t len);
void eng_wipe(void *p, size_t len);          /* never optimised away */
int eng_ct_equal(const void *a, const void *b, size_t len); /* 1 if equal */

/* Makes libevent and cJSON wipe every block they free (request bytes and
 * parsed payloads carry secrets).  Call once, first thing in main. */
void eng_wiping_allocators_install(void);
/* free() and realloc() that wipe the whole block first, for libraries that
 * copy request bytes or credentials into their own memory. */
void eng_wiping_free(void *p);
void *eng_wiping_realloc(void *p, size_t n);

/* The per-thread request arena: while a scope is open (eng_dispatch opens
 * one per request), the parser takes the nodes and strings of a request's
 * JSON from one per-thread block, and the used part of that block is wiped
 * once when the outermost scope closes, instead of wiping and freeing node
 * by node (docs/security.md).  Active only once
 * eng_wiping_allocators_install has made cJSON's free hook leave arena
 * blocks alone; nothing allocated in a scope may outlive it or leave the
 * thread.  Scopes nest. */
void eng_arena_begin(void);
void eng_arena_end(void);

#define ENG_ARENA_BYTES 16384
/* Under AddressSanitizer the arena outside the blocks handed out is
 * poisoned while a scope is open, with a red zone after each block, and
 * the whole arena once the outermost scope has closed: a use of request
 * memory after its request is an ASan error. */
#if defined(__SANITIZE_ADDRESS__)
#define ENG_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ENG_ARENA_ASAN 1
#endif
#endif
#ifdef ENG_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ENG_ARENA_REDZONE 16
#else
#define ASAN_POISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(a, n) ((void)(a), (void)(n))
#define ENG_ARENA_REDZONE 0
#endif
/* The thread's arena (static TLS: no allocation, nothing to release when
 * a thread ends); use the functions, not the fields. */
typedef struct eng_arena {
    size_t used;
    unsigned depth;
    _Alignas(16) unsigned char buf[ENG_ARENA_BYTES];
} eng_arena;
extern __thread eng_arena eng_arena_tls;

/* n bytes (8-aligned) of this thread's arena, or NULL when no scope is
 * open or the arena is full (the caller then uses malloc). */
static inline void *eng_arena_alloc(size_t n)
{
    eng_arena *a = &eng_arena_tls;
    size_t take = ((n + 7) & ~(size_t)7) + ENG_ARENA_REDZONE;
    void *p;
    if (a->depth == 0 || take > ENG_ARENA_BYTES - a->used)
        return NULL;
    p = a->buf + a->used;
    a->used += take;
    ASAN_UNPOISON_MEMORY_REGION(p, n);
    return p;
}

/* 1 if p lies in this thread's arena (not to be freed), else 0. */
static inline int eng_arena_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)eng_arena_tls.buf < ENG_ARENA_BYTES;
}

/* v in decimal at out (up to 20 digits, no NUL); the number of digits. */
size_t eng_u64_decimal(char *out, uint64_t v);

/* Fills out from getrandom(2).  0 ok, -1 on failure. */
int eng_random(unsigned char *out, size_t len);

/* Writes a random UUIDv4 (36 chars + NUL).  0 ok, -1 on entropy failure. */
int eng_uuid_v4(char out[37]);
/* 1 if s is a canonical lowercase-or-uppercase UUID of version 4. */
int eng_uuid_valid(const char *s);

/* A fresh 16-hex-digit request id for the logs (unique, not secret; no
 * syscall per call). */
void eng_request_id(char out[17]);

/* Lowercase hex of in[0..len) into out (2*len+1 bytes). */
void eng_hex_encode(char *out, const unsigned char *in, size_t len);
/* The value (0..15) of the hex digit c, either case; -1 if c is none. */
int eng_hex_nibble(int c);
/* Exactly 2*len hex digits (either case, no prefix) into out[0..len).  0,
 * or -1 (hex NULL, another length, or not a hex digit). */
int eng_hex_decode(unsigned char *out, size_t len, const char *hex);

/* Monotonic and wall clocks. */
uint64_t eng_now_us(void);   /* CLOCK_MONOTONIC, microseconds */
int64_t eng_unix_time(void); /* CLOCK_REALTIME, seconds */

/* Joins dir and path unless path is absolute; malloc'd. */
char *eng_path_join(const char *dir, const char *path);
/* Directory part of a path ("." if none); malloc'd. */
char *eng_dirname(const char *path);

#endif
