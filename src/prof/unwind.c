/*
 * Stacks for the profiler on x86-64 without libgcc's unwinder.
 *
 * A return address's frame rule -- where the frame's CFA is (rsp or rbp
 * plus an offset, or the word at rbp plus an offset for a realigned
 * frame), where the caller's rbp was saved -- is read once from its
 * object's .eh_frame (the object found with _dl_find_object, which takes
 * no lock and does not allocate) and kept in a table of fixed size:
 *
 *   rules[HK_UNWIND_RULES]  open addressing by return address; a slot's
 *                           address is set once (CAS from 0) and never
 *                           changes; its rule word is rewritten whole when
 *                           the objects loaded have changed (rule_gen)
 *
 * so a walk costs a table probe and two loads a frame.  What the rules
 * here do not describe (a signal frame, a CFA in another register or
 * given by another expression, a saved rbp not at a fixed place) makes
 * hk_unwind return -1, and the caller takes the stack with backtrace().
 * A frame without unwind information ends the stack, as in libgcc.
 *
 * What libgcc would read, this reads: the CFI decides every load, and a
 * CFA that does not move up the stack ends the walk.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>

#include "prof/prof.h"

#if defined(__x86_64__) && defined(DLFO_EH_SEGMENT_TYPE)

enum { DW_RBP = 6, DW_RSP = 7, DW_RA = 16 };

/* One register's rule after a frame's CFI: where its caller's value is. */
enum reg_how { REG_SAME, REG_AT_CFA, REG_AT_RBP, REG_UNDEFINED, REG_OTHER };
typedef struct reg_rule {
    enum reg_how how;
    int64_t off; /* REG_AT_CFA: CFA + off; REG_AT_RBP: rbp + off */
} reg_rule;

enum cfa_how { CFA_RSP, CFA_RBP, CFA_DEREF_RBP, CFA_OTHER };
typedef struct frame_rule {
    enum cfa_how cfa;
    int64_t cfa_off;
    reg_rule rbp, ra;
} frame_rule;

/* A rule packed in one word (0: none):
 *   bit 63 set; bits 56-62 the generation it was read in (rule_gen & 127);
 *   bits 52-54 kind; bits 32-47 the saved rbp's offset (int16);
 *   bits 0-31 the CFA offset (int32). */
enum rule_kind {
    KIND_END = 1,       /* the outermost frame, or no unwind information */
    KIND_UNSUPPORTED,   /* the caller falls back to backtrace() */
    KIND_RSP,           /* CFA = rsp + off, rbp kept */
    KIND_RSP_BP,        /* CFA = rsp + off, rbp at CFA + bp */
    KIND_RBP,           /* CFA = rbp + off, rbp kept */
    KIND_RBP_BP,        /* CFA = rbp + off, rbp at CFA + bp */
    KIND_DRAP,          /* CFA = *(rbp + off), rbp at rbp + bp */
};

typedef struct rule_slot {
    _Atomic uintptr_t pc; /* 0: empty; set once */
    _Atomic uint64_t rule;
} rule_slot;

#define RULE_MASK (HK_UNWIND_RULES - 1)
#define RULE_PROBES 16

static _Atomic(rule_slot *) rules; /* mapped by hk_unwind_init */
static _Atomic uint32_t rule_gen;   /* bumped when objects were unloaded */
static _Atomic unsigned long long seen_subs;

/* ---- reading .eh_frame ---- */

typedef struct cursor {
    const uint8_t *p, *end;
    bool bad;
} cursor;

static uint64_t uleb(cursor *c) {
    uint64_t v = 0;
    for (unsigned shift = 0; c->p < c->end && shift < 64; shift += 7) {
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    c->bad = true;
    return 0;
}

static int64_t sleb(cursor *c) {
    int64_t v = 0;
    for (unsigned shift = 0; c->p < c->end && shift < 64;) {
        uint8_t b = *c->p++;
        v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
            return v;
        }
    }
    c->bad = true;
    return 0;
}

static uint64_t fixed(cursor *c, size_t n) {
    if ((size_t)(c->end - c->p) < n) {
        c->bad = true;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, c->p, n); /* little-endian */
    c->p += n;
    return v;
}

