/* The validity checks of a debug build (--enable-debug; core/valid.c):
 * they run where the invariants must hold (debug.validated.* count them)
 * and a broken invariant stops the program with a report.  A release build
 * compiles them out: its counts stay 0. */
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

#include "core/core_types.h" /* the layout only: no internal function is called */

static bool config_debug(void) {
    bool b = false;
    size_t len = sizeof b;
    return hak_ctl("config.debug", &b, &len, NULL, 0) == 0 && b;
}

static uint64_t validated(const char *kind) {
    char name[64];
    uint64_t n = 0;
    size_t len = sizeof n;
    snprintf(name, sizeof name, "debug.validated.%s", kind);
    if (hak_ctl(name, &n, &len, NULL, 0) != 0) return UINT64_MAX;
    return n;
}

/* Small, mid, large and huge blocks, freed in an order that empties pages. */
static void *churn(void *arg) {
    static const size_t sizes[] = {16, 48, 200, 1000, 3000, 20000, 100000, 600000, 3 << 20};
    void *p[64];
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 64; i++) p[i] = malloc(sizes[(i + round) % 9]);
        for (int i = 63; i >= 0; i--) free(p[i]);
    }
    return arg;
}

TEST(validate_checks_run_in_a_debug_build) {
    pthread_t t;
    REQUIRE_EQ_U(pthread_create(&t, NULL, churn, NULL), 0, "thread");
    churn(NULL);
    pthread_join(t, NULL);
    const char *kinds[] = {"page", "heap", "segment", "huge"};
    for (int i = 0; i < 4; i++) {
        uint64_t n = validated(kinds[i]);
        REQUIRE_TRUE(n != UINT64_MAX, "debug.validated.* is readable");
        hk_test_log("debug.validated.%s = %llu", kinds[i], (unsigned long long)n);
        if (config_debug()) EXPECT_GE_U(n, 1, kinds[i]);
        else EXPECT_EQ_U(n, 0, "a release build runs no validity check");
    }
}

/* Child: breaks the invariant used <= capacity of its current 64-byte page,
 * then allocates until the slow path looks at the heap. */
static int child_breaks_a_page(void) {
    uint8_t *p = malloc(64);
    hk_segment *seg = (hk_segment *)((uintptr_t)p & ~(uintptr_t)HK_SEG_MASK);
    hk_page *page = &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> HK_SLICE_SHIFT];
    page = (hk_page *)((uint8_t *)page - page->slice_back);
    /* volatile: the compiler takes malloc for a call that reads nothing of
     * ours and would drop the store as dead */
    *(volatile uint16_t *)&page->used = (uint16_t)(page->capacity + 1);
    static void *volatile sink;
    for (int i = 0; i < 100000; i++) sink = malloc(64);
    return sink != NULL;
}

TEST(validate_a_broken_page_stops_the_program) {
    SKIP_IF(!config_debug(), "validity checks are compiled into debug builds only");
    int fds[2];
    REQUIRE_EQ_U(pipe(fds), 0, "pipe");
    pid_t pid = fork();
    REQUIRE_TRUE(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fds[1], 2);
        _exit(child_breaks_a_page());
    }
    close(fds[1]);
    char out[1024] = "";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        hk_test_fail(__FILE__, __LINE__, "the child did not abort (status 0x%x)", status);
    EXPECT_TRUE(strstr(out, "invalid page") != NULL && strstr(out, "used > capacity") != NULL, out);
}

TEST_MAIN()
