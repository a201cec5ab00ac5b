/*
 * realloc chains: blocks resized again and again across every tier, by their
 * own thread and by others, with the preserved prefix checked at each step.
 */
#include "harness.h"
#include "stress_common.h"

#include <pthread.h>
#include <stdlib.h>

struct chain {
    unsigned char *p;
    size_t n;
    uint64_t tag;
    pthread_mutex_t mu; /* only for the shared chains */
};

/* A new size for a chain: random over every tier, or a modest grow/shrink
 * of the current size (the common pattern of buffers and strings). */
static size_t next_size(hk_rng *r, size_t cur, int huge_ok) {
    switch (hk_below(r, 4)) {
    case 0:
        return hk_random_size(r, huge_ok);
    case 1: { /* grow by up to 50% */
        size_t n = cur + 1 + hk_below(r, cur / 2 + 16);
        return (!huge_ok && n > HK_LARGE_MAX) ? HK_LARGE_MAX : n;
    }
    case 2: /* shrink to 50..100% */
        return cur / 2 + hk_below(r, cur / 2 + 1);
    default: { /* double or halve */
        size_t n = (hk_rand(r) & 1) ? cur * 2 + 1 : cur / 2;
        if (n > (huge_ok ? HK_HUGE_MAX : HK_LARGE_MAX)) n = cur / 2;
        return n;
    }
    }
}

/* One realloc step on c: checks the prefix, the no-move rule, the new
 * block's alignment and usable size, then writes a fresh pattern.
 * Returns 1 when all was well. */
static int chain_step(hk_errs *e, struct chain *c, size_t n, uint64_t tag) {
    if (n == 0) n = 1; /* realloc(p, 0) frees; not what a chain wants */
    size_t usable = c->p ? hak_malloc_usable_size(c->p) : 0;
    unsigned char *q = hak_realloc(c->p, n);
    if (!hk_check_new(e, "realloc", q, n)) {
        if (q == NULL) hak_free(c->p);
        c->p = NULL;
        return 0;
    }
    if (c->p && n > c->n && n <= usable && q != c->p)
        HK_ERR(e, "realloc %zu -> %zu moved the block although the usable "
               "size was %zu", c->n, n, usable);
    int ok = 1;
    if (c->p) {
        size_t keep = hk_min(c->n, n);
        size_t bad = hk_check_prefix(q, c->n, keep, c->tag);
        if (bad != keep) {
            HK_ERR(e, "realloc(%p, %zu -> %zu) = %p lost contents at offset %zu",
                   (void *)c->p, c->n, n, (void *)q, bad);
            ok = 0;
        }
    }
    c->p = q;
    c->n = n;
    c->tag = tag;
    hk_fill(q, n, tag);
    return ok;
}

/* ---- realloc_chains_threads: each thread its own chains ---- */

#define OWN_CHAINS 8

struct own_arg {
    unsigned id, steps;
    hk_errs *errs;
    uint64_t ok_steps;
};

static void *own_worker(void *v) {
    struct own_arg *a = v;
    struct chain ch[OWN_CHAINS];
    hk_rng r;
    hk_rng_seed(&r, 0x7000 + a->id);
    memset(ch, 0, sizeof ch);
    for (unsigned s = 0; s < a->steps; s++) {
        struct chain *c = &ch[hk_below(&r, OWN_CHAINS)];
        uint64_t tag = hk_mix64(((uint64_t)a->id << 32) | s);
        size_t n = c->p ? next_size(&r, c->n, hk_below(&r, 8) == 0)
                        : hk_random_size(&r, 0);
        if (chain_step(a->errs, c, n, tag)) a->ok_steps++;
    }
    for (unsigned i = 0; i < OWN_CHAINS; i++) {
        if (ch[i].p == NULL) continue;
        hk_verify(a->errs, "chain end", ch[i].p, ch[i].n, ch[i].tag);
        hak_free(ch[i].p);
    }
    return NULL;
}

TEST(realloc_chains_threads) {
    unsigned nt = hk_test_threads();
    unsigned steps = hk_iters(6000);
    pthread_t th[nt];
    struct own_arg args[nt];
    hk_errs errs;
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct own_arg){ .id = i, .steps = steps, .errs = &errs };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, own_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t ok = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok_steps;
    }
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(ok, (uint64_t)nt * steps, "every realloc step verified");
}

/* ---- realloc_chains_shared: chains shared by all threads, so a block
 * allocated by one thread is resized (and finally freed) by others ---- */

#define SHARED_CHAINS 64

struct shared_arg {
    unsigned id, steps;
    struct chain *ch;
    hk_errs *errs;
    uint64_t ok_steps;
};

