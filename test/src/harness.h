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

/* HAKMEM_TEST_SCALE (default 1) multiplies iteration counts;
 * HAKMEM_TEST_THREADS (default 8) is the thread count of stress tests. */
unsigned hk_test_scale(void);
unsigned hk_test_threads(void);
uint64_t hk_test_now_ms(void); /* CLOCK_MONOTONIC */

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

#define EXPECT_EQ_U(a, b, msg)                                            \
    do { unsigned long long hk_a_ = (a), hk_b_ = (b);                     \
         if (hk_a_ != hk_b_) hk_test_fail(__FILE__, __LINE__,             \
             "%s == %s: %llu != %llu: %s", #a, #b, hk_a_, hk_b_, msg); } while (0)
#define REQUIRE_EQ_U(a, b, msg)                                           \
    do { unsigned long long hk_a_ = (a), hk_b_ = (b);                     \
         if (hk_a_ != hk_b_) { hk_test_fail(__FILE__, __LINE__,           \
             "%s == %s: %llu != %llu: %s", #a, #b, hk_a_, hk_b_, msg);    \
             return; } } while (0)
#define EXPECT_NE_U(a, b, msg)                                            \
    do { unsigned long long hk_a_ = (a), hk_b_ = (b);                     \
         if (hk_a_ == hk_b_) hk_test_fail(__FILE__, __LINE__,             \
             "%s != %s: both %llu: %s", #a, #b, hk_a_, msg); } while (0)
#define EXPECT_GE_U(a, b, msg)                                            \
    do { unsigned long long hk_a_ = (a), hk_b_ = (b);                     \
         if (!(hk_a_ >= hk_b_)) hk_test_fail(__FILE__, __LINE__,          \
             "%s >= %s: %llu < %llu: %s", #a, #b, hk_a_, hk_b_, msg); } while (0)
#define EXPECT_LE_U(a, b, msg)                                            \
    do { unsigned long long hk_a_ = (a), hk_b_ = (b);                     \
         if (!(hk_a_ <= hk_b_)) hk_test_fail(__FILE__, __LINE__,          \
             "%s <= %s: %llu > %llu: %s", #a, #b, hk_a_, hk_b_, msg); } while (0)
#define EXPECT_NULL(p, msg)                                               \
    do { const void *hk_p_ = (p); if (hk_p_ != NULL)                      \
         hk_test_fail(__FILE__, __LINE__, "%s is NULL: got %p: %s", #p,   \
             hk_p_, msg); } while (0)
#define REQUIRE_NOT_NULL(p, msg)                                          \
    do { if ((p) == NULL) { hk_test_fail(__FILE__, __LINE__,              \
             "%s != NULL: %s", #p, msg); return; } } while (0)
#define SKIP_IF(c, reason)                                                \
    do { if (c) { hk_test_skip(reason); return; } } while (0)

#endif
