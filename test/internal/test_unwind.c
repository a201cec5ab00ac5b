/*
 * White-box: the profiler's unwinder (prof/unwind.c, hk_unwind) against
 * glibc's backtrace() (libgcc's unwinder), from frames of every shape the
 * compiler makes: plain calls, deep recursion, alloca (a CFA in rbp), a
 * large frame, a realigned frame (a CFA read through rbp), frames inside
 * libc (qsort's comparison), a thread's stack, and a signal handler's
 * (a signal frame: hk_unwind declines with -1 and backtrace() is used).
 * Each walk is done twice: the first reads the rules from .eh_frame, the
 * second from the table.
 */
#include "prof/prof.h"
#include "harness.h"

#include <alloca.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXF 128

/* What the last compare() saw: -1 declined, 0 differed, 1 same frames. */
typedef struct walk {
    int result, n, nb;
    int first_diff;
} walk;

/* Frames 1.. must be equal: frame 0 is the return address into this
 * function, which differs between the two calls.  The sanitizers'
 * backtrace() is an interceptor with a frame of its own above ours: the
 * frames are compared from where b holds our frame 1 (k), and both walks
 * end together unless both were cut at max. */
static __attribute__((noinline)) walk compare(int max) {
    void *a[MAXF], *b[MAXF];
    walk w = {.first_diff = -1};
    w.n = hk_unwind(a, max, NULL, NULL);
    w.nb = backtrace(b, max);
    if (w.n < 0) {
        w.result = -1;
        return w;
    }
    int k = 1;
    while (w.n > 1 && k < 4 && k < w.nb && b[k] != a[1]) k++;
    bool cut = w.n == max && w.nb == max;
    w.result = w.n > 1 && k < w.nb && (cut || w.n - 1 == w.nb - k);
    for (int i = 1; i < w.n && i - 1 + k < w.nb; i++) {
        if (a[i] != b[i - 1 + k]) {
            w.result = 0;
            w.first_diff = i;
            break;
        }
    }
    return w;
}

static __attribute__((noinline)) walk compare_twice(int max) {
    walk w1 = compare(max);
    walk w2 = compare(max);
    if (w1.result != 1) return w1;
    return w2;
}

static void expect_same(walk w, const char *what) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: hk_unwind %d frames, backtrace %d, first difference at %d", what, w.n,
             w.nb, w.first_diff);
    EXPECT_EQ_I(w.result, 1, msg);
}

static volatile int sink;

static __attribute__((noinline)) walk recurse(int depth, int max) {
    if (depth == 0) return compare_twice(max);
    walk w = recurse(depth - 1, max);
    sink += depth; /* not a tail call */
    return w;
}

TEST(unwind_plain_calls_match_backtrace) {
    hk_unwind_init();
    expect_same(compare_twice(MAXF), "from the test");
    expect_same(recurse(5, MAXF), "5 frames deep");
}

TEST(unwind_deep_recursion_truncates_as_backtrace) {
    walk w = recurse(200, 64);
    expect_same(w, "200 frames deep, 64 kept");
    EXPECT_EQ_I(w.n, 64, "64 frames");
}

static __attribute__((noinline)) walk with_alloca(size_t n) {
    char *p = alloca(n);
    memset(p, 1, n);
    sink += p[n / 2];
    walk w = compare_twice(MAXF);
    sink += p[0];
    return w;
}

TEST(unwind_alloca_frame_matches_backtrace) {
    expect_same(with_alloca(100), "alloca(100)");
    expect_same(with_alloca(5000), "alloca(5000)");
}

static __attribute__((noinline)) walk large_frame(void) {
    volatile char big[200000];
    big[0] = 1;
    big[sizeof big - 1] = 2;
    walk w = compare_twice(MAXF);
    sink += big[0] + big[sizeof big - 1];
    return w;
}

