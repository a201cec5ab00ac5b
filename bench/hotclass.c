/* hotclass: one hot size class whose working set overflows the default
 * thread cache.
 *
 * Each thread repeats: allocate a batch of blocks of one size, stamp each,
 * then check and free them all (in allocation order), in three phases of
 * about half a second each under a small thread cache: 512 B blocks in
 * batches of 2048, 4 KiB blocks in batches of 256, 48 KiB blocks in batches
 * of 32 (1-1.5 MiB a batch).  A
 * thread cache that keeps less than a batch hands most of the batch's pages
 * back to the shared page allocator at every free-all and fetches them again
 * for the next batch; one that keeps a batch's worth serves the next batch
 * from its own pages.  hakmem's static default keeps one 64 KiB page per
 * class; its learning mode raises tcache_max for the class that churns.
 * Reports the time of each phase (all threads) and ns per malloc+free pair.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: hotclass [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1, split among the threads: 40M allocations of 512 B in\n"
    "  2048-block batches, 24M of 4 KiB in 256-block batches, 8M of 48 KiB in\n"
    "  32-block batches\n";

/* ---- helpers shared by the bench/ programs ----
 * Repeated in each file on purpose: every bench/NAME.c is built alone into one
 * program that links nothing but libc, so there is no common object to link. */

static inline double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall time of a parallel phase, from the first worker's start to the last
 * worker's end, each read by the worker itself: a coordinator that reads the
 * clock after a barrier can be descheduled while the workers run. */
struct span {
    pthread_mutex_t lock;
    double start, end;
};
#define SPAN_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }

static inline void span_begin(struct span *s)
{
    double t = now_sec();
    pthread_mutex_lock(&s->lock);
    if (s->start == 0 || t < s->start)
        s->start = t;
    pthread_mutex_unlock(&s->lock);
}

static inline void span_end(struct span *s)
{
    double t = now_sec();
    pthread_mutex_lock(&s->lock);
    if (t > s->end)
        s->end = t;
    pthread_mutex_unlock(&s->lock);
}

static inline double span_secs(const struct span *s)
{
    return s->end > s->start ? s->end - s->start : 0;
}

/* splitmix64: a fast generator with no bad seeds */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(s) % (hi - lo + 1);
}

static atomic_ulong bench_errors;

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(1);
    }
    return p;
}

/* Object content: the tag in the first word, its complement in the last,
 * and on one object in 16 (by tag) up to FULL_MAX bytes every byte between
 * set to a tag byte. */
#define FULL_MAX 8192
#define FULL_FILL(n, tag) (((tag) & 15) == 0 && (n) <= FULL_MAX)

static inline void stamp(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = p;
    uint64_t inv = ~tag;
    if (FULL_FILL(n, tag))
        memset(b, (int)(tag >> 56), n);
    if (n < 8) {
        memcpy(b, &tag, n);
        return;
    }
    memcpy(b, &tag, 8);
    if (n >= 16)
        memcpy(b + n - 8, &inv, 8);
}

/* Checks what stamp() wrote (and 16-byte alignment from 16 B up); reports
 * the first bad object on stderr and counts all of them. */
static inline int check(const void *p, size_t n, uint64_t tag)
{
    const unsigned char *b = p;
    uint64_t w, inv = ~tag;
    int ok = 1;
    if (n >= 16 && ((uintptr_t)p & 15) != 0)
        ok = 0;
    else if (n < 8)
        ok = memcmp(b, &tag, n) == 0;
    else {
        memcpy(&w, b, 8);
        ok = w == tag;
        if (ok && n >= 16) {
            memcpy(&w, b + n - 8, 8);
            ok = w == inv;
        }
        if (ok && FULL_FILL(n, tag)) {
            unsigned char c = (unsigned char)(tag >> 56);
            size_t end = n >= 16 ? n - 8 : n;
            for (size_t i = 8; i < end && ok; i++)
                ok = b[i] == c;
        }
    }
    if (!ok && atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "corrupt or misaligned object %p size %zu\n", p, n);
    return ok;
}

