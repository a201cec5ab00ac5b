/*
 * Extreme sizes and alignments for every allocation function, and errno.
 *
 * C17 7.22.3 and POSIX: a request that cannot be met returns a null pointer
 * (POSIX: with errno ENOMEM); posix_memalign returns the error number,
 * EINVAL for an alignment that is not a power-of-two multiple of
 * sizeof(void *), and leaves *memptr alone on failure (POSIX.1-2008 TC2).
 * glibc (malloc(3), the glibc manual) adds: size 0 gives a unique pointer
 * that free accepts, realloc(p, 0) frees p and returns NULL, memalign and
 * aligned_alloc fail with EINVAL for an alignment above SIZE_MAX/2+1,
 * pvalloc rounds the size up to whole pages, posix_memalign leaves errno
 * alone when it returns EINVAL and sets it to ENOMEM with ENOMEM (its
 * memalign does; POSIX leaves errno unspecified there, so that check is a
 * test of its own), malloc_usable_size(NULL) is 0, and free preserves errno (also
 * POSIX.1-2024).  A failure must not corrupt the heap: each case ends by
 * using it.  Each case is its own test (its own process), named after the
 * call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fn { MALLOC, CALLOC, REALLOC_NULL, REALLOC, REALLOCARRAY_NULL,
          REALLOCARRAY, MEMALIGN, POSIX_MEMALIGN, ALIGNED_ALLOC, VALLOC,
          PVALLOC };

enum expect {
    EX_OK,           /* a usable block */
    EX_ENOMEM,       /* NULL, errno ENOMEM (posix_memalign: returns ENOMEM) */
    EX_EINVAL,       /* NULL, errno EINVAL (posix_memalign: returns EINVAL) */
    EX_OK_OR_EINVAL, /* glibc gives a block; EINVAL is allowed as well */
    EX_FREED,        /* realloc(p, 0): p freed, NULL returned */
};

struct sz_case {
    const char *name;
    enum fn fn;
    size_t a, b;    /* (size) / (nmemb, size) / (alignment, size) */
    enum expect x;
};

#define MALLOC_NAME "malloc("
#define CALLOC_NAME "calloc("
#define REALLOC_NULL_NAME "realloc(NULL,"
#define REALLOC_NAME "realloc(p,"
#define REALLOCARRAY_NULL_NAME "reallocarray(NULL,"
#define REALLOCARRAY_NAME "reallocarray(p,"
#define MEMALIGN_NAME "memalign("
#define POSIX_MEMALIGN_NAME "posix_memalign(&p,"
#define ALIGNED_ALLOC_NAME "aligned_alloc("
#define VALLOC_NAME "valloc("
#define PVALLOC_NAME "pvalloc("

/* The test's name is the call, e.g. "memalign(SIZE_MAX,1)". */
#define K(f, a, b, x) { f##_NAME #a "," #b ")", f, a, b, x }
#define K1(f, a, x) { f##_NAME #a ")", f, a, 0, x }

/* Sizes no allocator can satisfy on a 64-bit system. */
#define HUGE_SIZES(f)                                                     \
    K1(f, PTRDIFF_MAX, EX_ENOMEM), K1(f, (size_t)PTRDIFF_MAX+1, EX_ENOMEM), \
    K1(f, SIZE_MAX, EX_ENOMEM), K1(f, SIZE_MAX-1, EX_ENOMEM),               \
    K1(f, SIZE_MAX-7, EX_ENOMEM), K1(f, SIZE_MAX-15, EX_ENOMEM),            \
    K1(f, SIZE_MAX-16, EX_ENOMEM), K1(f, SIZE_MAX-4095, EX_ENOMEM),         \
    K1(f, SIZE_MAX-4096, EX_ENOMEM), K1(f, SIZE_MAX-(1<<20), EX_ENOMEM),    \
    K1(f, SIZE_MAX/2, EX_ENOMEM), K1(f, SIZE_MAX/2+1, EX_ENOMEM),           \
    K1(f, SIZE_MAX/2-4096, EX_ENOMEM), K1(f, (size_t)1<<47, EX_ENOMEM),     \
    K1(f, (size_t)1<<62, EX_ENOMEM)

