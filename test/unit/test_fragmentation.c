/* Long random churn with a bounded live set keeps the footprint bounded:
 * freed runs and slabs are reused (large runs coalesce, pages move between
 * classes), so resident and virtual size stay within a small multiple of
 * the peak live bytes. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static uint64_t rng_state = 0xC0FFEE123456789ull;
static uint64_t rng(void) { return hk_test_xorshift(&rng_state); }

typedef size_t (*size_fn)(void);

static size_t large_size(void) { return 32 * KiB + 1 + (size_t)(rng() % (MiB - 32 * KiB)); }

static size_t mixed_size(void) {
    switch (rng() % 4) {
    case 0: return 1 + (size_t)(rng() % 1024);
    case 1: return 1025 + (size_t)(rng() % (31 * KiB));
    case 2: return 32 * KiB + 1 + (size_t)(rng() % (224 * KiB));
    default: return 16 + (size_t)(rng() % 256);
    }
}

/* Random malloc/free over `slots` slots for `steps` steps; every block
 * written in full. Checks footprint against the peak of live bytes. */
static void churn(size_fn next_size, unsigned slots, unsigned steps, const char *what) {
    unsigned char **p = hak_calloc(slots, sizeof *p);
    size_t *len = hak_calloc(slots, sizeof *len);
    REQUIRE_TRUE(p && len, "bookkeeping");
    size_t rss0 = hk_test_statm_bytes(1), vsz0 = hk_test_statm_bytes(0);
    size_t live = 0, peak_live = 0, peak_rss = rss0, peak_vsz = vsz0;
    for (unsigned t = 0; t < steps; t++) {
        unsigned k = (unsigned)(rng() % slots);
        if (p[k]) {
            if (p[k][0] != (unsigned char)k || p[k][len[k] - 1] != (unsigned char)k) {
                hk_test_fail(__FILE__, __LINE__, "%s: block of %zu bytes overwritten", what,
                             len[k]);
                break;
            }
            hak_free(p[k]);
            live -= len[k];
            p[k] = NULL;
        }
        size_t n = next_size();
        p[k] = hak_malloc(n);
        if (p[k] == NULL) {
            hk_test_fail(__FILE__, __LINE__, "%s: malloc(%zu) failed", what, n);
            break;
        }
        memset(p[k], (unsigned char)k, n);
        len[k] = n;
        live += n;
        if (live > peak_live) peak_live = live;
        if (t % 256 == 0) {
            size_t r = hk_test_statm_bytes(1), v = hk_test_statm_bytes(0);
            if (r > peak_rss) peak_rss = r;
            if (v > peak_vsz) peak_vsz = v;
        }
    }
    for (unsigned k = 0; k < slots; k++) hak_free(p[k]);
    hak_free(p);
    hak_free(len);
    hk_test_log("%s: peak live %zu KiB, resident +%zu KiB, address space +%zu KiB", what,
                peak_live >> 10, hk_test_growth(peak_rss, rss0) >> 10, hk_test_growth(peak_vsz, vsz0) >> 10);
    EXPECT_LE_U(hk_test_growth(peak_vsz, vsz0), 4 * peak_live + 128 * MiB,
                "address space grows far beyond the live bytes");
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    EXPECT_LE_U(hk_test_growth(peak_rss, rss0), 2 * peak_live + 48 * MiB,
                "resident size grows far beyond the live bytes");
}

TEST(fragmentation_large_runs_are_reused) {
    churn(large_size, 64, (HK_TSAN ? 1500 : 6000) * hk_test_scale(), "large churn");
}

TEST(fragmentation_mixed_tiers_are_reused) {
    churn(mixed_size, 1024, (HK_TSAN ? 15000 : 60000) * hk_test_scale(), "mixed churn");
}

/* Phases: fill with one class, free it all, fill with another class. The
 * second phase must reuse the first one's pages, not add to them. */
TEST(fragmentation_pages_move_between_classes) {
    static const size_t phase_size[] = { 48, 2000, 24 * KiB, 100 * KiB, 640, 8000 };
    enum { TOTAL = 48 };  /* MiB per phase */
    size_t rss0 = hk_test_statm_bytes(1), peak = rss0;
    for (size_t ph = 0; ph < sizeof phase_size / sizeof phase_size[0]; ph++) {
        size_t n = phase_size[ph], count = TOTAL * MiB / n;
        void **p = hak_malloc(count * sizeof *p);
        REQUIRE_NOT_NULL(p, "bookkeeping");
        for (size_t i = 0; i < count; i++) {
            p[i] = hak_malloc(n);
            REQUIRE_NOT_NULL(p[i], "malloc");
            memset(p[i], 1, n);
        }
        size_t r = hk_test_statm_bytes(1);
        if (r > peak) peak = r;
        for (size_t i = 0; i < count; i++) hak_free(p[i]);
        hak_free(p);
        (void)hak_ctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    }
    hk_test_log("6 phases of %d MiB: resident %zu -> peak %zu KiB", TOTAL, rss0 >> 10,
                peak >> 10);
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    /* Without reuse across classes the phases add up to ~288 MiB. */
    EXPECT_LE_U(hk_test_growth(peak, rss0), 3 * TOTAL * MiB,
                "pages freed by one size class are not reused by another");
}

TEST_MAIN()
