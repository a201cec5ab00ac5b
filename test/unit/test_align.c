/* Aligned allocation: every power of two from 1 byte to 64 MiB against a
 * set of sizes, through posix_memalign, aligned_alloc and memalign; huge
 * alignments; many aligned blocks live at once. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define MAX_ALIGN (64 * MiB)

static const size_t sweep_sizes[] = { 0, 1, 15, 16, 100, 4096, 100000, 3 * MiB };
#define NSWEEP (sizeof sweep_sizes / sizeof sweep_sizes[0])

enum api { API_POSIX, API_ALIGNED, API_MEMALIGN };
static const char *api_name[] = { "posix_memalign", "aligned_alloc", "memalign" };

static void *alloc_aligned(enum api api, size_t align, size_t size, int *rc) {
    void *p = NULL;
    *rc = 0;
    switch (api) {
    case API_POSIX:
        *rc = hak_posix_memalign(&p, align, size);
        if (*rc != 0) p = NULL;
        break;
    case API_ALIGNED:
        p = hak_aligned_alloc(align, size);
        break;
    case API_MEMALIGN:
        p = hak_memalign(align, size);
        break;
    }
    return p;
}

/* One block: aligned, usable >= size, writable in full, contents kept
 * while a neighbour is allocated. */
static int check_one(enum api api, size_t align, size_t size) {
    int rc;
    errno = 0;
    unsigned char *p = alloc_aligned(api, align, size, &rc);
    if (p == NULL) {
        hk_test_fail(__FILE__, __LINE__, "%s(align %zu, size %zu) failed (rc %d errno %d)",
                     api_name[api], align, size, rc, errno);
        return 0;
    }
    int ok = 1;
    if ((uintptr_t)p % align != 0) {
        hk_test_fail(__FILE__, __LINE__, "%s(align %zu, size %zu) = %p: misaligned",
                     api_name[api], align, size, (void *)p);
        ok = 0;
    }
    if (size >= 16 && (uintptr_t)p % 16 != 0) {
        hk_test_fail(__FILE__, __LINE__, "%s(align %zu, size %zu) = %p: not 16-aligned",
                     api_name[api], align, size, (void *)p);
        ok = 0;
    }
    size_t u = hak_malloc_usable_size(p);
    if (u < size) {
        hk_test_fail(__FILE__, __LINE__, "%s(align %zu, size %zu): usable %zu",
                     api_name[api], align, size, u);
        ok = 0;
        u = size;
    }
    memset(p, 0xC3, u);
    void *other = hak_malloc(size + 1);
    if (other) memset(other, 0x3C, size + 1);
    if (u > 0 && (p[0] != 0xC3 || p[u - 1] != 0xC3 || p[u / 2] != 0xC3)) {
        hk_test_fail(__FILE__, __LINE__, "%s(align %zu, size %zu): block overwritten",
                     api_name[api], align, size);
        ok = 0;
    }
    hak_free(other);
    hak_free(p);
    return ok;
}

static void sweep(enum api api) {
    int bad = 0;
    for (size_t a = 1; a <= MAX_ALIGN && bad < 10; a *= 2) {
        if (api == API_POSIX && a < sizeof(void *)) continue;
        for (size_t i = 0; i < NSWEEP && bad < 10; i++)
            if (!check_one(api, a, sweep_sizes[i])) bad++;
    }
}

TEST(align_sweep_posix_memalign) { sweep(API_POSIX); }
TEST(align_sweep_aligned_alloc) { sweep(API_ALIGNED); }
TEST(align_sweep_memalign) { sweep(API_MEMALIGN); }

/* Several blocks with huge alignments alive together, each its own. */
TEST(align_huge_alignments_live_together) {
    enum { N = 6 };
    static const size_t al[N] = { 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB };
    static const size_t sz[N] = { 1, 2 * MiB, 100, 5 * MiB + 3, 4096, 64 * MiB };
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        int rc = hak_posix_memalign((void **)&p[i], al[i], sz[i]);
        REQUIRE_EQ_U(rc, 0, "posix_memalign with a huge alignment");
        EXPECT_EQ_U((uintptr_t)p[i] % al[i], 0, "alignment");
        EXPECT_GE_U(hak_malloc_usable_size(p[i]), sz[i], "usable size");
        memset(p[i], i + 1, sz[i]);
    }
    for (int i = 0; i < N; i++) {
        EXPECT_EQ_U(p[i][0], (unsigned)i + 1, "first byte kept");
        EXPECT_EQ_U(p[i][sz[i] - 1], (unsigned)i + 1, "last byte kept");
    }
    for (int i = 0; i < N; i++) hak_free(p[i]);
}

