/* Statistics are exact: blocks of one class allocated in several threads
 * and freed by other threads change nmalloc, ndalloc, curblocks and
 * nremote_frees by exactly the expected amounts (deltas from a baseline, so
 * allocations by the harness or libc do not matter; the classes used here
 * are mid classes nothing else in this program allocates); after all threads
 * have joined nmalloc - ndalloc == curblocks for every class and the leaves
 * agree with the struct; stats.allocated is the sum of the classes' live
 * bytes plus the huge bytes; thread.allocated / thread.deallocated count the
 * calling thread's blocks at class size. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

static const char *const tiers[3] = {"tiny", "mid", "large"};

static int rd(const char *name, void *v, size_t len) {
    size_t l = len;
    int rc = hak_ctl(name, v, &l, NULL, 0);
    if (rc == 0 && l != len) return -1;
    return rc;
}

static uint64_t rd_u64(const char *name) {
    uint64_t v = 0;
    if (rd(name, &v, sizeof v) != 0) return UINT64_MAX;
    return v;
}

static unsigned nclasses(unsigned t) {
    char name[32];
    unsigned n = 0;
    snprintf(name, sizeof name, "%s.nclasses", tiers[t]);
    return rd(name, &n, sizeof n) == 0 ? n : 0;
}

static bool find_class(size_t size, unsigned *tier, unsigned *idx) {
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = nclasses(t);
        for (unsigned i = 0; i < n; i++) {
            char name[64];
            size_t s = 0;
            snprintf(name, sizeof name, "%s.class.%u.size", tiers[t], i);
            if (rd(name, &s, sizeof s) != 0) return false;
            if (s == size) {
                *tier = t;
                *idx = i;
                return true;
            }
        }
    }
    return false;
}

static int class_stats(unsigned tier, unsigned idx, struct hak_class_stats *st) {
    char name[64];
    snprintf(name, sizeof name, "%s.class.%u.stats", tiers[tier], idx);
    return rd(name, st, sizeof *st);
}

static int bump_epoch(uint64_t *before, uint64_t *after) {
    uint64_t one = 1;
    size_t l = sizeof *before;
    int rc = hak_ctl("epoch", before, &l, &one, sizeof one);
    if (rc != 0) return rc;
    return rd("epoch", after, sizeof *after);
}

/* Exact per-thread byte counts must not see anything the allocator itself
 * might do on a slow path: the shared-memory stats page (created after a
 * delay, possibly through libc calls) is turned off for this program. */
static void quiet_stats_page(void) {
    bool off = false;
    hak_ctl("config.features.stats_page", NULL, NULL, &off, sizeof off);
}

/* A start barrier made of a mutex and a condition variable. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned n, waiting, gen;
} barrier;

static void barrier_init(barrier *b, unsigned n) {
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->n = n;
    b->waiting = 0;
    b->gen = 0;
}

static void barrier_wait(barrier *b) {
    pthread_mutex_lock(&b->mu);
    unsigned gen = b->gen;
    if (++b->waiting == b->n) {
        b->waiting = 0;
        b->gen++;
        pthread_cond_broadcast(&b->cv);
    } else {
        while (gen == b->gen) pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
}

static void barrier_destroy(barrier *b) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

/* ---------------- cross-thread counts ---------------- */

enum { XT_THREADS = 4, XT_BLOCKS = 1000 };
#define XT_SIZE 5120

struct xt {
    barrier allocated, checked, freed;
    void *blocks[XT_THREADS][XT_BLOCKS];
    int bad;
    uint64_t alloc_delta[XT_THREADS], dealloc_delta[XT_THREADS];
};

struct xt_arg {
    struct xt *x;
    unsigned id;
};