TEST(unwind_large_frame_matches_backtrace) {
    expect_same(large_frame(), "a 200 kB frame");
}

static __attribute__((noinline)) walk realigned(size_t n) {
    _Alignas(64) volatile char line[64];
    char *p = alloca(n);
    memset(p, 3, n);
    line[0] = p[0];
    walk w = compare_twice(MAXF);
    sink += line[0] + p[n - 1];
    return w;
}

static __attribute__((noinline, force_align_arg_pointer)) walk forced_align(void) {
    _Alignas(32) volatile char v[32];
    v[0] = 1;
    walk w = compare_twice(MAXF);
    sink += v[0];
    return w;
}

TEST(unwind_realigned_frames_match_backtrace) {
    expect_same(realigned(100), "64-aligned local and alloca");
    expect_same(forced_align(), "force_align_arg_pointer");
}

static walk in_qsort;

static int by_value(const void *a, const void *b) {
    if (in_qsort.n == 0) in_qsort = compare_twice(MAXF);
    return *(const int *)a - *(const int *)b;
}

TEST(unwind_through_libc_matches_backtrace) {
    int v[16];
    for (int i = 0; i < 16; i++) v[i] = (i * 7) % 16;
    in_qsort = (walk){0};
    qsort(v, 16, sizeof v[0], by_value);
    expect_same(in_qsort, "a qsort comparison");
}

static void *thread_main(void *arg) {
    *(walk *)arg = recurse(3, MAXF);
    return NULL;
}

TEST(unwind_thread_stack_matches_backtrace) {
    walk w = {0};
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, thread_main, &w), 0, "pthread_create");
    pthread_join(t, NULL);
    expect_same(w, "a thread, 3 deep");
}

static walk in_handler;
static volatile sig_atomic_t handled;

static void on_signal(int sig) {
    (void)sig;
    in_handler = compare_twice(MAXF);
    handled = 1;
}

TEST(unwind_declines_signal_frames) {
    struct sigaction sa = {.sa_handler = on_signal}, old;
    sigemptyset(&sa.sa_mask);
    REQUIRE_EQ_I(sigaction(SIGUSR1, &sa, &old), 0, "sigaction");
    sigset_t usr1, was;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, &was);
    handled = 0;
    pthread_kill(pthread_self(), SIGUSR1);
    for (int i = 0; i < 1000 && !handled; i++) usleep(1000);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    sigaction(SIGUSR1, &old, NULL);
    REQUIRE_TRUE(handled, "the handler ran");
    /* The handler's caller is the kernel's signal frame (__restore_rt,
     * augmentation "S"): not followed, backtrace() takes it. */
    EXPECT_EQ_I(in_handler.result, -1, "declined");
    EXPECT_GT_I(in_handler.nb, 3, "backtrace went through the signal frame");
}

TEST(unwind_fewer_frames_than_asked) {
    void *a[4];
    EXPECT_EQ_I(hk_unwind(a, 1, NULL, NULL), 1, "max 1: one frame");
    EXPECT_EQ_I(hk_unwind(a, 0, NULL, NULL), 0, "max 0: none");
}

/* ---- the traces: a walk known to be the same without being done ---- */

static hk_unwind_traces traces;
static unsigned which; /* the trace of the last walk */

/* One call site of hk_unwind (a trace holds the registers of its frame). */
static __attribute__((noinline)) int traced(void **a, bool keep) {
    int n = hk_unwind(a, MAXF, keep ? &traces : NULL, &which);
    sink++;
    return n;
}

static __attribute__((noinline)) int traced_deep(int depth, void **a, bool keep) {
    if (depth == 0) return traced(a, keep);
    int n = traced_deep(depth - 1, a, keep);
    sink += depth;
    return n;
}

static hk_unwind_trace *last_trace(void) { return &traces.t[which]; }

/* Each walk from one call site (the frames of a test's own body differ
 * from line to line), depth[i] deep; before walk i, change(i) may touch
 * the trace of the walk before. */
