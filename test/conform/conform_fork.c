/*
 * fork.  POSIX: the child of a multi-threaded process has one thread; glibc
 * (its manual and fork(2)) goes further and makes malloc and stdio usable
 * in the child: it takes the allocator's and stdio's locks around fork.
 * pthread_atfork handlers run in a fixed order (prepare in reverse order
 * of registration, parent and child in order) and may allocate: glibc
 * takes the malloc locks after the prepare handlers and releases them
 * before the parent and child handlers.  fork is async-signal-safe in
 * POSIX.1-2008 (a handler may fork); glibc keeps that working in a
 * single-threaded process, where fork takes no lock, even when the
 * interrupted code is itself inside malloc or fork.
 *
 * Not tested: a handler that forks in a multi-threaded process while the
 * interrupted thread is inside malloc or fork.  glibc's fork then takes
 * locks that thread holds (its malloc arena locks, its atfork lock) and
 * deadlocks; POSIX.1-2024 no longer lists fork as async-signal-safe.  The
 * multi-threaded signal test aims its signal at a thread that holds no
 * such lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_HANG_MS 5000

static atomic_bool stop;

static size_t rand_size(uint64_t *seed) {
    uint64_t r = cf_rand(seed);
    switch (r % 32) {
    case 0: return 100000 + r % 2000000;      /* large and huge */
    case 1: case 2: case 3: return 1024 + (r >> 8) % 40000;
    default: return 8 + (r >> 8) % 1000;
    }
}

/* A thread allocating and freeing random sizes until stop. */
static void *churn(void *arg) {
    uint64_t seed = (uintptr_t)arg * 2654435761u + 1;
    void *keep[128] = { 0 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned i = (unsigned)(cf_rand(&seed) % 128);
        free(keep[i]);
        size_t n = rand_size(&seed);
        keep[i] = malloc(n);
        if (keep[i] != NULL) memset(keep[i], (int)i, n < 256 ? n : 256);
    }
    for (int i = 0; i < 128; i++) free(keep[i]);
    return NULL;
}

/* Joins t within ms; false when it is stuck. */
static bool join_within(pthread_t t, unsigned ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/* Waits up to ms for a child that should exit 0; a failure names it. */
static bool child_ok_within(pid_t pid, const char *what, long i, unsigned ms) {
    int st;
    char b[80];
    if (!cf_wait_timeout(pid, &st, ms)) {
        cf_fail(__FILE__, __LINE__, "%s #%ld: the child hung (no exit after %ds; "
                "killed)", what, i, ms / 1000);
        return false;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        cf_fail(__FILE__, __LINE__, "%s #%ld: the child ended with %s", what, i,
                cf_status_str(st, b, sizeof b));
        return false;
    }
    return true;
}

static bool child_ok(pid_t pid, const char *what, long i) {
    return child_ok_within(pid, what, i, CHILD_HANG_MS);
}

/* One fork of a test's main loop: the child allocates, frees and exits;
 * false (reported) when fork failed or the child did not end well. */
static bool loop_fork(long n) {
    pid_t pid = fork();
    if (pid < 0) {
        cf_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        free(malloc(100));
        _exit(0);
    }
    return child_ok(pid, "loop fork", n);
}

/* Children in flight: the loops keep up to POOL of them running, so the
 * parent forks again while earlier children still run. */
enum { POOL = 8 };
static struct { pid_t pid; uint64_t born; long n; } pool[POOL];
static int npool;

/* Reaps what has ended (with all, waits for every child); false after a
 * child that failed or hung (reported). */
static bool pool_reap(bool all, const char *what) {
    bool ok = true;
    for (int i = 0; i < npool;) {
        int st;
        pid_t r = waitpid(pool[i].pid, &st, WNOHANG);
        if (r == 0 && !all && cf_now_ms() - pool[i].born < CHILD_HANG_MS) {
            i++;
            continue;
        }
        if (r == 0) {
            uint64_t age = cf_now_ms() - pool[i].born;
            unsigned left = age >= CHILD_HANG_MS ? 1 : (unsigned)(CHILD_HANG_MS - age);
            ok = child_ok_within(pool[i].pid, what, pool[i].n, left) && ok;
        } else if (r == pool[i].pid && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
            char b[80];
            cf_fail(__FILE__, __LINE__, "%s #%ld: the child ended with %s", what,
                    pool[i].n, cf_status_str(st, b, sizeof b));
            ok = false;
        }
        pool[i] = pool[--npool];
    }
    return ok;
}

/* Adds a child, first making room. */
static bool pool_add(pid_t pid, long n, const char *what) {
    bool ok = true;
    while (npool == POOL && ok) {
        ok = pool_reap(false, what);
        if (npool == POOL) {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
    pool[npool].pid = pid;
    pool[npool].born = cf_now_ms();
    pool[npool].n = n;
    npool++;
    return ok;
}

/* ---- 7. fork while threads use stdio and malloc ---- */

static char tdir[256], rfile[300], wfile[300];

static void *flusher(void *arg) {
    FILE *f = fopen("/dev/null", "w");
    long i = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (f != NULL) fprintf(f, "line %ld\n", i++);
        fflush(NULL);
    }
    if (f != NULL) fclose(f);
    return arg;
}

static void *opener(void *arg) {
    long i = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        FILE *f = fopen(wfile, "w");
        if (f == NULL) continue;
        fprintf(f, "%ld %s\n", i++, "some text to buffer");
        fclose(f);
    }
    return arg;
}

static void *reader(void *arg) {
    char *line = NULL;
    size_t cap = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        FILE *f = fopen(rfile, "r");
        if (f == NULL) continue;
        while (getline(&line, &cap, f) > 0) {}
        fclose(f);
        free(line); /* getline allocates it again: more malloc traffic */
        line = NULL;
        cap = 0;
    }
    return arg;
}

