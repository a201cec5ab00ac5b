/*
 * Size classes: 8 B, then 16..128 by 16, then four per doubling up to 1 MiB
 * (class size (4 + k) << (b - 2) for the doubling [2^b, 2^(b+1)]), so the
 * internal fragmentation is at most 25% and every class from 16 B up is a
 * multiple of 16.  Classes 0..20 are tiny, 21..40 mid, 41..60 large.
 *
 * Page spans: a tiny page is one 64 KiB slice; a mid page holds at least 8
 * blocks; a large page holds one block (the rest of its last slice is
 * never touched, so it costs address space, not memory).
 */
#include "hk_internal.h"

/* hk_class_small[(size + 7) >> 3] for size <= 1024 (generated, checked by
 * test_sizeclass against the formula). */
const uint8_t hk_class_small[129] = {
    0, 0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8,
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

unsigned hk_size_class_slow(size_t size) {
    if (size <= HK_TINY_MAX) return hk_class_small[(size + 7) >> 3];
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    return 9 + (b - 7) * 4 + (unsigned)((size - 1) >> (b - 2)) - 4;
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
        if (hk_size_class_slow(s) != c || (c > 0 && hk_size_class_slow(s - 1) > c)) return (int)c;
    }
    return -1;
}
