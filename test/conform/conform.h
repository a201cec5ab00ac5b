/*
 * The conformance harness: every test runs in a forked child of its own
 * (its own process group), watched by the parent, so a crash or a hang is
 * one failed test with its reason ("killed by signal 11 (Segmentation
 * fault)", "hang after 20s") and the program goes on with the next test.
 *
 * The programs link libc and pthreads only: run.sh runs them once under
 * glibc's allocator (the reference) and again with the allocator under test
 * preloaded, so every expectation here comes from the standards (C, POSIX)
 * and the glibc manual, and must hold under glibc.
 *
 * CF_TEST(name, timeout_s) { ... } registers a test; cf_add() registers one
 * from a table (a function and an argument).  CF_EXPECT_* record a failure
 * and go on, CF_REQUIRE_* return from the test, CF_SKIP_IF skips it.
 * Output: PASS name / FAIL name: file:line: ... / SKIP name: reason, then
 * exactly "N passed, N failed" (", N skipped" when any), all written with
 * write(2) from stack buffers.  HAKMEM_TEST_FILTER=substring runs the
 * matching tests only; HAKMEM_TEST_SCALE (default 1) stretches the timed
 * tests; HAKMEM_CONFORM_TIMEOUT_MUL (default 1) multiplies every watchdog.
 */
#ifndef HK_CONFORM_H
#define HK_CONFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef void (*cf_fn)(const void *arg);

void cf_add(const char *name, cf_fn fn, const void *arg, unsigned timeout_s);
int cf_main(int argc, char **argv);
void cf_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cf_skip(const char *reason);
void cf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cf_failures(void);
/* The test name failures are reported under, for a program that checks
 * things outside cf_main (a helper the test re-runs). */
void cf_set_name(const char *name);   /* failures recorded so far in this test */

unsigned cf_scale(void);           /* HAKMEM_TEST_SCALE, default 1 */
uint64_t cf_now_ms(void);          /* CLOCK_MONOTONIC */
/* Waits up to ms for pid; 1 (status stored) or 0 (it was SIGKILLed and
 * reaped: a hang).  EINTR is retried. */
int cf_wait_timeout(pid_t pid, int *status, unsigned ms);
/* "exit 3", "killed by signal 11 (Segmentation fault)" into buf. */
const char *cf_status_str(int status, char *buf, size_t len);
/* x, hidden from the compiler: it cannot fold a call or warn about a
 * constant size it can see is too large. */
size_t cf_opaque(size_t x);
void *cf_opaque_ptr(void *p);
/* The heap still works: a few blocks of several sizes allocated, written,
 * checked and freed; a failure is reported at the caller's line. */
void cf_heap_usable_at(const char *file, int line);
#define CF_HEAP_USABLE() cf_heap_usable_at(__FILE__, __LINE__)
/* A small xorshift generator, one state per caller. */
static inline uint64_t cf_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#define CF_TEST(name, timeout_s)                                          \
    static void name(const void *cf_arg_);                                \
    __attribute__((constructor)) static void cf_reg_##name(void) {        \
        cf_add(#name, name, NULL, timeout_s);                             \
    }                                                                     \
    static void name(const void *cf_arg_ __attribute__((unused)))

#define CF_MAIN()                                                         \
    int main(int argc, char **argv) { return cf_main(argc, argv); }

#define CF_EXPECT(c, ...)                                                 \
    do { if (!(c)) cf_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CF_REQUIRE(c, ...)                                                \
    do { if (!(c)) { cf_fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define CF_EXPECT_EQ(a, b, what)                                          \
    do { unsigned long long cf_a_ = (a), cf_b_ = (b);                     \
         if (cf_a_ != cf_b_) cf_fail(__FILE__, __LINE__,                  \
             "%s: %s == %s: %llu != %llu", what, #a, #b, cf_a_, cf_b_); } while (0)
#define CF_EXPECT_NULL(p, what)                                           \
    do { const void *cf_p_ = (p); if (cf_p_ != NULL)                      \
         cf_fail(__FILE__, __LINE__, "%s: expected NULL, got %p", what,   \
             cf_p_); } while (0)
#define CF_REQUIRE_NOT_NULL(p, what)                                      \
    do { if ((p) == NULL) { cf_fail(__FILE__, __LINE__,                   \
             "%s: unexpected NULL", what); return; } } while (0)
#define CF_SKIP_IF(c, reason)                                             \
    do { if (c) { cf_skip(reason); return; } } while (0)

#endif
