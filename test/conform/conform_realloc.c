/*
 * realloc and reallocarray.  C17 7.22.3.5: the new block holds the old
 * contents up to the lesser of the two sizes; realloc(NULL, n) is
 * malloc(n); on failure the old block is left as it was (and NULL is
 * returned, errno ENOMEM per POSIX).  reallocarray (glibc 2.26, POSIX.1-2024)
 * is realloc(p, nmemb * size) that fails with ENOMEM when the product
 * overflows, leaving p alone.  malloc_usable_size (glibc) is at least the
 * size asked for, and every byte of it may be written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* Size tiers of a typical allocator and the boundaries between them. */
static const size_t tiers[] = { 1, 8, 15, 16, 17, 24, 100, 512, 1023, 1024,
    1025, 4096, 8000, 16384, 32767, 32768, 32769, 65536, 131072, 262143,
    (1u << 20) - 1, 1u << 20, (1u << 20) + 1, 2u << 20, (4u << 20) + 12,
    8u << 20 };
#define NTIERS (sizeof tiers / sizeof tiers[0])

static unsigned char pat(size_t i, unsigned seed) {
    return (unsigned char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = pat(i, seed);
}

/* The first position where p differs from the pattern, or n. */
static size_t check(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(i, seed)) return i;
    return n;
}

static bool usable_in_full(unsigned char *p, size_t want) {
    size_t n = malloc_usable_size(p);
    if (n < want) return false;
    if (n > 0) {
        memset(p + want, 0xee, n - want);
        p[n - 1] = 0xee;
    }
    return true;
}

/* Every pair of tiers: grow or shrink, contents kept up to the smaller. */
CF_TEST(realloc_every_tier_pair, 60) {
    for (size_t i = 0; i < NTIERS; i++)
        for (size_t j = 0; j < NTIERS; j++) {
            size_t a = tiers[i], b = tiers[j], keep = a < b ? a : b;
            unsigned seed = (unsigned)(i * NTIERS + j);
            unsigned char *p = malloc(cf_opaque(a));
            CF_REQUIRE_NOT_NULL(p, "malloc");
            fill(p, a, seed);
            unsigned char *q = realloc(p, cf_opaque(b));
            CF_REQUIRE(q != NULL, "realloc(%zu -> %zu) failed", a, b);
            size_t bad = check(q, keep, seed);
            CF_EXPECT(bad == keep, "realloc %zu -> %zu: byte %zu of %zu lost",
                      a, b, bad, keep);
            CF_EXPECT((uintptr_t)q % 16 == 0, "realloc %zu -> %zu: %p", a, b,
                      (void *)q);
            CF_EXPECT(usable_in_full(q, b), "realloc %zu -> %zu: usable %zu",
                      a, b, malloc_usable_size(q));
            free(q);
            if (cf_failures() > 10) return;
        }
}

/* One block grown 8 B -> 8 MiB by x1.3 steps, then shrunk back, checked
 * at each step (a pattern that follows the size as it moves). */
CF_TEST(realloc_grow_and_shrink_chain, 60) {
    size_t n = 8;
    unsigned char *p = malloc(cf_opaque(n));
    CF_REQUIRE_NOT_NULL(p, "malloc");
    fill(p, n, 1);
    size_t steps[128], ns = 0;
    while (n < (8u << 20) && ns < 128) {
        size_t m = n + n * 3 / 10 + 1;
        unsigned char *q = realloc(p, cf_opaque(m));
        CF_REQUIRE(q != NULL, "realloc(%zu -> %zu)", n, m);
        size_t bad = check(q, n, 1);
        CF_REQUIRE(bad == n, "grow %zu -> %zu: byte %zu lost", n, m, bad);
        for (size_t i = n; i < m; i++) q[i] = pat(i, 1);
        steps[ns++] = n;
        p = q;
        n = m;
    }
    while (ns > 0) {
        size_t m = steps[--ns];
        unsigned char *q = realloc(p, cf_opaque(m));
        CF_REQUIRE(q != NULL, "realloc(%zu -> %zu)", n, m);
        size_t bad = check(q, m, 1);
        CF_REQUIRE(bad == m, "shrink %zu -> %zu: byte %zu lost", n, m, bad);
        p = q;
        n = m;
    }
    free(p);
}

/* Many blocks resized in turns while their neighbours stay live: in-place
 * growth must not run over a neighbour. */
