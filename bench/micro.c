/* micro: single-thread malloc/free microbenchmark.
 *
 * For each size (16, 64, 512, 4096, 65536) it times
 *   pair:  a tight loop of p = malloc(n); touch; free(p)
 *   batch: allocate 1000 blocks, then free them in allocation order
 * and prints nanoseconds per malloc+free pair for each.  With several threads
 * every thread runs the same loops at once (each phase starts on a barrier;
 * the figure is the slowest thread's).
 *
 * For callgrind (bench/callgrind.sh): `micro --size 64 --pairs 1000000` runs
 * only the pair loop of one size; `--batch` runs the batch loop instead and
 * `--baseline` runs the same loop over a static buffer without calling the
 * allocator, so the loop's own cost can be subtracted.
 *
 * Links nothing of hakmem: run it under LD_PRELOAD to test an allocator.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: micro [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "       micro --size N [--pairs P] [--batch | --baseline]\n"
    "  default: all sizes (16 64 512 4096 65536), pair and batch loops;\n"
    "  pairs per size and loop at scale 1: 2M up to 512 B, 400k at 4096,\n"
    "  100k at 65536 (large batches are page-fault bound in some allocators)\n";

#include "bench_util.h" /* after usage: its parse_args prints it */

static void die_usage(void)
{
    fputs(usage, stderr);
    exit(2);
}

/* Keeps the compiler from eliding a malloc/free pair. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

/* ---- the benchmark ---- */

#define BATCH 1000
#define NSIZES 5
static const size_t sizes[NSIZES] = { 16, 64, 512, 4096, 65536 };

enum loop_kind { LOOP_PAIR, LOOP_BATCH, LOOP_BASELINE };

static unsigned long errors;           /* written only under err_lock */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static void report_bad(void *p, size_t n)
{
    pthread_mutex_lock(&err_lock);
    if (errors++ == 0)
        fprintf(stderr, "micro: bad block %p (size %zu): content or alignment\n", p, n);
    pthread_mutex_unlock(&err_lock);
}

/* One word at each end: cheap enough not to drown the allocator's cost. */
static inline void pair_stamp(char *p, size_t n, uint64_t v)
{
    memcpy(p, &v, 8);
    memcpy(p + n - 8, &v, 8);
}

static inline int pair_stamp_ok(const char *p, size_t n, uint64_t v)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + n - 8, 8);
    return a == v && b == v && ((uintptr_t)p & 15) == 0;
}

static void run_pairs(size_t n, long pairs)
{
    for (long i = 0; i < pairs; i++) {
        char *p = xmalloc(n);
        pair_stamp(p, n, (uint64_t)i);
        ESCAPE(p);
        if (!pair_stamp_ok(p, n, (uint64_t)i))
            report_bad(p, n);
        free(p);
    }
}

static void run_baseline(size_t n, long pairs)
{
    static _Thread_local _Alignas(16) char buf[65536];
    if (n > sizeof buf)
        n = sizeof buf;
    for (long i = 0; i < pairs; i++) {
        char *p = buf;
        ESCAPE(p);
        pair_stamp(p, n, (uint64_t)i);
        ESCAPE(p);
        if (!pair_stamp_ok(p, n, (uint64_t)i))
            report_bad(p, n);
    }
}

static void run_batches(size_t n, long pairs)
{
    char *blk[BATCH];
    for (long done = 0; done < pairs; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            blk[i] = xmalloc(n);
            pair_stamp(blk[i], n, (uint64_t)(done + i));
        }
        for (int i = 0; i < BATCH; i++) {
            if (!pair_stamp_ok(blk[i], n, (uint64_t)(done + i)))
                report_bad(blk[i], n);
            free(blk[i]);
        }
    }
}

static long default_pairs(size_t n, double scale)
{
    double base = n <= 512 ? 2e6 : n <= 4096 ? 4e5 : 1e5;
    return (long)(base * scale);
}

static void run_loop(enum loop_kind k, size_t n, long pairs)
{
    if (k == LOOP_PAIR)
        run_pairs(n, pairs);
    else if (k == LOOP_BATCH)
        run_batches(n, pairs);
    else
        run_baseline(n, pairs);
}

/* Multi-thread driver: every phase (size x loop) starts on a barrier and
 * its time is taken by thread 0 after a closing barrier. */
