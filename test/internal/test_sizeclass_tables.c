/*
 * White-box: the size-class tables (base/sizeclass.c) against their rules,
 * written here independently: class 0 is 8 B and never handed out, then
 * 16..128 by 16, then four classes per doubling up to 1 MiB; a tiny page
 * is one slice, a mid page holds at least 8 blocks, a large page one;
 * divmagic is 2^64 / size + 1, and "in_page * divmagic <= divmagic - 1"
 * (heap.c's block-boundary test) holds exactly at multiples of the size.
 */
#include "base/base.h"
#include "harness.h"

static uint32_t want_size[HK_NCLASSES];

static void build_sizes(void) {
    unsigned c = 0;
    want_size[c++] = 8;
    for (uint32_t s = 16; s <= 128; s += 16) want_size[c++] = s;
    for (unsigned b = 7; c < HK_NCLASSES; b++)
        for (uint32_t k = 1; k <= 4 && c < HK_NCLASSES; k++)
            want_size[c++] = ((uint32_t)1 << b) / 4 * (4 + k);
}

TEST(sizeclass_check_passes) {
    EXPECT_EQ_I(hk_sizeclass_check(), -1, "tables agree with the library's own formula");
}

TEST(sizeclass_sizes_follow_the_rule) {
    build_sizes();
    EXPECT_EQ_U(want_size[HK_NCLASSES - 1], HK_LARGE_MAX, "last class is 1 MiB");
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        REQUIRE_EQ_U(hk_class_size[c], want_size[c], "class size");
        if (c >= 1) REQUIRE_EQ_U(hk_class_size[c] % 16, 0, "16-byte multiple");
        if (c >= 1) REQUIRE_LT_U(hk_class_size[c - 1], hk_class_size[c], "increasing");
    }
    EXPECT_EQ_U(hk_class_size[HK_TINY_NCLASSES - 1], HK_TINY_MAX, "last tiny class 1 KiB");
    EXPECT_EQ_U(hk_class_size[HK_TINY_NCLASSES + HK_MID_NCLASSES - 1], HK_MID_MAX,
                "last mid class 32 KiB");
}

TEST(sizeclass_slices_follow_the_rule) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        size_t s = hk_class_size[c], n = hk_class_slices[c], span = n * HK_SLICE_SIZE;
        if (c < HK_TINY_NCLASSES) {
            REQUIRE_EQ_U(n, 1, "a tiny page is one slice");
        } else if (c < HK_TINY_NCLASSES + HK_MID_NCLASSES) {
            REQUIRE_GE_U(span / s, 8, "a mid page holds 8 blocks");
            REQUIRE_LT_U((n - 1) * HK_SLICE_SIZE / s, 8, "and is the smallest that does");
        } else {
            REQUIRE_GE_U(span, s, "a large page holds its block");
            REQUIRE_LT_U((n - 1) * HK_SLICE_SIZE, s, "and no more slices than that");
        }
        REQUIRE_LE_U(n, HK_SLICES - 1, "fits a segment");
    }
}

TEST(sizeclass_divmagic_formula) {
    for (unsigned c = 0; c < HK_NCLASSES; c++)
        REQUIRE_EQ_U(hk_class_divmagic[c], UINT64_MAX / hk_class_size[c] + 1, "2^64/size + 1");
}

/* The boundary test for every offset of a page of each class, and of a
 * whole segment (a stray pointer may lie anywhere in one). */
TEST(sizeclass_divmagic_boundary_every_offset) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        uint64_t magic = hk_class_divmagic[c], limit = magic - 1, s = hk_class_size[c];
        uint64_t next = 0; /* next multiple of s */
        for (uint64_t n = 0; n < HK_SEG_SIZE; n++) {
            bool at_block = n * magic <= limit;
            if (n == next) {
                next += s;
                if (!at_block) { EXPECT_TRUE(at_block, "a block start passes"); break; }
            } else if (at_block) {
                EXPECT_TRUE(!at_block, "an inner offset fails");
                hk_test_log("class %u size %llu offset %llu", c, (unsigned long long)s,
                            (unsigned long long)n);
                break;
            }
        }
    }
}

/* Every size up to 1 MiB gets the smallest class that holds it, never 0. */
TEST(sizeclass_every_size_smallest_fit) {
    for (size_t size = 0; size <= HK_LARGE_MAX; size++) {
        unsigned c = hk_size_class(size);
        REQUIRE_GE_U(c, 1, "class 0 is never handed out");
        REQUIRE_LT_U(c, HK_NCLASSES, "a class");
        if (hk_class_size[c] < size || (c > 1 && hk_class_size[c - 1] >= size)) {
            hk_test_log("size %zu -> class %u (%u B)", size, c, hk_class_size[c]);
            REQUIRE_TRUE(false, "smallest class that fits");
        }
    }
    EXPECT_EQ_U(hk_size_class(0), 1, "0 -> 16 B");
    EXPECT_EQ_U(hk_size_class(16), 1, "16 -> 16 B");
    EXPECT_EQ_U(hk_size_class(17), 2, "17 -> 32 B");
    EXPECT_EQ_U(hk_size_class(HK_TINY_MAX + 1), HK_TINY_NCLASSES, "1025 -> first mid class");
    EXPECT_EQ_U(hk_size_class(HK_LARGE_MAX), HK_NCLASSES - 1, "1 MiB -> last class");
}

TEST(sizeclass_small_table_matches_slow_path) {
    for (size_t size = 0; size <= HK_TINY_MAX; size++) {
        unsigned c = hk_class_small[(size + 7) >> 3];
        REQUIRE_EQ_U(c, hk_size_class(size), "table");
    }
    for (size_t size = HK_TINY_MAX + 1; size <= HK_LARGE_MAX; size += 7)
        REQUIRE_EQ_U(hk_size_class_slow(size), hk_size_class(size), "slow path");
}

TEST_MAIN()
