#include "base/threadpool.h"

#include "base/port.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_ROUNDS = 20000 };

struct tpool {
    int n_threads;
    pthread_t *threads;
    /* the current job */
    tpool_fn fn;
    void *ctx;
    int n_chunks;
    atomic_int next_chunk;
    atomic_int n_done; /* workers finished with the current job */
    atomic_uint generation;
    atomic_int stop;
    /* sleeping */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int n_sleeping;
};

typedef struct {
    tpool *pool;
    int index;
} worker_arg;

static void run_chunks(tpool *p, int thread) {
    for (;;) {
        int c = atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed);
        if (c >= p->n_chunks) break;
        p->fn(p->ctx, c, thread);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    tpool *p = wa.pool;
    unsigned seen = 0; /* the generation at creation: a job may start before this thread runs */
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                if (spins % 1024 == 0) sched_yield(); /* let others run if the machine is full */
                else cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen)
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->lock);
            spins = 0;
        }
        seen = gen;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_chunks(p, wa.index);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_release);
    }
    return NULL;
}

tpool *tpool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    tpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){.pool = p, .index = i};
        if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_threads = i; /* tear down the ones started */
            tpool_free(p);
            return NULL;
        }
    }
    return p;
}

void tpool_free(tpool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int tpool_size(const tpool *p) { return p->n_threads; }

void tpool_run(tpool *p, int n_chunks, tpool_fn fn, void *ctx) {
    if (n_chunks <= 0) return;
    if (p->n_threads == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; c++) fn(ctx, c, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_chunks = n_chunks;
    atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_chunks(p, 0);
    int workers = p->n_threads - 1;
    /* spin: the workers finish within microseconds; but when the machine is oversubscribed
     * a worker may be descheduled, and spinning would only delay it: yield then */
    for (int spins = 0; atomic_load_explicit(&p->n_done, memory_order_acquire) < workers; spins++) {
        if (spins < 4000) cpu_relax();
        else sched_yield();
    }
}

static int cgroup_quota_cpus(void) {
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32] = {0};
        long period = 0;
        int n = fscanf(f, "%31s %ld", quota, &period);
        fclose(f);
        if (n == 2 && strcmp(quota, "max") != 0 && period > 0) {
            long q = atol(quota);
            if (q > 0) return (int)((q + period - 1) / period);
        }
        return 0;
    }
    long q = 0, period = 0;
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
    if (f) {
        if (fscanf(f, "%ld", &q) != 1) q = 0;
        fclose(f);
    }
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
    if (f) {
        if (fscanf(f, "%ld", &period) != 1) period = 0;
        fclose(f);
    }
    if (q > 0 && period > 0) return (int)((q + period - 1) / period);
    return 0;
}

int cpu_default_threads(void) {
    int n = port_cpu_count();
    int quota = cgroup_quota_cpus();
    if (quota > 0 && quota < n) n = quota;
    return n;
}