static void *xt_worker(void *p) {
    struct xt_arg *a = p;
    struct xt *x = a->x;
    uint64_t al0 = rd_u64("thread.allocated"), de0 = rd_u64("thread.deallocated");
    for (unsigned i = 0; i < XT_BLOCKS; i++) {
        unsigned char *b = hak_malloc(XT_SIZE);
        if (b == NULL) {
            __atomic_store_n(&x->bad, 1, __ATOMIC_RELAXED);
            continue;
        }
        b[0] = (unsigned char)a->id;
        b[XT_SIZE - 1] = (unsigned char)i;
        x->blocks[a->id][i] = b;
    }
    uint64_t al1 = rd_u64("thread.allocated");
    barrier_wait(&x->allocated); /* the main thread reads the counters */
    barrier_wait(&x->checked);
    /* Free the blocks of the next thread: every free is a remote one. */
    unsigned victim = (a->id + 1) % XT_THREADS;
    for (unsigned i = 0; i < XT_BLOCKS; i++) {
        unsigned char *b = x->blocks[victim][i];
        if (b == NULL) continue;
        if (b[0] != (unsigned char)victim || b[XT_SIZE - 1] != (unsigned char)i)
            __atomic_store_n(&x->bad, 2, __ATOMIC_RELAXED);
        hak_free(b);
    }
    uint64_t de1 = rd_u64("thread.deallocated");
    barrier_wait(&x->freed); /* owners stay alive until every free is done */
    x->alloc_delta[a->id] = al1 - al0;
    x->dealloc_delta[a->id] = de1 - de0;
    return NULL;
}

TEST(stats_cross_thread_frees_are_counted_exactly) {
    quiet_stats_page();
    unsigned tier, idx;
    REQUIRE_TRUE(find_class(XT_SIZE, &tier, &idx), "a 5120-byte class");
    static struct xt x;
    memset(&x, 0, sizeof x);
    barrier_init(&x.allocated, XT_THREADS + 1);
    barrier_init(&x.checked, XT_THREADS + 1);
    barrier_init(&x.freed, XT_THREADS);
    struct hak_class_stats s0, s1, s2;
    REQUIRE_EQ_U(class_stats(tier, idx, &s0), 0, "baseline");

    pthread_t th[XT_THREADS];
    struct xt_arg args[XT_THREADS];
    for (unsigned t = 0; t < XT_THREADS; t++) {
        args[t] = (struct xt_arg){&x, t};
        REQUIRE_EQ_U(pthread_create(&th[t], NULL, xt_worker, &args[t]), 0, "pthread_create");
    }
    barrier_wait(&x.allocated);
    int rc1 = class_stats(tier, idx, &s1);
    barrier_wait(&x.checked);
    for (unsigned t = 0; t < XT_THREADS; t++) pthread_join(th[t], NULL);
    uint64_t e0 = 0, e1 = 0;
    EXPECT_EQ_U(bump_epoch(&e0, &e1), 0, "epoch write");
    EXPECT_EQ_U(e1, e0 + 1, "writing epoch increments it");
    REQUIRE_EQ_U(class_stats(tier, idx, &s2), 0, "after join");
    barrier_destroy(&x.allocated);
    barrier_destroy(&x.checked);
    barrier_destroy(&x.freed);

    EXPECT_EQ_U(x.bad, 0, "every allocation worked and blocks kept their content");
    const uint64_t total = (uint64_t)XT_THREADS * XT_BLOCKS;
    /* With every block live. */
    EXPECT_EQ_U(rc1, 0, "stats while live");
    EXPECT_EQ_U(s1.nmalloc - s0.nmalloc, total, "nmalloc while live");
    EXPECT_EQ_U(s1.ndalloc - s0.ndalloc, 0, "ndalloc while live");
    EXPECT_EQ_U(s1.curblocks - s0.curblocks, total, "curblocks while live");
    EXPECT_GE_U(s1.curslabs - s0.curslabs, total / (65536 / XT_SIZE),
                "curslabs while live: 12 blocks a page");
    /* After the cross-thread frees and the joins. */
    EXPECT_EQ_U(s2.nmalloc - s0.nmalloc, total, "nmalloc after");
    EXPECT_EQ_U(s2.ndalloc - s0.ndalloc, total, "ndalloc after");
    EXPECT_EQ_U(s2.curblocks, s0.curblocks, "curblocks back to the baseline");
    EXPECT_EQ_U(s2.nremote_frees - s0.nremote_frees, total, "every free was a remote free");
    EXPECT_EQ_U(s2.size, XT_SIZE, "stats.size");
    for (unsigned t = 0; t < XT_THREADS; t++) {
        EXPECT_EQ_U(x.alloc_delta[t], (uint64_t)XT_BLOCKS * XT_SIZE,
                    "worker thread.allocated grew by its blocks at class size");
        EXPECT_EQ_U(x.dealloc_delta[t], (uint64_t)XT_BLOCKS * XT_SIZE,
                    "worker thread.deallocated grew by the blocks it freed (remote)");
    }
}

