/*
 * fork() and the allocator's locks.
 *
 * The child of a multi-threaded process has only the forking thread, so
 * every allocator lock must be free and every structure whole in it: the
 * prepare handler takes all the locks and the child handler re-creates
 * them.  Three rules keep that from deadlocking:
 *
 *  1. libc's order.  glibc's fork() runs the prepare handlers, then takes
 *     its stdio list lock, then its own malloc's locks.  A thread running
 *     fflush(NULL) holds that list lock and waits for a FILE whose owner
 *     may be inside malloc: an allocator that holds its locks while fork
 *     waits for the list lock closes a cycle.  So prepare takes the stdio
 *     list lock first (_IO_list_lock is recursive: fork's own take of it
 *     then passes), and the allocator's locks after it, as glibc's malloc
 *     does.  The parent handler releases the extra count; in the child
 *     the list lock is reset (one thread, nothing to wait for).
 *  2. No signal while the locks are held.  Prepare blocks every signal of
 *     the forking thread until its parent or child handler, so a handler
 *     that forks (or allocates) cannot run in this thread while it holds
 *     the locks.
 *  3. A process that never had a second thread takes no lock (glibc's
 *     rule): nothing can be mid-way in another thread, and a signal
 *     handler that forks while this thread is inside malloc or fork
 *     itself finds no lock of its own in the way.
 *
 * While the forking thread holds every lock, its own allocations (other
 * atfork handlers that malloc, run between ours) skip the locks through
 * hk_tls_holds_all_locks instead of waiting for themselves.
 *
 * Lock order (README): init_lock -> the arenas' shared_locks ->
 * hk_heaps_lock -> the arenas' locks -> huge_lock -> meta_lock.
 */
#include <signal.h>

#include "core/core_internal.h"


/* What prepare did, for the handler that follows it in the same thread
 * (and, copied by fork, in the child). */
static _Thread_local bool tls_fork_locked, tls_fork_stdio;
static _Thread_local sigset_t tls_fork_mask;

/* glibc's stdio list lock; weak: absent from other C libraries. */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

static void lock_all(void) {
    hk_init_lock_for_fork();
    hk_arenas_lock_shared_all();
    pthread_mutex_lock(&hk_heaps_lock);
    hk_arenas_lock_all();
    hk_huge_lock();
    hk_meta_lock();
}

static void unlock_all(void) {
    hk_meta_unlock();
    hk_huge_unlock();
    hk_arenas_unlock_all();
    pthread_mutex_unlock(&hk_heaps_lock);
    hk_arenas_unlock_shared_all();
    hk_init_unlock_for_fork();
}

static void fork_prepare(void) {
    tls_fork_locked = false;
    tls_fork_stdio = false;
    if (hk_os_single_threaded()) return;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &tls_fork_mask);
    if (_IO_list_lock != NULL && _IO_list_unlock != NULL && _IO_list_resetlock != NULL) {
        _IO_list_lock();
        tls_fork_stdio = true;
    }
    lock_all();
    hk_tls_holds_all_locks = true;
    tls_fork_locked = true;
}

static void fork_parent(void) {
    if (!tls_fork_locked) return;
    tls_fork_locked = false;
    hk_tls_holds_all_locks = false;
    unlock_all();
    if (tls_fork_stdio) _IO_list_unlock();
    pthread_sigmask(SIG_SETMASK, &tls_fork_mask, NULL);
}

/* The child has only the forking thread: the locks it took are made anew.
 * The heaps of the other threads stay allocated but unused (their blocks
 * still free correctly, through the remote path). */
static void fork_child(void) {
    if (tls_fork_locked) {
        tls_fork_locked = false;
        hk_tls_holds_all_locks = false;
        hk_meta_reinit_child();
        hk_huge_reinit_child();
        hk_arenas_reinit_child();
        pthread_mutex_init(&hk_heaps_lock, NULL);
        hk_init_reinit_child();
        if (tls_fork_stdio) _IO_list_resetlock();
        pthread_sigmask(SIG_SETMASK, &tls_fork_mask, NULL);
    }
    hk_decay_fork_child();
    hk_upper.fork_child();
    hk_debug_fork_child();
}

/* Called by the library's constructor and by init, whichever comes first;
 * the handlers are registered once.  The constructor is the one that
 * counts: init runs on the first malloc, which can happen inside glibc's
 * pthread_atfork (its handler list grows with malloc, under its atfork
 * lock, from the 49th handler on) or inside a fork handler (run under
 * that lock), where registering would wait for that lock forever.  The
 * handlers work before init: the locks are static and the arena loops
 * read narenas under init_lock (0 until init). */
void hk_fork_install(void) {
    static _Atomic bool installed;
    if (hk_exchange_acq_rel(&installed, true)) return;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

__attribute__((constructor)) static void fork_ctor(void) { hk_fork_install(); }
