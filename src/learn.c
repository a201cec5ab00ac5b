/* The learner (learning mode): placeholder until it lands. */
#include "hk_internal.h"

void hk_learn_tick(hk_heap *heap) { (void)heap; }