CF_TEST(realloc_neighbours_untouched, 60) {
    enum { N = 512 };
    static unsigned char *p[N];
    static size_t sz[N];
    uint64_t seed = 12345;
    for (int i = 0; i < N; i++) {
        sz[i] = 1 + cf_rand(&seed) % 2000;
        p[i] = malloc(sz[i]);
        CF_REQUIRE_NOT_NULL(p[i], "malloc");
        fill(p[i], sz[i], (unsigned)i);
    }
    for (int round = 0; round < 20 * (int)cf_scale(); round++)
        for (int i = 0; i < N; i++) {
            size_t m = 1 + cf_rand(&seed) % (i % 16 == 0 ? 300000 : 5000);
            unsigned char *q = realloc(p[i], m);
            CF_REQUIRE(q != NULL, "realloc(%zu)", m);
            size_t keep = m < sz[i] ? m : sz[i];
            size_t bad = check(q, keep, (unsigned)i);
            CF_REQUIRE(bad == keep, "block %d: %zu -> %zu: byte %zu lost", i,
                       sz[i], m, bad);
            fill(q, m, (unsigned)i);
            p[i] = q;
            sz[i] = m;
        }
    for (int i = 0; i < N; i++) {
        size_t bad = check(p[i], sz[i], (unsigned)i);
        CF_EXPECT(bad == sz[i], "block %d: byte %zu of %zu changed", i, bad, sz[i]);
        free(p[i]);
    }
}

CF_TEST(realloc_null_is_malloc, 20) {
    for (size_t i = 0; i < NTIERS; i++) {
        unsigned char *p = realloc(NULL, cf_opaque(tiers[i]));
        CF_REQUIRE(p != NULL, "realloc(NULL, %zu)", tiers[i]);
        CF_EXPECT((uintptr_t)p % 16 == 0, "realloc(NULL, %zu) = %p", tiers[i],
                  (void *)p);
        CF_EXPECT(usable_in_full(p, tiers[i]), "realloc(NULL, %zu): usable %zu",
                  tiers[i], malloc_usable_size(p));
        free(p);
    }
    void *z = realloc(NULL, cf_opaque(0));
    CF_EXPECT(z != NULL, "realloc(NULL, 0) is malloc(0): a pointer (glibc)");
    free(z);
}

/* A failed realloc leaves the block as it was and usable: for each tier. */
CF_TEST(realloc_failure_keeps_block, 20) {
    static const size_t bad_sizes[] = { SIZE_MAX, SIZE_MAX - 4096,
        (size_t)PTRDIFF_MAX + 1, PTRDIFF_MAX, (size_t)1 << 47 };
    for (size_t i = 0; i < NTIERS; i++)
        for (size_t k = 0; k < sizeof bad_sizes / sizeof bad_sizes[0]; k++) {
            size_t a = tiers[i];
            unsigned char *p = malloc(cf_opaque(a));
            CF_REQUIRE_NOT_NULL(p, "malloc");
            fill(p, a, (unsigned)i);
            errno = 0;
            void *q = realloc(cf_opaque_ptr(p), cf_opaque(bad_sizes[k]));
            int e = errno;
            CF_EXPECT(q == NULL && e == ENOMEM, "realloc(%zu-byte block, %zu): "
                      "%p errno %d", a, bad_sizes[k], q, e);
            if (q != NULL) {
                free(q);
                continue;
            }
            CF_EXPECT(check(p, a, (unsigned)i) == a, "block of %zu changed", a);
            unsigned char *r = realloc(p, cf_opaque(a * 2));
            CF_REQUIRE(r != NULL, "the block resized after the failure");
            CF_EXPECT(check(r, a, (unsigned)i) == a, "contents after resize");
            free(r);
        }
    CF_HEAP_USABLE();
}

CF_TEST(reallocarray_overflow_keeps_block, 20) {
    static const size_t pairs[][2] = {
        { 2, SIZE_MAX / 2 + 1 }, { SIZE_MAX / 2 + 1, 2 },
        { (size_t)1 << 32, (size_t)1 << 32 }, { SIZE_MAX, SIZE_MAX },
        { 16, SIZE_MAX / 16 + 1 }, { 3, SIZE_MAX / 3 + 1 },
        { ((size_t)1 << 33) + 1, (size_t)1 << 31 } };
    for (size_t i = 0; i < NTIERS; i += 3)
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
            size_t a = tiers[i];
            unsigned char *p = malloc(cf_opaque(a));
            CF_REQUIRE_NOT_NULL(p, "malloc");
            fill(p, a, 3);
            errno = 0;
            /* (p hidden: gcc cannot know that a failure keeps it) */
            void *q = reallocarray(cf_opaque_ptr(p), cf_opaque(pairs[k][0]),
                                   pairs[k][1]);
            int e = errno;
            CF_EXPECT(q == NULL && e == ENOMEM, "reallocarray(%zu-byte block, "
                      "%zu, %zu): %p errno %d", a, pairs[k][0], pairs[k][1], q, e);
            if (q != NULL) {
                free(q);
                continue;
            }
            CF_EXPECT(check(p, a, 3) == a, "block of %zu changed", a);
            free(p);
        }
    CF_HEAP_USABLE();
}

