/* The test harness (see harness.h).  Output goes through write(2) from
 * stack buffers: the allocator under test is never needed to report. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HK_TEST_MAX 512

static struct { const char *name; hk_test_fn fn; } tests[HK_TEST_MAX];
static int ntests;
static int cur_failed, cur_skipped;
static const char *cur_name;

void hk_test_register(const char *name, hk_test_fn fn) {
    if (ntests < HK_TEST_MAX) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

static void out(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(1, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

void hk_test_log(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out("# ");
    out(buf);
    out("\n");
}

void hk_test_fail(const char *file, int line, const char *fmt, ...) {
    char msg[768], buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Only the first failure gets the FAIL line; later ones are details. */
    snprintf(buf, sizeof buf, "%s %s: %s:%d: %s\n",
             cur_failed ? "  also" : "FAIL", cur_name, file, line, msg);
    out(buf);
    cur_failed++;
}

void hk_test_skip(const char *reason) {
    char buf[512];
    snprintf(buf, sizeof buf, "SKIP %s: %s\n", cur_name, reason);
    out(buf);
    cur_skipped = 1;
}

bool hk_test_skipped(void) { return cur_skipped != 0; }

static unsigned env_unsigned(const char *name, unsigned dflt) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') return dflt;
    unsigned long x = strtoul(v, NULL, 10);
    return x == 0 ? dflt : (unsigned)x;
}

unsigned hk_test_scale(void) { return env_unsigned("HAKMEM_TEST_SCALE", 1); }
uint64_t hk_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned hk_test_threads(void) { return env_unsigned("HAKMEM_TEST_THREADS", 8); }

int hk_test_main(void) {
    const char *filter = getenv("HAKMEM_TEST_FILTER");
    int passed = 0, failed = 0, skipped = 0;
    char buf[256];
    for (int i = 0; i < ntests; i++) {
        if (filter && *filter && strstr(tests[i].name, filter) == NULL)
            continue;
        cur_name = tests[i].name;
        cur_failed = 0;
        cur_skipped = 0;
        tests[i].fn();
        if (cur_failed) {
            failed++;
        } else if (cur_skipped) {
            skipped++;
        } else {
            passed++;
            snprintf(buf, sizeof buf, "PASS %s\n", cur_name);
            out(buf);
        }
    }
    if (skipped)
        snprintf(buf, sizeof buf, "%d passed, %d failed, %d skipped\n",
                 passed, failed, skipped);
    else
        snprintf(buf, sizeof buf, "%d passed, %d failed\n", passed, failed);
    out(buf);
    return failed ? 1 : 0;
}
