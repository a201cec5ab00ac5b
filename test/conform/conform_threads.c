/*
 * Threads.  C17 7.22.3 and POSIX: the allocation functions are
 * thread-safe, a block may be freed by any thread, and a block outlives
 * the thread that allocated it (it is the program's until freed).  POSIX
 * thread-specific data destructors run at thread exit and may call malloc
 * and free; posix_spawn and system may be called from any thread while
 * others allocate (glibc's system is thread-safe since 2.29).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A block that says who made it: size and a tag in the first words, the
 * rest filled from the tag. */
struct hdr { size_t size; uint64_t tag; };

static void *make_block(size_t size, uint64_t tag) {
    if (size < sizeof(struct hdr)) size = sizeof(struct hdr);
    struct hdr *h = malloc(size);
    if (h == NULL) return NULL;
    h->size = size;
    h->tag = tag;
    unsigned char *b = (unsigned char *)(h + 1);
    size_t n = size - sizeof *h;
    if (n > 4096) { /* the ends only */
        memset(b, (int)(tag & 0xff), 2048);
        memset(b + n - 2048, (int)(tag & 0xff), 2048);
    } else {
        memset(b, (int)(tag & 0xff), n);
    }
    return h;
}

/* 0 when intact, else the first bad offset + 1. */
static size_t block_bad(const void *p, size_t size, uint64_t tag) {
    const struct hdr *h = p;
    if (size < sizeof(struct hdr)) size = sizeof(struct hdr);
    if (h->size != size || h->tag != tag) return 1;
    const unsigned char *b = (const unsigned char *)(h + 1);
    size_t n = size - sizeof *h;
    for (size_t i = 0; i < n; i++) {
        if (n > 4096 && i == 2048) i = n - 2048;
        if (b[i] != (unsigned char)(tag & 0xff)) return sizeof *h + i + 1;
    }
    return 0;
}

static size_t rand_size(uint64_t *seed) {
    uint64_t r = cf_rand(seed);
    switch (r % 16) {
    case 0: return 32768 + r % 300000;        /* large */
    case 1: return r % 64 == 1 ? (2u << 20) + r % 100000 : 1024 + r % 30000;
    default: return 16 + (r >> 8) % 1000;     /* small */
    }
}

/* ---- blocks outliving their thread ---- */

enum { LIVE_PER_THREAD = 600 };
struct live { void *p[LIVE_PER_THREAD]; size_t sz[LIVE_PER_THREAD]; uint64_t id; };

static void *alloc_and_exit(void *arg) {
    struct live *l = arg;
    uint64_t seed = l->id * 7919 + 1;
    for (int i = 0; i < LIVE_PER_THREAD; i++) {
        l->sz[i] = rand_size(&seed);
        l->p[i] = make_block(l->sz[i], l->id * 100000 + (uint64_t)i);
        /* some garbage freed by the thread itself, too */
        free(malloc(l->sz[i] / 2 + 1));
    }
    return NULL;
}

static int check_and_free(struct live *l) {
    int bad = 0;
    for (int i = 0; i < LIVE_PER_THREAD; i++) {
        if (l->p[i] == NULL) { bad++; continue; }
        if (block_bad(l->p[i], l->sz[i], l->id * 100000 + (uint64_t)i)) bad++;
        free(l->p[i]);
        l->p[i] = NULL;
    }
    return bad;
}

CF_TEST(thread_exit_blocks_freed_by_main, 60) {
    enum { T = 8 };
    static struct live l[T];
    for (int round = 0; round < 4; round++) {
        pthread_t t[T];
        for (int i = 0; i < T; i++) {
            l[i].id = (uint64_t)(round * T + i + 1);
            CF_REQUIRE(pthread_create(&t[i], NULL, alloc_and_exit, &l[i]) == 0,
                       "pthread_create");
        }
        for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
        /* the threads are gone; their blocks are not */
        for (int i = 0; i < T; i++) {
            int bad = check_and_free(&l[i]);
            CF_EXPECT(bad == 0, "round %d thread %d: %d blocks missing or "
                      "changed after the thread exited", round, i, bad);
        }
    }
    CF_HEAP_USABLE();
}

static void *free_other(void *arg) {
    return (void *)(intptr_t)check_and_free(arg);
}

/* Allocated by a thread that exits, freed by another thread created
 * after it, while more threads come and go. */
