/* bigheap: a heap grown in steps, to show what a bigger heap costs.
 *
 * The live set of small objects (16-512 B) grows in steps of x4, from
 * 1 MiB to MAX_MIB (default 1024; -m 8192 for 8 GiB where the machine has
 * the memory).  At each step the threads allocate (and stamp) objects until
 * the live bytes reach the step, then churn: free a random live object and
 * allocate one of a new random size in its place, 250k times at scale 1.
 * After each step VmRSS is read: the figures are the time per churn
 * operation and per growing allocation, and RSS over live bytes
 * (the benchmark's own bookkeeping, 16 B an object in a separate mapping,
 * and the process's RSS before the first step are subtracted).  With a
 * well-scaling allocator both stay flat from 1 MiB to the largest heap:
 * no metadata that grows faster than the heap, no search that grows with
 * it.  The caches do not stay flat (a 1 GiB heap is all misses), so
 * compare allocators at the same step, not one step to the next.
 *
 * A line per step on stdout ("  step ..."), then the result line with
 * ns_op_<N>m, ns_alloc_<N>m and rss_live_<N>m for each step of N MiB.
 * Every object is tagged at both ends (1 in 16 entirely) and checked
 * before it is freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static const char usage[] =
    "usage: bigheap [-t THREADS] [-s SCALE] [-m MAX_MIB] [THREADS [SCALE]]\n"
    "  live small objects (16-512 B) grown x4 a step from 1 MiB to MAX_MIB\n"
    "  (default 1024); 250k churn operations a step at scale 1, split among\n"
    "  the threads; time per operation and RSS / live bytes at each step\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define MIN_SIZE 16
#define MAX_SIZE 512
#define MAX_STEPS 16

struct entry {                  /* 16 B of bookkeeping an object */
    void *p;
    uint32_t size;
    uint32_t seed;
};

struct thread {
    pthread_t tid;
    int id;
    struct entry *tab;          /* capacity: cap entries */
    size_t cap, n;
    size_t live;                /* bytes */
    double grow_secs, churn_secs;
    long grown;
    uint64_t rng;
    char pad[64];
};

static struct thread *threads;
static int nthreads;
static size_t step_bytes[MAX_STEPS];
static int nsteps;
static long churn_ops;
static pthread_barrier_t bar;

static uint64_t tag_of(const struct entry *e)
{
    uint64_t s = e->seed;
    return rng_next(&s);
}

static void fill(struct thread *t, struct entry *e)
{
    e->size = (uint32_t)rng_range(&t->rng, MIN_SIZE, MAX_SIZE);
    e->seed = (uint32_t)rng_next(&t->rng);
    e->p = xmalloc(e->size);
    stamp(e->p, e->size, tag_of(e));
    t->live += e->size;
}

static void drop(struct thread *t, struct entry *e)
{
    check(e->p, e->size, tag_of(e));
    free(e->p);
    t->live -= e->size;
}

static void *worker(void *arg)
{
    struct thread *t = arg;

    for (int s = 0; s < nsteps; s++) {
        size_t target = step_bytes[s] / (size_t)nthreads;
        pthread_barrier_wait(&bar);
        double t0 = now_sec();
        long grown = 0;
        while (t->live < target && t->n < t->cap) {
            fill(t, &t->tab[t->n++]);
            grown++;
        }
        double t1 = now_sec();
        for (long i = 0; i < churn_ops / nthreads; i++) {
            struct entry *e = &t->tab[rng_next(&t->rng) % t->n];
            drop(t, e);
            fill(t, e);
        }
        t->grow_secs = t1 - t0;
        t->churn_secs = now_sec() - t1;
        t->grown = grown;
        pthread_barrier_wait(&bar);     /* main reads RSS */
    }
    pthread_barrier_wait(&bar);
    for (size_t i = 0; i < t->n; i++)
        drop(t, &t->tab[i]);
    return NULL;
}

