/*
 * Signals delivered while other threads are inside malloc: worker threads
 * hammer malloc/free/realloc/memalign over every tier while the main thread
 * sends them SIGUSR1 with pthread_kill thousands of times.  The handler does
 * async-signal-safe work only (it counts, and checks errno is preserved).
 * Nothing may crash or deadlock, and every block keeps its contents.
 */
#include "harness.h"
#include "stress_common.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Time budget of one storm: 1 s per unit of scale (a loaded 2-core
 * machine delivers a signal to a busy thread only when it is scheduled). */
static uint64_t budget_ms(void) { return 1000ull * hk_test_scale(); }

static atomic_ulong handled;
static atomic_ulong errno_clobbered;
static _Thread_local atomic_ulong *tls_got; /* the worker's own count */

static void on_usr1(int sig) {
    int e = errno;
    (void)sig;
    atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
    if (tls_got != NULL) atomic_fetch_add_explicit(tls_got, 1, memory_order_relaxed);
    errno = EDOM; /* a handler that changes errno and puts it back */
    errno = e;
    if (errno != e) atomic_fetch_add_explicit(&errno_clobbered, 1, memory_order_relaxed);
}

struct worker {
    unsigned id;
    atomic_int *stop;
    hk_errs *errs;
    uint64_t ops;
    atomic_ulong got; /* signals this worker handled */
};

enum { SLOTS = 96 };
struct slot { unsigned char *p; size_t n; uint64_t tag; };

static void *allocate(hk_rng *r, size_t n) {
    switch (hk_below(r, 8)) {
    case 0: return hak_calloc(1, n);
    case 1: {
        void *p = NULL;
        return hak_posix_memalign(&p, (size_t)64 << hk_below(r, 6), n) == 0 ? p : NULL;
    }
    case 2: return hak_aligned_alloc(256, (n + 255) & ~(size_t)255);
    default: return hak_malloc(n);
    }
}

static void *worker_main(void *v) {
    struct worker *w = v;
    struct slot s[SLOTS];
    hk_rng r;
    memset(s, 0, sizeof s);
    hk_rng_seed(&r, 0x5160 + w->id);
    tls_got = &w->got;
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        struct slot *b = &s[hk_below(&r, SLOTS)];
        if (b->p != NULL) {
            hk_verify(w->errs, "signal storm", b->p, b->n, b->tag);
            if (hk_below(&r, 4) == 0) {
                /* resize, keeping the common prefix */
                size_t m = hk_random_size(&r, hk_below(&r, 32) == 0);
                if (m == 0) m = 1;
                unsigned char *q = hak_realloc(b->p, m);
                if (q == NULL) {
                    HK_ERR(w->errs, "realloc(%zu) failed: errno %d", m, errno);
                    continue;
                }
                size_t keep = hk_min(b->n, m);
                if (hk_check_prefix(q, b->n, keep, b->tag) != keep)
                    HK_ERR(w->errs, "realloc %zu -> %zu lost contents", b->n, m);
                b->p = q;
                b->n = m;
                hk_fill(q, m, b->tag);
            } else {
                hak_free(b->p);
                b->p = NULL;
            }
        } else {
            size_t n = hk_random_size(&r, hk_below(&r, 32) == 0);
            unsigned char *p = allocate(&r, n);
            if (!hk_check_new(w->errs, "signal storm", p, n)) {
                hak_free(p);
                continue;
            }
            b->p = p;
            b->n = n;
            b->tag = hk_mix64(w->ops ^ ((uint64_t)w->id << 40));
            hk_fill(p, n, b->tag);
        }
        w->ops++;
    }
    for (unsigned k = 0; k < SLOTS; k++) {
        if (s[k].p == NULL) continue;
        hk_verify(w->errs, "signal storm final", s[k].p, s[k].n, s[k].tag);
        hak_free(s[k].p);
    }
    return NULL;
}

