/* The stats page's sequence lock under fire: one thread refreshes the page
 * as fast as it can (stats_page.refresh in a loop) while threads allocate,
 * and the reader takes 100,000 snapshots (times HAKMEM_TEST_SCALE).  Every
 * snapshot must be whole: its checksum (written under the lock, over the
 * value area) must match, and the refresh count in the header must equal
 * the stats_page.refreshes leaf (written by the same refresh), which a copy
 * mixing two refreshes would break; per-class nmalloc never goes backwards
 * between snapshots.  A control copies without the lock and counts how
 * often the checksum catches the tear. */
#include "harness.h"
#include "hakctl_page.h"
#include <hakmem/hakmem.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic bool stop;
static _Atomic uint64_t writer_refreshes;

static void *writer(void *arg) {
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        if (hak_ctl("stats_page.refresh", NULL, NULL, NULL, 0) == 0)
            atomic_fetch_add_explicit(&writer_refreshes, 1, memory_order_relaxed);
    return NULL;
}

static void *churn(void *arg) {
    void *p[128];
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < 128; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = hak_malloc(8 + (seed >> 16) % 2000);
        }
        for (int i = 0; i < 128; i++) hak_free(p[i]);
    }
    return NULL;
}

typedef struct watched { hkp_entry e; uint64_t last; } watched;

TEST(statspage_torn_reads_never_seen) {
    bool on = true;
    REQUIRE_EQ_U(hak_ctl("stats_page.enabled", NULL, NULL, &on, sizeof on), 0, "page on");
    REQUIRE_EQ_U(hak_ctl("stats_page.refresh", NULL, NULL, NULL, 0), 0, "page created");
    hkp_page p;
    char err[256];
    REQUIRE_EQ_U(hkp_open(&p, getpid(), false, err, sizeof err), HKP_OK, err);
    hkp_entry refreshes;
    REQUIRE_TRUE(hkp_find(&p, "stats_page.refreshes", &refreshes), "stats_page.refreshes on the page");
    watched w[8];
    for (int c = 0; c < 8; c++) {
        char name[64];
        snprintf(name, sizeof name, "tiny.class.%d.stats.nmalloc", c);
        REQUIRE_TRUE(hkp_find(&p, name, &w[c].e), name);
        w[c].last = 0;
    }

    pthread_t wt, ct[2];
    atomic_store(&stop, false);
    REQUIRE_EQ_U(pthread_create(&wt, NULL, writer, NULL), 0, "writer");
    for (int i = 0; i < 2; i++) pthread_create(&ct[i], NULL, churn, (void *)(uintptr_t)(i + 1));

    unsigned long n = 100000ul * hk_test_scale(), bad = 0, mismatched = 0, backwards = 0, distinct = 0;
    uint64_t last_refresh = 0;
    for (unsigned long i = 0; i < n && bad < 10; i++) {
        if (hkp_snapshot(&p, 2000, err, sizeof err) != HKP_OK) {
            if (bad++ == 0) hk_test_log("snapshot %lu: %s", i, err);
            continue;
        }
        hkp_value v;
        hkp_value_of(&p, &refreshes, &v);
        if (v.rc != 0 || v.u != p.nrefresh) {
            if (mismatched++ == 0)
                hk_test_log("snapshot %lu: header says refresh %llu, leaf %llu", i,
                            (unsigned long long)p.nrefresh, (unsigned long long)v.u);
        }
        distinct += p.nrefresh != last_refresh;
        last_refresh = p.nrefresh;
        for (int c = 0; c < 8; c++) {
            hkp_value_of(&p, &w[c].e, &v);
            if (v.u < w[c].last) backwards++;
            w[c].last = v.u;
        }
    }

    /* Control: the same copy without the lock, while the writer runs. */
    unsigned long torn = 0, tries = 20000ul * hk_test_scale();
    uint64_t *copy = malloc(p.hdr.vals_size);
    const _Atomic uint64_t *src = (const _Atomic uint64_t *)(const void *)(p.map + p.hdr.vals_off);
    const _Atomic uint64_t *sum = (const _Atomic uint64_t *)(const void *)(p.map + offsetof(hk_sp_header, checksum));
    for (unsigned long i = 0; copy != NULL && i < tries; i++) {
        uint64_t want = atomic_load_explicit(sum, memory_order_relaxed), h = HK_SP_HASH_SEED;
        for (size_t k = 0; k < p.hdr.vals_size / 8; k++) copy[k] = atomic_load_explicit(&src[k], memory_order_relaxed);
        for (size_t k = 0; k < p.hdr.vals_size / 8; k++) h = hk_sp_hash(h, copy[k]);
        torn += h != want;
    }
    free(copy);

    atomic_store(&stop, true);
    pthread_join(wt, NULL);
    for (int i = 0; i < 2; i++) pthread_join(ct[i], NULL);
    hk_test_log("%lu snapshots, %llu refreshes by the writer, %lu distinct refreshes seen, %llu retries; "
                "without the lock %lu of %lu copies were torn",
                n, (unsigned long long)atomic_load(&writer_refreshes), distinct,
                (unsigned long long)p.retries, torn, tries);
    EXPECT_EQ_U(bad, 0, "every snapshot consistent (sequence lock and checksum)");
    EXPECT_EQ_U(mismatched, 0, "header and values from the same refresh");
    EXPECT_EQ_U(backwards, 0, "counters never go backwards");
    EXPECT_GT_U(distinct, 20, "the writer refreshed while the reader read");
    hkp_close(&p);
}

TEST_MAIN()