/* Strips -m/--max-mib from argv (parse_args knows only -t and -s). */
static long take_max_mib(int *argc, char **argv)
{
    long mib = 1024;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--max-mib")) && i + 1 < *argc)
            mib = atol(argv[++i]);
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    if (mib < 1) {
        fputs(usage, stderr);
        exit(2);
    }
    return mib;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 1;
    long max_mib = take_max_mib(&argc, argv);
    parse_args(argc, argv, &nthreads, &scale);
    churn_ops = (long)(250e3 * scale);
    if (churn_ops < nthreads)
        churn_ops = nthreads;
    for (long m = 1; nsteps < MAX_STEPS; m *= 4) {
        step_bytes[nsteps++] = (size_t)(m < max_mib ? m : max_mib) << 20;
        if (m >= max_mib)
            break;
    }

    threads = calloc((size_t)nthreads, sizeof *threads);
    if (threads == NULL)
        return 1;
    size_t max_bytes = (size_t)max_mib << 20;
    for (int i = 0; i < nthreads; i++) {
        struct thread *t = &threads[i];
        t->id = i;
        t->rng = 0xb16ull * (uint64_t)(i + 1);
        /* at least 16 B an object: never more than this many */
        t->cap = max_bytes / (size_t)nthreads / MIN_SIZE + 1;
        t->tab = mmap(NULL, t->cap * sizeof(struct entry), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (t->tab == MAP_FAILED) {
            fprintf(stderr, "bigheap: cannot map the bookkeeping for %ld MiB\n", max_mib);
            return 1;
        }
    }
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
    long base_kib = proc_status_kib("VmRSS:");
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&threads[i].tid, NULL, worker, &threads[i]) != 0) {
            fprintf(stderr, "bigheap: pthread_create failed\n");
            return 1;
        }

    char figures[MAX_STEPS * 96] = "";
    size_t flen = 0;
    double secs = 0;
    long ops = 0;
    for (int s = 0; s < nsteps; s++) {
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        double grow = 0, churn = 0;
        size_t live = 0, nobj = 0, book = 0;
        long grown = 0;
        for (int i = 0; i < nthreads; i++) {
            struct thread *t = &threads[i];
            grow = t->grow_secs > grow ? t->grow_secs : grow;
            churn = t->churn_secs > churn ? t->churn_secs : churn;
            live += t->live;
            nobj += t->n;
            grown += t->grown;
            book += (t->n * sizeof(struct entry) + 4095) & ~(size_t)4095;
        }
        long rss_kib = proc_status_kib("VmRSS:");
        double heap = (double)rss_kib * 1024 - (double)base_kib * 1024 - (double)book;
        double ratio = heap / (double)live;
        double ns_op = churn * 1e9 / (double)(churn_ops / nthreads * nthreads);
        double ns_alloc = grown ? grow * 1e9 / (double)grown : 0;
        long mib = (long)(step_bytes[s] >> 20);
        secs += grow + churn;
        ops += grown + churn_ops / nthreads * nthreads;
        printf("  step live_mib=%ld objects=%zu ns_alloc=%.1f ns_op=%.1f rss_mib=%.1f "
               "rss_per_live=%.3f\n", mib, nobj, ns_alloc, ns_op, rss_kib / 1024.0, ratio);
        fflush(stdout);
        flen += (size_t)snprintf(figures + flen, sizeof figures - flen,
                                 " ns_op_%ldm=%.1f ns_alloc_%ldm=%.1f rss_live_%ldm=%.3f",
                                 mib, ns_op, mib, ns_alloc, mib, ratio);
    }
    pthread_barrier_wait(&bar);
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i].tid, NULL);
    printf("bigheap threads=%d max_mib=%ld ops=%ld secs=%.4f%s",
           nthreads, max_mib, ops, secs, figures);
    for (int i = 0; i < nthreads; i++)
        munmap(threads[i].tab, threads[i].cap * sizeof(struct entry));
    free(threads);
    return bench_report();
}
