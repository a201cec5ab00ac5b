/*
 * The test harness: TEST(name) { ... } registers a test; EXPECT_* record a
 * failure and continue, REQUIRE_* record a failure and return from the test,
 * SKIP_IF(cond, reason) skips the rest of it.  Every test prints one line
 * (PASS name / FAIL name: file:line: ... / SKIP name: reason); main() ends
 * with exactly "N passed, N failed" (", N skipped" when any), written with
 * write(2) from a stack buffer so it does not rely on the allocator under
 * test.  HAKMEM_TEST_FILTER=substring runs only the matching tests.
 */
#ifndef HK_TEST_HARNESS_H
#define HK_TEST_HARNESS_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

typedef void (*hk_test_fn)(void);

void hk_test_register(const char *name, hk_test_fn fn);
int hk_test_main(void);
void hk_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hk_test_skip(const char *reason);
bool hk_test_skipped(void);
void hk_test_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 in a ThreadSanitizer build (gcc or clang): tests divide their work. */
#if defined(__SANITIZE_THREAD__)
#define HK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HK_TSAN 1
#endif
#endif
#ifndef HK_TSAN
#define HK_TSAN 0
#endif
/* 1 in an AddressSanitizer build. */
#if defined(__SANITIZE_ADDRESS__)
#define HK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HK_ASAN 1
#endif
#endif
#ifndef HK_ASAN
#define HK_ASAN 0
#endif

/* HAKMEM_TEST_SCALE (default 1) multiplies iteration counts;
 * HAKMEM_TEST_THREADS (default 8) is the thread count of stress tests. */
unsigned hk_test_scale(void);
unsigned hk_test_threads(void);
uint64_t hk_test_now_ms(void); /* CLOCK_MONOTONIC */

/* Helpers several tests share (none allocates through malloc). */
void hk_test_sleep_ms(unsigned ms);          /* nanosleep, EINTR resumed */
void hk_test_out(const char *s);             /* write(2) to stdout, all of it */
/* Field idx of /proc/self/statm (0 size, 1 resident, ...) in bytes; 0 when
 * unreadable. */
size_t hk_test_statm_bytes(int idx);
size_t hk_test_rss_bytes(void);              /* resident set size in bytes */
/* How far a size measured at its peak grew past its start: 0 when the peak
 * stayed below it (memory an earlier test cached, given back meanwhile),
 * never an unsigned wrap. */
static inline size_t hk_test_growth(size_t peak, size_t start) { return peak > start ? peak - start : 0; }
uint64_t hk_test_xorshift(uint64_t *state);  /* xorshift64; state nonzero */
int hk_test_uptr_cmp(const void *a, const void *b); /* qsort of uintptr_t */
/* Flushes this thread's cache and purges every arena (arena 0's purge also
 * flushes research mode's pooled heaps and the BigCache): 0, or the first
 * failing hak_ctl's error, named in *failed when failed is not NULL. */
int hk_test_purge_all(const char **failed);
size_t hk_test_mapped_after_purge(void);    /* stats.mapped after that */

/*
 * Children: a test binary re-executes itself (/proc/self/exe) with argv[1]
 * naming a role; a constructor of the test file asks hk_test_role() for it,
 * runs the role and exits before the tests would start.
 */
/* argv[1] of this process (read from /proc/self/cmdline, so it works in a
 * constructor), or NULL when there is none. */
const char *hk_test_role(void);

struct hk_test_child {
    int status;             /* from waitpid, or -1 when it did not run */
    char out[16384];        /* first bytes of stdout, NUL-terminated */
    char err[16384];        /* first bytes of stderr, NUL-terminated */
    size_t out_bytes, err_bytes;    /* all it wrote, kept or not */
    size_t err_lines;       /* newlines on stderr, plus a last unterminated line */
};

/* Runs this binary as `role` (stdout and stderr captured into *c, killed by
 * SIGALRM after 30 s) in this environment less HAKMEM_TEST_FILTER, with the
 * NAME, VALUE pairs that follow role set (a NULL VALUE unsets NAME); a NULL
 * NAME ends the list.  Returns 0, or -1 when it could not run it. */
int hk_test_run_self(struct hk_test_child *c, const char *role, ...)
    __attribute__((sentinel));
