/* The shared-memory stats page (issue 4): placeholder until it lands. */
#include "hk_internal.h"

void hk_statspage_tick(void) {}
