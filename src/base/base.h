/*
 * The base layer offers: compiler helpers, request bounds, size classes,
 * allocation-free messages, the OS primitives, the segment map, options
 * (HAKMEM_CONF) and metadata memory.  It holds no allocator structure
 * and calls nothing above it.
 */
#ifndef HK_BASE_H
#define HK_BASE_H

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "base/hk_atomic.h"
#include <hk_config.h>
#include "base/base_types.h"

/* Everything declared below lives in this library: the compiler may address
 * it directly instead of through the GOT (the hot globals: one instruction
 * less per use on the fast paths). */
#pragma GCC visibility push(hidden)

#define hk_likely(x) __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define HK_FAST_PATH static inline __attribute__((always_inline))
#define HK_SLOW_PATH __attribute__((noinline, cold))
#define HK_INTERNAL __attribute__((visibility("hidden")))

#if HK_DEBUG
#define hk_assert(c) ((c) ? (void)0 : hk_assert_fail(#c, __FILE__, __LINE__))
#else
#define hk_assert(c) ((void)0)
#endif

static inline uintptr_t hk_align_up(uintptr_t x, uintptr_t a) {
    return (x + a - 1) & ~(a - 1);
}
/* ---- locks (fork.c keeps them across fork) ----
 * Every allocator lock is taken with hk_lock (or, a word lock,
 * hk_word_lock_acquire).  From fork's prepare handler
 * to its parent or child handler the forking thread holds all of them and
 * no other thread can be inside one: that thread's own allocations then
 * (another atfork handler that mallocs) skip them instead of waiting for
 * themselves. */
extern _Thread_local bool hk_tls_holds_all_locks;
static inline void hk_lock(pthread_mutex_t *m) {
    if (hk_likely(!hk_tls_holds_all_locks)) pthread_mutex_lock(m);
}
static inline void hk_unlock(pthread_mutex_t *m) {
    if (hk_likely(!hk_tls_holds_all_locks)) pthread_mutex_unlock(m);
}

/* A lock of one word for short sections taken on paths that must be cheap
 * (the heap profiler's tables): an uncontended acquire or release is one
 * atomic instruction, no call.  state: 0 free, 1 held, 2 held and a thread may
 * sleep on it (its release wakes one).  A waiter spins briefly, then sleeps
 * on the futex: a holder preempted on a busy machine costs the waiters no
 * CPU.  HK_WORD_LOCK_INIT (zero) is a free lock; a fork child whose parent's
 * prepare handler did not take it resets it (hk_word_lock_reset). */
typedef struct hk_word_lock {
    _Atomic uint32_t state;
} hk_word_lock;
#define HK_WORD_LOCK_INIT {0}
void hk_word_lock_wait(hk_word_lock *l);
void hk_word_lock_wake(hk_word_lock *l);
static inline void hk_word_lock_acquire(hk_word_lock *l) {
    uint32_t free_state = 0;
    if (hk_unlikely(hk_tls_holds_all_locks)) return;
    if (hk_unlikely(!atomic_compare_exchange_strong_explicit(&l->state, &free_state, 1, memory_order_acquire,
                                                             memory_order_relaxed)))
        hk_word_lock_wait(l);
}
/* A fork child's copy of a lock fork did not take: free again. */
static inline void hk_word_lock_reset(hk_word_lock *l) { atomic_store_explicit(&l->state, 0, memory_order_relaxed); }
static inline void hk_word_lock_release(hk_word_lock *l) {
    if (hk_unlikely(hk_tls_holds_all_locks)) return;
    if (hk_unlikely(atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)) hk_word_lock_wake(l);
}

static inline bool hk_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* The one bound on what a request may ask for: a size or an alignment
 * beyond 2^56 bytes (the x86-64 user address space, even with 5-level
 * paging) can never be served, so it fails with ENOMEM before any
 * arithmetic; below it, every sum of a size, an alignment and a few 2 MiB
 * headers that the tiers compute fits in a size_t.  Every entry point
 * that can ask for more than HK_LARGE_MAX goes through hk_huge_alloc,
 * which tests it first; the aligned entry points test it before rounding. */
#define HK_REQUEST_MAX ((size_t)1 << 56)
static inline bool hk_request_fits(size_t size, size_t align) {
    return size <= HK_REQUEST_MAX && align <= HK_REQUEST_MAX;
}