/* A DW_EH_PE-encoded pointer; data: the base of datarel values. */
static uintptr_t encoded(cursor *c, uint8_t enc, uintptr_t data) {
    if (enc == 0xff) return 0; /* omitted */
    uintptr_t at = (uintptr_t)c->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = fixed(c, 8); break;
    case 0x01: v = uleb(c); break;
    case 0x02: v = fixed(c, 2); break;
    case 0x03: v = fixed(c, 4); break;
    case 0x04: v = fixed(c, 8); break;
    case 0x09: v = (uint64_t)sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)fixed(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)fixed(c, 4); break;
    case 0x0c: v = fixed(c, 8); break;
    default: c->bad = true; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += at; break;
    case 0x30: v += data; break;
    default: c->bad = true; return 0;
    }
    if (enc & 0x80) c->bad = true; /* indirect: not in code ranges */
    return (uintptr_t)v;
}

/* The FDE covering pc in the binary search table of .eh_frame_hdr. */
static const uint8_t *fde_lookup(const uint8_t *hdr, uintptr_t pc) {
    if (hdr[0] != 1 || hdr[3] != 0x3b) return NULL; /* datarel sdata4 pairs */
    cursor c = {hdr + 4, hdr + 4 + 16, false};
    encoded(&c, hdr[1], (uintptr_t)hdr);
    uintptr_t n = encoded(&c, hdr[2], (uintptr_t)hdr);
    if (c.bad || n == 0) return NULL;
    const int32_t *table = (const int32_t *)(const void *)c.p;
    uintptr_t lo = 0, hi = n; /* the last entry starting at or below pc */
    while (hi - lo > 1) {
        uintptr_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)hdr + (intptr_t)table[2 * mid] <= pc) lo = mid;
        else hi = mid;
    }
    if ((uintptr_t)hdr + (intptr_t)table[2 * lo] > pc) return NULL;
    return hdr + table[2 * lo + 1];
}

typedef struct cie_info {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    bool has_aug, signal;
    const uint8_t *insns, *end;
} cie_info;

static bool cie_parse(const uint8_t *cie, cie_info *out) {
    uint32_t len;
    memcpy(&len, cie, 4);
    if (len == 0 || len == 0xffffffffu) return false;
    cursor c = {cie + 8, cie + 4 + len, false};
    uint8_t version = (uint8_t)fixed(&c, 1);
    const char *aug = (const char *)c.p;
    while (c.p < c.end && *c.p) c.p++;
    c.p++;
    if (version >= 4) c.p += 2; /* address and segment sizes */
    *out = (cie_info){.fde_enc = 0};
    out->code_align = uleb(&c);
    out->data_align = sleb(&c);
    if (version == 1) fixed(&c, 1);
    else uleb(&c);
    if (aug[0] == 'z') {
        out->has_aug = true;
        uint64_t n = uleb(&c);
        const uint8_t *after = c.p + n;
        for (const char *a = aug + 1; *a && !c.bad; a++) {
            if (*a == 'R') out->fde_enc = (uint8_t)fixed(&c, 1);
            else if (*a == 'L') fixed(&c, 1);
            else if (*a == 'P') encoded(&c, (uint8_t)fixed(&c, 1), 0), c.bad = false;
            else if (*a == 'S') out->signal = true;
            else return false;
        }
        c.p = after;
    } else if (aug[0] != '\0') {
        return false;
    }
    out->insns = c.p;
    out->end = c.end;
    return !c.bad && c.p <= c.end;
}

/* ---- running the CFI up to pc ---- */

#define STATE_DEPTH 8

typedef struct cfi_run {
    frame_rule now, init, saved[STATE_DEPTH];
    unsigned depth;
    uintptr_t loc, pc;
    const cie_info *cie;
} cfi_run;

static void reg_set(cfi_run *r, uint64_t reg, reg_rule rule) {
    if (reg == DW_RBP) r->now.rbp = rule;
    else if (reg == DW_RA) r->now.ra = rule;
}

static void reg_restore(cfi_run *r, uint64_t reg) {
    if (reg == DW_RBP) r->now.rbp = r->init.rbp;
    else if (reg == DW_RA) r->now.ra = r->init.ra;
}

