/*
 * Alternate signal stacks, so that a thread whose stack overflowed still
 * gets its crash report (crash.c): without one the kernel cannot push the
 * signal frame and the thread dies silently.
 *
 * Once crash.c has installed its handlers, every thread that gets a heap
 * runs its signals on a stack kept with that heap: mapped (with a guard
 * page below) by the first thread to take the heap, reused by the threads
 * that take it from the heap pool after it.  Invariant: a heap's stack is
 * installed on at most one thread -- the thread disables it before its heap
 * goes back to the pool (hk_altstack_thread_exit, from thread_exit).  A
 * thread that already has an alternate stack of its own keeps it.
 * Cost per thread: one sigaltstack(2) at its first allocation and one when
 * it exits; the first user of a heap also maps the stack.
 */
#include <signal.h>
#include <sys/mman.h>

#include "debug/debug.h"

#define ALTSTACK_SIZE ((size_t)64 << 10)

static _Atomic bool altstacks_wanted;      /* crash handlers are installed */
static _Thread_local void *tls_altstack;   /* the stack hakmem gave this thread */

static size_t altstack_size(void) {
    return (size_t)SIGSTKSZ > ALTSTACK_SIZE ? (size_t)SIGSTKSZ : ALTSTACK_SIZE;
}

/* A stack with a PROT_NONE guard page below it, or NULL. */
static void *altstack_map(void) {
    uint8_t *m = mmap(NULL, altstack_size() + HK_OS_PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return NULL;
    mprotect(m, HK_OS_PAGE, PROT_NONE);
    return m + HK_OS_PAGE;
}

void hk_altstack_enable(void) { hk_store_release(&altstacks_wanted, true); }

void hk_altstack_thread_start(void **stack) {
    if (!hk_load_acquire(&altstacks_wanted) || tls_altstack != NULL) return;
    if (*stack == NULL && (*stack = altstack_map()) == NULL) return;
    stack_t ss = {.ss_sp = *stack, .ss_size = altstack_size(), .ss_flags = 0};
    stack_t old;
    if (sigaltstack(&ss, &old) != 0) return;
    if (!(old.ss_flags & SS_DISABLE)) { /* the thread had one: its own wins */
        sigaltstack(&old, NULL);
        return;
    }
    tls_altstack = *stack;
}

void hk_altstack_thread_exit(void) {
    if (tls_altstack == NULL) return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    tls_altstack = NULL;
}
