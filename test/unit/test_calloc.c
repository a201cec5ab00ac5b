/* calloc returns zeroed memory even when it reuses a dirty block: from the
 * thread cache, from a slab, from a page run, from the BigCache, and after
 * a remote free. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static const size_t sizes[] = { 1, 8, 16, 24, 100, 1000, 1024, 1025, 4096,
                                 20000, 32768, 32769, 100000, 500000, MiB,
                                 MiB + 1, 2 * MiB, 4 * MiB, 8 * MiB + 100 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Index of the first non-zero byte, or n. */
static size_t first_nonzero(const void *p, size_t n) {
    const unsigned char *c = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, c + i, 8);
        if (w != 0) break;
    }
    for (; i < n; i++)
        if (c[i] != 0) return i;
    return n;
}

/* Dirties a block of n bytes (all of its usable size) and frees it. */
static void dirty_and_free(size_t n) {
    void *p = hak_malloc(n);
    if (p == NULL) return;
    memset(p, 0xFF, hak_malloc_usable_size(p));
    hak_free(p);
}

static int expect_zero(void *q, size_t n, const char *how) {
    if (q == NULL) {
        hk_test_fail(__FILE__, __LINE__, "%s of %zu bytes failed", how, n);
        return 0;
    }
    size_t z = first_nonzero(q, n);
    if (z != n) {
        hk_test_fail(__FILE__, __LINE__, "%s of %zu bytes: byte %zu is %#x", how, n,
                     z, ((unsigned char *)q)[z]);
        return 0;
    }
    return 1;
}

TEST(calloc_zeroes_reused_memory) {
    unsigned rounds = (HK_TSAN ? 2 : 8) * hk_test_scale(); /* TSan: slow */
    int bad = 0;
    for (unsigned r = 0; r < rounds && bad < 5; r++) {
        for (size_t i = 0; i < NSIZES && bad < 5; i++) {
            size_t n = sizes[i];
            dirty_and_free(n);
            void *q = hak_calloc(1, n);
            if (!expect_zero(q, n, "calloc(1, n)")) bad++;
            if (q) memset(q, 0xFF, n);
            hak_free(q);
            q = hak_calloc(n, 1);
            if (!expect_zero(q, n, "calloc(n, 1)")) bad++;
            if (q) memset(q, 0xFF, n);
            hak_free(q);
            if (n % 8 == 0) {
                q = hak_calloc(n / 8, 8);
                if (!expect_zero(q, n, "calloc(n/8, 8)")) bad++;
                hak_free(q);
            }
        }
    }
}

/* Dirty a block of size a, free it, calloc size b from another class:
 * whatever got reused (split page runs, coalesced ones) must be zero. */
TEST(calloc_zeroes_across_sizes) {
    int bad = 0;
    for (size_t i = 0; i < NSIZES && bad < 5; i++) {
        for (size_t j = 0; j < NSIZES && bad < 5; j++) {
            dirty_and_free(sizes[i]);
            void *q = hak_calloc(1, sizes[j]);
            if (!expect_zero(q, sizes[j], "calloc after another size")) bad++;
            hak_free(q);
        }
    }
}

/* Fill a whole batch of blocks, free them all (so slabs and pages get
 * recycled, not just the thread cache), then calloc the batch again. */