/* Sends nsignals SIGUSR1s round-robin to nt hammering threads. */
static void storm(unsigned nt, unsigned nsignals, int sa_flags) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = sa_flags;
    sigemptyset(&sa.sa_mask);
    REQUIRE_EQ_U(sigaction(SIGUSR1, &sa, &old), 0, "sigaction");
    atomic_store(&handled, 0);
    atomic_store(&errno_clobbered, 0);

    atomic_int stop;
    atomic_init(&stop, 0);
    hk_errs errs;
    hk_errs_init(&errs);
    pthread_t *th = calloc(nt, sizeof *th);
    struct worker *w = calloc(nt, sizeof *w);
    REQUIRE_TRUE(th != NULL && w != NULL, "calloc");
    unsigned started = 0;
    for (unsigned i = 0; i < nt; i++) {
        w[i] = (struct worker){ .id = i, .stop = &stop, .errs = &errs };
        atomic_init(&w[i].got, 0);
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) break;
        started++;
    }
    /* A worker gets its next signal once it has handled the previous one
     * (a standard signal sent while one is pending merges with it); the
     * storm ends after nsignals or the time budget, whichever comes first. */
    unsigned sent = 0, failed = 0;
    unsigned long last[nt];
    uint64_t t0 = hk_test_now_ms(), budget = budget_ms();
    for (unsigned i = 0; i < started; i++) last[i] = (unsigned long)-1;
    struct timespec pause = { 0, 10 * 1000 };
    while (sent < nsignals && hk_test_now_ms() - t0 < budget) {
        for (unsigned i = 0; i < started && sent < nsignals; i++) {
            unsigned long g = atomic_load(&w[i].got);
            if (g == last[i]) continue; /* still pending */
            last[i] = g;
            if (pthread_kill(th[i], SIGUSR1) == 0) sent++;
            else failed++;
        }
        nanosleep(&pause, NULL);
    }
    /* let the last ones land */
    for (unsigned k = 0; k < 200 && atomic_load(&handled) < sent; k++) nanosleep(&pause, NULL);
    atomic_store(&stop, 1);
    uint64_t ops = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
    }
    sigaction(SIGUSR1, &old, NULL);
    free(th);
    free(w);
    HK_ERRS_REPORT(&errs);
    hk_test_log("%u threads, %u signals sent, %lu handled, %llu allocator operations",
                started, sent, atomic_load(&handled), (unsigned long long)ops);
    EXPECT_EQ_U(started, nt, "every worker started");
    EXPECT_EQ_U(failed, 0, "every pthread_kill succeeded");
    /* Standard signals coalesce while pending, so some may merge. */
    EXPECT_GE_U(atomic_load(&handled), 1, "the handler ran");
    EXPECT_EQ_U(atomic_load(&errno_clobbered), 0, "errno intact in the handler");
    EXPECT_GE_U(ops, nt, "the workers made progress");
}

TEST(signal_storm_restart) {
    storm(hk_test_threads(), hk_storm_scaled(20000), SA_RESTART);
}

TEST(signal_storm_no_restart) {
    /* without SA_RESTART, interrupted syscalls inside the allocator (futex
     * waits, madvise) must be retried or harmless */
    storm(hk_test_threads(), hk_storm_scaled(20000), 0);
}

/* The main thread allocates too while a helper thread signals it, so the
 * signal interrupts the very thread whose heap is in use. */
static atomic_int signaller_stop;
static void *signaller(void *v) {
    pthread_t target = *(pthread_t *)v;
    struct timespec pause = { 0, 5 * 1000 };
    while (!atomic_load_explicit(&signaller_stop, memory_order_relaxed)) {
        pthread_kill(target, SIGUSR1);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

TEST(signal_storm_into_the_allocating_thread) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    REQUIRE_EQ_U(sigaction(SIGUSR1, &sa, &old), 0, "sigaction");
    atomic_store(&handled, 0);
    atomic_store(&signaller_stop, 0);
    pthread_t self = pthread_self(), sig_th;
    REQUIRE_EQ_U(pthread_create(&sig_th, NULL, signaller, &self), 0, "pthread_create");
    hk_errs errs;
    hk_errs_init(&errs);
    struct slot s[SLOTS];
    memset(s, 0, sizeof s);
    hk_rng r;
    hk_rng_seed(&r, 0xA110C);
    unsigned iters = hk_storm_scaled(200000);
    for (unsigned i = 0; i < iters; i++) {
        struct slot *b = &s[hk_below(&r, SLOTS)];
        if (b->p) {
            hk_verify(&errs, "own thread", b->p, b->n, b->tag);
            hak_free(b->p);
            b->p = NULL;
        } else {
            b->n = hk_random_size(&r, hk_below(&r, 64) == 0);
            b->p = allocate(&r, b->n);
            if (!hk_check_new(&errs, "own thread", b->p, b->n)) {
                hak_free(b->p);
                b->p = NULL;
                continue;
            }
            b->tag = hk_mix64(i);
            hk_fill(b->p, b->n, b->tag);
        }
    }
    atomic_store(&signaller_stop, 1);
    pthread_join(sig_th, NULL);
    for (unsigned k = 0; k < SLOTS; k++) {
        if (s[k].p == NULL) continue;
        hk_verify(&errs, "own thread final", s[k].p, s[k].n, s[k].tag);
        hak_free(s[k].p);
    }
    sigaction(SIGUSR1, &old, NULL);
    HK_ERRS_REPORT(&errs);
    hk_test_log("%u operations, %lu signals handled", iters, atomic_load(&handled));
    EXPECT_GE_U(atomic_load(&handled), 1, "the handler ran");
}

int main(void) {
    alarm(120); /* a deadlock ends as a crash the runner counts */
    return hk_test_main();
}
