/*
 * Address-space limits.  POSIX (setrlimit): RLIMIT_AS caps the address
 * space; a malloc that needs more must fail with ENOMEM ("malloc ... shall
 * fail if ... [ENOMEM] Insufficient storage space is available"), never
 * crash, and the heap works again once memory is freed.  A user who sets a
 * 200 MiB limit expects most of it to be usable: at least 60% of it
 * (120 blocks of 1 MiB; glibc gets about 190).  Each test prints the
 * number of blocks it got.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
#define LIMIT_MIB 200
#define MIN_BLOCKS 120   /* 60% of LIMIT_MIB */
#define MAX_BLOCKS 4096

static void *blocks[MAX_BLOCKS];

/* The address space in use now (VmSize), in bytes; read without stdio,
 * which may not get memory at the limit. */
static size_t vm_size(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *v = strstr(buf, "VmSize:");
    return v ? strtoull(v + 7, NULL, 10) * 1024 : 0;
}

static int set_as_limit(size_t bytes) {
    struct rlimit r = { bytes, bytes };
    return setrlimit(RLIMIT_AS, &r);
}

/* 1 MiB blocks until NULL; each touched at both ends.  The count, or -1
 * when the failure was not NULL + ENOMEM. */
static int fill_until_null(void **v, int max, int *err) {
    for (int n = 0; n < max; n++) {
        errno = 0;
        unsigned char *p = malloc(MIB);
        if (p == NULL) {
            *err = errno;
            return n;
        }
        p[0] = 1;
        p[MIB - 1] = 2;
        v[n] = p;
    }
    *err = 0;
    return max;
}

static void free_all(void **v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
}

/* At the limit, every other kind of request fails cleanly too. */
static void at_limit_checks(void) {
    errno = 0;
    void *p = calloc(1, MIB);
    CF_EXPECT(p != NULL || errno == ENOMEM, "calloc at the limit: errno %d", errno);
    free(p);
    errno = 0;
    p = memalign(4096, MIB);
    CF_EXPECT(p != NULL || errno == ENOMEM, "memalign at the limit: errno %d", errno);
    free(p);
    void *q = NULL;
    int rc = posix_memalign(&q, 65536, 4 * MIB);
    CF_EXPECT(rc == 0 || rc == ENOMEM, "posix_memalign at the limit: %d", rc);
    if (rc == 0) free(q);
    unsigned char *s = malloc(64);
    if (s != NULL) {
        memset(s, 0x77, 64);
        errno = 0;
        void *r = realloc(cf_opaque_ptr(s), 8 * MIB);
        if (r == NULL) {
            CF_EXPECT(errno == ENOMEM, "realloc at the limit: errno %d", errno);
            CF_EXPECT(s[0] == 0x77 && s[63] == 0x77, "block changed by a failed realloc");
            free(s);
        } else {
            free(r);
        }
    }
    /* small blocks until NULL (bounded): ENOMEM again, no crash */
    static void *small[200000];
    int n = 0;
    for (; n < 200000; n++) {
        errno = 0;
        small[n] = malloc(4000);
        if (small[n] == NULL) {
            CF_EXPECT(errno == ENOMEM, "small malloc at the limit: errno %d", errno);
            break;
        }
    }
    free_all(small, n);
}

/* The whole exercise: limit already set. */
static void exhaust(const char *how) {
    int err;
    int n = fill_until_null(blocks, MAX_BLOCKS, &err);
    cf_log("%s: %d blocks of 1 MiB under a %d MiB RLIMIT_AS (VmSize %zu MiB "
           "at the end)", how, n, LIMIT_MIB, vm_size() / MIB);
    CF_EXPECT(n < MAX_BLOCKS, "the limit never bit");
    CF_EXPECT(err == ENOMEM || n == MAX_BLOCKS, "malloc failed with errno %d, "
              "not ENOMEM", err);
    CF_EXPECT(n >= MIN_BLOCKS, "only %d blocks of 1 MiB under a %d MiB limit "
              "(want >= %d)", n, LIMIT_MIB, MIN_BLOCKS);
    at_limit_checks();
    free_all(blocks, n);
    /* usable again: as much as before, give or take */
    int m = fill_until_null(blocks, MAX_BLOCKS, &err);
    cf_log("%s: %d blocks again after freeing them all", how, m);
    CF_EXPECT(err == ENOMEM || m == MAX_BLOCKS, "second round: errno %d", err);
    CF_EXPECT(m >= MIN_BLOCKS && m + 8 >= n, "second round: %d blocks (first %d)",
              m, n);
    free_all(blocks, m);
    CF_HEAP_USABLE();
}

