/* Threads: blocks freed by another thread are collected and reused, a
 * thread's exit returns its cached blocks and pages, blocks outliving
 * their owner thread can still be freed, and blocks handed between many
 * threads keep their contents. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* The number of arenas threads are spread over (bounds what may be
 * retained legitimately); 4 per CPU when the ctl cannot tell. */
static unsigned narenas(void) {
    unsigned n = 0;
    size_t len = sizeof n;
    if (hak_ctl("arenas.narenas", &n, &len, NULL, 0) == 0 && n > 0) return n;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? 4 * (unsigned)c : 8;
}

/* ---- remote frees ---- */

struct freer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **batch;
    int n;
    int pending; /* 1: batch posted, 0: freed */
    int quit;
    int errno_bad;
};

static void *freer_main(void *arg) {
    struct freer *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->pending && !f->quit) pthread_cond_wait(&f->cv, &f->mu);
        if (f->pending) {
            for (int i = 0; i < f->n; i++) {
                errno = EILSEQ;
                hak_free(f->batch[i]);
                if (errno != EILSEQ) f->errno_bad++;
            }
            f->pending = 0;
            pthread_cond_broadcast(&f->cv);
        } else {
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static size_t remote_size(int i) {
    /* Mostly tiny, some mid: about 1 KiB on average. */
    return i % 10 == 0 ? 2048 + (size_t)(i % 7) * 1000 : 16 + (size_t)(i * 37 % 1000);
}

TEST(threads_remote_frees_are_collected) {
    enum { N = 10000 };
    const int rounds = 24;
    struct freer f;
    memset(&f, 0, sizeof f);
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    f.batch = hak_malloc(N * sizeof(void *));
    uintptr_t *seen = hak_malloc((size_t)rounds * N * sizeof *seen);
    REQUIRE_TRUE(f.batch && seen, "bookkeeping");
    pthread_t t;
    REQUIRE_EQ_U(pthread_create(&t, NULL, freer_main, &f), 0, "pthread_create");

    size_t nseen = 0, rss0 = hk_test_rss_bytes(), peak = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            size_t n = remote_size(i);
            f.batch[i] = hak_malloc(n);
            if (f.batch[i] == NULL) {
                hk_test_fail(__FILE__, __LINE__, "malloc(%zu) failed in round %d", n, r);
                f.n = i;
                goto out;
            }
            memset(f.batch[i], r, n);
            seen[nseen++] = (uintptr_t)f.batch[i];
        }
        size_t rss = hk_test_rss_bytes();
        if (rss > peak) peak = rss;
        pthread_mutex_lock(&f.mu);
        f.n = N;
        f.pending = 1;
        pthread_cond_broadcast(&f.cv);
        while (f.pending) pthread_cond_wait(&f.cv, &f.mu);
        pthread_mutex_unlock(&f.mu);
    }
    f.n = 0;
out:
    pthread_mutex_lock(&f.mu);
    f.pending = f.n > 0;
    f.quit = 1;
    pthread_cond_broadcast(&f.cv);
    pthread_mutex_unlock(&f.mu);
    pthread_join(t, NULL);
    EXPECT_EQ_U(f.errno_bad, 0, "remote free changed errno");

    /* Without collection every round needs ~10 MiB of new blocks:
     * 24 rounds, ~240 MiB, and 240000 distinct addresses. */
    qsort(seen, nseen, sizeof *seen, hk_test_uptr_cmp);
    size_t distinct = 0;
    for (size_t k = 0; k < nseen; k++)
        if (k == 0 || seen[k] != seen[k - 1]) distinct++;
    hk_test_log("remote frees: %zu distinct addresses in %zu allocations, "
                "resident %zu -> peak %zu KiB", distinct, nseen, rss0 >> 10, peak >> 10);
    EXPECT_LE_U(distinct, 4 * (size_t)N, "remotely freed blocks are not reused");
    hak_free(seen);
    hak_free(f.batch);
    pthread_cond_destroy(&f.cv);
    pthread_mutex_destroy(&f.mu);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    EXPECT_LE_U(peak, rss0 + 96 * MiB, "resident memory grows with remotely freed blocks");
}

