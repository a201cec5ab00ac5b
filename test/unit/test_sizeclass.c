/* Size-class round trips: every size 1..4096 and sampled sizes up to 4 MiB
 * give a block whose usable size covers the request, is writable in full,
 * is 16-byte aligned (even for 1 byte), and wastes at most 25% + 16 bytes
 * up to 1 MiB.  Live blocks never overlap. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* The alignment every block must have, whatever its size: 16 bytes
 * (2 * sizeof(size_t)), what glibc guarantees on x86-64 and what programs
 * built against it assume even of malloc(1). */
#define BLOCK_ALIGN 16

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { return hk_test_xorshift(&rng_state); }

/* Sizes above 4096: around every power of two up to 4 MiB (and its
 * quarters), plus log-uniform random samples, all at most 4 MiB. */
static size_t sampled_sizes(size_t *out, size_t cap) {
    size_t n = 0;
    for (size_t p = 4096; p <= 4 * MiB && n + 16 < cap; p *= 2) {
        size_t q = p / 4;
        size_t base[4] = { p, p + q, p + 2 * q, p + 3 * q };
        for (int i = 0; i < 4; i++) {
            for (int d = -1; d <= 1; d++) {
                size_t s = base[i] + (size_t)(ptrdiff_t)d;
                if (s > 4096 && s <= 4 * MiB) out[n++] = s;
            }
        }
    }
    while (n < cap) {
        unsigned shift = 12 + (unsigned)(rng() % 11); /* 4 KiB .. 4 MiB */
        size_t s = ((size_t)1 << shift) + (size_t)(rng() % ((size_t)1 << shift));
        if (s > 4 * MiB) s = 4 * MiB;
        out[n++] = s;
    }
    return n;
}

/* Allocates n bytes and checks the round trip; returns 0 when it failed. */
static int round_trip(size_t n, int check_waste) {
    void *p = hak_malloc(n);
    if (p == NULL) {
        hk_test_fail(__FILE__, __LINE__, "hak_malloc(%zu) returned NULL", n);
        return 0;
    }
    size_t u = hak_malloc_usable_size(p);
    int ok = 1;
    if (u < n) {
        hk_test_fail(__FILE__, __LINE__, "usable %zu < request %zu", u, n);
        ok = 0;
    }
    if ((uintptr_t)p % BLOCK_ALIGN != 0) {
        hk_test_fail(__FILE__, __LINE__, "size %zu: %p not %d-aligned", n, p, BLOCK_ALIGN);
        ok = 0;
    }
    if (check_waste && n <= MiB && (double)u > (double)n * 1.25 + 16) {
        hk_test_fail(__FILE__, __LINE__, "size %zu: usable %zu wastes > 25%%+16",
                     n, u);
        ok = 0;
    }
    if (u >= n && u > 0) {
        memset(p, 0xA5, u);
        unsigned char *c = p;
        if (c[0] != 0xA5 || c[u - 1] != 0xA5) {
            hk_test_fail(__FILE__, __LINE__, "size %zu: write lost", n);
            ok = 0;
        }
    }
    if (hak_malloc_usable_size(p) != u) {
        hk_test_fail(__FILE__, __LINE__, "size %zu: usable size changed", n);
        ok = 0;
    }
    hak_free(p);
    return ok;
}

TEST(sizeclass_every_size_to_4096) {
    int bad = 0;
    for (size_t n = 0; n <= 4096 && bad < 10; n++)
        if (!round_trip(n, 0)) bad++;
}

TEST(sizeclass_sampled_sizes_to_4mib) {
    static size_t sizes[400];
    size_t ns = sampled_sizes(sizes, sizeof sizes / sizeof sizes[0]);
    int bad = 0;
    for (size_t i = 0; i < ns && bad < 10; i++)
        if (!round_trip(sizes[i], 0)) bad++;
}

TEST(sizeclass_waste_bounded_to_1mib) {
    int bad = 0;
    for (size_t n = 1; n <= 4096 && bad < 10; n++)
        if (!round_trip(n, 1)) bad++;
    for (size_t n = 4097; n <= MiB && bad < 10; n += 1 + n / 97)
        if (!round_trip(n, 1)) bad++;
    for (int k = 13; k <= 20 && bad < 10; k++) {
        size_t p = (size_t)1 << k;
        if (!round_trip(p - 1, 1)) bad++;
        if (!round_trip(p, 1)) bad++;
        if (p + 1 <= MiB && !round_trip(p + 1, 1)) bad++;
    }
}

/* The usable size is the class size: asking for exactly it gives the same
 * usable size again (size classes are fixed points). */
TEST(sizeclass_usable_is_fixed_point) {
    static size_t sizes[200];
    size_t ns = sampled_sizes(sizes, sizeof sizes / sizeof sizes[0]);
    int bad = 0;
    for (size_t i = 0; i < 4096 + ns && bad < 10; i++) {
        size_t n = i < 4096 ? i + 1 : sizes[i - 4096];
        if (n > MiB) continue;
        void *p = hak_malloc(n);
        REQUIRE_NOT_NULL(p, "hak_malloc");
        size_t u = hak_malloc_usable_size(p);
        hak_free(p);
        void *q = hak_malloc(u);
        REQUIRE_NOT_NULL(q, "hak_malloc(usable)");
        size_t u2 = hak_malloc_usable_size(q);
        hak_free(q);
        if (u2 != u) {
            hk_test_fail(__FILE__, __LINE__,
                         "size %zu: usable %zu, but malloc(%zu) has usable %zu",
                         n, u, u, u2);
            bad++;
        }
    }
}

