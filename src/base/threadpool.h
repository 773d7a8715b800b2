/* threadpool.h: a persistent pool of worker threads. A job is split into chunks; the
 * caller and the workers take chunk indices from one atomic counter until none are left.
 * Workers spin briefly between jobs (decode dispatches hundreds of small jobs per token),
 * then sleep on a condition variable. */
#ifndef FORGE_BASE_THREADPOOL_H
#define FORGE_BASE_THREADPOOL_H

typedef struct tpool tpool;

/* fn(ctx, chunk, thread): thread is in [0, tpool_size) and identifies per-thread scratch. */
typedef void (*tpool_fn)(void *ctx, int chunk, int thread);

/* n_threads counts the caller: n_threads - 1 workers are started. NULL on failure. */
tpool *tpool_create(int n_threads);
void tpool_free(tpool *p);
int tpool_size(const tpool *p);
/* Runs fn over chunks 0..n_chunks-1 and returns when all are done. Not reentrant: one
 * caller thread at a time. */
void tpool_run(tpool *p, int n_chunks, tpool_fn fn, void *ctx);

/* Cores this process may use: the affinity mask, capped by a cgroup CPU quota. */
int cpu_default_threads(void);

#endif