/* ---- thread exit ---- */

/* Allocates ~3 MiB over every tiny and mid class, writes it, frees it all
 * (so it sits in the thread's caches and pages) and exits. */
static void *cache_and_exit(void *arg) {
    enum { MAXB = 6000 };
    void **p = hak_malloc(MAXB * sizeof *p);
    if (p == NULL) return (void *)1;
    int n = 0;
    size_t total = 0;
    for (int rep = 0; total < 3 * MiB && n < MAXB; rep++) {
        for (size_t s = 16; s <= 32 * KiB && n < MAXB; s = s + s / 6 + 1) {
            p[n] = hak_malloc(s);
            if (p[n] == NULL) break;
            memset(p[n], 0x77, s);
            total += s;
            n++;
        }
    }
    for (int i = n - 1; i >= 0; i--) hak_free(p[i]);
    hak_free(p);
    return NULL;
}

TEST(threads_exit_returns_memory) {
    unsigned na = narenas();
    unsigned nthreads = 8 * na < 64 ? 64 : 8 * na;
    if (nthreads > 1024) nthreads = 1024;
    nthreads *= hk_test_scale();
    /* Warm up: one thread per arena. */
    for (unsigned i = 0; i < na && i < 1024; i++) {
        pthread_t t;
        REQUIRE_EQ_U(pthread_create(&t, NULL, cache_and_exit, NULL), 0, "pthread_create");
        void *rv;
        pthread_join(t, &rv);
    }
    size_t rss0 = hk_test_rss_bytes(), peak = rss0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_t t;
        REQUIRE_EQ_U(pthread_create(&t, NULL, cache_and_exit, NULL), 0, "pthread_create");
        void *rv = NULL;
        pthread_join(t, &rv);
        if (rv != NULL) {
            hk_test_fail(__FILE__, __LINE__, "thread %u could not allocate", i);
            return;
        }
        size_t rss = hk_test_rss_bytes();
        if (rss > peak) peak = rss;
    }
    hk_test_log("%u threads over %u arenas: resident %zu -> peak %zu KiB", nthreads, na,
                rss0 >> 10, peak >> 10);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    /* Leaking what each exited thread cached costs ~3 MiB a thread. */
    size_t bound = 32 * MiB + (size_t)na * 8 * MiB;
    EXPECT_LE_U(hk_test_growth(peak, rss0), bound, "exited threads' memory is not returned");
}

/* ---- threads created again every round ---- */

#define ROUND_BLOCKS 16000
/* about what a round's thread writes: 16000 blocks of 264 B on average,
 * 80 of 34 KiB */
#define ROUND_TOUCHED_BYTES ((size_t)16000 * 264 + (size_t)80 * 34 * 1024)

static long minor_faults(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

/* A fresh working set (16-512 B blocks and a few of 4-64 KiB, about 5 MiB),
 * touched and freed; returns non-NULL when an allocation failed. */
static void *round_worker(void *arg) {
    static _Thread_local void *p[ROUND_BLOCKS];
    uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < ROUND_BLOCKS; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t s = i % 200 == 0 ? 4096 + (size_t)(x % (60 * KiB)) : 16 + (size_t)(x % 497);
        p[i] = hak_malloc(s);
        if (p[i] == NULL) return (void *)1;
        memset(p[i], 1, s);
    }
    for (int i = 0; i < ROUND_BLOCKS; i++) hak_free(p[i]);
    return NULL;
}

#define HK_TEST_MAX_ARENAS 256

/* Sets every arena's decay_ms (at most HK_TEST_MAX_ARENAS of them), keeping
 * the old values in was; returns how many were set. */
static unsigned set_decay_ms(int64_t ms, int64_t *was) {
    unsigned na = narenas();
    if (na > HK_TEST_MAX_ARENAS) na = HK_TEST_MAX_ARENAS;
    for (unsigned a = 0; a < na; a++) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.decay_ms", a);
        size_t len = sizeof was[a];
        if (hak_ctl(name, &was[a], &len, &ms, sizeof ms) != 0) return a;
    }
    return na;
}

