/*
 * Oversubscribed threads doing random malloc/calloc/realloc/free over every
 * tier (tiny, mid, large, huge), each block carrying a pattern that is
 * checked before it is freed or resized.
 */
#include "harness.h"
#include "stress_common.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- mixed_tiers_oversubscribed ---- */

#define MIX_SLOTS 128

struct mix_slot {
    unsigned char *p;
    size_t req;    /* requested size: what realloc must preserve */
    size_t filled; /* bytes the pattern covers (up to the usable size) */
    uint64_t tag;
};

struct mix_arg {
    unsigned id, iters;
    hk_errs *errs;
    hk_barrier *start;
    uint64_t allocs, frees, verified, reallocs;
};

/* Zero check: every byte up to HK_DENSE_MAX, then every word of the first
 * and last 4 KiB and 8 words of every page in between. */
static int is_zero(const unsigned char *p, size_t n) {
    size_t lim = n <= HK_DENSE_MAX ? n : HK_EDGE;
    for (size_t i = 0; i < lim; i++)
        if (p[i]) return 0;
    if (n <= HK_DENSE_MAX) return 1;
    for (size_t o = HK_EDGE; o + 64 <= n - HK_EDGE; o += 4096)
        for (size_t i = 0; i < 64; i++)
            if (p[o + i]) return 0;
    for (size_t i = n - HK_EDGE; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void mix_set(struct mix_slot *s, unsigned char *p, size_t req,
                    uint64_t tag, hk_rng *r) {
    s->p = p;
    s->req = req;
    s->tag = tag;
    s->filled = req;
    /* Half the time write all the way to the usable size: the allocator
     * promises those bytes are ours. */
    if ((hk_rand(r) & 1) && req <= HK_DENSE_MAX)
        s->filled = hak_malloc_usable_size(p);
    hk_fill(p, s->filled, tag);
}

static void *mix_worker(void *v) {
    struct mix_arg *a = v;
    struct mix_slot slots[MIX_SLOTS];
    hk_rng r;
    uint64_t seq = 0;
    memset(slots, 0, sizeof slots);
    hk_rng_seed(&r, 0x1000 + a->id);
    hk_barrier_wait(a->start);
    for (unsigned it = 0; it < a->iters; it++) {
        struct mix_slot *s = &slots[hk_below(&r, MIX_SLOTS)];
        uint64_t tag = hk_mix64(((uint64_t)a->id << 40) | seq++);
        if (s->p == NULL) {
            size_t n = hk_random_size(&r, 1);
            unsigned how = (unsigned)hk_below(&r, 10);
            unsigned char *p;
            if (how == 0) {
                p = hak_calloc(1, n);
                if (p && !is_zero(p, n))
                    HK_ERR(a->errs, "calloc(1, %zu) = %p not zeroed", n, (void *)p);
            } else if (how == 1) {
                p = hak_realloc(NULL, n);
            } else {
                p = hak_malloc(n);
            }
            if (!hk_check_new(a->errs, "alloc", p, n)) {
                hak_free(p);
                continue;
            }
            a->allocs++;
            mix_set(s, p, n, tag, &r);
            continue;
        }
        unsigned what = (unsigned)hk_below(&r, 10);
        if (!hk_verify(a->errs, "live block", s->p, s->filled, s->tag)) {
            /* do not free memory we no longer trust */
            s->p = NULL;
            continue;
        }
        a->verified++;
        if (what < 7) {
            hak_free(s->p);
            a->frees++;
            s->p = NULL;
        } else if (what < 9) {
            size_t n = hk_random_size(&r, 1);
            if (n == 0) n = 1; /* realloc(p, 0) frees: covered elsewhere */
            unsigned char *q = hak_realloc(s->p, n);
            if (!hk_check_new(a->errs, "realloc", q, n)) {
                if (q == NULL) {
                    hak_free(s->p);
                    a->frees++;
                }
                s->p = NULL;
                continue;
            }
            size_t keep = hk_min(s->req, n);
            size_t bad = hk_check_prefix(q, s->filled, keep, s->tag);
            if (bad != keep)
                HK_ERR(a->errs, "realloc %zu -> %zu lost contents at offset %zu",
                       s->req, n, bad);
            a->reallocs++;
            mix_set(s, q, n, tag, &r);
        }
    }
    for (unsigned i = 0; i < MIX_SLOTS; i++) {
        if (slots[i].p == NULL) continue;
        if (hk_verify(a->errs, "final", slots[i].p, slots[i].filled, slots[i].tag))
            a->verified++;
        hak_free(slots[i].p);
        a->frees++;
    }
    return NULL;
}

TEST(mixed_tiers_oversubscribed) {
    unsigned nt = hk_test_threads();
    unsigned iters = hk_iters(15000);
    pthread_t th[nt];
    struct mix_arg args[nt];
    hk_errs errs;
    hk_barrier start;
    hk_errs_init(&errs);
    hk_barrier_init(&start, nt);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct mix_arg){ .id = i, .iters = iters, .errs = &errs,
                                    .start = &start };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, mix_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t allocs = 0, frees = 0, verified = 0, reallocs = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        allocs += args[i].allocs;
        frees += args[i].frees;
        verified += args[i].verified;
        reallocs += args[i].reallocs;
    }
    hk_barrier_destroy(&start);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(allocs, frees, "every allocated block was freed");
    EXPECT_GE_U(verified, frees, "every freed block was verified first");
    EXPECT_GE_U(allocs, (uint64_t)nt * iters / 4, "enough allocations ran");
    EXPECT_GE_U(reallocs, 1, "some reallocs ran");
}

