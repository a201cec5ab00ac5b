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

uint32_t hk_class_size[HK_NCLASSES];
uint8_t hk_class_slices[HK_NCLASSES];

static uint32_t class_size_formula(unsigned c) {
    if (c == 0) return 8;
    if (c <= 8) return c * 16;
    unsigned b = 7 + (c - 9) / 4, sub = (c - 9) % 4;
    return (uint32_t)(5 + sub) << (b - 2);
}

unsigned hk_size_class_slow(size_t size) {
    if (size <= HK_TINY_MAX) return hk_class_small[(size + 7) >> 3];
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    return 9 + (b - 7) * 4 + (unsigned)((size - 1) >> (b - 2)) - 4;
}

void hk_sizeclass_init(void) {
    for (unsigned c = 0; c < HK_NCLASSES; c++) {
        uint32_t s = class_size_formula(c);
        size_t slices;
        if (s <= HK_TINY_MAX)
            slices = 1;
        else if (s <= HK_MID_MAX)
            slices = (8 * (size_t)s + HK_SLICE_SIZE - 1) / HK_SLICE_SIZE;
        else
            slices = (s + HK_SLICE_SIZE - 1) / HK_SLICE_SIZE;
        hk_class_size[c] = s;
        hk_class_slices[c] = (uint8_t)slices;
    }
}