/* CFA = *(rbp + off): "DW_OP_breg6 off; DW_OP_deref", gcc's realigned frame. */
static void cfa_expression(cfi_run *r, cursor *c) {
    uint64_t n = uleb(c);
    cursor e = {c->p, c->p + n, false};
    c->p += n;
    r->now.cfa = CFA_OTHER;
    if (n < 3 || *e.p++ != 0x76) return;
    int64_t off = sleb(&e);
    if (!e.bad && e.p + 1 == e.end && *e.p == 0x06) {
        r->now.cfa = CFA_DEREF_RBP;
        r->now.cfa_off = off;
    }
}

/* reg at "DW_OP_breg6 off": the saved rbp of a realigned frame. */
static void reg_expression(cfi_run *r, cursor *c, uint64_t reg) {
    uint64_t n = uleb(c);
    cursor e = {c->p, c->p + n, false};
    c->p += n;
    reg_rule rule = {REG_OTHER, 0};
    if (n >= 2 && *e.p++ == 0x76) {
        int64_t off = sleb(&e);
        if (!e.bad && e.p == e.end) rule = (reg_rule){REG_AT_RBP, off};
    }
    reg_set(r, reg, rule);
}

/* One instruction; false at the end, or past pc. */
static bool cfi_step(cfi_run *r, cursor *c) {
    uint8_t op = (uint8_t)fixed(c, 1);
    uint64_t reg;
    const int64_t da = r->cie->data_align;
    switch (op >> 6) {
    case 1: r->loc += (op & 0x3f) * r->cie->code_align; return r->loc <= r->pc;
    case 2: reg_set(r, op & 0x3f, (reg_rule){REG_AT_CFA, (int64_t)uleb(c) * da}); return true;
    case 3: reg_restore(r, op & 0x3f); return true;
    default: break;
    }
    switch (op) {
    case 0x00: return true; /* nop */
    case 0x02: r->loc += fixed(c, 1) * r->cie->code_align; return r->loc <= r->pc;
    case 0x03: r->loc += fixed(c, 2) * r->cie->code_align; return r->loc <= r->pc;
    case 0x04: r->loc += fixed(c, 4) * r->cie->code_align; return r->loc <= r->pc;
    case 0x05: reg = uleb(c); reg_set(r, reg, (reg_rule){REG_AT_CFA, (int64_t)uleb(c) * da}); return true;
    case 0x06: reg_restore(r, uleb(c)); return true;
    case 0x07: reg_set(r, uleb(c), (reg_rule){REG_UNDEFINED, 0}); return true;
    case 0x08: reg_set(r, uleb(c), (reg_rule){REG_SAME, 0}); return true;
    case 0x09: reg = uleb(c); uleb(c); reg_set(r, reg, (reg_rule){REG_OTHER, 0}); return true;
    case 0x0a:
        if (r->depth == STATE_DEPTH) break;
        r->saved[r->depth++] = r->now;
        return true;
    case 0x0b:
        if (r->depth == 0) break;
        r->now = r->saved[--r->depth];
        return true;
    case 0x0c: reg = uleb(c); r->now.cfa_off = (int64_t)uleb(c); goto cfa_reg;
    case 0x0d: reg = uleb(c); goto cfa_reg;
    case 0x0e: r->now.cfa_off = (int64_t)uleb(c); return true;
    case 0x0f: cfa_expression(r, c); return true;
    case 0x10: reg = uleb(c); reg_expression(r, c, reg); return true;
    case 0x11: reg = uleb(c); reg_set(r, reg, (reg_rule){REG_AT_CFA, sleb(c) * da}); return true;
    case 0x12: reg = uleb(c); r->now.cfa_off = sleb(c) * da; goto cfa_reg;
    case 0x13: r->now.cfa_off = sleb(c) * da; return true;
    case 0x2e: uleb(c); return true; /* GNU_args_size */
    default: break;
    }
    c->bad = true; /* val_offset, val_expression and the rest: not followed */
    return false;
cfa_reg:
    r->now.cfa = reg == DW_RSP ? CFA_RSP : reg == DW_RBP ? CFA_RBP : CFA_OTHER;
    return true;
}

static bool cfi_run_to(cfi_run *r, const uint8_t *p, const uint8_t *end) {
    cursor c = {p, end, false};
    while (c.p < c.end && !c.bad && cfi_step(r, &c)) {}
    return !c.bad;
}

/* ---- one return address's rule ---- */