static const struct sz_case cases[] = {
    K1(MALLOC, 0, EX_OK), K1(MALLOC, 1, EX_OK), HUGE_SIZES(MALLOC),

    K(CALLOC, 0, 0, EX_OK), K(CALLOC, 0, SIZE_MAX, EX_OK),
    K(CALLOC, SIZE_MAX, 0, EX_OK), K(CALLOC, 1, 1, EX_OK),
    K(CALLOC, 1000, 1000, EX_OK), K(CALLOC, (size_t)1<<20, 8, EX_OK),
    K(CALLOC, 1, SIZE_MAX, EX_ENOMEM), K(CALLOC, SIZE_MAX, 1, EX_ENOMEM),
    K(CALLOC, 1, PTRDIFF_MAX, EX_ENOMEM), K(CALLOC, PTRDIFF_MAX, 1, EX_ENOMEM),
    K(CALLOC, 1, (size_t)PTRDIFF_MAX+1, EX_ENOMEM),
    K(CALLOC, SIZE_MAX-7, 1, EX_ENOMEM), K(CALLOC, 1, SIZE_MAX-15, EX_ENOMEM),
    /* products that wrap to 0 or to a small number */
    K(CALLOC, 2, SIZE_MAX/2+1, EX_ENOMEM), K(CALLOC, SIZE_MAX/2+1, 2, EX_ENOMEM),
    K(CALLOC, (size_t)1<<32, (size_t)1<<32, EX_ENOMEM),
    K(CALLOC, 16, SIZE_MAX/16+1, EX_ENOMEM),
    K(CALLOC, ((size_t)1<<32)+1, ((size_t)1<<32)+1, EX_ENOMEM),
    K(CALLOC, SIZE_MAX, SIZE_MAX, EX_ENOMEM),
    K(CALLOC, 3, SIZE_MAX/3+1, EX_ENOMEM),
    /* products that do not wrap but are too large */
    K(CALLOC, ((size_t)1<<32)+1, ((size_t)1<<32)-1, EX_ENOMEM),
    K(CALLOC, (size_t)1<<31, (size_t)1<<32, EX_ENOMEM),

    K1(REALLOC_NULL, 0, EX_OK), K1(REALLOC_NULL, 1, EX_OK),
    HUGE_SIZES(REALLOC_NULL),
    K1(REALLOC, 0, EX_FREED), K1(REALLOC, 1, EX_OK), HUGE_SIZES(REALLOC),

    K(REALLOCARRAY_NULL, 2, 8, EX_OK), K(REALLOCARRAY_NULL, 0, 8, EX_OK),
    K(REALLOCARRAY_NULL, SIZE_MAX, 2, EX_ENOMEM),
    K(REALLOCARRAY_NULL, (size_t)1<<32, (size_t)1<<32, EX_ENOMEM),
    K(REALLOCARRAY_NULL, 1, SIZE_MAX, EX_ENOMEM),
    K(REALLOCARRAY, 16, 64, EX_OK), K(REALLOCARRAY, 1, 1, EX_OK),
    K(REALLOCARRAY, 2, SIZE_MAX/2+1, EX_ENOMEM),
    K(REALLOCARRAY, SIZE_MAX/2+1, 2, EX_ENOMEM),
    K(REALLOCARRAY, (size_t)1<<32, (size_t)1<<32, EX_ENOMEM),
    K(REALLOCARRAY, 1, SIZE_MAX, EX_ENOMEM),
    K(REALLOCARRAY, PTRDIFF_MAX, 1, EX_ENOMEM),
    K(REALLOCARRAY, SIZE_MAX, SIZE_MAX, EX_ENOMEM),

    /* memalign: glibc relays alignments up to 16 to malloc, rounds other
     * non-powers of two up, and refuses above SIZE_MAX/2+1 with EINVAL */
    K(MEMALIGN, (size_t)1<<63, SIZE_MAX/2, EX_ENOMEM),
    K(MEMALIGN, SIZE_MAX/2+1, SIZE_MAX/2, EX_ENOMEM),
    K(MEMALIGN, (size_t)1<<63, 1, EX_ENOMEM),
    K(MEMALIGN, (size_t)1<<63, 0, EX_ENOMEM),
    K(MEMALIGN, (size_t)1<<63, SIZE_MAX, EX_ENOMEM),
    K(MEMALIGN, (size_t)1<<62, 1, EX_ENOMEM),
    K(MEMALIGN, (size_t)1<<47, 1, EX_ENOMEM),
    K(MEMALIGN, SIZE_MAX, 1, EX_EINVAL), K(MEMALIGN, SIZE_MAX/2+2, 1, EX_EINVAL),
    K(MEMALIGN, SIZE_MAX, SIZE_MAX, EX_EINVAL),
    K(MEMALIGN, 0, 1, EX_OK), K(MEMALIGN, 1, 1, EX_OK), K(MEMALIGN, 2, 10, EX_OK),
    K(MEMALIGN, sizeof(void*)/2, 24, EX_OK), K(MEMALIGN, 8, 8, EX_OK),
    K(MEMALIGN, 16, 0, EX_OK), K(MEMALIGN, 4096, 0, EX_OK),
    K(MEMALIGN, 24, 100, EX_OK_OR_EINVAL), K(MEMALIGN, 3, 100, EX_OK_OR_EINVAL),
    K(MEMALIGN, 4097, 100, EX_OK_OR_EINVAL),
    K(MEMALIGN, 64, SIZE_MAX, EX_ENOMEM), K(MEMALIGN, 64, SIZE_MAX-63, EX_ENOMEM),
    K(MEMALIGN, 4096, SIZE_MAX-100, EX_ENOMEM),
    K(MEMALIGN, 4096, PTRDIFF_MAX, EX_ENOMEM),
    K(MEMALIGN, (size_t)1<<20, SIZE_MAX-(1<<20), EX_ENOMEM),
    K(MEMALIGN, 16, SIZE_MAX-15, EX_ENOMEM),

    K(POSIX_MEMALIGN, (size_t)1<<63, SIZE_MAX/2, EX_ENOMEM),
    K(POSIX_MEMALIGN, (size_t)1<<63, 1, EX_ENOMEM),
    K(POSIX_MEMALIGN, SIZE_MAX/2+1, 0, EX_ENOMEM),
    K(POSIX_MEMALIGN, (size_t)1<<62, 1, EX_ENOMEM),
    K(POSIX_MEMALIGN, 0, 1, EX_EINVAL), K(POSIX_MEMALIGN, 1, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, sizeof(void*)/2, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, 24, 1, EX_EINVAL), K(POSIX_MEMALIGN, 48, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, 4097, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, SIZE_MAX, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, SIZE_MAX/2+2, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, SIZE_MAX-7, 1, EX_EINVAL),
    K(POSIX_MEMALIGN, sizeof(void*), 1, EX_OK),
    K(POSIX_MEMALIGN, 16, 0, EX_OK), K(POSIX_MEMALIGN, 4096, 0, EX_OK),
    K(POSIX_MEMALIGN, 8, SIZE_MAX, EX_ENOMEM),
    K(POSIX_MEMALIGN, 64, SIZE_MAX, EX_ENOMEM),
    K(POSIX_MEMALIGN, 64, SIZE_MAX-63, EX_ENOMEM),
    K(POSIX_MEMALIGN, 4096, SIZE_MAX-100, EX_ENOMEM),
    K(POSIX_MEMALIGN, 64, PTRDIFF_MAX, EX_ENOMEM),

    /* aligned_alloc: glibc 2.36 behaves as memalign; 2.38 and C17 refuse
     * an alignment that is not a power of two (EINVAL): both allowed */
    K(ALIGNED_ALLOC, (size_t)1<<63, (size_t)1<<63, EX_ENOMEM),
    K(ALIGNED_ALLOC, (size_t)1<<63, 1, EX_ENOMEM),
    K(ALIGNED_ALLOC, SIZE_MAX/2+1, SIZE_MAX/2, EX_ENOMEM),
    K(ALIGNED_ALLOC, SIZE_MAX, 1, EX_EINVAL),
    K(ALIGNED_ALLOC, SIZE_MAX/2+2, 1, EX_EINVAL),
    K(ALIGNED_ALLOC, 0, 16, EX_OK_OR_EINVAL),
    K(ALIGNED_ALLOC, 24, 48, EX_OK_OR_EINVAL),
    K(ALIGNED_ALLOC, 4097, 4097, EX_OK_OR_EINVAL),
    K(ALIGNED_ALLOC, 1, 1, EX_OK), K(ALIGNED_ALLOC, sizeof(void*)/2, 4, EX_OK),
    K(ALIGNED_ALLOC, 16, 0, EX_OK), K(ALIGNED_ALLOC, 64, 64, EX_OK),
    K(ALIGNED_ALLOC, 64, SIZE_MAX-63, EX_ENOMEM),
    K(ALIGNED_ALLOC, 4096, SIZE_MAX-4095, EX_ENOMEM),
    K(ALIGNED_ALLOC, 4096, PTRDIFF_MAX, EX_ENOMEM),

    K1(VALLOC, 0, EX_OK), K1(VALLOC, 1, EX_OK), HUGE_SIZES(VALLOC),
    K1(PVALLOC, 0, EX_OK), K1(PVALLOC, 1, EX_OK), HUGE_SIZES(PVALLOC),
};

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static const char *errname(int e) {
    return e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : strerror(e);
}

