/*
 * Research mode at start-up: a detected heap corruption aborts by default
 * (abort_on_error is part of the research preset), abort_on_error:0 turns
 * that back into report-and-continue, the other modes report and continue.
 * Every block research mode hands out is 16-byte aligned, guarded ones too.
 *
 * The mode is chosen before the allocator initializes, so each case runs in
 * a child: this binary re-executes itself (/proc/self/exe) with HAKMEM_MODE
 * and HAKMEM_CONF set and argv[1] naming a role; a constructor runs the
 * role and exits before the tests start.
 */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------- the child roles ---------------- */

static int role_double_free(void) {
    void *p = hak_malloc(40);
    hak_free(p);
    hak_free(p);
    return 0;
}

static int role_overrun(void) {
    char *p = hak_malloc(40);
    p[40] = 'X';
    hak_free(p);
    return 0;
}

static void *free_it(void *p) {
    hak_free(p);
    return NULL;
}

/* A double free where the second free comes from another thread (the
 * remote path of a thread's debug heap). */
static int role_remote_double_free(void) {
    void *p = hak_malloc(72);
    hak_free(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_it, p) != 0) return 5;
    pthread_join(t, NULL);
    return 0;
}

/* Every block 16-byte aligned, over enough allocations of every small size
 * to pass many guarded ones (guard_sample:2 makes every other one guarded);
 * each is written whole (its usable size) and freed. */
static int role_aligned(void) {
    for (size_t size = 1; size <= 1100; size += (size < 64 ? 1 : 13)) {
        for (int i = 0; i < 4; i++) {
            unsigned char *p = hak_malloc(size);
            if (p == NULL) return 4;
            if ((uintptr_t)p % 16 != 0) return 3;
            memset(p, 7, hak_malloc_usable_size(p));
            hak_free(p);
        }
    }
    return 0;
}

/* A guarded block's start is rounded down to 16: the slack bytes between
 * its end and the guard page are a canary, so a small overrun that does not
 * reach the guard page is still reported at free. */
static int role_guard_slack(void) {
    for (int i = 0; i < 8; i++) {
        char *p = hak_malloc(33);
        p[33] = 'X';
        hak_free(p);
    }
    return 0;
}

enum { LEAVERS = 32, LEAVER_BLOCKS = 40 };
static void *leaver_blocks[LEAVERS][LEAVER_BLOCKS];

/* Allocates a block of many classes and exits, leaving them behind. */
static void *leaver(void *arg) {
    void **mine = arg;
    for (int i = 0; i < LEAVER_BLOCKS; i++) mine[i] = hak_malloc((size_t)(i + 1) * 700);
    return NULL;
}

/* Allocates (and frees) 32 MiB, so the profiler samples some of it
 * (research mode profiles, one sample per 512 KiB on average): the first
 * sample's backtrace loads libgcc_s. */
static void *sample_some(void *arg) {
    for (int i = 0; i < 2048; i++) hak_free(hak_malloc(16000));
    return arg;
}

/* Threads that exit leave their debug heaps' pages behind: once their
 * blocks are freed, a purge hands those pages back.  The baseline is taken
 * after a thread has sampled: the loader's blocks for libgcc_s (5 pages of
 * as many classes, live for good) would otherwise land in a leaver's heap
 * and pin up to 5 of its segments, counted as a leak (9 MiB in a busy CI
 * run). */
static int role_leavers(void) {
    pthread_t t[LEAVERS];
    if (pthread_create(&t[0], NULL, sample_some, NULL) != 0) return 5;
    pthread_join(t[0], NULL);
    size_t before = hk_test_mapped_after_purge();
    for (int i = 0; i < LEAVERS; i++)
        if (pthread_create(&t[i], NULL, leaver, leaver_blocks[i]) != 0) return 5;
    for (int i = 0; i < LEAVERS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < LEAVERS; i++)
        for (int j = 0; j < LEAVER_BLOCKS; j++) hak_free(leaver_blocks[i][j]);
    size_t after = hk_test_mapped_after_purge();
    fprintf(stderr, "mapped %zu KiB before, %zu KiB after\n", before >> 10, after >> 10);
    return after <= before + ((size_t)8 << 20) ? 0 : 3;
}

/* Events of two threads: each thread records in its own ring, and
 * debug.events.<i> merges them newest first. */
static void *alloc_eight(void *arg) {
    void **p = arg;
    for (int i = 0; i < 8; i++) p[i] = hak_malloc(40);
    return NULL;
}