static uint64_t pack(enum rule_kind kind, int64_t cfa_off, int64_t bp_off) {
    if (cfa_off != (int32_t)cfa_off || bp_off != (int16_t)bp_off) kind = KIND_UNSUPPORTED;
    uint64_t gen = hk_load_relaxed(&rule_gen) & 127;
    return (1ull << 63) | gen << 56 | (uint64_t)kind << 52 |
           (uint64_t)(uint16_t)bp_off << 32 | (uint32_t)cfa_off;
}

static uint64_t rule_of(const frame_rule *f) {
    if (f->ra.how == REG_UNDEFINED) return pack(KIND_END, 0, 0);
    if (f->ra.how != REG_AT_CFA || f->ra.off != -8) return pack(KIND_UNSUPPORTED, 0, 0);
    bool bp_at_cfa = f->rbp.how == REG_AT_CFA;
    if (f->rbp.how != REG_SAME && !bp_at_cfa && !(f->rbp.how == REG_AT_RBP && f->cfa == CFA_DEREF_RBP))
        return pack(KIND_UNSUPPORTED, 0, 0);
    switch (f->cfa) {
    case CFA_RSP: return pack(bp_at_cfa ? KIND_RSP_BP : KIND_RSP, f->cfa_off, f->rbp.off);
    case CFA_RBP: return pack(bp_at_cfa ? KIND_RBP_BP : KIND_RBP, f->cfa_off, f->rbp.off);
    case CFA_DEREF_RBP:
        if (f->rbp.how != REG_AT_RBP) break;
        return pack(KIND_DRAP, f->cfa_off, f->rbp.off);
    default: break;
    }
    return pack(KIND_UNSUPPORTED, 0, 0);
}

/* Reads the rule for the call that returns to ra (its instruction is at
 * ra - 1) from the object's CFI. */
static uint64_t rule_read(uintptr_t ra) {
    uintptr_t pc = ra - 1;
    struct dl_find_object fo;
    if (_dl_find_object((void *)pc, &fo) != 0 || fo.dlfo_eh_frame == NULL) return pack(KIND_END, 0, 0);
    const uint8_t *fde = fde_lookup(fo.dlfo_eh_frame, pc);
    if (fde == NULL) return pack(KIND_END, 0, 0);
    uint32_t len;
    int32_t cie_off;
    memcpy(&len, fde, 4);
    memcpy(&cie_off, fde + 4, 4);
    cie_info cie;
    if (len == 0 || len == 0xffffffffu || !cie_parse(fde + 4 - cie_off, &cie)) return pack(KIND_UNSUPPORTED, 0, 0);
    if (cie.signal) return pack(KIND_UNSUPPORTED, 0, 0);
    cursor c = {fde + 8, fde + 4 + len, false};
    uintptr_t start = encoded(&c, cie.fde_enc, 0);
    uintptr_t range = encoded(&c, cie.fde_enc & 0x0f, 0);
    if (cie.has_aug) c.p += uleb(&c);
    if (c.bad || c.p > c.end) return pack(KIND_UNSUPPORTED, 0, 0);
    if (pc < start || pc - start >= range) return pack(KIND_END, 0, 0);
    cfi_run r = {.cie = &cie, .loc = start, .pc = pc};
    r.now = (frame_rule){CFA_OTHER, 0, {REG_SAME, 0}, {REG_SAME, 0}};
    if (!cfi_run_to(&r, cie.insns, cie.end)) return pack(KIND_UNSUPPORTED, 0, 0);
    r.init = r.now;
    r.depth = 0;
    if (!cfi_run_to(&r, c.p, c.end)) return pack(KIND_UNSUPPORTED, 0, 0);
    return rule_of(&r.now);
}

/* ---- the table ---- */

static size_t rule_home(uintptr_t pc) {
    uint64_t h = pc * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 40) & RULE_MASK;
}

static bool rule_current(uint64_t rule) {
    return rule != 0 && ((rule >> 56) & 127) == (hk_load_relaxed(&rule_gen) & 127);
}

static uint64_t rule_for(uintptr_t ra) {
    rule_slot *t = hk_load_acquire(&rules);
    if (t == NULL) return rule_read(ra);
    for (size_t i = rule_home(ra), k = 0; k < RULE_PROBES; i = (i + 1) & RULE_MASK, k++) {
        uintptr_t at = hk_load_acquire(&t[i].pc);
        if (at == 0) {
            if (!hk_cas_strong_acq_rel(&t[i].pc, &at, ra) && at != ra) continue;
        } else if (at != ra) {
            continue;
        }
        uint64_t rule = hk_load_acquire(&t[i].rule);
        if (rule_current(rule)) return rule;
        rule = rule_read(ra);
        hk_store_release(&t[i].rule, rule);
        return rule;
    }
    return rule_read(ra); /* a full neighbourhood: read each time */
}