/* The alignment a successful call must give. */
static size_t want_align(const struct sz_case *c) {
    size_t base = 16; /* glibc x86-64: 2 * sizeof(size_t) */
    if (c->fn == VALLOC || c->fn == PVALLOC) return page_size();
    if (c->fn == MEMALIGN || c->fn == POSIX_MEMALIGN || c->fn == ALIGNED_ALLOC) {
        size_t a = c->a;
        if (a != 0 && (a & (a - 1)) == 0 && a > base) return a;
    }
    return base;
}

/* The bytes a successful call must give. */
static size_t want_size(const struct sz_case *c) {
    switch (c->fn) {
    case CALLOC: case REALLOCARRAY: case REALLOCARRAY_NULL:
        return c->a * c->b;
    case MEMALIGN: case POSIX_MEMALIGN: case ALIGNED_ALLOC:
        return c->b;
    case PVALLOC: /* rounded up to whole pages */
        return (c->a + page_size() - 1) / page_size() * page_size();
    default:
        return c->a;
    }
}

static void check_block(const struct sz_case *c, void *p) {
    size_t n = want_size(c), al = want_align(c);
    CF_EXPECT((uintptr_t)p % al == 0, "%p not aligned to %zu", p, al);
    CF_EXPECT(malloc_usable_size(p) >= n,
              "malloc_usable_size %zu < %zu requested", malloc_usable_size(p), n);
    if (c->fn == CALLOC) {
        const unsigned char *z = p;
        for (size_t i = 0; i < n; i++)
            if (z[i] != 0) {
                cf_fail(__FILE__, __LINE__, "calloc byte %zu not zero", i);
                break;
            }
    }
    memset(p, 0xa5, n);
}