static uint64_t event_ptr(unsigned i) {
    char name[64];
    uint64_t v = 0;
    size_t len = sizeof v;
    snprintf(name, sizeof name, "debug.events.%u.ptr", i);
    return hak_ctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

static int role_events_merge(void) {
    void *theirs[8], *mine;
    pthread_t t;
    if (pthread_create(&t, NULL, alloc_eight, theirs) != 0) return 5;
    pthread_join(t, NULL);
    mine = hak_malloc(40); /* newest: the main thread's */
    uint64_t n = 0;
    size_t len = sizeof n;
    if (hak_ctl("debug.events.count", &n, &len, NULL, 0) != 0 || n < 9) return 6;
    if (event_ptr(0) != (uintptr_t)mine) return 7;             /* the newest first */
    for (unsigned i = 1; i <= 8; i++)                          /* then the thread's, */
        if (event_ptr(i) != (uintptr_t)theirs[8 - i]) return 8; /* newest first too */
    fprintf(stderr, "%llu events, the newest merged in order\n", (unsigned long long)n);
    return 0;
}

static int run_role(const char *role) {
    if (strcmp(role, "--events-merge") == 0) return role_events_merge();
    if (strcmp(role, "--leavers") == 0) return role_leavers();
    if (strcmp(role, "--double-free") == 0) return role_double_free();
    if (strcmp(role, "--overrun") == 0) return role_overrun();
    if (strcmp(role, "--remote-double-free") == 0) return role_remote_double_free();
    if (strcmp(role, "--aligned") == 0) return role_aligned();
    if (strcmp(role, "--guard-slack") == 0) return role_guard_slack();
    return -1;
}

__attribute__((constructor)) static void child_dispatch(void) {
    const char *role = hk_test_role();
    int rc = role ? run_role(role) : -1;
    if (rc >= 0) exit(rc);
}

/* ---------------- the parent side ---------------- */

/* Runs this binary as role with HAKMEM_MODE and HAKMEM_CONF (unset when
 * NULL).  False when it could not run. */
static bool run_child(const char *role, const char *mode, const char *conf, struct hk_test_child *c) {
    return hk_test_run_self(c, role, "HAKMEM_MODE", mode, "HAKMEM_CONF", conf, (char *)NULL) == 0;
}

static bool died_of_abort(const struct hk_test_child *c) {
    return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
}

TEST(research_double_free_aborts_by_default) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--double-free", "research", NULL, &c), "child runs");
    EXPECT_TRUE(died_of_abort(&c), c.err);
    EXPECT_HAS_STR(c.err, "hakmem: double free", c.err);
    EXPECT_HAS_STR(c.err, "aborting (abort_on_error)", c.err); /* not "ignored" */
    EXPECT_LACKS_STR(c.err, "ignored", c.err);
    REQUIRE_TRUE(run_child("--double-free", NULL, "mode:research", &c), "child runs");
    EXPECT_TRUE(died_of_abort(&c), "mode:research in HAKMEM_CONF aborts too");
}

TEST(research_overrun_aborts_by_default) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--overrun", "research", NULL, &c), "child runs");
    EXPECT_TRUE(died_of_abort(&c), c.err);
    EXPECT_HAS_STR(c.err, "hakmem: buffer overrun", c.err);
}

TEST(research_remote_double_free_aborts) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--remote-double-free", "research", NULL, &c), "child runs");
    EXPECT_TRUE(died_of_abort(&c), c.err);
    EXPECT_HAS_STR(c.err, "hakmem: double free", c.err);
}

TEST(research_abort_on_error_0_reports_and_continues) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--double-free", "research", "abort_on_error:0", &c), "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), c.err);
    EXPECT_HAS_STR(c.err, "hakmem: double free", c.err);
    /* Later keys win: the key after the preset overrides it... */
    REQUIRE_TRUE(run_child("--overrun", NULL, "mode:research,abort_on_error:0", &c), "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), c.err);
    EXPECT_HAS_STR(c.err, "hakmem: buffer overrun", c.err);
    /* ...and the preset overrides a key before it, as it does features. */
    REQUIRE_TRUE(run_child("--overrun", NULL, "abort_on_error:0,mode:research", &c), "child runs");
    EXPECT_TRUE(died_of_abort(&c), c.err);
}

TEST(research_other_modes_report_and_continue) {
    static const char *const modes[] = {NULL, "minimal", "fast", "balanced", "learning"};
    for (unsigned m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct hk_test_child c;
        REQUIRE_TRUE(run_child("--double-free", modes[m], NULL, &c), "child runs");
        EXPECT_TRUE(hk_test_exited_ok(&c), modes[m] ? modes[m] : "default mode");
    }
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--double-free", "balanced", "debug_checks:1", &c), "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), "debug_checks alone keeps abort_on_error off");
    EXPECT_HAS_STR(c.err, "hakmem: double free", c.err);
}

TEST(research_every_block_is_16_byte_aligned) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--aligned", "research", "guard_sample:2", &c), "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), c.err);
    EXPECT_EQ_U(strlen(c.err), 0, c.err);
}

TEST(research_guarded_block_slack_is_a_canary) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--guard-slack", "research", "guard_sample:1,abort_on_error:0", &c),
                 "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), c.err);
    EXPECT_HAS_STR(c.err, "hakmem: buffer overrun", c.err);
}

TEST(research_events_of_all_threads_merge_newest_first) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--events-merge", "research", "guard_sample:0", &c), "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), c.err);
}

TEST(research_exited_threads_pages_go_back) {
    struct hk_test_child c;
    REQUIRE_TRUE(run_child("--leavers", "research", NULL, &c), "child runs");
    EXPECT_TRUE(hk_test_exited_ok(&c), c.err);
}

TEST_MAIN()
