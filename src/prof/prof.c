/*
 * The heap profiler's records: what the core's sampling (core/sample.c)
 * hands over through hk_upper.prof_sample / prof_unsample.
 *
 * Two tables of fixed capacity, mapped once (no malloc), under one lock:
 *
 *   stacks[HK_PROF_STACKS]  open addressing by the frames' hash, never
 *                           deleted (until prof.reset): per stack the live
 *                           and allocation totals, raw and estimated
 *   slots                   the live sampled blocks by address, linear
 *                           probing, at most 3/4 full; a deletion shifts
 *                           the entries behind it back (no tombstones);
 *                           1024 slots at first, four times more each time
 *                           it fills, up to HK_PROF_SLOTS (a program holds
 *                           few sampled blocks: a large table spread them
 *                           over hundreds of pages, each faulted in twice)
 *
 * A sample that finds a table full is counted in dropped, never an error.
 * Frees of blocks on marked pages look their address up without the lock
 * (most are not sampled; not where the caller's mark is the block's own,
 * a huge block's or a one-block page's, and a record is all but sure):
 * entries move only at a deletion or a reset, which make table_seq odd
 * while they work, so a miss that saw the same even table_seq before and
 * after its probe is a true miss; anything else is settled under the
 * lock.
 *
 * Stacks come from unwind.c, which reads the frames' CFI itself and keeps
 * each return address's rule, or, for a frame it does not follow, from
 * glibc's backtrace() (libgcc's unwinder, loaded by libc with dlopen at
 * its first use, which allocates: the first use happens with the core's
 * busy flag set, so those allocations are not sampled).  Both stop at a
 * frame without unwind information.  The frames inside this library are
 * dropped when it is a shared object of its own.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <sys/mman.h>

#include "prof/prof.h"

typedef struct prof_stack {
    uint64_t hash;
    uint32_t nframes, used;
    uint64_t live_n, live_bytes, alloc_n, alloc_bytes;
    double live_est, alloc_est;
    void *frames[HK_PROF_FRAMES];
} prof_stack;

typedef struct prof_slot {
    _Atomic uintptr_t addr; /* 0: empty */
    uint32_t stack;
    uint32_t unused;
    uint64_t size;
    double est;             /* bytes it stands for */
} prof_slot;

/* This library's code, when it is a shared object of its own (else lo ==
 * hi == 0: no frame is dropped).  me: an address inside it. */
typedef struct lib_range {
    uintptr_t me, lo, hi;
} lib_range;

#define STACK_MASK (HK_PROF_STACKS - 1)
#define SLOTS_MAX (HK_PROF_SLOTS / 4 * 3)
#define STACKS_MAX (HK_PROF_STACKS / 8 * 7)
#define SLOTS_FIRST 1024

/* Tables replaced by a larger one are kept (a free may still be probing
 * one without the lock): at most SLOTS_FIRST * (1 + 4 + 16) slots more. */
typedef struct slot_table {
    size_t mask; /* slots - 1 */
    prof_slot s[];
} slot_table;

/* A word lock (spins a little before it sleeps): its sections are short,
 * threads sampling at once queue on it (hotclass, 2 threads, 64 KiB: ab.py
 * x0.77 for an adaptive mutex against a plain one), and a sample and a
 * sampled free each take it once (a pthread mutex's lock and unlock were
 * ~130 instructions of a sample's ~1,500). */
static hk_word_lock prof_lock = HK_WORD_LOCK_INIT;
static prof_stack *stacks; /* set once, under prof_lock */
static _Atomic(slot_table *) slots; /* set once, then grown, under prof_lock */
static _Atomic uint32_t table_seq;
static size_t nstacks, nlive;
static _Atomic uint64_t nsamples; /* written under prof_lock; read anywhere */
static _Atomic uint64_t ndropped;
static char last_dump[3][256]; /* enum hk_prof_format: the last path written */
/* prof.active and prof.sample_bytes each rewrite both (hk_sample_configure):
 * one at a time, or a write of one can put back an old value of the other. */
static pthread_mutex_t switch_lock = PTHREAD_MUTEX_INITIALIZER;
static lib_range lib;
static _Atomic int lib_state; /* 0: unknown, 1: being published, 2: lib set */
/* Bumped (under prof_lock) each time the tables are cleared: a memo's
 * stack index found before is stale. */
static _Atomic uint32_t resets;

/* This thread's last samples from a few places: their walks and the
 * stacks they were found to be (hk_unwind_traces), so that a loop sampled
 * again and again is neither walked nor looked up again.  ~2.3 KiB a
 * thread. */