static void restore_decay_ms(unsigned na, const int64_t *was) {
    for (unsigned a = 0; a < na; a++) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.decay_ms", a);
        int64_t v = was[a];
        hak_ctl(name, NULL, NULL, &v, sizeof v);
    }
}

static void *empty_worker(void *arg) {
    (void)arg;
    return NULL;
}

/* Minor page faults a round of two threads running worker costs, on
 * average over the rounds after the first 8 (the warm-up). */
static long faults_per_round(void *(*worker)(void *), unsigned rounds) {
    long faults_from = 0;
    for (uintptr_t r = 0; r < rounds; r++) {
        if (r == 8) faults_from = minor_faults();
        pthread_t t[2];
        for (int k = 0; k < 2; k++)
            if (pthread_create(&t[k], NULL, worker, (void *)(2 * r + (uintptr_t)k)) != 0) return -1;
        for (int k = 0; k < 2; k++) {
            void *rv = NULL;
            pthread_join(t[k], &rv);
            if (rv != NULL) return -1;
        }
        hk_test_sleep_ms(30); /* a program's rounds are apart: decay runs between them */
    }
    return (minor_faults() - faults_from) / (long)(rounds - 8);
}

/* Each round's two threads find what the last round's left, resident, in
 * the arenas they are given, instead of faulting in memory of arenas
 * nobody used lately (or purged meanwhile): after the first rounds, a
 * round costs far fewer page faults than the pages it touches.  What
 * creating the threads costs by itself (their stacks, and under a
 * sanitizer its own per-thread state) is measured apart and taken off. */
TEST(threads_rounds_reuse_exited_threads_memory) {
    unsigned rounds = 40 * hk_test_scale();
    /* What is measured is which arena a round's threads get, not decay's
     * clock: a sanitized build's round alone can outlast the default
     * 100 ms, after which purging what it freed is right.  Every arena
     * waits 2 s for this test (set_decay_ms), then gets its value back. */
    int64_t decay_was[HK_TEST_MAX_ARENAS];
    unsigned na = set_decay_ms(2000, decay_was);
    REQUIRE_TRUE(na > 0, "arena.N.decay_ms cannot be set");
    long empty = faults_per_round(empty_worker, 24);
    long per_round = faults_per_round(round_worker, rounds);
    restore_decay_ms(na, decay_was);
    REQUIRE_TRUE(empty >= 0 && per_round >= 0, "a round's thread could not start or allocate");
    long net = per_round > empty ? per_round - empty : 0;
    long touched = 2 * ROUND_TOUCHED_BYTES / 4096; /* pages a round writes */
    hk_test_log("%u arenas: %ld page faults a round (%ld of them with empty threads), "
                "%ld pages touched a round",
                narenas(), per_round, empty, touched);
    SKIP_IF(HK_TSAN, "the arena a thread gets is not what is measured under ThreadSanitizer");
    EXPECT_LE_U((unsigned long)net, (unsigned long)touched / 4,
                "each round faults its working set in anew");
}

/* ---- blocks that outlive their thread ---- */

struct orphans { void **p; int n; };

static void *alloc_and_exit(void *arg) {
    struct orphans *o = arg;
    for (int i = 0; i < o->n; i++) {
        size_t s = 16 + (size_t)(i * 53 % 3000);
        if (i % 50 == 0) s = 40 * KiB + (size_t)i;
        o->p[i] = hak_malloc(s);
        if (o->p[i] == NULL) return (void *)1;
        memset(o->p[i], (unsigned char)i, 16);
    }
    return NULL;
}

