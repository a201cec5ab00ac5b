/* demo: a short bundled workload, the README's main job (`make demo`).
 *
 * Two threads run, one after another, the shapes of the other benchmarks:
 * server churn with cross-thread hand-offs, producer/consumer, random sizes
 * across the tiers, growing buffers, huge blocks and short-lived threads,
 * about two seconds in all.  Every object is checked before it is freed and
 * a checksum of what was checked is printed per phase; the checksums depend
 * only on the work, so they are the same under every allocator.
 *
 * The program links nothing of hakmem.  Under LD_PRELOAD=libhakmem.so it finds
 * hak_ctl() at run time and prints a few live figures at the end; with
 * HAKMEM_CONF=stats_print:1 hakmem prints its full statistics at exit.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: demo [-t THREADS] [-s SCALE] [-d SECONDS] [THREADS [SCALE]]\n"
    "  2 threads and about 2 s at scale 1\n"
    "  -d SECONDS: repeat the phases until SECONDS have passed, with a line per\n"
    "  round (mode, allocated bytes) to watch from outside, e.g. with hakctl\n";
static double duration; /* -d: repeat the phases this long */
static volatile sig_atomic_t stop_requested; /* -d: SIGTERM/SIGINT end the run */
static void on_stop(int sig) { stop_requested = 1; }

#include "bench_util.h"

/* -d SECONDS is the demo's own option: taken out of argv before the common
 * parsing (bench_util.h).  Returns the new argc. */
static int take_duration(int argc, char **argv) {
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-d") || !strcmp(argv[i], "--duration")) && i + 1 < argc)
            duration = atof(argv[++i]);
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    return out;
}

/* ---- the workload ---- */

#define NPHASES 6
static const char *phase_name[NPHASES] = {
    "churn", "prodcons", "mixed", "realloc", "huge", "threads",
};

struct worker {
    pthread_t tid;
    int id;
    uint64_t rng;
    long ops[NPHASES];
    uint64_t sum[NPHASES];            /* of the tags checked */
    _Atomic(struct item *) inbox;     /* churn: hand-offs from the other thread */
    char pad[64];
};

static struct worker *workers;
static int nworkers;
static double scale = 1.0;
static pthread_barrier_t bar;

static void new_item(struct item *it, size_t size, uint64_t *rng)
{
    it->size = size;
    it->tag = rng_next(rng);
    it->p = xmalloc(size);
    stamp(it->p, size, it->tag);
}

static void free_item(struct item *it, struct worker *w, int phase)
{
    check(it->p, it->size, it->tag);
    w->sum[phase] += it->tag;
    free(it->p);
}

/* churn: a window of 2000 objects (8-1000 B) per thread, random replacement;
 * every 32nd replacement hands one object to the other thread instead. */
static void phase_churn(struct worker *w)
{
    enum { WIN = 2000 };
    struct item *win = xmalloc(WIN * sizeof *win);
    struct worker *peer = &workers[(w->id + 1) % nworkers];
    long n = (long)(6e6 * scale) / nworkers;
    for (int i = 0; i < WIN; i++)
        new_item(&win[i], rng_range(&w->rng, 8, 1000), &w->rng);
    for (long op = 0; op < n; op++) {
        struct item *it = &win[rng_next(&w->rng) % WIN];
        if (op % 32 == 31) {
            struct item *box = xmalloc(sizeof *box);
            *box = *it;
            box = atomic_exchange(&peer->inbox, box);
            if (box != NULL) {          /* the peer had not taken the last one */
                free_item(box, w, 0);
                free(box);
            }
        } else
            free_item(it, w, 0);
        new_item(it, rng_range(&w->rng, 8, 1000), &w->rng);
        struct item *got = atomic_exchange(&w->inbox, NULL);
        if (got != NULL) {
            free_item(got, w, 0);
            free(got);
        }
        w->ops[0]++;
    }
    pthread_barrier_wait(&bar);
    struct item *got = atomic_exchange(&w->inbox, NULL);
    if (got != NULL) {
        free_item(got, w, 0);
        free(got);
    }
    for (int i = 0; i < WIN; i++)
        free_item(&win[i], w, 0);
    free(win);
}