/* Remote frees into pages whose owner is still allocating from them. */
enum { PP_ROUNDS = 50, PP_BATCH = 64 };
#define PP_SIZE 10240

struct pp {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *slot[PP_BATCH];
    int full, done;
};

static void *pp_consumer(void *p) {
    struct pp *q = p;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->full && !q->done) pthread_cond_wait(&q->cv, &q->mu);
        if (!q->full && q->done) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        for (int i = 0; i < PP_BATCH; i++) hak_free(q->slot[i]);
        q->full = 0;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
}

TEST(stats_producer_consumer_counts_exact) {
    quiet_stats_page();
    unsigned tier, idx;
    REQUIRE_TRUE(find_class(PP_SIZE, &tier, &idx), "a 10240-byte class");
    static struct pp q;
    memset(&q, 0, sizeof q);
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.cv, NULL);
    struct hak_class_stats s0, s1;
    REQUIRE_EQ_U(class_stats(tier, idx, &s0), 0, "baseline");
    pthread_t c;
    REQUIRE_EQ_U(pthread_create(&c, NULL, pp_consumer, &q), 0, "pthread_create");
    int nulls = 0;
    for (int r = 0; r < PP_ROUNDS; r++) {
        void *tmp[PP_BATCH];
        for (int i = 0; i < PP_BATCH; i++) {
            tmp[i] = hak_malloc(PP_SIZE);
            if (tmp[i] == NULL) nulls++;
        }
        pthread_mutex_lock(&q.mu);
        while (q.full) pthread_cond_wait(&q.cv, &q.mu);
        memcpy(q.slot, tmp, sizeof tmp);
        q.full = 1;
        pthread_cond_broadcast(&q.cv);
        pthread_mutex_unlock(&q.mu);
    }
    pthread_mutex_lock(&q.mu);
    while (q.full) pthread_cond_wait(&q.cv, &q.mu);
    q.done = 1;
    pthread_cond_broadcast(&q.cv);
    pthread_mutex_unlock(&q.mu);
    pthread_join(c, NULL);
    REQUIRE_EQ_U(class_stats(tier, idx, &s1), 0, "after");
    pthread_cond_destroy(&q.cv);
    pthread_mutex_destroy(&q.mu);
    EXPECT_EQ_U(nulls, 0, "allocations");
    const uint64_t total = (uint64_t)PP_ROUNDS * PP_BATCH;
    EXPECT_EQ_U(s1.nmalloc - s0.nmalloc, total, "nmalloc");
    EXPECT_EQ_U(s1.ndalloc - s0.ndalloc, total, "ndalloc");
    EXPECT_EQ_U(s1.nremote_frees - s0.nremote_frees, total, "nremote_frees");
    EXPECT_EQ_U(s1.curblocks, s0.curblocks, "curblocks back to the baseline");
}

/* ---------------- consistency of every class ---------------- */

/* The decay thread (a process with threads has one) releases exited
 * threads' empty pages while it purges: no purge runs during the
 * comparison (every arena's decay_ms -1, then a moment for a pass under
 * way to end), and the old decay times come back after. */
static void purges_pause(int64_t *saved, unsigned n) {
    for (unsigned a = 0; a < n; a++) {
        char name[48];
        int64_t never = -1;
        snprintf(name, sizeof name, "arena.%u.decay_ms", a);
        rd(name, &saved[a], sizeof saved[a]);
        hak_ctl(name, NULL, NULL, &never, sizeof never);
    }
    hk_test_sleep_ms(50);
}

