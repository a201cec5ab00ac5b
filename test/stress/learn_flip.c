/*
 * The learner flipped on and off under load: hk_test_threads() workers
 * churn random sizes, batches of one hot class (what the learner tunes
 * tcache_max for) and a few live huge blocks (the BigCache) while the main
 * thread switches config.mode between learning and balanced (learning
 * spells of 20-300 ms, balanced ones of 5-50 ms), toggles learn.freeze,
 * config.features.learner and decay, and reads every learn.* leaf --
 * strings included -- as rounds run, for about 2 s times HAKMEM_TEST_SCALE.
 * Every block is verified before it is freed; nothing may crash; at the end,
 * in balanced mode, every knob is back at its default and no round runs.
 */
#include "harness.h"
#include "stress_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NCLASSES 61
enum { SLOTS = 64 };

struct slot {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

static atomic_int stop;
static hk_errs errs;
static atomic_ullong total_ops, total_batches;

static bool new_block(hk_rng *r, struct slot *s, size_t n, const char *where) {
    unsigned char *p = hak_malloc(n);
    if (!hk_check_new(&errs, where, p, n)) {
        s->p = NULL;
        return false;
    }
    s->p = p;
    s->n = n;
    s->tag = hk_rand(r);
    hk_fill(p, n, s->tag);
    return true;
}

static void drop_block(struct slot *s, const char *where) {
    hk_verify(&errs, where, s->p, s->n, s->tag);
    hak_free(s->p);
    s->p = NULL;
}

/* A batch of one hot class: allocated, filled, verified, freed. */
static void hot_batch(hk_rng *r) {
    static const size_t sizes[3] = {512, 4096, 48 << 10};
    static const unsigned counts[3] = {256, 128, 24};
    unsigned k = (unsigned)hk_below(r, 3);
    struct slot b[256];
    for (unsigned i = 0; i < counts[k]; i++) new_block(r, &b[i], sizes[k], "hot alloc");
    for (unsigned i = 0; i < counts[k]; i++)
        if (b[i].p != NULL) drop_block(&b[i], "hot free");
}

/* One to three huge blocks of 1.5-4 MiB live at once. */
static void huge_round(hk_rng *r) {
    struct slot b[3];
    unsigned n = 1 + (unsigned)hk_below(r, 3);
    for (unsigned i = 0; i < n; i++)
        new_block(r, &b[i], hk_range(r, (size_t)3 << 19, (size_t)4 << 20), "huge alloc");
    for (unsigned i = 0; i < n; i++)
        if (b[i].p != NULL) drop_block(&b[i], "huge free");
}

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    hk_rng r;
    hk_rng_seed(&r, 0x1EA4u + id);
    struct slot slots[SLOTS];
    memset(slots, 0, sizeof slots);
    unsigned long long ops = 0, batches = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned op = (unsigned)hk_below(&r, 100);
        ops++;
        if (op < 8) {
            hot_batch(&r);
            batches++;
        } else if (op < 9) {
            huge_round(&r);
        } else {
            struct slot *s = &slots[hk_below(&r, SLOTS)];
            if (s->p != NULL) drop_block(s, "free");
            else new_block(&r, s, hk_random_size(&r, 0), "alloc");
        }
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (slots[i].p != NULL) drop_block(&slots[i], "final free");
    atomic_fetch_add(&total_ops, ops);
    atomic_fetch_add(&total_batches, batches);
    return NULL;
}

static int write_mode(const char *m) { return hak_ctl("config.mode", NULL, NULL, &m, sizeof m); }

static uint64_t read_u64(const char *name) {
    uint64_t v = 0;
    size_t len = sizeof v;
    if (hak_ctl(name, &v, &len, NULL, 0) != 0) HK_ERR(&errs, "read %s", name);
    return v;
}

/* Reads every learn.* leaf: what hakctl dump learn does while rounds run. */
static int read_leaf(const char *name, int type, int writable, void *arg) {
    unsigned char buf[64];
    size_t len;
    switch (type) {
    case HAK_CTL_BOOL: len = sizeof(bool); break;
    case HAK_CTL_UNSIGNED: len = sizeof(unsigned); break;
    case HAK_CTL_STRING: len = sizeof(const char *); break;
    default: len = 8; break;
    }
    int rc = hak_ctl(name, buf, &len, NULL, 0);
    if (rc != 0) HK_ERR(&errs, "read %s: %d", name, rc);
    if (rc == 0 && type == HAK_CTL_STRING) {
        const char *s;
        memcpy(&s, buf, sizeof s);
        if (s == NULL || strnlen(s, 200) >= 200) HK_ERR(&errs, "%s: bad string", name);
    }
    (*(unsigned *)arg)++;
    return 0;
}