static void *shared_worker(void *v) {
    struct shared_arg *a = v;
    hk_rng r;
    hk_rng_seed(&r, 0x8000 + a->id);
    for (unsigned s = 0; s < a->steps; s++) {
        struct chain *c = &a->ch[hk_below(&r, SHARED_CHAINS)];
        uint64_t tag = hk_mix64(((uint64_t)a->id << 32) | s | (1ULL << 63));
        pthread_mutex_lock(&c->mu);
        int ok;
        if (c->p && hk_below(&r, 16) == 0) {
            /* free it here; another thread will start it again */
            ok = hk_verify(a->errs, "shared chain", c->p, c->n, c->tag);
            hak_free(c->p);
            c->p = NULL;
        } else {
            size_t n = c->p ? next_size(&r, c->n, hk_below(&r, 16) == 0)
                            : hk_random_size(&r, 0);
            ok = chain_step(a->errs, c, n, tag);
        }
        pthread_mutex_unlock(&c->mu);
        if (ok) a->ok_steps++;
    }
    return NULL;
}

TEST(realloc_chains_shared) {
    unsigned nt = hk_test_threads();
    unsigned steps = hk_iters(4000);
    struct chain *ch = calloc(SHARED_CHAINS, sizeof *ch);
    pthread_t th[nt];
    struct shared_arg args[nt];
    hk_errs errs;
    REQUIRE_NOT_NULL(ch, "chains");
    hk_errs_init(&errs);
    for (unsigned i = 0; i < SHARED_CHAINS; i++)
        pthread_mutex_init(&ch[i].mu, NULL);
    for (unsigned i = 0; i < nt; i++) {
        args[i] = (struct shared_arg){ .id = i, .steps = steps, .ch = ch,
                                       .errs = &errs };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, shared_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t ok = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok_steps;
    }
    for (unsigned i = 0; i < SHARED_CHAINS; i++) {
        if (ch[i].p) {
            if (!hk_verify(&errs, "shared chain end", ch[i].p, ch[i].n, ch[i].tag))
                ok--;
            hak_free(ch[i].p);
        }
        pthread_mutex_destroy(&ch[i].mu);
    }
    free(ch);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(ok, (uint64_t)nt * steps, "every realloc step verified");
}

/* ---- realloc_string_growth: a buffer grown a little at a time from 1 byte
 * to 3 MiB (through every tier boundary) and shrunk back, the whole content
 * checked at every step, the way string builders use realloc ---- */

struct grow_arg {
    unsigned id;
    size_t top;
    hk_errs *errs;
    uint64_t steps;
};

static void *grow_worker(void *v) {
    struct grow_arg *a = v;
    uint64_t tag = hk_mix64(0x9000 + a->id);
    hk_rng r;
    hk_rng_seed(&r, 0x9100 + a->id);
    unsigned char *p = NULL;
    size_t n = 0;
    /* grow: the pattern is dense (hk_fill_range), so only new bytes need
     * writing */
    while (n < a->top) {
        size_t step = 1 + hk_below(&r, n / 32 + 8);
        size_t m = n + step;
        unsigned char *q = hak_realloc(p, m);
        if (!hk_check_new(a->errs, "grow", q, m)) {
            hak_free(q ? q : p);
            return NULL;
        }
        size_t bad = hk_check_range(q, 0, n, tag);
        if (bad != n) {
            HK_ERR(a->errs, "grow %zu -> %zu lost contents at offset %zu", n,
                   m, bad);
            hak_free(q);
            return NULL;
        }
        hk_fill_range(q, n & ~(size_t)7, m, tag);
        p = q;
        n = m;
        a->steps++;
    }
    /* shrink back */
    while (n > 1) {
        size_t m = n - 1 - hk_below(&r, n / 32 + 1);
        if (m == 0) m = 1;
        unsigned char *q = hak_realloc(p, m);
        if (!hk_check_new(a->errs, "shrink", q, m)) {
            hak_free(q ? q : p);
            return NULL;
        }
        size_t bad = hk_check_range(q, 0, m, tag);
        if (bad != m) {
            HK_ERR(a->errs, "shrink %zu -> %zu lost contents at offset %zu", n,
                   m, bad);
            hak_free(q);
            return NULL;
        }
        p = q;
        n = m;
        a->steps++;
    }
    hak_free(p);
    return NULL;
}

TEST(realloc_string_growth) {
    unsigned nt = hk_test_threads() / 2 ? hk_test_threads() / 2 : 1;
    pthread_t th[nt];
    struct grow_arg args[nt];
    hk_errs errs;
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        /* half stop in the large tier, half go huge */
        args[i] = (struct grow_arg){ .id = i, .errs = &errs,
            .top = (i & 1) ? ((size_t)3 << 20) : ((size_t)768 << 10) };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, grow_worker, &args[i]), 0,
                     "pthread_create");
    }
    uint64_t steps = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        steps += args[i].steps;
    }
    HK_ERRS_REPORT(&errs);
    EXPECT_GE_U(steps, (uint64_t)nt * 200, "the chains ran");
}

TEST_MAIN()
