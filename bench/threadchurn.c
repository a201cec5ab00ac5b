/* threadchurn: many short-lived threads.
 *
 * Threads are started in waves of THREADS at a time, 6000 in all at scale 1.
 * Each allocates 100 objects (16-2048 B), frees half of them itself, leaves a
 * quarter to the main thread (which checks and frees them after the join:
 * memory outliving the thread that allocated it) and swaps the rest into a
 * shared pool of slots, freeing what an earlier, now dead, thread left there.
 * This exercises per-thread heap set-up and tear-down and frees into the
 * heaps of exited threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: threadchurn [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  THREADS run at a time; 6000 threads in all at scale 1, 100 objects each\n";

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

#define PER_THREAD 100
#define MIN_SIZE 16
#define MAX_SIZE 2048
#define POOL 256

struct item {
    void *p;
    uint32_t size;
    uint64_t tag;
};

struct job {
    pthread_t tid;
    uint64_t seed;
    int nleft;
    struct item left[PER_THREAD];    /* for the main thread to free */
};

static _Atomic(struct item *) pool[POOL];
static atomic_long npool_freed;

static void *worker(void *arg)
{
    struct job *j = arg;
    uint64_t rng = j->seed;
    struct item it[PER_THREAD];

    for (int i = 0; i < PER_THREAD; i++) {
        it[i].size = (uint32_t)rng_range(&rng, MIN_SIZE, MAX_SIZE);
        it[i].tag = rng_next(&rng);
        it[i].p = xmalloc(it[i].size);
        stamp(it[i].p, it[i].size, it[i].tag);
    }
    j->nleft = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 4 < 2) {                     /* half: freed here */
            check(it[i].p, it[i].size, it[i].tag);
            free(it[i].p);
        } else if (i % 4 == 2) {             /* a quarter: to the main thread */
            j->left[j->nleft++] = it[i];
        } else {                             /* a quarter: into the pool */
            struct item *box = xmalloc(sizeof *box);
            *box = it[i];
            struct item *old = atomic_exchange(&pool[rng_next(&rng) % POOL], box);
            if (old != NULL) {
                check(old->p, old->size, old->tag);
                free(old->p);
                free(old);
                atomic_fetch_add_explicit(&npool_freed, 1, memory_order_relaxed);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 2;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(6000 * scale);
    if (total < nthreads)
        total = nthreads;

    struct job *jobs = calloc((size_t)nthreads, sizeof *jobs);
    if (jobs == NULL)
        return 1;
    uint64_t rng = 42;
    long started = 0, left_freed = 0;
    double t0 = now_sec();
    while (started < total) {
        int wave = total - started < nthreads ? (int)(total - started) : nthreads;
        for (int i = 0; i < wave; i++) {
            jobs[i].seed = rng_next(&rng);
            if (pthread_create(&jobs[i].tid, NULL, worker, &jobs[i]) != 0) {
                fprintf(stderr, "threadchurn: pthread_create failed\n");
                return 1;
            }
        }
        for (int i = 0; i < wave; i++) {
            pthread_join(jobs[i].tid, NULL);
            for (int k = 0; k < jobs[i].nleft; k++) {
                check(jobs[i].left[k].p, jobs[i].left[k].size, jobs[i].left[k].tag);
                free(jobs[i].left[k].p);
            }
            left_freed += jobs[i].nleft;
        }
        started += wave;
    }
    for (int i = 0; i < POOL; i++) {
        struct item *old = atomic_exchange(&pool[i], NULL);
        if (old != NULL) {
            check(old->p, old->size, old->tag);
            free(old->p);
            free(old);
        }
    }
    double secs = now_sec() - t0;
    unsigned long errs = atomic_load(&bench_errors);
    printf("threadchurn threads=%d ops=%ld secs=%.4f threads_per_s=%.0f objects=%ld "
           "freed_after_exit=%ld peak_rss_kib=%ld verified=%s\n",
           nthreads, started, secs, (double)started / secs, started * PER_THREAD,
           left_freed + atomic_load(&npool_freed), peak_rss_kib(), errs ? "FAIL" : "ok");
    free(jobs);
    return errs ? 1 : 0;
}