TEST(threads_blocks_freed_after_owner_exit) {
    enum { N = 2000 };
    unsigned na = narenas();
    unsigned rounds = (8 * na < 64 ? 64 : 8 * na) * hk_test_scale();
    if (rounds > 1024) rounds = 1024;
    struct orphans o;
    o.n = N;
    o.p = hak_malloc(N * sizeof(void *));
    REQUIRE_NOT_NULL(o.p, "bookkeeping");
    size_t rss0 = 0, peak = 0;
    for (unsigned r = 0; r < rounds; r++) {
        if (r == na) rss0 = peak = hk_test_rss_bytes();
        pthread_t t;
        REQUIRE_EQ_U(pthread_create(&t, NULL, alloc_and_exit, &o), 0, "pthread_create");
        void *rv = NULL;
        pthread_join(t, &rv);
        REQUIRE_NULL(rv, "thread could not allocate");
        /* The owner is gone; its blocks are intact and can be freed. */
        for (int i = 0; i < N; i++) {
            unsigned char *c = o.p[i];
            if (c[0] != (unsigned char)i || c[15] != (unsigned char)i) {
                hk_test_fail(__FILE__, __LINE__, "block %d of an exited thread changed", i);
                return;
            }
            hak_free(c);
        }
        if (r >= na) {
            size_t rss = hk_test_rss_bytes();
            if (rss > peak) peak = rss;
        }
    }
    hak_free(o.p);
    hk_test_log("%u rounds: resident %zu -> peak %zu KiB", rounds, rss0 >> 10, peak >> 10);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    /* Each round is ~4.5 MiB of blocks; never reusing them would add that
     * much every round. */
    EXPECT_LE_U(hk_test_growth(peak, rss0), 32 * MiB + (size_t)na * 8 * MiB,
                "blocks of exited threads are not reused after free");
}

/* ---- realloc of blocks another thread allocated ---- */

struct foreign { unsigned char **p; size_t *len; int n; int bad; };

/* Every byte of the first 4 KiB, every 7th after that. */
#define NEXT_K(k) ((k) < 4096 ? (k) + 1 : (k) + 7)

static void *realloc_foreign(void *arg) {
    struct foreign *f = arg;
    for (int i = 0; i < f->n; i++) {
        size_t old = f->len[i];
        for (size_t k = 0; k < old; k = NEXT_K(k))
            if (f->p[i][k] != (unsigned char)(i + k)) { f->bad++; break; }
        /* grow across a tier, then shrink below the original */
        size_t big = old * 2 + 40000, small = old / 3 + 1;
        unsigned char *q = hak_realloc(f->p[i], big);
        if (q == NULL) { f->bad++; continue; }
        for (size_t k = 0; k < old; k = NEXT_K(k))
            if (q[k] != (unsigned char)(i + k)) { f->bad++; break; }
        memset(q + old, 0xAB, big - old);
        q = hak_realloc(q, small);
        if (q == NULL) { f->bad++; continue; }
        for (size_t k = 0; k < small; k = NEXT_K(k))
            if (q[k] != (unsigned char)(i + k)) { f->bad++; break; }
        f->p[i] = q;
        f->len[i] = small;
    }
    return NULL;
}

TEST(threads_realloc_of_foreign_blocks) {
    enum { N = 3000 };
    struct foreign f = { hak_malloc(N * sizeof(void *)), hak_malloc(N * sizeof(size_t)), N, 0 };
    REQUIRE_TRUE(f.p && f.len, "bookkeeping");
    for (int i = 0; i < N; i++) {
        f.len[i] = i % 300 == 0 ? MiB + (size_t)i : 1 + (size_t)(i * 13 % 5000);
        f.p[i] = hak_malloc(f.len[i]);
        REQUIRE_NOT_NULL(f.p[i], "malloc");
        for (size_t k = 0; k < f.len[i]; k++) f.p[i][k] = (unsigned char)(i + k);
    }
    pthread_t t;
    REQUIRE_EQ_U(pthread_create(&t, NULL, realloc_foreign, &f), 0, "pthread_create");
    pthread_join(t, NULL);
    EXPECT_EQ_U(f.bad, 0, "realloc in another thread lost contents or failed");
    /* Back in the first thread: contents, then free. */
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < f.len[i]; k = NEXT_K(k))
            if (f.p[i][k] != (unsigned char)(i + k)) {
                hk_test_fail(__FILE__, __LINE__, "block %d changed after the foreign realloc", i);
                break;
            }
        hak_free(f.p[i]);
    }
    hak_free(f.p);
    hak_free(f.len);
}

/* ---- many threads handing blocks around ---- */

struct mailbox {
    pthread_mutex_t mu;
    void **q;
    size_t head, tail, cap; /* ring */
};

struct handoff {
    struct mailbox *box;
    unsigned nthreads, id, iters;
    int bad;
    int errno_bad;
};

