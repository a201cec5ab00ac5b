/*
 * Alignment.  C17 7.22.3: a block from malloc, calloc or realloc is
 * suitably aligned for any object type with fundamental alignment; glibc
 * on x86-64 (and its manual) gives 2 * sizeof(size_t) = 16 bytes, for
 * every size including 0.  memalign, posix_memalign and aligned_alloc
 * return a multiple of the alignment asked for, valloc and pvalloc a
 * multiple of the page size; the block holds at least the bytes asked for
 * (malloc_usable_size says how many may be written, all of them).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conform.h"

#include <errno.h>
#include <malloc.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_ALIGN ((size_t)16)
#define NSMALL 4097

static bool aligned(const void *p, size_t a) { return (uintptr_t)p % a == 0; }

/* Writes the whole usable size (the ends only past 1 MiB, to keep it
 * quick) and reads the ends back. */
static bool usable(unsigned char *p, size_t want, int fill) {
    size_t n = malloc_usable_size(p);
    if (n < want) return false;
    if (n == 0) return true;
    if (n <= (1u << 20)) {
        memset(p, fill, n);
    } else {
        memset(p, fill, 4096);
        memset(p + n - 4096, fill, 4096);
    }
    return p[0] == (unsigned char)fill && p[n - 1] == (unsigned char)fill;
}

CF_TEST(max_align_t_is_16, 5) {
    CF_EXPECT_EQ(alignof(max_align_t), MIN_ALIGN, "alignof(max_align_t)");
}

/* All 4097 blocks live at once, so none is the reuse of another. */
CF_TEST(malloc_small_sizes_aligned, 30) {
    static void *p[NSMALL];
    for (size_t n = 0; n < NSMALL; n++) {
        p[n] = malloc(cf_opaque(n));
        CF_REQUIRE_NOT_NULL(p[n], "malloc");
        CF_EXPECT(aligned(p[n], MIN_ALIGN), "malloc(%zu) = %p", n, p[n]);
        CF_EXPECT(usable(p[n], n, (int)n), "malloc(%zu): usable size %zu",
                  n, malloc_usable_size(p[n]));
        if (cf_failures() > 10) return;
    }
    for (size_t n = 0; n < NSMALL; n++) free(p[n]);
}

CF_TEST(calloc_small_sizes_aligned, 30) {
    static void *p[NSMALL];
    for (size_t n = 0; n < NSMALL; n++) {
        size_t nmemb = n % 3 + 1, size = n / (n % 3 + 1);
        p[n] = calloc(cf_opaque(nmemb), size);
        CF_REQUIRE_NOT_NULL(p[n], "calloc");
        CF_EXPECT(aligned(p[n], MIN_ALIGN), "calloc(%zu, %zu) = %p", nmemb,
                  size, p[n]);
        const unsigned char *z = p[n];
        for (size_t i = 0; i < nmemb * size; i++)
            if (z[i] != 0) {
                cf_fail(__FILE__, __LINE__, "calloc(%zu, %zu): byte %zu is %d",
                        nmemb, size, i, z[i]);
                break;
            }
        CF_EXPECT(usable(p[n], nmemb * size, 0x5a), "calloc usable size");
        if (cf_failures() > 10) return;
    }
    for (size_t n = 0; n < NSMALL; n++) free(p[n]);
}

/* Every size 0..4096 reached by realloc, growing one block and shrinking
 * another, and by realloc(NULL, n). */
