/* frag: fragmentation and memory given back.
 *
 *   fill   the threads allocate about 200 MiB (scale 1) of mixed sizes, by
 *          count 70% 16-256 B, 25% 256 B-4 KiB, 4.5% 4-64 KiB, 0.5% 64 KiB-1 MiB,
 *          touching every page;
 *   free   they free 90% of it in a random pattern, keeping 10%;
 *   churn  they replace random slots of a second set (10% as many slots)
 *          with objects of 1.5x the sizes, so freed holes do not fit exactly;
 *   idle   the threads stay alive but idle while the main thread sleeps 1.5 s,
 *          giving time-based purging a chance, then VmRSS is read.
 *
 * Reports peak RSS (VmHWM), RSS after the free phase and after the idle
 * phase, in KiB, and the live bytes at each point.  secs covers fill, free
 * and churn (not the sleep).  Every object is checked when freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: frag [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  scale 1: 200 MiB filled, 10% kept, 300k churn replacements, 1.5 s idle\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define PAGE 4096

struct thread {
    pthread_t tid;
    int id;
    size_t fill_bytes;            /* target of the fill phase */
    long churn_ops;
    size_t live;                  /* bytes live now */
    size_t nobj;
    char pad[64];
};

static pthread_barrier_t bar;
static struct span fill_span = SPAN_INIT, churn_span = SPAN_INIT;

static size_t pick_size(uint64_t *rng)
{
    unsigned r = (unsigned)(rng_next(rng) % 1000);
    if (r < 700)
        return rng_range(rng, 16, 256);
    if (r < 950)
        return rng_range(rng, 257, 4096);
    if (r < 995)
        return rng_range(rng, 4097, 64 * 1024);
    return rng_range(rng, 64 * 1024 + 1, 1024 * 1024);
}

static void new_item(struct item *it, size_t size, uint64_t *rng, struct thread *t)
{
    it->size = size;
    it->tag = rng_next(rng);
    it->p = xmalloc(size);
    stamp(it->p, size, it->tag);
    if (!FULL_FILL(size, it->tag))             /* touch every page */
        for (size_t off = PAGE; off + 8 < size; off += PAGE)
            ((unsigned char *)it->p)[off] = (unsigned char)(it->tag >> 16);
    t->live += size;
}

static void free_item(struct item *it, struct thread *t)
{
    check(it->p, it->size, it->tag);
    if (!FULL_FILL(it->size, it->tag))
        for (size_t off = PAGE; off + 8 < it->size; off += PAGE)
            if (((unsigned char *)it->p)[off] != (unsigned char)(it->tag >> 16)) {
                if (atomic_fetch_add(&bench_errors, 1) == 0)
                    fprintf(stderr, "frag: page byte lost in %p\n", it->p);
                break;
            }
    free(it->p);
    t->live -= it->size;
    it->p = NULL;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            v = atol(line + klen + 1);
            break;
        }
    fclose(f);
    return v;
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0xf4a9ull * (uint64_t)(t->id + 1);
    size_t cap = 1024, n = 0;
    struct item *objs = xmalloc(cap * sizeof *objs);

    pthread_barrier_wait(&bar);                         /* fill */
    span_begin(&fill_span);
    while (t->live < t->fill_bytes) {
        if (n == cap) {
            cap *= 2;
            objs = realloc(objs, cap * sizeof *objs);
            if (objs == NULL)
                exit(1);
        }
        new_item(&objs[n++], pick_size(&rng), &rng, t);
    }
    t->nobj = n;
    size_t kept = 0;                                    /* free 90% */
    for (size_t i = 0; i < n; i++) {
        if (rng_next(&rng) % 10 == 0)
            objs[kept++] = objs[i];
        else
            free_item(&objs[i], t);
    }
    span_end(&fill_span);
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);                         /* main reads RSS */
    span_begin(&churn_span);

    size_t nchurn = n / 10 > 0 ? n / 10 : 1;            /* churn */
    struct item *churn = calloc(nchurn, sizeof *churn);
    if (churn == NULL)
        exit(1);
    for (long op = 0; op < t->churn_ops; op++) {
        struct item *it = &churn[rng_next(&rng) % nchurn];
        if (it->p != NULL)
            free_item(it, t);
        new_item(it, pick_size(&rng) * 3 / 2, &rng, t);
    }
    span_end(&churn_span);
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);                         /* main sleeps, reads RSS */

    for (size_t i = 0; i < kept; i++)
        free_item(&objs[i], t);
    for (size_t i = 0; i < nchurn; i++)
        if (churn[i].p != NULL)
            free_item(&churn[i], t);
    free(churn);
    free(objs);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    size_t fill = (size_t)(200.0 * 1048576.0 * scale);
    long churn = (long)(300000 * scale);

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].fill_bytes = fill / (size_t)nthreads;
        th[i].churn_ops = churn / nthreads;
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "frag: pthread_create failed\n");
            return 1;
        }
    }
    long base_kib = status_kib("VmRSS");
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);                         /* filled and freed */
    long after_free_kib = status_kib("VmRSS");
    size_t live_after_free = 0, nobj = 0;
    for (int i = 0; i < nthreads; i++) {
        live_after_free += th[i].live;
        nobj += th[i].nobj;
    }
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);                         /* churned */
    double secs = span_secs(&fill_span) + span_secs(&churn_span);
    size_t live_final = 0;
    for (int i = 0; i < nthreads; i++)
        live_final += th[i].live;
    usleep(1500 * 1000);
    long final_kib = status_kib("VmRSS");
    pthread_barrier_wait(&bar);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i].tid, NULL);

    unsigned long errs = atomic_load(&bench_errors);
    printf("frag threads=%d ops=%ld secs=%.4f objects=%zu after_free_kib=%ld "
           "final_kib=%ld live_after_free_kib=%zu live_final_kib=%zu base_kib=%ld "
           "peak_rss_kib=%ld verified=%s\n",
           nthreads, (long)nobj + churn, secs, nobj, after_free_kib, final_kib,
           live_after_free / 1024, live_final / 1024, base_kib, peak_rss_kib(),
           errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
