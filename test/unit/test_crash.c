/* Crash reports (src/crash.c): a child process crashes in a chosen way; the
 * parent reads the child's stderr and checks that the report names the
 * signal and what the faulting address is, and that the child still died of
 * that signal (exit status unchanged by the report).
 *
 * Where another handler owns the signal (a sanitizer's runtime), hakmem
 * leaves it alone: the child sees that its handler is not in libhakmem and
 * exits SKIP_CODE, and the test is skipped. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self_path = "/proc/self/exe"; /* this program, to re-execute */

#define SKIP_CODE 77
#define MiB ((size_t)1 << 20)

/* 1 when sig's handler is hakmem's (its code lies in libhakmem). */
static int hakmem_owns(int sig) {
    struct sigaction sa;
    Dl_info info;
    if (sigaction(sig, NULL, &sa) != 0 || !(sa.sa_flags & SA_SIGINFO)) return 0;
    if (dladdr((void *)sa.sa_sigaction, &info) == 0 || info.dli_fname == NULL) return 0;
    return strstr(info.dli_fname, "libhakmem") != NULL;
}

typedef struct {
    int status;     /* from waitpid */
    char err[8192]; /* the child's stderr */
} outcome;

/* Runs fn in a child with stderr captured; returns false if fork failed. */
static bool run_child(void (*fn)(void), outcome *out) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        alarm(20);
        fn();
        _exit(0); /* did not crash */
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], out->err + n, sizeof out->err - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof out->err - 1) break;
    }
    out->err[n] = '\0';
    close(fds[0]);
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {}
    return true;
}

/* Shows the report in the test log (one "#" line per line). */
static void log_report(const outcome *o) {
    const char *s = o->err;
    while (*s) {
        const char *e = strchr(s, '\n');
        int len = e ? (int)(e - s) : (int)strlen(s);
        hk_test_log("%.*s", len, s);
        s += len + (e != NULL);
    }
}

static bool died_of(const outcome *o, int sig) {
    return WIFSIGNALED(o->status) && WTERMSIG(o->status) == sig;
}

/* Initializes hakmem in the child (so its handlers are in place), then
 * gives up with SKIP_CODE unless sig is hakmem's. */
#define CHECK_OWNER(sig)                                                   \
    do {                                                                   \
        hak_free(hak_malloc(1));                                           \
        if (!hakmem_owns(sig)) _exit(SKIP_CODE);                           \
    } while (0)

#define SKIP_IF_NOT_OURS(o)                                                \
    SKIP_IF(WIFEXITED((o).status) && WEXITSTATUS((o).status) == SKIP_CODE, \
            "another handler owns the signal (sanitizer runtime?)")

/* ---- the crashes ---- */

static volatile char sink;
static volatile uintptr_t bad_address = 16;

static void crash_freed_huge(void) {
    bool off = false;
    hak_ctl("config.features.bigcache", NULL, NULL, &off, sizeof off);
    CHECK_OWNER(SIGSEGV);
    char *p = hak_malloc(4 * MiB);
    if (p == NULL) _exit(3);
    memset(p, 1, 4 * MiB);
    hak_free(p); /* BigCache off: unmapped */
    sink = p[100];
}

static void crash_small_page(void) {
    CHECK_OWNER(SIGSEGV);
    char *p = hak_malloc(100);
    if (p == NULL) _exit(3);
    char *page = (char *)((uintptr_t)p & ~(uintptr_t)4095);
    if (mprotect(page, 4096, PROT_NONE) != 0) _exit(4);
    sink = p[5];
}

static void crash_huge_inside(void) {
    CHECK_OWNER(SIGSEGV);
    char *p = hak_malloc(5 * MiB);
    if (p == NULL) _exit(3);
    char *g = (char *)(((uintptr_t)p + 3 * MiB) & ~(uintptr_t)4095);
    if (mprotect(g, 4096, PROT_NONE) != 0) _exit(4);
    sink = g[8];
}

static void crash_null(void) {
    CHECK_OWNER(SIGSEGV);
    sink = *(volatile char *)bad_address;
}

static void crash_abort(void) {
    CHECK_OWNER(SIGABRT);
    abort();
}

static void crash_bus(void) {
    CHECK_OWNER(SIGBUS);
    char path[] = "/tmp/hakmem-crash-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) _exit(3);
    unlink(path);
    if (ftruncate(fd, 4096) != 0) _exit(3);
    char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) _exit(3);
    sink = m[4096 + 16]; /* past the end of the file */
}

