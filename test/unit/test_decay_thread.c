/*
 * The decay thread (src/core/decay.c, doc/DESIGN.md 9.5): a process with a
 * second thread that frees memory and then makes no allocator call sees its
 * resident set fall within the decay time plus a step; a single-threaded
 * process never gets the thread (and stays single-threaded); decay_thread:0
 * keeps it away; memory handed back after an idle spell wakes it again; a
 * program cycling one huge mapping through the BigCache does not wake it
 * at every free.
 *
 * Each case runs in a child (this binary re-executed with a role), so that
 * no thread or cache of another test is in the way.  The child prints
 * name=value lines; resident sizes come from /proc/self/statm.
 */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMALL_BLOCKS 300000 /* 200 B: about 64 MiB in one-slice pages */
#define HUGE_BLOCKS 16      /* 8 MiB: 128 MiB, twice the BigCache's capacity */
#define DEADLINE_MS 3000

static void *nothing(void *arg) { return arg; }

/* A second thread, created and joined: the process is multi-threaded for
 * the C library from then on. */
static int become_multithreaded(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0) return -1;
    return pthread_join(t, NULL);
}

static unsigned ntasks(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned n = 0;
    if (f == NULL) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %u", &n) == 1) break;
    fclose(f);
    return n;
}

static bool ctl_bool(const char *name) {
    bool v = false;
    size_t len = sizeof v;
    return hak_ctl(name, &v, &len, NULL, 0) == 0 && v;
}

static uint64_t ctl_u64(const char *name) {
    uint64_t v = 0;
    size_t len = sizeof v;
    return hak_ctl(name, &v, &len, NULL, 0) == 0 ? v : UINT64_MAX;
}

/* Waits (polling every 20 ms, at most DEADLINE_MS) until the resident set
 * is at most target; returns it. */
static size_t rss_after_quiet(size_t target) {
    uint64_t end = hk_test_now_ms() + DEADLINE_MS;
    size_t rss;
    while ((rss = hk_test_rss_bytes()) > target && hk_test_now_ms() < end) hk_test_sleep_ms(20);
    return rss;
}

/* Allocates, touches and frees n blocks of size bytes; prints the resident
 * set before the frees and after a quiet spell, and how much was freed.
 * The quiet spell asks for the resident set to fall by three quarters of
 * what was freed. */
static void *blocks[SMALL_BLOCKS]; /* not from the allocator: no huge block of ours */

static void fill_free_quiet(const char *tag, size_t size, size_t n) {
    void **p = blocks;
    size_t before = hk_test_rss_bytes();
    for (size_t i = 0; i < n; i++) {
        p[i] = malloc(size);
        if (p[i] == NULL) exit(3);
        memset(p[i], 1, size);
    }
    size_t full = hk_test_rss_bytes();
    for (size_t i = 0; i < n; i++) free(p[i]);
    size_t grown = full > before ? full - before : 0;
    size_t rss = rss_after_quiet(full - grown / 4 * 3);
    printf("%s_grown=%zu\n%s_left=%zu\n", tag, grown, tag, full > rss ? grown - (full - rss) : grown);
}

/* Waits (at most DEADLINE_MS) until the thread's purge passes stop for
 * 200 ms: it has nothing left and sleeps until memory is handed back. */
static void wait_until_idle(void) {
    uint64_t end = hk_test_now_ms() + DEADLINE_MS, seen = ctl_u64("arenas.decay_thread.purges");
    while (hk_test_now_ms() < end) {
        hk_test_sleep_ms(200);
        uint64_t now = ctl_u64("arenas.decay_thread.purges");
        if (now == seen) return;
        seen = now;
    }
}

static int child(bool threads) {
    if (threads && become_multithreaded() != 0) return 2;
    unsigned tasks = ntasks(); /* a sanitizer's own thread included */
    fill_free_quiet("small", 200, SMALL_BLOCKS);
    wait_until_idle();
    uint64_t wakeups = ctl_u64("arenas.decay_thread.wakeups");
    fill_free_quiet("huge", 8u << 20, HUGE_BLOCKS);
    printf("running=%d\nwoken=%d\nnew_tasks=%u\n", ctl_bool("arenas.decay_thread.running"),
           ctl_u64("arenas.decay_thread.wakeups") > wakeups, ntasks() - tasks);
    return 0;
}

/* 2 MiB allocated, touched and freed CHURN_CYCLES times, the mapping
 * cycling through the BigCache within its capacity, once the thread runs:
 * prints the thread's purge passes during the loop and the loop's time. */
#define CHURN_CYCLES 3000
static int churn(void) {
    if (become_multithreaded() != 0) return 2;
    /* hak_ calls: a sanitizer build keeps malloc for the sanitizer */
    hak_free(hak_malloc(2u << 20)); /* the first park starts the thread */
    hk_test_sleep_ms(100);
    uint64_t before = ctl_u64("arenas.decay_thread.purges"), t0 = hk_test_now_ms();
    for (int i = 0; i < CHURN_CYCLES; i++) {
        char *p = hak_malloc(2u << 20);
        if (p == NULL) return 3;
        p[i % 4096] = 1;
        hak_free(p);
    }
    uint64_t ms = hk_test_now_ms() - t0;
    printf("churn_running=%d\nchurn_purges=%llu\nchurn_ms=%llu\n", ctl_bool("arenas.decay_thread.running"),
           (unsigned long long)(ctl_u64("arenas.decay_thread.purges") - before), (unsigned long long)ms);
    return 0;
}

/* A multi-threaded process whose decay thread runs forks; the child frees
 * memory and waits: it must stay single-threaded. */
