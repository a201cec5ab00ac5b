/* prodcons: producer/consumer, every free is remote.
 *
 * Of THREADS threads, ceil(THREADS/2) producers only allocate (16-512 B) and
 * floor(THREADS/2) consumers only free.  Each producer owns a bounded
 * single-producer/single-consumer lock-free ring (bench/ring.h: indices
 * published every 32 items, so the queue's own cache traffic stays small
 * next to the allocator's); consumer c serves rings c, c+C, c+2C, ... A
 * thread that finds its ring full (or all its rings empty) spins briefly,
 * then yields, so oversubscription works.
 *
 * Total objects are fixed and split among the producers.  Each object is
 * tagged at both ends (1 in 16 entirely) and checked by its consumer.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: prodcons [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  THREADS >= 2 (half produce, half consume); 6M objects at scale 1\n";

#include "ring.h"

/* ---- the benchmark ---- */

#define MIN_SIZE 16
#define MAX_SIZE 512

struct cons {
    struct ring **rings;
    int nrings;
    long nfreed;
    char pad[64];
};

static void free_taken(void *ctx, struct item *it)
{
    item_free(it);
}

static void *consumer(void *arg)
{
    struct cons *c = arg;

    bench_start();
    c->nfreed = ring_serve(c->rings, c->nrings, free_taken, NULL);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 2;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    if (nthreads < 2)
        nthreads = 2;
    int np = (nthreads + 1) / 2, nc = nthreads / 2;
    long total = (long)(6e6 * scale);

    struct cons *conss = calloc((size_t)nc, sizeof *conss);
    if (conss == NULL)
        return 1;
    struct ring **rings = rings_new(np);
    struct ring_producer *prods = ring_producers_new(rings, np, total, MIN_SIZE, MAX_SIZE);
    for (int c = 0; c < nc; c++)
        conss[c].rings = rings_served_by(rings, np, c, nc, &conss[c].nrings);

    struct bench_group g[2] = {
        { ring_producer_run, prods, sizeof *prods, np },
        { consumer, conss, sizeof *conss, nc },
    };
    double secs = bench_run_groups(g, 2, 1);
    long produced = ring_produced(prods, np), freed = 0;
    for (int c = 0; c < nc; c++)
        freed += conss[c].nfreed;
    bench_check_freed("produced", produced, freed);
    printf("prodcons threads=%d producers=%d consumers=%d ops=%ld secs=%.4f mops_per_s=%.2f",
           nthreads, np, nc, produced, secs, (double)produced / secs / 1e6);
    rings_free(rings, np);
    for (int c = 0; c < nc; c++)
        free(conss[c].rings);
    free(prods);
    free(conss);
    return bench_report();
}