/* Objects unloaded since the last walk: every rule is read again. */
static int count_subs(struct dl_phdr_info *info, size_t size, void *arg) {
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        *(unsigned long long *)arg = info->dlpi_subs;
    return 1;
}

static void check_unloads(void) {
    unsigned long long subs = 0;
    dl_iterate_phdr(count_subs, &subs);
    unsigned long long seen = hk_load_relaxed(&seen_subs);
    if (subs != seen && hk_cas_strong_acq_rel(&seen_subs, &seen, subs))
        hk_fetch_add_relaxed(&rule_gen, 1);
}

void hk_unwind_init(void) {
    if (hk_load_acquire(&rules) != NULL) return;
    rule_slot *t = hk_os_map(sizeof(rule_slot) * HK_UNWIND_RULES);
    rule_slot *none = NULL;
    if (t != NULL && !hk_cas_strong_acq_rel(&rules, &none, t))
        hk_os_unmap(t, sizeof(rule_slot) * HK_UNWIND_RULES);
}

/* ---- the walk ---- */

typedef struct regs {
    uintptr_t ra, sp, bp;
} regs;

/* A walk's reads, noted for its trace.  The frames depend on every return
 * address read, but on a saved rbp only when a later rule finds its CFA
 * through rbp: most frames save rbp as a general register (a loop's
 * counter, say), and a trace comparing such words would never match. */
typedef struct reads {
    hk_unwind_trace *t; /* NULL: nothing noted */
    uint64_t needed;    /* bit i: t->at[i] is one the frames depend on */
    int bp_from;        /* the read that gave rbp; -1: the starting register */
    bool bp0_needed;
} reads;

static uintptr_t read_word(reads *rd, uintptr_t at, bool needed) {
    uintptr_t v = *(const uintptr_t *)at;
    hk_unwind_trace *t = rd->t;
    if (t != NULL) {
        if (t->nreads < HK_UNWIND_TRACE_READS) {
            t->at[t->nreads] = at;
            t->val[t->nreads] = v;
            if (needed) rd->needed |= (uint64_t)1 << t->nreads;
        }
        t->nreads++;
    }
    return v;
}

/* The rule about to be followed reads rbp. */
static void bp_used(reads *rd) {
    if (rd->bp_from < 0) rd->bp0_needed = true;
    else if (rd->bp_from < HK_UNWIND_TRACE_READS) rd->needed |= (uint64_t)1 << rd->bp_from;
}

/* Read i, a saved rbp no rule used, leaves the trace as it is walked (the
 * reads after it, at most the same frame's return address, move down). */
static void drop_read(reads *rd, unsigned i) {
    hk_unwind_trace *t = rd->t;
    if (t->nreads > HK_UNWIND_TRACE_READS) return; /* keeps none anyway */
    for (unsigned j = i; j + 1 < t->nreads; j++) {
        t->at[j] = t->at[j + 1];
        t->val[j] = t->val[j + 1];
    }
    uint64_t below = ((uint64_t)1 << i) - 1;
    rd->needed = (rd->needed & below) | ((rd->needed >> 1) & ~below);
    t->nreads--;
}

static uintptr_t read_bp(reads *rd, uintptr_t at) {
    if (rd->t == NULL) return *(const uintptr_t *)at;
    if (rd->bp_from >= 0 && rd->bp_from < HK_UNWIND_TRACE_READS && !(rd->needed >> rd->bp_from & 1))
        drop_read(rd, (unsigned)rd->bp_from);
    rd->bp_from = (int)rd->t->nreads;
    return read_word(rd, at, false);
}