TEST(calloc_zeroes_after_batch_free) {
    static const size_t bs[] = { 16, 48, 256, 1024, 3000, 16384, 40000, 300000 };
    enum { N = 2000 };
    void **p = hak_malloc(N * sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    int bad = 0;
    for (size_t s = 0; s < sizeof bs / sizeof bs[0] && bad < 5; s++) {
        size_t n = bs[s];
        int cnt = n >= 100000 ? 100 : N;
        for (int i = 0; i < cnt; i++) {
            p[i] = hak_malloc(n);
            REQUIRE_NOT_NULL(p[i], "malloc");
            memset(p[i], 0xFF, hak_malloc_usable_size(p[i]));
        }
        for (int i = 0; i < cnt; i++) hak_free(p[i]);
        for (int i = 0; i < cnt; i++) {
            p[i] = hak_calloc(1, n);
            if (!expect_zero(p[i], n, "calloc after batch free") && ++bad >= 5) {
                cnt = i + (p[i] != NULL);
                break;
            }
        }
        for (int i = 0; i < cnt; i++) hak_free(p[i]);
    }
    hak_free(p);
}

/* A huge block reused from the BigCache still has its old contents unless
 * calloc clears them. */
TEST(calloc_zeroes_huge_blocks_from_bigcache) {
    static const size_t hs[] = { MiB + 1, 2 * MiB, 3 * MiB + 4095, 4 * MiB, 6 * MiB };
    for (int r = 0; r < 4; r++) {
        for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
            size_t n = hs[i];
            void *p = hak_malloc(n);
            REQUIRE_NOT_NULL(p, "malloc huge");
            memset(p, 0xFF, hak_malloc_usable_size(p));
            hak_free(p);
            void *q = hak_calloc(n, 1);
            if (!expect_zero(q, n, "calloc of a huge block")) {
                hak_free(q);
                return;
            }
            /* Also one size down: a cached bigger mapping may serve it. */
            memset(q, 0xFF, n);
            hak_free(q);
            q = hak_calloc(1, n - 4096);
            if (!expect_zero(q, n - 4096, "calloc of a smaller huge block")) {
                hak_free(q);
                return;
            }
            hak_free(q);
        }
    }
}

struct batch { void **p; int n; };

static void *free_batch(void *arg) {
    struct batch *b = arg;
    for (int i = 0; i < b->n; i++) hak_free(b->p[i]);
    return NULL;
}

/* Blocks freed by another thread come back dirty to their owner. */
TEST(calloc_zeroes_remote_freed_blocks) {
    static const size_t bs[] = { 32, 512, 2048, 24000, 60000 };
    enum { N = 1000 };
    void **p = hak_malloc(N * sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    int bad = 0;
    for (int r = 0; r < 3 && bad < 5; r++) {
        for (size_t s = 0; s < sizeof bs / sizeof bs[0] && bad < 5; s++) {
            for (int i = 0; i < N; i++) {
                p[i] = hak_malloc(bs[s]);
                REQUIRE_NOT_NULL(p[i], "malloc");
                memset(p[i], 0xFF, bs[s]);
            }
            struct batch b = { p, N };
            pthread_t t;
            REQUIRE_EQ_U(pthread_create(&t, NULL, free_batch, &b), 0, "pthread_create");
            pthread_join(t, NULL);
            for (int i = 0; i < N; i++) {
                p[i] = hak_calloc(bs[s], 1);
                if (!expect_zero(p[i], bs[s], "calloc after remote free") && ++bad >= 5) {
                    for (int k = 0; k <= i; k++) hak_free(p[k]);
                    hak_free(p);
                    return;
                }
            }
            for (int i = 0; i < N; i++) hak_free(p[i]);
        }
    }
    hak_free(p);
}

TEST(calloc_product_sizes) {
    static const size_t f[][2] = { { 3, 5 }, { 7, 13 }, { 1000, 3 }, { 24, 1024 },
                                   { 4096, 9 }, { 100, 10000 }, { 3, MiB },
                                   { MiB, 5 }, { 12345, 678 } };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        size_t n = f[i][0] * f[i][1];
        dirty_and_free(n);
        void *q = hak_calloc(f[i][0], f[i][1]);
        if (expect_zero(q, n, "calloc(a, b)")) {
            EXPECT_GE_U(hak_malloc_usable_size(q), n, "usable >= a*b");
            if (n >= 16) EXPECT_EQ_U((uintptr_t)q % 16, 0, "16-byte aligned");
        }
        hak_free(q);
    }
}

TEST_MAIN()
