/* Out of memory: every allocation function fails cleanly (NULL with errno
 * ENOMEM; posix_memalign returns ENOMEM), never crashes, and the allocator
 * keeps working once memory is available again.
 *
 * Two ways to run out:
 *  - address space: a forked child lowers RLIMIT_AS (ulimit -v) to what it
 *    has mapped already, so every new mapping fails;
 *  - fault injection (debug builds): a re-executed child with
 *    HAKMEM_CONF=fail_mmap_after:N, where hakmem's own mmap fails after N
 *    calls.
 * Children report through their exit status and "#" lines on stdout, and
 * allocate nothing through libc while memory is short. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self_path = "/proc/self/exe"; /* this program, to re-execute */

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER_RUNTIME 1
#endif
#endif
#ifndef SANITIZER_RUNTIME
#define SANITIZER_RUNTIME 0
#endif

/* Why an address-space limit cannot be tested here, or NULL. */
static const char *limit_unusable(void) {
    if (SANITIZER_RUNTIME)
        return "the sanitizer runtime maps its own memory: an address-space limit kills it first";
    return NULL;
}

/* ---- child-side helpers (no libc allocation) ---- */

static int child_errors;

static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(1, buf, (size_t)n);
    (void)w;
}

#define CHILD_EXPECT(c, ...)                                               \
    do {                                                                   \
        if (!(c)) {                                                        \
            child_errors++;                                                \
            say("# oom child: line %d: %s", __LINE__, #c);                 \
            say("#   " __VA_ARGS__);                                       \
        }                                                                  \
    } while (0)

/* Blocks kept while memory runs out, chained through their first word. */
typedef struct chain {
    void *head;
    size_t n;
} chain;

static void chain_push(chain *c, void *p) {
    memcpy(p, &c->head, sizeof c->head);
    c->head = p;
    c->n++;
}

static void chain_free(chain *c) {
    while (c->head != NULL) {
        void *next;
        memcpy(&next, c->head, sizeof next);
        hak_free(c->head);
        c->head = next;
    }
    c->n = 0;
}

enum api {
    API_MALLOC, API_CALLOC, API_POSIX_MEMALIGN, API_ALIGNED_ALLOC,
    API_MEMALIGN, API_VALLOC, API_PVALLOC, API_COUNT
};
static const char *const api_names[API_COUNT] = {
    "malloc", "calloc", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc"};

/* One call; *err gets errno (or posix_memalign's result) on failure. */
static void *call_api(enum api a, size_t size, int *err) {
    void *p = NULL;
    errno = 0;
    switch (a) {
    case API_MALLOC: p = hak_malloc(size); break;
    case API_CALLOC: p = hak_calloc(1, size); break;
    case API_POSIX_MEMALIGN: {
        int rc = hak_posix_memalign(&p, 256, size);
        if (rc != 0) {
            *err = rc;
            return NULL;
        }
        break;
    }
    case API_ALIGNED_ALLOC: p = hak_aligned_alloc(64, (size + 63) & ~(size_t)63); break;
    case API_MEMALIGN: p = hak_memalign(4096, size); break;
    case API_VALLOC: p = hak_valloc(size); break;
    case API_PVALLOC: p = hak_pvalloc(size); break;
    default: break;
    }
    if (p == NULL) *err = errno;
    return p;
}

static size_t ctl_size(const char *name) {
    size_t v = 0, len = sizeof v;
    return hak_ctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

/* The request sizes: every tier, twice, largest first so that the room
 * left under the limit goes to each tier in turn. */
static const size_t tier_sizes[] = {
    64 * MiB, 3 * MiB,     /* huge */
    1 * MiB, 100 * KiB,    /* large */
    30 * KiB, 3000,        /* mid */
    700, 24,               /* tiny */
};
#define NSIZES (sizeof tier_sizes / sizeof tier_sizes[0])

/* Calls api(size) until it fails, keeping the blocks (in c); checks the
 * failure is ENOMEM.  cap bounds the calls (the space left is bounded by
 * what is mapped already). */
static void exhaust(enum api a, size_t size, chain *c, size_t cap) {
    for (size_t i = 0; i < cap; i++) {
        int err = 0;
        void *p = call_api(a, size, &err);
        if (p == NULL) {
            CHILD_EXPECT(err == ENOMEM, "%s(%zu) failed with %d, not ENOMEM",
                         api_names[a], size, err);
            return;
        }
        ((volatile char *)p)[size - 1] = 1; /* touch the end */
        chain_push(c, p);
    }
    CHILD_EXPECT(0, "%s(%zu) never failed in %zu calls", api_names[a], size, cap);
}

/* Up to 2 MiB in blocks of size (stops at the first failure). */
static void take_share(enum api a, size_t size, chain *c) {
    for (size_t got = 0; got < 2 * MiB; got += size) {
        int err = 0;
        void *p = call_api(a, size, &err);
        if (p == NULL) return;
        ((volatile char *)p)[size - 1] = 1;
        chain_push(c, p);
    }
}

/* How many calls of size can possibly succeed once mapping is impossible:
 * everything already mapped, in blocks of that size, plus slack. */
static size_t call_cap(size_t size) {
    size_t mapped = ctl_size("stats.mapped") + 64 * MiB;
    size_t unit = size < 16 ? 16 : size;
    return mapped / unit + 4096;
}

/* realloc growth under exhaustion: the block p (48 bytes of 0x5a,
 * allocated before memory ran out) stays valid and intact. */
static void realloc_growth(unsigned char *p, chain *keep) {
    size_t n = 48;
    if (p == NULL) return;
    for (size_t want = 4 * KiB; want <= 256 * MiB; want *= 4) {
        errno = 0;
        unsigned char *q = hak_realloc(p, want);
        if (q == NULL) {
            CHILD_EXPECT(errno == ENOMEM, "realloc to %zu: errno %d", want, errno);
            bool intact = true;
            for (size_t i = 0; i < 48; i++) intact &= p[i] == 0x5a;
            CHILD_EXPECT(intact, "the block survives a failed realloc to %zu", want);
            chain_push(keep, p); /* free later */
            return;
        }
        p = q;
        memset(p + n, 0x5a, want - n > 4096 ? 4096 : want - n);
        n = want > n + 4096 ? n + 4096 : want;
    }
    CHILD_EXPECT(0, "realloc grew to 256 MiB under a tight address-space limit");
    hak_free(p);
}

/* The whole scenario for the APIs in apis (a bit mask), run in a child
 * where mapping fails (limit set by set_limit, lifted by lift_limit; both
 * may be NULL). */
static int oom_scenario(unsigned apis, void (*set_limit)(void), void (*lift_limit)(void)) {
    chain kept[API_COUNT][NSIZES];
    chain grow = {NULL, 0};
    memset(kept, 0, sizeof kept);
    hak_free(hak_malloc(1));
    hk_test_purge_all(NULL);
    size_t mapped0 = ctl_size("stats.mapped");

    unsigned char *grow_p = hak_malloc(48);
    /* (with fail_mmap_after:1 there may be no memory from the start) */
    CHILD_EXPECT(grow_p != NULL || set_limit == NULL, "malloc(48) before memory runs out");
    if (grow_p) memset(grow_p, 0x5a, 48);

    if (set_limit) set_limit();
    for (unsigned a = 0; a < API_COUNT; a++) {
        if (!(apis & (1u << a))) continue;
        char line[160];
        int len = snprintf(line, sizeof line, "# oom child: %s: blocks before failing:", api_names[a]);
        /* first a share of the room for every size, then all of it */
        for (unsigned s = 0; s < NSIZES; s++)
            take_share((enum api)a, tier_sizes[s], &kept[a][s]);
        for (unsigned s = 0; s < NSIZES; s++) {
            exhaust((enum api)a, tier_sizes[s], &kept[a][s], call_cap(tier_sizes[s]));
            len += snprintf(line + len, sizeof line - (size_t)len, " %zu", kept[a][s].n);
        }
        say("%s", line);
    }
    realloc_growth(grow_p, &grow);
    /* a huge request fails at once whatever the API */
    int err = 0;
    for (unsigned a = 0; a < API_COUNT; a++) {
        if (!(apis & (1u << a))) continue;
        void *p = call_api((enum api)a, 512 * MiB, &err);
        CHILD_EXPECT(p == NULL && err == ENOMEM, "%s(512 MiB) under the limit", api_names[a]);
        if (p) hak_free(p);
    }

    /* Memory comes back by freeing: blocks of a freed class are reused.
     * (A freed huge block is unmapped, unless the BigCache keeps it, so
     * with mmap failing for good only the small tiers must come back.) */
    for (unsigned s = 0; s < NSIZES; s++) {
        size_t had = 0;
        for (unsigned a = 0; a < API_COUNT; a++) {
            had += kept[a][s].n;
            chain_free(&kept[a][s]);
        }
        if (had == 0) continue; /* nothing was there to free */
        if (set_limit == NULL && tier_sizes[s] > 1 * MiB) continue;
        void *p = hak_malloc(tier_sizes[s]);
        CHILD_EXPECT(p != NULL, "malloc(%zu) after freeing %zu blocks of it", tier_sizes[s], had);
        if (p) {
            memset(p, 7, tier_sizes[s] < 4096 ? tier_sizes[s] : 4096);
            hak_free(p);
        }
    }

    /* ... and by lifting the limit: every tier and API works again. */
    if (lift_limit) {
        lift_limit();
        for (unsigned a = 0; a < API_COUNT; a++)
            if (apis & (1u << a))
            for (unsigned s = 0; s < NSIZES; s++) {
                void *p = call_api((enum api)a, tier_sizes[s], &err);
                CHILD_EXPECT(p != NULL, "%s(%zu) after the limit was lifted: %d",
                             api_names[a], tier_sizes[s], err);
                if (p) {
                    memset(p, 9, tier_sizes[s] < 64 * KiB ? tier_sizes[s] : 64 * KiB);
                    hak_free(p);
                }
            }
    }

    /* Nothing leaks: after freeing everything and purging, the mapped
     * total is back near the start. */
    for (unsigned a = 0; a < API_COUNT; a++)
        for (unsigned s = 0; s < NSIZES; s++) chain_free(&kept[a][s]);
    chain_free(&grow);
    hk_test_purge_all(NULL);
    size_t mapped1 = ctl_size("stats.mapped");
    say("# oom child: mapped %zu KiB at the start, %zu KiB after freeing and purging",
        mapped0 >> 10, mapped1 >> 10);
    CHILD_EXPECT(mapped1 <= mapped0 + 4 * MiB,
                 "mapped %zu KiB after freeing everything, %zu KiB at the start",
                 mapped1 >> 10, mapped0 >> 10);
    return child_errors ? 1 : 0;
}

/* ---- RLIMIT_AS ---- */

static struct rlimit saved_limit;
static size_t limit_room = 24 * MiB; /* address space left to the child */
static unsigned child_api;           /* the API a limited child tests */

static size_t vm_size(void) {
    char buf[128];
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f == NULL) return 0;
    if (fgets(buf, sizeof buf, f) == NULL || sscanf(buf, "%lu", &pages) != 1) pages = 0;
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Touches stack below us so that it need not grow under the limit. */
__attribute__((noinline)) static void prefault_stack(void) {
    volatile char buf[256 * 1024];
    for (size_t i = 0; i < sizeof buf; i += 4096) buf[i] = 0;
}

static void limit_now(void) {
    prefault_stack();
    size_t vm = vm_size();
    getrlimit(RLIMIT_AS, &saved_limit);
    struct rlimit r = saved_limit;
    r.rlim_cur = vm + limit_room;
    if (vm == 0 || setrlimit(RLIMIT_AS, &r) != 0)
        say("# oom child: could not set RLIMIT_AS (%zu bytes mapped)", vm);
}

static void unlimit(void) { setrlimit(RLIMIT_AS, &saved_limit); }

static int limited_child(void) { return oom_scenario(1u << child_api, limit_now, unlimit); }

/* Runs fn in a child; returns its exit status, or -signal. */
static int run_in_child(int (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1000;
    if (pid == 0) {
        alarm(60);
        _exit(fn());
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

TEST(oom_rlimit_as_every_api_fails_cleanly_and_recovers) {
    SKIP_IF(limit_unusable() != NULL, limit_unusable());
    for (child_api = 0; child_api < API_COUNT; child_api++) {
        int rc = run_in_child(limited_child);
        EXPECT_EQ_U(rc < 0 ? (unsigned)-rc : 0u, 0u, api_names[child_api]);
        EXPECT_EQ_U(rc > 0 ? (unsigned)rc : 0u, 0u, api_names[child_api]);
    }
}

/* The same with no room at all: the first call of each fails. */
static int tight_child(void) {
    limit_room = 0;
    return oom_scenario((1u << API_COUNT) - 1, limit_now, unlimit);
}

TEST(oom_rlimit_as_no_room_at_all) {
    SKIP_IF(limit_unusable() != NULL, limit_unusable());
    int rc = run_in_child(tight_child);
    EXPECT_EQ_U(rc < 0 ? (unsigned)-rc : 0u, 0u, "child killed by this signal");
    EXPECT_EQ_U(rc > 0 ? (unsigned)rc : 0u, 0u, "child found failures (see the # lines)");
}

/* A small limit from the start of a thread's life: a thread whose first
 * allocation cannot map anything gets NULL, not a crash. */
#include <pthread.h>
static void *thread_first_alloc(void *arg) {
    (void)arg;
    int bad = 0;
    for (unsigned s = 0; s < NSIZES; s++) {
        errno = 0;
        void *p = hak_malloc(tier_sizes[s]);
        if (p == NULL && errno != ENOMEM) bad++;
        hak_free(p);
    }
    return (void *)(intptr_t)bad;
}

static int new_thread_child(void) {
    hak_free(hak_malloc(1));
    pthread_t th;
    /* the thread's stack is mapped before the limit */
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * KiB);
    limit_room = 512 * KiB; /* room for the thread's stack only */
    limit_now();
    if (pthread_create(&th, &at, thread_first_alloc, NULL) != 0) {
        say("# oom child: pthread_create failed under the limit (not hakmem's doing)");
        return 0;
    }
    void *ret;
    pthread_join(th, &ret);
    return ret == NULL ? 0 : 1;
}

TEST(oom_rlimit_as_new_thread) {
    SKIP_IF(limit_unusable() != NULL, limit_unusable());
    int rc = run_in_child(new_thread_child);
    EXPECT_EQ_U(rc < 0 ? (unsigned)-rc : 0u, 0u, "child killed by this signal");
    EXPECT_EQ_U(rc > 0 ? (unsigned)rc : 0u, 0u, "an allocation failed with an errno other than ENOMEM");
}

/* ---- fail_mmap_after (debug builds) ---- */

static bool config_debug(void) {
    bool b = false;
    size_t len = sizeof b;
    return hak_ctl("config.debug", &b, &len, NULL, 0) == 0 && b;
}

static int run_self_with_conf(const char *conf) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1000;
    if (pid == 0) {
        setenv("HAKMEM_CONF", conf, 1);
        setenv("HAKMEM_OOM_TEST_CHILD", "fail_mmap_after", 1);
        alarm(60);
        execl(self_path, "test_oom", (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

TEST(oom_fail_mmap_after_debug_builds) {
    SKIP_IF(!config_debug(), "fail_mmap_after is a debug-build option (config.debug is false)");
    /* a few values: before the first segment, after a few */
    static const char *const confs[] = {"fail_mmap_after:1", "fail_mmap_after:3",
                                        "fail_mmap_after:8"};
    for (unsigned i = 0; i < sizeof confs / sizeof confs[0]; i++) {
        int rc = run_self_with_conf(confs[i]);
        EXPECT_EQ_U(rc < 0 ? (unsigned)-rc : 0u, 0u, confs[i]);
        EXPECT_EQ_U(rc > 0 ? (unsigned)rc : 0u, 0u, confs[i]);
    }
}

/* In a release build the option is accepted and ignored. */
TEST(oom_fail_mmap_after_ignored_in_release) {
    SKIP_IF(config_debug(), "debug build: the option is in force");
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE_GE_I(pid, 0, "fork");
    if (pid == 0) {
        setenv("HAKMEM_CONF", "fail_mmap_after:1", 1);
        setenv("HAKMEM_OOM_TEST_CHILD", "release", 1);
        execl(self_path, "test_oom", (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "allocations of every tier succeed despite fail_mmap_after:1");
}

static int release_child(void) {
    for (unsigned s = 0; s < NSIZES; s++) {
        void *p = hak_malloc(tier_sizes[s]);
        if (p == NULL) return 1;
        memset(p, 1, tier_sizes[s]);
        hak_free(p);
    }
    return 0;
}

int main(int argc, char **argv) {
    (void)argc;
    /* argv[0], not /proc/self/exe: under valgrind that is valgrind's tool */
    if (argv[0] != NULL && strchr(argv[0], '/') != NULL) self_path = argv[0];
    const char *child = getenv("HAKMEM_OOM_TEST_CHILD");
    if (child != NULL && strcmp(child, "fail_mmap_after") == 0)
        return oom_scenario((1u << API_COUNT) - 1, NULL, NULL);
    if (child != NULL && strcmp(child, "release") == 0) return release_child();
    return hk_test_main();
}