/* What a child of a busy multi-threaded parent does before _exit. */
static int child_work(void) {
    char *p[4];
    static const size_t sizes[] = { 16, 1000, 50000, 3u << 20 };
    for (int i = 0; i < 4; i++) {
        p[i] = malloc(sizes[i]);
        if (p[i] == NULL) return 2;
        snprintf(p[i], 16, "child %d", i);
    }
    FILE *f = fopen("/dev/null", "w");
    if (f == NULL) return 3;
    fprintf(f, "%s %s\n", p[0], p[1]);
    fclose(f);
    f = fopen(rfile, "r");
    if (f == NULL) return 4;
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, f) <= 0) return 5;
    free(line);
    fclose(f);
    for (int i = 0; i < 4; i++) free(p[i]);
    return 0;
}

static bool make_files(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/hakmem-conform.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(tdir) == NULL) return false;
    snprintf(rfile, sizeof rfile, "%s/r", tdir);
    snprintf(wfile, sizeof wfile, "%s/w", tdir);
    FILE *f = fopen(rfile, "w");
    if (f == NULL) return false;
    for (int i = 0; i < 300; i++)
        fprintf(f, "%*d\n", 1 + i * 7 % 300, i);
    return fclose(f) == 0;
}

static void remove_files(void) {
    unlink(rfile);
    unlink(wfile);
    rmdir(tdir);
}

static void fork_stdio_threads(const void *arg) {
    (void)arg;
    void *(*const fns[])(void *) = { flusher, opener, reader, churn, churn };
    enum { NT = sizeof fns / sizeof fns[0] };
    pthread_t t[NT];
    CF_REQUIRE(make_files(), "temporary files: %s", strerror(errno));
    atomic_store(&stop, false);
    for (int i = 0; i < NT; i++)
        CF_REQUIRE(pthread_create(&t[i], NULL, fns[i], (void *)(uintptr_t)(i + 1)) == 0,
                   "pthread_create");
    uint64_t start = cf_now_ms(), end = start + 800 * cf_scale();
    long n = 0;
    while (cf_now_ms() < end && n < 4000 * (long)cf_scale()) {
        pid_t pid = fork();
        if (pid < 0) {
            cf_fail(__FILE__, __LINE__, "fork #%ld: %s", n, strerror(errno));
            break;
        }
        if (pid == 0) _exit(child_work());
        if (!pool_add(pid, n, "fork")) break;
        n++;
    }
    pool_reap(true, "fork");
    cf_log("%ld forks in %llu ms", n, (unsigned long long)(cf_now_ms() - start));
    atomic_store(&stop, true);
    for (int i = 0; i < NT; i++)
        CF_EXPECT(join_within(t[i], 5000), "thread %d of the parent is stuck "
                  "after the forks", i);
    remove_files();
}