CF_TEST(thread_exit_blocks_freed_by_later_thread, 60) {
    enum { T = 6 };
    static struct live l[T];
    for (int round = 0; round < 4; round++) {
        pthread_t a[T], b[T];
        for (int i = 0; i < T; i++) {
            l[i].id = (uint64_t)(round * T + i + 1);
            CF_REQUIRE(pthread_create(&a[i], NULL, alloc_and_exit, &l[i]) == 0,
                       "pthread_create");
        }
        for (int i = 0; i < T; i++) pthread_join(a[i], NULL);
        for (int i = 0; i < T; i++)
            CF_REQUIRE(pthread_create(&b[i], NULL, free_other, &l[(i + 1) % T]) == 0,
                       "pthread_create");
        for (int i = 0; i < T; i++) {
            void *bad;
            pthread_join(b[i], &bad);
            CF_EXPECT(bad == NULL, "round %d: %ld blocks changed", round,
                      (long)(intptr_t)bad);
        }
    }
    CF_HEAP_USABLE();
}

/* Hundreds of short threads, each leaving one block to main. */
static void *leave_one(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    for (int k = 0; k < 50; k++) free(malloc(16 + (size_t)k * 40));
    return make_block(16 + i % 5000, i);
}

CF_TEST(thread_churn, 60) {
    enum { N = 400, B = 8 };
    for (int i = 0; i < N; i += B) {
        pthread_t t[B];
        for (int k = 0; k < B; k++)
            CF_REQUIRE(pthread_create(&t[k], NULL, leave_one,
                                      (void *)(uintptr_t)(i + k)) == 0, "pthread_create");
        for (int k = 0; k < B; k++) {
            void *p;
            pthread_join(t[k], &p);
            CF_REQUIRE(p != NULL, "a thread's malloc failed");
            CF_EXPECT(block_bad(p, 16 + (size_t)(i + k) % 5000, (uint64_t)(i + k)) == 0,
                      "thread %d's block changed", i + k);
            free(p);
        }
    }
}

/* ---- every thread frees every other thread's blocks ---- */

enum { SLOTS = 4096 };
static _Atomic(uintptr_t) slots[SLOTS];
static atomic_int slot_errors;
static atomic_bool stop_flag;
static unsigned ops_per_thread;

/* A slot holds a block whose header says its size and tag; the tag is the
 * block's address mixed, so a block that moved or was freed shows up. */
static void *swapper(void *arg) {
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    for (unsigned i = 0; i < ops_per_thread; i++) {
        size_t size = rand_size(&seed);
        uint64_t r = cf_rand(&seed);
        struct hdr *nb = NULL;
        if (r % 4 != 0) {
            nb = malloc(size < sizeof *nb ? sizeof *nb : size);
            if (nb == NULL) { atomic_fetch_add(&slot_errors, 1); continue; }
            nb->size = size < sizeof *nb ? sizeof *nb : size;
            nb->tag = (uintptr_t)nb ^ 0x5555;
            memset(nb + 1, (int)(nb->tag & 0xff), nb->size - sizeof *nb > 256 ? 256 : nb->size - sizeof *nb);
        }
        uintptr_t old = atomic_exchange(&slots[(r >> 16) % SLOTS], (uintptr_t)nb);
        if (old != 0) {
            struct hdr *h = (struct hdr *)old;
            if (h->tag != (old ^ 0x5555)) atomic_fetch_add(&slot_errors, 1);
            const unsigned char *b = (const unsigned char *)(h + 1);
            size_t n = h->size - sizeof *h > 256 ? 256 : h->size - sizeof *h;
            for (size_t k = 0; k < n; k++)
                if (b[k] != (unsigned char)(h->tag & 0xff)) {
                    atomic_fetch_add(&slot_errors, 1);
                    break;
                }
            free(h);
        }
    }
    return NULL;
}

CF_TEST(all_threads_free_each_others_blocks, 90) {
    enum { T = 8 };
    pthread_t t[T];
    ops_per_thread = 60000 * cf_scale();
    for (int i = 0; i < T; i++)
        CF_REQUIRE(pthread_create(&t[i], NULL, swapper, (void *)(uintptr_t)(i + 1)) == 0,
                   "pthread_create");
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    CF_EXPECT(atomic_load(&slot_errors) == 0, "%d blocks failed or changed "
              "hands corrupted", atomic_load(&slot_errors));
    for (int i = 0; i < SLOTS; i++) free((void *)atomic_load(&slots[i]));
    CF_HEAP_USABLE();
}

/* ---- producer / consumer: blocks freed by the thread that did not
 *      allocate them, in order ---- */

enum { RING = 1024 };
static struct { void *p; size_t size; uint64_t tag; } ring[RING];
static size_t ring_head, ring_tail;
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv = PTHREAD_COND_INITIALIZER;
static int producers_left;