CF_TEST(reallocarray_resizes, 20) {
    unsigned char *p = reallocarray(NULL, cf_opaque(10), 10);
    CF_REQUIRE_NOT_NULL(p, "reallocarray(NULL, 10, 10)");
    fill(p, 100, 9);
    for (size_t n = 2; n <= (1u << 16); n *= 4) {
        unsigned char *q = reallocarray(p, cf_opaque(n), 100);
        CF_REQUIRE(q != NULL, "reallocarray(p, %zu, 100)", n);
        CF_EXPECT(check(q, 100, 9) == 100, "contents after reallocarray to %zu x 100", n);
        CF_EXPECT(usable_in_full(q, n * 100), "usable %zu < %zu",
                  malloc_usable_size(q), n * 100);
        fill(q, 100, 9);
        p = q;
    }
    unsigned char *q = reallocarray(p, cf_opaque(5), 10);
    CF_REQUIRE(q != NULL, "reallocarray shrink");
    CF_EXPECT(check(q, 50, 9) == 50, "contents after shrink");
    free(q);
}

/* realloc of blocks from the aligned functions keeps their contents. */
CF_TEST(realloc_aligned_blocks, 20) {
    static const size_t als[] = { 32, 64, 4096, 65536, 1u << 21 };
    for (size_t i = 0; i < sizeof als / sizeof als[0]; i++)
        for (size_t k = 0; k < NTIERS; k += 4) {
            size_t a = tiers[k];
            unsigned char *p = memalign(cf_opaque(als[i]), a);
            CF_REQUIRE_NOT_NULL(p, "memalign");
            fill(p, a, 5);
            size_t b = a * 3 + 1;
            unsigned char *q = realloc(p, cf_opaque(b));
            CF_REQUIRE(q != NULL, "realloc of memalign(%zu, %zu) to %zu", als[i], a, b);
            CF_EXPECT(check(q, a, 5) == a, "memalign(%zu, %zu) -> %zu: contents",
                      als[i], a, b);
            q = realloc(q, cf_opaque(a / 2 + 1));
            CF_REQUIRE(q != NULL, "shrink");
            CF_EXPECT(check(q, a / 2 + 1, 5) == a / 2 + 1, "contents after shrink");
            free(q);
        }
}

/* malloc_usable_size: at least the size asked for, all of it writable
 * without disturbing a neighbour, for every size 1..5000 and the tiers. */
CF_TEST(usable_size_writable, 30) {
    enum { N = 5001 };
    static unsigned char *p[N];
    for (size_t n = 1; n < N; n++) {
        p[n] = malloc(cf_opaque(n));
        CF_REQUIRE_NOT_NULL(p[n], "malloc");
        size_t u = malloc_usable_size(p[n]);
        CF_EXPECT(u >= n, "malloc(%zu): usable %zu", n, u);
        if (u > n + 1000000) cf_fail(__FILE__, __LINE__, "usable %zu for %zu?", u, n);
        memset(p[n], (int)(n & 0xff), u);
        if (cf_failures() > 10) return;
    }
    for (size_t n = 1; n < N; n++) {
        size_t u = malloc_usable_size(p[n]);
        for (size_t i = 0; i < u; i++)
            if (p[n][i] != (unsigned char)(n & 0xff)) {
                cf_fail(__FILE__, __LINE__, "block of %zu: byte %zu of its %zu "
                        "usable ones overwritten by a neighbour", n, i, u);
                return;
            }
        free(p[n]);
    }
    for (size_t i = 0; i < NTIERS; i++) {
        unsigned char *q = malloc(cf_opaque(tiers[i]));
        CF_REQUIRE_NOT_NULL(q, "malloc");
        CF_EXPECT(usable_in_full(q, tiers[i]), "malloc(%zu): usable %zu",
                  tiers[i], malloc_usable_size(q));
        free(q);
    }
}

CF_MAIN()
