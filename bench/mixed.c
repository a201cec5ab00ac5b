/* mixed: random sizes across the tiers, random live set.
 *
 * Every thread owns a share of 4000 slots and replaces random slots with
 * objects of random size, weighted toward small:
 *   85%  tiny   8 B - 1 KiB
 *   14%  mid    1 KiB - 32 KiB
 *    1%  large  32 KiB - 1 MiB
 * (uniform inside a tier), so about 33 MiB stays live in all.  Objects over
 * 4 KiB get one byte written per 4 KiB page, as a program would touch them,
 * so an allocator that returns pages to the OS too eagerly pays the faults.
 * Every object is tagged and checked before it is freed; the page bytes too.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: mixed [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  3M replacements at scale 1 split among the threads; 4000 live slots\n";

#include "bench_util.h"

/* ---- the benchmark ---- */

#define TOTAL_SLOTS 4000
#define PAGE 4096

struct thread {
    int id, nslots;
    long ops;
    uint64_t bytes;            /* allocated in the timed phase */
    long ntier[3];
    char pad[64];
};

static size_t pick_size(uint64_t *rng, long *ntier)
{
    unsigned r = (unsigned)(rng_next(rng) % 100);
    if (r < 85) {
        ntier[0]++;
        return rng_range(rng, 8, 1024);
    }
    if (r < 99) {
        ntier[1]++;
        return rng_range(rng, 1025, 32 * 1024);
    }
    ntier[2]++;
    return rng_range(rng, 32 * 1024 + 1, 1024 * 1024);
}

/* One byte per page between the end words, derived from the tag. */
static void touch_pages(unsigned char *p, size_t n, uint64_t tag)
{
    if (FULL_FILL(n, tag))      /* written entirely already */
        return;
    for (size_t off = PAGE; off + 8 < n; off += PAGE)
        p[off] = (unsigned char)(tag >> 8) ^ (unsigned char)(off >> 12);
}

static void check_pages(const unsigned char *p, size_t n, uint64_t tag)
{
    if (FULL_FILL(n, tag))      /* check() covers every byte */
        return;
    for (size_t off = PAGE; off + 8 < n; off += PAGE)
        if (p[off] != ((unsigned char)(tag >> 8) ^ (unsigned char)(off >> 12))) {
            if (atomic_fetch_add(&bench_errors, 1) == 0)
                fprintf(stderr, "mixed: page byte lost in %p size %zu\n", (void *)p, n);
            return;
        }
}

static void new_item(struct item *it, uint64_t *rng, struct thread *t)
{
    it->size = pick_size(rng, t->ntier);
    it->tag = rng_next(rng);
    it->p = xmalloc(it->size);
    stamp(it->p, it->size, it->tag);
    touch_pages(it->p, it->size, it->tag);
    t->bytes += it->size;
}

static void free_item(struct item *it)
{
    check(it->p, it->size, it->tag);
    check_pages(it->p, it->size, it->tag);
    free(it->p);
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x5151ull * (uint64_t)(t->id + 1);
    struct item *slots = xmalloc(sizeof(struct item) * (size_t)t->nslots);

    for (int i = 0; i < t->nslots; i++)
        new_item(&slots[i], &rng, t);
    t->bytes = 0;
    memset(t->ntier, 0, sizeof t->ntier);
    bench_start();                      /* the first fill is not timed */

    for (long op = 0; op < t->ops; op++) {
        struct item *it = &slots[rng_next(&rng) % (uint64_t)t->nslots];
        free_item(it);
        new_item(it, &rng, t);
    }
    for (int i = 0; i < t->nslots; i++)
        free_item(&slots[i]);
    free(slots);
    bench_stop();
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 2;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(3e6 * scale);

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].nslots = TOTAL_SLOTS / nthreads > 0 ? TOTAL_SLOTS / nthreads : 1;
        th[i].ops = total / nthreads;
    }
    double secs = bench_run_threads(nthreads, worker, th, sizeof *th);
    long ops = 0, ntier[3] = { 0, 0, 0 };
    double bytes = 0;
    for (int i = 0; i < nthreads; i++) {
        ops += th[i].ops;
        bytes += (double)th[i].bytes;
        for (int k = 0; k < 3; k++)
            ntier[k] += th[i].ntier[k];
    }
    printf("mixed threads=%d ops=%ld secs=%.4f mops_per_s=%.3f tiny=%ld mid=%ld large=%ld "
           "mib_allocated=%.0f",
           nthreads, ops, secs, (double)ops / secs / 1e6, ntier[0], ntier[1], ntier[2],
           bytes / 1048576.0);
    free(th);
    return bench_report();
}