/* ---- 8. fork from a signal handler ---- */

enum { MAX_HPIDS = 1 << 16 };
static _Atomic pid_t hpids[MAX_HPIDS];
static atomic_int nhpids, hfork_errors;
static long hreaped;
/* Bumped by the interrupted loop at each step: the handler forks once per
 * step at most, so a fork slower than the timer cannot starve the loop. */
static atomic_ulong progress;
static unsigned long progress_seen;

static void forking_handler(int sig) {
    (void)sig;
    int e = errno;
    unsigned long now = atomic_load(&progress);
    if (now != progress_seen && atomic_load(&nhpids) < MAX_HPIDS) {
        progress_seen = now;
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) atomic_store(&hpids[atomic_fetch_add(&nhpids, 1)], p);
        else atomic_fetch_add(&hfork_errors, 1);
    }
    errno = e;
}

static void install(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forking_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    atomic_store(&nhpids, 0);
    atomic_store(&hfork_errors, 0);
    atomic_store(&progress, 1);
    progress_seen = 0;
    hreaped = 0;
}

static void set_timer(long usec) {
    struct itimerval it = { { 0, usec }, { 0, usec } };
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Reaps the handler's children that have exited (all of them, waiting
 * for each, with final); false on one that hung or failed. */
static bool reap_handler_children(bool final) {
    while (hreaped < atomic_load(&nhpids)) {
        pid_t pid = atomic_load(&hpids[hreaped]);
        if (pid == 0) {
            if (!final) return true; /* its slot is being written */
            continue;
        }
        if (!final) {
            int st;
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == 0) return true;
            if (r == pid && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
                char b[80];
                cf_fail(__FILE__, __LINE__, "the child the handler forked (#%ld) "
                        "ended with %s", hreaped, cf_status_str(st, b, sizeof b));
                return false;
            }
        } else if (!child_ok(pid, "handler fork", hreaped)) {
            return false;
        }
        hreaped++;
    }
    return true;
}

static void finish_signal_test(uint64_t start, long nforks, long nallocs) {
    long total = atomic_load(&nhpids);
    bool ok = reap_handler_children(true);
    cf_log("%ld forks from the handler, %ld from the loop, %ld allocations in "
           "%llu ms", total, nforks, nallocs,
           (unsigned long long)(cf_now_ms() - start));
    CF_EXPECT(ok, "see above");
    CF_EXPECT(total > 20, "the handler forked only %ld times", total);
    CF_EXPECT(atomic_load(&hfork_errors) == 0, "%d forks in the handler failed",
              atomic_load(&hfork_errors));
}

/* Allocations that check their contents: one step of a loop. */
static bool alloc_step(void **keep, size_t *ksz, uint64_t *seed) {
    unsigned i = (unsigned)(cf_rand(seed) % 64);
    atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    if (keep[i] != NULL) {
        const unsigned char *c = keep[i];
        size_t n = ksz[i] < 512 ? ksz[i] : 512;
        for (size_t k = 0; k < n; k++)
            if (c[k] != (unsigned char)(i + 1)) return false;
        free(keep[i]);
    }
    ksz[i] = rand_size(seed);
    switch (cf_rand(seed) % 4) {
    case 0: keep[i] = calloc(1, ksz[i]); break;
    case 1: keep[i] = realloc(malloc(16), ksz[i]); break;
    default: keep[i] = malloc(ksz[i]); break;
    }
    if (keep[i] == NULL) return false;
    memset(keep[i], (int)(i + 1), ksz[i] < 512 ? ksz[i] : 512);
    return true;
}

