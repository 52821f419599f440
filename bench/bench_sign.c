/*
 * bench_sign — in-process benchmarks for `make bench` (see bench/run.sh).
 *
 *   (a) raw libsecp256k1 on one core over a fixed 32-byte message with a
 *       fixed key: secp256k1_ecdsa_sign_recoverable alone, and sign +
 *       secp256k1_ecdsa_verify of the serialized signature against the
 *       public key (what the eth plugin does per signature with
 *       verify_signatures on); and the number of online CPUs;
 *   (b) sign_transaction through the dispatcher (eng_dispatch), single
 *       threaded, with the key cache off (cold: keystore read + unseal on
 *       every request) and on (warm);
 *   (e) many keys: a keystore with N keys (default 100,000), then sign
 *       latency with N keys (one hot key_id, and key_ids drawn at random)
 *       against the same with 1 key;
 *   (a) and (b) together (the default): alternated short rounds in this
 *       one process (raw sign, raw sign + verify, dispatcher verify on,
 *       verify off, again; --rounds N, each measurement --time/4 CPU-
 *       seconds), medians of each and of the per-round ratios (b)/(a),
 *       printed as an "ab_ratio" line; the cold cache measured once;
 *   (i) instruction counts (--only i, run under valgrind --tool=callgrind
 *       --collect-atstart=no): raw sign, raw sign + verify, then
 *       sign_transaction through eng_dispatch (warm cache) with
 *       verify_signatures on and off, each segment dumped separately
 *       (CALLGRIND_DUMP_STATS_AT "raw-sign", "raw-sign-verify",
 *       "dispatch-verify", "dispatch-noverify"); --count N per segment.
 *
 * Output: one JSON object per line on stdout (bench/run.sh parses them), a
 * short human-readable summary on stderr.
 *
 *   bench_sign --plugin-dir BUILDDIR/plugins/.libs [--time SEC] [--keys N]
 *              [--keys-dir DIR] [--key-ids-out FILE] [--only a,b,e,i]
 *              [--count N] [--rounds N]
 *
 * --keys-dir keeps the N-key data directory (master.key, keys.db) for signerd
 * (run.sh starts signerd on it to measure RSS); --key-ids-out writes every
 * key_id (one a line) and `# key_id SECRET`-free: the secret is the fixed
 * benchmark secret printed in the "keys" JSON line.
 *
 * The N records are sealed with the engine's own sealer (eng_sealer_seal,
 * the same plaintext layout as set_key) and inserted with eng_keystore_put.
 * Each put is a synchronous (fsync'd) transaction, so the inserts go to a
 * copy of keys.db on tmpfs (/dev/shm) when available, which is then copied
 * into the data directory while no connection is open.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#include "conf.h"
#include "dispatch.h"
#include "host.h"
#include "keystore/keystore.h"
#include "log.h"
#include "sealer/sealer.h"
#include "util.h"

/* The README's example key and secret. */
static const char KEY_HEX[] =
    "6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a";
static const char SECRET[] =
    "5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d";

static double g_time = 2.0; /* seconds per measurement */
static const char *g_plugin_dir;

/* ---- small helpers ---------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: the in-process rates are per CPU-second
 * of the thread that does the work, so that other jobs on a shared machine
 * (which take wall-clock time from it, not CPU time) do not move them. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void unhex(unsigned char *out, const char *hex, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)(hexval(hex[2 * i]) << 4 |
                                 hexval(hex[2 * i + 1]));
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* Latencies in µs, 1 µs buckets up to 100 ms (above: clamped, max exact). */
#define LAT_MAX 100000u
typedef struct lat {
    uint32_t *b;
    uint64_t n, max;
    double sum;
} lat;

static void lat_init(lat *l)
{
    memset(l, 0, sizeof *l);
    l->b = calloc(LAT_MAX, sizeof *l->b);
    if (l->b == NULL) {
        fprintf(stderr, "bench_sign: out of memory\n");
        exit(1);
    }
}

static void lat_add(lat *l, uint64_t us)
{
    l->b[us < LAT_MAX ? us : LAT_MAX - 1]++;
    l->n++;
    l->sum += (double)us;
    if (us > l->max)
        l->max = us;
}

static uint64_t lat_q(const lat *l, double q)
{
    uint64_t rank = (uint64_t)ceil(q * (double)l->n), seen = 0, i;
    if (l->n == 0)
        return 0;
    if (rank < 1)
        rank = 1;
    if (rank >= l->n)
        return l->max;
    for (i = 0; i < LAT_MAX; i++)
        if ((seen += l->b[i]) >= rank)
            return i;
    return l->max;
}

/* ---- (a) raw libsecp256k1 ------------------------------------------------- */

