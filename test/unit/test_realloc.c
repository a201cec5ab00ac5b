/* realloc and reallocarray: glibc's edge cases (NULL, 0, failure keeps the
 * block, growth within the usable size stays in place) and contents kept
 * across every tier boundary (tiny <= 1 KiB < mid <= 32 KiB < large <=
 * 1 MiB < huge), growing and shrinking. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* The pattern: one 64-bit word per 8 bytes, a function of the word's index
 * and a seed, so a lost, shifted or foreign byte shows. */
static uint64_t pat_word(size_t w, unsigned seed) {
    uint64_t x = (w + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(seed + 1) * 0xD6E8FEB86659FD93ull;
    return x ^ (x >> 29);
}

static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *c = p;
    size_t w = 0;
    for (; (w + 1) * 8 <= n; w++) {
        uint64_t v = pat_word(w, seed);
        memcpy(c + w * 8, &v, 8);
    }
    uint64_t v = pat_word(w, seed);
    memcpy(c + w * 8, &v, n - w * 8);
}

/* Index of the first byte that differs from the pattern, or n. */
static size_t check(const void *p, size_t n, unsigned seed) {
    const unsigned char *c = p;
    size_t w = 0;
    for (; (w + 1) * 8 <= n; w++) {
        uint64_t v = pat_word(w, seed), got;
        memcpy(&got, c + w * 8, 8);
        if (got != v) break;
    }
    for (size_t i = w * 8; i < n; i++) {
        uint64_t v = pat_word(i / 8, seed);
        if (c[i] != ((const unsigned char *)&v)[i % 8]) return i;
    }
    return n;
}

TEST(realloc_null_acts_as_malloc) {
    static const size_t sizes[] = { 1, 16, 100, 1024, 1025, 32768, 32769,
                                    MiB, MiB + 1, 5 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_realloc(NULL, sizes[i]);
        if (p == NULL) {
            hk_test_fail(__FILE__, __LINE__, "realloc(NULL, %zu) failed", sizes[i]);
            continue;
        }
        EXPECT_GE_U(hak_malloc_usable_size(p), sizes[i], "usable size");
        if (sizes[i] >= 16) EXPECT_EQ_U((uintptr_t)p % 16, 0, "16-byte aligned");
        fill(p, sizes[i], 1);
        EXPECT_EQ_U(check(p, sizes[i], 1), sizes[i], "writable");
        hak_free(p);
    }
}