/* Peak resident set of this process in KiB (VmHWM).  Read here rather than
 * from the parent's wait4(): Linux carries the forking parent's high-water
 * mark over exec into the child's ru_maxrss. */
static inline long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            v = atol(line + 6);
            break;
        }
    fclose(f);
    return v;
}

static inline void parse_args(int argc, char **argv, int *threads, double *scale)
{
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && i + 1 < argc)
            *threads = atoi(argv[++i]);
        else if ((!strcmp(a, "-s") || !strcmp(a, "--scale")) && i + 1 < argc)
            *scale = atof(argv[++i]);
        else if (a[0] != '-' && npos == 0) {
            *threads = atoi(a);
            npos++;
        } else if (a[0] != '-' && npos == 1) {
            *scale = atof(a);
            npos++;
        } else {
            fputs(usage, stderr);
            exit(2);
        }
    }
    if (*threads < 1 || *threads > 1024 || !(*scale > 0)) {
        fputs(usage, stderr);
        exit(2);
    }
}

/* ---- the benchmark ---- */

#define NPHASES 3
static const size_t sizes[NPHASES] = { 512, 4096, 48 << 10 };
static const unsigned batches[NPHASES] = { 2048, 256, 32 };
static const long blocks_per_phase[NPHASES] = { 40000000, 24000000, 8000000 }; /* scale 1 */

struct thread {
    pthread_t tid;
    int id;
    long rounds[NPHASES];
    char pad[64];
};

static pthread_barrier_t bar;
static struct span spans[NPHASES] = { SPAN_INIT, SPAN_INIT, SPAN_INIT };

/* Tags are odd multiples of 16 plus one, so stamp() writes only the first
 * and last words (no full fill): the allocator's cost is what is timed. */
static void one_batch(void **slot, unsigned n, size_t size, uint64_t *rng)
{
    uint64_t base = rng_next(rng) | 1;
    for (unsigned i = 0; i < n; i++) {
        slot[i] = xmalloc(size);
        stamp(slot[i], size, base + 16 * (uint64_t)i);
    }
    for (unsigned i = 0; i < n; i++) {
        check(slot[i], size, base + 16 * (uint64_t)i);
        free(slot[i]);
    }
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x4c1a55ull * (uint64_t)(t->id + 1);
    void **slot = xmalloc(2048 * sizeof *slot);
    for (int s = 0; s < NPHASES; s++) {
        pthread_barrier_wait(&bar);
        span_begin(&spans[s]);
        for (long r = 0; r < t->rounds[s]; r++)
            one_batch(slot, batches[s], sizes[s], &rng);
        span_end(&spans[s]);
    }
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        for (int s = 0; s < NPHASES; s++) {
            long r = (long)(blocks_per_phase[s] * scale) / batches[s] / nthreads;
            th[i].rounds[s] = r > 0 ? r : 1;
        }
    }
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "hotclass: pthread_create failed\n");
            return 1;
        }
    worker(&th[0]);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i].tid, NULL);

    long ops = 0, n[NPHASES] = { 0, 0, 0 };
    for (int i = 0; i < nthreads; i++)
        for (int s = 0; s < NPHASES; s++)
            n[s] += th[i].rounds[s] * (long)batches[s];
    double secs = 0, ns[NPHASES];
    for (int s = 0; s < NPHASES; s++) {
        double p = span_secs(&spans[s]);
        secs += p;
        ops += n[s];
        ns[s] = p * 1e9 * nthreads / (double)n[s];
    }
    unsigned long errs = atomic_load(&bench_errors);
    printf("hotclass threads=%d ops=%ld secs=%.4f ns_pair_512=%.2f ns_pair_4k=%.2f "
           "ns_pair_48k=%.2f peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, secs, ns[0], ns[1], ns[2], peak_rss_kib(), errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
