/*
 * Crash reports.  When opt.crash_report is on (the default), init installs
 * handlers for SIGSEGV, SIGBUS and SIGABRT -- only for those whose
 * disposition is still SIG_DFL, so a program's or a sanitizer's own handler
 * wins -- running on an alternate stack (altstack.c: the initializing
 * thread's and every thread's with a heap), so a stack overflow reports
 * too.  The handler writes a short report to stderr:
 *
 *   hakmem: crash: SIGSEGV (address not mapped) at 0x7f3a5c000010, pid 4242, thread 4242
 *   hakmem:   address: was in a hakmem mapping 0x7f3a5be00000-0x7f3a5c401000 that was unmapped (use after free?)
 *   hakmem:   totals: small segments 2 (4194304 B), huge blocks 0 B live (1 allocated, 1 freed), metadata 1048576 B, mmap 7, munmap 3
 *   hakmem: end of report; the process dies of SIGSEGV
 *
 * then restores the default action and re-raises, so the process dies of
 * the signal it would have died of anyway (core dump and exit status
 * unchanged).
 *
 * Everything here is async-signal-safe: write(2), no stdio, no malloc, no
 * lock; numbers are formatted by hand; allocator state is read through
 * atomics, and a segment header is read only when the segment map says its
 * chunk is ours, and then through a pipe (a read of unmapped memory makes
 * write(2) fail with EFAULT instead of faulting again).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "debug/debug.h"

#define HUGE_SEARCH_CHUNKS 4096 /* look this far below for a huge header (8 GiB) */

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT};
#define NSIGNALS (sizeof crash_signals / sizeof crash_signals[0])

static _Atomic int crash_state; /* 0 none, 1 a thread is reporting, 2 done */

/* ---- output: a fixed buffer, flushed with write(2) ---- */

typedef struct {
    char buf[512];
    size_t n;
} out_buf;

static void flush(out_buf *o) {
    const char *s = o->buf;
    size_t n = o->n;
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
    o->n = 0;
}

static void put(out_buf *o, const char *s) {
    while (*s) {
        if (o->n == sizeof o->buf) flush(o);
        o->buf[o->n++] = *s++;
    }
}

static void put_dec(out_buf *o, uint64_t x) {
    char t[24];
    int i = (int)sizeof t;
    t[--i] = '\0';
    do {
        t[--i] = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    put(o, t + i);
}

static void put_hex(out_buf *o, uintptr_t x) {
    char t[24];
    int i = (int)sizeof t;
    t[--i] = '\0';
    do {
        t[--i] = "0123456789abcdef"[x & 15];
        x >>= 4;
    } while (x != 0);
    t[--i] = 'x';
    t[--i] = '0';
    put(o, t + i);
}

static void put_line_start(out_buf *o) { put(o, "hakmem:   "); }
static void put_line_end(out_buf *o) {
    put(o, "\n");
    flush(o);
}

/* ---- reading memory that may be gone ---- */

/* Copies n bytes from src, returning false (and faulting nowhere) when any
 * of it is unreadable: the bytes go through a pipe, and write(2) from a bad
 * address fails with EFAULT. */
static bool safe_copy(void *dst, const void *src, size_t n) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    bool ok = true;
    const char *s = src;
    char *d = dst;
    while (ok && n > 0) {
        size_t k = n > 4096 ? 4096 : n; /* well within the pipe's capacity */
        ssize_t w = write(fds[1], s, k);
        if (w != (ssize_t)k) {
            ok = false;
            break;
        }
        for (size_t got = 0; got < k;) {
            ssize_t r = read(fds[0], d + got, k - got);
            if (r <= 0) {
                ok = false;
                break;
            }
            got += (size_t)r;
        }
        s += k;
        d += k;
        n -= k;
    }
    close(fds[0]);
    close(fds[1]);
    return ok;
}

/* ---- what the faulting address is ---- */

