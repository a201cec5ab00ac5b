/*
 * The heap profiler layer offers the records of sampled allocations: the
 * hooks the core's sampling calls (prof.c: a stack table and a sample
 * table of fixed capacity, no malloc), the switches of the prof.* rows,
 * and the dumps (prof_dump.c: the heap_v2 text format that jeprof and
 * pprof read, folded stacks).  The sampling itself is the core's
 * (core/sample.c); doc/PROFILING.md has the method and its error.
 */
#ifndef HK_PROF_H
#define HK_PROF_H

#include "core/core.h"

#pragma GCC visibility push(hidden)

#define HK_PROF_FRAMES 64     /* frames kept per stack */
#define HK_PROF_STACKS 8192   /* distinct stacks (power of two) */
#define HK_PROF_SLOTS 65536   /* sample table slots (power of two), 3/4 usable */

/* ---- prof.c: records (hk_upper's prof_sample / prof_unsample) ---- */
bool hk_prof_record(void *p, size_t size, size_t usable, size_t period);
bool hk_prof_forget(void *p, bool marked);
void hk_prof_fork_child(void);   /* the child starts with an empty profile */
void hk_prof_at_init(void);      /* research mode starts it */

int hk_prof_set_active(bool on); /* 0, or EPERM without statistics */
int hk_prof_set_period(size_t bytes);
void hk_prof_reset(void);

typedef struct hk_prof_stats {
    uint64_t samples;      /* recorded since start or reset */
    uint64_t live_samples; /* recorded blocks not freed yet */
    uint64_t stacks;       /* distinct stacks held */
    uint64_t dropped;      /* samples not recorded: a table was full */
} hk_prof_stats;
void hk_prof_get_stats(hk_prof_stats *out);

/* One stack's totals.  Raw: sampled blocks and their requested bytes;
 * est: the estimates of what the program allocated (doc/PROFILING.md). */
typedef struct hk_prof_site {
    unsigned nframes;
    void *frames[HK_PROF_FRAMES];  /* innermost first: the caller of malloc */
    uint64_t live_n, live_bytes;   /* raw, still allocated */
    uint64_t alloc_n, alloc_bytes; /* raw, since start or reset */
    double live_est, alloc_est;    /* estimated bytes */
} hk_prof_site;
/* A copy of every stack, taken under the profiler's lock into memory
 * mapped for it (hk_prof_snapshot_free unmaps it); NULL when out of memory. */
hk_prof_site *hk_prof_snapshot(size_t *n, size_t *period);
void hk_prof_snapshot_free(hk_prof_site *s);

/* ---- unwind.c: stacks without libgcc (x86-64) ---- */
#define HK_UNWIND_RULES 8192  /* return addresses whose frame rule is kept (power of two) */
/* The table of frame rules; without it every frame's rule is read again. */
void hk_unwind_init(void);
/* What a walk read, so that the next from the same place can be known to
 * give the same frames without being done (a loop's malloc, sampled again
 * and again, has the same stack).  A thread keeps a few (its samples come
 * from a few depths inside the library: small, large and huge blocks). */
#define HK_UNWIND_TRACE_READS 32 /* words a walk's frames depend on (1 or 2 a frame) */
#define HK_UNWIND_TRACES 4
typedef struct hk_unwind_trace {
    uint32_t gen;          /* the rules' generation + 1; 0: holds no walk */
    int max;
    unsigned nreads;       /* the words the frames depend on, in the order read */
    bool bp_needed;        /* the frames depend on the starting rbp */
    uintptr_t ra, sp, bp;  /* the registers the walk started from */
    uintptr_t at[HK_UNWIND_TRACE_READS], val[HK_UNWIND_TRACE_READS];
} hk_unwind_trace;
typedef struct hk_unwind_traces {
    hk_unwind_trace t[HK_UNWIND_TRACES];
    unsigned next; /* the one a walk from a new place replaces */
} hk_unwind_traces;
#define HK_UNWIND_SAME (-2)
/* Up to max return addresses, innermost first (the caller's first, as
 * backtrace() gives them): their number, or -1 where a frame is one this
 * unwinder does not follow (then backtrace() is the way).  With traces:
 * HK_UNWIND_SAME, writing nothing, when the walk trace *which holds would
 * be the same (same registers, rules and words read; the objects loaded
 * are not checked on that path); else the walk is done and trace *which
 * holds it (or none, if it was too long).  Call it from one place: the
 * registers are those of its own frame. */
int hk_unwind(void **out, int max, hk_unwind_traces *traces, unsigned *which);

/* ---- prof_dump.c ---- */
enum hk_prof_format { HK_PROF_PPROF, HK_PROF_FOLDED, HK_PROF_FOLDED_ALLOC };
/* Writes the profile to path, created 0600 (replaced if it is there):
 * 0, or an errno.  A path written is noted for hk_prof_last_dump. */
int hk_prof_dump(const char *path, enum hk_prof_format format);
/* prof.c: the last path written in each format ("" before the first),
 * copied (truncated to cap) under the profiler's lock. */
void hk_prof_note_dump(enum hk_prof_format format, const char *path);
void hk_prof_last_dump(enum hk_prof_format format, char *out, size_t cap);

#pragma GCC visibility pop

#endif
