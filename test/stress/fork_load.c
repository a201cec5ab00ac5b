/*
 * fork() while other threads hammer the allocator: the child must find the
 * allocator usable (no lock left held by a thread that does not exist in the
 * child), be able to free blocks that the parent's threads allocated, and
 * exit cleanly; the parent must carry on unharmed.
 */
#include "harness.h"
#include "stress_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Child exit codes. */
enum { CHILD_OK = 0, CHILD_NULL = 10, CHILD_CORRUPT = 11, CHILD_ALIGN = 12,
       CHILD_THREAD = 13, CHILD_FORK = 14 };

#define CHILD_ALARM 20 /* seconds before a stuck child is killed */
#define MAX_CHILD_FAILURES 3 /* then stop forking: one hang costs 20 s */

static void child_say(const char *what, int code) {
    char buf[160];
    int n = snprintf(buf, sizeof buf, "# child %d: %s (exit %d)\n",
                     (int)getpid(), what, code);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n);
        (void)w;
    }
}

/* Allocator work in a child: blocks over every tier, written, resized,
 * checked and freed.  Returns a CHILD_* code. */
static int child_work(uint64_t seed, unsigned rounds) {
    enum { N = 64 };
    struct { unsigned char *p; size_t n; uint64_t tag; } b[N];
    hk_rng r;
    hk_rng_seed(&r, seed);
    for (unsigned round = 0; round < rounds; round++) {
        for (unsigned i = 0; i < N; i++) {
            b[i].n = hk_random_size(&r, hk_below(&r, 8) == 0);
            b[i].tag = hk_mix64(seed + round * N + i);
            b[i].p = hak_malloc(b[i].n);
            if (b[i].p == NULL) return CHILD_NULL;
            if (!hk_aligned_ok(b[i].p, b[i].n)) return CHILD_ALIGN;
            hk_fill(b[i].p, b[i].n, b[i].tag);
        }
        for (unsigned i = 0; i < N; i += 3) {
            size_t m = hk_random_size(&r, 0);
            if (m == 0) m = 1;
            unsigned char *q = hak_realloc(b[i].p, m);
            if (q == NULL) return CHILD_NULL;
            size_t keep = hk_min(b[i].n, m);
            if (hk_check_prefix(q, b[i].n, keep, b[i].tag) != keep)
                return CHILD_CORRUPT;
            b[i].p = q;
            b[i].n = m;
            hk_fill(q, m, b[i].tag);
        }
        for (unsigned i = 0; i < N; i++) {
            if (hk_check(b[i].p, b[i].n, b[i].tag) != b[i].n)
                return CHILD_CORRUPT;
            hak_free(b[i].p);
        }
    }
    return CHILD_OK;
}

/* Threads in the child too (not under the sanitizers: see child_threads). */
#if !HK_TSAN && !defined(__SANITIZE_ADDRESS__)
static void *child_thread(void *v) {
    return (void *)(intptr_t)child_work((uint64_t)(uintptr_t)v, 2);
}
#endif

/* Not under the sanitizers: a child of a multithreaded parent that creates
 * threads can hang in the sanitizer's own allocator, whose lock a parent
 * thread held at fork (seen with gdb under ASan: both new threads wait in
 * SizeClassAllocator64::GetFromAllocator, called from pthread_getattr_np). */
static int child_threads(uint64_t seed) {
#if HK_TSAN || defined(__SANITIZE_ADDRESS__)
    (void)seed;
    return CHILD_OK;
#else
    pthread_t th[2];
    int rc = CHILD_OK;
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, child_thread,
                           (void *)(uintptr_t)(seed + 100 * (uint64_t)i)))
            return CHILD_THREAD;
    for (int i = 0; i < 2; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        if ((intptr_t)ret != CHILD_OK) rc = (int)(intptr_t)ret;
    }
    return rc;
#endif
}

/* Waits for pid and describes what went wrong, or returns 1 when it exited
 * with status 0. */
