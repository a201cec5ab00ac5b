/* Helpers shared by the bench/ programs (header-only: every bench/NAME.c
 * is still built alone into a program that links nothing but libc). */
#ifndef HK_BENCH_UTIL_H
#define HK_BENCH_UTIL_H

#include <errno.h>      /* program_invocation_short_name */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* A live object and what check() needs to verify it. */
struct item {
    void *p;
    size_t size;
    uint64_t tag;
};

/* Allocates an object of size bytes under a new tag from rng, stamped. */
static inline void item_alloc(struct item *it, size_t size, uint64_t *rng)
{
    it->size = size;
    it->tag = rng_next(rng);
    it->p = xmalloc(size);
    stamp(it->p, size, it->tag);
}

static inline void item_free(struct item *it)
{
    check(it->p, it->size, it->tag);
    free(it->p);
}

/* A "Key:" line's value of /proc/self/status (in KiB for the Vm lines), or -1. */
static inline long proc_status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kl = strlen(key);
    long v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) {
            v = atol(line + kl);
            break;
        }
    fclose(f);
    return v;
}

/* Peak resident set of this process in KiB (VmHWM).  Read here rather than
 * from the parent's wait4(): Linux carries the forking parent's high-water
 * mark over exec into the child's ru_maxrss. */
static inline long peak_rss_kib(void)
{
    return proc_status_kib("VmHWM:");
}

/* ---- running the threads ----
 *
 * The usual run: every worker does its untimed set-up, calls bench_start()
 * (all workers and the runner pass it together), does the timed work and
 * calls bench_stop(); the time is the span from the first bench_start() to
 * the last bench_stop() (struct span). */
static pthread_barrier_t bench_gate;
static struct span bench_span = SPAN_INIT;

static inline void bench_start(void)
{
    pthread_barrier_wait(&bench_gate);
    span_begin(&bench_span);
}

static inline void bench_stop(void)
{
    span_end(&bench_span);
}

/* n threads of one function: thread i runs fn(array + i * stride). */
struct bench_group {
    void *(*fn)(void *);
    void *array;
    size_t stride;
    int n;
};

/* Starts every group's threads, then joins them all, group by group.
 * gated: the workers call bench_start() and the result is the timed span;
 * otherwise nothing waits for them to start (the result is 0).  A thread
 * that cannot be created ends the program (exit 1). */
static inline double bench_run_groups(const struct bench_group *g, int ngroups, int gated)
{
    int total = 0;
    for (int k = 0; k < ngroups; k++)
        total += g[k].n;
    pthread_t tid[total];
    if (gated)
        pthread_barrier_init(&bench_gate, NULL, (unsigned)total + 1);
    for (int k = 0, t = 0; k < ngroups; k++)
        for (int i = 0; i < g[k].n; i++, t++)
            if (pthread_create(&tid[t], NULL, g[k].fn,
                               (char *)g[k].array + (size_t)i * g[k].stride) != 0) {
                fprintf(stderr, "%s: pthread_create failed\n", program_invocation_short_name);
                exit(1);
            }
    if (gated)
        pthread_barrier_wait(&bench_gate);
    for (int t = 0; t < total; t++)
        pthread_join(tid[t], NULL);
    if (!gated)
        return 0;
    pthread_barrier_destroy(&bench_gate);
    return span_secs(&bench_span);
}

/* The usual run of n workers fn(array + i * stride); returns its time. */
static inline double bench_run_threads(int n, void *(*fn)(void *), void *array, size_t stride)
{
    struct bench_group g = { fn, array, stride, n };
    return bench_run_groups(&g, 1, 1);
}

/* The usual worker argument: its index and its share of the work (padded
 * so that two workers' counters share no cache line). */
struct bench_share {
    int id;
    long ops;
    char pad[64];
};

/* n workers fn(&share[i]) splitting total ops; returns the time, and in
 * *ops the ops they report done. */
static inline double bench_run_shares(int n, void *(*fn)(void *), long total, long *ops)
{
    struct bench_share *s = calloc((size_t)n, sizeof *s);
    if (s == NULL) {
        fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
        exit(1);
    }
    for (int i = 0; i < n; i++)
        s[i] = (struct bench_share){ .id = i, .ops = total / n };
    double secs = bench_run_threads(n, fn, s, sizeof *s);
    *ops = 0;
    for (int i = 0; i < n; i++)
        *ops += s[i].ops;
    free(s);
    return secs;
}

/* Counts a failure (reported once) when fewer or more objects were freed
 * than were made ("produced", "sent", ...). */
static inline void bench_check_freed(const char *made_how, long made, long freed)
{
    if (freed != made && atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "%s: %s %ld objects, freed %ld\n", program_invocation_short_name,
                made_how, made, freed);
}

/* Ends the result line the program began ("NAME threads=... secs=..."): the
 * keys every benchmark prints last, " peak_rss_kib=N verified=ok" (FAIL
 * after any failed check).  Returns the exit status: 1 after a failed check. */
static inline int bench_report(void)
{
    unsigned long errs = atomic_load(&bench_errors);
    printf(" peak_rss_kib=%ld verified=%s\n", peak_rss_kib(), errs ? "FAIL" : "ok");
    return errs ? 1 : 0;
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

#endif
