/*
 * The core's hooks: work of the layers above that runs from the core's
 * paths without the core naming any of them.  src/hakmem.c, the top of
 * the library, defines the tables (hk_upper, hk_periodic_work); the core
 * only calls through them.
 */
#include "core/core_internal.h"

/* Runs the core's own periodic job (the BigCache's overflow, a direct
 * call: one indirect call site with one target predicts well) and each
 * job of the layers above whose gate is on.  Called from one thread heap
 * slow path in HK_TICK_EVERY, every huge allocation and a shared heap's
 * slow refill,
 * never under an allocator lock; each job is cheap when nothing is due. */
void hk_periodic_tick(hk_heap *heap) {
    if (hk_likely(hk_feature_on(HK_FEAT_BIGCACHE))) hk_bigcache_tick();
    hk_decay_tick();
    for (unsigned i = 0; i < hk_periodic_count; i++) {
        const hk_periodic *w = &hk_periodic_work[i];
        if (w->gate == HK_FEAT_COUNT || hk_unlikely(hk_feature_on(w->gate))) w->run(heap);
    }
}