TEST(sizeclass_usable_size_of_null_is_zero) {
    EXPECT_EQ_U(hak_malloc_usable_size(NULL), 0, "malloc_usable_size(NULL)");
}

struct blk { uintptr_t p; size_t u; unsigned seed; };

static int blk_cmp(const void *a, const void *b) {
    uintptr_t x = ((const struct blk *)a)->p, y = ((const struct blk *)b)->p;
    return x < y ? -1 : x > y;
}

static unsigned char pat(size_t i, unsigned seed) {
    return (unsigned char)(i ^ (i >> 8) ^ (i >> 16) ^ (seed * 0x9du));
}

/* Many live blocks of every tier at once: no two overlap and each keeps its
 * own contents until freed. */
TEST(sizeclass_live_blocks_do_not_overlap) {
    enum { N = 3000 };
    struct blk *b = hak_calloc(N, sizeof *b);
    REQUIRE_NOT_NULL(b, "bookkeeping");
    size_t n = 0;
    for (size_t s = 1; s <= 4096 && n < N; s += 3) b[n++].u = s;
    for (size_t s = 4097; s <= 2 * MiB && n < N; s = s + s / 16 + 1) b[n++].u = s;
    while (n < N) b[n++].u = 1 + rng() % 2048;
    int bad = 0;
    for (size_t i = 0; i < N; i++) {
        size_t req = b[i].u;
        void *p = hak_malloc(req);
        if (p == NULL) { hk_test_fail(__FILE__, __LINE__, "malloc(%zu)", req); bad = 1; break; }
        b[i].p = (uintptr_t)p;
        b[i].u = req; /* keep the request: only that is ours for sure */
        b[i].seed = (unsigned)i;
        for (size_t k = 0; k < req; k++) ((unsigned char *)p)[k] = pat(k, b[i].seed);
    }
    if (!bad) {
        for (size_t i = 0; i < N && bad < 5; i++) {
            unsigned char *c = (unsigned char *)b[i].p;
            for (size_t k = 0; k < b[i].u; k++) {
                if (c[k] != pat(k, b[i].seed)) {
                    hk_test_fail(__FILE__, __LINE__,
                                 "block %zu (size %zu) byte %zu overwritten",
                                 i, b[i].u, k);
                    bad++;
                    break;
                }
            }
        }
        struct blk *s = hak_malloc(N * sizeof *s);
        REQUIRE_NOT_NULL(s, "bookkeeping");
        memcpy(s, b, N * sizeof *s);
        qsort(s, N, sizeof *s, blk_cmp);
        for (size_t i = 1; i < N; i++) {
            if (s[i - 1].p + s[i - 1].u > s[i].p) {
                hk_test_fail(__FILE__, __LINE__, "blocks %#lx+%zu and %#lx overlap",
                             (unsigned long)s[i - 1].p, s[i - 1].u,
                             (unsigned long)s[i].p);
                break;
            }
        }
        hak_free(s);
    }
    for (size_t i = 0; i < N; i++)
        if (b[i].p) hak_free((void *)b[i].p);
    hak_free(b);
}

/* Freed blocks come back: cycling one size many times must not keep handing
 * out new addresses (a free that loses the block would give 65536 distinct
 * ones; even a FIFO free list stays within a few slabs). */
TEST(sizeclass_freed_blocks_are_reused) {
    static const size_t sizes[] = { 8, 16, 48, 100, 1000, 1024, 1025, 5000,
                                    32768, 32769, 200000 };
    enum { ROUNDS = 8192, LIVE = 8, TOTAL = ROUNDS * LIVE };
    uintptr_t *seen = hak_malloc(TOTAL * sizeof *seen);
    REQUIRE_NOT_NULL(seen, "bookkeeping");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t nseen = 0;
        for (int r = 0; r < ROUNDS; r++) {
            void *p[LIVE];
            for (int k = 0; k < LIVE; k++) {
                p[k] = hak_malloc(sizes[i]);
                if (p[k] == NULL) {
                    hk_test_fail(__FILE__, __LINE__, "malloc(%zu)", sizes[i]);
                    while (k-- > 0) hak_free(p[k]);
                    hak_free(seen);
                    return;
                }
                seen[nseen++] = (uintptr_t)p[k];
            }
            for (int k = 0; k < LIVE; k++) hak_free(p[k]);
        }
        qsort(seen, nseen, sizeof seen[0], hk_test_uptr_cmp);
        size_t distinct = 0;
        for (size_t k = 0; k < nseen; k++)
            if (k == 0 || seen[k] != seen[k - 1]) distinct++;
        if (distinct > TOTAL / 4)
            hk_test_fail(__FILE__, __LINE__,
                         "size %zu: %zu distinct addresses in %d malloc/free",
                         sizes[i], distinct, TOTAL);
    }
    hak_free(seen);
}

TEST_MAIN()