static void purges_resume(const int64_t *saved, unsigned n) {
    for (unsigned a = 0; a < n; a++) {
        char name[48];
        int64_t v = saved[a];
        snprintf(name, sizeof name, "arena.%u.decay_ms", a);
        hak_ctl(name, NULL, NULL, &v, sizeof v);
    }
}

static void check_all_classes_consistent(const char *when) {
    unsigned narenas = 0;
    int64_t saved[64];
    rd("arenas.narenas", &narenas, sizeof narenas);
    if (narenas > 64) narenas = 64;
    purges_pause(saved, narenas);
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = nclasses(t);
        if (n == 0) hk_test_fail(__FILE__, __LINE__, "%s.nclasses unreadable", tiers[t]);
        for (unsigned i = 0; i < n; i++) {
            struct hak_class_stats st;
            char name[96];
            uint64_t f[6];
            static const char *fields[6] = {"nmalloc", "ndalloc", "curblocks",
                                            "curslabs", "nremote_frees", "tcache_hits"};
            if (class_stats(t, i, &st) != 0) {
                hk_test_fail(__FILE__, __LINE__, "%s.class.%u.stats unreadable", tiers[t], i);
                continue;
            }
            /* Read the leaves right after the struct: nothing allocates in
             * between (the test's threads have exited, purges are paused). */
            for (int k = 0; k < 6; k++) {
                snprintf(name, sizeof name, "%s.class.%u.stats.%s", tiers[t], i, fields[k]);
                f[k] = rd_u64(name);
            }
            size_t size = 0;
            snprintf(name, sizeof name, "%s.class.%u.size", tiers[t], i);
            if (rd(name, &size, sizeof size) != 0 || size != st.size)
                hk_test_fail(__FILE__, __LINE__, "%s: %s is %zu, stats.size %llu", when, name,
                             size, (unsigned long long)st.size);
            if (st.nmalloc < st.ndalloc)
                hk_test_fail(__FILE__, __LINE__, "%s: %s.class.%u: ndalloc %llu > nmalloc %llu",
                             when, tiers[t], i, (unsigned long long)st.ndalloc,
                             (unsigned long long)st.nmalloc);
            else if (st.nmalloc - st.ndalloc != st.curblocks)
                hk_test_fail(__FILE__, __LINE__,
                             "%s: %s.class.%u: nmalloc %llu - ndalloc %llu != curblocks %llu",
                             when, tiers[t], i, (unsigned long long)st.nmalloc,
                             (unsigned long long)st.ndalloc, (unsigned long long)st.curblocks);
            if (st.tcache_hits > st.nmalloc)
                hk_test_fail(__FILE__, __LINE__, "%s: %s.class.%u: tcache_hits %llu > nmalloc %llu",
                             when, tiers[t], i, (unsigned long long)st.tcache_hits,
                             (unsigned long long)st.nmalloc);
            if (st.nremote_frees > st.ndalloc)
                hk_test_fail(__FILE__, __LINE__,
                             "%s: %s.class.%u: nremote_frees %llu > ndalloc %llu", when, tiers[t],
                             i, (unsigned long long)st.nremote_frees,
                             (unsigned long long)st.ndalloc);
            const uint64_t want[6] = {st.nmalloc, st.ndalloc, st.curblocks,
                                      st.curslabs, st.nremote_frees, st.tcache_hits};
            for (int k = 0; k < 6; k++)
                if (f[k] != want[k])
                    hk_test_fail(__FILE__, __LINE__, "%s: %s.class.%u.stats.%s %llu, struct %llu",
                                 when, tiers[t], i, fields[k], (unsigned long long)f[k],
                                 (unsigned long long)want[k]);
        }
    }
    purges_resume(saved, narenas);
}

struct mix_arg {
    unsigned seed;
    void **out;  /* blocks handed to the main thread to free */
    unsigned nout;
};

/* Allocates and frees a mix of sizes in every tier, keeping some blocks for
 * the main thread to free (remote) and some live across thread exit. */