/* Single-threaded: a timer whose handler forks, while the program itself
 * loops on fork + waitpid and malloc/free; the signal lands inside fork
 * (and inside malloc) often. */
CF_TEST(fork_in_signal_handler_single_thread, 15) {
    void *keep[64] = { 0 };
    size_t ksz[64];
    uint64_t seed = 77;
    install(SIGALRM);
    uint64_t start = cf_now_ms(), end = start + 1200 * cf_scale();
    long n = 0, a = 0;
    set_timer(500);
    while (cf_now_ms() < end) {
        for (int k = 0; k < 20; k++, a++)
            if (!alloc_step(keep, ksz, &seed)) {
                set_timer(0);
                cf_fail(__FILE__, __LINE__, "a block changed or malloc failed");
                return;
            }
        if (!loop_fork(n)) break;
        n++;
        if (!reap_handler_children(false)) break;
    }
    set_timer(0);
    finish_signal_test(start, n, a);
    for (int i = 0; i < 64; i++) free(keep[i]);
}

/* Single-threaded: the handler forks while the program is inside
 * malloc, calloc, realloc or free (glibc takes no lock then). */
CF_TEST(fork_in_signal_handler_during_malloc, 15) {
    void *keep[64] = { 0 };
    size_t ksz[64];
    uint64_t seed = 99;
    install(SIGALRM);
    uint64_t start = cf_now_ms(), end = start + 1200 * cf_scale();
    long a = 0;
    set_timer(300);
    while (cf_now_ms() < end) {
        for (int k = 0; k < 20; k++, a++)
            if (!alloc_step(keep, ksz, &seed)) {
                set_timer(0);
                cf_fail(__FILE__, __LINE__, "a block changed or malloc failed");
                return;
            }
        if (!reap_handler_children(false)) break;
    }
    set_timer(0);
    finish_signal_test(start, 0, a);
    for (int i = 0; i < 64; i++) free(keep[i]);
}

static atomic_bool victim_ready;

/* Holds no lock: only arithmetic, so its handler's fork waits for the
 * other threads' locks without deadlock (in glibc). */
static void *victim(void *arg) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    atomic_store(&victim_ready, true);
    volatile uint64_t x = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x = x * 6364136223846793005ull + 1;
    return arg;
}

static void *sender(void *arg) {
    pthread_t v = *(pthread_t *)arg;
    struct timespec ts = { 0, 300000 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        pthread_kill(v, SIGUSR1);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Multi-threaded: a thread's handler forks at a high rate while the main
 * thread loops on fork + waitpid and malloc/free and two more threads
 * allocate. */
CF_TEST(fork_in_signal_handler_multi_thread, 15) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* every thread but the victim */
    install(SIGUSR1);
    atomic_store(&stop, false);
    pthread_t v, snd, w[2];
    CF_REQUIRE(pthread_create(&v, NULL, victim, NULL) == 0, "create");
    while (!atomic_load(&victim_ready)) sched_yield();
    CF_REQUIRE(pthread_create(&snd, NULL, sender, &v) == 0, "create");
    for (int i = 0; i < 2; i++)
        CF_REQUIRE(pthread_create(&w[i], NULL, churn, (void *)(uintptr_t)(i + 3)) == 0, "create");
    void *keep[64] = { 0 };
    size_t ksz[64];
    uint64_t seed = 5;
    uint64_t start = cf_now_ms(), end = start + 1200 * cf_scale();
    long n = 0, a = 0;
    bool ok = true;
    while (ok && cf_now_ms() < end) {
        for (int k = 0; k < 20 && ok; k++, a++) ok = alloc_step(keep, ksz, &seed);
        if (!ok) {
            cf_fail(__FILE__, __LINE__, "a block changed or malloc failed");
            break;
        }
        ok = loop_fork(n) && reap_handler_children(false);
        n++;
    }
    atomic_store(&stop, true);
    CF_EXPECT(join_within(snd, 5000), "the signal sender is stuck");
    CF_EXPECT(join_within(v, 5000), "the forking thread is stuck");
    for (int i = 0; i < 2; i++)
        CF_EXPECT(join_within(w[i], 5000), "allocating thread %d is stuck", i);
    finish_signal_test(start, n, a);
    for (int i = 0; i < 64; i++) free(keep[i]);
}

/* ---- 10. pthread_atfork handlers that allocate ---- */

static char order[16];
static atomic_int norder;
static unsigned char *keep_a, *keep_b;

static void note(char c) {
    int i = atomic_fetch_add(&norder, 1);
    if (i < (int)sizeof order - 1) order[i] = c;
}

static bool block_is(const unsigned char *p, size_t n, int v) {
    if (p == NULL) return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)v) return false;
    return true;
}

