/*
 * OS primitives.  Every function here is a thin wrapper with one contract:
 *   hk_os_map(size)            -> zeroed RW memory of size bytes (page
 *                                 multiple), or NULL; never sets errno for
 *                                 the caller to see other than ENOMEM.
 *   hk_os_map_aligned(s, a)    -> like hk_os_map, start aligned to a (a
 *                                 power of two >= 4 KiB); exactly s bytes
 *                                 stay mapped.
 * Mappings are committed like glibc's (no MAP_NORESERVE): under the
 * kernel's overcommit heuristic an absurd size fails at once, with ENOMEM,
 * instead of succeeding and faulting later.
 *   hk_os_purge(p, s)          -> the pages read back as zero afterwards
 *                                 and are no longer resident.
 *   hk_os_unmap(p, s)          -> the range is gone; it is remembered in a
 *                                 small ring (hk_os_unmapped_find) so a
 *                                 crash report can say a faulting address
 *                                 was ours.
 * None of them allocates with malloc.
 *
 * Fault injection (debug builds only): with fail_mmap_after:N in
 * HAKMEM_CONF, the first N calls of hk_os_map go to the OS and every later
 * one fails with ENOMEM, as if the address space were exhausted.  Release
 * builds compile the check out and ignore the option.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define HK_HAVE_SINGLE_THREADED 1
#endif
#endif

_Atomic uint64_t hk_os_nmmap, hk_os_nmunmap;
#if HK_DEBUG
static _Atomic uint64_t map_calls; /* fault injection: calls made */
#endif

/* Recently unmapped ranges, newest at (pos - 1) % HK_UNMAP_RING: written
 * with relaxed atomics, read by the crash handler (a torn entry only makes
 * a report less precise). */
#define HK_UNMAP_RING 64
static struct {
    _Atomic uintptr_t start;
    _Atomic size_t size;
} unmap_ring[HK_UNMAP_RING];
static _Atomic unsigned unmap_pos;

void hk_os_note_unmapped(const void *p, size_t size) {
    unsigned i = hk_fetch_add_relaxed(&unmap_pos, 1) % HK_UNMAP_RING;
    hk_store_relaxed(&unmap_ring[i].size, 0);
    hk_store_relaxed(&unmap_ring[i].start, (uintptr_t)p);
    hk_store_relaxed(&unmap_ring[i].size, size);
}

bool hk_os_unmapped_find(const void *p, uintptr_t *start, size_t *size) {
    uintptr_t a = (uintptr_t)p;
    unsigned pos = hk_load_relaxed(&unmap_pos);
    for (unsigned k = 1; k <= HK_UNMAP_RING; k++) { /* newest first */
        unsigned i = (pos - k) % HK_UNMAP_RING;
        uintptr_t s = hk_load_relaxed(&unmap_ring[i].start);
        size_t n = hk_load_relaxed(&unmap_ring[i].size);
        if (n != 0 && a >= s && a - s < n) {
            *start = s;
            *size = n;
            return true;
        }
    }
    return false;
}

/* Called once when a mapping fails, before it is tried again: the core
 * releases what it retains (the BigCache).  It may take locks that come
 * after an arena's lock: callers hold no lock but possibly an arena's. */
static void (*pressure_release)(void);
static _Thread_local bool tls_releasing;

void hk_os_set_pressure_release(void (*release)(void)) { pressure_release = release; }

static void *mmap_rw(void *hint, size_t size) {
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED || pressure_release == NULL || tls_releasing) return p;
    tls_releasing = true; /* the release's own unmapping maps nothing */
    pressure_release();
    tls_releasing = false;
    return mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* mmap near hint (NULL: anywhere), counted; NULL with errno ENOMEM.  When
 * the address space is short, retained memory goes back first. */