/* ---- mixed_boundary_sizes: sizes at and around every tier edge ---- */

struct edge_arg {
    unsigned id, rounds;
    hk_errs *errs;
    hk_barrier *start;
    uint64_t verified;
};

static const size_t edge_sizes[] = {
    0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 127, 128, 129,
    255, 256, 257, 511, 512, 513, 1008, 1023, 1024, 1025, 1040, 2047, 2048,
    2049, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384, 16385, 32767,
    32768, 32769, 32784, 65535, 65536, 65537, 131072, 262143, 524288, 1048575,
    1048576, 1048577, 1048592, 2097151, 2097152, 2097153,
};
#define NEDGE (sizeof edge_sizes / sizeof edge_sizes[0])

static void *edge_worker(void *v) {
    struct edge_arg *a = v;
    void *ps[NEDGE];
    hk_rng r;
    hk_rng_seed(&r, 0x2000 + a->id);
    hk_barrier_wait(a->start);
    for (unsigned round = 0; round < a->rounds; round++) {
        for (size_t i = 0; i < NEDGE; i++) {
            size_t n = edge_sizes[i];
            ps[i] = hak_malloc(n);
            if (!hk_check_new(a->errs, "edge", ps[i], n)) {
                hak_free(ps[i]);
                ps[i] = NULL;
                continue;
            }
            hk_fill(ps[i], n, hk_mix64(a->id * 1000003ULL + round * NEDGE + i));
        }
        /* free in a random order so neighbouring classes interleave */
        size_t order[NEDGE];
        for (size_t i = 0; i < NEDGE; i++) order[i] = i;
        for (size_t i = NEDGE - 1; i > 0; i--) {
            size_t j = hk_below(&r, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (size_t k = 0; k < NEDGE; k++) {
            size_t i = order[k];
            if (ps[i] == NULL) continue;
            if (hk_verify(a->errs, "edge", ps[i], edge_sizes[i],
                          hk_mix64(a->id * 1000003ULL + round * NEDGE + i)))
                a->verified++;
            hak_free(ps[i]);
        }
    }
    return NULL;
}

TEST(mixed_boundary_sizes) {
    unsigned nt = hk_test_threads();
    unsigned rounds = hk_iters(25);
    pthread_t th[nt];
    struct edge_arg args[nt];
    hk_errs errs;
    hk_barrier start;
    hk_errs_init(&errs);
    hk_barrier_init(&start, nt);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct edge_arg){ .id = i, .rounds = rounds, .errs = &errs,
                                     .start = &start };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, edge_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t verified = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        verified += args[i].verified;
    }
    hk_barrier_destroy(&start);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(verified, (uint64_t)nt * rounds * NEDGE,
                "every boundary-size block verified");
}

/* ---- calloc_zeroed_after_reuse: dirty blocks of every tier, free them,
 * calloc the same sizes (which likely reuses them, BigCache included) and
 * demand zeros over every byte. ---- */

struct cz_arg {
    unsigned id, rounds;
    hk_errs *errs;
    uint64_t checked;
};

static const size_t cz_sizes[] = {
    16, 24, 100, 512, 1024, 1500, 4096, 20000, 32768, 40000, 200000, 1 << 20,
    (1 << 20) + 4096, 2 << 20, 3 << 20,
};
#define NCZ (sizeof cz_sizes / sizeof cz_sizes[0])