static volatile int depth_limit = -1; /* never reached */
static int depth_sink;
__attribute__((noinline)) static int recurse(int n) {
    volatile char buf[512];
    buf[0] = (char)n;
    if (n == depth_limit) return 0;
    return recurse(n + 1) + buf[0] + depth_sink;
}

static void crash_stack_overflow(void) {
    CHECK_OWNER(SIGSEGV);
    stack_t ss;
    /* hakmem gives the thread that initialized it an alternate stack */
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE)) _exit(SKIP_CODE);
    depth_sink = recurse(0);
}

/* A thread other than the initializing one: its first allocation gives it
 * a heap and, with it, an alternate stack of hakmem's. */
static void *overflowing_thread(void *arg) {
    (void)arg;
    hak_free(hak_malloc(16));
    stack_t ss;
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE)) _exit(5);
    depth_sink = recurse(0);
    return NULL;
}

static void crash_thread_stack_overflow(void) {
    CHECK_OWNER(SIGSEGV);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    if (pthread_create(&t, &attr, overflowing_thread, NULL) != 0) _exit(3);
    pthread_join(t, NULL);
}

/* A thread that exits hands its heap's stack back: the next thread to
 * take the heap gets the same stack, and never two threads at once. */
static void *stack_of_thread(void *arg) {
    hak_free(hak_malloc(16));
    stack_t ss;
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE)) return NULL;
    *(void **)arg = ss.ss_sp;
    return NULL;
}

/* ---- the tests ---- */

TEST(crash_threads_get_an_alternate_stack_of_their_heap) {
    void *first = NULL, *second = NULL;
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, stack_of_thread, &first), 0, "thread");
    pthread_join(t, NULL);
    REQUIRE_EQ_I(pthread_create(&t, NULL, stack_of_thread, &second), 0, "thread");
    pthread_join(t, NULL);
    SKIP_IF(!hakmem_owns(SIGSEGV), "another handler owns SIGSEGV (sanitizer runtime?)");
    EXPECT_TRUE(first != NULL && second != NULL, "each thread has an alternate stack");
    EXPECT_EQ_PTR(first, second, "the pooled heap's stack is reused");
}

/* The child overflowed its stack: it was reported, then died of it. */
static void expect_overflow_report(const outcome *o) {
    log_report(o);
    EXPECT_TRUE(died_of(o, SIGSEGV), "the child died of SIGSEGV");
    EXPECT_HAS_STR(o->err, "hakmem: crash: SIGSEGV", "report written");
    EXPECT_HAS_STR(o->err, "stack overflow?", "overflow recognised");
}

TEST(crash_stack_overflow_in_a_thread_reports) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_thread_stack_overflow, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    expect_overflow_report(&o);
}

TEST(crash_use_after_free_of_unmapped_huge_block) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_freed_huge, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    log_report(&o);
    EXPECT_TRUE(died_of(&o, SIGSEGV), "the child died of SIGSEGV");
    EXPECT_HAS_STR(o.err, "hakmem: crash: SIGSEGV", "report names the signal");
    EXPECT_HAS_STR(o.err, "address: was in a hakmem mapping",
                   "report says the address was hakmem's (unmapped since)");
    EXPECT_HAS_STR(o.err, "totals:", "report has the totals");
    EXPECT_HAS_STR(o.err, "end of report", "report is complete");
}

TEST(crash_in_small_segment_names_page_and_class) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_small_page, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    log_report(&o);
    EXPECT_TRUE(died_of(&o, SIGSEGV), "the child died of SIGSEGV");
    EXPECT_HAS_STR(o.err, "(access not permitted)", "si_code decoded");
    EXPECT_HAS_STR(o.err, "address: in hakmem small segment", "in a small segment");
    EXPECT_TRUE(strstr(o.err, "class ") != NULL && strstr(o.err, "tiny, 112-byte blocks") != NULL,
                "page's size class named");
    EXPECT_TRUE(strstr(o.err, "block 0 + 5") != NULL || strstr(o.err, "+ 5,") != NULL,
                "block and offset named");
}

TEST(crash_inside_huge_block) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_huge_inside, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    log_report(&o);
    EXPECT_TRUE(died_of(&o, SIGSEGV), "the child died of SIGSEGV");
    EXPECT_HAS_STR(o.err, "address: in hakmem huge block", "in a huge block");
    EXPECT_HAS_STR(o.err, "bytes usable", "its size given");
}

TEST(crash_null_pointer_not_ours) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_null, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    log_report(&o);
    EXPECT_TRUE(died_of(&o, SIGSEGV), "the child died of SIGSEGV");
    EXPECT_HAS_STR(o.err, " at 0x10,", "faulting address given");
    EXPECT_HAS_STR(o.err, "address: not in hakmem memory", "not ours");
}

