/* larson: server-style churn (after the shape of Larson & Krishnan's test).
 *
 * Every thread keeps a window of live objects (8-1000 B) and replaces random
 * slots: free the old object, allocate one of a new random size.  Every 64
 * replacements it also parcels 16 of its live objects off to another thread's
 * mailbox (a lock-free stack); the receiver frees them, so a steady share of
 * frees is remote.  The parcels themselves are malloc'd and freed remotely.
 *
 * Total work is fixed and split among the threads, so with more threads than
 * cores the time shows the cost of oversubscription, not of more work.
 * Every object carries a tag at both ends (1 in 16 is filled entirely) and is
 * checked before it is freed; any mismatch prints verified=FAIL, exit 1.
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
    "usage: larson [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  8M object replacements at scale 1, split among the threads;\n"
    "  window of 1000 live objects per thread, sizes 8-1000 B\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define WINDOW 1000
#define MIN_SIZE 8
#define MAX_SIZE 1000
#define PARCEL_EVERY 64      /* replacements between parcels */
#define PARCEL_ITEMS 16

struct parcel {
    struct parcel *next;
    int n;
    struct item items[PARCEL_ITEMS];
};

struct thread {
    int id;
    long ops;                       /* replacements to do */
    long nmalloc, nremote;          /* done: allocations, remote frees */
    _Atomic(struct parcel *) mailbox;
    char pad[64];
};

static struct thread *threads;
static int nthreads;
static atomic_int nfinished;

static void new_item(struct item *it, uint64_t *rng)
{
    item_alloc(it, rng_range(rng, MIN_SIZE, MAX_SIZE), rng);
}

/* Takes the whole mailbox at once (no ABA: nobody pops single nodes). */
static long drain_mailbox(struct thread *t)
{
    struct parcel *pc = atomic_exchange_explicit(&t->mailbox, NULL, memory_order_acquire);
    long n = 0;
    while (pc != NULL) {
        struct parcel *next = pc->next;
        for (int i = 0; i < pc->n; i++)
            item_free(&pc->items[i]);
        n += pc->n;
        free(pc);
        pc = next;
    }
    return n;
}

static void post(struct thread *to, struct parcel *pc)
{
    struct parcel *head = atomic_load_explicit(&to->mailbox, memory_order_relaxed);
    do
        pc->next = head;
    while (!atomic_compare_exchange_weak_explicit(&to->mailbox, &head, pc,
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x1234567ull * (uint64_t)(t->id + 1);
    struct item *win = xmalloc(sizeof(struct item) * WINDOW);

    for (int i = 0; i < WINDOW; i++)
        new_item(&win[i], &rng);
    bench_start();                      /* the window fill is not timed */

    for (long op = 1; op <= t->ops; op++) {
        struct item *it = &win[rng_next(&rng) % WINDOW];
        item_free(it);
        new_item(it, &rng);
        t->nmalloc++;
        if (op % PARCEL_EVERY == 0) {
            struct parcel *pc = xmalloc(sizeof *pc);
            pc->n = PARCEL_ITEMS;
            for (int i = 0; i < PARCEL_ITEMS; i++) {
                struct item *give = &win[rng_next(&rng) % WINDOW];
                pc->items[i] = *give;
                new_item(give, &rng);
            }
            t->nmalloc += PARCEL_ITEMS;
            int to = nthreads == 1 ? 0
                     : (t->id + 1 + (int)(rng_next(&rng) % (uint64_t)(nthreads - 1))) % nthreads;
            post(&threads[to], pc);
            t->nremote += drain_mailbox(t);
        }
    }

    /* Keep serving the mailbox until every thread is done posting, so a
     * thread that finishes early does not let parcels pile up. */
    atomic_fetch_add(&nfinished, 1);
    while (atomic_load(&nfinished) < nthreads) {
        long n = drain_mailbox(t);
        t->nremote += n;
        if (n == 0)
            sched_yield();
    }
    t->nremote += drain_mailbox(t);
    for (int i = 0; i < WINDOW; i++)
        item_free(&win[i]);
    free(win);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 2;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(8e6 * scale);

    threads = calloc((size_t)nthreads, sizeof *threads);
    if (threads == NULL)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        threads[i].id = i;
        threads[i].ops = total / nthreads;
        atomic_init(&threads[i].mailbox, NULL);
    }
    double secs = bench_run_threads(nthreads, worker, threads, sizeof *threads);
    long nmalloc = 0, nremote = 0;
    for (int i = 0; i < nthreads; i++) {
        nmalloc += threads[i].nmalloc;
        nremote += threads[i].nremote;
    }
    printf("larson threads=%d ops=%ld secs=%.4f mops_per_s=%.2f remote_frees=%ld",
           nthreads, nmalloc, secs, (double)nmalloc / secs / 1e6, nremote);
    free(threads);
    return bench_report();
}
