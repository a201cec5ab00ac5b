/* threadrounds: a fresh set of threads every round, each with its own
 * working set.
 *
 * Round after round, THREADS threads (2 by default) are created; each
 * allocates 20000 blocks of 16-512 B and 100 of 4-64 KiB, writes to all of
 * them, checks and frees them (the small ones in a shuffled order) and
 * exits; the main thread joins them and starts the next round.  No memory
 * outlives its thread, but every round starts on threads the allocator has
 * never seen: what per-thread heap set-up, the first allocations of a new
 * thread and the release of an exited thread's memory cost, at a working
 * set (about 5 MiB a thread) far above threadchurn's.
 *
 * Every block is tagged at both ends (1 in 16 entirely) and checked.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: threadrounds [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  THREADS new threads a round (default 2); 100 rounds at scale 1;\n"
    "  each thread allocates, touches and frees 20000 blocks of 16-512 B\n"
    "  and 100 of 4-64 KiB, then exits\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define NSMALL 20000
#define SMALL_MIN 16
#define SMALL_MAX 512
#define NBIG 100
#define BIG_MIN 4096
#define BIG_MAX 65536
#define N (NSMALL + NBIG)

struct job {
    uint64_t seed;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    uint64_t rng = j->seed;
    struct item *it = xmalloc(sizeof(struct item) * N);

    for (int i = 0; i < N; i++) {
        it[i].size = i < NSMALL ? (uint32_t)rng_range(&rng, SMALL_MIN, SMALL_MAX)
                                : (uint32_t)rng_range(&rng, BIG_MIN, BIG_MAX);
        it[i].tag = rng_next(&rng);
        it[i].p = xmalloc(it[i].size);
        if (i >= NSMALL)                        /* touch every page */
            for (uint32_t o = 0; o < it[i].size; o += 4096)
                ((char *)it[i].p)[o] = 1;
        stamp(it[i].p, it[i].size, it[i].tag);
    }
    /* a permutation of the small blocks: a stride coprime to NSMALL */
    for (int k = 0, i = 0; k < NSMALL; k++, i = (i + 7919) % NSMALL)
        item_free(&it[i]);
    for (int i = NSMALL; i < N; i++)
        item_free(&it[i]);
    free(it);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 2;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long rounds = (long)(100 * scale);
    if (rounds < 1)
        rounds = 1;

    struct job *jobs = calloc((size_t)nthreads, sizeof *jobs);
    if (jobs == NULL)
        return 1;
    struct bench_group g = { worker, jobs, sizeof *jobs, nthreads };
    double t0 = now_sec();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < nthreads; i++)
            jobs[i].seed = 0x7e57ull * (uint64_t)(r * nthreads + i + 1);
        bench_run_groups(&g, 1, 0);
    }
    double secs = now_sec() - t0;
    long ops = rounds * nthreads * (long)N;
    printf("threadrounds threads=%d rounds=%ld ops=%ld secs=%.4f mops_per_s=%.2f "
           "ms_per_round=%.3f",
           nthreads, rounds, ops, secs, (double)ops / secs / 1e6, secs * 1e3 / (double)rounds);
    free(jobs);
    return bench_report();
}