static void *mix_worker(void *p) {
    struct mix_arg *a = p;
    uint64_t s = a->seed * 0x9E3779B97F4A7C15ull + 1;
    void *keep[256];
    unsigned nk = 0;
    for (unsigned i = 0; i < 20000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t size = (s & 3) == 0 ? (size_t)(s >> 40) % (256 * 1024) : (size_t)(s >> 40) % 2048;
        void *b = hak_malloc(size);
        if (b == NULL) continue;
        if (nk < 256 && (s & 0x30) == 0) keep[nk++] = b;
        else if (a->nout < 128 && (s & 0x300) == 0) a->out[a->nout++] = b;
        else hak_free(b);
    }
    /* Half of the kept blocks are freed here, the rest outlive the thread
     * and are freed by the main thread (a free into an abandoned page). */
    for (unsigned i = 0; i < nk / 2; i++) hak_free(keep[i]);
    for (unsigned i = nk / 2; i < nk && a->nout < 256; i++) a->out[a->nout++] = keep[i];
    return NULL;
}

TEST(stats_all_classes_consistent_after_join) {
    quiet_stats_page();
    enum { N = 4 };
    pthread_t th[N];
    struct mix_arg args[N];
    static void *outs[N][256 + 128];
    for (unsigned t = 0; t < N; t++) {
        args[t] = (struct mix_arg){t + 1, outs[t], 0};
        REQUIRE_EQ_U(pthread_create(&th[t], NULL, mix_worker, &args[t]), 0, "pthread_create");
    }
    for (unsigned t = 0; t < N; t++) pthread_join(th[t], NULL);
    check_all_classes_consistent("after join, blocks outstanding");
    for (unsigned t = 0; t < N; t++)
        for (unsigned i = 0; i < args[t].nout; i++) hak_free(outs[t][i]);
    check_all_classes_consistent("after the main thread freed the rest");
}

TEST(stats_allocated_is_live_bytes_plus_huge) {
    quiet_stats_page();
    /* Quiescent process: stats.allocated must equal the sum over classes of
     * curblocks * size plus huge.stats.curbytes. */
    void *huge = hak_malloc(3 * MiB);
    REQUIRE_NOT_NULL(huge, "3 MiB");
    void *small[100];
    for (int i = 0; i < 100; i++) small[i] = hak_malloc((size_t)i * 37 + 1);
    uint64_t sum = 0;
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = nclasses(t);
        for (unsigned i = 0; i < n; i++) {
            struct hak_class_stats st;
            if (class_stats(t, i, &st) != 0) {
                hk_test_fail(__FILE__, __LINE__, "class stats");
                continue;
            }
            sum += st.curblocks * st.size;
        }
    }
    size_t cur = 0, allocated = 0;
    EXPECT_EQ_U(rd("huge.stats.curbytes", &cur, sizeof cur), 0, "huge.stats.curbytes");
    EXPECT_EQ_U(rd("stats.allocated", &allocated, sizeof allocated), 0, "stats.allocated");
    EXPECT_GE_U(cur, 3 * MiB, "the 3 MiB block counts in huge.stats.curbytes");
    EXPECT_EQ_U(allocated, sum + cur, "stats.allocated = sum(curblocks*size) + huge curbytes");
    for (int i = 0; i < 100; i++) hak_free(small[i]);
    hak_free(huge);
}

/* ---------------- thread.allocated / thread.deallocated ---------------- */

#define TA_SIZE 7168

