/* fork() from a multithreaded parent leaves both processes' allocators
 * usable: while 4 threads loop malloc/free in every tier, the main thread
 * forks; the child allocates, reallocates and frees a lot (huge blocks
 * too) and exits 0; the parent keeps going. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ThreadSanitizer makes every fork and child slow: fewer of them there. */
#define FORKS(n) (HK_TSAN ? ((n) + 3) / 4 : (n))

static atomic_int stop;
static atomic_int paused; /* set by the parent while it waits for a child */

/* In an AddressSanitizer build the program's own malloc (libc's calls, the
 * harness) is the sanitizer's, whose allocator does not survive a fork from
 * a multithreaded parent: LeakSanitizer's check at the child's exit locks
 * it and waits for good when a parent thread held it at the fork (about 1
 * child in 20).  The children skip that check (LeakSanitizer asks this
 * hook); hakmem's allocator, reached through hak_*, is the one under test.
 * Elsewhere nothing calls it. */
static volatile int in_forked_child;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return in_forked_child; }
static atomic_ulong busy_iters;

/* Loops over every tier (huge rarely) so that at fork time some thread is
 * likely inside each of the allocator's locks. */
static void *churn(void *arg) {
    uint64_t rs = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    void *keep[32] = { 0 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&paused, memory_order_relaxed)) {
            usleep(500);
            continue;
        }
        unsigned k = (unsigned)(hk_test_xorshift(&rs) % 32);
        hak_free(keep[k]);
        uint64_t r = hk_test_xorshift(&rs);
        size_t n = r % 64 == 0 ? MiB + (size_t)(r >> 40) % (3 * MiB)
                 : r % 8 == 0 ? 1024 + (size_t)(r >> 20) % (200 * KiB)
                              : (size_t)(r >> 20) % 1024;
        keep[k] = hak_malloc(n);
        if (keep[k] && n) ((unsigned char *)keep[k])[n - 1] = 1;
        atomic_fetch_add_explicit(&busy_iters, 1, memory_order_relaxed);
    }
    for (int k = 0; k < 32; k++) hak_free(keep[k]);
    return NULL;
}

static void *child_thread(void *arg) {
    uint64_t rs = (uintptr_t)arg + 77;
    for (int i = 0; i < 20000; i++) {
        void *p = hak_malloc((size_t)(hk_test_xorshift(&rs) % 5000));
        if (p == NULL) return (void *)1;
        hak_free(p);
    }
    return NULL;
}

/* What the child does; returns its exit status (0 = everything worked). */
static int child_work(int with_threads) {
    alarm(30); /* a deadlock in the child turns into SIGALRM, not a hang */
    uint64_t rs = 42;
    enum { SLOTS = 128 };
    unsigned char *p[SLOTS] = { 0 };
    size_t len[SLOTS] = { 0 };
    for (int i = 0; i < 10000; i++) {
        unsigned k = (unsigned)(hk_test_xorshift(&rs) % SLOTS);
        uint64_t r = hk_test_xorshift(&rs);
        size_t n = r % 100 == 0 ? MiB + (size_t)(r >> 30) % (5 * MiB)
                 : r % 10 == 0 ? (size_t)(r >> 20) % (300 * KiB)
                               : (size_t)(r >> 20) % 2048;
        if (p[k] && len[k] && p[k][len[k] - 1] != (unsigned char)k) return 2;
        if (r % 3 == 0) {
            unsigned char *q = hak_realloc(p[k], n ? n : 1);
            if (q == NULL) return 3;
            if (len[k] && (n ? n : 1) >= len[k] && q[len[k] - 1] != (unsigned char)k)
                return 4;
            p[k] = q;
            n = n ? n : 1;
        } else {
            hak_free(p[k]);
            p[k] = r % 2 ? hak_malloc(n) : hak_calloc(1, n);
            if (p[k] == NULL) return 5;
        }
        len[k] = n;
        if (n) p[k][n - 1] = (unsigned char)k;
    }
    for (int k = 0; k < SLOTS; k++) hak_free(p[k]);
    void *huge = hak_malloc(16 * MiB);
    if (huge == NULL) return 6;
    memset(huge, 1, 16 * MiB);
    huge = hak_realloc(huge, 40 * MiB);
    if (huge == NULL) return 7;
    hak_free(huge);
    void *al = NULL;
    if (hak_posix_memalign(&al, 2 * MiB, 3 * MiB) != 0) return 8;
    hak_free(al);
    if (with_threads) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, child_thread, (void *)(uintptr_t)i) != 0)
                return 9;
        for (int i = 0; i < 2; i++) {
            void *rv;
            pthread_join(t[i], &rv);
            if (rv != NULL) return 10;
        }
    }
    return 0;
}

