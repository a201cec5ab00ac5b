/* xthread32: cross-thread frees among many more threads than cores.
 *
 * 32 threads by default (on 2 cores, 16 to a core) each allocate objects of
 * 32-256 B and send every one to a random other thread's queue (a lock-free
 * multi-producer stack, the object itself its node); every 16 sends a
 * thread takes its whole queue at once and frees what others sent it.  All
 * frees are remote, and the owners are mostly descheduled when their
 * memory comes back: what a free into another thread's heap costs when
 * that thread is not running, and whether memory piles up meanwhile.
 *
 * Total objects are fixed and split among the threads.  Every object
 * carries its size, a tag derived from its address and the tag's complement
 * at its end, checked by the thread that frees it.
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
    "usage: xthread32 [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  THREADS default 32; 3M objects of 32-256 B at scale 1, split among\n"
    "  the threads, each freed by a random other thread\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define MIN_SIZE 32
#define MAX_SIZE 256
#define DRAIN_EVERY 16

/* The object's first bytes: the queue link, then what checks it. */
struct obj {
    struct obj *next;
    uint32_t size;
    uint32_t pad;
    uint64_t tag;
};

struct thread {
    int id;
    long nitems;
    long nfreed;
    _Alignas(64) _Atomic(struct obj *) queue;
    char pad[64];
};

static struct thread *threads;
static int nthreads;
static atomic_int nfinished;

static uint64_t addr_tag(const void *p)
{
    uint64_t s = (uint64_t)(uintptr_t)p;
    return rng_next(&s);
}

static struct obj *new_obj(uint64_t *rng)
{
    uint32_t size = (uint32_t)rng_range(rng, MIN_SIZE, MAX_SIZE);
    struct obj *o = xmalloc(size);
    o->size = size;
    o->tag = addr_tag(o);
    uint64_t inv = ~o->tag;
    memcpy((char *)o + size - 8, &inv, 8);
    return o;
}

static void free_obj(struct obj *o)
{
    uint64_t inv;
    memcpy(&inv, (char *)o + o->size - 8, 8);
    if ((((uintptr_t)o & 15) != 0 || o->size < MIN_SIZE || o->size > MAX_SIZE
         || o->tag != addr_tag(o) || inv != ~o->tag)
        && atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "corrupt or misaligned object %p\n", (void *)o);
    free(o);
}

static void send(struct thread *to, struct obj *o)
{
    struct obj *head = atomic_load_explicit(&to->queue, memory_order_relaxed);
    do
        o->next = head;
    while (!atomic_compare_exchange_weak_explicit(&to->queue, &head, o,
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

/* Takes the whole queue at once (no ABA: nobody pops single nodes). */
static long drain(struct thread *t)
{
    struct obj *o = atomic_exchange_explicit(&t->queue, NULL, memory_order_acquire);
    long n = 0;
    while (o != NULL) {
        struct obj *next = o->next;
        free_obj(o);
        o = next;
        n++;
    }
    t->nfreed += n;
    return n;
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x32323ull * (uint64_t)(t->id + 1);

    bench_start();
    for (long i = 1; i <= t->nitems; i++) {
        int to = nthreads == 1 ? 0
                 : (t->id + 1 + (int)(rng_next(&rng) % (uint64_t)(nthreads - 1))) % nthreads;
        send(&threads[to], new_obj(&rng));
        if (i % DRAIN_EVERY == 0)
            drain(t);
    }
    /* keep freeing until every thread is done sending */
    atomic_fetch_add(&nfinished, 1);
    while (atomic_load(&nfinished) < nthreads)
        if (drain(t) == 0)
            sched_yield();
    drain(t);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 32;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(3e6 * scale);

    threads = calloc((size_t)nthreads, sizeof *threads);
    if (threads == NULL)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        threads[i].id = i;
        threads[i].nitems = total / nthreads;
        atomic_init(&threads[i].queue, NULL);
    }
    double secs = bench_run_threads(nthreads, worker, threads, sizeof *threads);
    long sent = 0, freed = 0;
    for (int i = 0; i < nthreads; i++) {
        sent += threads[i].nitems;
        freed += threads[i].nfreed;
    }
    bench_check_freed("sent", sent, freed);
    printf("xthread32 threads=%d ops=%ld secs=%.4f mops_per_s=%.2f",
           nthreads, sent, secs, (double)sent / secs / 1e6);
    free(threads);
    return bench_report();
}