TEST(realloc_null_zero_returns_unique_pointers) {
    enum { N = 1000 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = hak_realloc(NULL, 0);
        REQUIRE_NOT_NULL(p[i], "realloc(NULL, 0)");
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (p[i] == p[j]) {
                hk_test_fail(__FILE__, __LINE__, "realloc(NULL, 0) gave %p twice", p[i]);
                i = j = N;
            }
    for (int i = 0; i < N; i++) hak_free(p[i]);
}

/* glibc: realloc(p, 0) frees p and returns NULL, errno untouched. */
TEST(realloc_zero_frees_and_returns_null) {
    static const size_t sizes[] = { 1, 100, 2000, 40000, 500000, 3 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_malloc(sizes[i]);
        REQUIRE_NOT_NULL(p, "malloc");
        errno = EILSEQ;
        void *q = hak_realloc(p, 0);
        int e = errno;
        EXPECT_NULL(q, "realloc(p, 0) returns NULL");
        EXPECT_EQ_U(e, EILSEQ, "realloc(p, 0) leaves errno alone");
        if (q) hak_free(q);
    }
    /* It really frees: 4096 rounds of 256 KiB, written in full, would add
     * 1 GiB of resident memory if the blocks leaked. */
    size_t before = hk_test_rss_bytes();
    for (int i = 0; i < 4096; i++) {
        void *p = hak_malloc(256 * KiB);
        REQUIRE_NOT_NULL(p, "malloc");
        memset(p, 0x11, 256 * KiB);
        void *q = hak_realloc(p, 0);
        if (q != NULL) {
            hk_test_fail(__FILE__, __LINE__, "realloc(p, 0) returned %p", q);
            hak_free(q);
            return;
        }
    }
    size_t after = hk_test_rss_bytes();
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    EXPECT_LT_U(after, before + 256 * MiB,
                "realloc(p, 0) leaked: resident memory grew by > 256 MiB");
}

static const size_t impossible[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4096, SIZE_MAX - 2 * MiB,
    SIZE_MAX / 2 + 1, SIZE_MAX / 2, (size_t)1 << 48,
};

TEST(realloc_failure_keeps_block) {
    static const size_t sizes[] = { 1, 10, 1000, 1024, 2000, 40000, 700000,
                                    MiB + 1, 2 * MiB, 9 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = hak_malloc(n);
        REQUIRE_NOT_NULL(p, "malloc");
        fill(p, n, (unsigned)i);
        size_t u = hak_malloc_usable_size(p);
        for (size_t k = 0; k < sizeof impossible / sizeof impossible[0]; k++) {
            errno = 0;
            void *q = hak_realloc(p, impossible[k]);
            int e = errno;
            if (q != NULL) {
                hk_test_fail(__FILE__, __LINE__, "realloc(%zu-byte block, %#zx) = %p",
                             n, impossible[k], q);
                p = q; /* whatever it is now */
                break;
            }
            if (e != ENOMEM)
                hk_test_fail(__FILE__, __LINE__,
                             "realloc(%zu-byte block, %#zx): errno %d, not ENOMEM",
                             n, impossible[k], e);
            if (check(p, n, (unsigned)i) != n) {
                hk_test_fail(__FILE__, __LINE__,
                             "failed realloc damaged the %zu-byte block", n);
                break;
            }
            if (hak_malloc_usable_size(p) != u)
                hk_test_fail(__FILE__, __LINE__,
                             "failed realloc changed the usable size of the block");
        }
        /* The block is still a live block: it can grow and be freed. */
        void *q = hak_realloc(p, n + 100);
        REQUIRE_NOT_NULL(q, "realloc after a failure");
        EXPECT_EQ_U(check(q, n, (unsigned)i), n, "contents after regrowth");
        hak_free(q);
    }
}

TEST(realloc_grow_within_usable_size_stays_in_place) {
    size_t sizes[200];
    size_t ns = 0;
    for (size_t n = 1; n <= 1100; n += 7) sizes[ns++] = n;
    static const size_t more[] = { 2000, 4000, 10000, 32767, 32768, 40000,
                                   100000, 1048575, MiB, MiB + 1, 3 * MiB + 3,
                                   8 * MiB - 5 };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) sizes[ns++] = more[i];
    int bad = 0;
    for (size_t i = 0; i < ns && bad < 5; i++) {
        size_t n = sizes[i];
        void *p = hak_malloc(n);
        REQUIRE_NOT_NULL(p, "malloc");
        fill(p, n, 3);
        size_t u = hak_malloc_usable_size(p);
        /* Step up through the slack, then to exactly the usable size. */
        size_t steps[3] = { n + (u - n) / 2, u - (u > n ? 1 : 0), u };
        for (int k = 0; k < 3; k++) {
            void *q = hak_realloc(p, steps[k]);
            REQUIRE_NOT_NULL(q, "realloc within usable size");
            if (q != p && bad < 5) {
                hk_test_fail(__FILE__, __LINE__,
                             "realloc(%zu-byte block, %zu) moved it (usable %zu)",
                             n, steps[k], u);
                bad++;
            }
            p = q;
        }
        EXPECT_EQ_U(check(p, n, 3), n, "contents");
        memset(p, 0, hak_malloc_usable_size(p));
        hak_free(p);
    }
}

/* One chain 1 -> 8 MiB -> 1, through every boundary of every tier. */
static size_t chain_sizes(size_t *out, size_t cap) {
    static const size_t edges[] = { 1024, 32 * KiB, MiB };
    size_t n = 0;
    for (size_t s = 1; s <= 8 * MiB && n < cap; s = s + s / 3 + 1) {
        out[n++] = s;
        for (size_t e = 0; e < 3; e++) {
            size_t next = s + s / 3 + 1;
            if (s < edges[e] - 1 && next > edges[e] + 1 && n + 3 < cap) {
                out[n++] = edges[e] - 1;
                out[n++] = edges[e];
                out[n++] = edges[e] + 1;
            }
        }
    }
    if (n < cap) out[n++] = 8 * MiB;
    return n;
}

