/* The rings of prodcons and prodcons_batch: bounded single-producer/
 * single-consumer lock-free queues of struct item (bench_util.h).  The
 * producer publishes its tail and the consumer its head only every PUBLISH
 * items, so the queue's own cache traffic stays small next to the
 * allocator's.  A side that finds its ring full (or all its rings empty)
 * spins briefly, then yields, so oversubscription works.
 *
 *   free slots = RING_SIZE - (tail - head), counting as the producer sees it
 */
#ifndef HK_BENCH_RING_H
#define HK_BENCH_RING_H

#include <sched.h>

#include "bench_util.h"

#define RING_SIZE 1024          /* power of two */
#define SPINS 200
#define PUBLISH 32              /* items between index updates */

struct ring {
    _Alignas(64) atomic_ulong tail;   /* written by the producer */
    _Alignas(64) atomic_ulong head;   /* written by the consumer */
    atomic_int done;                  /* producer has pushed its last item */
    _Alignas(64) struct item slot[RING_SIZE];
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The producer's side of a ring: its own tail and the head it last read. */
struct ring_writer {
    struct ring *ring;
    unsigned long tail, head;
};

static inline void ring_push(struct ring_writer *w, const struct item *it)
{
    struct ring *r = w->ring;
    for (int spin = 0; w->tail - w->head == RING_SIZE; spin++) {
        w->head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (spin >= SPINS)
            sched_yield();
        else
            cpu_relax();
    }
    r->slot[w->tail++ % RING_SIZE] = *it;
    /* publish in batches: the queue is not what is being measured */
    if (w->tail % PUBLISH == 0)
        atomic_store_explicit(&r->tail, w->tail, memory_order_release);
}

/* After the last push: publishes the tail, then done. */
static inline void ring_close(struct ring_writer *w)
{
    atomic_store_explicit(&w->ring->tail, w->tail, memory_order_release);
    atomic_store_explicit(&w->ring->done, 1, memory_order_release);
}

/* What a consumer does with each item it takes (frees it, or keeps it). */
typedef void ring_take_fn(void *ctx, struct item *it);

/* Takes everything currently in the ring; returns how many. */
static inline long ring_take(struct ring *r, ring_take_fn *take, void *ctx)
{
    unsigned long head = atomic_load_explicit(&r->head, memory_order_relaxed);
    unsigned long tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    long n = 0;
    for (; head != tail; head++, n++) {
        take(ctx, &r->slot[head % RING_SIZE]);
        if ((n % PUBLISH) == PUBLISH - 1)
            atomic_store_explicit(&r->head, head + 1, memory_order_release);
    }
    atomic_store_explicit(&r->head, head, memory_order_release);
    return n;
}

/* Serves the rings until every producer is done and every ring drained;
 * returns how many items were taken. */
static inline long ring_serve(struct ring **rings, int nrings, ring_take_fn *take, void *ctx)
{
    int live = nrings, idle = 0;
    long total = 0;
    while (live > 0) {
        long got = 0;
        live = 0;
        for (int i = 0; i < nrings; i++) {
            struct ring *r = rings[i];
            /* read done before draining: whatever was pushed before done
             * is seen by this drain */
            int done = atomic_load_explicit(&r->done, memory_order_acquire);
            got += ring_take(r, take, ctx);
            if (!done)
                live++;
        }
        total += got;
        if (got == 0 && ++idle >= SPINS) {
            sched_yield();
            idle = 0;
        } else if (got == 0)
            cpu_relax();
    }
    return total;
}

/* n empty rings, each 64-byte aligned; exits when out of memory. */
static inline struct ring **rings_new(int n)
{
    struct ring **rings = xmalloc(sizeof *rings * (size_t)n);
    for (int i = 0; i < n; i++) {
        if (posix_memalign((void **)&rings[i], 64, sizeof(struct ring)) != 0) {
            fputs("out of memory for the rings\n", stderr);
            exit(1);
        }
        memset(rings[i], 0, sizeof(struct ring));
    }
    return rings;
}

/* The rings consumer c of nc serves: c, c + nc, c + 2 nc, ... of the n;
 * their number in *count. */
static inline struct ring **rings_served_by(struct ring **rings, int n, int c, int nc, int *count)
{
    struct ring **mine = xmalloc(sizeof *mine * (size_t)n);
    *count = 0;
    for (int i = c; i < n; i += nc)
        mine[(*count)++] = rings[i];
    return mine;
}

/* A producer: nitems items of min..max bytes pushed on its ring, which is
 * then closed (a thread of bench_run_groups). */
struct ring_producer {
    struct ring *ring;
    long nitems;
    uint64_t seed;
    size_t min, max;
};

static void *ring_producer_run(void *arg)
{
    struct ring_producer *pr = arg;
    struct ring_writer w = { pr->ring, 0, 0 };
    uint64_t rng = pr->seed;

    bench_start();
    for (long i = 0; i < pr->nitems; i++) {
        struct item it;
        item_alloc(&it, rng_range(&rng, pr->min, pr->max), &rng);
        ring_push(&w, &it);
    }
    ring_close(&w);
    bench_stop();
    return NULL;
}

/* One producer a ring, total items split among the np of them. */
static inline struct ring_producer *ring_producers_new(struct ring **rings, int np, long total,
                                                       size_t min, size_t max)
{
    struct ring_producer *prods = xmalloc(sizeof *prods * (size_t)np);
    for (int i = 0; i < np; i++)
        prods[i] = (struct ring_producer){ rings[i], total / np, 0xabcdefull * (uint64_t)(i + 1),
                                           min, max };
    return prods;
}

static inline long ring_produced(const struct ring_producer *prods, int np)
{
    long n = 0;
    for (int i = 0; i < np; i++)
        n += prods[i].nitems;
    return n;
}

static inline void rings_free(struct ring **rings, int n)
{
    for (int i = 0; i < n; i++)
        free(rings[i]);
    free(rings);
}

#endif
