/* falseshare: cache-scratch shape (active and passive false sharing).
 *
 * The main thread allocates one small object per thread, back to back, and
 * hands object i to thread i, which frees it (passive false sharing: an
 * allocator that reuses that memory for the thread places its objects on a
 * cache line another thread is writing).  Then every thread repeatedly
 * allocates a small object, increments each of its bytes WRITES times, checks
 * it and frees it; one object in 16 goes to the next thread's inbox instead,
 * to be checked and freed there.  An allocator that puts two threads' objects
 * on one cache line turns the write loop into cache-line ping-pong.
 *
 * Total iterations are fixed and split among the threads.
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
    "usage: falseshare [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  1M allocate-write-free iterations at scale 1, split among the threads;\n"
    "  8-byte objects, every byte incremented 64 times per iteration\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define OBJ_SIZE 8
#define WRITES 64
#define HAND_EVERY 16

struct thread {
    _Alignas(64) int id;
    long iters;
    unsigned char *given;                 /* from main: free it first */
    _Atomic(unsigned char *) inbox;       /* one object from the neighbour */
    long nreceived;
};

static struct thread *threads;
static int nthreads;
static atomic_int nfinished;

static void check_obj(unsigned char *p)
{
    for (int b = 0; b < OBJ_SIZE; b++)
        if (p[b] != (unsigned char)WRITES) {
            if (atomic_fetch_add(&bench_errors, 1) == 0)
                fprintf(stderr, "falseshare: object %p byte %d is %u, want %u\n",
                        (void *)p, b, p[b], (unsigned)WRITES);
            return;
        }
}

static long take_inbox(struct thread *t)
{
    unsigned char *p = atomic_exchange_explicit(&t->inbox, NULL, memory_order_acquire);
    if (p == NULL)
        return 0;
    check_obj(p);
    free(p);
    return 1;
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    struct thread *next = &threads[(t->id + 1) % nthreads];

    bench_start();
    free(t->given);
    for (long it = 0; it < t->iters; it++) {
        volatile unsigned char *p = xmalloc(OBJ_SIZE);
        for (int b = 0; b < OBJ_SIZE; b++)
            p[b] = 0;
        for (int w = 0; w < WRITES; w++)
            for (int b = 0; b < OBJ_SIZE; b++)
                p[b]++;
        check_obj((unsigned char *)p);
        if (it % HAND_EVERY == HAND_EVERY - 1) {
            unsigned char *old = atomic_exchange_explicit(&next->inbox, (unsigned char *)p,
                                                          memory_order_acq_rel);
            if (old != NULL) {          /* the neighbour has not taken it yet */
                check_obj(old);
                free(old);
            }
        } else
            free((void *)p);
        t->nreceived += take_inbox(t);
    }
    atomic_fetch_add(&nfinished, 1);
    while (atomic_load(&nfinished) < nthreads)
        sched_yield();
    t->nreceived += take_inbox(t);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 2;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(1e6 * scale);

    threads = aligned_alloc(64, sizeof(struct thread) * (size_t)nthreads);
    if (threads == NULL)
        return 1;
    memset(threads, 0, sizeof(struct thread) * (size_t)nthreads);
    for (int i = 0; i < nthreads; i++) {
        threads[i].id = i;
        threads[i].iters = total / nthreads;
        threads[i].given = xmalloc(OBJ_SIZE);   /* back to back, on purpose */
        atomic_init(&threads[i].inbox, NULL);
    }
    double secs = bench_run_threads(nthreads, worker, threads, sizeof *threads);
    long iters = 0, received = 0;
    for (int i = 0; i < nthreads; i++) {
        iters += threads[i].iters;
        received += threads[i].nreceived;
    }
    printf("falseshare threads=%d ops=%ld secs=%.4f mops_per_s=%.3f handed_over=%ld",
           nthreads, iters, secs, (double)iters / secs / 1e6, received);
    free(threads);
    return bench_report();
}
