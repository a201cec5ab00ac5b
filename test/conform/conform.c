/* The conformance harness (see conform.h): one forked child per test,
 * watched by the parent.  The parent allocates nothing while it reports:
 * output goes through write(2) from stack buffers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CF_MAX_TESTS 512
#define CF_EXIT_FAIL 1
#define CF_EXIT_SKIP 77

static struct {
    const char *name;
    cf_fn fn;
    const void *arg;
    unsigned timeout_s;
} tests[CF_MAX_TESTS];
static int ntests;
static const char *cur_name = "?";
static int cur_failed, cur_skipped;

void cf_add(const char *name, cf_fn fn, const void *arg, unsigned timeout_s) {
    if (ntests == CF_MAX_TESTS) return;
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    tests[ntests].arg = arg;
    tests[ntests].timeout_s = timeout_s;
    ntests++;
}

static void out(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(1, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

void cf_log(const char *fmt, ...) {
    char msg[900], buf[1024];
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "# %s: %s\n", cur_name, msg);
    out(buf);
    errno = e;
}

void cf_fail(const char *file, int line, const char *fmt, ...) {
    char msg[768], buf[1024];
    int e = errno;
    const char *base = strrchr(file, '/');
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The first failure gets the FAIL line; later ones are details. */
    snprintf(buf, sizeof buf, "%s %s: %s:%d: %s\n",
             cur_failed ? "  also" : "FAIL", cur_name, base ? base + 1 : file,
             line, msg);
    out(buf);
    cur_failed++;
    errno = e;
}

void cf_skip(const char *reason) {
    char buf[512];
    snprintf(buf, sizeof buf, "SKIP %s: %s\n", cur_name, reason);
    out(buf);
    cur_skipped = 1;
}

int cf_failures(void) { return cur_failed; }

void cf_set_name(const char *name) { cur_name = name; }

static unsigned env_unsigned(const char *name, unsigned dflt) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') return dflt;
    unsigned long x = strtoul(v, NULL, 10);
    return x == 0 ? dflt : (unsigned)x;
}

unsigned cf_scale(void) { return env_unsigned("HAKMEM_TEST_SCALE", 1); }

uint64_t cf_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_us(unsigned us) {
    struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Waits up to ms for pid to end; with keep, leaves it a zombie (its pid,
 * and so its process group, stays taken until it is reaped). */
static int wait_end(pid_t pid, unsigned ms, bool keep, int *status) {
    uint64_t deadline = cf_now_ms() + ms;
    unsigned nap = 50; /* microseconds */
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == pid) {
            if (!keep)
                while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            *status = 0; /* ECHILD: someone else reaped it */
            return -1;
        }
        if (cf_now_ms() >= deadline) return 0;
        sleep_us(nap);
        if (nap < 20000) nap *= 2;
    }
}

int cf_wait_timeout(pid_t pid, int *status, unsigned ms) {
    if (wait_end(pid, ms, false, status) != 0) return 1;
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
    return 0;
}

const char *cf_status_str(int status, char *buf, size_t len) {
    if (WIFEXITED(status))
        snprintf(buf, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", status);
    return buf;
}

size_t cf_opaque(size_t x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

void *cf_opaque_ptr(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

void cf_heap_usable_at(const char *file, int line) {
    static const size_t sizes[] = { 0, 1, 16, 100, 1000, 5000, 70000,
                                    300000, 2u << 20 };
    void *p[sizeof sizes / sizeof sizes[0]];
    size_t n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) {
        p[i] = malloc(cf_opaque(sizes[i]));
        if (p[i] == NULL && sizes[i] != 0) {
            cf_fail(file, line, "heap not usable: malloc(%zu) failed: %s",
                    sizes[i], strerror(errno));
            continue;
        }
        if (p[i] != NULL) memset(p[i], (int)(i + 1), sizes[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = p[i];
        if (c == NULL) continue;
        for (size_t j = 0; j < sizes[i]; j += 97)
            if (c[j] != (unsigned char)(i + 1)) {
                cf_fail(file, line, "heap not usable: block of %zu bytes "
                        "overwritten at %zu", sizes[i], j);
                break;
            }
        free(p[i]);
    }
    unsigned char *z = calloc(cf_opaque(1000), 8);
    if (z == NULL) {
        cf_fail(file, line, "heap not usable: calloc(1000, 8) failed");
        return;
    }
    for (size_t j = 0; j < 8000; j++)
        if (z[j] != 0) {
            cf_fail(file, line, "heap not usable: calloc block not zeroed");
            break;
        }
    free(z);
}

static void run_child(int i) {
    struct rlimit core = { 0, 0 };
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setrlimit(RLIMIT_CORE, &core);
    cur_name = tests[i].name;
    cur_failed = 0;
    cur_skipped = 0;
    tests[i].fn(tests[i].arg);
    _exit(cur_failed ? CF_EXIT_FAIL : cur_skipped ? CF_EXIT_SKIP : 0);
}

/* 0 passed, 1 failed, 2 skipped. */
static int run_one(int i, unsigned mul) {
    char buf[512], st[128];
    unsigned limit_s = tests[i].timeout_s * mul;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(buf, sizeof buf, "FAIL %s: fork: %s\n", tests[i].name,
                 strerror(errno));
        out(buf);
        return 1;
    }
    if (pid == 0) run_child(i);
    setpgid(pid, pid);
    int status = 0;
    int done = wait_end(pid, limit_s * 1000u, true, &status);
    /* Whatever the test left running goes, while the zombie still holds
     * the group's id. */
    kill(-pid, SIGKILL);
    if (done == 0) kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!done) {
        snprintf(buf, sizeof buf, "FAIL %s: hang after %us\n", tests[i].name,
                 limit_s);
        out(buf);
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        snprintf(buf, sizeof buf, "PASS %s\n", tests[i].name);
        out(buf);
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CF_EXIT_SKIP) return 2;
    if (WIFEXITED(status) && WEXITSTATUS(status) == CF_EXIT_FAIL) return 1;
    snprintf(buf, sizeof buf, "FAIL %s: %s\n", tests[i].name,
             cf_status_str(status, st, sizeof st));
    out(buf);
    return 1;
}

int cf_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const char *filter = getenv("HAKMEM_TEST_FILTER");
    unsigned mul = env_unsigned("HAKMEM_CONFORM_TIMEOUT_MUL", 1);
    int counts[3] = { 0, 0, 0 };
    char buf[128];
    for (int i = 0; i < ntests; i++) {
        if (filter && *filter && strstr(tests[i].name, filter) == NULL)
            continue;
        counts[run_one(i, mul)]++;
    }
    if (counts[2])
        snprintf(buf, sizeof buf, "%d passed, %d failed, %d skipped\n",
                 counts[0], counts[1], counts[2]);
    else
        snprintf(buf, sizeof buf, "%d passed, %d failed\n", counts[0],
                 counts[1]);
    out(buf);
    return counts[1] ? 1 : 0;
}