TEST(crash_abort_reports_sigabrt) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_abort, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    log_report(&o);
    EXPECT_TRUE(died_of(&o, SIGABRT), "the child died of SIGABRT");
    EXPECT_HAS_STR(o.err, "hakmem: crash: SIGABRT", "report names the signal");
    EXPECT_LACKS_STR(o.err, "address:", "no address for a sent signal");
}

TEST(crash_sigbus_past_end_of_file) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_bus, &o), "fork");
    SKIP_IF_NOT_OURS(o);
    log_report(&o);
    EXPECT_TRUE(died_of(&o, SIGBUS), "the child died of SIGBUS");
    EXPECT_HAS_STR(o.err, "hakmem: crash: SIGBUS", "report names the signal");
    EXPECT_HAS_STR(o.err, "address: not in hakmem memory", "not ours");
}

TEST(crash_stack_overflow_reports_on_alternate_stack) {
    outcome o;
    REQUIRE_TRUE(run_child(crash_stack_overflow, &o), "fork");
    SKIP_IF(WIFEXITED(o.status) && WEXITSTATUS(o.status) == SKIP_CODE,
            "no hakmem handler or alternate stack on this thread");
    expect_overflow_report(&o);
}

/* With a handler of the program's own installed first, hakmem keeps out:
 * a fresh process (this binary re-executed) sets its handler before its
 * first allocation. */
static void own_handler(int sig) { (void)sig; }

static int child_main(const char *what) {
    if (strcmp(what, "own-handler") == 0) {
        struct sigaction sa;
        if (sigaction(SIGSEGV, NULL, &sa) != 0) return 2;
        if (sa.sa_handler != SIG_DFL || (sa.sa_flags & SA_SIGINFO)) return SKIP_CODE; /* init ran already */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = own_handler;
        sigaction(SIGSEGV, &sa, NULL);
        void *p = hak_malloc(64); /* initializes hakmem */
        hak_free(p);
        sigaction(SIGSEGV, NULL, &sa);
        return sa.sa_handler == own_handler ? 0 : 1;
    }
    if (strcmp(what, "segv") == 0) {
        void *p = hak_malloc(64);
        hak_free(p);
        struct sigaction sa;
        /* crash_report:0 leaves the default, unless a sanitizer took it */
        if (sigaction(SIGSEGV, NULL, &sa) != 0) return 2;
        if (sa.sa_handler != SIG_DFL || (sa.sa_flags & SA_SIGINFO)) return SKIP_CODE;
        sink = *(volatile char *)bad_address;
        return 0;
    }
    return 2;
}

static bool run_self(const char *what, const char *conf, outcome *out) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        if (conf) setenv("HAKMEM_CONF", conf, 1);
        setenv("HAKMEM_CRASH_TEST_CHILD", what, 1);
        execl(self_path, "test_crash", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out->err + n, sizeof out->err - 1 - n)) > 0 ||
           (r < 0 && errno == EINTR))
        if (r > 0) n += (size_t)r;
    out->err[n] = '\0';
    close(fds[0]);
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {}
    return true;
}

TEST(crash_handler_not_installed_over_programs_own) {
    outcome o;
    REQUIRE_TRUE(run_self("own-handler", NULL, &o), "fork");
    SKIP_IF(WIFEXITED(o.status) && WEXITSTATUS(o.status) == SKIP_CODE,
            "SIGSEGV was not at its default before the first allocation (hakmem initialized already, or a sanitizer's handler)");
    EXPECT_TRUE(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0,
                "the program's SIGSEGV handler is still in place after init");
}

TEST(crash_report_off_by_option) {
    outcome o;
    REQUIRE_TRUE(run_self("segv", "crash_report:0", &o), "fork");
    SKIP_IF(WIFEXITED(o.status) && WEXITSTATUS(o.status) == SKIP_CODE,
            "SIGSEGV already has a handler (sanitizer runtime?)");
    EXPECT_TRUE(died_of(&o, SIGSEGV), "the child died of SIGSEGV");
    EXPECT_LACKS_STR(o.err, "hakmem: crash", "no report with crash_report:0");
}

int main(int argc, char **argv) {
    (void)argc;
    /* argv[0], not /proc/self/exe: under valgrind that is valgrind's tool */
    if (argv[0] != NULL && strchr(argv[0], '/') != NULL) self_path = argv[0];
    const char *child = getenv("HAKMEM_CRASH_TEST_CHILD");
    if (child != NULL) return child_main(child);
    return hk_test_main();
}