/* prodcons: even threads produce into a ring, odd threads free from it
 * (a mutex ring: correct for any number of threads; a lone thread consumes
 * what it produced). */
#define RING 512
static struct item ring[RING];
static unsigned long ring_head, ring_tail;
static int producers_left;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ring_not_empty = PTHREAD_COND_INITIALIZER;

static void phase_prodcons(struct worker *w)
{
    long n = (long)(3e6 * scale) / ((nworkers + 1) / 2);
    if (w->id % 2 == 0) {
        for (long i = 0; i < n; i++) {
            struct item it;
            new_item(&it, rng_range(&w->rng, 16, 512), &w->rng);
            pthread_mutex_lock(&ring_lock);
            while (ring_tail - ring_head == RING)
                pthread_cond_wait(&ring_not_full, &ring_lock);
            ring[ring_tail++ % RING] = it;
            pthread_cond_signal(&ring_not_empty);
            if (nworkers == 1) {
                it = ring[ring_head++ % RING];
                free_item(&it, w, 1);
            }
            pthread_mutex_unlock(&ring_lock);
            w->ops[1]++;
        }
        pthread_mutex_lock(&ring_lock);
        producers_left--;
        pthread_cond_broadcast(&ring_not_empty);
        pthread_mutex_unlock(&ring_lock);
        return;
    }
    pthread_mutex_lock(&ring_lock);
    for (;;) {
        while (ring_head == ring_tail && producers_left > 0)
            pthread_cond_wait(&ring_not_empty, &ring_lock);
        if (ring_head == ring_tail)
            break;
        struct item it = ring[ring_head++ % RING];
        pthread_cond_signal(&ring_not_full);
        pthread_mutex_unlock(&ring_lock);
        free_item(&it, w, 1);       /* outside the lock: the allocator's work */
        pthread_mutex_lock(&ring_lock);
    }
    pthread_mutex_unlock(&ring_lock);
}

/* mixed: 800 slots per thread, 85% tiny, 14% mid, 1% large. */
static void phase_mixed(struct worker *w)
{
    enum { SLOTS = 800 };
    struct item *s = xmalloc(SLOTS * sizeof *s);
    long n = (long)(3e6 * scale) / nworkers;
    for (int i = 0; i < SLOTS; i++)
        new_item(&s[i], rng_range(&w->rng, 8, 1024), &w->rng);
    for (long op = 0; op < n; op++) {
        struct item *it = &s[rng_next(&w->rng) % SLOTS];
        unsigned r = (unsigned)(rng_next(&w->rng) % 100);
        size_t size = r < 85   ? rng_range(&w->rng, 8, 1024)
                      : r < 99 ? rng_range(&w->rng, 1025, 32 << 10)
                               : rng_range(&w->rng, (32 << 10) + 1, 1 << 20);
        free_item(it, w, 2);
        new_item(it, size, &w->rng);
        w->ops[2]++;
    }
    for (int i = 0; i < SLOTS; i++)
        free_item(&s[i], w, 2);
    free(s);
}