static int reap(pid_t pid, char *why, size_t len) {
    int st;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {}
    if (w != pid) {
        snprintf(why, len, "waitpid: %d", errno);
        return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
    if (WIFSIGNALED(st))
        snprintf(why, len, "child killed by signal %d%s", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (hung: deadlock after fork?)" : "");
    else
        snprintf(why, len, "child exit status %d", WEXITSTATUS(st));
    return 0;
}

/* ---- hammer threads: random malloc/free across tiers until told to stop ---- */

struct hammer {
    unsigned id;
    atomic_int *stop;
    hk_errs *errs;
    uint64_t ops;
};

static void *hammer_worker(void *v) {
    struct hammer *h = v;
    enum { SLOTS = 64 };
    struct { unsigned char *p; size_t n; uint64_t tag; } s[SLOTS];
    hk_rng r;
    memset(s, 0, sizeof s);
    hk_rng_seed(&r, 0xF000 + h->id);
    while (!atomic_load_explicit(h->stop, memory_order_relaxed)) {
        unsigned k = (unsigned)hk_below(&r, SLOTS);
        if (s[k].p) {
            hk_verify(h->errs, "hammer", s[k].p, s[k].n, s[k].tag);
            hak_free(s[k].p);
            s[k].p = NULL;
        } else {
            size_t n = hk_random_size(&r, hk_below(&r, 16) == 0);
            unsigned char *p = hak_malloc(n);
            if (!hk_check_new(h->errs, "hammer", p, n)) {
                hak_free(p);
                continue;
            }
            s[k].p = p;
            s[k].n = n;
            s[k].tag = hk_mix64(h->ops ^ ((uint64_t)h->id << 48));
            hk_fill(p, n, s[k].tag);
        }
        h->ops++;
    }
    for (unsigned k = 0; k < SLOTS; k++) {
        if (s[k].p == NULL) continue;
        hk_verify(h->errs, "hammer final", s[k].p, s[k].n, s[k].tag);
        hak_free(s[k].p);
    }
    return NULL;
}

struct load {
    unsigned n;
    pthread_t *th;
    struct hammer *h;
    atomic_int stop;
};

static int load_start(struct load *l, unsigned n, hk_errs *errs) {
    l->n = 0;
    l->th = calloc(n, sizeof *l->th);
    l->h = calloc(n, sizeof *l->h);
    atomic_init(&l->stop, 0);
    if (l->th == NULL || l->h == NULL) return 0;
    for (unsigned i = 0; i < n; i++) {
        l->h[i] = (struct hammer){ .id = i, .stop = &l->stop, .errs = errs };
        if (pthread_create(&l->th[i], NULL, hammer_worker, &l->h[i])) return 0;
        l->n++;
    }
    return 1;
}

static uint64_t load_stop(struct load *l) {
    uint64_t ops = 0;
    atomic_store(&l->stop, 1);
    for (unsigned i = 0; i < l->n; i++) {
        pthread_join(l->th[i], NULL);
        ops += l->h[i].ops;
    }
    free(l->th);
    free(l->h);
    return ops;
}

/* ---- fork_under_load ---- */

TEST(fork_under_load) {
    unsigned forks = hk_iters(12);
    hk_errs errs;
    struct load l;
    hk_errs_init(&errs);
    REQUIRE_TRUE(load_start(&l, hk_test_threads(), &errs), "hammer threads");
    unsigned ok = 0;
    char why[160] = "";
    hk_rng r;
    hk_rng_seed(&r, 0xF00F);
    for (unsigned i = 0; i < forks; i++) {
        /* a block of the parent's that the child frees */
        size_t pn = hk_random_size(&r, 1);
        unsigned char *pb = hak_malloc(pn);
        REQUIRE_NOT_NULL(pb, "parent block");
        hk_fill(pb, pn, 0xFEEDull + i);
        /* let the hammers get going between forks */
        usleep(2000);
        pid_t pid = fork();
        if (pid < 0) {
            hk_test_fail(__FILE__, __LINE__, "fork failed: errno %d", errno);
            hak_free(pb);
            break;
        }
        if (pid == 0) {
            alarm(CHILD_ALARM);
            int rc = hk_check(pb, pn, 0xFEEDull + i) == pn ? CHILD_OK
                                                          : CHILD_CORRUPT;
            hak_free(pb);
            if (rc == CHILD_OK) rc = child_work(0xC000 + i, 2);
            if (rc == CHILD_OK && i % 4 == 0) rc = child_threads(0xD000 + i);
            if (rc != CHILD_OK) child_say("allocator check failed", rc);
            _exit(rc);
        }
        if (reap(pid, why, sizeof why)) {
            ok++;
        } else {
            hk_test_fail(__FILE__, __LINE__, "fork %u: %s", i, why);
            if (i + 1 - ok >= MAX_CHILD_FAILURES) {
                hak_free(pb);
                break;
            }
        }
        EXPECT_EQ_U(hk_check(pb, pn, 0xFEEDull + i), pn,
                    "parent's block intact after the child freed its copy");
        hak_free(pb);
    }
    uint64_t ops = load_stop(&l);
    HK_ERRS_REPORT(&errs);
    EXPECT_EQ_U(ok, forks, "every child exited 0");
    EXPECT_GE_U(ops, 1, "the hammer threads ran");
}

/* ---- fork_child_frees_thread_blocks: blocks allocated by several (still
 * running, parked) threads are freed by the child, whose copies of those
 * threads do not exist; then the parent checks and frees its own ---- */

#define PARK_BLOCKS 64

struct park {
    unsigned id;
    struct { unsigned char *p; size_t n; uint64_t tag; } b[PARK_BLOCKS];
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *release;
    hk_barrier *ready;
};

static void *park_worker(void *v) {
    struct park *pk = v;
    hk_rng r;
    hk_rng_seed(&r, 0xE000 + pk->id);
    for (unsigned i = 0; i < PARK_BLOCKS; i++) {
        pk->b[i].n = hk_random_size(&r, hk_below(&r, 16) == 0);
        pk->b[i].tag = hk_mix64(((uint64_t)pk->id << 32) | i);
        pk->b[i].p = hak_malloc(pk->b[i].n);
        if (pk->b[i].p) hk_fill(pk->b[i].p, pk->b[i].n, pk->b[i].tag);
    }
    hk_barrier_wait(pk->ready);
    pthread_mutex_lock(pk->mu);
    while (!*pk->release) pthread_cond_wait(pk->cv, pk->mu);
    pthread_mutex_unlock(pk->mu);
    return NULL;
}

TEST(fork_child_frees_thread_blocks) {
    unsigned nt = hk_test_threads();
    unsigned forks = hk_iters(8);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int release = 0;
    hk_barrier ready;
    struct park *pk = calloc(nt, sizeof *pk);
    pthread_t th[nt];
    REQUIRE_NOT_NULL(pk, "park");
    hk_barrier_init(&ready, nt + 1);
    for (unsigned i = 0; i < nt; i++) {
        pk[i] = (struct park){ .id = i, .mu = &mu, .cv = &cv,
                               .release = &release, .ready = &ready };
        REQUIRE_EQ_U(pthread_create(&th[i], NULL, park_worker, &pk[i]), 0,
                     "pthread_create");
    }
    hk_barrier_wait(&ready);
    unsigned ok = 0;
    char why[160];
    for (unsigned f = 0; f < forks; f++) {
        pid_t pid = fork();
        if (pid < 0) {
            hk_test_fail(__FILE__, __LINE__, "fork failed: errno %d", errno);
            break;
        }
        if (pid == 0) {
            alarm(CHILD_ALARM);
            int rc = CHILD_OK;
            /* free the threads' blocks in an order that differs per fork */
            for (unsigned j = 0; j < PARK_BLOCKS; j++) {
                for (unsigned t = 0; t < nt; t++) {
                    unsigned i = (j * 7 + f) % PARK_BLOCKS;
                    struct park *p = &pk[(t + f) % nt];
                    if (p->b[i].p == NULL) { rc = CHILD_NULL; continue; }
                    if (hk_check(p->b[i].p, p->b[i].n, p->b[i].tag) != p->b[i].n)
                        rc = CHILD_CORRUPT;
                    hak_free(p->b[i].p);
                }
            }
            if (rc == CHILD_OK) rc = child_work(0xB000 + f, 3);
            if (rc == CHILD_OK && f == 0) rc = child_threads(0xB800);
            if (rc == CHILD_OK && f == 1) {
                /* a grandchild, forked from a child that has freed a lot */
                pid_t g = fork();
                if (g < 0) rc = CHILD_FORK;
                else if (g == 0) _exit(child_work(0xB900, 2));
                else if (!reap(g, why, sizeof why)) rc = CHILD_FORK;
            }
            if (rc != CHILD_OK) child_say("thread blocks check failed", rc);
            _exit(rc);
        }
        if (reap(pid, why, sizeof why)) {
            ok++;
        } else {
            hk_test_fail(__FILE__, __LINE__, "fork %u: %s", f, why);
            if (f + 1 - ok >= MAX_CHILD_FAILURES) break;
        }
    }
    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    uint64_t intact = 0;
    for (unsigned i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        for (unsigned j = 0; j < PARK_BLOCKS; j++) {
            if (pk[i].b[j].p == NULL) continue;
            if (hk_check(pk[i].b[j].p, pk[i].b[j].n, pk[i].b[j].tag) ==
                pk[i].b[j].n)
                intact++;
            hak_free(pk[i].b[j].p);
        }
    }
    hk_barrier_destroy(&ready);
    free(pk);
    EXPECT_EQ_U(ok, forks, "every child exited 0");
    EXPECT_EQ_U(intact, (uint64_t)nt * PARK_BLOCKS,
                "the parent's blocks are intact after the children");
}

TEST_MAIN()
