/* huge: repeated 2 MiB and 8 MiB allocate / touch every 4 KiB page / free.
 *
 * Each thread runs the 2 MiB loop, then (after a barrier) the 8 MiB loop.
 * An allocator that caches huge blocks (or keeps them in its heap) pays only
 * the page writes; one that maps and unmaps each time pays a fault per page.
 * The page bytes are checked before each free.  Reports microseconds per
 * iteration for each size (the whole process's iterations over wall time).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: huge [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1: 16000 x 2 MiB and 1000 x 8 MiB iterations, split among the threads\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define PAGE 4096
#define NSIZES 2
static const size_t sizes[NSIZES] = { 2u << 20, 8u << 20 };

struct thread {
    pthread_t tid;
    int id;
    long iters[NSIZES];
    char pad[64];
};

static pthread_barrier_t bar;
static struct span spans[NSIZES] = { SPAN_INIT, SPAN_INIT };

static void one_iteration(size_t n, uint64_t tag)
{
    unsigned char *p = xmalloc(n);
    unsigned char v = (unsigned char)tag;
    if (((uintptr_t)p & 15) != 0 && atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "huge: misaligned block %p\n", (void *)p);
    for (size_t off = 0; off < n; off += PAGE)
        p[off] = v++;
    memcpy(p + n - 8, &tag, 8);
    v = (unsigned char)tag;
    for (size_t off = 0; off < n; off += PAGE, v++)
        if (p[off] != v) {
            if (atomic_fetch_add(&bench_errors, 1) == 0)
                fprintf(stderr, "huge: page at %p+%zu lost its byte\n", (void *)p, off);
            break;
        }
    uint64_t w;
    memcpy(&w, p + n - 8, 8);
    if (w != tag && atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "huge: last word of %p lost\n", (void *)p);
    free(p);
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x77ull * (uint64_t)(t->id + 1);
    for (int s = 0; s < NSIZES; s++) {
        pthread_barrier_wait(&bar);
        span_begin(&spans[s]);
        for (long i = 0; i < t->iters[s]; i++)
            one_iteration(sizes[s], rng_next(&rng));
        span_end(&spans[s]);
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long total[NSIZES] = { (long)(16000 * scale), (long)(1000 * scale) };

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        for (int s = 0; s < NSIZES; s++)
            th[i].iters[s] = total[s] / nthreads > 0 ? total[s] / nthreads : 1;
    }
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "huge: pthread_create failed\n");
            return 1;
        }
    worker(&th[0]);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i].tid, NULL);

    long ops = 0, n[NSIZES] = { 0, 0 };
    for (int i = 0; i < nthreads; i++)
        for (int s = 0; s < NSIZES; s++)
            n[s] += th[i].iters[s];
    ops = n[0] + n[1];
    double phase_secs[NSIZES] = { span_secs(&spans[0]), span_secs(&spans[1]) };
    double secs = phase_secs[0] + phase_secs[1];
    unsigned long errs = atomic_load(&bench_errors);
    printf("huge threads=%d ops=%ld secs=%.4f us_per_iter_2m=%.2f us_per_iter_8m=%.2f "
           "peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, secs, phase_secs[0] * 1e6 / (double)n[0],
           phase_secs[1] * 1e6 / (double)n[1], peak_rss_kib(), errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
