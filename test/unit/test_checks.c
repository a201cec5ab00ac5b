/*
 * Misuse detection: each test commits the bug on purpose in a child process
 * (so a wrong guess cannot corrupt this one) and checks the one-line report
 * the child writes on stderr and its exit status.  The always-on checks run
 * in the default mode; the debug checks with config.features.debug_checks
 * (research mode), switched on inside the child.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include <hakmem/hakmem.h>

typedef void (*child_fn)(void);

/* Runs fn in a child with stderr captured; returns its wait status. */
static int run_child(child_fn fn, char *err, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], err + n, cap - 1 - n)) > 0) n += (size_t)r;
    err[n] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void debug_on(void) {
    bool on = true;
    hak_ctl("config.features.debug_checks", NULL, NULL, &on, sizeof on);
}


static uint64_t reports(void) {
    uint64_t n = 0;
    size_t len = sizeof n;
    hak_ctl("debug.reports", &n, &len, NULL, 0);
    return n;
}

/* ---- always on ---- */

static void free_stack_pointer(void) {
    char buf[64];
    uint64_t before = reports();
    hak_free(buf + 16);
    _exit(reports() == before + 1 ? 0 : 3);
}

TEST(checks_free_of_a_stack_pointer_is_reported) {
    char err[4096];
    int st = run_child(free_stack_pointer, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives and counts one report");
    EXPECT_HAS_STR(err, "free of a pointer not from hakmem", err);
}

static int cmp_uintptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void *free_interior_remote(void *p) {
    hak_free((char *)p + 32);
    return NULL;
}

static void free_interior(void) {
    /* The owner's fast path and a remote free both check the exact block
     * boundary: aligned interior pointers (16 and 32 bytes into a 112-byte
     * block), an odd one, then the real free of each block. */
    char *p = hak_malloc(100), *q = hak_malloc(100);
    uint64_t before = reports();
    hak_free(p + 16);
    hak_free(p + 3);
    pthread_t t;
    if (pthread_create(&t, NULL, free_interior_remote, q) != 0) _exit(5);
    pthread_join(t, NULL);
    hak_free(p);
    hak_free(q);
    /* No interior pointer entered a list: blocks handed out never overlap. */
    enum { N = 3000 };
    static uintptr_t got[N];
    for (int i = 0; i < N; i++) got[i] = (uintptr_t)hak_malloc(100);
    qsort(got, N, sizeof got[0], cmp_uintptr);
    for (int i = 1; i < N; i++)
        if (got[i] - got[i - 1] < 100) _exit(4);
    _exit(reports() == before + 3 ? 0 : 3);
}

TEST(checks_free_of_an_interior_pointer_is_reported) {
    char err[4096];
    int st = run_child(free_interior, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives, one report");
    EXPECT_HAS_STR(err, "hakmem: free of a pointer", err);
}

static bool chunk_mapped(const void *p) {
    void *chunk = (void *)((uintptr_t)p & ~(uintptr_t)((2u << 20) - 1));
    return madvise(chunk, 4096, MADV_NORMAL) == 0; /* ENOMEM: unmapped */
}

static void free_into_unmapped_segment(void) {
    /* free() skips the segment-map lookup for the segments in the heap's
     * owned-segment cache (an entry per segment address mod 32); once their
     * pages are handed back and they are unmapped, a stale pointer into any
     * of them must still be reported, not read. */
    enum { N = 48 };
    static char *blocks[N];
    for (int i = 0; i < N; i++)
        if ((blocks[i] = hak_malloc(600 << 10)) == NULL) _exit(4);
    for (int i = 0; i < N; i++) hak_free(blocks[i]);
    unsigned arena = 0;
    size_t len = sizeof arena;
    char name[64];
    if (hak_ctl("thread.arena", &arena, &len, NULL, 0) != 0) _exit(5);
    snprintf(name, sizeof name, "arena.%u.purge", arena);
    if (hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0) != 0 ||
        hak_ctl(name, NULL, NULL, NULL, 0) != 0)
        _exit(5);
    if (chunk_mapped(blocks[N - 1])) _exit(6); /* the scenario did not happen */
    /* One stale pointer per unmapped segment, the last one freed first (a
     * segment that other allocations of the process keep is left alone). */
    uintptr_t seen[N];
    unsigned nseen = 0;
    uint64_t before = reports();
    for (int i = N - 1; i >= 0; i--) {
        uintptr_t chunk = (uintptr_t)blocks[i] >> 21;
        bool dup = false;
        for (unsigned j = 0; j < nseen; j++) dup |= seen[j] == chunk;
        if (dup || chunk_mapped(blocks[i])) continue;
        seen[nseen++] = chunk;
        hak_free(blocks[i]);
    }
    if (nseen < 9) _exit(7); /* too few segments for the scenario */
    _exit(reports() == before + nseen ? 0 : 3);
}

TEST(checks_free_into_an_unmapped_segment_is_reported) {
    char err[4096];
    int st = run_child(free_into_unmapped_segment, err, sizeof err);
    char why[64];
    snprintf(why, sizeof why, "child survives, one report per segment (status %#x)", st);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, why);
    EXPECT_HAS_STR(err, "free of a pointer not from hakmem", err);
}