static void prepare_a(void) {
    note('A');
    free(malloc(1000));
    keep_a = malloc(5000);
    if (keep_a != NULL) memset(keep_a, 0xa, 5000);
}

static void prepare_b(void) {
    note('B');
    keep_b = calloc(100, 100);
    if (keep_b != NULL) memset(keep_b, 0xb, 10000);
    void *big = malloc(1u << 20);
    free(big);
}

static void parent_a(void) {
    note(block_is(keep_a, 5000, 0xa) ? 'a' : '!');
    free(keep_a);
    free(malloc(300));
}

static void parent_b(void) {
    note(block_is(keep_b, 10000, 0xb) ? 'b' : '!');
    free(keep_b);
    free(strdup("parent"));
}

static void child_a(void) {
    note(block_is(keep_a, 5000, 0xa) ? 'x' : '!');
    free(keep_a);
    void *p = malloc(70000);
    p = realloc(p, 100);
    free(p);
}

static void child_b(void) {
    note(block_is(keep_b, 10000, 0xb) ? 'y' : '!');
    free(keep_b);
    free(calloc(3, 3000));
}

static bool atfork_forks(int count, const char *what) {
    for (int i = 0; i < count; i++) {
        atomic_store(&norder, 0);
        memset(order, 0, sizeof order);
        pid_t pid = fork();
        if (pid < 0) {
            cf_fail(__FILE__, __LINE__, "%s fork: %s", what, strerror(errno));
            return false;
        }
        if (pid == 0) {
            /* prepare in reverse order of registration, child in order */
            if (strcmp(order, "BAxy") != 0) _exit(2);
            if (child_work() != 0) _exit(3);
            _exit(0);
        }
        bool ok = child_ok(pid, what, i);
        if (strcmp(order, "BAab") != 0) {
            cf_fail(__FILE__, __LINE__, "%s fork #%d: the parent saw handlers "
                    "\"%s\", not \"BAab\"", what, i, order);
            return false;
        }
        if (!ok) {
            cf_log("(child exit 2: the child saw the handlers out of order or a "
                   "block changed; 3: malloc or stdio failed in the child)");
            return false;
        }
    }
    return true;
}

CF_TEST(atfork_handlers_allocate, 30) {
    CF_REQUIRE(make_files(), "temporary files");
    CF_REQUIRE(pthread_atfork(prepare_a, parent_a, child_a) == 0, "pthread_atfork");
    CF_REQUIRE(pthread_atfork(prepare_b, parent_b, child_b) == 0, "pthread_atfork");
    if (atfork_forks(200, "single-threaded")) {
        pthread_t t[3];
        atomic_store(&stop, false);
        for (int i = 0; i < 3; i++)
            CF_REQUIRE(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 9)) == 0,
                       "create");
        atfork_forks(300, "multi-threaded");
        atomic_store(&stop, true);
        for (int i = 0; i < 3; i++)
            CF_EXPECT(join_within(t[i], 5000), "thread %d stuck", i);
    }
    remove_files();
}

/* ---- the child frees what the parent's threads allocated ---- */

enum { SHARED = 2000 };
static void *shared_blocks[SHARED];
static size_t shared_sizes[SHARED];

static void *fill_shared(void *arg) {
    uint64_t seed = 31;
    for (int i = (int)(intptr_t)arg; i < SHARED; i += 2) {
        shared_sizes[i] = rand_size(&seed);
        shared_blocks[i] = malloc(shared_sizes[i]);
        if (shared_blocks[i] != NULL)
            memset(shared_blocks[i], i & 0xff, shared_sizes[i] < 64 ? shared_sizes[i] : 64);
    }
    return NULL;
}

