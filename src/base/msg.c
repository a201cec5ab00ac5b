/* Messages to stderr that never allocate: formatted into stack buffers and
 * written with write(2), so they are safe inside the allocator. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"

void hk_write_stderr(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

void hk_fmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

void hk_warn(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    int n = snprintf(buf, sizeof buf, "hakmem: ");
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    buf[len] = '\n';
    buf[len + 1] = '\0';
    hk_write_stderr(buf);
}

void hk_assert_fail(const char *what, const char *file, int line) {
    char buf[512];
    snprintf(buf, sizeof buf, "hakmem: assertion failed: %s (%s:%d)\n", what,
             file, line);
    hk_write_stderr(buf);
    abort();
}