struct plan {
    int nthreads;
    int nphases;
    long phase_pairs[2 * NSIZES];
    size_t phase_size[2 * NSIZES];
    enum loop_kind phase_kind[2 * NSIZES];
    double phase_secs[2 * NSIZES];
    pthread_barrier_t bar;
};

static void *worker(void *arg)
{
    struct plan *pl = arg;
    for (int ph = 0; ph < pl->nphases; ph++) {
        pthread_barrier_wait(&pl->bar);
        double t0 = now_sec();
        run_loop(pl->phase_kind[ph], pl->phase_size[ph], pl->phase_pairs[ph]);
        pthread_barrier_wait(&pl->bar);
        /* every thread saw the same barrier; any one can time the phase
         * from its own start, the slowest start is within microseconds */
        double dt = now_sec() - t0;
        pthread_mutex_lock(&err_lock);
        if (dt > pl->phase_secs[ph])
            pl->phase_secs[ph] = dt;
        pthread_mutex_unlock(&err_lock);
    }
    return NULL;
}

static void run_plan(struct plan *pl)
{
    pthread_t tid[pl->nthreads];
    pthread_barrier_init(&pl->bar, NULL, (unsigned)pl->nthreads);
    for (int i = 1; i < pl->nthreads; i++)
        if (pthread_create(&tid[i], NULL, worker, pl) != 0) {
            fprintf(stderr, "micro: pthread_create failed\n");
            exit(1);
        }
    worker(pl);
    for (int i = 1; i < pl->nthreads; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&pl->bar);
}

int main(int argc, char **argv)
{
    int nthreads = 1, npos = 0;
    double scale = 1.0;
    long one_size = -1, pairs = -1;
    enum loop_kind one_kind = LOOP_PAIR;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if ((!strcmp(a, "-s") || !strcmp(a, "--scale")) && i + 1 < argc)
            scale = atof(argv[++i]);
        else if (!strcmp(a, "--size") && i + 1 < argc)
            one_size = atol(argv[++i]);
        else if (!strcmp(a, "--pairs") && i + 1 < argc)
            pairs = atol(argv[++i]);
        else if (!strcmp(a, "--batch"))
            one_kind = LOOP_BATCH;
        else if (!strcmp(a, "--baseline"))
            one_kind = LOOP_BASELINE;
        else if (a[0] != '-' && npos == 0) {
            nthreads = atoi(a);
            npos++;
        } else if (a[0] != '-' && npos == 1) {
            scale = atof(a);
            npos++;
        } else
            die_usage();
    }
    if (nthreads < 1 || scale <= 0 || (one_size != -1 && one_size < 16))
        die_usage();

    struct plan pl = { .nthreads = nthreads };
    if (one_size > 0) {
        pl.phase_size[0] = (size_t)one_size;
        pl.phase_kind[0] = one_kind;
        pl.phase_pairs[0] = pairs > 0 ? pairs : default_pairs((size_t)one_size, scale);
        pl.nphases = 1;
    } else {
        for (int s = 0; s < NSIZES; s++) {
            for (int k = LOOP_PAIR; k <= LOOP_BATCH; k++) {
                pl.phase_size[pl.nphases] = sizes[s];
                pl.phase_kind[pl.nphases] = (enum loop_kind)k;
                pl.phase_pairs[pl.nphases++] =
                    pairs > 0 ? pairs : default_pairs(sizes[s], scale);
            }
        }
    }
    for (int ph = 0; ph < pl.nphases; ph++)   /* whole batches */
        pl.phase_pairs[ph] = (pl.phase_pairs[ph] + BATCH - 1) / BATCH * BATCH;
    run_plan(&pl);

    static const char *kind_name[] = { "pair", "batch", "baseline" };
    double total = 0, ops = 0;
    char detail[1024] = "";
    size_t len = 0;
    for (int ph = 0; ph < pl.nphases; ph++) {
        total += pl.phase_secs[ph];
        ops += (double)pl.phase_pairs[ph] * nthreads;
        len += (size_t)snprintf(detail + len, sizeof detail - len, " ns_%s_%zu=%.2f",
                                kind_name[pl.phase_kind[ph]], pl.phase_size[ph],
                                pl.phase_secs[ph] * 1e9 / (double)pl.phase_pairs[ph]);
    }
    printf("micro threads=%d ops=%.0f secs=%.4f mops_per_s=%.2f%s peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, total, ops / total / 1e6, detail, peak_rss_kib(),
           errors ? "FAIL" : "ok");
    return errors ? 1 : 0;
}