CF_TEST(realloc_small_sizes_aligned, 30) {
    void *g = NULL, *s = malloc(cf_opaque(NSMALL));
    CF_REQUIRE_NOT_NULL(s, "malloc");
    for (size_t n = 1; n < NSMALL; n++) {
        void *q = realloc(g, cf_opaque(n));
        CF_REQUIRE_NOT_NULL(q, "realloc grow");
        g = q;
        CF_EXPECT(aligned(g, MIN_ALIGN), "realloc grow to %zu = %p", n, g);
        q = realloc(s, cf_opaque(NSMALL - n));
        CF_REQUIRE_NOT_NULL(q, "realloc shrink");
        s = q;
        CF_EXPECT(aligned(s, MIN_ALIGN), "realloc shrink to %zu = %p",
                  NSMALL - n, s);
        void *r = realloc(NULL, cf_opaque(n));
        CF_REQUIRE_NOT_NULL(r, "realloc(NULL, n)");
        CF_EXPECT(aligned(r, MIN_ALIGN), "realloc(NULL, %zu) = %p", n, r);
        free(r);
        if (cf_failures() > 10) return;
    }
    free(g);
    free(s);
}

CF_TEST(large_sizes_aligned, 60) {
    static const size_t sizes[] = { 4097, 8191, 8192, 16383, 32767, 32768,
        32769, 65535, 65536, 65537, 131071, 131072, 131073, 262144 + 1,
        (1u << 20) - 1, 1u << 20, (1u << 20) + 1, (2u << 20) + 3,
        (4u << 20) - 16, 8u << 20, (8u << 20) + 1, (32u << 20) + 7,
        64u << 20, (256u << 20) + 1 };
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *p[N], *c[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = malloc(cf_opaque(sizes[i]));
        c[i] = calloc(1, cf_opaque(sizes[i]));
        CF_REQUIRE(p[i] != NULL && c[i] != NULL, "malloc/calloc(%zu)", sizes[i]);
        CF_EXPECT(aligned(p[i], MIN_ALIGN), "malloc(%zu) = %p", sizes[i], p[i]);
        CF_EXPECT(aligned(c[i], MIN_ALIGN), "calloc(1, %zu) = %p", sizes[i], c[i]);
        const unsigned char *z = c[i];
        CF_EXPECT(z[0] == 0 && z[sizes[i] - 1] == 0 && z[sizes[i] / 2] == 0,
                  "calloc(1, %zu) not zeroed", sizes[i]);
        CF_EXPECT(usable(p[i], sizes[i], 0x11), "malloc(%zu) usable", sizes[i]);
        CF_EXPECT(usable(c[i], sizes[i], 0x22), "calloc(%zu) usable", sizes[i]);
    }
    for (size_t i = 0; i < N; i++) {
        void *q = realloc(p[i], cf_opaque(sizes[N - 1 - i]));
        CF_REQUIRE_NOT_NULL(q, "realloc");
        CF_EXPECT(aligned(q, MIN_ALIGN), "realloc to %zu = %p", sizes[N - 1 - i], q);
        free(q);
        free(c[i]);
    }
}

enum afn { A_MEMALIGN, A_POSIX, A_ALIGNED, A_END };
static const char *const afn_name[] = { "memalign", "posix_memalign",
                                        "aligned_alloc" };

static void *alloc_aligned(enum afn f, size_t al, size_t n) {
    void *p = NULL;
    switch (f) {
    case A_MEMALIGN: return memalign(al, n);
    case A_POSIX:
        if (posix_memalign(&p, al, n) != 0) return NULL;
        return p;
    case A_ALIGNED:
        /* C11 asks for a size that is a multiple of the alignment */
        return aligned_alloc(al, (n + al - 1) / al * al);
    default: return NULL;
    }
}

/* Alignments 8 B .. 64 MiB, each with sizes around it, several blocks
 * live at once; all three functions. */
