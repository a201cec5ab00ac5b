/* prodcons_batch: producer/consumer with 64 B objects freed in batches.
 *
 * Of THREADS threads, ceil(THREADS/2) producers only allocate 64 B objects
 * and floor(THREADS/2) consumers only free them, through the same bounded
 * single-producer/single-consumer rings as prodcons.  A consumer does not
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

#include "bench_util.h"

/* ---- the benchmark ---- */

#define RING_SIZE 1024            /* power of two */
#define OBJ_SIZE 64
#define BATCH 1000
#define SPINS 200
#define PUBLISH 32              /* items between index updates */

struct item {
    void *p;
    uint32_t size;
    uint64_t tag;
};

struct ring {
    _Alignas(64) atomic_ulong tail;   /* written by the producer */
    _Alignas(64) atomic_ulong head;   /* written by the consumer */
    atomic_int done;                  /* producer has pushed its last item */
    _Alignas(64) struct item slot[RING_SIZE];
};

struct prod {
    pthread_t tid;
    struct ring *ring;
    long nitems;
    uint64_t seed;
};

struct cons {
    pthread_t tid;
    struct ring **rings;
    int nrings;
    long nfreed;
    int nbatch;
    struct item *batch;             /* BATCH collected, then freed */
    char pad[64];
};

static pthread_barrier_t start_bar;
static struct span span = SPAN_INIT;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *producer(void *arg)
{
    struct prod *pr = arg;
    struct ring *r = pr->ring;
    uint64_t rng = pr->seed;
    unsigned long tail = 0, head = 0;

    pthread_barrier_wait(&start_bar);
    span_begin(&span);
    for (long i = 0; i < pr->nitems; i++) {
        struct item it;
        it.size = OBJ_SIZE;
        it.tag = rng_next(&rng);
        it.p = xmalloc(it.size);
        stamp(it.p, it.size, it.tag);
        for (int spin = 0; tail - head == RING_SIZE; spin++) {
            head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (spin >= SPINS)
                sched_yield();
            else
                cpu_relax();
        }
        r->slot[tail++ % RING_SIZE] = it;
        /* publish in batches: the queue is not what is being measured */
        if (tail % PUBLISH == 0)
            atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    atomic_store_explicit(&r->done, 1, memory_order_release);
    span_end(&span);
    return NULL;
}

static void free_batch(struct cons *c)
{
    for (int i = 0; i < c->nbatch; i++) {
        struct item *it = &c->batch[i];
        check(it->p, it->size, it->tag);
        free(it->p);
    }
    c->nfreed += c->nbatch;
    c->nbatch = 0;
}

/* Takes everything currently in the ring into the batch, freeing the batch
 * whenever it fills; returns how many were taken. */
static long consume(struct cons *c, struct ring *r)
{
    unsigned long head = atomic_load_explicit(&r->head, memory_order_relaxed);
    unsigned long tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    long n = 0;
    for (; head != tail; head++, n++) {
        c->batch[c->nbatch++] = r->slot[head % RING_SIZE];
        if (c->nbatch == BATCH)
            free_batch(c);
        if ((n % PUBLISH) == PUBLISH - 1)
            atomic_store_explicit(&r->head, head + 1, memory_order_release);
    }
    atomic_store_explicit(&r->head, head, memory_order_release);
    return n;
}

static void *consumer(void *arg)
{
    struct cons *c = arg;
    int live = c->nrings, idle = 0;

    pthread_barrier_wait(&start_bar);
    span_begin(&span);
    while (live > 0) {
        long got = 0;
        live = 0;
        for (int i = 0; i < c->nrings; i++) {
            struct ring *r = c->rings[i];
            /* read done before draining: whatever was pushed before done
             * is seen by this drain */
            int done = atomic_load_explicit(&r->done, memory_order_acquire);
            got += consume(c, r);
            if (!done)
                live++;
        }
        if (got == 0 && ++idle >= SPINS) {
            sched_yield();
            idle = 0;
        } else if (got == 0)
            cpu_relax();
    }
    free_batch(c);
    span_end(&span);
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

    struct prod *prods = calloc((size_t)np, sizeof *prods);
    struct cons *conss = calloc((size_t)nc, sizeof *conss);
    struct ring **rings = calloc((size_t)np, sizeof *rings);
    if (prods == NULL || conss == NULL || rings == NULL)
        return 1;
    for (int i = 0; i < np; i++) {
        if (posix_memalign((void **)&rings[i], 64, sizeof(struct ring)) != 0)
            return 1;
        memset(rings[i], 0, sizeof(struct ring));
        prods[i].ring = rings[i];
        prods[i].nitems = total / np;
        prods[i].seed = 0xabcdefull * (uint64_t)(i + 1);
    }
    for (int c = 0; c < nc; c++) {
        conss[c].rings = calloc((size_t)np, sizeof(struct ring *));
        conss[c].batch = calloc(BATCH, sizeof(struct item));
        if (conss[c].rings == NULL || conss[c].batch == NULL)
            return 1;
        for (int i = c; i < np; i += nc)
            conss[c].rings[conss[c].nrings++] = rings[i];
    }

    pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < np; i++)
        if (pthread_create(&prods[i].tid, NULL, producer, &prods[i]) != 0)
            return 1;
    for (int c = 0; c < nc; c++)
        if (pthread_create(&conss[c].tid, NULL, consumer, &conss[c]) != 0)
            return 1;
    pthread_barrier_wait(&start_bar);
    long produced = 0, freed = 0;
    for (int i = 0; i < np; i++) {
        pthread_join(prods[i].tid, NULL);
        produced += prods[i].nitems;
    }
    for (int c = 0; c < nc; c++) {
        pthread_join(conss[c].tid, NULL);
        freed += conss[c].nfreed;
    }
    double secs = span_secs(&span);

    if (freed != produced && atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "prodcons_batch: produced %ld objects, freed %ld\n", produced, freed);
    unsigned long errs = atomic_load(&bench_errors);
    printf("prodcons_batch threads=%d producers=%d consumers=%d ops=%ld secs=%.4f mops_per_s=%.2f "
           "peak_rss_kib=%ld verified=%s\n",
           nthreads, np, nc, produced, secs, (double)produced / secs / 1e6,
           peak_rss_kib(), errs ? "FAIL" : "ok");
    for (int i = 0; i < np; i++)
        free(rings[i]);
    for (int c = 0; c < nc; c++) {
        free(conss[c].rings);
        free(conss[c].batch);
    }
    free(rings);
    free(prods);
    free(conss);
    return errs ? 1 : 0;
}
