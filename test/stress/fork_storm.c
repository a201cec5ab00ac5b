/*
 * Fork storms: 8 threads each fork over and over while they (and the
 * others) allocate.  Every child inherits an allocator that other threads
 * were using at the moment of the fork; it allocates, resizes and frees over
 * every tier, checks a block its parent thread filled, and _exit(0)s.  The
 * parents waitpid and check the status.  A child that deadlocks is killed by
 * its alarm and reported.
 */
#include "harness.h"
#include "stress_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define STORM_THREADS 8
#define CHILD_ALARM 20

enum { CHILD_OK = 0, CHILD_NULL = 10, CHILD_CORRUPT = 11, CHILD_PARENT_BLOCK = 12 };

/* The child's work: blocks over every tier, written, resized, checked,
 * freed.  Returns a CHILD_* code. */
static int child_work(uint64_t seed) {
    enum { N = 48 };
    struct { unsigned char *p; size_t n; uint64_t tag; } b[N];
    hk_rng r;
    hk_rng_seed(&r, seed);
    for (unsigned i = 0; i < N; i++) {
        b[i].n = hk_random_size(&r, hk_below(&r, 12) == 0);
        b[i].tag = hk_mix64(seed + i);
        b[i].p = hak_malloc(b[i].n);
        if (b[i].p == NULL) return CHILD_NULL;
        hk_fill(b[i].p, b[i].n, b[i].tag);
    }
    for (unsigned i = 0; i < N; i += 4) {
        size_t m = hk_random_size(&r, 0) + 1;
        unsigned char *q = hak_realloc(b[i].p, m);
        if (q == NULL) return CHILD_NULL;
        size_t keep = hk_min(b[i].n, m);
        if (hk_check_prefix(q, b[i].n, keep, b[i].tag) != keep) return CHILD_CORRUPT;
        b[i].p = q;
        b[i].n = m;
        hk_fill(q, m, b[i].tag);
    }
    for (unsigned i = 0; i < N; i++) {
        if (hk_check(b[i].p, b[i].n, b[i].tag) != b[i].n) return CHILD_CORRUPT;
        hak_free(b[i].p);
    }
    return CHILD_OK;
}

struct forker {
    unsigned id, forks;
    hk_errs *errs;
    unsigned ok;
};

