/* The test harness (see harness.h).  Output goes through write(2) from
 * stack buffers: the allocator under test is never needed to report. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
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

void hk_test_out(const char *s) {
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
    hk_test_out("# ");
    hk_test_out(buf);
    hk_test_out("\n");
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
    hk_test_out(buf);
    cur_failed++;
}

/* ---- typed expectations (harness.h) ---- */

/* The operator a test asserts, and the one that held instead. */
static const char *const op_want[] = {"==", "!=", "<", "<=", ">", ">="};
static const char *const op_got[] = {"!=", "==", ">=", ">", "<=", "<"};

static bool op_holds(enum hk_test_op op, int cmp) {
    switch (op) {
    case HK_OP_EQ: return cmp == 0;
    case HK_OP_NE: return cmp != 0;
    case HK_OP_LT: return cmp < 0;
    case HK_OP_LE: return cmp <= 0;
    case HK_OP_GT: return cmp > 0;
    case HK_OP_GE: return cmp >= 0;
    }
    return false;
}

bool hk_test_check_u(const char *file, int line, enum hk_test_op op, unsigned long long a,
                     unsigned long long b, const char *as, const char *bs, const char *msg) {
    if (op_holds(op, (a > b) - (a < b))) return true;
    hk_test_fail(file, line, "%s %s %s: %llu %s %llu: %s", as, op_want[op], bs, a, op_got[op],
                 b, msg);
    return false;
}

bool hk_test_check_i(const char *file, int line, enum hk_test_op op, long long a, long long b,
                     const char *as, const char *bs, const char *msg) {
    if (op_holds(op, (a > b) - (a < b))) return true;
    hk_test_fail(file, line, "%s %s %s: %lld %s %lld: %s", as, op_want[op], bs, a, op_got[op],
                 b, msg);
    return false;
}

bool hk_test_check_ptr(const char *file, int line, enum hk_test_op op, const void *a,
                       const void *b, const char *as, const char *bs, const char *msg) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    if (op_holds(op, (x > y) - (x < y))) return true;
    hk_test_fail(file, line, "%s %s %s: %p %s %p: %s", as, op_want[op], bs, a, op_got[op], b,
                 msg);
    return false;
}

/* A string for a failure line: quoted, or (null). */
static const char *quoted(const char *s, char *buf, size_t n) {
    if (s == NULL) return "(null)";
    snprintf(buf, n, "\"%s\"", s);
    return buf;
}

bool hk_test_check_str(const char *file, int line, bool want_equal, const char *a,
                       const char *b, const char *as, const char *bs, const char *msg) {
    bool equal = (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
    if (equal == want_equal) return true;
    char qa[256], qb[256];
    hk_test_fail(file, line, "%s %s %s: %s %s %s: %s", as, want_equal ? "==" : "!=", bs,
                 quoted(a, qa, sizeof qa), want_equal ? "!=" : "==", quoted(b, qb, sizeof qb),
                 msg);
    return false;
}

bool hk_test_check_substr(const char *file, int line, bool want_found, const char *hay,
                          const char *needle, const char *hs, const char *ns, const char *msg) {
    bool found = hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
    if (found == want_found) return true;
    char qh[384], qn[128];
    hk_test_fail(file, line, "%s %s %s: %s %s %s: %s", hs, want_found ? "contains" : "lacks",
                 ns, quoted(hay, qh, sizeof qh), want_found ? "lacks" : "contains",
                 quoted(needle, qn, sizeof qn), msg);
    return false;
}

void hk_test_skip(const char *reason) {
    char buf[512];
    snprintf(buf, sizeof buf, "SKIP %s: %s\n", cur_name, reason);
    hk_test_out(buf);
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

/* ---- helpers several tests share ---- */

void hk_test_sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

size_t hk_test_statm_bytes(int idx) {
    char buf[256];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *s = buf;
    for (int i = 0; i < idx; i++) {
        s = strchr(s, ' ');
        if (s == NULL) return 0;
        s++;
    }
    return (size_t)strtoull(s, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

size_t hk_test_rss_bytes(void) { return hk_test_statm_bytes(1); }

uint64_t hk_test_xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int hk_test_uptr_cmp(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

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
            hk_test_out(buf);
        }
    }
    if (skipped)
        snprintf(buf, sizeof buf, "%d passed, %d failed, %d skipped\n",
                 passed, failed, skipped);
    else
        snprintf(buf, sizeof buf, "%d passed, %d failed\n", passed, failed);
    hk_test_out(buf);
    return failed ? 1 : 0;
}