static void describe_small(out_buf *o, uintptr_t a, uintptr_t chunk,
                           const hk_segment *seg) {
    unsigned idx = (unsigned)((a - chunk) >> HK_SLICE_SHIFT);
    put(o, "in hakmem small segment ");
    put_hex(o, chunk);
    uintptr_t ai = (uintptr_t)(seg->arena - hk_arenas); /* no dereference */
    if ((uintptr_t)seg->arena >= (uintptr_t)hk_arenas && ai < HK_MAX_ARENAS) {
        put(o, " (arena ");
        put_dec(o, ai);
        put(o, ")");
    }
    put(o, ", slice ");
    put_dec(o, idx);
    if (idx == 0) {
        put(o, ": the segment header");
        return;
    }
    if (seg->free_mask & ((uint32_t)1 << idx)) {
        put(o, ": a free slice, in no page");
        return;
    }
    const hk_page *slice = &seg->pages[idx];
    unsigned back = slice->slice_back / (unsigned)sizeof(hk_page);
    if (back > idx || slice->slice_back % sizeof(hk_page) != 0) {
        put(o, ": page metadata inconsistent");
        return;
    }
    unsigned head = idx - back;
    const hk_page *pg = &seg->pages[head];
    put(o, ": page ");
    put_dec(o, head);
    put(o, " (");
    put_dec(o, pg->slice_count);
    put(o, " slices), class ");
    put_dec(o, pg->cls);
    if (pg->cls < HK_NCLASSES) {
        put(o, " (");
        put(o, hk_class_tier(pg->cls));
        put(o, ", ");
        put_dec(o, pg->block_size);
        put(o, "-byte blocks)");
    }
    if (pg->block_size != 0) {
        uintptr_t off = a - (chunk + (uintptr_t)head * HK_SLICE_SIZE);
        uint64_t block = off / pg->block_size;
        put(o, ", block ");
        put_dec(o, block);
        put(o, " + ");
        put_dec(o, off % pg->block_size);
        if (block >= pg->reserved) put(o, " (past the page's blocks)");
        else if (block >= pg->capacity) put(o, " (not yet handed out)");
    }
    put(o, ", ");
    put_dec(o, pg->used);
    put(o, " of ");
    put_dec(o, pg->capacity);
    put(o, " blocks in use");
}

static void describe_huge(out_buf *o, uintptr_t a, const hk_segment *h) {
    uintptr_t user = (uintptr_t)h->user;
    uintptr_t base = (uintptr_t)h->map_base;
    if (a < user) put(o, "in the header area of hakmem huge block ");
    else if (a - user < h->usable) put(o, "in hakmem huge block ");
    else put(o, "past the usable end of hakmem huge block ");
    put_hex(o, user);
    put(o, " (");
    put_dec(o, h->usable);
    put(o, " bytes usable, mapping ");
    put_hex(o, base);
    put(o, "-");
    put_hex(o, base + h->map_size);
    put(o, ")");
    if (a >= user) {
        put(o, ", offset ");
        put_dec(o, a - user);
    }
    if (h->guarded && a - user >= h->usable)
        put(o, "; a guarded block's guard page: an overflow past its end");
}

/* Reads the header at chunk (a chunk the segment map says is ours) and
 * describes a; returns false when a is not inside what the header covers. */
static bool describe_chunk(out_buf *o, uintptr_t a, uintptr_t chunk, bool own) {
    static const size_t huge_part = offsetof(hk_segment, pages);
    hk_segment seg; /* about 2 KiB, on the alternate stack */
    size_t need = own ? sizeof seg : huge_part;
    if (!safe_copy(&seg, (const void *)chunk, need)) {
        if (!own) return false;
        put(o, "in hakmem chunk ");
        put_hex(o, chunk);
        put(o, " (its header is unreadable: being unmapped?)");
        return true;
    }
    if (seg.magic != HK_SEG_MAGIC) {
        if (!own) return false;
        put(o, "in hakmem chunk ");
        put_hex(o, chunk);
        put(o, " (header magic overwritten)");
        return true;
    }
    if (seg.kind == HK_SEG_HUGE) {
        uintptr_t base = (uintptr_t)seg.map_base;
        if (a < base || a - base >= seg.map_size) return false;
        describe_huge(o, a, &seg);
        return true;
    }
    if (!own) return false; /* a small segment below: a is not in it */
    if (seg.kind == HK_SEG_SMALL) describe_small(o, a, chunk, &seg);
    else {
        put(o, "in hakmem chunk ");
        put_hex(o, chunk);
        put(o, " (unknown kind ");
        put_dec(o, seg.kind);
        put(o, ")");
    }
    return true;
}

/* The interrupted stack pointer, 0 where unknown. */
static uintptr_t stack_pointer(const void *uctx) {
    const ucontext_t *uc = uctx;
    if (uc == NULL) return 0;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    return 0;
#endif
}

static void describe_address(out_buf *o, uintptr_t a, uintptr_t sp) {
    put_line_start(o);
    put(o, "address: ");
    uintptr_t chunk = a & ~(uintptr_t)HK_SEG_MASK;
    if (hk_segmap_contains((void *)chunk) && describe_chunk(o, a, chunk, true)) {
        put_line_end(o);
        return;
    }
    /* Beyond the first chunk of a huge block (or an over-aligned block,
     * whose header sits one chunk below): the nearest marked chunk below. */
    for (uintptr_t k = 1; k <= HUGE_SEARCH_CHUNKS && chunk >= k * HK_SEG_SIZE; k++) {
        uintptr_t c = chunk - k * HK_SEG_SIZE;
        if (!hk_segmap_contains((void *)c)) continue;
        if (describe_chunk(o, a, c, false)) {
            put_line_end(o);
            return;
        }
        break;
    }
    uintptr_t start;
    size_t size;
    if (hk_os_unmapped_find((void *)a, &start, &size)) {
        put(o, "was in a hakmem mapping ");
        put_hex(o, start);
        put(o, "-");
        put_hex(o, start + size);
        put(o, " that was unmapped (use after free?)");
    } else {
        put(o, "not in hakmem memory");
        if (sp != 0 && (a < sp ? sp - a : a - sp) < ((uintptr_t)64 << 10))
            put(o, " (next to the stack pointer: a stack overflow?)");
    }
    put_line_end(o);
}

