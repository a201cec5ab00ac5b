/*
 * Thread churn: thousands of short-lived threads that allocate, free some of
 * their blocks, and leave the rest to be freed after they exited (by the main
 * thread, or by a thread of the next generation), so pages whose owner is
 * gone must be adopted, not leaked or reused while still live.
 */
#include "harness.h"
#include "stress_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CHURN_BLOCKS 48

struct block {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

/* Mostly tiny, some mid, 1 in 16 large, 1 in 256 huge. */
static size_t churn_size(hk_rng *r) {
    size_t k = hk_below(r, 256);
    if (k == 0) return hk_range(r, HK_LARGE_MAX + 1, 2 * HK_LARGE_MAX);
    if (k < 16) return hk_range(r, HK_MID_MAX + 1, HK_LARGE_MAX);
    if (k < 64) return hk_range(r, HK_TINY_MAX + 1, HK_MID_MAX);
    return hk_range(r, 1, HK_TINY_MAX);
}

/* Allocates CHURN_BLOCKS blocks into out[]; returns how many succeeded. */
static unsigned churn_alloc(hk_errs *e, hk_rng *r, uint64_t id,
                            struct block *out) {
    unsigned n = 0;
    for (unsigned i = 0; i < CHURN_BLOCKS; i++) {
        struct block b = { .n = churn_size(r), .tag = hk_mix64(id * 4096 + i) };
        b.p = hak_malloc(b.n);
        if (!hk_check_new(e, "thread block", b.p, b.n)) {
            hak_free(b.p);
            continue;
        }
        hk_fill(b.p, b.n, b.tag);
        out[n++] = b;
    }
    return n;
}

/* ---- thread_churn_handoff ---- */

struct ho_arg {
    uint64_t id;
    hk_errs *errs;
    struct block keep[CHURN_BLOCKS]; /* handed to the main thread */
    unsigned nkeep;
    unsigned freed_here;
};

static void *ho_worker(void *v) {
    struct ho_arg *a = v;
    struct block all[CHURN_BLOCKS];
    hk_rng r;
    hk_rng_seed(&r, a->id);
    unsigned n = churn_alloc(a->errs, &r, a->id, all);
    a->nkeep = 0;
    a->freed_here = 0;
    for (unsigned i = 0; i < n; i++) {
        if (hk_rand(&r) & 1) {
            a->keep[a->nkeep++] = all[i];
        } else {
            if (hk_verify(a->errs, "own block", all[i].p, all[i].n, all[i].tag))
                a->freed_here++;
            hak_free(all[i].p);
        }
    }
    return NULL;
}

TEST(thread_churn_handoff) {
    unsigned batch = hk_test_threads();
    unsigned total = hk_iters(2000);
    struct ho_arg *args = calloc(batch, sizeof *args);
    hk_errs errs;
    uint64_t freed = 0, created = 0;
    REQUIRE_NOT_NULL(args, "args");
    hk_errs_init(&errs);
    pthread_t th[batch];
    for (unsigned done = 0; done < total; done += batch) {
        unsigned k = total - done < batch ? total - done : batch, started = 0;
        for (unsigned i = 0; i < k; i++) {
            args[i].id = done + i + 1;
            args[i].errs = &errs;
            if (pthread_create(&th[i], NULL, ho_worker, &args[i])) {
                HK_ERR(&errs, "pthread_create failed after %llu threads",
                       (unsigned long long)created);
                break;
            }
            started++;
            created++;
        }
        for (unsigned i = 0; i < started; i++) {
            pthread_join(th[i], NULL);
            freed += args[i].freed_here;
            /* the owner has exited: free the rest from here */
            for (unsigned j = 0; j < args[i].nkeep; j++) {
                struct block *b = &args[i].keep[j];
                if (hk_verify(&errs, "handed-off block", b->p, b->n, b->tag))
                    freed++;
                hak_free(b->p);
            }
        }
        if (started < k) break;
    }
    free(args);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(created, total, "every thread ran");
    EXPECT_EQ_U(freed, (uint64_t)total * CHURN_BLOCKS,
                "every block verified and freed");
}

/* ---- thread_churn_relay: each thread of generation g frees what thread i
 * of generation g-1 (already exited) left it, while the other threads of
 * its generation allocate; then leaves blocks for generation g+1 ---- */

struct relay_arg {
    uint64_t id;
    hk_errs *errs;
    hk_barrier *start;
    struct block in[CHURN_BLOCKS], out[CHURN_BLOCKS];
    unsigned nin, nout, verified;
};

static void *relay_worker(void *v) {
    struct relay_arg *a = v;
    hk_rng r;
    hk_rng_seed(&r, a->id ^ 0xABCDEF);
    hk_barrier_wait(a->start);
    /* allocate first, so new blocks and adopted pages meet */
    a->nout = churn_alloc(a->errs, &r, a->id, a->out);
    a->verified = 0;
    for (unsigned i = 0; i < a->nin; i++) {
        if (hk_verify(a->errs, "relayed block", a->in[i].p, a->in[i].n,
                      a->in[i].tag))
            a->verified++;
        hak_free(a->in[i].p);
    }
    a->nin = 0;
    return NULL;
}

TEST(thread_churn_relay) {
    unsigned width = hk_test_threads();
    unsigned gens = hk_iters(1000) / width + 1;
    struct relay_arg *args = calloc(width, sizeof *args);
    hk_errs errs;
    hk_barrier start;
    uint64_t allocated = 0, verified = 0;
    REQUIRE_NOT_NULL(args, "args");
    hk_errs_init(&errs);
    hk_barrier_init(&start, width);
    pthread_t th[width];
    for (unsigned g = 0; g < gens; g++) {
        for (unsigned i = 0; i < width; i++) {
            /* the previous generation's output is this one's input */
            memcpy(args[i].in, args[i].out, sizeof args[i].in);
            args[i].nin = args[i].nout;
            args[i].nout = 0;
            args[i].id = (uint64_t)g * width + i + 1;
            args[i].errs = &errs;
            args[i].start = &start;
            if (pthread_create(&th[i], NULL, relay_worker, &args[i])) {
                HK_ERR(&errs, "pthread_create failed in generation %u", g);
                /* nothing can join the barrier any more: give up */
                free(args);
                HK_ERRS_REPORT(&errs);
                return;
            }
        }
        for (unsigned i = 0; i < width; i++) {
            pthread_join(th[i], NULL);
            allocated += args[i].nout;
            verified += args[i].verified;
        }
    }
    /* the last generation's blocks */
    for (unsigned i = 0; i < width; i++)
        for (unsigned j = 0; j < args[i].nout; j++) {
            struct block *b = &args[i].out[j];
            if (hk_verify(&errs, "last relay", b->p, b->n, b->tag)) verified++;
            hak_free(b->p);
        }
    hk_barrier_destroy(&start);
    free(args);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(allocated, (uint64_t)gens * width * CHURN_BLOCKS,
                "every allocation succeeded");
    EXPECT_EQ_U(verified, allocated, "every relayed block verified");
}

/* ---- thread_churn_no_leak: short-lived threads each allocate 256 KiB in
 * small blocks and free them all before exiting.  Whatever a thread caches
 * must be reusable after it exits, so resident memory stays bounded instead
 * of growing with the number of threads. ---- */

struct nl_arg {
    unsigned id;
    hk_errs *errs;
    unsigned ok;
};

#define NL_BLOCKS 2048

static void *nl_worker(void *v) {
    struct nl_arg *a = v;
    static _Thread_local void *ps[NL_BLOCKS];
    size_t n = 64 + 64 * (a->id % 4); /* a few classes: 64..256 bytes */
    a->ok = 0;
    for (unsigned i = 0; i < NL_BLOCKS; i++) {
        ps[i] = hak_malloc(n);
        if (!hk_check_new(a->errs, "no-leak block", ps[i], n)) {
            hak_free(ps[i]);
            ps[i] = NULL;
            continue;
        }
        memset(ps[i], (int)(a->id & 0xff), n);
    }
    for (unsigned i = 0; i < NL_BLOCKS; i++) {
        if (ps[i] == NULL) continue;
        if (((unsigned char *)ps[i])[n - 1] == (a->id & 0xff)) a->ok++;
        hak_free(ps[i]);
    }
    return NULL;
}

static unsigned nl_run(unsigned threads, unsigned batch, hk_errs *errs) {
    pthread_t th[batch];
    struct nl_arg args[batch];
    unsigned ok = 0;
    for (unsigned done = 0; done < threads; done += batch) {
        unsigned started = 0;
        for (unsigned i = 0; i < batch; i++) {
            args[i] = (struct nl_arg){ .id = done + i, .errs = errs };
            if (pthread_create(&th[i], NULL, nl_worker, &args[i])) break;
            started++;
        }
        for (unsigned i = 0; i < started; i++) {
            pthread_join(th[i], NULL);
            ok += args[i].ok;
        }
        if (started < batch) {
            HK_ERR(errs, "pthread_create failed");
            break;
        }
    }
    return ok;
}

TEST(thread_churn_no_leak) {
    unsigned batch = hk_test_threads();
    unsigned threads = hk_iters(1000);
    threads -= threads % batch;
    hk_errs errs;
    hk_errs_init(&errs);
    /* warm up: first pages, thread stacks, arenas */
    nl_run(batch * 4, batch, &errs);
    size_t before = hk_test_rss_bytes();
    unsigned ok = nl_run(threads, batch, &errs);
    size_t after = hk_test_rss_bytes();
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(ok, threads * NL_BLOCKS, "every block written and freed");
    hk_test_log("rss before %zu KiB, after %zu KiB, %u threads x %u KiB",
                before >> 10, after >> 10, threads,
                (unsigned)(NL_BLOCKS * 160 / 1024));
#if defined(__SANITIZE_ADDRESS__) || HK_TSAN
    /* the sanitizer's own per-thread memory makes RSS meaningless */
#else
    /* total traffic is threads * ~320 KiB (hundreds of MiB at scale 1);
     * a leak of per-thread caches or pages shows as growth with it */
    if (before && after)
        EXPECT_LE_U(after > before ? after - before : 0, (size_t)96 << 20,
                    "resident memory must not grow with the number of "
                    "exited threads");
#endif
}

TEST_MAIN()