typedef struct sample_memo {
    hk_unwind_traces traces;
    uint32_t resets[HK_UNWIND_TRACES]; /* resets when stack[i] was found */
    long stack[HK_UNWIND_TRACES];      /* trace i's index in stacks; -1: none (the table was full) */
    size_t size, usable, period;       /* the last estimate's arguments (0: none) */
    double est;
} sample_memo;
static _Thread_local sample_memo memo;

/* ---- set-up ---- */

static int find_lib(struct dl_phdr_info *info, size_t size, void *arg) {
    lib_range *r = arg;
    uintptr_t me = r->me, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    if (me < lo || me >= hi) return 0;
    /* The main program (statically linked library): its frames are the
     * program's too, none is dropped. */
    if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
        r->lo = lo;
        r->hi = hi;
    }
    return 1;
}

/* The unwinder's first use (it may allocate: the caller's allocations are
 * unsampled then) and this library's range into *out.  Threads that take
 * their first samples together all get here before the range is known
 * (profiling on from the start): each works it out into its own copy, and
 * the first to finish publishes it (lib is written once, before lib_state
 * becomes 2, and read only after). */
static void warm_up(lib_range *out) {
    if (hk_load_acquire(&lib_state) == 2) {
        *out = lib;
        return;
    }
    void *b[4];
    backtrace(b, 4);
    lib_range r = {.me = (uintptr_t)&hk_prof_record};
    dl_iterate_phdr(find_lib, &r);
    *out = r;
    int cold = 0;
    if (hk_cas_strong_acq_rel(&lib_state, &cold, 1)) {
        lib = r;
        hk_store_release(&lib_state, 2);
    }
}

static slot_table *slot_table_map(size_t n) {
    slot_table *t = hk_os_map(sizeof(slot_table) + n * sizeof(prof_slot));
    if (t != NULL) t->mask = n - 1;
    return t;
}

static bool tables_map(void) {
    if (hk_load_acquire(&slots) != NULL) return true;
    hk_word_lock_acquire(&prof_lock);
    if (hk_load_relaxed(&slots) == NULL) {
        prof_stack *st = hk_os_map(sizeof(prof_stack) * HK_PROF_STACKS);
        slot_table *sl = st != NULL ? slot_table_map(SLOTS_FIRST) : NULL;
        if (sl != NULL) {
            stacks = st;
            hk_unwind_init();
            hk_store_release(&slots, sl);
        } else if (st != NULL) {
            hk_os_unmap(st, sizeof(prof_stack) * HK_PROF_STACKS);
        }
    }
    hk_word_lock_release(&prof_lock);
    return hk_load_acquire(&slots) != NULL;
}

/* ---- the tables (prof_lock held) ---- */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}
static size_t slot_home(const slot_table *t, uintptr_t a) { return (size_t)(mix(a >> 4) & t->mask); }

static uint64_t frames_hash(void *const *f, unsigned n) {
    uint64_t h = n;
    for (unsigned i = 0; i < n; i++) h = mix(h ^ (uintptr_t)f[i]) + i;
    return h | 1;
}

/* The stack's index, added if new; -1 when the table is full. */
static long stack_find_add(void *const *f, unsigned n) {
    uint64_t h = frames_hash(f, n);
    for (size_t i = h & STACK_MASK;; i = (i + 1) & STACK_MASK) {
        prof_stack *s = &stacks[i];
        if (s->hash == 0) {
            if (nstacks >= STACKS_MAX) return -1;
            s->hash = h;
            s->nframes = n;
            memcpy(s->frames, f, n * sizeof *f);
            nstacks++;
            return (long)i;
        }
        if (s->hash == h && s->nframes == n && memcmp(s->frames, f, n * sizeof *f) == 0) return (long)i;
    }
}

static prof_slot *slot_find(uintptr_t a) {
    slot_table *t = hk_load_relaxed(&slots);
    for (size_t i = slot_home(t, a);; i = (i + 1) & t->mask) {
        uintptr_t k = hk_load_relaxed(&t->s[i].addr);
        if (k == a) return &t->s[i];
        if (k == 0) return NULL;
    }
}

static void slot_put(slot_table *t, uintptr_t a, const prof_slot *from) {
    size_t i = slot_home(t, a);
    while (hk_load_relaxed(&t->s[i].addr) != 0) i = (i + 1) & t->mask;
    t->s[i].stack = from->stack;
    t->s[i].size = from->size;
    t->s[i].est = from->est;
    hk_store_release(&t->s[i].addr, a);
}