static int fork_child(void) {
    if (become_multithreaded() != 0) return 2;
    fill_free_quiet("parent", 200, SMALL_BLOCKS / 4);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 3;
    if (pid == 0) {
        fill_free_quiet("child", 200, SMALL_BLOCKS / 4);
        hk_test_sleep_ms(200);
        printf("child_running=%d\nchild_tasks=%u\n", ctl_bool("arenas.decay_thread.running"), ntasks());
        fflush(stdout);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 4;
    printf("parent_running=%d\n", ctl_bool("arenas.decay_thread.running"));
    return 0;
}

__attribute__((constructor)) static void dispatch(void) {
    const char *role = hk_test_role();
    if (role == NULL) return;
    if (strcmp(role, "--threads") == 0) exit(child(true));
    if (strcmp(role, "--single") == 0) exit(child(false));
    if (strcmp(role, "--fork") == 0) exit(fork_child());
    if (strcmp(role, "--churn") == 0) exit(churn());
}

/* Runs a child; fills the named values (size_t) or fails the test. */
static bool run(struct hk_test_child *c, const char *role, const char *conf) {
    if (hk_test_run_self(c, role, "HAKMEM_MODE", (char *)NULL, "HAKMEM_CONF", conf, (char *)NULL) != 0 ||
        !hk_test_exited_ok(c)) {
        char why[64];
        hk_test_describe_status(c, why, sizeof why);
        hk_test_fail(__FILE__, __LINE__, "child %s (%s): %s: %.300s", role, conf ? conf : "-", why,
                     c->err);
        return false;
    }
    return true;
}

static size_t value(const struct hk_test_child *c, const char *name) {
    char v[64];
    if (!hk_test_child_value(c, name, v, sizeof v)) {
        hk_test_fail(__FILE__, __LINE__, "child printed no %s: %.300s", name, c->out);
        return SIZE_MAX;
    }
    return (size_t)strtoull(v, NULL, 10);
}

static struct hk_test_child c;

TEST(decay_thread_gives_back_what_a_quiet_process_freed) {
    SKIP_IF(HK_TSAN || HK_ASAN, "the resident set counts the sanitizer's shadow and quarantine");
    if (!run(&c, "--threads", "decay_ms:50")) return;
    size_t grown = value(&c, "small_grown"), left = value(&c, "small_left");
    EXPECT_GT_U(grown, (size_t)32 << 20, "the small blocks made the process grow");
    EXPECT_LE_U(left, grown / 4, "most of the small blocks' memory gone within the deadline");
    grown = value(&c, "huge_grown");
    left = value(&c, "huge_left");
    EXPECT_GT_U(grown, (size_t)96 << 20, "the huge blocks made the process grow");
    /* The BigCache keeps its capacity (64 MiB) for 10 s; the overflow goes
     * after the decay time. */
    EXPECT_LE_U(left, (size_t)80 << 20, "the huge blocks beyond the BigCache's capacity gone");
    EXPECT_EQ_U(value(&c, "running"), 1, "arenas.decay_thread.running");
    EXPECT_EQ_U(value(&c, "woken"), 1, "the second hand-back woke it from idle");
}

TEST(decay_thread_never_runs_in_a_single_threaded_process) {
    if (!run(&c, "--single", "decay_ms:50")) return;
    EXPECT_EQ_U(value(&c, "running"), 0, "arenas.decay_thread.running");
    EXPECT_EQ_U(value(&c, "new_tasks"), 0, "no thread started");
}

TEST(decay_thread_stays_off_with_decay_thread_0) {
    if (!run(&c, "--threads", "decay_ms:50,decay_thread:0")) return;
    EXPECT_EQ_U(value(&c, "running"), 0, "arenas.decay_thread.running");
    EXPECT_EQ_U(value(&c, "new_tasks"), 0, "no thread started");
    if (HK_TSAN || HK_ASAN) return;
    /* Nothing gives the small blocks' pages back while the process is
     * quiet: the deadline passes with them resident. */
    size_t grown = value(&c, "small_grown"), left = value(&c, "small_left");
    EXPECT_GT_U(left, grown / 2, "without the thread the memory stays until the next call");
}

TEST(decay_thread_is_never_started_in_a_fork_child) {
    if (!run(&c, "--fork", "decay_ms:50")) return;
    if (!HK_TSAN && !HK_ASAN)
        EXPECT_EQ_U(value(&c, "parent_running"), 1, "the parent's decay thread ran");
    EXPECT_EQ_U(value(&c, "child_running"), 0, "arenas.decay_thread.running in the child");
    if (!HK_TSAN) /* ThreadSanitizer starts its own thread in the child */
        EXPECT_EQ_U(value(&c, "child_tasks"), 1, "the child kept its one thread");
}

/* Each park woke the thread from its slow wait (the cache read as empty
 * the moment a malloc took the mapping back): a system call and a purge
 * pass every cycle, huge -t 2 twice as slow.  On the slow cadence it
 * passes at most once a second (and once more as it settles). */
TEST(decay_thread_is_not_woken_by_a_mapping_cycling_through_the_cache) {
    if (!run(&c, "--churn", NULL)) return;
    EXPECT_EQ_U(value(&c, "churn_running"), 1, "arenas.decay_thread.running");
    size_t ms = value(&c, "churn_ms"), purges = value(&c, "churn_purges");
    EXPECT_LE_U(purges, 2 + ms / 1000, "purge passes during the loop: its slow cadence only");
}

TEST(decay_thread_option_is_listed) {
    bool v = false;
    size_t len = sizeof v;
    EXPECT_EQ_I(hak_ctl("opt.decay_thread", &v, &len, NULL, 0), 0, "opt.decay_thread readable");
    EXPECT_TRUE(v, "on by default");
}

TEST_MAIN()
