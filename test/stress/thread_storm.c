/*
 * Thread churn at volume: 10,000 short-lived threads at `make stress` scale
 * (HAKMEM_TEST_SCALE >= 10; about 1,000 at scale 1), up to 64 alive at any
 * moment, created as soon as others end.  Each allocates over every tier,
 * frees part of it, hands part to whichever thread comes next (through a
 * shared pool, so blocks outlive their owner and are freed remotely), and
 * frees some of what earlier threads left.  Some threads are detached, some
 * leave through pthread_exit from deep in their stack, some turn their
 * thread cache off or move to another arena first.  At the end every block
 * has been verified, the arenas' thread counts are back where they started,
 * and the mapped total is back near the start after purging.
 */
#include "harness.h"
#include "stress_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIVE 64
#define POOL_CAP 4096
#define PER_THREAD 16

struct block {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

/* Shared state, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct block pool[POOL_CAP];
static unsigned pool_n;
static unsigned live;
static pthread_t zombies[MAX_LIVE];
static unsigned nzombies;
static hk_errs errs;
static atomic_ullong verified, allocated;

struct targ {
    uint64_t id;
    int detached;
};

static size_t storm_size(hk_rng *r) {
    size_t k = hk_below(r, 512);
    if (k == 0) return hk_range(r, HK_LARGE_MAX + 1, 3 * HK_LARGE_MAX);
    if (k < 24) return hk_range(r, HK_MID_MAX + 1, HK_LARGE_MAX);
    if (k < 96) return hk_range(r, HK_TINY_MAX + 1, HK_MID_MAX);
    return hk_range(r, 1, HK_TINY_MAX);
}

static void take_and_free(hk_rng *r) {
    struct block got[8];
    unsigned n = 0;
    pthread_mutex_lock(&mu);
    unsigned want = (unsigned)hk_below(r, 9);
    while (n < want && pool_n > 0) got[n++] = pool[--pool_n];
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < n; i++) {
        if (hk_verify(&errs, "pooled block", got[i].p, got[i].n, got[i].tag))
            atomic_fetch_add(&verified, 1);
        hak_free(got[i].p);
    }
}

/* Ends the thread's bookkeeping: a joinable thread queues itself for the
 * main thread's join. */
static void leave(struct targ *a) {
    pthread_mutex_lock(&mu);
    if (!a->detached) zombies[nzombies++] = pthread_self();
    live--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    free(a);
}

static volatile char exit_sink;
static volatile int exit_floor; /* 0 */
__attribute__((noinline)) static void exit_deep(struct targ *a, int depth) {
    volatile char pad[256];
    pad[depth & 255] = (char)depth;
    if (depth < 0) return; /* never: keeps -Winfinite-recursion quiet */
    if (depth <= exit_floor) {
        leave(a);
        pthread_exit(NULL);
    }
    exit_deep(a, depth - 1);
    exit_sink = pad[depth & 255]; /* not a tail call: the frames stay */
}

static void *storm_thread(void *v) {
    struct targ *a = v;
    hk_rng r;
    hk_rng_seed(&r, a->id);
    unsigned style = (unsigned)(a->id % 8);
    if (style == 3) {
        bool off = false;
        hak_ctl("thread.tcache.enabled", NULL, NULL, &off, sizeof off);
    } else if (style == 5) {
        unsigned n = 0, arena;
        size_t len = sizeof n;
        if (hak_ctl("arenas.narenas", &n, &len, NULL, 0) == 0 && n > 1) {
            arena = (unsigned)(a->id % n);
            hak_ctl("thread.arena", NULL, NULL, &arena, sizeof arena);
        }
    }
    struct block mine[PER_THREAD];
    unsigned nmine = 0;
    for (unsigned i = 0; i < PER_THREAD; i++) {
        struct block b = { .n = storm_size(&r), .tag = hk_mix64(a->id * 64 + i) };
        b.p = hak_malloc(b.n);
        if (!hk_check_new(&errs, "storm block", b.p, b.n)) {
            hak_free(b.p);
            continue;
        }
        hk_fill(b.p, b.n, b.tag);
        mine[nmine++] = b;
        atomic_fetch_add(&allocated, 1);
    }
    take_and_free(&r);
    /* free half here, hand the rest on */
    for (unsigned i = 0; i < nmine; i++) {
        if ((hk_rand(&r) & 1) == 0) {
            if (hk_verify(&errs, "own block", mine[i].p, mine[i].n, mine[i].tag))
                atomic_fetch_add(&verified, 1);
            hak_free(mine[i].p);
            continue;
        }
        pthread_mutex_lock(&mu);
        if (pool_n < POOL_CAP) {
            pool[pool_n++] = mine[i];
            mine[i].p = NULL;
        }
        pthread_mutex_unlock(&mu);
        if (mine[i].p != NULL) { /* pool full */
            if (hk_verify(&errs, "own block", mine[i].p, mine[i].n, mine[i].tag))
                atomic_fetch_add(&verified, 1);
            hak_free(mine[i].p);
        }
    }
    if (style == 6) exit_deep(a, 8);
    leave(a);
    return NULL;
}

static unsigned arena_threads(void) {
    unsigned n = 0, sum = 0;
    size_t len = sizeof n;
    if (hak_ctl("arenas.narenas", &n, &len, NULL, 0) != 0) return 0;
    for (unsigned i = 0; i < n; i++) {
        char name[48];
        unsigned t = 0;
        len = sizeof t;
        snprintf(name, sizeof name, "arena.%u.nthreads", i);
        if (hak_ctl(name, &t, &len, NULL, 0) == 0) sum += t;
    }
    return sum;
}

static void join_zombies_locked(void) {
    while (nzombies > 0) {
        pthread_t t = zombies[--nzombies];
        pthread_mutex_unlock(&mu);
        pthread_join(t, NULL);
        pthread_mutex_lock(&mu);
    }
}

TEST(thread_storm) {
    unsigned total = hk_test_scale() >= 10 ? 10000 : 1000;
    total /= hk_storm_san_div();
    hk_errs_init(&errs);
    hak_free(hak_malloc(1));
    unsigned threads0 = arena_threads();
    size_t mapped0 = hk_test_mapped_after_purge();
    pthread_attr_t attr[2];
    for (int d = 0; d < 2; d++) {
        pthread_attr_init(&attr[d]);
        pthread_attr_setstacksize(&attr[d], 128 * 1024);
        pthread_attr_setdetachstate(&attr[d], d ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
    }
    unsigned created = 0, create_failed = 0;
    pthread_mutex_lock(&mu);
    while (created < total) {
        join_zombies_locked();
        if (live >= MAX_LIVE) {
            pthread_cond_wait(&cv, &mu);
            continue;
        }
        struct targ *a = malloc(sizeof *a);
        if (a == NULL) break;
        a->id = created + 1;
        a->detached = created % 4 == 1;
        pthread_t t;
        live++;
        pthread_mutex_unlock(&mu);
        int rc = pthread_create(&t, &attr[a->detached], storm_thread, a);
        pthread_mutex_lock(&mu);
        if (rc != 0) {
            live--;
            free(a);
            if (++create_failed > 100) break;
            pthread_mutex_unlock(&mu);
            usleep(1000); /* out of threads for a moment: let some end */
            pthread_mutex_lock(&mu);
            continue;
        }
        created++;
    }
    while (live > 0 || nzombies > 0) {
        join_zombies_locked();
        if (live > 0) pthread_cond_wait(&cv, &mu);
    }
    /* the last blocks, handed to nobody */
    while (pool_n > 0) {
        struct block b = pool[--pool_n];
        if (hk_verify(&errs, "last pooled block", b.p, b.n, b.tag)) atomic_fetch_add(&verified, 1);
        hak_free(b.p);
    }
    pthread_mutex_unlock(&mu);
    for (int d = 0; d < 2; d++) pthread_attr_destroy(&attr[d]);

    /* Detached threads run their heap's exit hook after leave(): give the
     * last of them a moment. */
    unsigned threads1 = arena_threads();
    for (int i = 0; i < 200 && threads1 > threads0; i++) {
        usleep(5000);
        threads1 = arena_threads();
    }
    size_t mapped1 = hk_test_mapped_after_purge();
    HK_ERRS_REPORT(&errs);
    hk_test_log("%u threads (%u create failures), %llu blocks, mapped %zu KiB before, %zu KiB after",
                created, create_failed, (unsigned long long)atomic_load(&allocated),
                mapped0 >> 10, mapped1 >> 10);
    EXPECT_EQ_U(created, total, "every thread was created");
    EXPECT_EQ_U(atomic_load(&verified), atomic_load(&allocated),
                "every block was verified and freed");
    EXPECT_LE_U(threads1, threads0, "arenas' thread counts back to the start");
    EXPECT_LE_U(mapped1, mapped0 + (size_t)16 * 1024 * 1024,
                "mapped memory back near the start after freeing and purging");
}

TEST_MAIN()
