/* largerand: large blocks of random sizes, a bounded live set.
 *
 * Every thread keeps up to 64 live blocks of random sizes between 64 KiB
 * and 1 MiB (any size, not page multiples) and replaces a random one at a
 * time: check and free the old block, allocate a new one, write a byte to
 * every page of it.  The sizes straddle the large and huge tiers of most
 * allocators and every block is touched, so the figure shows whether
 * freed large memory is reused while still mapped (cheap) or given back and
 * faulted in again (a page fault per 4 KiB).
 *
 * Total replacements are fixed and split among the threads.  Every block is
 * tagged at both ends and checked before it is freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: largerand [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  150k replacements at scale 1, split among the threads; up to 64\n"
    "  live blocks of 64 KiB - 1 MiB per thread, every page written\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define LIVE 64
#define MIN_SIZE (64u << 10)
#define MAX_SIZE (1u << 20)
#define PAGE 4096

static void new_item(struct item *it, uint64_t *rng)
{
    it->size = (uint32_t)rng_range(rng, MIN_SIZE, MAX_SIZE);
    it->tag = rng_next(rng) | 1;        /* 1 in 16 would memset it all */
    it->p = xmalloc(it->size);
    for (uint32_t o = 0; o < it->size; o += PAGE)
        ((volatile char *)it->p)[o] = (char)o;
    stamp(it->p, it->size, it->tag);
}

static void *worker(void *arg)
{
    struct bench_share *t = arg;
    uint64_t rng = 0x1a76eull * (uint64_t)(t->id + 1);
    struct item live[LIVE];

    memset(live, 0, sizeof live);
    bench_start();
    for (long op = 0; op < t->ops; op++) {
        struct item *it = &live[rng_next(&rng) % LIVE];
        if (it->p != NULL)
            item_free(it);
        new_item(it, &rng);
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].p != NULL)
            item_free(&live[i]);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(150e3 * scale);

    long ops;
    double secs = bench_run_shares(nthreads, worker, total, &ops);
    printf("largerand threads=%d ops=%ld secs=%.4f us_per_op=%.3f",
           nthreads, ops, secs, secs * 1e6 / (double)ops);
    return bench_report();
}