/* realloc: vectors doubled from 16 B to 16 MiB, strings grown 1-64 B at a time. */
static void phase_realloc(struct worker *w)
{
    long rounds = (long)(60 * scale) / nworkers + 1;
    for (long r = 0; r < rounds; r++) {
        uint64_t tag = rng_next(&w->rng);
        size_t n = 16;
        unsigned char *v = xmalloc(n);
        memcpy(v, &tag, 8);
        while (n < (16u << 20)) {
            v = realloc(v, n * 2);
            if (v == NULL)
                exit(1);
            uint64_t first;
            memcpy(&first, v, 8);
            check(&first, 8, tag);
            for (size_t off = n; off < 2 * n; off += 4096)
                v[off] = (unsigned char)off;
            n *= 2;
            w->ops[3]++;
        }
        w->sum[3] += tag;
        free(v);
        size_t len = 0;
        unsigned char *str = NULL;
        while (len < (16u << 10)) {
            size_t add = rng_range(&w->rng, 1, 64);
            str = realloc(str, len + add);
            if (str == NULL)
                exit(1);
            for (size_t i = len; i < len + add; i++)
                str[i] = (unsigned char)(i * 13 + tag);
            len += add;
            w->ops[3]++;
        }
        for (size_t i = 0; i < len; i++)
            if (str[i] != (unsigned char)(i * 13 + tag)) {
                check(str, 8, ~(uint64_t)0);       /* counts the error */
                break;
            }
        w->sum[3] += len;
        free(str);
    }
}

/* huge: 2 MiB and 8 MiB blocks, every page touched. */
static void phase_huge(struct worker *w)
{
    long n = (long)(300 * scale) / nworkers + 1;
    for (long i = 0; i < 2 * n; i++) {
        size_t size = i % 4 == 3 ? 8u << 20 : 2u << 20;
        struct item it;
        new_item(&it, size, &w->rng);
        for (size_t off = 4096; off < size - 4096; off += 4096)
            ((unsigned char *)it.p)[off] = 1;
        free_item(&it, w, 4);
        w->ops[4]++;
    }
}

/* threads: waves of short-lived threads that allocate, free, and leave one
 * object behind for their creator. */
static void *short_lived(void *arg)
{
    struct item *out = arg;
    uint64_t rng = out->tag;
    struct item tmp[32];
    for (int i = 0; i < 32; i++)
        new_item(&tmp[i], rng_range(&rng, 16, 2048), &rng);
    for (int i = 1; i < 32; i++) {
        check(tmp[i].p, tmp[i].size, tmp[i].tag);
        free(tmp[i].p);
    }
    *out = tmp[0];
    return NULL;
}

static void phase_threads(struct worker *w)
{
    long n = (long)(2000 * scale) / nworkers + 1;
    for (long i = 0; i < n; i++) {
        struct item it = { .tag = rng_next(&w->rng) };
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, &it) != 0) {
            fprintf(stderr, "demo: pthread_create failed\n");
            exit(1);
        }
        pthread_join(t, NULL);
        free_item(&it, w, 5);
        w->ops[5]++;
    }
}

static struct span phase_span[NPHASES] = {
    SPAN_INIT, SPAN_INIT, SPAN_INIT, SPAN_INIT, SPAN_INIT, SPAN_INIT,
};