CF_TEST(fork_child_frees_parent_blocks, 20) {
    pthread_t f[2], t[3];
    for (int i = 0; i < 2; i++)
        CF_REQUIRE(pthread_create(&f[i], NULL, fill_shared, (void *)(intptr_t)i) == 0, "create");
    for (int i = 0; i < 2; i++) pthread_join(f[i], NULL); /* those threads are gone */
    atomic_store(&stop, false);
    for (int i = 0; i < 3; i++)
        CF_REQUIRE(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 20)) == 0, "create");
    uint64_t end = cf_now_ms() + 600 * cf_scale();
    long n = 0;
    while (cf_now_ms() < end) {
        pid_t pid = fork();
        CF_REQUIRE(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            uint64_t seed = (uint64_t)n + 1;
            void *mine[256];
            for (int i = 0; i < SHARED; i++) {
                const unsigned char *c = shared_blocks[i];
                if (c == NULL) _exit(2);
                size_t k = shared_sizes[i] < 64 ? shared_sizes[i] : 64;
                if (!block_is(c, k, i & 0xff)) _exit(3);
                free(shared_blocks[i]);
                if (i < 256) mine[i] = malloc(rand_size(&seed));
            }
            for (int i = 0; i < 256; i++) free(mine[i]);
            _exit(0);
        }
        if (!child_ok(pid, "fork", n)) {
            cf_log("(child exit 2: a block missing, 3: a block changed)");
            break;
        }
        n++;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        CF_EXPECT(join_within(t[i], 5000), "thread %d stuck", i);
    cf_log("%ld children each freed the parent's %d blocks", n, SHARED);
    for (int i = 0; i < SHARED; i++) free(shared_blocks[i]);
}

static void register_runs(void) __attribute__((constructor));
static void register_runs(void) {
    /* several runs: a deadlock that strikes one run in ten shows up */
    static const char *const names[] = { "fork_stdio_threads_run1",
        "fork_stdio_threads_run2", "fork_stdio_threads_run3",
        "fork_stdio_threads_run4", "fork_stdio_threads_run5" };
    for (int i = 0; i < 5; i++) cf_add(names[i], fork_stdio_threads, NULL, 20);
}

/* ---- many pthread_atfork calls before the first malloc ----
 *
 * glibc keeps its handlers in a list whose first 48 entries are inline;
 * the 49th registration grows it with malloc, under glibc's atfork lock.
 * An allocator that initialises on that first malloc must not call
 * pthread_atfork from there (it would wait for that lock forever).  The
 * test re-runs this program (exec: no malloc has run yet), which
 * registers 64 handlers first thing in main, then allocates and forks. */
#define ATFORK_FIRST_N 64
static void nop_handler(void) {}

static int atfork_first(void) {
    for (int i = 0; i < ATFORK_FIRST_N; i++)
        if (pthread_atfork(nop_handler, nop_handler, nop_handler) != 0) return 3;
    void *p = malloc(100);
    if (p == NULL) return 4;
    memset(p, 1, 100);
    free(p);
    pid_t pid = fork();
    if (pid < 0) return 5;
    if (pid == 0) {
        free(malloc(200));
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 6;
    return 0;
}

CF_TEST(atfork_registered_before_first_malloc, 20) {
    pid_t pid = fork();
    CF_REQUIRE(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        execl("/proc/self/exe", "/proc/self/exe", "--atfork-first", (char *)NULL);
        _exit(2);
    }
    int st;
    char b[80];
    CF_REQUIRE(cf_wait_timeout(pid, &st, CHILD_HANG_MS), "the program that registered %d "
               "fork handlers before its first malloc hung (deadlock in pthread_atfork?)",
               ATFORK_FIRST_N);
    CF_EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "that program: %s (2: exec failed, "
              "3: pthread_atfork failed, 4: malloc failed, 5/6: fork or its child failed)",
              cf_status_str(st, b, sizeof b));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--atfork-first") == 0) return atfork_first();
    return cf_main(argc, argv);
}
