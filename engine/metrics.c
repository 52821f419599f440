#include "config.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "host.h"
#include "util.h"

void eng_metrics_count(eng_engine *e, size_t op_index, int status,
                       uint64_t latency_us)
{
    struct eng_metrics *m = e->metrics;
    int cls = status / 100;
    if (m == NULL)
        return;
    atomic_fetch_add(&m->by_class[(cls >= 1 && cls <= 5) ? cls : 0], 1);
    if (op_index < ENG_MAX_OP_METRICS) {
        atomic_fetch_add(&m->by_op[op_index], 1);
        atomic_fetch_add(&m->latency_us_by_op[op_index], latency_us);
        if (status >= 400)
            atomic_fetch_add(&m->errors_by_op[op_index], 1);
    } else {
        atomic_fetch_add(&m->unknown_op, 1);
    }
}

typedef struct text {
    char *out;
    size_t cap, pos;
} text;

static void emit(text *t, const char *fmt, ...) SIGNER_PRINTF(2, 3);

static void emit(text *t, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(t->out + t->pos, t->cap - t->pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->pos += (size_t)n < t->cap - t->pos ? (size_t)n : t->cap - t->pos - 1;
}

/* One per-operation counter family (aliases are counted under their op). */
static void per_op(text *t, const eng_engine *e, const char *name,
                   const char *help, const atomic_ullong *v, int seconds)
{
    size_t i;
    emit(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (i = 0; i < e->reg.n_ops && i < ENG_MAX_OP_METRICS; i++) {
        if (e->reg.ops[i].is_alias)
            continue;
        if (seconds)
            emit(t, "%s{operation=\"%s\"} %.6f\n", name, e->reg.ops[i].name,
              (double)atomic_load(&v[i]) / 1e6);
        else
            emit(t, "%s{operation=\"%s\"} %llu\n", name, e->reg.ops[i].name,
              (unsigned long long)atomic_load(&v[i]));
    }
}

char *eng_metrics_text(void *engine)
{
    eng_engine *e = engine;
    struct eng_metrics *m = e->metrics;
    text t;
    size_t i;
    t.cap = 4096 + e->reg.n_ops * 512;
    t.pos = 0;
    if (m == NULL || (t.out = malloc(t.cap)) == NULL)
        return NULL;
    t.out[0] = '\0';
    emit(&t, "# HELP signer_requests_total Requests answered, by status class.\n"
          "# TYPE signer_requests_total counter\n");
    for (i = 1; i <= 5; i++)
        emit(&t, "signer_requests_total{class=\"%zuxx\"} %llu\n", i,
          (unsigned long long)atomic_load(&m->by_class[i]));
    per_op(&t, e, "signer_operation_requests_total", "Requests by operation.",
           m->by_op, 0);
    per_op(&t, e, "signer_operation_errors_total",
           "Failed requests by operation.", m->errors_by_op, 0);
    per_op(&t, e, "signer_operation_seconds_total",
           "Time spent by operation.", m->latency_us_by_op, 1);
    emit(&t, "# HELP signer_unknown_operation_total Requests naming no "
          "operation.\n# TYPE signer_unknown_operation_total counter\n"
          "signer_unknown_operation_total %llu\n",
      (unsigned long long)atomic_load(&m->unknown_op));
    emit(&t, "# HELP signer_keys Keys in the keystore.\n# TYPE signer_keys "
          "gauge\nsigner_keys %lld\n",
      e->ks ? eng_keystore_count(e->ks) : -1LL);
    emit(&t, "# HELP signer_key_cache_entries Unsealed keys in the cache.\n"
          "# TYPE signer_key_cache_entries gauge\n"
          "signer_key_cache_entries %zu\n",
      e->cache ? eng_keycache_count(e->cache, eng_unix_time()) : (size_t)0);
    return t.out;
}

struct eng_metrics *eng_metrics_new(void)
{
    return calloc(1, sizeof(struct eng_metrics));
}
