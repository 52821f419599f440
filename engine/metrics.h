/* Request metrics (counters per status class and per operation) and their
 * Prometheus text for GET /metrics. */
#ifndef ENG_METRICS_H
#define ENG_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_MAX_OP_METRICS 64

typedef struct eng_engine eng_engine;

/* Counters; allocated zeroed with the engine. */
struct eng_metrics {
    atomic_ullong by_class[6]; /* 1xx..5xx by status/100; [0] other */
    atomic_ullong by_op[ENG_MAX_OP_METRICS];
    atomic_ullong errors_by_op[ENG_MAX_OP_METRICS];
    atomic_ullong latency_us_by_op[ENG_MAX_OP_METRICS];
    atomic_ullong unknown_op;
};

/* Zeroed counters for a new engine (freed with free()); NULL on ENOMEM. */
struct eng_metrics *eng_metrics_new(void);

/* Counts one answered request; op_index is the registry index of its
 * operation, or (size_t)-1 when it named none.  Thread-safe. */
void eng_metrics_count(eng_engine *e, size_t op_index, int status,
                       uint64_t latency_us);

/* eng_server_callbacks.metrics: Prometheus text, malloc'd (NULL on
 * ENOMEM). */
char *eng_metrics_text(void *engine);

#endif