/* ---- the report ---- */

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
    }
}

static const char *code_name(int sig, int code) {
    if (code == SI_USER || code == SI_TKILL || code == SI_QUEUE)
        return sig == SIGABRT ? "abort() or kill" : "sent by kill";
    if (sig == SIGSEGV) {
        if (code == SEGV_MAPERR) return "address not mapped";
        if (code == SEGV_ACCERR) return "access not permitted";
    }
    if (sig == SIGBUS) {
        if (code == BUS_ADRALN) return "misaligned address";
        if (code == BUS_ADRERR) return "no such physical address: a truncated file?";
        if (code == BUS_OBJERR) return "hardware error";
    }
    return NULL;
}

static void put_totals(out_buf *o) {
    size_t small = 0;
    unsigned narenas = hk_opt.narenas < HK_MAX_ARENAS ? hk_opt.narenas : HK_MAX_ARENAS;
    for (unsigned i = 0; i < narenas; i++) small += hk_load_relaxed(&hk_arenas[i].mapped);
    hk_huge_stats hs;
    hk_huge_get_stats_lockless(&hs);
    put_line_start(o);
    put(o, "totals: small segments ");
    put_dec(o, small / HK_SEG_SIZE);
    put(o, " (");
    put_dec(o, small);
    put(o, " B), huge blocks ");
    put_dec(o, hs.cur_bytes);
    put(o, " B live (");
    put_dec(o, hs.nmalloc);
    put(o, " allocated, ");
    put_dec(o, hs.ndalloc);
    put(o, " freed), metadata ");
    put_dec(o, hk_load_relaxed(&hk_meta_bytes));
    put(o, " B, mmap ");
    put_dec(o, hk_load_relaxed(&hk_os_nmmap));
    put(o, ", munmap ");
    put_dec(o, hk_load_relaxed(&hk_os_nmunmap));
    put_line_end(o);
}

static void report(int sig, const siginfo_t *si, const void *uctx) {
    out_buf o;
    o.n = 0;
    bool sent = si->si_code <= 0; /* by kill, tgkill, raise, abort */
    put(&o, "hakmem: crash: ");
    put(&o, signal_name(sig));
    put(&o, " (");
    const char *why = code_name(sig, si->si_code);
    if (why != NULL) {
        put(&o, why);
    } else {
        put(&o, "code ");
        put_dec(&o, (uint64_t)(unsigned)si->si_code);
    }
    put(&o, ")");
    if (!sent) {
        put(&o, " at ");
        put_hex(&o, (uintptr_t)si->si_addr);
    }
    put(&o, ", pid ");
    put_dec(&o, (uint64_t)getpid());
    put(&o, ", thread ");
    put_dec(&o, (uint64_t)syscall(SYS_gettid));
    if (sent && (pid_t)si->si_pid != getpid()) {
        put(&o, ", from pid ");
        put_dec(&o, (uint64_t)si->si_pid);
    }
    put_line_end(&o);
    if (!sent) describe_address(&o, (uintptr_t)si->si_addr, stack_pointer(uctx));
    put_totals(&o);
    put(&o, "hakmem: end of report; the process dies of ");
    put(&o, signal_name(sig));
    put_line_end(&o);
}

static void crash_handler(int sig, siginfo_t *si, void *uctx) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&crash_state, &expected, 1)) {
        report(sig, si, uctx);
        atomic_store(&crash_state, 2);
    } else {
        /* Another thread is reporting: give it up to a second to finish. */
        struct timespec ts = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 100 && atomic_load(&crash_state) == 1; i++) nanosleep(&ts, NULL);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    /* Pending until the handler returns (sig is blocked in here); then
     * the default action ends the process.  A fault would recur anyway. */
    raise(sig);
}

void hk_crash_install(void) {
    if (!hk_opt.crash_report) return;
    int saved = errno;
    bool any = false;
    for (size_t i = 0; i < NSIGNALS; i++) {
        struct sigaction old;
        if (sigaction(crash_signals[i], NULL, &old) != 0) continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        for (size_t j = 0; j < NSIGNALS; j++) sigaddset(&sa.sa_mask, crash_signals[j]);
        if (sigaction(crash_signals[i], &sa, NULL) == 0) any = true;
    }
    if (any) { /* every thread with a heap gets one too (altstack.c) */
        static void *init_thread_stack;
        hk_altstack_enable();
        hk_altstack_thread_start(&init_thread_stack);
    }
    errno = saved;
}
