/*
 * Mode flips under load: hk_test_threads() workers allocate, verify,
 * reallocate and free random sizes across every tier (and hand blocks to
 * each other for remote frees) while the main thread writes config.mode,
 * cycling through all five modes, every millisecond and toggles
 * config.features.* at random, for about 2 s times HAKMEM_TEST_SCALE.
 * Every block's content is verified before it is freed; nothing may crash;
 * at the end config.mode reads back the last mode written and the features
 * are that mode's preset.
 */
#include "harness.h"
#include "stress_common.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *const modes[5] = {"minimal", "fast", "balanced", "learning", "research"};
static const char *const features[4] = {"tcache", "bigcache", "decay", "stats_page"};
static const bool presets[5][4] = {
    {false, false, false, false},
    {true, true, true, false},
    {true, true, true, true},
    {true, true, true, true},
    {true, true, true, true},
};

enum { SLOTS = 128, HANDOFF = 64 };

struct slot {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

/* Blocks passed between threads: whoever takes one verifies and frees it
 * (usually a remote free). */
static struct {
    pthread_mutex_t mu;
    struct slot s[HANDOFF];
} handoff = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_int stop;
static hk_errs errs;
static atomic_ullong total_ops, total_handoffs;

static void sleep_us(unsigned us) {
    struct timespec ts = {0, (long)us * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static size_t pick_size(hk_rng *r) {
    size_t n = hk_random_size(r, 1);
    /* Keep the huge ones modest: at most 2 MiB plus a little. */
    if (n > ((size_t)2 << 20)) n = ((size_t)1 << 20) + hk_below(r, (size_t)1 << 20);
    return n;
}

static int new_block(hk_rng *r, struct slot *s, const char *where) {
    size_t n = pick_size(r);
    unsigned char *p;
    unsigned kind = (unsigned)hk_below(r, 16);
    if (kind == 0) {
        p = hak_calloc(1, n);
        if (p != NULL) {
            size_t lim = n < 4096 ? n : 4096;
            for (size_t i = 0; i < lim; i++)
                if (p[i] != 0) {
                    HK_ERR(&errs, "%s: calloc(%zu) byte %zu is %u", where, n, i, p[i]);
                    break;
                }
        }
    } else if (kind == 1) {
        size_t align = (size_t)1 << (4 + hk_below(r, 9)); /* 16 .. 4096 */
        p = hak_aligned_alloc(align, n);
        if (p != NULL && ((uintptr_t)p & (align - 1)) != 0)
            HK_ERR(&errs, "%s: aligned_alloc(%zu, %zu) gave %p", where, align, n, (void *)p);
    } else {
        p = hak_malloc(n);
    }
    if (!hk_check_new(&errs, where, p, n)) {
        s->p = NULL;
        return 0;
    }
    s->p = p;
    s->n = n;
    s->tag = hk_rand(r);
    hk_fill(p, n, s->tag);
    return 1;
}

static void drop_block(struct slot *s, const char *where) {
    hk_verify(&errs, where, s->p, s->n, s->tag);
    hak_free(s->p);
    s->p = NULL;
}

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    hk_rng r;
    hk_rng_seed(&r, 0xF11Bu + id);
    struct slot slots[SLOTS];
    memset(slots, 0, sizeof slots);
    unsigned long long ops = 0, given = 0;
    bool tc_off = false;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct slot *s = &slots[hk_below(&r, SLOTS)];
        unsigned op = (unsigned)hk_below(&r, 100);
        ops++;
        if (s->p == NULL) {
            new_block(&r, s, "alloc");
        } else if (op < 55) {
            drop_block(s, "free");
        } else if (op < 75) {
            /* realloc: the common prefix survives. */
            size_t nn = pick_size(&r);
            if (!hk_verify(&errs, "before realloc", s->p, s->n, s->tag)) {
                hak_free(s->p);
                s->p = NULL;
                continue;
            }
            unsigned char *q = hak_realloc(s->p, nn);
            if (nn != 0 && q == NULL) {
                HK_ERR(&errs, "realloc(%p, %zu) failed", (void *)s->p, nn);
                continue; /* the old block is intact */
            }
            if (nn == 0) {
                s->p = NULL;
                continue;
            }
            size_t keep = s->n < nn ? s->n : nn;
            size_t bad = hk_check_prefix(q, s->n, keep, s->tag);
            if (bad != keep)
                HK_ERR(&errs, "realloc %zu -> %zu lost byte %zu", s->n, nn, bad);
            if (!hk_aligned_ok(q, nn)) HK_ERR(&errs, "realloc gave misaligned %p", (void *)q);
            s->p = q;
            s->n = nn;
            s->tag = hk_rand(&r);
            hk_fill(q, nn, s->tag);
        } else if (op < 90) {
            /* Swap with the handoff array: give ours, take another's. */
            struct slot mine = *s, theirs;
            size_t k = hk_below(&r, HANDOFF);
            pthread_mutex_lock(&handoff.mu);
            theirs = handoff.s[k];
            handoff.s[k] = mine;
            pthread_mutex_unlock(&handoff.mu);
            given++;
            *s = theirs;
            if (s->p != NULL) drop_block(s, "handoff free");
        } else if (op < 97) {
            if (!hk_verify(&errs, "check", s->p, s->n, s->tag)) {
                hak_free(s->p);
                s->p = NULL;
            }
        } else if (op < 99) {
            int rc = hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
            if (rc != 0) HK_ERR(&errs, "thread.tcache.flush: %d", rc);
        } else {
            bool on = tc_off;
            int rc = hak_ctl("thread.tcache.enabled", NULL, NULL, &on, sizeof on);
            if (rc != 0) HK_ERR(&errs, "thread.tcache.enabled = %d: %d", on, rc);
            tc_off = !on;
        }
    }
    if (tc_off) {
        bool on = true;
        hak_ctl("thread.tcache.enabled", NULL, NULL, &on, sizeof on);
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (slots[i].p != NULL) drop_block(&slots[i], "final free");
    atomic_fetch_add(&total_ops, ops);
    atomic_fetch_add(&total_handoffs, given);
    return NULL;
}

static int write_mode(const char *m) {
    return hak_ctl("config.mode", NULL, NULL, &m, sizeof m);
}

TEST(mode_flip_under_load) {
    unsigned nthreads = hk_test_threads();
    if (nthreads > 64) nthreads = 64;
    uint64_t duration = 2000ull * hk_test_scale();
    hk_errs_init(&errs);
    atomic_store(&stop, 0);
    atomic_store(&total_ops, 0);
    atomic_store(&total_handoffs, 0);
    const char *start_mode = NULL;
    size_t len = sizeof start_mode;
    REQUIRE_EQ_U(hak_ctl("config.mode", &start_mode, &len, NULL, 0), 0, "config.mode");

    pthread_t th[64];
    unsigned started = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t) != 0) break;
        started++;
    }
    EXPECT_EQ_U(started, nthreads, "worker threads started");

    hk_rng r;
    hk_rng_seed(&r, 0x30DE);
    unsigned last = 2, flips = 0, toggles = 0, bad_rc = 0;
    unsigned per_mode[5] = {0};
    uint64_t t0 = hk_test_now_ms();
    while (hk_test_now_ms() - t0 < duration) {
        /* All five modes in every round of five flips, in random order. */
        unsigned order[5] = {0, 1, 2, 3, 4};
        for (unsigned i = 4; i > 0; i--) {
            unsigned j = (unsigned)hk_below(&r, i + 1), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (unsigned i = 0; i < 5; i++) {
            last = order[i];
            int rc = write_mode(modes[last]);
            if (rc != 0 && bad_rc++ < 5)
                hk_test_fail(__FILE__, __LINE__, "config.mode = %s: %d", modes[last], rc);
            flips++;
            per_mode[last]++;
            if (hk_below(&r, 3) == 0) {
                unsigned f = (unsigned)hk_below(&r, 4);
                bool on = hk_rand(&r) & 1;
                char name[64];
                snprintf(name, sizeof name, "config.features.%s", features[f]);
                rc = hak_ctl(name, NULL, NULL, &on, sizeof on);
                if (rc != 0 && bad_rc++ < 5)
                    hk_test_fail(__FILE__, __LINE__, "%s = %d: %d", name, on, rc);
                toggles++;
            }
            /* The main thread allocates a little too. */
            void *p = hak_malloc(hk_random_size(&r, 0));
            hak_free(p);
            sleep_us(1000);
        }
    }
    /* The last action is a mode write: its preset must hold at the end. */
    last = (unsigned)hk_below(&r, 5);
    EXPECT_EQ_U(write_mode(modes[last]), 0, "final mode write");
    flips++;
    atomic_store(&stop, 1);
    for (unsigned t = 0; t < started; t++) pthread_join(th[t], NULL);
    for (unsigned k = 0; k < HANDOFF; k++)
        if (handoff.s[k].p != NULL) drop_block(&handoff.s[k], "leftover handoff");

    const char *got = NULL;
    len = sizeof got;
    EXPECT_EQ_U(hak_ctl("config.mode", &got, &len, NULL, 0), 0, "read config.mode");
    if (got == NULL || strcmp(got, modes[last]) != 0)
        hk_test_fail(__FILE__, __LINE__, "config.mode reads %s, last written %s",
                     got ? got : "(null)", modes[last]);
    for (unsigned f = 0; f < 4; f++) {
        char name[64];
        bool b = !presets[last][f];
        len = sizeof b;
        snprintf(name, sizeof name, "config.features.%s", features[f]);
        EXPECT_EQ_U(hak_ctl(name, &b, &len, NULL, 0), 0, name);
        if (b != presets[last][f])
            hk_test_fail(__FILE__, __LINE__, "after the final %s, %s is %d", modes[last], name, b);
    }
    /* The allocator still works in that mode and back in the start mode. */
    void *p = hak_malloc(100), *q = hak_malloc(3 << 20);
    EXPECT_TRUE(p != NULL && q != NULL, "allocation after the flips");
    hak_free(p);
    hak_free(q);
    if (start_mode != NULL) EXPECT_EQ_U(write_mode(start_mode), 0, "restore the start mode");
    hk_test_log("%u threads, %llu ops, %llu handoffs, %u mode flips (%u/%u/%u/%u/%u), "
                "%u feature toggles in %llu ms",
                started, (unsigned long long)atomic_load(&total_ops),
                (unsigned long long)atomic_load(&total_handoffs), flips, per_mode[0],
                per_mode[1], per_mode[2], per_mode[3], per_mode[4], toggles,
                (unsigned long long)(hk_test_now_ms() - t0));
    EXPECT_GE_U(flips, 5, "every mode written");
    HK_ERRS_REPORT(&errs);
}

TEST_MAIN()