/* A table four times larger with the same entries; the old one stays
 * mapped.  Frees that probe without the lock see table_seq move. */
static bool slots_grow(void) {
    slot_table *old = hk_load_relaxed(&slots);
    size_t n = (old->mask + 1) * 4;
    slot_table *t = n <= HK_PROF_SLOTS ? slot_table_map(n) : NULL;
    if (t == NULL) return false;
    for (size_t i = 0; i <= old->mask; i++) {
        uintptr_t k = hk_load_relaxed(&old->s[i].addr);
        if (k != 0) slot_put(t, k, &old->s[i]);
    }
    hk_store_relaxed(&table_seq, hk_load_relaxed(&table_seq) + 1); /* odd */
    hk_store_release(&slots, t);
    hk_store_release(&table_seq, hk_load_relaxed(&table_seq) + 1); /* even */
    return true;
}

static bool slot_add(uintptr_t a, uint32_t stack, uint64_t size, double est) {
    slot_table *t = hk_load_relaxed(&slots);
    if (nlive >= SLOTS_MAX || (nlive >= (t->mask + 1) / 4 * 3 && !slots_grow())) return false;
    prof_slot e = {.stack = stack, .size = size, .est = est};
    slot_put(hk_load_relaxed(&slots), a, &e);
    nlive++;
    return true;
}

/* Knuth's deletion for linear probing: entries behind the hole whose home
 * does not lie cyclically in (hole, their slot] move into it. */
static void slot_delete(prof_slot *e) {
    slot_table *t = hk_load_relaxed(&slots);
    prof_slot *s = t->s;
    size_t hole = (size_t)(e - s);
    hk_store_relaxed(&table_seq, hk_load_relaxed(&table_seq) + 1); /* odd */
    atomic_thread_fence(memory_order_release); /* before the entries move */
    for (size_t j = (hole + 1) & t->mask;; j = (j + 1) & t->mask) {
        uintptr_t k = hk_load_relaxed(&s[j].addr);
        if (k == 0) break;
        size_t home = slot_home(t, k);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays) continue;
        s[hole].stack = s[j].stack;
        s[hole].size = s[j].size;
        s[hole].est = s[j].est;
        hk_store_relaxed(&s[hole].addr, k);
        hole = j;
    }
    hk_store_relaxed(&s[hole].addr, 0);
    nlive--;
    hk_store_release(&table_seq, hk_load_relaxed(&table_seq) + 1); /* even */
}

static void tables_clear_locked(void) {
    slot_table *t = hk_load_relaxed(&slots);
    if (t == NULL) return;
    hk_store_relaxed(&table_seq, hk_load_relaxed(&table_seq) + 1);
    atomic_thread_fence(memory_order_release);
    /* Zero pages again (a memset would make the stack table's 4.7 MB
     * resident; in a fork child, copied). */
    hk_os_purge(stacks, sizeof(prof_stack) * HK_PROF_STACKS);
    /* Frees probe addr without the lock (miss_without_lock): atomic stores,
     * never a memset under them.  A slot's other fields are written before
     * its addr is published again. */
    for (size_t i = 0; i <= t->mask; i++) hk_store_relaxed(&t->s[i].addr, 0);
    nstacks = nlive = 0;
    hk_store_relaxed(&resets, hk_load_relaxed(&resets) + 1);
    hk_store_relaxed(&nsamples, 0);
    hk_store_relaxed(&ndropped, 0);
    hk_store_release(&table_seq, hk_load_relaxed(&table_seq) + 1);
}

/* ---- the estimate ---- */

/* 1 - exp(-r) for 0 <= r <= ln 2 (a little beyond after rounding): the
 * series r - r^2/2! + r^3/3! - ... in Horner form, 15 terms (the rest
 * below 1e-13 of the sum), no division. */
static double one_minus_exp_reduced(double r) {
    static const double inv_fact[16] = {
        1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
        1.0 / 87178291200.0, 1.0 / 1307674368000.0};
    double s = inv_fact[15];
#pragma GCC unroll 16
    for (int i = 14; i >= 1; i--) s = inv_fact[i] - r * s;
    return r * s;
}

/* 1 - exp(-x), x >= 0, without libm: exp(-x) = 2^-k exp(-r), x = k ln 2 + r. */
static double one_minus_exp_neg(double x) {
    if (x > 40) return 1.0;
    const double ln2 = 0.6931471805599453;
    int k = (int)(x * (1.0 / ln2));
    double r = x - k * ln2;
    if (r < 0) r = 0;
    double m = one_minus_exp_reduced(r);
    if (k == 0) return m;
    union { double d; uint64_t u; } scale = {.u = (uint64_t)(1023 - k) << 52}; /* 2^-k, k <= 57 */
    return 1.0 - scale.d * (1.0 - m);
}