static void aligned_range(const void *arg) {
    enum afn f = (enum afn)(intptr_t)arg;
    for (unsigned sh = 3; sh <= 26; sh++) {
        size_t al = (size_t)1 << sh;
        size_t sizes[] = { 1, al - 1, al, al + 1, 3 * al, 100, 5000 };
        enum { NS = sizeof sizes / sizeof sizes[0] };
        void *p[NS];
        for (size_t i = 0; i < NS; i++) {
            size_t n = sizes[i];
            if (sh >= 24 && n > 2 * al) n = al + 1;
            p[i] = alloc_aligned(f, cf_opaque(al), n);
            CF_REQUIRE(p[i] != NULL, "%s(%zu, %zu) failed: %s", afn_name[f],
                       al, n, strerror(errno));
            CF_EXPECT(aligned(p[i], al), "%s(%zu, %zu) = %p", afn_name[f],
                      al, n, p[i]);
            CF_EXPECT(usable(p[i], n, (int)sh), "%s(%zu, %zu): usable %zu",
                      afn_name[f], al, n, malloc_usable_size(p[i]));
        }
        for (size_t i = 0; i < NS; i++) free(p[i]);
        if (cf_failures() > 10) return;
    }
}

/* Aligned blocks mixed with plain ones, freed in another order, many of
 * them: a block freed must not break another's alignment or contents. */
static void aligned_mixed(const void *arg) {
    enum afn f = (enum afn)(intptr_t)arg;
    enum { N = 2000 };
    static unsigned char *p[N];
    static size_t al[N], sz[N];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) {
        al[i] = (size_t)1 << (3 + cf_rand(&seed) % 14); /* 8 B .. 64 KiB */
        sz[i] = 1 + cf_rand(&seed) % 3000;
        p[i] = i % 3 ? alloc_aligned(f, al[i], sz[i]) : malloc(sz[i]);
        CF_REQUIRE_NOT_NULL(p[i], "allocation");
        if (i % 3 == 0) al[i] = MIN_ALIGN;
        CF_EXPECT(aligned(p[i], al[i]), "%p not aligned to %zu", (void *)p[i], al[i]);
        memset(p[i], i & 0xff, sz[i]);
        if (cf_failures() > 10) return;
    }
    for (int i = 0; i < N; i += 2) {
        free(p[i]);
        p[i] = NULL;
    }
    for (int i = 1; i < N; i += 2)
        for (size_t j = 0; j < sz[i]; j++)
            if (p[i][j] != (unsigned char)(i & 0xff)) {
                cf_fail(__FILE__, __LINE__, "block %d overwritten at %zu", i, j);
                return;
            }
    for (int i = 0; i < N; i++) free(p[i]);
}

CF_TEST(valloc_pvalloc_page_aligned, 30) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 65536 + 3,
                                    (1u << 20) + 5, 5u << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], rounded = (n + pg - 1) / pg * pg;
        unsigned char *v = valloc(cf_opaque(n)), *pv = pvalloc(cf_opaque(n));
        CF_REQUIRE(v != NULL && pv != NULL, "valloc/pvalloc(%zu)", n);
        CF_EXPECT(aligned(v, pg), "valloc(%zu) = %p", n, (void *)v);
        CF_EXPECT(aligned(pv, pg), "pvalloc(%zu) = %p", n, (void *)pv);
        CF_EXPECT(usable(v, n, 3), "valloc(%zu): usable %zu", n, malloc_usable_size(v));
        /* pvalloc rounds the size up to a multiple of the page size */
        CF_EXPECT(usable(pv, rounded, 4), "pvalloc(%zu): usable %zu < %zu", n,
                  malloc_usable_size(pv), rounded);
        free(v);
        free(pv);
    }
}

static void register_aligned(void) __attribute__((constructor));
static void register_aligned(void) {
    static const char *const range[] = { "memalign_8B_to_64MiB",
        "posix_memalign_8B_to_64MiB", "aligned_alloc_8B_to_64MiB" };
    static const char *const mixed[] = { "memalign_mixed_with_malloc",
        "posix_memalign_mixed_with_malloc", "aligned_alloc_mixed_with_malloc" };
    for (int f = 0; f < A_END; f++) {
        cf_add(range[f], aligned_range, (const void *)(intptr_t)f, 60);
        cf_add(mixed[f], aligned_mixed, (const void *)(intptr_t)f, 30);
    }
}

CF_MAIN()