static void read_defaults(unsigned tc[NCLASSES], size_t *bc, int64_t *decay) {
    char name[64];
    for (unsigned c = 0; c < NCLASSES; c++) {
        size_t len = sizeof tc[c];
        snprintf(name, sizeof name, "learn.tcache.%u.value", c);
        if (hak_ctl(name, &tc[c], &len, NULL, 0) != 0) HK_ERR(&errs, "read %s", name);
    }
    size_t len = sizeof *bc;
    hak_ctl("learn.bigcache.value", bc, &len, NULL, 0);
    len = sizeof *decay;
    hak_ctl("learn.decay.value", decay, &len, NULL, 0);
}

TEST(learn_flip_under_load) {
    unsigned nthreads = hk_test_threads();
    if (nthreads > 64) nthreads = 64;
    uint64_t duration = 2000ull * hk_test_scale();
    hk_errs_init(&errs);
    REQUIRE_EQ_U(write_mode("balanced"), 0, "balanced to start");
    unsigned tc0[NCLASSES];
    size_t bc0 = 0;
    int64_t decay0 = 0;
    read_defaults(tc0, &bc0, &decay0);

    pthread_t th[64];
    unsigned started = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t) != 0) break;
        started++;
    }
    EXPECT_EQ_U(started, nthreads, "worker threads started");

    hk_rng r;
    hk_rng_seed(&r, 0xF1A9);
    unsigned flips = 0, reads = 0, toggles = 0;
    uint64_t t0 = hk_test_now_ms(), learning_ms = 0;
    while (hk_test_now_ms() - t0 < duration) {
        uint64_t spell = 20 + hk_below(&r, 281), s0 = hk_test_now_ms();
        if (write_mode("learning") != 0) HK_ERR(&errs, "config.mode = learning");
        flips++;
        while (hk_test_now_ms() - s0 < spell) {
            unsigned what = (unsigned)hk_below(&r, 10);
            if (what == 0) {
                bool on = hk_rand(&r) & 1;
                if (hak_ctl("learn.freeze", NULL, NULL, &on, sizeof on) != 0)
                    HK_ERR(&errs, "learn.freeze");
                toggles++;
            } else if (what == 1) {
                bool on = hk_rand(&r) & 1;
                if (hak_ctl("config.features.learner", NULL, NULL, &on, sizeof on) != 0)
                    HK_ERR(&errs, "config.features.learner");
                toggles++;
            } else if (what == 2) {
                bool on = hk_rand(&r) & 1;
                hak_ctl("config.features.decay", NULL, NULL, &on, sizeof on);
                toggles++;
            } else {
                hak_ctl_list("learn", read_leaf, &reads);
            }
            hk_test_sleep_ms(1 + (unsigned)hk_below(&r, 10));
        }
        learning_ms += hk_test_now_ms() - s0;
        if (write_mode("balanced") != 0) HK_ERR(&errs, "config.mode = balanced");
        flips++;
        hk_test_sleep_ms(5 + (unsigned)hk_below(&r, 46));
    }
    bool off = false;
    hak_ctl("learn.freeze", NULL, NULL, &off, sizeof off);
    EXPECT_EQ_U(write_mode("balanced"), 0, "final balanced");
    /* Balanced: no learner, every knob where it started, no round runs. */
    unsigned tc[NCLASSES];
    size_t bc = 0;
    int64_t decay = 0;
    read_defaults(tc, &bc, &decay);
    unsigned moved = 0;
    for (unsigned c = 0; c < NCLASSES; c++) moved += tc[c] != tc0[c];
    EXPECT_EQ_U(moved, 0, "every tcache_max back at its default");
    EXPECT_EQ_U(bc, bc0, "BigCache capacity back");
    EXPECT_EQ_U(decay, decay0, "decay back");
    uint64_t rounds = read_u64("learn.nrounds");
    hk_test_sleep_ms(150);
    EXPECT_EQ_U(read_u64("learn.nrounds"), rounds, "balanced: no rounds");
    atomic_store(&stop, 1);
    for (unsigned t = 0; t < started; t++) pthread_join(th[t], NULL);
    hk_test_log("%u threads, %llu ops, %llu hot batches, %u mode flips (%llu ms learning), "
                "%u toggles, %u leaf reads, %llu learner rounds, %llu changes",
                started, (unsigned long long)atomic_load(&total_ops),
                (unsigned long long)atomic_load(&total_batches), flips,
                (unsigned long long)learning_ms, toggles, reads,
                (unsigned long long)read_u64("learn.nrounds"),
                (unsigned long long)read_u64("learn.nchanges"));
    HK_ERRS_REPORT(&errs);
}

TEST_MAIN()