/* A block starts with its size and the id pattern it was filled with. */
static void *make_block(uint64_t *rs) {
    size_t n = (size_t)(hk_test_xorshift(rs) % (hk_test_xorshift(rs) % 16 == 0 ? 70000 : 600)) + 16;
    unsigned char *p = hak_malloc(n);
    if (p == NULL) return NULL;
    memcpy(p, &n, sizeof n);
    unsigned char tag = (unsigned char)(n * 31);
    memset(p + sizeof n, tag, n - sizeof n);
    return p;
}

/* Checks the size word, the first and last 16 bytes and every 61st byte. */
static int check_block(unsigned char *p) {
    size_t n;
    memcpy(&n, p, sizeof n);
    unsigned char tag = (unsigned char)(n * 31);
    if (n < 16 || n > 70016) return 0;
    for (size_t i = sizeof n; i < n; i = i < 24 || i + 16 >= n ? i + 1 : i + 61)
        if (p[i] != tag) return 0;
    return p[n - 1] == tag;
}

static void *handoff_main(void *arg) {
    struct handoff *h = arg;
    uint64_t rs = 0x1234567ull * (h->id + 1);
    for (unsigned it = 0; it < h->iters; it++) {
        void *b = make_block(&rs);
        if (b == NULL) { h->bad++; break; }
        struct mailbox *to = &h->box[(h->id + 1 + it % (h->nthreads - 1)) % h->nthreads];
        pthread_mutex_lock(&to->mu);
        int full = (to->tail + 1) % to->cap == to->head;
        if (!full) {
            to->q[to->tail] = b;
            to->tail = (to->tail + 1) % to->cap;
        }
        pthread_mutex_unlock(&to->mu);
        if (full) hak_free(b);
        /* Take up to two blocks from our own box. */
        struct mailbox *me = &h->box[h->id];
        for (int k = 0; k < 2; k++) {
            void *got = NULL;
            pthread_mutex_lock(&me->mu);
            if (me->head != me->tail) {
                got = me->q[me->head];
                me->head = (me->head + 1) % me->cap;
            }
            pthread_mutex_unlock(&me->mu);
            if (got == NULL) break;
            if (!check_block(got)) h->bad++;
            errno = EILSEQ;
            hak_free(got);
            if (errno != EILSEQ) h->errno_bad++;
        }
    }
    return NULL;
}

TEST(threads_handoff_keeps_contents) {
    unsigned nt = hk_test_threads();
    if (nt < 2) nt = 2;
    if (nt > 64) nt = 64;
    struct mailbox box[64];
    struct handoff h[64];
    pthread_t t[64];
    for (unsigned i = 0; i < nt; i++) {
        pthread_mutex_init(&box[i].mu, NULL);
        box[i].cap = 512;
        box[i].head = box[i].tail = 0;
        box[i].q = hak_malloc(box[i].cap * sizeof(void *));
        REQUIRE_NOT_NULL(box[i].q, "bookkeeping");
    }
    for (unsigned i = 0; i < nt; i++) {
        h[i] = (struct handoff){ box, nt, i, (HK_TSAN ? 5000 : 20000) * hk_test_scale(), 0, 0 };
        REQUIRE_EQ_U(pthread_create(&t[i], NULL, handoff_main, &h[i]), 0, "pthread_create");
    }
    int bad = 0, errno_bad = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(t[i], NULL);
        bad += h[i].bad;
        errno_bad += h[i].errno_bad;
    }
    size_t left = 0;
    for (unsigned i = 0; i < nt; i++) {
        while (box[i].head != box[i].tail) {
            void *b = box[i].q[box[i].head];
            if (!check_block(b)) bad++;
            hak_free(b);
            box[i].head = (box[i].head + 1) % box[i].cap;
            left++;
        }
        hak_free(box[i].q);
        pthread_mutex_destroy(&box[i].mu);
    }
    EXPECT_EQ_U(bad, 0, "blocks passed between threads were damaged or allocation failed");
    EXPECT_EQ_U(errno_bad, 0, "cross-thread free changed errno");
}

/* ---- bursts of one size: the adaptive keep ---- */

