/*
 * The learner layer offers: its tick (run from the core's slow paths
 * through the periodic hooks), its stop, and getters for the learn.* rows.
 */
#ifndef HK_LEARN_H
#define HK_LEARN_H

#include "core/core.h"

/* Everything declared below lives in this library: the compiler may address
 * it directly instead of through the GOT (the hot globals: one instruction
 * less per use on the fast paths). */
#pragma GCC visibility push(hidden)
/* ---- learn.c ---- */
/* Called from the heap and huge slow paths, never under a lock, when the
 * learner feature is on (the callers test it): runs a round at a bounded
 * rate.  heap may be NULL. */
void hk_learn_tick(hk_heap *heap);
void hk_learn_stop(void);   /* the feature went off: the knobs go back */
#define HK_LEARN_BIGCACHE HK_NCLASSES       /* knobs: 0..60 tcache_max per class */
#define HK_LEARN_DECAY (HK_NCLASSES + 1)
#define HK_LEARN_NKNOBS (HK_NCLASSES + 2)
uint64_t hk_learn_value(unsigned knob);     /* the setting in force */
uint64_t hk_learn_knob_changes(unsigned knob);
const char *hk_learn_scores(unsigned knob); /* these two: a thread-local buffer */
const char *hk_learn_conf(unsigned knob);   /* "" at the built-in default */
bool hk_learn_frozen(void);
void hk_learn_set_frozen(bool on);
uint64_t hk_learn_rounds(void);
uint64_t hk_learn_changes(void);


#pragma GCC visibility pop

#endif