TEST(realloc_chain_across_tiers_keeps_contents) {
    size_t up[128];
    size_t nup = chain_sizes(up, 128);
    REQUIRE_TRUE(nup > 30 && up[nup - 1] == 8 * MiB, "chain built");
    unsigned rounds = 2 * hk_test_scale();
    for (unsigned r = 0; r < rounds; r++) {
        size_t cur = up[0];
        unsigned seed = r * 1000;
        unsigned char *p = hak_malloc(cur);
        REQUIRE_NOT_NULL(p, "malloc");
        fill(p, cur, seed);
        /* Up, down, and up-and-down again in bigger strides. */
        for (size_t step = 0; step < 3 * nup - 2; step++) {
            size_t idx = step < nup ? step : step < 2 * nup - 1 ? 2 * nup - 2 - step
                                                                 : (step - (2 * nup - 2)) * 2 % nup;
            size_t next = up[idx];
            unsigned char *q = hak_realloc(p, next);
            if (q == NULL) {
                hk_test_fail(__FILE__, __LINE__, "realloc(%zu -> %zu) failed", cur, next);
                hak_free(p);
                return;
            }
            size_t keep = cur < next ? cur : next;
            size_t bad = check(q, keep, seed);
            if (bad != keep) {
                hk_test_fail(__FILE__, __LINE__,
                             "realloc %zu -> %zu: byte %zu of %zu lost", cur, next,
                             bad, keep);
                hak_free(q);
                return;
            }
            if (hak_malloc_usable_size(q) < next)
                hk_test_fail(__FILE__, __LINE__, "realloc to %zu: usable %zu", next,
                             hak_malloc_usable_size(q));
            if (next >= 16 && (uintptr_t)q % 16 != 0)
                hk_test_fail(__FILE__, __LINE__, "realloc to %zu: %p misaligned", next,
                             (void *)q);
            seed++;
            fill(q, next, seed);
            p = q;
            cur = next;
        }
        hak_free(p);
    }
}

/* Every pair of sizes on both sides of each boundary, both directions. */
TEST(realloc_each_tier_boundary_pair) {
    static const size_t s[] = { 1, 15, 16, 17, 1023, 1024, 1025, 4096,
                                32767, 32768, 32769, 100000, 1048575, MiB,
                                MiB + 1, 2 * MiB, 4 * MiB + 7 };
    const size_t ns = sizeof s / sizeof s[0];
    unsigned seed = 0;
    for (size_t i = 0; i < ns; i++) {
        for (size_t j = 0; j < ns; j++) {
            seed++;
            void *p = hak_malloc(s[i]);
            REQUIRE_NOT_NULL(p, "malloc");
            fill(p, s[i], seed);
            void *q = hak_realloc(p, s[j]);
            if (q == NULL) {
                hk_test_fail(__FILE__, __LINE__, "realloc %zu -> %zu failed", s[i], s[j]);
                hak_free(p);
                continue;
            }
            size_t keep = s[i] < s[j] ? s[i] : s[j];
            size_t bad = check(q, keep, seed);
            if (bad != keep)
                hk_test_fail(__FILE__, __LINE__, "realloc %zu -> %zu: byte %zu lost",
                             s[i], s[j], bad);
            EXPECT_GE_U(hak_malloc_usable_size(q), s[j], "usable after realloc");
            memset(q, 0xEE, s[j]);
            hak_free(q);
        }
    }
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void) { return hk_test_xorshift(&rng_state); }

/* Many blocks reallocated at random to log-uniform sizes up to 4 MiB,
 * each checked against its own pattern. */
TEST(realloc_random_walk_keeps_contents) {
    enum { SLOTS = 64 };
    void *p[SLOTS] = { 0 };
    size_t len[SLOTS] = { 0 };
    unsigned seed[SLOTS] = { 0 };
    unsigned steps = 4000 * hk_test_scale();
    for (unsigned t = 0; t < steps; t++) {
        unsigned k = (unsigned)(rng() % SLOTS);
        unsigned bits = (unsigned)(rng() % 23); /* up to 4 MiB */
        size_t n = (size_t)(rng() % ((size_t)1 << bits));
        if (rng() % 8 == 0) n = 0;
        void *q = hak_realloc(p[k], n);
        if (n == 0 && p[k] != NULL) {
            /* realloc(p, 0) frees */
            if (q != NULL) {
                hk_test_fail(__FILE__, __LINE__, "realloc(p, 0) returned %p", q);
                hak_free(q);
            }
            p[k] = NULL;
            len[k] = 0;
            continue;
        }
        if (q == NULL) {
            hk_test_fail(__FILE__, __LINE__, "realloc(%p, %zu) failed", p[k], n);
            break;
        }
        size_t keep = len[k] < n ? len[k] : n;
        size_t bad = check(q, keep, seed[k]);
        if (bad != keep) {
            hk_test_fail(__FILE__, __LINE__, "step %u: realloc %zu -> %zu lost byte %zu",
                         t, len[k], n, bad);
            p[k] = q;
            break;
        }
        seed[k] = t;
        fill(q, n, t);
        p[k] = q;
        len[k] = n;
    }
    for (int k = 0; k < SLOTS; k++) hak_free(p[k]);
}