#define NWALKS 6
static void *frames[NWALKS][MAXF];

static void walks(const int *depth, int *r, const bool *keep, void (*change)(int)) {
    memset(&traces, 0, sizeof traces);
    for (int i = 0; i < NWALKS; i++) {
        if (change != NULL) change(i);
        r[i] = traced_deep(depth[i], frames[i], keep[i]);
    }
}

static bool same_frames(int i, int j, int n) { return memcmp(frames[i], frames[j], (size_t)n * sizeof frames[0][0]) == 0; }

TEST(unwind_trace_knows_the_same_walk) {
    int r[NWALKS];
    const int depth[NWALKS] = {3, 3, 3, 3, 3, 3};
    const bool keep[NWALKS] = {true, true, false, true, true, true};
    walks(depth, r, keep, NULL);
    REQUIRE_GT_I(r[0], 4, "walked");
    EXPECT_GT_I((int)last_trace()->nreads, 4, "the words it depends on are kept");
    EXPECT_EQ_I(r[1], HK_UNWIND_SAME, "from the same place: the same walk");
    EXPECT_EQ_I(r[2], r[0], "a walk without the traces");
    EXPECT_TRUE(same_frames(0, 2, r[0]), "gives the frames the trace stood for");
    EXPECT_EQ_I(r[3], HK_UNWIND_SAME, "the trace is kept across walks without it");
}

static void change_trace(int i) {
    hk_unwind_trace *t = last_trace();
    if (i == 1 && t->nreads > 0) t->val[t->nreads - 1] ^= 8; /* as if the stack held another word */
    if (i == 3) t->max = MAXF - 1;                           /* as if cut elsewhere */
}

TEST(unwind_trace_walks_again_when_a_word_differs) {
    int r[NWALKS];
    const int depth[NWALKS] = {3, 3, 3, 3, 3, 3};
    const bool keep[NWALKS] = {true, true, true, true, true, true};
    walks(depth, r, keep, change_trace);
    REQUIRE_GT_I(r[0], 4, "walked");
    EXPECT_EQ_I(r[1], r[0], "a word differs: walked again");
    EXPECT_TRUE(same_frames(0, 1, r[0]), "the same frames");
    EXPECT_EQ_I(r[2], HK_UNWIND_SAME, "and known again after it");
    EXPECT_EQ_I(r[3], r[0], "another max: walked");
    EXPECT_EQ_I(r[4], HK_UNWIND_SAME, "known again");
}

TEST(unwind_traces_know_walks_from_several_places) {
    int r[NWALKS];
    const int depth[NWALKS] = {2, 5, 2, 5, 9, 2};
    const bool keep[NWALKS] = {true, true, true, true, true, true};
    walks(depth, r, keep, NULL);
    REQUIRE_GT_I(r[0], 3, "walked");
    REQUIRE_EQ_I(r[1], r[0] + 3, "three frames deeper");
    EXPECT_EQ_I(r[2], HK_UNWIND_SAME, "the first place, known");
    EXPECT_EQ_I(r[3], HK_UNWIND_SAME, "the second, known too");
    EXPECT_EQ_I(r[4], r[0] + 7, "a third place walked");
    EXPECT_EQ_I(r[5], HK_UNWIND_SAME, "the first still known");
}

TEST(unwind_trace_keeps_no_long_walk) {
    int r[NWALKS];
    const int depth[NWALKS] = {100, 100, 100, 100, 100, 100};
    const bool keep[NWALKS] = {true, true, true, true, true, true};
    walks(depth, r, keep, NULL);
    REQUIRE_GT_I(r[0], 64, "a walk of 100 frames");
    EXPECT_EQ_I((int)last_trace()->gen, 0, "more words than a trace holds: none kept");
    EXPECT_EQ_I(r[1], r[0], "so the next one walks");
}

TEST_MAIN()