/* The per-class counters' leaf of the class of size bytes, by its size. */
static bool class_stats_name(size_t size, char *name, size_t cap) {
    static const char *const tiers[3] = {"tiny", "mid", "large"};
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = 0;
        size_t len = sizeof n;
        char key[64];
        snprintf(key, sizeof key, "%s.nclasses", tiers[t]);
        if (hak_ctl(key, &n, &len, NULL, 0) != 0) return false;
        for (unsigned i = 0; i < n; i++) {
            size_t s = 0;
            len = sizeof s;
            snprintf(key, sizeof key, "%s.class.%u.size", tiers[t], i);
            if (hak_ctl(key, &s, &len, NULL, 0) == 0 && s == size) {
                snprintf(name, cap, "%s.class.%u", tiers[t], i);
                return true;
            }
        }
    }
    return false;
}

static uint64_t class_nflushes(const char *cls) {
    struct hak_class_stats st;
    size_t len = sizeof st;
    char key[80];
    snprintf(key, sizeof key, "%s.stats", cls);
    return hak_ctl(key, &st, &len, NULL, 0) == 0 ? st.nflushes : 0;
}

struct burst {
    const char *cls;
    bool set_by_hand;  /* write the class's tcache_max (its default value) first */
    uint64_t flushes;  /* pages handed back in the measured batches */
    int rc;
};

enum { BURST_BLOCKS = 32, BURST_WARMUP = 20, BURST_MEASURED = 100 };

/* Batches of 32 blocks of 48 KiB (one block a page), allocated then freed:
 * a burst of one size larger than the default keep of one block. */
static void *burst_thread(void *arg) {
    struct burst *b = arg;
    void *blk[BURST_BLOCKS];
    char key[80];
    snprintf(key, sizeof key, "%s.tcache_max", b->cls);
    unsigned def = 0;
    size_t len = sizeof def;
    if (b->set_by_hand &&
        (hak_ctl(key, &def, &len, NULL, 0) != 0 || hak_ctl(key, NULL, NULL, &def, sizeof def) != 0))
        b->rc = 1;
    uint64_t f0 = 0;
    for (int r = 0; r < BURST_WARMUP + BURST_MEASURED; r++) {
        if (r == BURST_WARMUP) f0 = class_nflushes(b->cls);
        for (int i = 0; i < BURST_BLOCKS; i++) {
            blk[i] = hak_malloc(48 * KiB);
            if (blk[i] == NULL) b->rc = 2;
            else memset(blk[i], 0x5A, 64);
        }
        for (int i = 0; i < BURST_BLOCKS; i++) hak_free(blk[i]);
    }
    b->flushes = class_nflushes(b->cls) - f0;
    return NULL;
}

/* A heap that hands pages of a class back and soon fetches them again
 * keeps more of that class (before: each batch handed 31 pages back); a
 * tcache_max written by hand, even the default value, is kept to.  (The
 * by-hand run comes last: a written tcache_max stays.) */
TEST(threads_bursts_of_one_size_keep_their_pages) {
    char cls[64];
    REQUIRE_TRUE(class_stats_name(48 * KiB, cls, sizeof cls), "a 48 KiB class");
    struct burst runs[2] = {{.cls = cls}, {.cls = cls, .set_by_hand = true}};
    for (int k = 0; k < 2; k++) {
        pthread_t t;
        REQUIRE_EQ_U(pthread_create(&t, NULL, burst_thread, &runs[k]), 0, "pthread_create");
        pthread_join(t, NULL);
        REQUIRE_EQ_U(runs[k].rc, 0, "the burst thread's ctl calls and allocations");
    }
    hk_test_log("%d batches of %d blocks of 48 KiB: %llu pages handed back (default), %llu (set by hand)",
                BURST_MEASURED, BURST_BLOCKS, (unsigned long long)runs[0].flushes,
                (unsigned long long)runs[1].flushes);
    EXPECT_LE_U(runs[0].flushes, BURST_MEASURED, "at most a page handed back a batch");
    EXPECT_GE_U(runs[1].flushes, (uint64_t)BURST_MEASURED * (BURST_BLOCKS - 2),
                "tcache_max set by hand: every page beyond it handed back");
}

TEST_MAIN()