static void check_thread_bytes(const char *who) {
    void *b[100];
    uint64_t a0 = rd_u64("thread.allocated"), d0 = rd_u64("thread.deallocated");
    for (int i = 0; i < 100; i++) b[i] = hak_malloc(7000); /* class 7168 */
    uint64_t a1 = rd_u64("thread.allocated"), d1 = rd_u64("thread.deallocated");
    for (int i = 0; i < 100; i++) hak_free(b[i]);
    uint64_t a2 = rd_u64("thread.allocated"), d2 = rd_u64("thread.deallocated");
    if (a1 - a0 != 100ull * TA_SIZE)
        hk_test_fail(__FILE__, __LINE__, "%s: thread.allocated grew by %llu, want %llu", who,
                     (unsigned long long)(a1 - a0), 100ull * TA_SIZE);
    if (d1 != d0)
        hk_test_fail(__FILE__, __LINE__, "%s: thread.deallocated moved on malloc", who);
    if (d2 - d1 != 100ull * TA_SIZE)
        hk_test_fail(__FILE__, __LINE__, "%s: thread.deallocated grew by %llu, want %llu", who,
                     (unsigned long long)(d2 - d1), 100ull * TA_SIZE);
    if (a2 != a1) hk_test_fail(__FILE__, __LINE__, "%s: thread.allocated moved on free", who);

    /* Huge blocks count with their usable size. */
    void *h = hak_malloc(3 * MiB + 5);
    if (h == NULL) {
        hk_test_fail(__FILE__, __LINE__, "%s: huge allocation", who);
        return;
    }
    size_t u = hak_malloc_usable_size(h);
    uint64_t a3 = rd_u64("thread.allocated");
    hak_free(h);
    uint64_t d3 = rd_u64("thread.deallocated");
    if (a3 - a2 != u)
        hk_test_fail(__FILE__, __LINE__, "%s: huge: thread.allocated grew by %llu, usable %zu",
                     who, (unsigned long long)(a3 - a2), u);
    if (d3 - d2 != u)
        hk_test_fail(__FILE__, __LINE__, "%s: huge: thread.deallocated grew by %llu, usable %zu",
                     who, (unsigned long long)(d3 - d2), u);
}

static void *thread_bytes_worker(void *p) {
    (void)p;
    check_thread_bytes("worker thread");
    return NULL;
}

TEST(stats_thread_bytes_at_class_size) {
    quiet_stats_page();
    void *warm = hak_malloc(16); /* the main thread has a heap */
    check_thread_bytes("main thread");
    hak_free(warm);
    pthread_t t;
    REQUIRE_EQ_U(pthread_create(&t, NULL, thread_bytes_worker, NULL), 0, "pthread_create");
    pthread_join(t, NULL);
}

/* A thread's counters are its own: a new thread starts from nothing, even
 * when it reuses the heap structure of a thread that has exited. */
static void *big_spender(void *p) {
    (void)p;
    void *s = hak_malloc(100);
    void *h = hak_malloc(8 * MiB);
    if (h != NULL) memset(h, 1, 4096);
    hak_free(h);
    hak_free(s);
    return NULL;
}

struct fresh {
    uint64_t before, after, dbefore, dafter;
};

static void *fresh_thread(void *p) {
    struct fresh *f = p;
    f->before = rd_u64("thread.allocated");
    f->dbefore = rd_u64("thread.deallocated");
    void *b = hak_malloc(TA_SIZE);
    f->after = rd_u64("thread.allocated");
    hak_free(b);
    f->dafter = rd_u64("thread.deallocated");
    return NULL;
}

TEST(stats_thread_bytes_start_at_zero_in_a_new_thread) {
    quiet_stats_page();
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        REQUIRE_EQ_U(pthread_create(&t, NULL, big_spender, NULL), 0, "pthread_create");
        pthread_join(t, NULL);
        struct fresh f = {0};
        REQUIRE_EQ_U(pthread_create(&t, NULL, fresh_thread, &f), 0, "pthread_create");
        pthread_join(t, NULL);
        hk_test_log("new thread: allocated %llu -> %llu, deallocated %llu -> %llu",
                    (unsigned long long)f.before, (unsigned long long)f.after,
                    (unsigned long long)f.dbefore, (unsigned long long)f.dafter);
        /* Whatever libc did in the thread, it is far below the 8 MiB the
         * exited thread allocated. */
        EXPECT_LE_U(f.after, 1 * MiB, "a new thread's thread.allocated after one 7 KiB block");
        EXPECT_LE_U(f.dafter, 1 * MiB, "a new thread's thread.deallocated after one free");
        EXPECT_GE_U(f.after - f.before, TA_SIZE, "the block counts");
    }
}

TEST_MAIN()
