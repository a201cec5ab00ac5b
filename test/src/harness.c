/* The test harness (see harness.h).  Output goes through write(2) from
 * stack buffers: the allocator under test is never needed to report. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hakmem/hakmem.h>

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

/* ---- children (harness.h) ---- */

const char *hk_test_role(void) {
    static char buf[8192];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += r;
    close(fd);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    size_t a0 = strlen(buf);
    if ((ssize_t)a0 + 1 >= n) return NULL;
    return buf + a0 + 1;
}

/* One read from a child's pipe into buf (the first cap - 1 bytes kept,
 * all counted); closes the pipe at its end. */
static void collect(int *fd, char *buf, size_t cap, size_t *bytes, size_t *lines, char *last) {
    char tmp[4096];
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(*fd);
            *fd = -1;
        }
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (*bytes + 1 < cap) buf[*bytes] = tmp[i];
        (*bytes)++;
        if (lines && tmp[i] == '\n') (*lines)++;
        *last = tmp[i];
    }
    buf[*bytes + 1 < cap ? *bytes : cap - 1] = '\0';
}

/* The child's side: environment, pipes, exec; never returns. */
static void exec_self(const char *exe, const char *role, int po[2], int pe[2], va_list env) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]);
    close(po[1]);
    close(pe[0]);
    close(pe[1]);
    unsetenv("HAKMEM_TEST_FILTER");
    for (const char *name; (name = va_arg(env, const char *)) != NULL;) {
        const char *value = va_arg(env, const char *);
        if (value) setenv(name, value, 1);
        else unsetenv(name);
    }
    alarm(30);
    execl(exe, exe, role, (char *)NULL);
    _exit(127);
}

int hk_test_run_self(struct hk_test_child *c, const char *role, ...) {
    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    memset(c, 0, sizeof *c);
    c->status = -1;
    if (el <= 0) return -1;
    exe[el] = '\0';
    int po[2], pe[2];
    if (pipe(po) != 0) return -1;
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        va_list env;
        va_start(env, role);
        exec_self(exe, role, po, pe, env);
    }
    close(po[1]);
    close(pe[1]);
    int fo = po[0], fe = pe[0];
    char last_o = '\n', last_e = '\n';
    while (fo >= 0 || fe >= 0) {
        struct pollfd pf[2];
        int np = 0;
        if (fo >= 0) pf[np++] = (struct pollfd){.fd = fo, .events = POLLIN};
        if (fe >= 0) pf[np++] = (struct pollfd){.fd = fe, .events = POLLIN};
        if (poll(pf, (nfds_t)np, 60000) <= 0) break;
        for (int i = 0; i < np; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (pf[i].fd == fo) collect(&fo, c->out, sizeof c->out, &c->out_bytes, NULL, &last_o);
            else collect(&fe, c->err, sizeof c->err, &c->err_bytes, &c->err_lines, &last_e);
        }
    }
    if (fo >= 0) close(fo);
    if (fe >= 0) close(fe);
    if (c->err_bytes > 0 && last_e != '\n') c->err_lines++;
    int st;
    pid_t w;
    do w = waitpid(pid, &st, 0);
    while (w < 0 && errno == EINTR);
    if (w != pid) return -1;
    c->status = st;
    return 0;
}

bool hk_test_exited_ok(const struct hk_test_child *c) {
    return c->status >= 0 && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

void hk_test_describe_status(const struct hk_test_child *c, char *buf, size_t n) {
    if (c->status < 0) snprintf(buf, n, "did not run");
    else if (WIFEXITED(c->status)) snprintf(buf, n, "exit %d", WEXITSTATUS(c->status));
    else if (WIFSIGNALED(c->status)) snprintf(buf, n, "signal %d", WTERMSIG(c->status));
    else snprintf(buf, n, "status %#x", c->status);
}

bool hk_test_child_value(const struct hk_test_child *c, const char *name, char *val, size_t n) {
    size_t nl = strlen(name);
    const char *s = c->out;
    while (s && *s) {
        if (strncmp(s, name, nl) == 0 && s[nl] == '=') {
            const char *v = s + nl + 1;
            size_t k = strcspn(v, "\n");
            if (k >= n) k = n - 1;
            memcpy(val, v, k);
            val[k] = '\0';
            return true;
        }
        s = strchr(s, '\n');
        if (s) s++;
    }
    return false;
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

int hk_test_purge_all(const char **failed) {
    static char name[48];
    unsigned n = 0;
    size_t len = sizeof n;
    int rc = hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    if (rc == 0 && (rc = hak_ctl("arenas.narenas", &n, &len, NULL, 0)) != 0)
        snprintf(name, sizeof name, "arenas.narenas");
    else if (rc != 0)
        snprintf(name, sizeof name, "thread.tcache.flush");
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        snprintf(name, sizeof name, "arena.%u.purge", i);
        rc = hak_ctl(name, NULL, NULL, NULL, 0);
    }
    if (failed != NULL) *failed = rc != 0 ? name : NULL;
    return rc;
}

size_t hk_test_mapped_after_purge(void) {
    size_t m = 0, len = sizeof m;
    hk_test_purge_all(NULL);
    hak_ctl("stats.mapped", &m, &len, NULL, 0);
    return m;
}