static const char pattern[] = "0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef0123";

static void run_case(const void *arg) {
    const struct sz_case *c = arg;
    size_t a = cf_opaque(c->a), b = cf_opaque(c->b);
    void *p = NULL, *old = NULL;
    int rc = -1;
    const int sentinel = 4242;
    bool is_realloc = c->fn == REALLOC || c->fn == REALLOCARRAY;

    if (is_realloc) {
        old = malloc(cf_opaque(sizeof pattern));
        CF_REQUIRE_NOT_NULL(old, "malloc of the block to resize");
        memcpy(old, pattern, sizeof pattern);
    }
    errno = sentinel;
    switch (c->fn) {
    case MALLOC: p = malloc(a); break;
    case CALLOC: p = calloc(a, b); break;
    case REALLOC_NULL: p = realloc(NULL, a); break;
    case REALLOC: p = realloc(old, a); break;
    case REALLOCARRAY_NULL: p = reallocarray(NULL, a, b); break;
    case REALLOCARRAY: p = reallocarray(old, a, b); break;
    case MEMALIGN: p = memalign(a, b); break;
    case POSIX_MEMALIGN:
        p = (void *)pattern; /* must stay untouched on failure */
        rc = posix_memalign(&p, a, b);
        break;
    case ALIGNED_ALLOC: p = aligned_alloc(a, b); break;
    case VALLOC: p = valloc(a); break;
    case PVALLOC: p = pvalloc(a); break;
    }
    int e = errno;

    if (c->fn == POSIX_MEMALIGN) {
        int want = c->x == EX_OK ? 0 : c->x == EX_ENOMEM ? ENOMEM : EINVAL;
        CF_EXPECT(rc == want, "returned %d (%s), expected %d (%s)", rc,
                  rc ? errname(rc) : "success", want,
                  want ? errname(want) : "success");
        (void)e; /* errno: posix_memalign_errno_as_glibc */
        if (rc != 0) {
            CF_EXPECT(p == (void *)pattern, "*memptr changed on failure to %p", p);
            p = NULL;
        } else {
            CF_REQUIRE_NOT_NULL(p, "posix_memalign succeeded with NULL");
            check_block(c, p);
            free(p);
        }
        CF_HEAP_USABLE();
        return;
    }

    switch (c->x) {
    case EX_OK:
    case EX_OK_OR_EINVAL:
        if (p == NULL && c->x == EX_OK_OR_EINVAL && e == EINVAL) break;
        CF_EXPECT(p != NULL, "NULL with errno %d (%s); expected a block", e,
                  errname(e));
        if (p == NULL) break;
        if (is_realloc) {
            size_t keep = want_size(c) < sizeof pattern ? want_size(c) : sizeof pattern;
            CF_EXPECT(memcmp(p, pattern, keep) == 0, "contents not preserved");
            old = NULL;
        }
        check_block(c, p);
        free(p);
        break;
    case EX_ENOMEM:
    case EX_EINVAL: {
        int want = c->x == EX_ENOMEM ? ENOMEM : EINVAL;
        CF_EXPECT(p == NULL, "returned %p (usable %zu), expected NULL", p,
                  p ? malloc_usable_size(p) : 0);
        CF_EXPECT(p != NULL || e == want, "errno %d (%s), expected %s", e,
                  errname(e), errname(want));
        if (p != NULL && !is_realloc) free(p);
        if (p != NULL && is_realloc) old = p == old ? old : NULL;
        if (is_realloc && p == NULL)
            CF_EXPECT(memcmp(old, pattern, sizeof pattern) == 0,
                      "the old block changed after a failed resize");
        break;
    }
    case EX_FREED:
        CF_EXPECT_NULL(p, "realloc(p, 0) frees p and returns NULL (glibc)");
        if (p != NULL) free(p);
        old = NULL;
        break;
    }
    if (old != NULL) free(old);
    CF_HEAP_USABLE();
}

