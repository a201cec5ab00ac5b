/*
 * The base layer's types: the memory layout's constants, the features and
 * modes, and the options read at start-up.  No allocator state.
 */
#ifndef HK_BASE_TYPES_H
#define HK_BASE_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hakmem/hakmem.h>


#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hakmem/hakmem.h>

#define HK_SEG_SHIFT 21
#define HK_SEG_SIZE ((size_t)1 << HK_SEG_SHIFT)
#define HK_SEG_MASK (HK_SEG_SIZE - 1)
#define HK_SLICE_SHIFT 16
#define HK_SLICE_SIZE ((size_t)1 << HK_SLICE_SHIFT)
#define HK_SLICES (HK_SEG_SIZE >> HK_SLICE_SHIFT) /* 32 */
#define HK_OS_PAGE 4096

#define HK_TINY_MAX 1024
#define HK_MID_MAX (32 * 1024)
#define HK_LARGE_MAX (1024 * 1024)
/* The largest block served from a segment: two pages of its class fit in
 * the 31 free slices.  Larger requests (the 1 MiB class would leave half a
 * segment unused, and its address space counts under RLIMIT_AS) get a
 * mapping of their own; class 60 is then used by checked blocks only. */
#define HK_SEGMENT_BLOCK_MAX (896 * 1024)
#define HK_NCLASSES 61
#define HK_TINY_NCLASSES 21  /* classes 0..20: 8 B .. 1 KiB */
#define HK_MID_NCLASSES 20   /* classes 21..40: 1280 B .. 32 KiB */
#define HK_LARGE_NCLASSES 20 /* classes 41..60: 40 KiB .. 1 MiB */

#define HK_MAX_ARENAS 64
#define HK_HUGE_OFFSET 4096 /* user pointer of an unaligned huge block */


/* Runtime features (doc/DESIGN.md section 3): a mode is a preset of these. */
enum hk_feature {
    HK_FEAT_TCACHE,     /* per-thread heaps (off: the arena's locked heap) */
    HK_FEAT_BIGCACHE,   /* keep freed huge mappings for reuse */
    HK_FEAT_DECAY,      /* purge free pages after decay_ms (off: never) */
    HK_FEAT_STATS_PAGE, /* publish the shared-memory stats page */
    HK_FEAT_LEARNER,    /* adaptive tuning of the knobs (learn/) */
    HK_FEAT_DEBUG_CHECKS, /* double free, junk, canaries, guards (core/checked.c) */
    HK_FEAT_COUNT
};

enum hk_mode {
    HK_MODE_MINIMAL, HK_MODE_FAST, HK_MODE_BALANCED, HK_MODE_LEARNING,
    HK_MODE_RESEARCH, HK_MODE_COUNT
};

/* Options, set once at start-up from HAKMEM_MODE and HAKMEM_CONF (conf.c). */
typedef struct hk_options {
    unsigned mode;                 /* enum hk_mode */
    bool features[HK_FEAT_COUNT];  /* after the mode preset and overrides */
    unsigned narenas;              /* 0 before init; then the arena count */
    size_t bigcache_max_mb;        /* BigCache capacity */
    int64_t decay_ms;              /* purge free pages after; -1 never, 0 at once */
    unsigned thp;                  /* 1: MADV_HUGEPAGE on huge blocks */
    bool stats_print;              /* print statistics at exit */
    char stats_print_opts[16];     /* options for that print ("J": JSON) */
    bool prof;                     /* the heap profiler on from the start */
    char prof_dump_at_exit[256];   /* write a heap profile here at exit ("": none) */
    size_t prof_sample_bytes;      /* the profiler's mean bytes between samples at start (0: default) */
    unsigned stats_page_interval_ms; /* refresh the stats page at most this often */
    unsigned stats_page_delay_ms;  /* create it only after the process lived this long */
    bool background_thread;        /* a thread keeps the page fresh */
    bool decay_thread;             /* a thread purges aged memory in a quiet process */
    bool crash_report;             /* SIGSEGV/SIGBUS/SIGABRT report */
    bool abort_on_error;           /* abort on a detected misuse */
    unsigned guard_sample;         /* debug checks: 1 in N small blocks guarded */
    uint64_t fail_mmap_after;      /* debug builds: mmap fails after N calls (0 off) */
    unsigned validate;             /* debug builds: validity checks, 0 none, 1 cheap, 2 deep */
    uint32_t tcache_max[HK_NCLASSES]; /* conf tcache_max:CLASS=N: N + 1; 0 default */
} hk_options;

#endif
