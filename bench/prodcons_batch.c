/* prodcons_batch: producer/consumer with 64 B objects freed in batches.
 *
 * Of THREADS threads, ceil(THREADS/2) producers only allocate 64 B objects
 * and floor(THREADS/2) consumers only free them, through the same bounded
 * single-producer/single-consumer rings as prodcons (bench/ring.h).  A consumer does not
 * free an object as it arrives: it collects the pointers into a batch of
 * 1000 and frees the batch together once it is full, the shape of a
 * message queue or a deferred-reclamation list.  Every free is remote, and
 * 1000 frees in a row land on pages another thread allocates from.
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
    "usage: prodcons_batch [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  THREADS >= 2 (half produce, half consume); 10M objects of 64 B at\n"
    "  scale 1, freed by the consumers in batches of 1000\n";

#include "ring.h"

/* ---- the benchmark ---- */

#define OBJ_SIZE 64
#define BATCH 1000

struct cons {
    struct ring **rings;
    int nrings;
    long nfreed;
    int nbatch;
    struct item *batch;             /* BATCH collected, then freed */
    char pad[64];
};

static void free_batch(struct cons *c)
{
    for (int i = 0; i < c->nbatch; i++)
        item_free(&c->batch[i]);
    c->nfreed += c->nbatch;
    c->nbatch = 0;
}

/* Takes an item into the batch, freeing the batch whenever it fills. */
static void batch_taken(void *ctx, struct item *it)
{
    struct cons *c = ctx;
    c->batch[c->nbatch++] = *it;
    if (c->nbatch == BATCH)
        free_batch(c);
}

static void *consumer(void *arg)
{
    struct cons *c = arg;

    bench_start();
    ring_serve(c->rings, c->nrings, batch_taken, c);
    free_batch(c);
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
    long total = (long)(10e6 * scale);

    struct cons *conss = calloc((size_t)nc, sizeof *conss);
    if (conss == NULL)
        return 1;
    struct ring **rings = rings_new(np);
    struct ring_producer *prods = ring_producers_new(rings, np, total, OBJ_SIZE, OBJ_SIZE);
    for (int c = 0; c < nc; c++) {
        conss[c].rings = rings_served_by(rings, np, c, nc, &conss[c].nrings);
        conss[c].batch = xmalloc(sizeof(struct item) * BATCH);
    }

    struct bench_group g[2] = {
        { ring_producer_run, prods, sizeof *prods, np },
        { consumer, conss, sizeof *conss, nc },
    };
    double secs = bench_run_groups(g, 2, 1);
    long produced = ring_produced(prods, np), freed = 0;
    for (int c = 0; c < nc; c++)
        freed += conss[c].nfreed;
    bench_check_freed("produced", produced, freed);
    printf("prodcons_batch threads=%d producers=%d consumers=%d ops=%ld secs=%.4f "
           "mops_per_s=%.2f",
           nthreads, np, nc, produced, secs, (double)produced / secs / 1e6);
    rings_free(rings, np);
    for (int c = 0; c < nc; c++) {
        free(conss[c].rings);
        free(conss[c].batch);
    }
    free(prods);
    free(conss);
    return bench_report();
}