/* ---- errno and free ---- */

static void free_keeps_errno(void *p, const char *what) {
    errno = 4242;
    free(p);
    CF_EXPECT(errno == 4242, "free of %s changed errno to %d", what, errno);
}

CF_TEST(free_preserves_errno_sizes, 20) {
    static const size_t sizes[] = { 0, 1, 8, 16, 24, 100, 512, 1024, 1025,
        4096, 16384, 32768, 32769, 65536, 131072, 1u << 20, (1u << 20) + 1,
        4u << 20, 8u << 20, 64u << 20 };
    char what[64];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(cf_opaque(sizes[i]));
        CF_REQUIRE_NOT_NULL(p, "malloc");
        memset(p, 1, sizes[i]);
        snprintf(what, sizeof what, "a %zu-byte block", sizes[i]);
        free_keeps_errno(p, what);
    }
    free_keeps_errno(NULL, "NULL");
}

CF_TEST(free_preserves_errno_every_allocator, 20) {
    void *p = NULL;
    free_keeps_errno(calloc(cf_opaque(10), 10), "calloc");
    free_keeps_errno(calloc(cf_opaque(1000), 1000), "a large calloc");
    free_keeps_errno(realloc(malloc(cf_opaque(10)), 5000), "realloc");
    free_keeps_errno(memalign(cf_opaque(65536), 100), "memalign(65536)");
    free_keeps_errno(memalign(cf_opaque(1u << 22), 5u << 20), "memalign(4 MiB)");
    CF_EXPECT(posix_memalign(&p, 256, cf_opaque(300)) == 0, "posix_memalign");
    free_keeps_errno(p, "posix_memalign");
    free_keeps_errno(aligned_alloc(cf_opaque(4096), 8192), "aligned_alloc");
    free_keeps_errno(valloc(cf_opaque(100)), "valloc");
    free_keeps_errno(pvalloc(cf_opaque(100)), "pvalloc");
    free_keeps_errno(reallocarray(NULL, cf_opaque(10), 10), "reallocarray");
}

/* Many blocks freed so that the allocator hands memory back to the OS
 * (trim, munmap, madvise): errno must still be preserved. */
CF_TEST(free_preserves_errno_while_returning_memory, 30) {
    enum { N = 4096 };
    static void *p[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = malloc(cf_opaque((size_t)(i % 7 == 0 ? 40000 : 200 + i)));
            CF_REQUIRE_NOT_NULL(p[i], "malloc");
            memset(p[i], 7, 200);
        }
        for (int i = 0; i < N; i++) {
            errno = 4242;
            free(p[i]);
            if (errno != 4242) {
                cf_fail(__FILE__, __LINE__, "free #%d changed errno to %d", i, errno);
                return;
            }
        }
        usleep(150000); /* let a decay timer, if any, come due */
        void *q = malloc(cf_opaque(100));
        errno = 4242;
        free(q);
        CF_EXPECT(errno == 4242, "free after a pause changed errno to %d", errno);
    }
}