/* One signature as the eth plugin makes it with verify_signatures on:
 * sign_recoverable, serialize, parse, verify against pk.  0 or -1. */
static int sign_verify(const secp256k1_context *ctx, const unsigned char *msg,
                       const unsigned char *key, const secp256k1_pubkey *pk)
{
    secp256k1_ecdsa_recoverable_signature rsig;
    secp256k1_ecdsa_signature sig;
    unsigned char rs[64];
    int recid;
    if (!secp256k1_ecdsa_sign_recoverable(ctx, &rsig, msg, key, NULL, NULL) ||
        !secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, rs,
                                                                 &recid,
                                                                 &rsig) ||
        !secp256k1_ecdsa_signature_parse_compact(ctx, &sig, rs) ||
        secp256k1_ecdsa_verify(ctx, &sig, msg, pk) != 1)
        return -1;
    return 0;
}

static void bench_secp(void)
{
    int flags =
#ifdef SECP256K1_CONTEXT_NONE
        SECP256K1_CONTEXT_NONE;
#else
        SECP256K1_CONTEXT_SIGN;
#endif
    secp256k1_context *ctx = secp256k1_context_create(flags);
    secp256k1_ecdsa_recoverable_signature sig;
    unsigned char key[32], msg[32], seed[32];
    double t0, t, c0, c;
    uint64_t n = 0;
    int i;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    unhex(key, KEY_HEX, 32);
    for (i = 0; i < 32; i++) {
        msg[i] = (unsigned char)(0xa5 ^ (i * 7));
        seed[i] = (unsigned char)(i * 13 + 1);
    }
    if (ctx == NULL || !secp256k1_context_randomize(ctx, seed)) {
        fprintf(stderr, "bench_sign: secp256k1 context failed\n");
        exit(1);
    }
    /* warm up caches and the CPU clock */
    for (i = 0; i < 200; i++)
        if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, msg, key, NULL, NULL))
            exit(1);
    t0 = now_s();
    c0 = cpu_s();
    do {
        for (i = 0; i < 256; i++) {
            msg[0] = (unsigned char)i; /* a fresh nonce each time */
            if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, msg, key, NULL,
                                                  NULL))
                exit(1);
        }
        n += 256;
        t = now_s() - t0;
    } while (t < g_time);
    c = cpu_s() - c0;
    printf("{\"bench\":\"secp256k1_sign_recoverable\",\"ops_per_s\":%.1f,"
           "\"us_per_op\":%.3f,\"n\":%llu,\"seconds\":%.3f,\"cpu_s\":%.3f,"
           "\"cpus\":%ld}\n",
           (double)n / c, c * 1e6 / (double)n, (unsigned long long)n, t, c,
           cpus);
    fflush(stdout);
    fprintf(stderr, "(a) secp256k1_ecdsa_sign_recoverable: %.0f ops per "
                    "CPU-second on one core (%.1f us), %ld online CPUs\n",
            (double)n / c, c * 1e6 / (double)n, cpus);

    /* sign + verify: what one signature costs the eth plugin with
     * verify_signatures on (the public key is derived once per unseal) */
    {
        secp256k1_pubkey pk;
        uint64_t m = 0;
        double t1, u, c1;
        if (!secp256k1_ec_pubkey_create(ctx, &pk, key))
            exit(1);
        t1 = now_s();
        c1 = cpu_s();
        do {
            for (i = 0; i < 256; i++) {
                msg[0] = (unsigned char)i;
                if (sign_verify(ctx, msg, key, &pk) != 0)
                    exit(1);
            }
            m += 256;
            u = now_s() - t1;
        } while (u < g_time);
        u = cpu_s() - c1;
        printf("{\"bench\":\"secp256k1_sign_verify\",\"ops_per_s\":%.1f,"
               "\"us_per_op\":%.3f,\"n\":%llu}\n",
               (double)m / u, u * 1e6 / (double)m, (unsigned long long)m);
        fflush(stdout);
        fprintf(stderr, "(a) sign + secp256k1_ecdsa_verify: %.0f ops per "
                        "CPU-second on one core (%.1f us)\n",
                (double)m / u, u * 1e6 / (double)m);
    }
    secp256k1_context_destroy(ctx);
}

/* ---- engine helpers ---------------------------------------------------------- */

typedef struct bengine {
    eng_config cfg;
    eng_engine e;
} bengine;

