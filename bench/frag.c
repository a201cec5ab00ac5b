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

struct item {
    void *p;
    size_t size;
    uint64_t tag;
};

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