/* The caller's registers from a frame's rule; false ends the walk. */
static bool frame_up(regs *r, uint64_t rule, reads *rd) {
    int64_t cfa_off = (int32_t)(uint32_t)rule, bp_off = (int16_t)(uint16_t)(rule >> 32);
    enum rule_kind kind = (enum rule_kind)((rule >> 52) & 7);
    uintptr_t cfa;
    switch (kind) {
    case KIND_RSP: case KIND_RSP_BP: cfa = r->sp + (uintptr_t)cfa_off; break;
    case KIND_RBP: case KIND_RBP_BP:
        bp_used(rd);
        cfa = r->bp + (uintptr_t)cfa_off;
        break;
    case KIND_DRAP:
        bp_used(rd);
        if (r->bp < r->sp) return false;
        cfa = read_word(rd, r->bp + (uintptr_t)cfa_off, true);
        break;
    default: return false;
    }
    if (cfa <= r->sp || (cfa & 7) != 0) return false;
    if (kind == KIND_RSP_BP || kind == KIND_RBP_BP) r->bp = read_bp(rd, cfa + (uintptr_t)bp_off);
    else if (kind == KIND_DRAP) r->bp = read_bp(rd, r->bp + (uintptr_t)bp_off);
    r->ra = read_word(rd, cfa - 8, true);
    r->sp = cfa;
    return true;
}

/* The walk is a function of the registers it starts from, of max, of the
 * rules (one generation) and of the words it reads that it depends on:
 * when all are as in the trace, it would give the trace's frames again.
 * The words are compared in the order the walk read them, so that none is
 * read that a walk from these registers would not read. */
static bool trace_holds(const hk_unwind_trace *t, const regs *r, int max) {
    if (t->gen != hk_load_relaxed(&rule_gen) + 1 || t->max != max || t->ra != r->ra || t->sp != r->sp ||
        (t->bp_needed && t->bp != r->bp))
        return false;
    for (unsigned i = 0; i < t->nreads; i++)
        if (*(const uintptr_t *)t->at[i] != t->val[i]) return false;
    return true;
}

static int walk(regs r, void **out, int max, reads *rd) {
    int n = 0;
    while (n < max && r.ra != 0) {
        out[n++] = (void *)r.ra;
        uint64_t rule = rule_for(r.ra);
        enum rule_kind kind = (enum rule_kind)((rule >> 52) & 7);
        if (kind == KIND_UNSUPPORTED) return -1;
        if (kind == KIND_END || !frame_up(&r, rule, rd)) break;
    }
    return n;
}

/* The trace keeps the words the frames depend on, or none. */
static void trace_close(hk_unwind_trace *t, const reads *rd, int n, uint32_t gen) {
    if (n < 0 || t->nreads > HK_UNWIND_TRACE_READS) return;
    unsigned k = 0;
    for (unsigned i = 0; i < t->nreads; i++) {
        if (!(rd->needed >> i & 1)) continue;
        t->at[k] = t->at[i];
        t->val[k++] = t->val[i];
    }
    t->nreads = k;
    t->bp_needed = rd->bp0_needed;
    t->gen = gen + 1;
}

/* The trace of a walk from r, or the one a new walk takes (one from the
 * same place, else the next in turn). */
static unsigned trace_for(hk_unwind_traces *tr, const regs *r) {
    for (unsigned i = 0; i < HK_UNWIND_TRACES; i++)
        if (tr->t[i].sp == r->sp && tr->t[i].ra == r->ra) return i;
    return tr->next++ % HK_UNWIND_TRACES;
}

__attribute__((noinline)) int hk_unwind(void **out, int max, hk_unwind_traces *traces, unsigned *which) {
    uintptr_t *fp = __builtin_frame_address(0); /* this frame keeps rbp */
    regs r = {(uintptr_t)__builtin_return_address(0), (uintptr_t)(fp + 2), fp[0]};
    hk_unwind_trace *trace = NULL;
    if (traces != NULL) {
        *which = trace_for(traces, &r);
        trace = &traces->t[*which];
        if (trace_holds(trace, &r, max)) return HK_UNWIND_SAME;
    }
    check_unloads();
    reads rd = {.t = trace, .bp_from = -1};
    if (trace != NULL) *trace = (hk_unwind_trace){.ra = r.ra, .sp = r.sp, .bp = r.bp, .max = max};
    uint32_t gen = hk_load_relaxed(&rule_gen);
    int n = walk(r, out, max, &rd);
    if (trace != NULL) trace_close(trace, &rd, n, gen);
    return n;
}

#else

void hk_unwind_init(void) {}
int hk_unwind(void **out, int max, hk_unwind_traces *traces, unsigned *which) {
    (void)out;
    (void)max;
    (void)traces;
    if (which != NULL) *which = 0;
    return -1;
}

#endif