static void huge_double_free(void) {
    void *p = hak_malloc(3 << 20); /* parked in the BigCache when freed */
    hak_free(p);
    uint64_t before = reports();
    hak_free(p);
    _exit(reports() == before + 1 ? 0 : 3);
}

TEST(checks_double_free_of_a_huge_block_is_reported) {
    char err[4096];
    int st = run_child(huge_double_free, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives, one report");
    EXPECT_HAS_STR(err, "double free of a huge block", err);
}

/* Another thread frees a block of this thread's page twice in a row: the
 * second free is reported and dropped, so the block comes back once (it
 * was chained to itself, and handed out over and over). */
static void *free_twice(void *p) {
    hak_free(p);
    hak_free(p);
    return NULL;
}

static void remote_double_free(void) {
    enum { N = 4096 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) blocks[i] = hak_malloc(48);
    void *victim = blocks[N / 2];
    uint64_t before = reports();
    pthread_t t;
    if (pthread_create(&t, NULL, free_twice, victim) != 0) _exit(5);
    pthread_join(t, NULL); /* its exit hands the block back */
    if (reports() != before + 1) _exit(3);
    int seen = 0;
    for (int i = 0; i < 3 * N; i++) {
        void *q = hak_malloc(48);
        if (q == victim) seen++;
    }
    _exit(seen == 1 ? 0 : 4);
}

TEST(checks_remote_double_free_in_a_row_is_reported) {
    char err[4096];
    int st = run_child(remote_double_free, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives, one report, the block once");
    EXPECT_HAS_STR(err, "double free", err);
}

/* One thread frees a block, its owner takes it back and hands it out
 * again, and the same thread frees it again: a free like any other, never
 * reported (c72c907 took it for a double free, dropped it and leaked it). */
static pthread_mutex_t freer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freer_cond = PTHREAD_COND_INITIALIZER;
static void *to_free;
static bool freer_done;

static void *freer_loop(void *arg) {
    (void)arg;
    pthread_mutex_lock(&freer_lock);
    for (;;) {
        while (to_free == NULL && !freer_done) pthread_cond_wait(&freer_cond, &freer_lock);
        if (to_free == NULL) break;
        hak_free(to_free);
        to_free = NULL;
        pthread_cond_broadcast(&freer_cond);
    }
    pthread_mutex_unlock(&freer_lock);
    return NULL;
}

/* Has the freer thread free p; returns once it has. */
static void free_there(void *p) {
    pthread_mutex_lock(&freer_lock);
    to_free = p;
    pthread_cond_broadcast(&freer_cond);
    while (to_free != NULL) pthread_cond_wait(&freer_cond, &freer_lock);
    pthread_mutex_unlock(&freer_lock);
}

static void remote_free_of_a_reused_block(void) {
    static const size_t sizes[] = {16, 1024, 10240};
    static void *kept[4096];
    pthread_t t;
    if (pthread_create(&t, NULL, freer_loop, NULL) != 0) _exit(5);
    uint64_t before = reports();
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        void *p = hak_malloc(sizes[s]), *q = NULL;
        free_there(p);
        int n = 0;
        while (n < 4096 && (q = hak_malloc(sizes[s])) != p) kept[n++] = q;
        if (q != p) _exit(4); /* the block never came back: nothing tested */
        free_there(q);
        for (int i = 0; i < n; i++) hak_free(kept[i]);
    }
    pthread_mutex_lock(&freer_lock);
    freer_done = true;
    pthread_cond_broadcast(&freer_cond);
    pthread_mutex_unlock(&freer_lock);
    pthread_join(t, NULL);
    _exit(reports() == before ? 0 : 3);
}

TEST(checks_remote_free_of_a_reused_block_is_not_reported) {
    char err[4096];
    int st = run_child(remote_free_of_a_reused_block, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "no report, every block came back");
    EXPECT_TRUE(strstr(err, "double free") == NULL, err);
}

static void corrupt_list(void) {
    /* Two free blocks on the current page; overwrite the first one's link
     * (a use after free) and allocate through it. */
    void *a = hak_malloc(48), *b = hak_malloc(48);
    hak_free(b);
    hak_free(a);
    memset(a, 0x41, 8);
    uint64_t before = reports();
    for (int i = 0; i < 5000 && reports() == before; i++) {
        void *q = hak_malloc(48);
        if (q == NULL) _exit(4);
    }
    _exit(reports() >= before + 1 ? 0 : 3);
}

TEST(checks_corrupted_free_list_is_detected_not_followed) {
    char err[4096];
    int st = run_child(corrupt_list, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives, reports the list");
    EXPECT_HAS_STR(err, "corrupted free list", err);
}

/* ---- debug checks ---- */

static void debug_double_free(void) {
    debug_on();
    void *p = hak_malloc(40);
    hak_free(p);
    uint64_t before = reports();
    hak_free(p);
    _exit(reports() == before + 1 ? 0 : 3);
}

TEST(checks_debug_double_free_is_reported) {
    char err[4096];
    int st = run_child(debug_double_free, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives, one report");
    EXPECT_TRUE(strstr(err, "double free") != NULL && strstr(err, "class") != NULL &&
                strstr(err, "thread") != NULL, err);
}

static void debug_overrun(void) {
    debug_on();
    char *p = hak_malloc(40);
    p[40] = 'X'; /* one byte past the end */
    uint64_t before = reports();
    hak_free(p);
    _exit(reports() == before + 1 ? 0 : 3);
}

TEST(checks_debug_overrun_by_one_byte_is_reported) {
    char err[4096];
    int st = run_child(debug_overrun, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child survives, one report");
    EXPECT_TRUE(strstr(err, "buffer overrun") != NULL && strstr(err, "+40") != NULL, err);
}

static void debug_junk(void) {
    debug_on();
    unsigned char *p = hak_malloc(64);
    for (int i = 0; i < 64; i++)
        if (p[i] != 0xA5) _exit(4); /* allocation junk */
    hak_free(p);
    /* use after free, observed through the junk (past the link word) */
    for (int i = 8; i < 64; i++)
        if (p[i] != 0xDE) _exit(5);
    _exit(0);
}

TEST(checks_debug_junk_fill_shows_use_after_free) {
    char err[4096];
    int st = run_child(debug_junk, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st), "child exits");
    EXPECT_EQ_U(WEXITSTATUS(st), 0, "0xA5 on allocation, 0xDE after free");
}

static void debug_usable_is_requested(void) {
    debug_on();
    char *p = hak_malloc(40);
    size_t u = hak_malloc_usable_size(p);
    memset(p, 1, u); /* writing the whole usable size must not trip the canary */
    uint64_t before = reports();
    hak_free(p);
    _exit(u == 40 && reports() == before ? 0 : 3);
}

TEST(checks_debug_usable_size_excludes_the_canary) {
    char err[4096];
    int st = run_child(debug_usable_is_requested, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, err);
}

static void debug_guard(void) {
    debug_on();
    unsigned every = 0;
    size_t len = sizeof every;
    hak_ctl("opt.guard_sample", &every, &len, NULL, 0);
    if (every == 0) _exit(7);
    /* One of the next `every` small blocks ends at a guard page: writing one
     * byte past each must crash on that one.  A multiple of 16, so the
     * guarded block has no slack (a canary) before its guard page. */
    for (unsigned i = 0; i < every + 1; i++) {
        char *p = hak_malloc(96);
        size_t u = hak_malloc_usable_size(p);
        p[u] = 1; /* overrun: a canary byte, or the guard page */
    }
    _exit(0);
}

TEST(checks_debug_guard_page_catches_an_overrun) {
    char err[8192];
    int st = run_child(debug_guard, err, sizeof err);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizer's own SEGV handler reports the fault and exits. */
    EXPECT_TRUE((WIFEXITED(st) && WEXITSTATUS(st) != 0 && strstr(err, "SEGV") != NULL) ||
                    (WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS)),
                "the guarded block's overrun faults");
#else
    EXPECT_TRUE(WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS),
                "the guarded block's overrun faults");
#endif
}

static void debug_events(void) {
    debug_on();
    void *p = hak_malloc(24);
    hak_free(p);
    char what[64] = "";
    const char *w = NULL;
    uint64_t ptr = 0;
    size_t len = sizeof w;
    hak_ctl("debug.events.0.what", &w, &len, NULL, 0);
    len = sizeof ptr;
    hak_ctl("debug.events.0.ptr", &ptr, &len, NULL, 0);
    snprintf(what, sizeof what, "%s", w ? w : "");
    _exit(strcmp(what, "free") == 0 && ptr == (uint64_t)(uintptr_t)p ? 0 : 3);
}

TEST(checks_debug_events_ring_records_the_free) {
    char err[4096];
    int st = run_child(debug_events, err, sizeof err);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "debug.events.0 is the free just made");
}

TEST_MAIN()