static int engine_open(bengine *b, const char *data_dir, int ttl, int verify)
{
    char text[4096], err[1024];
    snprintf(text, sizeof text,
             "role = \"standalone\";\n"
             "data_dir = \"%s\";\n"
             "plugin_dir = \"%s\";\n"
             "log_level = \"warn\";\n"
             "workers = 1;\n"
             "sealer = { type = \"local\"; master_key_file = \"master.key\"; };\n"
             "keystore = { type = \"sqlite\"; path = \"keys.db\"; };\n"
             "key_cache = { ttl_seconds = %d; };\n"
             "plugins = ( { name = \"eth\"; path = \"eth.so\";"
             " settings = { verify_signatures = %s; }; } );\n",
             data_dir, g_plugin_dir, ttl, verify ? "true" : "false");
    memset(b, 0, sizeof *b);
    if (eng_config_load_string(&b->cfg, text, data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "bench_sign: config: %s\n", err);
        return -1;
    }
    if (eng_engine_open(&b->e, &b->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "bench_sign: engine: %s\n", err);
        eng_config_free(&b->cfg);
        return -1;
    }
    return 0;
}

static void engine_close(bengine *b)
{
    eng_engine_close(&b->e);
    eng_config_free(&b->cfg);
}

/* Dispatches body; returns the status and the answer in *resp (malloc'd). */
static int call(bengine *b, const char *body, char **resp)
{
    eng_request req;
    size_t len;
    memset(&req, 0, sizeof req);
    req.body = body;
    req.body_len = strlen(body);
    req.peer = "bench";
    return eng_dispatch(&b->e, &req, resp, &len);
}

/* Copies "field":"value" out of a JSON answer. */
static int json_field(const char *json, const char *field, char *out,
                      size_t cap)
{
    char pat[64];
    const char *p, *q;
    snprintf(pat, sizeof pat, "\"%s\":\"", field);
    if ((p = strstr(json, pat)) == NULL)
        return -1;
    p += strlen(pat);
    if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 0;
}

static int set_key(bengine *b, char *key_id, char *address)
{
    char body[512], *resp = NULL;
    int st;
    snprintf(body, sizeof body,
             "{\"operation\":\"set_key\",\"payload\":{\"eth_key\":\"%s\","
             "\"secret\":\"%s\"}}",
             KEY_HEX, SECRET);
    st = call(b, body, &resp);
    if (st != 200 || json_field(resp, "key_id", key_id, 37) != 0 ||
        json_field(resp, "address", address, SIGNER_MAX_ADDRESS) != 0) {
        fprintf(stderr, "bench_sign: set_key: HTTP %d %s\n", st,
                resp ? resp : "");
        free(resp);
        return -1;
    }
    free(resp);
    return 0;
}

static char *sign_body(const char *key_id)
{
    char *out = NULL;
    if (asprintf(&out,
                 "{\"operation\":\"sign_transaction\",\"payload\":{"
                 "\"key_id\":\"%s\",\"secret\":\"%s\","
                 "\"transaction_payload\":{\"value\":0.01,"
                 "\"to\":\"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf\","
                 "\"nonce\":0,\"type\":2,\"chainId\":4,\"gas\":100000,"
                 "\"maxFeePerGas\":100000000000,"
                 "\"maxPriorityFeePerGas\":3000000000}}}",
                 key_id, SECRET) < 0) {
        fprintf(stderr, "bench_sign: out of memory\n");
        exit(1);
    }
    return out;
}

typedef struct sign_result {
    double ops;
    uint64_t n, p50, p90, p99, max;
    double mean;
} sign_result;

/* Signs for g_time seconds, single threaded.  With ids (n_ids > 0) each
 * request names a key_id drawn at random from ids; else key_id. */
static int sign_loop_for(bengine *b, const char *key_id, char **ids,
                         size_t n_ids, sign_result *r, double secs)
{
    char *fixed = n_ids ? NULL : sign_body(key_id);
    double t0, t, c0;
    lat l;
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    int bad = 0;

    lat_init(&l);
    /* warm-up: a few requests (page in the plugin, the B-tree path, ...) */
    for (int i = 0; i < 50; i++) {
        char *resp = NULL, *body = fixed ? fixed : sign_body(ids[i % n_ids]);
        int st = call(b, body, &resp);
        if (st != 200) {
            fprintf(stderr, "bench_sign: sign_transaction: HTTP %d %s\n", st,
                    resp ? resp : "");
            bad = 1;
        }
        if (!fixed)
            free(body);
        free(resp);
        if (bad)
            break;
    }
    t0 = now_s();
    c0 = cpu_s();
    t = 0;
    while (!bad && t < secs) {
        char *resp = NULL, *body = fixed;
        double s;
        int st;
        if (!fixed) {
            rnd ^= rnd << 13;
            rnd ^= rnd >> 7;
            rnd ^= rnd << 17;
            body = sign_body(ids[rnd % n_ids]);
        }
        s = now_s();
        st = call(b, body, &resp);
        t = now_s();
        lat_add(&l, (uint64_t)((t - s) * 1e6 + 0.5));
        t -= t0;
        if (st != 200) {
            fprintf(stderr, "bench_sign: sign_transaction: HTTP %d %s\n", st,
                    resp ? resp : "");
            bad = 1;
        }
        if (!fixed)
            free(body);
        free(resp);
    }
    free(fixed);
    c0 = cpu_s() - c0;
    r->n = l.n;
    r->ops = c0 > 0 ? (double)l.n / c0 : 0; /* per CPU-second */
    r->p50 = lat_q(&l, 0.5);
    r->p90 = lat_q(&l, 0.9);
    r->p99 = lat_q(&l, 0.99);
    r->max = l.max;
    r->mean = l.n ? l.sum / (double)l.n : 0;
    free(l.b);
    return bad ? -1 : 0;
}