/* ---- the hooks ---- */

/* The bytes a sample of size bytes (usable in its block) stands for at
 * this period; a loop's samples ask the same again. */
static double estimate(size_t size, size_t usable, size_t period) {
    if (memo.size == size && memo.usable == usable && memo.period == period) return memo.est;
    double est = (double)size / one_minus_exp_neg((double)usable / (double)period);
    memo.size = size;
    memo.usable = usable;
    memo.period = period;
    memo.est = est;
    return est;
}

/* The sample of p counted in stack s (prof_lock held): true if its slot
 * was added (the live view has it). */
static bool account_locked(long s, void *p, size_t size, double est) {
    prof_stack *st = &stacks[s];
    st->alloc_n++;
    st->alloc_bytes += size;
    st->alloc_est += est;
    bool kept = slot_add((uintptr_t)p, (uint32_t)s, size, est);
    if (kept) {
        st->live_n++;
        st->live_bytes += size;
        st->live_est += est;
    }
    hk_store_relaxed(&nsamples, hk_load_relaxed(&nsamples) + 1); /* written under prof_lock only */
    return kept;
}

/* A walk trace i knew to be the same: counted in its stack unless the
 * tables were cleared since it was found (then false, and the stack is
 * taken again). */
static bool record_known(unsigned i, void *p, size_t size, double est, bool *kept) {
    hk_word_lock_acquire(&prof_lock);
    bool known = memo.stack[i] >= 0 && memo.resets[i] == hk_load_relaxed(&resets);
    if (known) *kept = account_locked(memo.stack[i], p, size, est);
    hk_word_lock_release(&prof_lock);
    return known;
}

bool hk_prof_record(void *p, size_t size, size_t usable, size_t period) {
    if (!tables_map()) {
        hk_fetch_add_relaxed(&ndropped, 1);
        return false;
    }
    lib_range me;
    warm_up(&me);
    double est = estimate(size, usable, period);
    bool kept = false;
    void *raw[HK_PROF_FRAMES + 16];
    unsigned i;
    int n = hk_unwind(raw, (int)(sizeof raw / sizeof raw[0]), &memo.traces, &i);
    if (n == HK_UNWIND_SAME) {
        if (record_known(i, p, size, est, &kept)) goto out;
        n = hk_unwind(raw, (int)(sizeof raw / sizeof raw[0]), NULL, NULL);
    }
    if (n < 0) n = backtrace(raw, (int)(sizeof raw / sizeof raw[0]));
    int skip = 0;
    while (skip < n && (uintptr_t)raw[skip] >= me.lo && (uintptr_t)raw[skip] < me.hi) skip++;
    unsigned nf = (unsigned)(n - skip);
    if (nf > HK_PROF_FRAMES) nf = HK_PROF_FRAMES;
    hk_word_lock_acquire(&prof_lock);
    long s = stack_find_add(raw + skip, nf);
    memo.stack[i] = s;
    memo.resets[i] = hk_load_relaxed(&resets);
    if (s >= 0) kept = account_locked(s, p, size, est);
    hk_word_lock_release(&prof_lock);
out:
    if (!kept) hk_fetch_add_relaxed(&ndropped, 1);
    return kept;
}

static bool miss_without_lock(uintptr_t a) {
    uint32_t seq = hk_load_acquire(&table_seq);
    if (seq & 1) return false;
    slot_table *t = hk_load_acquire(&slots);
    for (size_t i = slot_home(t, a);; i = (i + 1) & t->mask) {
        uintptr_t k = hk_load_acquire(&t->s[i].addr);
        if (k == a) return false;
        if (k == 0) break;
    }
    return hk_load_acquire(&table_seq) == seq;
}

bool hk_prof_forget(void *p, bool marked) {
    if (hk_load_acquire(&slots) == NULL || (!marked && miss_without_lock((uintptr_t)p))) return false;
    hk_word_lock_acquire(&prof_lock);
    prof_slot *e = slot_find((uintptr_t)p);
    if (e != NULL) {
        prof_stack *st = &stacks[e->stack];
        st->live_n--;
        st->live_bytes -= e->size;
        st->live_est = st->live_n == 0 ? 0.0 : st->live_est - e->est;
        slot_delete(e);
    }
    hk_word_lock_release(&prof_lock);
    return e != NULL;
}

