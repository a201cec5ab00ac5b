/* Purging: after freeing ~64 MiB of 4..64 KiB blocks, flushing the thread
 * cache and purging every arena gives at least half of it back to the OS
 * (resident size drops). */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

enum { MAXBLOCKS = 8192 };

/* Allocates about `total` bytes in blocks of 4..64 KiB, every page
 * written; returns the count. */
static int fill_blocks(void **p, size_t total) {
    size_t got = 0;
    int n = 0;
    uint64_t rs = 12345;
    while (got < total && n < MAXBLOCKS) {
        rs = rs * 6364136223846793005ull + 1442695040888963407ull;
        size_t s = 4 * KiB + (size_t)(rs >> 33) % (60 * KiB + 1);
        p[n] = hak_malloc(s);
        if (p[n] == NULL) break;
        memset(p[n], 0x6B, s);
        got += s;
        n++;
    }
    return n;
}

/* hk_test_purge_all, a failure reported; 0 when all worked. */
static int purge_all(void) {
    const char *failed;
    int rc = hk_test_purge_all(&failed);
    if (rc != 0) hk_test_fail(__FILE__, __LINE__, "hak_ctl(\"%s\") = %d", failed, rc);
    return rc;
}

TEST(purge_lowers_rss) {
    void **p = hak_calloc(MAXBLOCKS, sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    size_t rss0 = hk_test_rss_bytes();
    int n = fill_blocks(p, 64 * MiB);
    size_t rss1 = hk_test_rss_bytes();
    for (int i = 0; i < n; i++) hak_free(p[i]);
    int rc = purge_all();
    size_t rss2 = hk_test_rss_bytes();
    hak_free(p);
    hk_test_log("resident: %zu KiB before, %zu after filling, %zu after free + purge",
                rss0 >> 10, rss1 >> 10, rss2 >> 10);
    REQUIRE_EQ_U(rc, 0, "purge controls");
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    REQUIRE_GT_U(rss1, rss0 + 48 * MiB, "filling 64 MiB raised the resident size");
    size_t added = rss1 - rss0;
    size_t dropped = rss1 > rss2 ? rss1 - rss2 : 0;
    EXPECT_GE_U(dropped, added / 2, "purge gave back less than half of the freed memory");
}

/* Memory freed by a thread that has exited is purged too. */
static void *fill_and_free(void *arg) {
    void **p = arg;
    int n = fill_blocks(p, 48 * MiB);
    for (int i = 0; i < n; i++) hak_free(p[i]);
    return (void *)(intptr_t)n;
}

TEST(purge_after_thread_exit) {
    void **p = hak_calloc(MAXBLOCKS, sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    size_t rss0 = hk_test_rss_bytes();
    pthread_t t;
    REQUIRE_EQ_U(pthread_create(&t, NULL, fill_and_free, p), 0, "pthread_create");
    void *rv;
    pthread_join(t, &rv);
    size_t rss1 = hk_test_rss_bytes();
    int rc = purge_all();
    size_t rss2 = hk_test_rss_bytes();
    hak_free(p);
    hk_test_log("resident: %zu KiB before, %zu after the thread, %zu after purge",
                rss0 >> 10, rss1 >> 10, rss2 >> 10);
    REQUIRE_EQ_U(rc, 0, "purge controls");
    SKIP_IF(HK_TSAN, "resident size is not meaningful under ThreadSanitizer");
    /* 48 MiB were touched by the thread; whatever is still resident after
     * its exit must mostly go with the purge. */
    EXPECT_LE_U(rss2, rss0 + 24 * MiB, "memory of an exited thread was not purged");
}

/* Purging leaves the allocator working: the same memory can be reused. */
TEST(purge_then_reuse) {
    void **p = hak_calloc(MAXBLOCKS, sizeof *p);
    REQUIRE_NOT_NULL(p, "bookkeeping");
    for (int round = 0; round < 3; round++) {
        int n = fill_blocks(p, 16 * MiB);
        REQUIRE_GT_I(n, 100, "fill");
        for (int i = 0; i < n; i++) {
            unsigned char *c = p[i];
            if (c[0] != 0x6B || c[4095] != 0x6B) {
                hk_test_fail(__FILE__, __LINE__, "block %d lost its contents", i);
                break;
            }
        }
        for (int i = 0; i < n; i++) hak_free(p[i]);
        if (purge_all() != 0) break;
        /* Small blocks after a purge are usable and zero-able. */
        void *q = hak_calloc(1000, 64);
        REQUIRE_NOT_NULL(q, "calloc after purge");
        for (size_t k = 0; k < 64000; k++)
            if (((unsigned char *)q)[k] != 0) {
                hk_test_fail(__FILE__, __LINE__, "calloc after purge not zero at %zu", k);
                break;
            }
        hak_free(q);
    }
    hak_free(p);
}

TEST_MAIN()
