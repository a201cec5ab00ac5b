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

#define TOTAL_SLOTS 4000
#define PAGE 4096

struct item {
    void *p;
    size_t size;
    uint64_t tag;
};

struct thread {
    pthread_t tid;
    int id, nslots;
    long ops;
    uint64_t bytes;            /* allocated in the timed phase */
    long ntier[3];
    char pad[64];
};

static pthread_barrier_t start_bar;
static struct span span = SPAN_INIT;

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
    pthread_barrier_wait(&start_bar);   /* the first fill is not timed */
    span_begin(&span);

    for (long op = 0; op < t->ops; op++) {
        struct item *it = &slots[rng_next(&rng) % (uint64_t)t->nslots];
        free_item(it);
        new_item(it, &rng, t);
    }
    for (int i = 0; i < t->nslots; i++)
        free_item(&slots[i]);
    free(slots);
    span_end(&span);
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
    pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].nslots = TOTAL_SLOTS / nthreads > 0 ? TOTAL_SLOTS / nthreads : 1;
        th[i].ops = total / nthreads;
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "mixed: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&start_bar);
    long ops = 0, ntier[3] = { 0, 0, 0 };
    double bytes = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i].tid, NULL);
        ops += th[i].ops;
        bytes += (double)th[i].bytes;
        for (int k = 0; k < 3; k++)
            ntier[k] += th[i].ntier[k];
    }
    double secs = span_secs(&span);
    unsigned long errs = atomic_load(&bench_errors);
    printf("mixed threads=%d ops=%ld secs=%.4f mops_per_s=%.3f tiny=%ld mid=%ld large=%ld "
           "mib_allocated=%.0f peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, secs, (double)ops / secs / 1e6, ntier[0], ntier[1], ntier[2],
           bytes / 1048576.0, peak_rss_kib(), errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