/* ---- control ---- */

/* The child starts with an empty profile, and with profiling off: the
 * unwinder's own state (libgcc's lookup caches, updated under the dynamic
 * linker's lock, which fork resets) may have been half-way through an
 * update by another thread of the parent, and unwinding over it aborts
 * (a research-mode child of a threaded parent died of SIGABRT about once in
 * ten conformance runs).  prof.active turns it on again. */
void hk_prof_fork_child(void) {
    pthread_mutex_init(&switch_lock, NULL);
    hk_sample_configure(false, hk_sample_period_get());
    hk_word_lock_reset(&prof_lock);
    hk_store_relaxed(&table_seq, 0);
    tables_clear_locked();
}

void hk_prof_at_init(void) {
    bool wanted = hk_opt.prof || hk_opt.prof_dump_at_exit[0] != '\0' || hk_opt.mode == HK_MODE_RESEARCH;
    hk_sample_period_init(hk_opt.prof_sample_bytes); /* for a later prof.active too */
    if (wanted && hk_config_stats && tables_map()) {
        hk_lock(&switch_lock);
        hk_sample_configure(true, hk_sample_period_get()); /* unwinder warmed at the first sample */
        hk_unlock(&switch_lock);
    }
}

int hk_prof_set_active(bool on) {
    if (!hk_config_stats) return EPERM; /* the sampling counts bytes with the counters */
    if (on) {
        if (!tables_map()) return ENOMEM;
        lib_range unused;
        warm_up(&unused);
    }
    hk_lock(&switch_lock);
    hk_sample_configure(on, hk_sample_period_get());
    hk_unlock(&switch_lock);
    return 0;
}

int hk_prof_set_period(size_t bytes) {
    if (bytes == 0 || bytes > ((size_t)1 << 40)) return EINVAL;
    hk_lock(&switch_lock);
    hk_sample_configure(hk_sample_active(), bytes);
    hk_unlock(&switch_lock);
    return 0;
}

void hk_prof_reset(void) {
    hk_word_lock_acquire(&prof_lock);
    tables_clear_locked();
    hk_word_lock_release(&prof_lock);
}

/* Under prof_lock, which a fork child re-initialises: the stats page reads
 * these paths while another thread may be writing one. */
void hk_prof_note_dump(enum hk_prof_format format, const char *path) {
    size_t n = strnlen(path, sizeof last_dump[0] - 1);
    hk_word_lock_acquire(&prof_lock);
    memcpy(last_dump[format], path, n);
    last_dump[format][n] = '\0';
    hk_word_lock_release(&prof_lock);
}

void hk_prof_last_dump(enum hk_prof_format format, char *out, size_t cap) {
    hk_word_lock_acquire(&prof_lock);
    hk_fmt(out, cap, "%s", last_dump[format]);
    hk_word_lock_release(&prof_lock);
}

void hk_prof_get_stats(hk_prof_stats *out) {
    hk_word_lock_acquire(&prof_lock);
    out->samples = hk_load_relaxed(&nsamples);
    out->live_samples = nlive;
    out->stacks = nstacks;
    out->dropped = hk_load_relaxed(&ndropped);
    hk_word_lock_release(&prof_lock);
}

hk_prof_site *hk_prof_snapshot(size_t *n, size_t *period) {
    *n = 0;
    *period = hk_sample_period_get();
    size_t bytes = sizeof(hk_prof_site) * HK_PROF_STACKS;
    hk_prof_site *out = hk_os_map(bytes);
    if (out == NULL) return NULL;
    if (hk_load_acquire(&slots) == NULL) return out;
    hk_word_lock_acquire(&prof_lock);
    for (size_t i = 0; i < HK_PROF_STACKS; i++) {
        const prof_stack *s = &stacks[i];
        if (s->hash == 0) continue;
        hk_prof_site *o = &out[(*n)++];
        o->nframes = s->nframes;
        memcpy(o->frames, s->frames, s->nframes * sizeof s->frames[0]);
        o->live_n = s->live_n;
        o->live_bytes = s->live_bytes;
        o->alloc_n = s->alloc_n;
        o->alloc_bytes = s->alloc_bytes;
        o->live_est = s->live_est;
        o->alloc_est = s->alloc_est;
    }
    hk_word_lock_release(&prof_lock);
    return out;
}

void hk_prof_snapshot_free(hk_prof_site *s) {
    if (s != NULL) hk_os_unmap(s, sizeof(hk_prof_site) * HK_PROF_STACKS);
}
