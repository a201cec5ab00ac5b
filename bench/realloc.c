/* realloc: growing buffers.
 *
 * Doubling: a vector starts at 16 B and is realloc'd to twice its size up to
 * 64 MiB; after every step the old contents (first and last word, one byte
 * per 4 KiB page) are checked and the new half is touched the same way.
 * Increments: four strings, grown in turn by random 1-64 byte appends up to
 * 64 KiB (so neighbours get in the way of growing in place); every appended
 * byte is written, and each string is checked entirely at the end.
 *
 * Rounds of each kind are fixed and split among the threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: realloc [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  at scale 1: 6 doubling rounds (16 B -> 64 MiB) and 300 increment rounds\n"
    "  (4 strings to 64 KiB each), split among the threads\n";

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
#define MAX_VEC (64u << 20)
#define NSTR 4
#define MAX_STR (64u << 10)

struct thread {
    pthread_t tid;
    int id;
    long double_rounds, incr_rounds;
    long nrealloc;
    double double_secs, incr_secs;
    char pad[64];
};

static pthread_barrier_t start_bar;
static struct span span = SPAN_INIT;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "realloc: realloc(%zu) failed\n", n);
        exit(1);
    }
    return q;
}

static void bad(const char *what, const void *p, size_t n)
{
    if (atomic_fetch_add(&bench_errors, 1) == 0)
        fprintf(stderr, "realloc: %s lost in %p (size %zu)\n", what, p, n);
}

static inline unsigned char page_byte(uint64_t tag, size_t off)
{
    return (unsigned char)(tag ^ (off >> 12) ^ (off >> 20));
}

/* Touches bytes [from, to) of a vector: one byte per page and the last word. */
static void vec_touch(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    for (size_t off = (from + PAGE - 1) / PAGE * PAGE; off < to - 8; off += PAGE)
        p[off] = page_byte(tag, off);
    memcpy(p + to - 8, &tag, 8);
}

static void vec_check(const unsigned char *p, size_t n, uint64_t tag)
{
    uint64_t w;
    memcpy(&w, p + n - 8, 8);
    if (w != tag)
        bad("last word", p, n);
    for (size_t off = 0; off < n - 8; off += PAGE)
        if (p[off] != page_byte(tag, off)) {
            bad("page byte", p, n);
            return;
        }
}

static long doubling_round(uint64_t tag)
{
    size_t n = 16;
    unsigned char *p = xmalloc(n);
    long count = 0;
    vec_touch(p, 0, n, tag);
    while (n < MAX_VEC) {
        p = xrealloc(p, n * 2);
        count++;
        vec_check(p, n, tag);
        /* the old last word is now inside the vector: restore its page byte
         * pattern by touching the new half, from the old end */
        vec_touch(p, n - 8, n * 2, tag);
        n *= 2;
    }
    vec_check(p, n, tag);
    free(p);
    return count;
}

static inline unsigned char str_byte(uint64_t seed, size_t i)
{
    return (unsigned char)(seed + i * 7 + (i >> 8));
}

static long increment_round(uint64_t *rng)
{
    unsigned char *s[NSTR] = { NULL };
    size_t len[NSTR] = { 0 };
    uint64_t seed[NSTR];
    long count = 0;
    for (int k = 0; k < NSTR; k++)
        seed[k] = rng_next(rng);
    for (int done = 0; done < NSTR;) {
        done = 0;
        for (int k = 0; k < NSTR; k++) {
            if (len[k] >= MAX_STR) {
                done++;
                continue;
            }
            size_t add = (size_t)rng_range(rng, 1, 64);
            s[k] = xrealloc(s[k], len[k] + add);
            count++;
            for (size_t i = len[k]; i < len[k] + add; i++)
                s[k][i] = str_byte(seed[k], i);
            len[k] += add;
        }
    }
    for (int k = 0; k < NSTR; k++) {
        for (size_t i = 0; i < len[k]; i++)
            if (s[k][i] != str_byte(seed[k], i)) {
                bad("string byte", s[k], len[k]);
                break;
            }
        free(s[k]);
    }
    return count;
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x99ull * (uint64_t)(t->id + 1);
    pthread_barrier_wait(&start_bar);
    span_begin(&span);
    double t0 = now_sec();
    for (long r = 0; r < t->double_rounds; r++)
        t->nrealloc += doubling_round(rng_next(&rng));
    double t1 = now_sec();
    for (long r = 0; r < t->incr_rounds; r++)
        t->nrealloc += increment_round(&rng);
    t->double_secs = t1 - t0;
    t->incr_secs = now_sec() - t1;
    span_end(&span);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    double scale = 1.0;
    parse_args(argc, argv, &nthreads, &scale);
    long dbl = (long)(6 * scale), inc = (long)(300 * scale);

    struct thread *th = calloc((size_t)nthreads, sizeof *th);
    if (th == NULL)
        return 1;
    pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        th[i].id = i;
        th[i].double_rounds = dbl / nthreads > 0 ? dbl / nthreads : 1;
        th[i].incr_rounds = inc / nthreads > 0 ? inc / nthreads : 1;
        if (pthread_create(&th[i].tid, NULL, worker, &th[i]) != 0) {
            fprintf(stderr, "realloc: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&start_bar);
    long ops = 0;
    double dsecs = 0, isecs = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i].tid, NULL);
        ops += th[i].nrealloc;
        if (th[i].double_secs > dsecs)
            dsecs = th[i].double_secs;
        if (th[i].incr_secs > isecs)
            isecs = th[i].incr_secs;
    }
    double secs = span_secs(&span);
    unsigned long errs = atomic_load(&bench_errors);
    printf("realloc threads=%d ops=%ld secs=%.4f mops_per_s=%.3f doubling_secs=%.4f "
           "increment_secs=%.4f peak_rss_kib=%ld verified=%s\n",
           nthreads, ops, secs, (double)ops / secs / 1e6, dsecs, isecs, peak_rss_kib(),
           errs ? "FAIL" : "ok");
    free(th);
    return errs ? 1 : 0;
}
