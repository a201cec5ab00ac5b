/*
 * Size classes: 8 B (class 0, kept so that class numbers stay stable but
 * never handed out: every block is 16-byte aligned, glibc's guarantee on
 * x86-64, so requests of 0..16 bytes get class 1), then 16..128 by 16, then four per doubling up to 1 MiB
 * (class size (4 + k) << (b - 2) for the doubling [2^b, 2^(b+1)]), so the
 * internal fragmentation is at most 25% and every class from 16 B up is a
 * multiple of 16.  Classes 0..20 are tiny, 21..40 mid, 41..60 large.
 *
 * Page spans: a tiny page is one 64 KiB slice; a mid page holds at least 8
 * blocks; a large page holds one block (the rest of its last slice is
 * never touched, so it costs address space, not memory).
 */
#include "base/base.h"

/* hk_class_small[(size + 7) >> 3] for size <= 1024 (generated, checked by
 * test_sizeclass against the formula). */
const uint8_t hk_class_small[129] = {
    1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8,
    8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12,
    12, 13, 13, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14, 14, 14, 14,
    14, 15, 15, 15, 15, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16, 16,
    16, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17,
    17, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18,
    18, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19,
    19, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
    20,
};

/* Class sizes and page spans (generated from the rules above; test_sizeclass
 * checks them against the formula).  Constant, so they hold before init. */
const uint32_t hk_class_size[HK_NCLASSES] = {
    8, 16, 32, 48, 64, 80, 96, 112,
    128, 160, 192, 224, 256, 320, 384, 448,
    512, 640, 768, 896, 1024, 1280, 1536, 1792,
    2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168,
    8192, 10240, 12288, 14336, 16384, 20480, 24576, 28672,
    32768, 40960, 49152, 57344, 65536, 81920, 98304, 114688,
    131072, 163840, 196608, 229376, 262144, 327680, 393216, 458752,
    524288, 655360, 786432, 917504, 1048576,
};

const uint8_t hk_class_slices[HK_NCLASSES] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 2, 2, 2, 2, 3, 3, 4, 4, 1, 1, 1, 1, 2, 2, 2,
    2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12, 14, 16,
};

/* hk_class_divmagic[c] = 2^64 / size + 1: an offset n (< 2^32) is a
 * multiple of the class size iff n * magic (mod 2^64) <= magic - 1, a
 * multiplication instead of a division on free's block-boundary check. */
const uint64_t hk_class_divmagic[HK_NCLASSES] = {
    UINT64_C(0x2000000000000000),
    UINT64_C(0x1000000000000000),
    UINT64_C(0x0800000000000000),
    UINT64_C(0x0555555555555556),
    UINT64_C(0x0400000000000000),
    UINT64_C(0x0333333333333334),
    UINT64_C(0x02aaaaaaaaaaaaab),
    UINT64_C(0x024924924924924a),
    UINT64_C(0x0200000000000000),
    UINT64_C(0x019999999999999a),
    UINT64_C(0x0155555555555556),
    UINT64_C(0x0124924924924925),
    UINT64_C(0x0100000000000000),
    UINT64_C(0x00cccccccccccccd),
    UINT64_C(0x00aaaaaaaaaaaaab),
    UINT64_C(0x0092492492492493),
    UINT64_C(0x0080000000000000),
    UINT64_C(0x0066666666666667),
    UINT64_C(0x0055555555555556),
    UINT64_C(0x004924924924924a),
    UINT64_C(0x0040000000000000),
    UINT64_C(0x0033333333333334),
    UINT64_C(0x002aaaaaaaaaaaab),
    UINT64_C(0x0024924924924925),
    UINT64_C(0x0020000000000000),
    UINT64_C(0x001999999999999a),
    UINT64_C(0x0015555555555556),
    UINT64_C(0x0012492492492493),
    UINT64_C(0x0010000000000000),
    UINT64_C(0x000ccccccccccccd),
    UINT64_C(0x000aaaaaaaaaaaab),
    UINT64_C(0x000924924924924a),
    UINT64_C(0x0008000000000000),
    UINT64_C(0x0006666666666667),
    UINT64_C(0x0005555555555556),
    UINT64_C(0x0004924924924925),
    UINT64_C(0x0004000000000000),
    UINT64_C(0x0003333333333334),
    UINT64_C(0x0002aaaaaaaaaaab),
    UINT64_C(0x0002492492492493),
    UINT64_C(0x0002000000000000),
    UINT64_C(0x000199999999999a),
    UINT64_C(0x0001555555555556),
    UINT64_C(0x000124924924924a),
    UINT64_C(0x0001000000000000),
    UINT64_C(0x0000cccccccccccd),
    UINT64_C(0x0000aaaaaaaaaaab),
    UINT64_C(0x0000924924924925),
    UINT64_C(0x0000800000000000),
    UINT64_C(0x0000666666666667),
    UINT64_C(0x0000555555555556),
    UINT64_C(0x0000492492492493),
    UINT64_C(0x0000400000000000),
    UINT64_C(0x0000333333333334),
    UINT64_C(0x00002aaaaaaaaaab),
    UINT64_C(0x000024924924924a),
    UINT64_C(0x0000200000000000),
    UINT64_C(0x000019999999999a),
    UINT64_C(0x0000155555555556),
    UINT64_C(0x0000124924924925),
    UINT64_C(0x0000100000000000),
};

unsigned hk_size_class_slow(size_t size) {
    if (size <= HK_TINY_MAX) return hk_class_small[(size + 7) >> 3];
    return (unsigned)hk_size_class_mid(size);
}

static uint32_t class_size_formula(unsigned c) {
    if (c == 0) return 8;
    if (c <= 8) return c * 16;
    unsigned b = 7 + (c - 9) / 4, sub = (c - 9) % 4;
    return (uint32_t)(5 + sub) << (b - 2);
}

/* Checks the tables against the rules; returns the first bad class or -1. */
int hk_sizeclass_check(void) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        uint32_t s = class_size_formula(c);
        size_t slices = s <= HK_TINY_MAX  ? 1
                      : s <= HK_MID_MAX   ? (8 * (size_t)s + HK_SLICE_SIZE - 1) / HK_SLICE_SIZE
                                          : (s + HK_SLICE_SIZE - 1) / HK_SLICE_SIZE;
        if (hk_class_size[c] != s || hk_class_slices[c] != slices) return (int)c;
        unsigned want = c == 0 ? 1 : c; /* class 0 is never handed out */
        if (hk_size_class_slow(s) != want || hk_size_class_slow(s - 1) > want) return (int)c;
        if (hk_class_divmagic[c] != UINT64_MAX / s + 1) return (int)c;
    }
    return -1;
}