static void *forker_main(void *v) {
    struct forker *f = v;
    hk_rng r;
    hk_rng_seed(&r, 0xF0F0 + f->id);
    for (unsigned k = 0; k < f->forks; k++) {
        /* a block of this thread's that the child checks and frees */
        size_t pn = hk_random_size(&r, hk_below(&r, 8) == 0) + 1;
        uint64_t ptag = hk_mix64(((uint64_t)f->id << 32) | k);
        unsigned char *pb = hak_malloc(pn);
        if (!hk_check_new(f->errs, "parent block", pb, pn)) {
            hak_free(pb);
            continue;
        }
        hk_fill(pb, pn, ptag);
        /* some allocator traffic of our own between forks */
        for (unsigned j = 0; j < 16; j++) hak_free(hak_malloc(hk_random_size(&r, 0)));
        pid_t pid = fork();
        if (pid < 0) {
            HK_ERR(f->errs, "thread %u: fork failed: errno %d", f->id, errno);
            hak_free(pb);
            break;
        }
        if (pid == 0) {
            alarm(CHILD_ALARM);
            int rc = hk_check(pb, pn, ptag) == pn ? CHILD_OK : CHILD_PARENT_BLOCK;
            hak_free(pb);
            if (rc == CHILD_OK) rc = child_work(hk_mix64(f->id * 100000 + k));
            _exit(rc);
        }
        int st;
        pid_t w;
        while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {}
        if (w != pid)
            HK_ERR(f->errs, "thread %u fork %u: waitpid: errno %d", f->id, k, errno);
        else if (WIFSIGNALED(st))
            HK_ERR(f->errs, "thread %u fork %u: child killed by signal %d%s", f->id, k,
                   WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (deadlocked?)" : "");
        else if (WEXITSTATUS(st) != 0)
            HK_ERR(f->errs, "thread %u fork %u: child exit status %d", f->id, k,
                   WEXITSTATUS(st));
        else
            f->ok++;
        if (hk_check(pb, pn, ptag) != pn)
            HK_ERR(f->errs, "thread %u fork %u: parent's block changed", f->id, k);
        hak_free(pb);
    }
    return NULL;
}

/* Allocating bystanders, so that forks land while other threads are inside
 * the allocator's slow paths. */
struct bystander {
    unsigned id;
    atomic_int *stop;
    hk_errs *errs;
};

static void *bystander_main(void *v) {
    struct bystander *b = v;
    enum { S = 32 };
    struct { unsigned char *p; size_t n; uint64_t tag; } s[S];
    memset(s, 0, sizeof s);
    hk_rng r;
    hk_rng_seed(&r, 0xB0B0 + b->id);
    for (uint64_t ops = 0; !atomic_load_explicit(b->stop, memory_order_relaxed); ops++) {
        unsigned k = (unsigned)hk_below(&r, S);
        if (s[k].p) {
            hk_verify(b->errs, "bystander", s[k].p, s[k].n, s[k].tag);
            hak_free(s[k].p);
            s[k].p = NULL;
        } else {
            s[k].n = hk_random_size(&r, hk_below(&r, 16) == 0);
            s[k].p = hak_malloc(s[k].n);
            if (!hk_check_new(b->errs, "bystander", s[k].p, s[k].n)) {
                hak_free(s[k].p);
                s[k].p = NULL;
                continue;
            }
            s[k].tag = hk_mix64(ops ^ ((uint64_t)b->id << 48));
            hk_fill(s[k].p, s[k].n, s[k].tag);
        }
    }
    for (unsigned k = 0; k < S; k++) {
        if (s[k].p == NULL) continue;
        hk_verify(b->errs, "bystander final", s[k].p, s[k].n, s[k].tag);
        hak_free(s[k].p);
    }
    return NULL;
}

static void storm(unsigned forks_per_thread, unsigned nbystanders) {
    hk_errs errs;
    hk_errs_init(&errs);
    atomic_int stop;
    atomic_init(&stop, 0);
    pthread_t bt[nbystanders ? nbystanders : 1], ft[STORM_THREADS];
    struct bystander b[nbystanders ? nbystanders : 1];
    struct forker f[STORM_THREADS];
    unsigned nb = 0, nf = 0;
    for (unsigned i = 0; i < nbystanders; i++) {
        b[i] = (struct bystander){ .id = i, .stop = &stop, .errs = &errs };
        if (pthread_create(&bt[i], NULL, bystander_main, &b[i]) != 0) break;
        nb++;
    }
    for (unsigned i = 0; i < STORM_THREADS; i++) {
        f[i] = (struct forker){ .id = i, .forks = forks_per_thread, .errs = &errs };
        if (pthread_create(&ft[i], NULL, forker_main, &f[i]) != 0) break;
        nf++;
    }
    unsigned ok = 0;
    for (unsigned i = 0; i < nf; i++) {
        pthread_join(ft[i], NULL);
        ok += f[i].ok;
    }
    atomic_store(&stop, 1);
    for (unsigned i = 0; i < nb; i++) pthread_join(bt[i], NULL);
    HK_ERRS_REPORT(&errs);
    hk_test_log("%u forking threads, %u bystanders, %u children exited 0", nf, nb, ok);
    EXPECT_EQ_U(nf, STORM_THREADS, "every forking thread started");
    EXPECT_EQ_U(ok, nf * forks_per_thread, "every child exited 0");
}

TEST(fork_storm_8_threads) {
    storm(hk_storm_scaled(24), 0);
}

TEST(fork_storm_with_allocating_bystanders) {
    storm(hk_storm_scaled(16), 2);
}

TEST_MAIN()