/* The same for --time seconds. */
static int sign_loop(bengine *b, const char *key_id, char **ids, size_t n_ids,
                     sign_result *r)
{
    return sign_loop_for(b, key_id, ids, n_ids, r, g_time);
}

static void print_sign(const char *bench, const char *extra,
                       const sign_result *r)
{
    printf("{\"bench\":\"%s\"%s%s,\"ops_per_s\":%.1f,\"n\":%llu,"
           "\"latency_us\":{\"mean\":%.1f,\"p50\":%llu,\"p90\":%llu,"
           "\"p99\":%llu,\"max\":%llu}}\n",
           bench, extra[0] ? "," : "", extra, r->ops, (unsigned long long)r->n,
           r->mean, (unsigned long long)r->p50, (unsigned long long)r->p90,
           (unsigned long long)r->p99, (unsigned long long)r->max);
    fflush(stdout);
}

/* ---- (b) dispatcher, cold and warm -------------------------------------- */

static int bench_dispatch(const char *base, sign_result *cold_out,
                          int cold_only)
{
    /* cold, warm, and warm with the recovery check off (for comparison:
     * the default keeps it on) */
    static const struct {
        int ttl, verify;
        const char *tag, *label;
    } runs[] = {
        {0, 1, "\"cache\":\"cold\",\"keys\":1", "cold cache"},
        {600, 1, "\"cache\":\"warm\",\"keys\":1", "warm cache"},
        {600, 0, "\"cache\":\"warm-noverify\",\"keys\":1",
         "warm cache, verify_signatures=false"}};
    char dir[4096], key_id[37], address[SIGNER_MAX_ADDRESS];
    bengine b;
    sign_result r;
    size_t i;
    int rc = 0;

    snprintf(dir, sizeof dir, "%s/one", base);
    /* cold_only: the warm runs were made by bench_alternated */
    for (i = 0; i < (cold_only ? 1 : sizeof runs / sizeof runs[0]); i++) {
        if (engine_open(&b, dir, runs[i].ttl, runs[i].verify) != 0)
            return -1;
        if (i == 0 && set_key(&b, key_id, address) != 0) {
            engine_close(&b);
            return -1;
        }
        if (sign_loop(&b, key_id, NULL, 0, &r) != 0)
            rc = -1;
        engine_close(&b);
        if (rc != 0)
            return rc;
        print_sign("dispatch_sign_transaction", runs[i].tag, &r);
        fprintf(stderr, "(b) sign_transaction via eng_dispatch, %s: "
                        "%.0f ops/s (p50 %llu us, p99 %llu us)\n",
                runs[i].label, r.ops, (unsigned long long)r.p50,
                (unsigned long long)r.p99);
        if (i == 0 && cold_out != NULL)
            *cold_out = r;
    }
    return 0;
}

/* ---- (a) and (b) alternated ------------------------------------------------ */

#define AB_MAX_ROUNDS 31
static int g_rounds = 7;

/* Raw signatures (verify: sign + verify) for secs CPU-seconds of this
 * thread; ops per CPU-second. */
