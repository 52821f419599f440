/* A small fixed pool of threads that runs requests whose handling blocks
 * (KMS calls in the enclave role) off the event loops, completing each with
 * eng_complete.  The queue holds at most what the transport lets in
 * (limits.max_inflight).  A gateway's `health` probe is answered at once
 * on the loop, never queued behind them, and so is every request that
 * cannot block (eng_enclave_inline_ok: a local sealer, or a record in the
 * key cache), which saves two thread hand-offs per request.  See
 * enclave.h. */
#include "config.h"
#include "enclave.h"

#include <pthread.h>
#include <stdlib.h>

#define POOL_MAX 64

typedef struct job {
    const eng_request *req;
    eng_completion *done;
    struct job *next;
} job;

struct eng_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head, *tail;
    int stopping;
    int n;
    pthread_t threads[POOL_MAX];
    eng_pool_handler handler;
    void *ctx;
};

/* Next job, or NULL once stopping and empty. */
static job *pool_take(eng_pool *p)
{
    job *j;
    pthread_mutex_lock(&p->lock);
    while (p->head == NULL && !p->stopping)
        pthread_cond_wait(&p->cond, &p->lock);
    j = p->head;
    if (j != NULL && (p->head = j->next) == NULL)
        p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return j;
}

static void *pool_main(void *arg)
{
    eng_pool *p = arg;
    job *j;
    while ((j = pool_take(p)) != NULL) {
        char *resp = NULL;
        size_t len = 0;
        int status = p->handler(p->ctx, j->req, &resp, &len);
        eng_complete(j->done, status, resp, len);
        free(j);
    }
    return NULL;
}

eng_pool *eng_pool_new(int n, eng_pool_handler handler, void *ctx)
{
    eng_pool *p;
    if (n < 1 || n > POOL_MAX || (p = calloc(1, sizeof *p)) == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->handler = handler;
    p->ctx = ctx;
    for (p->n = 0; p->n < n; p->n++)
        if (pthread_create(&p->threads[p->n], NULL, pool_main, p) != 0)
            break;
    if (p->n == 0) {
        eng_pool_free(p);
        return NULL;
    }
    return p;
}

void eng_pool_submit(void *pool, const eng_request *req,
                     eng_completion *done)
{
    eng_pool *p = pool;
    char *resp = NULL;
    size_t len = 0;
    job *j;
    if (eng_enclave_health(req, &resp, &len)) { /* at once, on the loop */
        eng_complete(done, 200, resp, len);
        return;
    }
    if (eng_enclave_inline_ok(req)) { /* no KMS: no hand-off either */
        int status = p->handler(p->ctx, req, &resp, &len);
        eng_complete(done, status, resp, len);
        return;
    }
    if ((j = malloc(sizeof *j)) == NULL) {
        eng_complete(done, 503, NULL, 0);
        return;
    }
    j->req = req;
    j->done = done;
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void eng_pool_free(eng_pool *p)
{
    int i;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}
