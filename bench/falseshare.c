/* falseshare: cache-scratch shape (active and passive false sharing).
 *
 * The main thread allocates one small object per thread, back to back, and
 * hands object i to thread i, which frees it (passive false sharing: an
 * allocator that reuses that memory for the thread places its objects on a
 * cache line another thread is writing).  Then every thread repeatedly
 * allocates a small object, increments each of its bytes WRITES times, checks
 * it and frees it; one object in 16 goes to the next thread's inbox instead,
 * to be checked and freed there.  An allocator that puts two threads' objects
 * on one cache line turns the write loop into cache-line ping-pong.
 *
 * Total iterations are fixed and split among the threads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: falseshare [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  1M allocate-write-free iterations at scale 1, split among the threads;\n"
    "  8-byte objects, every byte incremented 64 times per iteration\n";

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

#define OBJ_SIZE 8
#define WRITES 64
#define HAND_EVERY 16

struct thread {
    _Alignas(64) pthread_t tid;
    int id;
    long iters;
    unsigned char *given;                 /* from main: free it first */
    _Atomic(unsigned char *) inbox;       /* one object from the neighbour */
    long nreceived;
};

static struct thread *threads;
static int nthreads;
static pthread_barrier_t start_bar;
static struct span span = SPAN_INIT;
static atomic_int nfinished;

static void check_obj(unsigned char *p)
{
    for (int b = 0; b < OBJ_SIZE; b++)
        if (p[b] != (unsigned char)WRITES) {
            if (atomic_fetch_add(&bench_errors, 1) == 0)
                fprintf(stderr, "falseshare: object %p byte %d is %u, want %u\n",
                        (void *)p, b, p[b], (unsigned)WRITES);
            return;
        }
}

static long take_inbox(struct thread *t)
{
    unsigned char *p = atomic_exchange_explicit(&t->inbox, NULL, memory_order_acquire);
    if (p == NULL)
        return 0;
    check_obj(p);
    free(p);
    return 1;
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    struct thread *next = &threads[(t->id + 1) % nthreads];

    pthread_barrier_wait(&start_bar);
    span_begin(&span);
    free(t->given);
    for (long it = 0; it < t->iters; it++) {
        volatile unsigned char *p = xmalloc(OBJ_SIZE);
        for (int b = 0; b < OBJ_SIZE; b++)
            p[b] = 0;
        for (int w = 0; w < WRITES; w++)
            for (int b = 0; b < OBJ_SIZE; b++)
                p[b]++;
        check_obj((unsigned char *)p);
        if (it % HAND_EVERY == HAND_EVERY - 1) {
            unsigned char *old = atomic_exchange_explicit(&next->inbox, (unsigned char *)p,
                                                          memory_order_acq_rel);
            if (old != NULL) {          /* the neighbour has not taken it yet */
                check_obj(old);
                free(old);
            }
        } else
            free((void *)p);
        t->nreceived += take_inbox(t);
    }
    atomic_fetch_add(&nfinished, 1);
    while (atomic_load(&nfinished) < nthreads)
        sched_yield();
    t->nreceived += take_inbox(t);
    span_end(&span);
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 2;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(1e6 * scale);

    threads = aligned_alloc(64, sizeof(struct thread) * (size_t)nthreads);
    if (threads == NULL)
        return 1;
    memset(threads, 0, sizeof(struct thread) * (size_t)nthreads);
    pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        threads[i].id = i;
        threads[i].iters = total / nthreads;
        threads[i].given = xmalloc(OBJ_SIZE);   /* back to back, on purpose */
        atomic_init(&threads[i].inbox, NULL);
    }
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&threads[i].tid, NULL, worker, &threads[i]) != 0) {
            fprintf(stderr, "falseshare: pthread_create failed\n");
            return 1;
        }
    pthread_barrier_wait(&start_bar);
    long iters = 0, received = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(threads[i].tid, NULL);
        iters += threads[i].iters;
        received += threads[i].nreceived;
    }
    double secs = span_secs(&span);
    unsigned long errs = atomic_load(&bench_errors);
    printf("falseshare threads=%d ops=%ld secs=%.4f mops_per_s=%.3f handed_over=%ld "
           "peak_rss_kib=%ld verified=%s\n",
           nthreads, iters, secs, (double)iters / secs / 1e6, received, peak_rss_kib(),
           errs ? "FAIL" : "ok");
    free(threads);
    return errs ? 1 : 0;
}
