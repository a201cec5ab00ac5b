/*
 * The debug layer offers what runs when the program went wrong: crash
 * reports on SIGSEGV, SIGBUS and SIGABRT, and the alternate signal stacks
 * they run on.
 */
#ifndef HK_DEBUG_H
#define HK_DEBUG_H

#include "core/core.h"

/* Everything declared below lives in this library: the compiler may address
 * it directly instead of through the GOT (the hot globals: one instruction
 * less per use on the fast paths). */
#pragma GCC visibility push(hidden)
/* ---- crash.c ---- */
/* At init when crash_report is on: SIGSEGV, SIGBUS and SIGABRT handlers
 * (where the disposition is still the default) that write a short report
 * and re-raise. */
void hk_crash_install(void);
/* altstack.c: alternate signal stacks for the crash handlers */
void hk_altstack_enable(void);               /* the handlers are installed */
void hk_altstack_thread_start(void **stack); /* *stack: the heap's, mapped if NULL */
void hk_altstack_thread_exit(void);          /* before the thread's heap is pooled */


#pragma GCC visibility pop

#endif