static void *run(void *arg)
{
    struct worker *w = arg;
    void (*phases[NPHASES])(struct worker *) = {
        phase_churn, phase_prodcons, phase_mixed, phase_realloc, phase_huge, phase_threads,
    };
    for (int p = 0; p < NPHASES; p++) {
        pthread_barrier_wait(&bar);
        span_begin(&phase_span[p]);
        phases[p](w);
        span_end(&phase_span[p]);
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

/* ---- hakmem, if it is the allocator: found at run time, not linked ---- */

typedef int (*hak_ctl_fn)(const char *, void *, size_t *, void *, size_t);

static void print_hakmem_figures(void)
{
    hak_ctl_fn ctl = (hak_ctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "hak_ctl");
    if (ctl == NULL) {
        printf("allocator: not hakmem (no hak_ctl symbol); run with "
               "LD_PRELOAD=lib/libhakmem.so to see its figures\n");
        return;
    }
    const char *version = NULL, *mode = NULL;
    size_t len = sizeof version;
    uint64_t epoch = 1;
    ctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    if (ctl("version", &version, &len, NULL, 0) != 0)
        version = "?";
    len = sizeof mode;
    if (ctl("config.mode", &mode, &len, NULL, 0) != 0)
        mode = NULL;
    printf("allocator: hakmem %s%s%s; at the end of the run:\n", version,
           mode ? ", mode " : "", mode ? mode : "");
    static const char *keys[] = {
        "stats.allocated", "stats.active", "stats.resident", "stats.mapped",
        "stats.metadata", "stats.retained",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t v = 0;
        len = sizeof v;
        if (ctl(keys[i], &v, &len, NULL, 0) == 0)
            printf("  %-16s %10.1f KiB\n", keys[i], (double)v / 1024.0);
    }
}

/* -d: one line per round, from the allocator's own view when it is hakmem. */
static void print_progress(int round, double secs)
{
    hak_ctl_fn ctl = (hak_ctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "hak_ctl");
    const char *mode = NULL;
    size_t allocated = 0, len = sizeof mode;
    if (ctl != NULL && ctl("config.mode", &mode, &len, NULL, 0) != 0)
        mode = NULL;
    len = sizeof allocated;
    if (ctl != NULL)
        ctl("stats.allocated", &allocated, &len, NULL, 0);
    printf("demo: round %d done at %.1f s (pid %d)%s%s", round, secs, (int)getpid(),
           mode ? ", mode " : "", mode ? mode : "");
    if (ctl != NULL)
        printf(", allocated %.1f KiB", (double)allocated / 1024.0);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    nworkers = 2;
    argc = take_duration(argc, argv);
    parse_args(argc, argv, &nworkers, &scale);
    workers = calloc((size_t)nworkers, sizeof *workers);
    if (workers == NULL)
        return 1;
    producers_left = (nworkers + 1) / 2;
    pthread_barrier_init(&bar, NULL, (unsigned)nworkers);
    printf("demo: %d threads, scale %g: each phase runs on all threads, every object "
           "is checked before it is freed\n", nworkers, scale);
    double t0 = now_sec();
    for (int i = 0; i < nworkers; i++) {
        workers[i].id = i;
        workers[i].rng = 0xde5011ull * (uint64_t)(i + 1);
        atomic_init(&workers[i].inbox, NULL);
    }
    int round = 0;
    if (duration > 0) { /* a stop ends the round, then the usual report */
        signal(SIGTERM, on_stop);
        signal(SIGINT, on_stop);
    }
    do {
        producers_left = (nworkers + 1) / 2;
        for (int i = 1; i < nworkers; i++)
            if (pthread_create(&workers[i].tid, NULL, run, &workers[i]) != 0) {
                fprintf(stderr, "demo: pthread_create failed\n");
                return 1;
            }
        run(&workers[0]);
        for (int i = 1; i < nworkers; i++)
            pthread_join(workers[i].tid, NULL);
        if (duration > 0)
            print_progress(++round, now_sec() - t0);
    } while (duration > 0 && !stop_requested && now_sec() - t0 < duration);
    double secs = now_sec() - t0;

    static const char *what[NPHASES] = {
        "object replacements (1 in 32 freed by the other thread)",
        "objects produced by one thread, freed by another",
        "replacements across tiny/mid/large sizes",
        "reallocs (vectors to 16 MiB, strings by small appends)",
        "huge blocks (2 and 8 MiB, every page touched)",
        "short-lived threads",
    };
    long ops = 0;
    for (int p = 0; p < NPHASES; p++) {
        long n = 0;
        uint64_t sum = 0;
        for (int i = 0; i < nworkers; i++) {
            n += workers[i].ops[p];
            sum += workers[i].sum[p];
        }
        ops += n;
        printf("  %-9s %8ld %-56s %6.3f s  checksum %016llx\n", phase_name[p], n, what[p],
               span_secs(&phase_span[p]), (unsigned long long)sum);
    }
    unsigned long errs = atomic_load(&bench_errors);
    print_hakmem_figures();
    printf("demo threads=%d ops=%ld secs=%.4f peak_rss_kib=%ld verified=%s\n", nworkers, ops, secs,
           peak_rss_kib(), errs ? "FAIL" : "ok");
    fflush(stdout);     /* before any statistics the allocator prints at exit */
    free(workers);
    return errs ? 1 : 0;
}