/* Alignments beyond the sweep (128 MiB, 1 GiB) still work. */
TEST(align_beyond_64mib) {
    static const size_t al[] = { 128 * MiB, 1024 * MiB };
    static const size_t sz[] = { 1, 5 * MiB };
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++)
            for (int api = 0; api < 3; api++)
                check_one((enum api)api, al[i], sz[j]);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void) { return hk_test_xorshift(&rng_state); }

/* Many aligned and plain blocks interleaved and freed out of order: each
 * keeps its first and last byte, and the allocator keeps working. */
TEST(align_mixed_churn) {
    enum { SLOTS = 256 };
    unsigned char *p[SLOTS] = { 0 };
    size_t len[SLOTS] = { 0 };
    unsigned steps = 20000 * hk_test_scale();
    for (unsigned t = 0; t < steps; t++) {
        unsigned k = (unsigned)(rng() % SLOTS);
        if (p[k] != NULL) {
            if (len[k] > 0 && (p[k][0] != (unsigned char)k ||
                               p[k][len[k] - 1] != (unsigned char)k)) {
                hk_test_fail(__FILE__, __LINE__, "slot %u (size %zu) overwritten", k,
                             len[k]);
                return;
            }
            hak_free(p[k]);
            p[k] = NULL;
            continue;
        }
        size_t align = (size_t)1 << (rng() % 17); /* up to 64 KiB */
        size_t n = (size_t)(rng() % (rng() % 4 == 0 ? 300000 : 2000));
        int rc;
        p[k] = alloc_aligned((enum api)(rng() % 3), align < sizeof(void *) ? sizeof(void *) : align,
                             n, &rc);
        if (p[k] == NULL) {
            hk_test_fail(__FILE__, __LINE__, "aligned allocation (%zu, %zu) failed", align, n);
            return;
        }
        if ((uintptr_t)p[k] % align != 0) {
            hk_test_fail(__FILE__, __LINE__, "(%zu, %zu) misaligned", align, n);
            return;
        }
        len[k] = n;
        if (n > 0) {
            p[k][0] = (unsigned char)k;
            p[k][n - 1] = (unsigned char)k;
        }
    }
    for (int k = 0; k < SLOTS; k++) hak_free(p[k]);
}

/* ---- debug checks turned on and off while aligned blocks are asked for ----
 * An aligned request that found the checks off may reach the allocator's
 * slow path after they came on, where a checked block (canary in front)
 * is handed out: the alignment must hold all the same.  (mode_flip's stress
 * test found aligned_alloc(128, 54) at an address ending in 0x320.) */

static atomic_bool flip_stop;

static void *flip_debug_checks(void *arg) {
    (void)arg;
    bool on = true;
    while (!atomic_load(&flip_stop)) {
        hak_ctl("config.features.debug_checks", NULL, NULL, &on, sizeof on);
        on = !on;
    }
    on = false;
    hak_ctl("config.features.debug_checks", NULL, NULL, &on, sizeof on);
    return NULL;
}

TEST(align_holds_while_debug_checks_flip) {
    pthread_t t;
    atomic_store(&flip_stop, false);
    REQUIRE_EQ_U(pthread_create(&t, NULL, flip_debug_checks, NULL), 0, "pthread_create");
    static const size_t aligns[] = {32, 64, 128, 256, 4096};
    unsigned bad = 0, failed = 0;
    uintptr_t first_bad = 0;
    size_t first_align = 0;
    for (unsigned i = 0; i < 200000 * hk_test_scale(); i++) {
        size_t align = aligns[i % 5], size = 1 + (i * 37) % 200;
        void *p = hak_aligned_alloc(align, size);
        if (p == NULL) {
            failed++;
            continue;
        }
        if ((uintptr_t)p % align != 0 && bad++ == 0) {
            first_bad = (uintptr_t)p;
            first_align = align;
        }
        memset(p, 0x5a, size);
        hak_free(p);
    }
    atomic_store(&flip_stop, true);
    pthread_join(t, NULL);
    EXPECT_EQ_U(failed, 0, "aligned_alloc failed while the checks flipped");
    if (bad != 0)
        hk_test_fail(__FILE__, __LINE__, "%u misaligned blocks, first %#lx for alignment %zu", bad,
                     (unsigned long)first_bad, first_align);
}

TEST_MAIN()