static int all_zero(const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w) return 0;
    }
    for (; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void *cz_worker(void *v) {
    struct cz_arg *a = v;
    void *ps[NCZ];
    for (unsigned round = 0; round < a->rounds; round++) {
        for (size_t i = 0; i < NCZ; i++) {
            ps[i] = hak_malloc(cz_sizes[i]);
            if (!hk_check_new(a->errs, "dirty", ps[i], cz_sizes[i])) {
                hak_free(ps[i]);
                ps[i] = NULL;
                continue;
            }
            memset(ps[i], 0xA5, hak_malloc_usable_size(ps[i]));
        }
        for (size_t i = 0; i < NCZ; i++) hak_free(ps[i]);
        for (size_t i = 0; i < NCZ; i++) {
            size_t n = cz_sizes[i];
            /* half as calloc(n, 1), half as calloc(k, n / k) */
            unsigned char *p = (i & 1) ? hak_calloc(n, 1) : hak_calloc((n + 7) / 8, 8);
            if (!hk_check_new(a->errs, "calloc", p, n)) {
                hak_free(p);
                ps[i] = NULL;
                continue;
            }
            if (!all_zero(p, n))
                HK_ERR(a->errs, "calloc(%zu) = %p returned dirty memory", n,
                       (void *)p);
            a->checked++;
            ps[i] = p;
        }
        for (size_t i = 0; i < NCZ; i++) hak_free(ps[i]);
    }
    return NULL;
}

TEST(calloc_zeroed_after_reuse) {
    unsigned nt = hk_test_threads();
    unsigned rounds = hk_iters(12);
    pthread_t th[nt];
    struct cz_arg args[nt];
    hk_errs errs;
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct cz_arg){ .id = i, .rounds = rounds, .errs = &errs };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, cz_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t checked = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        checked += args[i].checked;
    }
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(checked, (uint64_t)nt * rounds * NCZ, "every calloc checked");
}

/* ---- huge_churn_threads: huge blocks (mapping + BigCache) allocated,
 * resized and freed by several threads at once, a few of them live at a
 * time, contents checked at every step. ---- */

struct hc_arg {
    unsigned id, iters;
    hk_errs *errs;
    uint64_t verified, frees, allocs;
};

#define HC_LIVE 4

static void *hc_worker(void *v) {
    struct hc_arg *a = v;
    struct { unsigned char *p; size_t n; uint64_t tag; } live[HC_LIVE];
    hk_rng r;
    memset(live, 0, sizeof live);
    hk_rng_seed(&r, 0x3000 + a->id);
    for (unsigned it = 0; it < a->iters; it++) {
        unsigned k = (unsigned)hk_below(&r, HC_LIVE);
        uint64_t tag = hk_mix64(((uint64_t)a->id << 32) | it);
        /* sizes: mostly just above the huge threshold, some up to 8 MiB,
         * some page multiples (the common case of a BigCache hit) */
        size_t n;
        switch (hk_below(&r, 3)) {
        case 0: n = hk_range(&r, HK_LARGE_MAX + 1, 2 * HK_LARGE_MAX); break;
        case 1: n = hk_range(&r, 1, 8) << 20; break;
        default: n = hk_range(&r, HK_LARGE_MAX + 1, 8 * HK_LARGE_MAX); break;
        }
        if (live[k].p == NULL) {
            unsigned char *p = hak_malloc(n);
            if (!hk_check_new(a->errs, "huge malloc", p, n)) {
                hak_free(p);
                continue;
            }
            a->allocs++;
            hk_fill(p, n, tag);
            live[k].p = p;
            live[k].n = n;
            live[k].tag = tag;
            continue;
        }
        if (!hk_verify(a->errs, "huge", live[k].p, live[k].n, live[k].tag)) {
            live[k].p = NULL;
            continue;
        }
        a->verified++;
        if (hk_rand(&r) & 1) {
            hak_free(live[k].p);
            a->frees++;
            live[k].p = NULL;
        } else {
            /* resize, sometimes down into the large tier and back */
            if (hk_below(&r, 4) == 0) n = hk_range(&r, HK_MID_MAX + 1, HK_LARGE_MAX);
            unsigned char *q = hak_realloc(live[k].p, n);
            if (!hk_check_new(a->errs, "huge realloc", q, n)) {
                if (q == NULL) {
                    hak_free(live[k].p);
                    a->frees++;
                }
                live[k].p = NULL;
                continue;
            }
            size_t keep = hk_min(live[k].n, n);
            size_t bad = hk_check_prefix(q, live[k].n, keep, live[k].tag);
            if (bad != keep)
                HK_ERR(a->errs, "huge realloc %zu -> %zu lost contents at %zu",
                       live[k].n, n, bad);
            hk_fill(q, n, tag);
            live[k].p = q;
            live[k].n = n;
            live[k].tag = tag;
        }
    }
    for (unsigned k = 0; k < HC_LIVE; k++) {
        if (live[k].p == NULL) continue;
        if (hk_verify(a->errs, "huge final", live[k].p, live[k].n, live[k].tag))
            a->verified++;
        hak_free(live[k].p);
        a->frees++;
    }
    return NULL;
}

TEST(huge_churn_threads) {
    unsigned nt = hk_test_threads();
    unsigned iters = hk_iters(150);
    pthread_t th[nt];
    struct hc_arg args[nt];
    hk_errs errs;
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct hc_arg){ .id = i, .iters = iters, .errs = &errs };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, hc_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t allocs = 0, frees = 0, verified = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        allocs += args[i].allocs;
        frees += args[i].frees;
        verified += args[i].verified;
    }
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(allocs, frees, "every huge block freed");
    EXPECT_GE_U(verified, frees, "every huge block verified before free");
}

TEST_MAIN()
