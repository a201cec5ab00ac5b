/*
 * The flag behind hk_lock (base.h): set while the forking thread holds
 * every allocator lock (core/fork.c), so that its own allocations in
 * between skip them.  Here, at the bottom, because every layer's locks go
 * through hk_lock.
 */
#include "base/base.h"

_Thread_local bool hk_tls_holds_all_locks;