static void *map_near(void *hint, size_t size) {
#if HK_DEBUG
    uint64_t fail_after = hk_opt.fail_mmap_after;
    if (hk_unlikely(fail_after != 0) &&
        hk_fetch_add_relaxed(&map_calls, 1) >= fail_after) {
        errno = ENOMEM;
        return NULL;
    }
#endif
    int saved = errno;
    void *p = mmap_rw(hint, size);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    errno = saved;
    hk_fetch_add_relaxed(&hk_os_nmmap, 1);
    return p;
}

void *hk_os_map(size_t size) { return map_near(NULL, size); }

void hk_os_unmap(void *p, size_t size) {
    if (p == NULL || size == 0) return;
    int saved = errno;
    munmap(p, size);
    errno = saved;
    hk_os_note_unmapped(p, size);
    hk_fetch_add_relaxed(&hk_os_nmunmap, 1);
}

/* Where the next aligned mapping is likely to fit: the kernel hands out
 * addresses downwards, so just below the last one. */
static _Atomic uintptr_t aligned_hint;

/* Exactly size bytes at an aligned address, or NULL (nothing mapped). */
static uint8_t *map_exact_aligned(size_t size, size_t align) {
    int saved = errno;
    uint8_t *p = map_near((void *)hk_load_relaxed(&aligned_hint), size);
    if (p == NULL || ((uintptr_t)p & (align - 1)) == 0) {
        errno = saved;
        return p;
    }
    munmap(p, size); /* never handed out: not a range a crash report should name */
    hk_fetch_add_relaxed(&hk_os_nmunmap, 1);
    errno = saved;
    return NULL;
}

/* Over-map by the alignment and trim both ends. */
static uint8_t *map_trimmed_aligned(size_t size, size_t align) {
    size_t over = size + align - HK_OS_PAGE;
    uint8_t *raw = hk_os_map(over);
    if (raw == NULL) return NULL;
    uint8_t *p = (uint8_t *)hk_align_up((uintptr_t)raw, align);
    size_t front = (size_t)(p - raw);
    size_t back = over - front - size;
    int saved = errno;
    if (front) munmap(raw, front);
    if (back) munmap(p + size, back);
    errno = saved;
    return p;
}

/* An exact mapping at the hint first: no over-mapping (a transient 2x of
 * address space, which fails first under RLIMIT_AS) and one system call
 * when the hint holds, as it mostly does. */
void *hk_os_map_aligned(size_t size, size_t align, void **base, size_t *mapped) {
    if (size > SIZE_MAX - align) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *p = map_exact_aligned(size, align);
    if (p == NULL) p = map_trimmed_aligned(size, align);
    if (p == NULL) return NULL;
    uintptr_t below = (uintptr_t)p - hk_align_up(size, align);
    hk_store_relaxed(&aligned_hint, below < (uintptr_t)p ? below : 0);
    *base = p;
    *mapped = size;
    return p;
}

void hk_os_purge(void *p, size_t size) {
    int saved = errno;
    madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

void hk_os_hugepage(void *p, size_t size) {
#ifdef MADV_HUGEPAGE
    int saved = errno;
    madvise(p, size, MADV_HUGEPAGE);
    errno = saved;
#endif
}

uint64_t hk_os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Resident bytes of this process, measured (/proc/self/statm), 0 if unknown. */
size_t hk_os_resident(void) {
    int saved = errno;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return 0;
    }
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    errno = saved;
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *s = buf;
    while (*s && *s != ' ') s++; /* skip size */
    size_t pages = 0;
    while (*s == ' ') s++;
    while (*s >= '0' && *s <= '9') pages = pages * 10 + (size_t)(*s++ - '0');
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

unsigned hk_os_ncpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (unsigned)n;
    }
    return 1;
}

bool hk_os_single_threaded(void) {
#ifdef HK_HAVE_SINGLE_THREADED
    return __libc_single_threaded != 0;
#else
    return false;
#endif
}

bool hk_os_start_thread(void *(*fn)(void *), const char *name, size_t stack_bytes) {
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits the mask */
    bool ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (stack_bytes != 0) pthread_attr_setstacksize(&attr, stack_bytes);
        ok = pthread_create(&t, &attr, fn, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ok) pthread_setname_np(t, name);
    return ok;
}
