/* hugeset: huge blocks churned with a working set larger than hakmem's
 * default BigCache (64 MiB).
 *
 * Each thread repeats: allocate 12 blocks of 8 MiB (96 MiB live), write one
 * byte in every 4 KiB page of each, check them, free them all.  An
 * allocator that keeps the freed mappings (or their pages) for the next
 * round pays only the page writes; one that keeps less than the 12 blocks
 * maps and faults in the rest every round (hakmem's default BigCache
 * capacity holds 6 of them, but it is a soft limit: up to the program's
 * recent live peak, for the decay time, so all 12 are reused).  Peak RSS is the live
 * set in any case.  Reports microseconds per block (allocate + touch + free).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: hugeset [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1: 60 rounds of 12 x 8 MiB blocks per thread\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define PAGE 4096
#define NBLOCKS 12
#define BLOCK (8u << 20)

struct thread {
    pthread_t tid;
    int id;
    long rounds;
    char pad[64];
};

static pthread_barrier_t bar;
static struct span span = SPAN_INIT;

static void one_round(uint64_t *rng)
{
    unsigned char *p[NBLOCKS];
    uint64_t tag[NBLOCKS];
    for (int b = 0; b < NBLOCKS; b++) {
        tag[b] = rng_next(rng);
        p[b] = xmalloc(BLOCK);
        if (((uintptr_t)p[b] & 15) != 0 && atomic_fetch_add(&bench_errors, 1) == 0)
            fprintf(stderr, "hugeset: misaligned block %p\n", (void *)p[b]);
        unsigned char v = (unsigned char)tag[b];
        for (size_t off = 0; off < BLOCK; off += PAGE)
            p[b][off] = v++;
        memcpy(p[b] + BLOCK - 8, &tag[b], 8);
    }
    for (int b = 0; b < NBLOCKS; b++) {
        unsigned char v = (unsigned char)tag[b];
        for (size_t off = 0; off < BLOCK; off += PAGE, v++)
            if (p[b][off] != v) {
                if (atomic_fetch_add(&bench_errors, 1) == 0)
                    fprintf(stderr, "hugeset: page at %p+%zu lost its byte\n", (void *)p[b], off);
                break;
            }
        uint64_t w;
        memcpy(&w, p[b] + BLOCK - 8, 8);
        if (w != tag[b] && atomic_fetch_add(&bench_errors, 1) == 0)
            fprintf(stderr, "hugeset: last word of %p lost\n", (void *)p[b]);
        free(p[b]);
    }
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x8e7ull * (uint64_t)(t->id + 1);
    pthread_barrier_wait(&bar);
    span_begin(&span);
    for (long r = 0; r < t->rounds; r++)
        one_round(&rng);
    span_end(&span);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long rounds = (long)(60 * scale);
    if (rounds < 1)
        rounds = 1;

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].rounds = rounds;
    }
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "hugeset: pthread_create failed\n");
            return 1;
        }
    worker(&th[0]);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i].tid, NULL);

    long ops = rounds * NBLOCKS * nthreads;
    double secs = span_secs(&span);
    printf("hugeset threads=%d ops=%ld secs=%.4f us_per_block=%.1f",
           nthreads, ops, secs, secs * 1e6 * nthreads / (double)ops);
    free(th);
    return bench_report();
}