static const char *describe(int status, char *buf, size_t n) {
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d%s", WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (deadlock?)" : "");
    else
        snprintf(buf, n, "status %#x", status);
    return buf;
}

/* Forks `times` times while 4 threads churn; the child runs child_work
 * and exits with its result through exit() (atexit handlers included). */
static void fork_while_busy(unsigned times, int child_threads, int nested) {
    pthread_t t[4];
    atomic_store(&stop, 0);
    for (int i = 0; i < 4; i++)
        REQUIRE_EQ_U(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0,
                     "pthread_create");
    for (unsigned f = 0; f < times; f++) {
        /* Let the threads get going so fork lands mid-operation. */
        unsigned long start = atomic_load(&busy_iters);
        while (atomic_load(&busy_iters) < start + 2000) sched_yield();
        pid_t pid = fork();
        if (pid < 0) {
            hk_test_fail(__FILE__, __LINE__, "fork failed: errno %d", errno);
            break;
        }
        if (pid == 0) {
            in_forked_child = 1;
            int rc = child_work(child_threads);
            if (rc == 0 && nested) {
                /* The child forks again (single-threaded now, unless it
                 * made threads) and waits for the grandchild. */
                pid_t g = fork();
                if (g < 0) exit(20);
                if (g == 0) exit(child_work(0));
                int st;
                if (waitpid(g, &st, 0) != g) exit(21);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) exit(22);
            }
            exit(rc);
        }
        /* Leave the CPUs to the child while it works. */
        atomic_store(&paused, 1);
        int status = 0;
        pid_t w;
        do w = waitpid(pid, &status, 0); while (w < 0 && errno == EINTR);
        atomic_store(&paused, 0);
        char buf[96];
        if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            hk_test_fail(__FILE__, __LINE__, "fork #%u: child %s", f,
                         describe(status, buf, sizeof buf));
        /* The parent's allocator works after fork too. */
        void *p = hak_malloc(3 * MiB);
        void *q = hak_malloc(100);
        if (p == NULL || q == NULL)
            hk_test_fail(__FILE__, __LINE__, "parent cannot allocate after fork");
        hak_free(p);
        hak_free(q);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
}

TEST(fork_from_multithreaded_parent) {
    fork_while_busy(FORKS(5) * hk_test_scale(), 0, 0);
}

TEST(fork_child_can_start_threads) {
    SKIP_IF(HK_TSAN, "ThreadSanitizer does not support threads after a multithreaded fork");
    /* The child's new threads use the sanitizer's malloc (libc's own
     * allocations), whose lock a parent thread may have held at the fork. */
    SKIP_IF(HK_ASAN, "AddressSanitizer's allocator does not survive a multithreaded fork");
    fork_while_busy(FORKS(3) * hk_test_scale(), 1, 0);
}

TEST(fork_nested_in_child) {
    fork_while_busy(FORKS(2) * hk_test_scale(), 0, 1);
}

/* Many quick forks in a row with the churning threads: each child just
 * does a few allocations and returns through _exit. */
TEST(fork_many_quick_children) {
    pthread_t t[4];
    atomic_store(&stop, 0);
    for (int i = 0; i < 4; i++)
        REQUIRE_EQ_U(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 10)), 0,
                     "pthread_create");
    unsigned n = FORKS(24) * hk_test_scale();
    for (unsigned f = 0; f < n; f++) {
        unsigned long start = atomic_load(&busy_iters);
        while (atomic_load(&busy_iters) < start + 500) sched_yield();
        pid_t pid = fork();
        if (pid < 0) {
            hk_test_fail(__FILE__, __LINE__, "fork failed");
            break;
        }
        if (pid == 0) {
            alarm(20);
            int ok = 1;
            for (size_t s = 1; s <= 4 * MiB; s = s * 2 + 1) {
                void *p = hak_malloc(s);
                if (p == NULL) ok = 0;
                else memset(p, 0, s < 4096 ? s : 4096);
                hak_free(p);
            }
            _exit(ok ? 0 : 1);
        }
        atomic_store(&paused, 1);
        int status = 0;
        pid_t w;
        do w = waitpid(pid, &status, 0); while (w < 0 && errno == EINTR);
        atomic_store(&paused, 0);
        char buf[96];
        if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            hk_test_fail(__FILE__, __LINE__, "quick fork #%u: child %s", f,
                         describe(status, buf, sizeof buf));
            break;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
}

TEST_MAIN()