CF_TEST(rlimit_as_200mib_single_thread, 60) {
    size_t vm = vm_size();
    CF_REQUIRE(set_as_limit(LIMIT_MIB * MIB) == 0, "setrlimit: %s", strerror(errno));
    cf_log("VmSize before the limit: %zu MiB", vm / MIB);
    exhaust("forked process");
}

/* The limit set before the program starts (as `ulimit -v` does): the
 * allocator initialises under it.  The test re-runs this program. */
static const char *self_path;

CF_TEST(rlimit_as_200mib_from_exec, 60) {
    pid_t pid = fork();
    CF_REQUIRE(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (set_as_limit(LIMIT_MIB * MIB) != 0) _exit(3);
        execl(self_path, self_path, "--exhaust", (char *)NULL);
        _exit(4);
    }
    int st;
    char b[80];
    CF_REQUIRE(cf_wait_timeout(pid, &st, 60000), "the limited program hung");
    CF_EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the limited program: %s "
              "(3: setrlimit, 4: exec failed)", cf_status_str(st, b, sizeof b));
}

/* ---- several threads at once ---- */

enum { T = 4 };
static pthread_barrier_t go, done_filling;
static int got[T], errs[T];
static void *tblocks[T][MAX_BLOCKS];

static void *filler(void *arg) {
    int i = (int)(intptr_t)arg;
    free(malloc(100)); /* the thread's arena or cache exists before the limit */
    pthread_barrier_wait(&go);
    got[i] = fill_until_null(tblocks[i], MAX_BLOCKS, &errs[i]);
    pthread_barrier_wait(&done_filling);
    free_all(tblocks[i], got[i]);
    pthread_barrier_wait(&go);
    got[i] = fill_until_null(tblocks[i], MAX_BLOCKS, &errs[i]);
    pthread_barrier_wait(&done_filling);
    free_all(tblocks[i], got[i]);
    return NULL;
}

/* The threads and their stacks exist before the limit is set; the limit
 * is what is in use then plus 200 MiB (glibc reserves 64 MiB of address
 * space for each thread's arena: an absolute 200 MiB would measure that). */
CF_TEST(rlimit_as_200mib_threads, 60) {
    pthread_t t[T];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_barrier_init(&go, NULL, T + 1);
    pthread_barrier_init(&done_filling, NULL, T + 1);
    for (int i = 0; i < T; i++)
        CF_REQUIRE(pthread_create(&t[i], &attr, filler, (void *)(intptr_t)i) == 0, "create");
    usleep(50000);
    size_t vm = vm_size();
    CF_REQUIRE(set_as_limit(vm + LIMIT_MIB * MIB) == 0, "setrlimit: %s", strerror(errno));
    for (int round = 0; round < 2; round++) {
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&done_filling);
        int total = 0;
        for (int i = 0; i < T; i++) {
            total += got[i];
            CF_EXPECT(errs[i] == ENOMEM || got[i] == MAX_BLOCKS,
                      "thread %d: malloc failed with errno %d", i, errs[i]);
        }
        cf_log("round %d: %d blocks of 1 MiB from %d threads under VmSize %zu "
               "MiB + %d MiB (%d %d %d %d)", round, total, T, vm / MIB, LIMIT_MIB,
               got[0], got[1], got[2], got[3]);
        CF_EXPECT(total >= MIN_BLOCKS, "round %d: only %d blocks (want >= %d)",
                  round, total, MIN_BLOCKS);
    }
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    CF_HEAP_USABLE();
}

int main(int argc, char **argv) {
    self_path = "/proc/self/exe";
    if (argc > 1 && strcmp(argv[1], "--exhaust") == 0) {
        /* run by rlimit_as_200mib_from_exec under its limit */
        cf_set_name("rlimit_as_200mib_from_exec");
        exhaust("exec'd under the limit");
        return cf_failures() ? 1 : 0;
    }
    return cf_main(argc, argv);
}