bool hk_test_exited_ok(const struct hk_test_child *c);       /* exit 0 */
/* "exit N", "signal N", "did not run" or "status 0x..." into buf. */
void hk_test_describe_status(const struct hk_test_child *c, char *buf, size_t n);
/* The value after "name=" at the start of a line of the child's stdout. */
bool hk_test_child_value(const struct hk_test_child *c, const char *name, char *val, size_t n);

#define TEST(name)                                                        \
    static void name(void);                                               \
    __attribute__((constructor)) static void hk_reg_##name(void) {        \
        hk_test_register(#name, name);                                    \
    }                                                                     \
    static void name(void)

#define TEST_MAIN()                                                       \
    int main(void) { return hk_test_main(); }

#define EXPECT_TRUE(c, msg)                                               \
    do { if (!(c)) hk_test_fail(__FILE__, __LINE__, "%s: %s", #c, msg); } while (0)
#define REQUIRE_TRUE(c, msg)                                              \
    do { if (!(c)) { hk_test_fail(__FILE__, __LINE__, "%s: %s", #c, msg); return; } } while (0)

/*
 * Typed expectations: a failure prints both values,
 *   FAIL name: file:line: a == b: 3 != 4: msg
 * _U compares as unsigned long long, _I as long long, _PTR as addresses
 * (%p), STR as strings (NULL-safe: NULL equals only NULL; printed quoted).
 * Each hk_test_check_* records the failure and returns false, so the
 * REQUIRE_ forms return from the test.  Operands are evaluated once.
 */
enum hk_test_op { HK_OP_EQ, HK_OP_NE, HK_OP_LT, HK_OP_LE, HK_OP_GT, HK_OP_GE };
bool hk_test_check_u(const char *file, int line, enum hk_test_op op, unsigned long long a,
                     unsigned long long b, const char *as, const char *bs, const char *msg);
bool hk_test_check_i(const char *file, int line, enum hk_test_op op, long long a, long long b,
                     const char *as, const char *bs, const char *msg);
bool hk_test_check_ptr(const char *file, int line, enum hk_test_op op, const void *a,
                       const void *b, const char *as, const char *bs, const char *msg);
/* want_equal: STREQ (true) or STRNE (false). */
bool hk_test_check_str(const char *file, int line, bool want_equal, const char *a,
                       const char *b, const char *as, const char *bs, const char *msg);
/* want_found: hay contains needle (true) or does not (false); NULL hay fails. */
bool hk_test_check_substr(const char *file, int line, bool want_found, const char *hay,
                          const char *needle, const char *hs, const char *ns, const char *msg);

#define HK_EXPECT_(check, op, a, b, msg) \
    ((void)check(__FILE__, __LINE__, op, (a), (b), #a, #b, msg))
#define HK_REQUIRE_(check, op, a, b, msg) \
    do { if (!check(__FILE__, __LINE__, op, (a), (b), #a, #b, msg)) return; } while (0)

#define EXPECT_EQ_U(a, b, msg) HK_EXPECT_(hk_test_check_u, HK_OP_EQ, a, b, msg)
#define EXPECT_NE_U(a, b, msg) HK_EXPECT_(hk_test_check_u, HK_OP_NE, a, b, msg)
#define EXPECT_LT_U(a, b, msg) HK_EXPECT_(hk_test_check_u, HK_OP_LT, a, b, msg)
#define EXPECT_LE_U(a, b, msg) HK_EXPECT_(hk_test_check_u, HK_OP_LE, a, b, msg)
#define EXPECT_GT_U(a, b, msg) HK_EXPECT_(hk_test_check_u, HK_OP_GT, a, b, msg)
#define EXPECT_GE_U(a, b, msg) HK_EXPECT_(hk_test_check_u, HK_OP_GE, a, b, msg)
#define REQUIRE_EQ_U(a, b, msg) HK_REQUIRE_(hk_test_check_u, HK_OP_EQ, a, b, msg)
#define REQUIRE_NE_U(a, b, msg) HK_REQUIRE_(hk_test_check_u, HK_OP_NE, a, b, msg)
#define REQUIRE_LT_U(a, b, msg) HK_REQUIRE_(hk_test_check_u, HK_OP_LT, a, b, msg)
#define REQUIRE_LE_U(a, b, msg) HK_REQUIRE_(hk_test_check_u, HK_OP_LE, a, b, msg)
#define REQUIRE_GT_U(a, b, msg) HK_REQUIRE_(hk_test_check_u, HK_OP_GT, a, b, msg)
#define REQUIRE_GE_U(a, b, msg) HK_REQUIRE_(hk_test_check_u, HK_OP_GE, a, b, msg)

#define EXPECT_EQ_I(a, b, msg) HK_EXPECT_(hk_test_check_i, HK_OP_EQ, a, b, msg)
#define EXPECT_NE_I(a, b, msg) HK_EXPECT_(hk_test_check_i, HK_OP_NE, a, b, msg)
#define EXPECT_LT_I(a, b, msg) HK_EXPECT_(hk_test_check_i, HK_OP_LT, a, b, msg)
#define EXPECT_LE_I(a, b, msg) HK_EXPECT_(hk_test_check_i, HK_OP_LE, a, b, msg)
#define EXPECT_GT_I(a, b, msg) HK_EXPECT_(hk_test_check_i, HK_OP_GT, a, b, msg)
#define EXPECT_GE_I(a, b, msg) HK_EXPECT_(hk_test_check_i, HK_OP_GE, a, b, msg)
#define REQUIRE_EQ_I(a, b, msg) HK_REQUIRE_(hk_test_check_i, HK_OP_EQ, a, b, msg)
#define REQUIRE_NE_I(a, b, msg) HK_REQUIRE_(hk_test_check_i, HK_OP_NE, a, b, msg)
#define REQUIRE_LT_I(a, b, msg) HK_REQUIRE_(hk_test_check_i, HK_OP_LT, a, b, msg)
#define REQUIRE_LE_I(a, b, msg) HK_REQUIRE_(hk_test_check_i, HK_OP_LE, a, b, msg)
#define REQUIRE_GT_I(a, b, msg) HK_REQUIRE_(hk_test_check_i, HK_OP_GT, a, b, msg)
#define REQUIRE_GE_I(a, b, msg) HK_REQUIRE_(hk_test_check_i, HK_OP_GE, a, b, msg)

#define EXPECT_EQ_PTR(a, b, msg) HK_EXPECT_(hk_test_check_ptr, HK_OP_EQ, a, b, msg)
#define EXPECT_NE_PTR(a, b, msg) HK_EXPECT_(hk_test_check_ptr, HK_OP_NE, a, b, msg)
#define REQUIRE_EQ_PTR(a, b, msg) HK_REQUIRE_(hk_test_check_ptr, HK_OP_EQ, a, b, msg)
#define REQUIRE_NE_PTR(a, b, msg) HK_REQUIRE_(hk_test_check_ptr, HK_OP_NE, a, b, msg)
#define EXPECT_NULL(p, msg) HK_EXPECT_(hk_test_check_ptr, HK_OP_EQ, p, NULL, msg)
#define EXPECT_NOT_NULL(p, msg) HK_EXPECT_(hk_test_check_ptr, HK_OP_NE, p, NULL, msg)
#define REQUIRE_NULL(p, msg) HK_REQUIRE_(hk_test_check_ptr, HK_OP_EQ, p, NULL, msg)
#define REQUIRE_NOT_NULL(p, msg) HK_REQUIRE_(hk_test_check_ptr, HK_OP_NE, p, NULL, msg)

#define EXPECT_STREQ(a, b, msg) HK_EXPECT_(hk_test_check_str, true, a, b, msg)
#define EXPECT_STRNE(a, b, msg) HK_EXPECT_(hk_test_check_str, false, a, b, msg)
#define REQUIRE_STREQ(a, b, msg) HK_REQUIRE_(hk_test_check_str, true, a, b, msg)
#define REQUIRE_STRNE(a, b, msg) HK_REQUIRE_(hk_test_check_str, false, a, b, msg)
/* hay contains needle (strstr), or does not */
#define EXPECT_HAS_STR(hay, needle, msg) HK_EXPECT_(hk_test_check_substr, true, hay, needle, msg)
#define EXPECT_LACKS_STR(hay, needle, msg) HK_EXPECT_(hk_test_check_substr, false, hay, needle, msg)
#define REQUIRE_HAS_STR(hay, needle, msg) HK_REQUIRE_(hk_test_check_substr, true, hay, needle, msg)

#define SKIP_IF(c, reason)                                                \
    do { if (c) { hk_test_skip(reason); return; } } while (0)

#endif