TEST(realloc_of_aligned_blocks) {
    static const size_t al[] = { 32, 64, 4096, 65536, 2 * MiB, 16 * MiB };
    static const size_t sz[] = { 10, 5000, 300000, 3 * MiB };
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        for (size_t j = 0; j < sizeof sz / sizeof sz[0]; j++) {
            void *p = NULL;
            int rc = hak_posix_memalign(&p, al[i], sz[j]);
            if (rc != 0) {
                hk_test_fail(__FILE__, __LINE__, "posix_memalign(%zu, %zu) = %d",
                             al[i], sz[j], rc);
                continue;
            }
            fill(p, sz[j], ++seed);
            size_t targets[3] = { sz[j] * 3 + 1, sz[j] / 2 + 1, 2 * MiB + 3 };
            size_t cur = sz[j];
            for (int k = 0; k < 3; k++) {
                void *q = hak_realloc(p, targets[k]);
                if (q == NULL) {
                    hk_test_fail(__FILE__, __LINE__, "realloc of an aligned block failed");
                    break;
                }
                size_t keep = cur < targets[k] ? cur : targets[k];
                EXPECT_EQ_U(check(q, keep, seed), keep, "contents of aligned block");
                fill(q, targets[k], ++seed);
                p = q;
                cur = targets[k];
            }
            hak_free(p);
        }
    }
}

TEST(reallocarray_basic) {
    int *a = hak_reallocarray(NULL, 10, sizeof(int));
    REQUIRE_NOT_NULL(a, "reallocarray(NULL, 10, 4)");
    for (int i = 0; i < 10; i++) a[i] = i * 7;
    int *b = hak_reallocarray(a, 100000, sizeof(int));
    REQUIRE_NOT_NULL(b, "reallocarray grow");
    for (int i = 0; i < 10; i++) EXPECT_EQ_U(b[i], i * 7, "contents kept");
    EXPECT_GE_U(hak_malloc_usable_size(b), 100000 * sizeof(int), "usable size");
    b[99999] = 1;
    int *c = hak_reallocarray(b, 5, sizeof(int));
    REQUIRE_NOT_NULL(c, "reallocarray shrink");
    for (int i = 0; i < 5; i++) EXPECT_EQ_U(c[i], i * 7, "contents kept");
    hak_free(c);
}

TEST(reallocarray_overflow_keeps_block) {
    static const size_t pairs[][2] = {
        { SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { SIZE_MAX, SIZE_MAX },
        { (size_t)1 << 32, (size_t)1 << 32 }, { ((size_t)1 << 60) + 1, 16 },
        { SIZE_MAX / 24 + 1, 24 }, { 65537, SIZE_MAX / 65537 },
    };
    static const size_t sizes[] = { 40, 3000, 50000, 2 * MiB };
    for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
        void *p = hak_malloc(sizes[j]);
        REQUIRE_NOT_NULL(p, "malloc");
        fill(p, sizes[j], 99);
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            errno = 0;
            void *q = hak_reallocarray(p, pairs[i][0], pairs[i][1]);
            int e = errno;
            if (q != NULL) {
                hk_test_fail(__FILE__, __LINE__, "reallocarray(p, %#zx, %#zx) = %p",
                             pairs[i][0], pairs[i][1], q);
                p = q;
                break;
            }
            if (e != ENOMEM)
                hk_test_fail(__FILE__, __LINE__, "reallocarray(p, %#zx, %#zx): errno %d",
                             pairs[i][0], pairs[i][1], e);
            if (check(p, sizes[j], 99) != sizes[j]) {
                hk_test_fail(__FILE__, __LINE__, "failed reallocarray damaged the block");
                break;
            }
        }
        hak_free(p);
        /* And with a NULL block. */
        errno = 0;
        void *q = hak_reallocarray(NULL, SIZE_MAX / 2 + 1, 2);
        EXPECT_NULL(q, "reallocarray(NULL, overflow)");
        EXPECT_EQ_U(errno, ENOMEM, "errno ENOMEM");
    }
}

TEST_MAIN()
