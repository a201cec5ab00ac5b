/* threadchurn: many short-lived threads.
 *
 * Threads are started in waves of THREADS at a time, 6000 in all at scale 1.
 * Each allocates 100 objects (16-2048 B), frees half of them itself, leaves a
 * quarter to the main thread (which checks and frees them after the join:
 * memory outliving the thread that allocated it) and swaps the rest into a
 * shared pool of slots, freeing what an earlier, now dead, thread left there.
 * This exercises per-thread heap set-up and tear-down and frees into the
 * heaps of exited threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: threadchurn [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  THREADS run at a time; 6000 threads in all at scale 1, 100 objects each\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define PER_THREAD 100
#define MIN_SIZE 16
#define MAX_SIZE 2048
#define POOL 256

struct job {
    pthread_t tid;
    uint64_t seed;
    int nleft;
    struct item left[PER_THREAD];    /* for the main thread to free */
};

static _Atomic(struct item *) pool[POOL];
static atomic_long npool_freed;

static void *worker(void *arg)
{
    struct job *j = arg;
    uint64_t rng = j->seed;
    struct item it[PER_THREAD];

    for (int i = 0; i < PER_THREAD; i++) {
        it[i].size = (uint32_t)rng_range(&rng, MIN_SIZE, MAX_SIZE);
        it[i].tag = rng_next(&rng);
        it[i].p = xmalloc(it[i].size);
        stamp(it[i].p, it[i].size, it[i].tag);
    }
    j->nleft = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 4 < 2) {                     /* half: freed here */
            check(it[i].p, it[i].size, it[i].tag);
            free(it[i].p);
        } else if (i % 4 == 2) {             /* a quarter: to the main thread */
            j->left[j->nleft++] = it[i];
        } else {                             /* a quarter: into the pool */
            struct item *box = xmalloc(sizeof *box);
            *box = it[i];
            struct item *old = atomic_exchange(&pool[rng_next(&rng) % POOL], box);
            if (old != NULL) {
                check(old->p, old->size, old->tag);
                free(old->p);
                free(old);
                atomic_fetch_add_explicit(&npool_freed, 1, memory_order_relaxed);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 2;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(6000 * scale);
    if (total < nthreads)
        total = nthreads;

    struct job *jobs = calloc((size_t)nthreads, sizeof *jobs);
    if (jobs == NULL)
        return 1;
    uint64_t rng = 42;
    long started = 0, left_freed = 0;
    double t0 = now_sec();
    while (started < total) {
        int wave = total - started < nthreads ? (int)(total - started) : nthreads;
        for (int i = 0; i < wave; i++) {
            jobs[i].seed = rng_next(&rng);
            if (pthread_create(&jobs[i].tid, NULL, worker, &jobs[i]) != 0) {
                fprintf(stderr, "threadchurn: pthread_create failed\n");
                return 1;
            }
        }
        for (int i = 0; i < wave; i++) {
            pthread_join(jobs[i].tid, NULL);
            for (int k = 0; k < jobs[i].nleft; k++) {
                check(jobs[i].left[k].p, jobs[i].left[k].size, jobs[i].left[k].tag);
                free(jobs[i].left[k].p);
            }
            left_freed += jobs[i].nleft;
        }
        started += wave;
    }
    for (int i = 0; i < POOL; i++) {
        struct item *old = atomic_exchange(&pool[i], NULL);
        if (old != NULL) {
            check(old->p, old->size, old->tag);
            free(old->p);
            free(old);
        }
    }
    double secs = now_sec() - t0;
    unsigned long errs = atomic_load(&bench_errors);
    printf("threadchurn threads=%d ops=%ld secs=%.4f threads_per_s=%.0f objects=%ld "
           "freed_after_exit=%ld peak_rss_kib=%ld verified=%s\n",
           nthreads, started, secs, (double)started / secs, started * PER_THREAD,
           left_freed + atomic_load(&npool_freed), peak_rss_kib(), errs ? "FAIL" : "ok");
    free(jobs);
    return errs ? 1 : 0;
}
