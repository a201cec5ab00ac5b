/*
 * Larson-style server churn: each lineage of threads owns a window of slots
 * and keeps replacing random ones (free the old block, allocate a new one);
 * after a while the thread starts its successor, hands it the window and
 * exits, and the successor checks and frees what its predecessor allocated.
 * Blocks are always freed by a thread other than the one that allocated them
 * once a generation has passed, and their allocating thread is gone.
 */
#include "harness.h"
#include "stress_common.h"

#include <pthread.h>
#include <stdlib.h>

struct lslot {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

struct lineage {
    unsigned id, gen, gens, replacements, window;
    size_t (*size)(hk_rng *);
    struct lslot *slots;
    hk_errs *errs;
    /* results */
    uint64_t allocs, frees, verified;
    unsigned threads;
    /* completion */
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    unsigned *finished;
};

static size_t larson_small(hk_rng *r) { return hk_range(r, 8, 512); }

static size_t larson_mixed(hk_rng *r) {
    /* every tier but huge, weighted towards tiny */
    size_t k = hk_below(r, 64);
    if (k == 0) return hk_range(r, HK_MID_MAX + 1, HK_LARGE_MAX);
    if (k < 12) return hk_range(r, HK_TINY_MAX + 1, HK_MID_MAX);
    return hk_range(r, 1, HK_TINY_MAX);
}

static int lslot_new(struct lineage *l, hk_rng *r, struct lslot *s,
                     uint64_t tag) {
    size_t n = l->size(r);
    unsigned char *p = hak_malloc(n);
    if (!hk_check_new(l->errs, "larson", p, n)) {
        hak_free(p);
        s->p = NULL;
        return 0;
    }
    hk_fill(p, n, tag);
    s->p = p;
    s->n = n;
    s->tag = tag;
    l->allocs++;
    return 1;
}

static void lslot_free(struct lineage *l, struct lslot *s, const char *where) {
    if (s->p == NULL) return;
    if (hk_verify(l->errs, where, s->p, s->n, s->tag)) l->verified++;
    hak_free(s->p);
    l->frees++;
    s->p = NULL;
}

static void *larson_thread(void *v) {
    struct lineage *l = v;
    hk_rng r;
    uint64_t seq = 0;
    hk_rng_seed(&r, ((uint64_t)l->id << 32) | l->gen);
    l->threads++;
    if (l->gen == 0) {
        for (unsigned i = 0; i < l->window; i++)
            lslot_new(l, &r, &l->slots[i],
                      hk_mix64(((uint64_t)l->id << 48) | seq++));
    } else {
        /* the predecessor's blocks: check all, free half of them now */
        for (unsigned i = 0; i < l->window; i++) {
            if (hk_rand(&r) & 1) {
                lslot_free(l, &l->slots[i], "inherited");
                lslot_new(l, &r, &l->slots[i],
                          hk_mix64(((uint64_t)l->id << 48) |
                                   ((uint64_t)l->gen << 32) | seq++));
            } else if (l->slots[i].p &&
                       !hk_verify(l->errs, "inherited", l->slots[i].p,
                                  l->slots[i].n, l->slots[i].tag)) {
                l->slots[i].p = NULL; /* do not free a corrupted block */
            }
        }
    }
    for (unsigned k = 0; k < l->replacements; k++) {
        struct lslot *s = &l->slots[hk_below(&r, l->window)];
        lslot_free(l, s, "replaced");
        lslot_new(l, &r, s,
                  hk_mix64(((uint64_t)l->id << 48) | ((uint64_t)l->gen << 32) |
                           seq++));
    }
    l->gen++;
    if (l->gen < l->gens) {
        /* hand the window to a successor and exit */
        pthread_t next;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&next, &attr, larson_thread, l);
        pthread_attr_destroy(&attr);
        if (rc == 0) return NULL;
        HK_ERR(l->errs, "lineage %u: pthread_create failed at generation %u",
               l->id, l->gen);
    }
    /* the lineage is over: free the window */
    for (unsigned i = 0; i < l->window; i++) lslot_free(l, &l->slots[i], "final");
    pthread_mutex_lock(l->mu);
    (*l->finished)++;
    pthread_cond_signal(l->cv);
    pthread_mutex_unlock(l->mu);
    return NULL;
}

static void larson_run(unsigned window, unsigned replacements, unsigned gens,
                       size_t (*size)(hk_rng *)) {
    unsigned nt = hk_test_threads();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    unsigned finished = 0, started = 0;
    hk_errs errs;
    struct lineage *ls = calloc(nt, sizeof *ls);
    REQUIRE_NOT_NULL(ls, "lineages");
    hk_errs_init(&errs);
    for (unsigned i = 0; i < nt; i++) {
        ls[i] = (struct lineage){ .id = i, .gens = gens,
                                  .replacements = replacements,
                                  .window = window, .size = size,
                                  .errs = &errs, .mu = &mu, .cv = &cv,
                                  .finished = &finished };
        ls[i].slots = calloc(window, sizeof *ls[i].slots);
        REQUIRE_NOT_NULL(ls[i].slots, "window");
    }
    for (unsigned i = 0; i < nt; i++) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, larson_thread, &ls[i]);
        pthread_attr_destroy(&attr);
        if (rc) {
            hk_test_fail(__FILE__, __LINE__, "pthread_create failed");
            break;
        }
        started++;
    }
    pthread_mutex_lock(&mu);
    while (finished < started) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    uint64_t allocs = 0, frees = 0, verified = 0, threads = 0;
    for (unsigned i = 0; i < nt; i++) {
        allocs += ls[i].allocs;
        frees += ls[i].frees;
        verified += ls[i].verified;
        threads += ls[i].threads;
        free(ls[i].slots);
    }
    free(ls);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(threads, (uint64_t)started * gens, "every generation ran");
    EXPECT_EQ_U(allocs, frees, "every block was freed");
    EXPECT_EQ_U(verified, frees, "every block was verified before its free");
    EXPECT_GE_U(allocs, (uint64_t)started * gens * replacements,
                "every replacement allocated");
}

TEST(larson_server_churn) {
    larson_run(1000, 4000, hk_iters(25), larson_small);
}

TEST(larson_mixed_tiers) {
    larson_run(200, 1000, hk_iters(20), larson_mixed);
}

TEST_MAIN()
