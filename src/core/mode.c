/*
 * Modes and features at runtime.  hk_features[] is what the allocator
 * consults (each flag at one place on a slow path; no fast path reads
 * them): a thread notices a change at its next slow-path event.
 */
#include "core/core_internal.h"

_Atomic bool hk_features[HK_FEAT_COUNT];
_Atomic unsigned hk_mode_now;

void hk_mode_init(void) {
    for (unsigned f = 0; f < HK_FEAT_COUNT; f++) hk_store_relaxed(&hk_features[f], hk_opt.features[f]);
    hk_store_relaxed(&hk_mode_now, hk_opt.mode);
}

void hk_feature_set(enum hk_feature f, bool on) {
    bool was = atomic_exchange_explicit(&hk_features[f], on, memory_order_acq_rel);
    if (was && !on && f == HK_FEAT_BIGCACHE) hk_bigcache_purge();
    if (was && !on) hk_upper.feature_off(f);
}

int hk_mode_set(unsigned mode) {
    if (mode >= HK_MODE_COUNT) return EINVAL;
    const bool *preset = hk_mode_preset(mode);
    for (unsigned f = 0; f < HK_FEAT_COUNT; f++) hk_feature_set((enum hk_feature)f, preset[f]);
    hk_store_relaxed(&hk_mode_now, mode);
    return 0;
}
