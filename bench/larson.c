/* larson: server-style churn (after the shape of Larson & Krishnan's test).
 *
 * Every thread keeps a window of live objects (8-1000 B) and replaces random
 * slots: free the old object, allocate one of a new random size.  Every 64
 * replacements it also parcels 16 of its live objects off to another thread's
 * mailbox (a lock-free stack); the receiver frees them, so a steady share of
 * frees is remote.  The parcels themselves are malloc'd and freed remotely.
 *
 * Total work is fixed and split among the threads, so with more threads than
 * cores the time shows the cost of oversubscription, not of more work.
 * Every object carries a tag at both ends (1 in 16 is filled entirely) and is
 * checked before it is freed; any mismatch prints verified=FAIL, exit 1.
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
    "usage: larson [-t THREADS] [-s SCALE] [THREADS [SCALE]]\n"
    "  8M object replacements at scale 1, split among the threads;\n"
    "  window of 1000 live objects per thread, sizes 8-1000 B\n";

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

#define WINDOW 1000
#define MIN_SIZE 8
#define MAX_SIZE 1000
#define PARCEL_EVERY 64      /* replacements between parcels */
#define PARCEL_ITEMS 16

struct item {
    void *p;
    uint32_t size;
    uint64_t tag;
};

struct parcel {
    struct parcel *next;
    int n;
    struct item items[PARCEL_ITEMS];
};

struct thread {
    pthread_t tid;
    int id;
    long ops;                       /* replacements to do */
    long nmalloc, nremote;          /* done: allocations, remote frees */
    _Atomic(struct parcel *) mailbox;
    char pad[64];
};

static struct thread *threads;
static int nthreads;
static pthread_barrier_t start_bar;
static struct span span = SPAN_INIT;
static atomic_int nfinished;

static void new_item(struct item *it, uint64_t *rng)
{
    it->size = (uint32_t)rng_range(rng, MIN_SIZE, MAX_SIZE);
    it->tag = rng_next(rng);
    it->p = xmalloc(it->size);
    stamp(it->p, it->size, it->tag);
}

static void free_item(struct item *it)
{
    check(it->p, it->size, it->tag);
    free(it->p);
}

/* Takes the whole mailbox at once (no ABA: nobody pops single nodes). */
static long drain_mailbox(struct thread *t)
{
    struct parcel *pc = atomic_exchange_explicit(&t->mailbox, NULL, memory_order_acquire);
    long n = 0;
    while (pc != NULL) {
        struct parcel *next = pc->next;
        for (int i = 0; i < pc->n; i++)
            free_item(&pc->items[i]);
        n += pc->n;
        free(pc);
        pc = next;
    }
    return n;
}

static void post(struct thread *to, struct parcel *pc)
{
    struct parcel *head = atomic_load_explicit(&to->mailbox, memory_order_relaxed);
    do
        pc->next = head;
    while (!atomic_compare_exchange_weak_explicit(&to->mailbox, &head, pc,
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

static void *worker(void *arg)
{
    struct thread *t = arg;
    uint64_t rng = 0x1234567ull * (uint64_t)(t->id + 1);
    struct item *win = xmalloc(sizeof(struct item) * WINDOW);

    for (int i = 0; i < WINDOW; i++)
        new_item(&win[i], &rng);
    pthread_barrier_wait(&start_bar);   /* the window fill is not timed */
    span_begin(&span);

    for (long op = 1; op <= t->ops; op++) {
        struct item *it = &win[rng_next(&rng) % WINDOW];
        free_item(it);
        new_item(it, &rng);
        t->nmalloc++;
        if (op % PARCEL_EVERY == 0) {
            struct parcel *pc = xmalloc(sizeof *pc);
            pc->n = PARCEL_ITEMS;
            for (int i = 0; i < PARCEL_ITEMS; i++) {
                struct item *give = &win[rng_next(&rng) % WINDOW];
                pc->items[i] = *give;
                new_item(give, &rng);
            }
            t->nmalloc += PARCEL_ITEMS;
            int to = nthreads == 1 ? 0
                     : (t->id + 1 + (int)(rng_next(&rng) % (uint64_t)(nthreads - 1))) % nthreads;
            post(&threads[to], pc);
            t->nremote += drain_mailbox(t);
        }
    }

    /* Keep serving the mailbox until every thread is done posting, so a
     * thread that finishes early does not let parcels pile up. */
    atomic_fetch_add(&nfinished, 1);
    while (atomic_load(&nfinished) < nthreads) {
        long n = drain_mailbox(t);
        t->nremote += n;
        if (n == 0)
            sched_yield();
    }
    t->nremote += drain_mailbox(t);
    for (int i = 0; i < WINDOW; i++)
        free_item(&win[i]);
    free(win);
    span_end(&span);
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    nthreads = 2;
    parse_args(argc, argv, &nthreads, &scale);
    long total = (long)(8e6 * scale);

    threads = calloc((size_t)nthreads, sizeof *threads);
    if (threads == NULL)
        return 1;
    pthread_barrier_init(&start_bar, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        threads[i].id = i;
        threads[i].ops = total / nthreads;
        atomic_init(&threads[i].mailbox, NULL);
        if (pthread_create(&threads[i].tid, NULL, worker, &threads[i]) != 0) {
            fprintf(stderr, "larson: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&start_bar);
    long nmalloc = 0, nremote = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(threads[i].tid, NULL);
        nmalloc += threads[i].nmalloc;
        nremote += threads[i].nremote;
    }
    double secs = span_secs(&span);
    unsigned long errs = atomic_load(&bench_errors);
    printf("larson threads=%d ops=%ld secs=%.4f mops_per_s=%.2f remote_frees=%ld "
           "peak_rss_kib=%ld verified=%s\n",
           nthreads, nmalloc, secs, (double)nmalloc / secs / 1e6, nremote,
           peak_rss_kib(), errs ? "FAIL" : "ok");
    free(threads);
    return errs ? 1 : 0;
}