static void *thread_free(void *arg) {
    errno = 4242;
    free(arg);
    return (void *)(intptr_t)(errno == 4242);
}

CF_TEST(free_preserves_errno_other_thread, 20) {
    static const size_t sizes[] = { 16, 1000, 20000, 500000, 4u << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(cf_opaque(sizes[i])), *ok;
        CF_REQUIRE_NOT_NULL(p, "malloc");
        pthread_t t;
        CF_REQUIRE(pthread_create(&t, NULL, thread_free, p) == 0, "pthread_create");
        pthread_join(t, &ok);
        CF_EXPECT(ok != NULL, "free of a %zu-byte block from another thread "
                  "changed errno", sizes[i]);
    }
}

CF_TEST(malloc_usable_size_null, 10) {
    CF_EXPECT_EQ(malloc_usable_size(NULL), 0, "malloc_usable_size(NULL)");
}

CF_TEST(malloc_zero_unique, 10) {
    void *a = malloc(cf_opaque(0)), *b = malloc(cf_opaque(0));
    CF_EXPECT(a != NULL && b != NULL, "malloc(0) gives a pointer (glibc)");
    CF_EXPECT(a != b || a == NULL, "two live malloc(0) blocks are distinct");
    free(a);
    free(b);
}

/* Failing calls in a row, interleaved with successes: each failure sets
 * ENOMEM, whatever errno held before. */
CF_TEST(enomem_every_time, 20) {
    for (int i = 0; i < 1000; i++) {
        errno = i % 2 ? 0 : EINVAL;
        void *p = malloc(cf_opaque(SIZE_MAX - (size_t)i));
        CF_REQUIRE(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX-%d): %p errno %d",
                   i, p, errno);
        void *q = malloc(cf_opaque((size_t)i));
        CF_REQUIRE(q != NULL || i == 0, "malloc(%d) after a failure", i);
        errno = 0;
        p = calloc(cf_opaque((size_t)1 << 33), (size_t)1 << 31 | (size_t)i);
        CF_REQUIRE(p == NULL && errno == ENOMEM, "calloc overflow: %p errno %d", p, errno);
        errno = 0;
        p = realloc(q, cf_opaque(SIZE_MAX - 64 * (size_t)i));
        CF_REQUIRE(p == NULL && errno == ENOMEM, "realloc: %p errno %d", p, errno);
        free(q);
    }
    CF_HEAP_USABLE();
}

/* glibc's posix_memalign returns EINVAL without touching errno, and
 * ENOMEM with errno set to ENOMEM as well (its memalign sets it).  POSIX
 * only specifies the return value: this is glibc compatibility, for
 * callers that print strerror(errno) after a failure. */
CF_TEST(posix_memalign_errno_as_glibc, 20) {
    static const size_t bad[][2] = { { 0, 8 }, { 24, 8 }, { 4, 8 },
                                     { SIZE_MAX, 8 } };
    static const size_t big[][2] = { { 64, SIZE_MAX }, { 8, PTRDIFF_MAX },
        { (size_t)1 << 63, 1 }, { 4096, SIZE_MAX - 100 } };
    for (size_t i = 0; i < 4; i++) {
        void *p = NULL;
        errno = 4242;
        int rc = posix_memalign(&p, cf_opaque(bad[i][0]), bad[i][1]);
        CF_EXPECT(rc == EINVAL && errno == 4242, "posix_memalign(&p, %zu, %zu): "
                  "returned %d, errno %d (glibc: EINVAL, errno unchanged)",
                  bad[i][0], bad[i][1], rc, errno);
        errno = 4242;
        rc = posix_memalign(&p, cf_opaque(big[i][0]), big[i][1]);
        CF_EXPECT(rc == ENOMEM && errno == ENOMEM, "posix_memalign(&p, %zu, %zu): "
                  "returned %d, errno %d (glibc: ENOMEM, errno ENOMEM)",
                  big[i][0], big[i][1], rc, errno);
    }
}

static void register_cases(void) __attribute__((constructor));
static void register_cases(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cf_add(cases[i].name, run_case, &cases[i], 20);
}

CF_MAIN()
