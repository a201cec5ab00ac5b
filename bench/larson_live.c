/* larson_live: larson with a large live set handed from thread to thread.
 *
 * Every thread owns an array of 5000 live chunks (8-1000 B) at a time.  A
 * round: each thread replaces random chunks of its array (check and free
 * the old chunk, allocate one of a new random size), then the arrays move
 * on: thread i takes over the array thread i-1 worked on.  So most frees
 * are of chunks another thread allocated, the way Larson & Krishnan's
 * original test (and mimalloc-bench's larson-sized) passes each finished
 * thread's chunks to its successor, with a live set of THREADS x 5000
 * chunks (about 2.5 MiB a thread) that never drains.
 *
 * Total work is fixed and split among the threads.  Every chunk is tagged
 * at both ends (1 in 16 entirely) and checked before it is freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: larson_live [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  8M chunk replacements at scale 1, split among the threads, in rounds\n"
    "  of 5000 per thread; 5000 live chunks per thread, sizes 8-1000 B;\n"
    "  after each round every thread's array passes to the next thread\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define CHUNKS 5000
#define MIN_SIZE 8
#define MAX_SIZE 1000
#define PER_ROUND 5000          /* replacements per thread per round */

struct thread {
    int id;
    long nmalloc;
    char pad[64];
};

static struct item **arrays;    /* arrays[k]: one thread's chunks */
static int nthreads;
static long nrounds;
static pthread_barrier_t round_bar;

static void new_item(struct item *it, uint64_t *rng)
{
    item_alloc(it, rng_range(rng, MIN_SIZE, MAX_SIZE), rng);
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x51ed27ull * (uint64_t)(t->id + 1);
    struct item *own = xmalloc(sizeof(struct item) * CHUNKS);

    for (int i = 0; i < CHUNKS; i++)
        new_item(&own[i], &rng);
    arrays[t->id] = own;
    bench_start();                      /* the fill is not timed */

    for (long r = 0; r < nrounds; r++) {
        /* round r: thread i works on the array thread 0 filled r+i ago */
        struct item *a = arrays[(t->id + r) % nthreads];
        for (int k = 0; k < PER_ROUND; k++) {
            struct item *it = &a[rng_next(&rng) % CHUNKS];
            item_free(it);
            new_item(it, &rng);
        }
        t->nmalloc += PER_ROUND;
        pthread_barrier_wait(&round_bar);
    }
    /* the last array this thread touched is freed here */
    struct item *a = arrays[(t->id + nrounds) % nthreads];
    for (int i = 0; i < CHUNKS; i++)
        item_free(&a[i]);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 2;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(8e6 * scale);
    nrounds = total / nthreads / PER_ROUND;
    if (nrounds < 1)
        nrounds = 1;

    struct thread *threads = calloc((size_t)nthreads, sizeof *threads);
    arrays = calloc((size_t)nthreads, sizeof *arrays);
    if (threads == NULL || arrays == NULL)
        return 1;
    pthread_barrier_init(&round_bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++)
        threads[i].id = i;
    double secs = bench_run_threads(nthreads, worker, threads, sizeof *threads);
    long nmalloc = 0;
    for (int i = 0; i < nthreads; i++)
        nmalloc += threads[i].nmalloc;
    for (int i = 0; i < nthreads; i++)
        free(arrays[i]);        /* the arrays too were handed around */
    printf("larson_live threads=%d ops=%ld rounds=%ld secs=%.4f mops_per_s=%.2f",
           nthreads, nmalloc, nrounds, secs, (double)nmalloc / secs / 1e6);
    free(arrays);
    free(threads);
    return bench_report();
}