/* ---- sizeclass.c ---- */
extern const uint8_t hk_class_small[129];
extern const uint32_t hk_class_size[HK_NCLASSES];
extern const uint8_t hk_class_slices[HK_NCLASSES];
extern const uint64_t hk_class_divmagic[HK_NCLASSES];
int hk_sizeclass_check(void);
unsigned hk_size_class_slow(size_t size); /* size <= HK_LARGE_MAX */

/* Size class of a size in (HK_TINY_MAX, HK_LARGE_MAX]: four per doubling
 * (inline for malloc's mid path, which then makes no call). */
static inline size_t hk_size_class_mid(size_t size) {
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    return 9 + (b - 7) * 4 + ((size - 1) >> (b - 2)) - 4;
}

/* Size class of size (<= HK_LARGE_MAX). */
HK_FAST_PATH unsigned hk_size_class(size_t size) {
    if (hk_likely(size <= HK_TINY_MAX)) return hk_class_small[(size + 7) >> 3];
    return hk_size_class_slow(size);
}
static inline const char *hk_class_tier(unsigned cls) {
    return cls < HK_TINY_NCLASSES ? "tiny"
         : cls < HK_TINY_NCLASSES + HK_MID_NCLASSES ? "mid" : "large";
}

/* ---- msg.c: messages that never allocate ---- */
void hk_write_stderr(const char *s);
void hk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hk_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hk_assert_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));

/* ---- os.c: the OS primitives (see os.c for pre/post-conditions) ---- */
void *hk_os_map(size_t size);
void hk_os_set_pressure_release(void (*release)(void)); /* see os.c */
void *hk_os_map_aligned(size_t size, size_t align, void **base, size_t *mapped);
void hk_os_unmap(void *p, size_t size);
void hk_os_purge(void *p, size_t size);
void hk_os_hugepage(void *p, size_t size);
uint64_t hk_os_now_ms(void);
size_t hk_os_resident(void);
unsigned hk_os_ncpus(void);
/* No second thread was ever created (glibc's __libc_single_threaded; false
 * where the C library does not say). */
bool hk_os_single_threaded(void);
/* Starts fn(NULL) on a detached thread named name (at most 15 characters)
 * that takes no signal; stack_bytes 0: the default size.  False when it
 * could not. */
bool hk_os_start_thread(void *(*fn)(void *), const char *name, size_t stack_bytes);
extern _Atomic uint64_t hk_os_nmmap, hk_os_nmunmap;
void hk_os_note_unmapped(const void *p, size_t size); /* for hk_os_unmapped_find */
bool hk_os_unmapped_find(const void *p, uintptr_t *start, size_t *size);

/* ---- segmap.c: is this 2 MiB chunk ours? ---- */
#define HK_ADDR_BITS 47
#define HK_SEGMAP_WORDS (((size_t)1 << (HK_ADDR_BITS - HK_SEG_SHIFT)) / 64)
extern _Atomic uint64_t hk_segmap_bits[HK_SEGMAP_WORDS];
/* Addresses above 2^47 (never user space) alias lower ones: no range test
 * on the free path. */
static inline bool hk_segmap_has(const void *p) {
    size_t i = ((uintptr_t)p >> HK_SEG_SHIFT) & (HK_SEGMAP_WORDS * 64 - 1);
    return (hk_load_relaxed(&hk_segmap_bits[i / 64]) >> (i % 64)) & 1;
}
void hk_segmap_set(const void *chunk);
void hk_segmap_clear(const void *chunk);
bool hk_segmap_contains(const void *p);

/* ---- conf.c ---- */
extern hk_options hk_opt;
void hk_conf_defaults(hk_options *o);
void hk_conf_parse(hk_options *o, const char *conf);
void hk_conf_mode_env(hk_options *o, const char *mode);
const char *hk_mode_name(unsigned mode);
const char *hk_feature_name(unsigned f);
int hk_mode_parse(const char *s, size_t n);
const bool *hk_mode_preset(unsigned mode);

/* ---- meta.c: internal metadata memory, never freed to the OS ---- */
void *hk_meta_alloc(size_t size);
extern _Atomic size_t hk_meta_bytes;
void hk_meta_lock(void);
void hk_meta_unlock(void);
void hk_meta_reinit_child(void);

/* Bits set in x.  Without -mpopcnt, __builtin_popcount is a call into
 * libgcc; the masks counted here are 32 bits. */
static inline unsigned hk_popcount32(uint32_t x) {
#ifdef __POPCNT__
    return (unsigned)__builtin_popcount(x);
#else
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
#endif
}


#pragma GCC visibility pop

#endif