static double raw_rate(const secp256k1_context *ctx, unsigned char *msg,
                       const unsigned char *key, const secp256k1_pubkey *pk,
                       int verify, double secs)
{
    secp256k1_ecdsa_recoverable_signature sig;
    double c0 = cpu_s(), c;
    uint64_t n = 0;
    int i;

    do {
        for (i = 0; i < 64; i++) {
            msg[0] = (unsigned char)(n + (uint64_t)i);
            if (verify ? sign_verify(ctx, msg, key, pk) != 0
                       : !secp256k1_ecdsa_sign_recoverable(ctx, &sig, msg, key,
                                                           NULL, NULL))
                exit(1);
        }
        n += 64;
        c = cpu_s() - c0;
    } while (c < secs);
    return (double)n / c;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Median of v[0..n) (sorts a copy). */
static double median(const double *v, int n)
{
    double t[AB_MAX_ROUNDS];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* The smallest (dir < 0) or largest value of v[0..n). */
static double extreme(const double *v, int n, int dir)
{
    double x = v[0];
    int i;
    for (i = 1; i < n; i++)
        if (dir < 0 ? v[i] < x : v[i] > x)
            x = v[i];
    return x;
}

/* One round of (b): the dispatcher, warm cache, verify on or off, for secs
 * CPU-seconds; fills *r. */
static int ab_dispatch(const char *dir, const char *key_id, int verify,
                       double secs, sign_result *r)
{
    bengine b;
    int rc;
    if (engine_open(&b, dir, 600, verify) != 0)
        return -1;
    rc = sign_loop_for(&b, key_id, NULL, 0, r, secs);
    engine_close(&b);
    return rc;
}

/* (a) and (b) in alternated short rounds in this one process (raw sign,
 * raw sign + verify, dispatcher verify on, verify off, then again), so that
 * a machine whose speed wanders moves both sides of each ratio alike.
 * Prints the medians of each, and the medians of the per-round ratios
 * (b on)/(a sign + verify) and (b off)/(a sign). */
static int bench_alternated(const char *base)
{
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    double as[AB_MAX_ROUNDS], asv[AB_MAX_ROUNDS], bon[AB_MAX_ROUNDS],
        boff[AB_MAX_ROUNDS], ron[AB_MAX_ROUNDS], roff[AB_MAX_ROUNDS];
    double secs = g_time / 4 > 0.1 ? g_time / 4 : 0.1;
    unsigned char key[32], msg[32], seed[32];
    char dir[4096], key_id[37], address[SIGNER_MAX_ADDRESS];
    sign_result on[AB_MAX_ROUNDS], off[AB_MAX_ROUNDS];
    secp256k1_pubkey pk;
    bengine b;
    int i, n = g_rounds;

    unhex(key, KEY_HEX, 32);
    for (i = 0; i < 32; i++) {
        msg[i] = (unsigned char)(0xa5 ^ (i * 7));
        seed[i] = (unsigned char)(i * 13 + 1);
    }
    if (ctx == NULL || !secp256k1_context_randomize(ctx, seed) ||
        !secp256k1_ec_pubkey_create(ctx, &pk, key))
        return -1;
    snprintf(dir, sizeof dir, "%s/alt", base);
    if (engine_open(&b, dir, 600, 1) != 0)
        return -1;
    i = set_key(&b, key_id, address);
    engine_close(&b);
    if (i != 0)
        return -1;
    (void)raw_rate(ctx, msg, key, &pk, 1, 0.05); /* warm up */
    for (i = 0; i < n; i++) {
        as[i] = raw_rate(ctx, msg, key, &pk, 0, secs);
        asv[i] = raw_rate(ctx, msg, key, &pk, 1, secs);
        if (ab_dispatch(dir, key_id, 1, secs, &on[i]) != 0 ||
            ab_dispatch(dir, key_id, 0, secs, &off[i]) != 0)
            return -1;
        bon[i] = on[i].ops;
        boff[i] = off[i].ops;
        ron[i] = bon[i] / asv[i];
        roff[i] = boff[i] / as[i];
    }
    secp256k1_context_destroy(ctx);
    printf("{\"bench\":\"secp256k1_sign_recoverable\",\"ops_per_s\":%.1f,"
           "\"us_per_op\":%.3f,\"rounds\":%d,\"cpus\":%ld}\n",
           median(as, n), 1e6 / median(as, n), n,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("{\"bench\":\"secp256k1_sign_verify\",\"ops_per_s\":%.1f,"
           "\"us_per_op\":%.3f,\"rounds\":%d}\n",
           median(asv, n), 1e6 / median(asv, n), n);
    /* latencies: those of the last round */
    on[n - 1].ops = median(bon, n);
    off[n - 1].ops = median(boff, n);
    print_sign("dispatch_sign_transaction", "\"cache\":\"warm\",\"keys\":1",
               &on[n - 1]);
    print_sign("dispatch_sign_transaction",
               "\"cache\":\"warm-noverify\",\"keys\":1", &off[n - 1]);
    printf("{\"bench\":\"ab_ratio\",\"rounds\":%d,\"seconds\":%.3f,"
           "\"on\":%.4f,\"off\":%.4f,\"on_min\":%.4f,\"on_max\":%.4f,"
           "\"off_min\":%.4f,\"off_max\":%.4f}\n",
           n, secs, median(ron, n), median(roff, n), extreme(ron, n, -1),
           extreme(ron, n, 1), extreme(roff, n, -1), extreme(roff, n, 1));
    fflush(stdout);
    fprintf(stderr, "(a)/(b) alternated, %d rounds of %.2f s: raw sign %.0f, "
                    "sign + verify %.0f, dispatcher verify on %.0f (ratio "
                    "%.2f), off %.0f (ratio %.2f) per CPU-second\n",
            n, secs, median(as, n), median(asv, n), median(bon, n),
            median(ron, n), median(boff, n), median(roff, n));
    return 0;
}

/* ---- (i) instruction counts under callgrind -------------------------------- */

/* Runs count requests of body through the dispatcher with collection on
 * (the caller dumps).  0 or -1. */
static int instr_dispatch(bengine *b, const char *body, long count)
{
    long i;
    int bad = 0;
    CALLGRIND_TOGGLE_COLLECT;
    for (i = 0; i < count && !bad; i++) {
        char *resp = NULL;
        if (call(b, body, &resp) != 200)
            bad = 1;
        free(resp);
    }
    CALLGRIND_TOGGLE_COLLECT;
    return bad ? -1 : 0;
}

/* Segments "raw-sign", "raw-sign-verify", "dispatch-verify" and
 * "dispatch-noverify"
 * (sign_transaction, warm cache), count operations each, one callgrind dump
 * per segment; bench/run.sh splits them into crypto and the rest. */
static int bench_instr(const char *base, long count)
{
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    secp256k1_pubkey pk;
    unsigned char key[32], msg[32];
    char dir[4096], key_id[37], address[SIGNER_MAX_ADDRESS], *body;
    bengine b;
    long i;
    int v, rc = 0;

    unhex(key, KEY_HEX, 32);
    memset(msg, 0x5a, sizeof msg);
    if (ctx == NULL || !secp256k1_ec_pubkey_create(ctx, &pk, key))
        return -1;
    CALLGRIND_TOGGLE_COLLECT;
    for (i = 0; i < count; i++) {
        secp256k1_ecdsa_recoverable_signature rsig;
        msg[0] = (unsigned char)i;
        if (!secp256k1_ecdsa_sign_recoverable(ctx, &rsig, msg, key, NULL, NULL))
            rc = -1;
    }
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT("raw-sign");
    CALLGRIND_TOGGLE_COLLECT;
    for (i = 0; i < count; i++) {
        msg[0] = (unsigned char)i;
        if (sign_verify(ctx, msg, key, &pk) != 0)
            rc = -1;
    }
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT("raw-sign-verify");
    secp256k1_context_destroy(ctx);
    snprintf(dir, sizeof dir, "%s/instr", base);
    for (v = 1; v >= 0 && rc == 0; v--) {
        if (engine_open(&b, dir, 600, v) != 0)
            return -1;
        if (v == 1 && set_key(&b, key_id, address) != 0)
            rc = -1;
        body = sign_body(key_id);
        /* warm: the first request unseals and caches the key */
        for (i = 0; i < 20 && rc == 0; i++) {
            char *resp = NULL;
            if (call(&b, body, &resp) != 200)
                rc = -1;
            free(resp);
        }
        if (rc == 0 && instr_dispatch(&b, body, count) != 0)
            rc = -1;
        CALLGRIND_DUMP_STATS_AT(v ? "dispatch-verify" : "dispatch-noverify");
        free(body);
        engine_close(&b);
    }
    printf("{\"bench\":\"instr\",\"count\":%ld,\"callgrind\":%d}\n", count,
#ifdef HAVE_CALLGRIND
           RUNNING_ON_VALGRIND ? 1 : 0
#else
           0
#endif
    );
    return rc;
}

/* ---- (e) many keys ----------------------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
    char tmp[4200], buf[1 << 16];
    int in = open(from, O_RDONLY), out;
    ssize_t n;
    if (in < 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    close(in);
    if (n < 0 || fsync(out) != 0 || close(out) != 0 || rename(tmp, to) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void unlink_db(const char *db)
{
    char p[4200];
    unlink(db);
    snprintf(p, sizeof p, "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
}

static int bench_keys(const char *base, const char *keys_dir, long n_keys,
                      const char *ids_out, const sign_result *one_cold)
{
    char dir[4096], db[4200], mk[4200], stage[4200], sdb[4300];
    char key_id[37], address[SIGNER_MAX_ADDRESS], err[512];
    unsigned char plain[2 + 32 + sizeof SECRET];
    char **ids = NULL;
    bengine b;
    eng_keystore *ks;
    eng_sealer *sealer;
    FILE *idf = NULL;
    sign_result hot, rnd;
    double t0, t_create;
    long i;
    int staged = 0, rc = -1;
    size_t plen;
    long rss;

    if (keys_dir != NULL)
        snprintf(dir, sizeof dir, "%s", keys_dir);
    else
        snprintf(dir, sizeof dir, "%s/many", base);
    snprintf(db, sizeof db, "%s/keys.db", dir);
    snprintf(mk, sizeof mk, "%s/master.key", dir);

    /* One real import through the API: creates master.key and keys.db, and
     * gives the address stored with every record. */
    if (engine_open(&b, dir, 0, 1) != 0)
        return -1;
    if (set_key(&b, key_id, address) != 0) {
        engine_close(&b);
        return -1;
    }
    engine_close(&b);

    if ((ids = calloc((size_t)n_keys, sizeof *ids)) == NULL)
        return -1;
    ids[0] = strdup(key_id);
    if (ids_out != NULL && (idf = fopen(ids_out, "w")) == NULL) {
        fprintf(stderr, "bench_sign: %s: %s\n", ids_out, strerror(errno));
        goto out;
    }
    if (idf)
        fprintf(idf, "%s\n", key_id);

    /* Stage on tmpfs when we can: every put is an fsync'd transaction. */
    snprintf(stage, sizeof stage, "/dev/shm/bench-keys-XXXXXX");
    if (access("/dev/shm", W_OK) == 0 && mkdtemp(stage) != NULL) {
        snprintf(sdb, sizeof sdb, "%s/keys.db", stage);
        if (copy_file(db, sdb) == 0)
            staged = 1;
        else
            rmdir(stage);
    }
    if (!staged)
        snprintf(sdb, sizeof sdb, "%s", db);

    t0 = now_s();
    sealer = eng_sealer_local_open(mk, err, sizeof err);
    ks = sealer ? eng_keystore_sqlite_open(sdb, err, sizeof err) : NULL;
    if (ks == NULL) {
        fprintf(stderr, "bench_sign: %s\n", err);
        eng_sealer_free(sealer);
        goto out;
    }
    plain[0] = 32;
    unhex(plain + 1, KEY_HEX, 32);
    plain[33] = (unsigned char)strlen(SECRET);
    memcpy(plain + 34, SECRET, strlen(SECRET));
    plen = 34 + strlen(SECRET);
    for (i = 1; i < n_keys; i++) {
        char kid[37];
        unsigned char *blob = NULL;
        size_t blen = 0;
        signer_key_meta meta;
        if (eng_uuid_v4(kid) != 0)
            break;
        meta.key_id = kid;
        meta.chain = "eth";
        meta.address = address;
        if (eng_sealer_seal(sealer, &blob, &blen, &meta, plain, plen) !=
                SIGNER_OK ||
            eng_keystore_put(ks, &meta, blob, blen) != SIGNER_OK) {
            free(blob);
            fprintf(stderr, "bench_sign: storing key %ld failed\n", i);
            break;
        }
        free(blob);
        ids[i] = strdup(kid);
        if (idf)
            fprintf(idf, "%s\n", kid);
        if (!staged && now_s() - t0 > 90) {
            fprintf(stderr, "bench_sign: no tmpfs; stopped after %ld keys "
                            "(90 s of fsync'd inserts)\n",
                    i + 1);
            i++;
            break;
        }
    }
    eng_wipe(plain, sizeof plain);
    n_keys = i;
    if (eng_keystore_count(ks) != n_keys)
        fprintf(stderr, "bench_sign: keystore holds %lld keys, expected %ld\n",
                eng_keystore_count(ks), n_keys);
    eng_keystore_close(ks);
    eng_sealer_free(sealer);
    if (staged) {
        unlink_db(db);
        if (copy_file(sdb, db) != 0) {
            fprintf(stderr, "bench_sign: copying %s to %s failed\n", sdb, db);
            goto out;
        }
        unlink_db(sdb);
        rmdir(stage);
    }
    t_create = now_s() - t0;
    if (idf) {
        fclose(idf);
        idf = NULL;
    }
    fprintf(stderr, "(e) %ld keys created in %.1f s (%s)\n", n_keys, t_create,
            staged ? "staged on tmpfs" : "fsync'd in place");

    /* Sign with N keys: cache off, so every request reads the keystore. */
    if (engine_open(&b, dir, 0, 1) != 0)
        goto out;
    rss = rss_kib();
    if (sign_loop(&b, key_id, NULL, 0, &hot) != 0 ||
        sign_loop(&b, NULL, ids, (size_t)n_keys, &rnd) != 0) {
        engine_close(&b);
        goto out;
    }
    engine_close(&b);
    {
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"cache\":\"cold\",\"keys\":%ld,\"key_ids\":\"one\"", n_keys);
        print_sign("dispatch_sign_transaction", extra, &hot);
        snprintf(extra, sizeof extra,
                 "\"cache\":\"cold\",\"keys\":%ld,\"key_ids\":\"random\"",
                 n_keys);
        print_sign("dispatch_sign_transaction", extra, &rnd);
    }
    printf("{\"bench\":\"keys\",\"keys\":%ld,\"create_s\":%.2f,\"staged\":%s,"
           "\"data_dir\":\"%s\",\"secret\":\"%s\",\"bench_rss_kib\":%ld,"
           "\"sign_p50_us_1key\":%llu,\"sign_p50_us_nkeys\":%llu,"
           "\"sign_p50_us_nkeys_random\":%llu,\"sign_p99_us_1key\":%llu,"
           "\"sign_p99_us_nkeys\":%llu,\"sign_p99_us_nkeys_random\":%llu}\n",
           n_keys, t_create, staged ? "true" : "false", dir, SECRET, rss,
           (unsigned long long)(one_cold ? one_cold->p50 : 0),
           (unsigned long long)hot.p50, (unsigned long long)rnd.p50,
           (unsigned long long)(one_cold ? one_cold->p99 : 0),
           (unsigned long long)hot.p99, (unsigned long long)rnd.p99);
    fflush(stdout);
    fprintf(stderr, "(e) sign latency (cold cache) p50/p99: 1 key %llu/%llu "
                    "us, %ld keys %llu/%llu us (one key_id), %llu/%llu us "
                    "(random key_ids); engine RSS %ld KiB\n",
            (unsigned long long)(one_cold ? one_cold->p50 : 0),
            (unsigned long long)(one_cold ? one_cold->p99 : 0), n_keys,
            (unsigned long long)hot.p50, (unsigned long long)hot.p99,
            (unsigned long long)rnd.p50, (unsigned long long)rnd.p99, rss);
    rc = 0;
out:
    if (idf)
        fclose(idf);
    for (i = 0; i < n_keys; i++)
        free(ids[i]);
    free(ids);
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int rmtree(const char *path)
{
    char cmd[4200];
    /* our own mkdtemp directory; its name has no shell metacharacters */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_sign --plugin-dir DIR [--time SEC] [--keys N]\n"
            "                  [--keys-dir DIR] [--key-ids-out FILE]\n"
            "                  [--only a,b,e,i] [--count N] [--rounds N]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"plugin-dir", required_argument, NULL, 'p'},
        {"time", required_argument, NULL, 't'},
        {"keys", required_argument, NULL, 'k'},
        {"keys-dir", required_argument, NULL, 'K'},
        {"key-ids-out", required_argument, NULL, 'o'},
        {"only", required_argument, NULL, 'O'},
        {"count", required_argument, NULL, 'n'},
        {"rounds", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *only = "a,b,e", *keys_dir = NULL, *ids_out = NULL;
    char base[] = "/tmp/bench-sign-XXXXXX", path[4200];
    long n_keys = 100000, count = 200;
    sign_result cold;
    int opt, rc = 0, have_cold = 0, alternated;

    /* as signerd's main does: the request path measured is production's */
    eng_wiping_allocators_install();
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case 'p': g_plugin_dir = optarg; break;
        case 't': g_time = atof(optarg); break;
        case 'k': n_keys = atol(optarg); break;
        case 'K': keys_dir = optarg; break;
        case 'o': ids_out = optarg; break;
        case 'O': only = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'r': g_rounds = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (g_time <= 0 || n_keys < 1 || count < 1 || g_rounds < 1 ||
        g_rounds > AB_MAX_ROUNDS || optind != argc) {
        usage(stderr);
        return 64;
    }
    /* a and b together: alternated rounds (bench_alternated) */
    alternated = strchr(only, 'a') != NULL && strchr(only, 'b') != NULL;
    if (strchr(only, 'a') && !alternated)
        bench_secp();
    if (!strchr(only, 'b') && !strchr(only, 'e') && !strchr(only, 'i'))
        return 0;
    if (g_plugin_dir == NULL) {
        fprintf(stderr, "bench_sign: --plugin-dir is required for b and e\n");
        return 64;
    }
    eng_log_set_level(SIGNER_LOG_WARN);
    if (mkdtemp(base) == NULL) {
        perror("bench_sign: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/one", base);
    if (strchr(only, 'i') && bench_instr(base, count) != 0)
        rc = 1;
    if (rc == 0 && alternated && bench_alternated(base) != 0)
        rc = 1;
    if (rc == 0 && strchr(only, 'b') &&
        bench_dispatch(base, &cold, alternated) != 0)
        rc = 1;
    else if (strchr(only, 'b'))
        have_cold = 1;
    if (rc == 0 && strchr(only, 'e') &&
        bench_keys(base, keys_dir, n_keys, ids_out,
                   have_cold ? &cold : NULL) != 0)
        rc = 1;
    rmtree(base);
    return rc;
}