static void *producer(void *arg) {
    uint64_t seed = (uintptr_t)arg + 99;
    for (unsigned i = 0; i < 20000 * cf_scale(); i++) {
        size_t size = rand_size(&seed);
        uint64_t tag = ((uintptr_t)arg << 32) | i;
        void *p = make_block(size, tag);
        pthread_mutex_lock(&ring_mu);
        while (ring_head - ring_tail == RING) pthread_cond_wait(&ring_cv, &ring_mu);
        ring[ring_head % RING].p = p;
        ring[ring_head % RING].size = size;
        ring[ring_head % RING].tag = tag;
        ring_head++;
        pthread_cond_broadcast(&ring_cv);
        pthread_mutex_unlock(&ring_mu);
    }
    pthread_mutex_lock(&ring_mu);
    producers_left--;
    pthread_cond_broadcast(&ring_cv);
    pthread_mutex_unlock(&ring_mu);
    return NULL;
}

static void *consumer(void *arg) {
    intptr_t bad = 0;
    for (;;) {
        pthread_mutex_lock(&ring_mu);
        while (ring_head == ring_tail && producers_left > 0)
            pthread_cond_wait(&ring_cv, &ring_mu);
        if (ring_head == ring_tail) {
            pthread_mutex_unlock(&ring_mu);
            break;
        }
        void *p = ring[ring_tail % RING].p;
        size_t size = ring[ring_tail % RING].size;
        uint64_t tag = ring[ring_tail % RING].tag;
        ring_tail++;
        pthread_cond_broadcast(&ring_cv);
        pthread_mutex_unlock(&ring_mu);
        if (p == NULL || block_bad(p, size, tag)) bad++;
        free(p);
    }
    return (void *)bad;
}

CF_TEST(producers_consumers, 90) {
    enum { P = 4, C = 4 };
    pthread_t p[P], c[C];
    producers_left = P;
    for (int i = 0; i < P; i++)
        CF_REQUIRE(pthread_create(&p[i], NULL, producer, (void *)(uintptr_t)(i + 1)) == 0, "create");
    for (int i = 0; i < C; i++)
        CF_REQUIRE(pthread_create(&c[i], NULL, consumer, NULL) == 0, "create");
    for (int i = 0; i < P; i++) pthread_join(p[i], NULL);
    long bad = 0;
    for (int i = 0; i < C; i++) {
        void *b;
        pthread_join(c[i], &b);
        bad += (long)(intptr_t)b;
    }
    CF_EXPECT(bad == 0, "%ld blocks arrived changed or missing", bad);
}

/* ---- calloc zeroes memory that another thread dirtied and freed ---- */

static void *free_list(void *arg) {
    void **v = arg;
    for (int i = 0; v[i] != NULL; i++) free(v[i]);
    return NULL;
}

CF_TEST(calloc_zero_after_cross_thread_free, 60) {
    enum { N = 3000 };
    static void *v[N + 1];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = 8 + (size_t)(i * 37 % 20000);
            v[i] = malloc(n);
            CF_REQUIRE_NOT_NULL(v[i], "malloc");
            memset(v[i], 0xff, n);
        }
        v[N] = NULL;
        pthread_t t;
        CF_REQUIRE(pthread_create(&t, NULL, free_list, v) == 0, "create");
        pthread_join(t, NULL);
        for (int i = 0; i < N; i++) {
            size_t n = 8 + (size_t)(i * 37 % 20000);
            unsigned char *z = calloc(1, n);
            CF_REQUIRE_NOT_NULL(z, "calloc");
            for (size_t k = 0; k < n; k++)
                if (z[k] != 0) {
                    cf_fail(__FILE__, __LINE__, "calloc(1, %zu): byte %zu is 0x%x",
                            n, k, z[k]);
                    return;
                }
            v[i] = z;
        }
        for (int i = 0; i < N; i++) free(v[i]);
    }
}

/* ---- thread-specific data destructors that allocate ---- */

static pthread_key_t key;
static atomic_int destructor_runs;
static _Atomic(uintptr_t) left_behind[64];

static _Thread_local int tsd_round;

/* Allocates during thread exit: some blocks freed here, a new value set
 * once (POSIX then runs the destructor again, up to
 * PTHREAD_DESTRUCTOR_ITERATIONS times), one block handed to main. */
