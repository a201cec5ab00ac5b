/* hotclass: one hot size class whose working set overflows the default
 * thread cache.
 *
 * Each thread repeats: allocate a batch of blocks of one size, stamp each,
 * then check and free them all (in allocation order), in three phases of
 * about half a second each under a small thread cache: 512 B blocks in
 * batches of 2048, 4 KiB blocks in batches of 256, 48 KiB blocks in batches
 * of 32 (1-1.5 MiB a batch).  A
 * thread cache that keeps less than a batch hands most of the batch's pages
 * back to the shared page allocator at every free-all and fetches them again
 * for the next batch; one that keeps a batch's worth serves the next batch
 * from its own pages.  hakmem's static default keeps one 64 KiB page per
 * class; its learning mode raises tcache_max for the class that churns.
 * Reports the time of each phase (all threads) and ns per malloc+free pair.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: hotclass [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1, split among the threads: 40M allocations of 512 B in\n"
    "  2048-block batches, 24M of 4 KiB in 256-block batches, 8M of 48 KiB in\n"
    "  32-block batches\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define NPHASES 3
static const size_t sizes[NPHASES] = { 512, 4096, 48 << 10 };
static const unsigned batches[NPHASES] = { 2048, 256, 32 };
static const long blocks_per_phase[NPHASES] = { 40000000, 24000000, 8000000 }; /* scale 1 */

struct thread {
    pthread_t tid;
    int id;
    long rounds[NPHASES];
    char pad[64];
};

static pthread_barrier_t bar;
static struct span spans[NPHASES] = { SPAN_INIT, SPAN_INIT, SPAN_INIT };

/* Tags are odd multiples of 16 plus one, so stamp() writes only the first
 * and last words (no full fill): the allocator's cost is what is timed. */
static void one_batch(void **slot, unsigned n, size_t size, uint64_t *rng)
{
    uint64_t base = rng_next(rng) | 1;
    for (unsigned i = 0; i < n; i++) {
        slot[i] = xmalloc(size);
        stamp(slot[i], size, base + 16 * (uint64_t)i);
    }
    for (unsigned i = 0; i < n; i++) {
        check(slot[i], size, base + 16 * (uint64_t)i);
        free(slot[i]);
    }
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x4c1a55ull * (uint64_t)(t->id + 1);
    void **slot = xmalloc(2048 * sizeof *slot);
    for (int s = 0; s < NPHASES; s++) {
        pthread_barrier_wait(&bar);
        span_begin(&spans[s]);
        for (long r = 0; r < t->rounds[s]; r++)
            one_batch(slot, batches[s], sizes[s], &rng);
        span_end(&spans[s]);
    }
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        for (int s = 0; s < NPHASES; s++) {
            long r = (long)(blocks_per_phase[s] * scale) / batches[s] / nthreads;
            th[i].rounds[s] = r > 0 ? r : 1;
        }
    }
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "hotclass: pthread_create failed\n");
            return 1;
        }
    worker(&th[0]);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i].tid, NULL);

    long ops = 0, n[NPHASES] = { 0, 0, 0 };
    for (int i = 0; i < nthreads; i++)
        for (int s = 0; s < NPHASES; s++)
            n[s] += th[i].rounds[s] * (long)batches[s];
    double secs = 0, ns[NPHASES];
    for (int s = 0; s < NPHASES; s++) {
        double p = span_secs(&spans[s]);
        secs += p;
        ops += n[s];
        ns[s] = p * 1e9 * nthreads / (double)n[s];
    }
    unsigned long errs = atomic_load(&bench_errors);
    printf("hotclass threads=%d ops=%ld secs=%.4f ns_pair_512=%.2f ns_pair_4k=%.2f "
           "ns_pair_48k=%.2f peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, secs, ns[0], ns[1], ns[2], peak_rss_kib(), errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
