/*
 * White-box: the word lock (base/base.h, base/lock.c) behind the heap
 * profiler's tables.  Mutual exclusion under contention (more threads than
 * cores, so holders are preempted inside the section), the state word's
 * invariant (0 free, 1 held, 2 held with possible sleepers; free again
 * after every release), a waiter that sleeps rather than spins while the
 * holder keeps the lock for long, and the fork flag that makes the forking
 * thread skip it.
 */
#include "base/base.h"
#include "harness.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 20000

static hk_word_lock lock = HK_WORD_LOCK_INIT;
static uint64_t counter; /* guarded by lock, written without atomics */
static volatile int inside;  /* threads in the section: at most one */
static _Atomic int overlaps;

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        hk_word_lock_acquire(&lock);
        if (++inside != 1) atomic_fetch_add(&overlaps, 1);
        uint64_t c = counter;
        if ((i & 255) == 0) sched_yield(); /* be preempted while holding it */
        counter = c + 1;
        inside--;
        hk_word_lock_release(&lock);
    }
    return NULL;
}

TEST(word_lock_excludes_under_contention) {
    pthread_t t[THREADS];
    counter = 0;
    for (int i = 0; i < THREADS; i++) REQUIRE_EQ_I(pthread_create(&t[i], NULL, hammer, NULL), 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    EXPECT_EQ_U(counter, (uint64_t)THREADS * ROUNDS, "no increment lost");
    EXPECT_EQ_I(atomic_load(&overlaps), 0, "never two threads inside");
    EXPECT_EQ_U(atomic_load(&lock.state), 0, "free after the last release");
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double waiter_cpu;
static _Atomic int waiter_done;

static void *wait_for_it(void *arg) {
    (void)arg;
    double t0 = cpu_seconds();
    hk_word_lock_acquire(&lock);
    waiter_cpu = cpu_seconds() - t0;
    hk_word_lock_release(&lock);
    atomic_store(&waiter_done, 1);
    return NULL;
}

/* A holder that keeps the lock 300 ms: the waiter marks the word contended
 * and sleeps (a few ms of CPU at most, not 300), and the release wakes it. */
TEST(word_lock_waiter_sleeps_and_is_woken) {
    hk_word_lock_acquire(&lock);
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, wait_for_it, NULL), 0, "pthread_create");
    usleep(100 * 1000);
    EXPECT_EQ_U(atomic_load(&lock.state), 2, "held, a sleeper marked");
    usleep(200 * 1000);
    EXPECT_EQ_I(atomic_load(&waiter_done), 0, "the waiter still waits");
    hk_word_lock_release(&lock);
    for (int i = 0; i < 5000 && !atomic_load(&waiter_done); i++) usleep(1000);
    EXPECT_EQ_I(atomic_load(&waiter_done), 1, "woken by the release (within 5 s)");
    pthread_join(t, NULL);
    EXPECT_LT_I((int)(waiter_cpu * 1000), 50, "the waiter slept (CPU ms while waiting)");
    EXPECT_EQ_U(atomic_load(&lock.state), 0, "free again");
}

/* Between fork's prepare and its parent or child handler the forking
 * thread holds every allocator lock: its own allocations skip them. */
TEST(word_lock_skipped_while_the_thread_holds_all_locks) {
    hk_word_lock_acquire(&lock);
    hk_tls_holds_all_locks = true;
    hk_word_lock_acquire(&lock); /* would wait for itself */
    hk_word_lock_release(&lock);
    hk_tls_holds_all_locks = false;
    EXPECT_EQ_U(atomic_load(&lock.state), 1, "the skipped pair left it held");
    hk_word_lock_release(&lock);
    EXPECT_EQ_U(atomic_load(&lock.state), 0, "free");
}

TEST_MAIN()
