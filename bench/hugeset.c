/* hugeset: huge blocks churned with a working set larger than hakmem's
 * default BigCache (64 MiB).
 *
 * Each thread repeats: allocate 12 blocks of 8 MiB (96 MiB live), write one
 * byte in every 4 KiB page of each, check them, free them all.  An
 * allocator that keeps the freed mappings (or their pages) for the next
 * round pays only the page writes; one that keeps less than the 12 blocks
 * maps and faults in the rest every round (hakmem's default BigCache holds
 * 6 of them; its learning mode grows the cache when misses of recently
 * dropped sizes show the reuse distance exceeds it).  Peak RSS is the live
 * set in any case.  Reports microseconds per block (allocate + touch + free).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: hugeset [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1: 60 rounds of 12 x 8 MiB blocks per thread\n";

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

#define PAGE 4096
#define NBLOCKS 12
#define BLOCK (8u << 20)

struct thread {
    pthread_t tid;
    int id;
    long rounds;
    char pad[64];
};

static pthread_barrier_t bar;
static struct span span = SPAN_INIT;

static void one_round(uint64_t *rng)
{
    unsigned char *p[NBLOCKS];
    uint64_t tag[NBLOCKS];
    for (int b = 0; b < NBLOCKS; b++) {
        tag[b] = rng_next(rng);
        p[b] = xmalloc(BLOCK);
        if (((uintptr_t)p[b] & 15) != 0 && atomic_fetch_add(&bench_errors, 1) == 0)
            fprintf(stderr, "hugeset: misaligned block %p\n", (void *)p[b]);
        unsigned char v = (unsigned char)tag[b];
        for (size_t off = 0; off < BLOCK; off += PAGE)
            p[b][off] = v++;
        memcpy(p[b] + BLOCK - 8, &tag[b], 8);
    }
    for (int b = 0; b < NBLOCKS; b++) {
        unsigned char v = (unsigned char)tag[b];
        for (size_t off = 0; off < BLOCK; off += PAGE, v++)
            if (p[b][off] != v) {
                if (atomic_fetch_add(&bench_errors, 1) == 0)
                    fprintf(stderr, "hugeset: page at %p+%zu lost its byte\n", (void *)p[b], off);
                break;
            }
        uint64_t w;
        memcpy(&w, p[b] + BLOCK - 8, 8);
        if (w != tag[b] && atomic_fetch_add(&bench_errors, 1) == 0)
            fprintf(stderr, "hugeset: last word of %p lost\n", (void *)p[b]);
        free(p[b]);
    }
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x8e7ull * (uint64_t)(t->id + 1);
    pthread_barrier_wait(&bar);
    span_begin(&span);
    for (long r = 0; r < t->rounds; r++)
        one_round(&rng);
    span_end(&span);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long rounds = (long)(60 * scale);
    if (rounds < 1)
        rounds = 1;

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].rounds = rounds;
    }
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "hugeset: pthread_create failed\n");
            return 1;
        }
    worker(&th[0]);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i].tid, NULL);

    long ops = rounds * NBLOCKS * nthreads;
    double secs = span_secs(&span);
    unsigned long errs = atomic_load(&bench_errors);
    printf("hugeset threads=%d ops=%ld secs=%.4f us_per_block=%.1f peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, secs, secs * 1e6 * nthreads / (double)ops, peak_rss_kib(),
           errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
