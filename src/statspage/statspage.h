/*
 * The stats page layer offers: its tick (run from the core's slow paths
 * through the periodic hooks), its fork and exit hooks, and getters for
 * the stats_page.* rows (reached by the ctl layer through src/hakmem.c).
 */
#ifndef HK_STATSPAGE_LAYER_H
#define HK_STATSPAGE_LAYER_H

#include "ctl/ctl.h"

/* Everything declared below lives in this library: the compiler may address
 * it directly instead of through the GOT (the hot globals: one instruction
 * less per use on the fast paths). */
#pragma GCC visibility push(hidden)
/* ---- statspage.c ---- */
/* Called from slow paths, never with an allocator lock held: refreshes the
 * stats page when it is due (a cheap check when not). */
void hk_statspage_tick(void);
void hk_statspage_fini(void);          /* at exit: unlink the page */
void hk_statspage_fork_child(void);    /* forget the parent's page */
const char *hk_statspage_path(void);   /* the stats_page.* leaves */
unsigned hk_statspage_interval(void);
int hk_statspage_set_interval(unsigned ms);
uint64_t hk_statspage_refreshes(void);
uint64_t hk_statspage_commands(void);
bool hk_statspage_bg_running(void);
int hk_statspage_refresh_now(void);


#pragma GCC visibility pop

#endif