static void destructor(void *v) {
    atomic_fetch_add(&destructor_runs, 1);
    free(v);
    void *a = malloc(100), *b = calloc(10, 1000), *c = malloc(70000);
    free(a);
    free(b);
    free(c);
    if (tsd_round++ == 0) pthread_setspecific(key, malloc(33));
    void *keep = malloc(500);
    if (keep == NULL) return;
    memset(keep, 0x3c, 500);
    for (int i = 0; i < 64; i++) {
        uintptr_t expect = 0;
        if (atomic_compare_exchange_strong(&left_behind[i], &expect, (uintptr_t)keep))
            return;
    }
    free(keep);
}

static void *tsd_thread(void *arg) {
    void *v = malloc(200 + (uintptr_t)arg);
    if (v == NULL) return (void *)1;
    pthread_setspecific(key, v);
    return NULL;
}

CF_TEST(tsd_destructor_allocates, 60) {
    CF_REQUIRE(pthread_key_create(&key, destructor) == 0, "pthread_key_create");
    for (int round = 0; round < 8; round++) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            CF_REQUIRE(pthread_create(&t[i], NULL, tsd_thread, (void *)(uintptr_t)i) == 0, "create");
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < 64; i++) {
            unsigned char *p = (unsigned char *)atomic_exchange(&left_behind[i], 0);
            if (p == NULL) continue;
            CF_EXPECT(p[0] == 0x3c && p[499] == 0x3c, "block from a destructor changed");
            free(p);
        }
    }
    CF_EXPECT(atomic_load(&destructor_runs) == 128, "destructors ran %d times, "
              "not 2 x 64", atomic_load(&destructor_runs));
    CF_HEAP_USABLE();
}

/* ---- posix_spawn and system from threads while others allocate ---- */

static void *churn(void *arg) {
    uint64_t seed = (uintptr_t)arg;
    void *keep[64] = { 0 };
    long n = 0;
    while (!atomic_load(&stop_flag)) {
        unsigned i = (unsigned)(cf_rand(&seed) % 64);
        free(keep[i]);
        keep[i] = malloc(rand_size(&seed));
        n++;
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return (void *)n;
}

struct spawn_res { int runs, failures; char why[160]; };

static void *spawner(void *arg) {
    struct spawn_res *r = arg;
    char *argv[] = { "true", NULL };
    for (int i = 0; i < 40; i++) {
        pid_t pid;
        int e = posix_spawnp(&pid, "true", NULL, NULL, argv, environ);
        if (e != 0) {
            r->failures++;
            snprintf(r->why, sizeof r->why, "posix_spawnp: %s", strerror(e));
            continue;
        }
        int st;
        if (!cf_wait_timeout(pid, &st, 20000)) {
            r->failures++;
            snprintf(r->why, sizeof r->why, "spawned true hung");
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char b[64];
            r->failures++;
            snprintf(r->why, sizeof r->why, "spawned true: %s",
                     cf_status_str(st, b, sizeof b));
        }
        r->runs++;
    }
    return NULL;
}

static void *systemer(void *arg) {
    struct spawn_res *r = arg;
    for (int i = 0; i < 15; i++) {
        int st = system("true");
        if (st != 0) {
            r->failures++;
            snprintf(r->why, sizeof r->why, "system(\"true\") returned %d (%s)",
                     st, st == -1 ? strerror(errno) : "status");
        }
        r->runs++;
    }
    return NULL;
}

CF_TEST(posix_spawn_and_system_from_threads, 120) {
    enum { W = 3, S = 3, Y = 2 };
    pthread_t w[W], s[S], y[Y];
    struct spawn_res rs[S + Y];
    memset(rs, 0, sizeof rs);
    atomic_store(&stop_flag, false);
    for (int i = 0; i < W; i++)
        CF_REQUIRE(pthread_create(&w[i], NULL, churn, (void *)(uintptr_t)(i + 5)) == 0, "create");
    for (int i = 0; i < S; i++)
        CF_REQUIRE(pthread_create(&s[i], NULL, spawner, &rs[i]) == 0, "create");
    for (int i = 0; i < Y; i++)
        CF_REQUIRE(pthread_create(&y[i], NULL, systemer, &rs[S + i]) == 0, "create");
    for (int i = 0; i < S; i++) pthread_join(s[i], NULL);
    for (int i = 0; i < Y; i++) pthread_join(y[i], NULL);
    atomic_store(&stop_flag, true);
    for (int i = 0; i < W; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < S + Y; i++)
        CF_EXPECT(rs[i].failures == 0, "%s thread %d: %d of %d failed, last: %s",
                  i < S ? "posix_spawn" : "system", i, rs[i].failures,
                  rs[i].runs, rs[i].why);
    CF_HEAP_USABLE();
}

CF_MAIN()
