/*
 * The learner's decision rule, pure: no allocator state, no clock, no locks,
 * no allocation.  learn.c measures and applies; this file decides, and
 * test/unit/test_learn_rule.c drives it with synthetic rounds.
 *
 * A knob has a ladder of candidate settings (ascending).  Each candidate
 * carries a score: the cost (estimated ns per second of run time) measured
 * while it was in force, as the mean of its first samples and then an
 * exponential average.  Every round the rule folds the round's cost into the
 * current candidate's score (the round right after a move is skipped: it
 * mixes two settings) and may move:
 *
 *   judge a probe   after HK_LR_DWELL samples on a probed candidate: a probe
 *                   up stays if it is cheaper than where it came from by
 *                   HK_LR_MARGIN, a probe down if it is no dearer (within
 *                   HK_LR_TIE: ties go to the smaller setting); else back, and the wait before
 *                   probing that way again doubles;
 *   exploit         a neighbour remembered as cheaper by the margin is
 *                   probed again;
 *   explore         pressure +1 (too small: churn, misses, refaults) probes
 *                   the largest candidate -- cost curves of caches are flat
 *                   until the setting holds the whole working set, so a
 *                   neighbour would look no better -- and after a failure
 *                   half as far (bisection), backing off once a one-step
 *                   probe fails; slack -1 (nothing overflowed) probes one
 *                   step down, so a knob that went up walks back down to
 *                   the smallest setting that costs no more.
 *
 * Never below floor; every change is confirmed by fresh measurements or
 * undone; failed probes back off exponentially, so a stationary workload
 * settles and changes a knob O(log rounds) times.  Scores unrefreshed for
 * HK_LR_AGE_MAX rounds are forgotten; a knob idle for HK_LR_IDLE_DRIFT
 * rounds steps back toward home.
 */
#ifndef HK_LEARN_RULE_H
#define HK_LEARN_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_LR_MAXCAND 8
#define HK_LR_NONE 0xff
#define HK_LR_DWELL 2          /* samples on a candidate before it is judged */
#define HK_LR_MARGIN 0.15      /* a probe up must be 15% cheaper to stay */
#define HK_LR_TIE 0.05         /* a probe down may be 5% dearer (noise) */
#define HK_LR_AGE_MAX 600      /* rounds an unrefreshed score is trusted */
#define HK_LR_IDLE_DRIFT 200   /* idle rounds before a step back toward home */
#define HK_LR_BACKOFF_UP 4     /* first wait after a failed probe up (rounds) */
#define HK_LR_BACKOFF_DOWN 40  /* ... down: shrinking only saves memory */
#define HK_LR_BACKOFF_MAX 2048

typedef struct hk_lr_knob {
    uint64_t value[HK_LR_MAXCAND];  /* candidate settings, ascending */
    double score[HK_LR_MAXCAND];    /* cost, ns per second; < 0: unknown */
    uint32_t age[HK_LR_MAXCAND];    /* rounds since score[i] was measured */
    uint32_t nsamples;              /* samples of cur since it was entered */
    uint32_t idle;                  /* consecutive rounds without activity */
    uint32_t backoff[2];            /* [0] down, [1] up: next wait after a failure */
    uint32_t wait[2];               /* rounds before probing that way again */
    uint64_t changes;               /* moves made (probes and returns) */
    uint8_t ncand;
    uint8_t cur;                    /* the candidate in force */
    uint8_t home;                   /* the static default's candidate */
    uint8_t floor;                  /* lowest candidate a probe may try */
    uint8_t from;                   /* probing: where it came from, else HK_LR_NONE */
    uint8_t reach;                  /* the next probe up goes this far */
    bool skip;                      /* the next active round is a transition: ignore it */
} hk_lr_knob;

typedef struct hk_lr_obs {
    bool active;   /* enough operations in the round to judge */
    double cost;   /* ns per second under cur this round */
    int pressure;  /* +1 too small, -1 slack, 0 neither */
    bool no_grow;  /* no probe up this round (another knob is trying one) */
    uint8_t top;   /* the highest candidate a probe up may try; 0: any */
} hk_lr_obs;

/* values[0..n-1] ascending (n <= HK_LR_MAXCAND), home and floor indices. */
void hk_lr_init(hk_lr_knob *k, const uint64_t *values, unsigned n, unsigned home,
                unsigned floor);
/* One round.  Returns the candidate to apply now (k->cur).  frozen: the
 * score is still measured, the knob never moves. */
unsigned hk_lr_step(hk_lr_knob *k, const hk_lr_obs *o, bool frozen);
/* Index of value in the ladder, or -1. */
int hk_lr_find(const hk_lr_knob *k, uint64_t value);

/* ---- costs: ns per second of run time, from one round's counter deltas ----
 * The model: a page handed back by a thread cache costs a round trip
 * through the arena; a 4 KiB page that faults costs HK_LR_NS_FAULT; memory
 * held costs HK_LR_NS_MIB_SEC per MiB per second: 100 us, a tenth of a
 * millisecond of CPU, about what 1 MiB costs against one CPU at cloud
 * prices (a GiB-hour is about a tenth of a vCPU-hour).  Rates, not costs per
 * operation, so that memory is not free for a busy program. */
#define HK_LR_NS_CHURN 200.0      /* a page handed back and fetched again
                                    (60-200 ns measured uncontended) */
#define HK_LR_NS_FAULT 1000.0     /* first touch of a 4 KiB page */
#define HK_LR_NS_MADVISE 5000.0   /* one purge call */
#define HK_LR_NS_MMAP 10000.0     /* one mmap + munmap pair */
#define HK_LR_NS_MIB_SEC 100000.0 /* 1 MiB held for 1 s */

/* Thread cache of a class over dt_ms: nflushes pages handed back,
 * held_bytes the most it lets the threads keep. */
double hk_lr_cost_tcache(uint64_t nflushes, uint64_t held_bytes, uint64_t dt_ms);
/* BigCache: misses a bigger cache would have served (miss_bytes mapped for
 * them), cached_bytes held. */
double hk_lr_cost_bigcache(uint64_t misses, uint64_t miss_bytes, uint64_t cached_bytes,
                           uint64_t dt_ms);
/* Decay: refault_bytes of pages allocated on purged memory, npurges purge
 * calls, dirty_bytes free but resident. */
double hk_lr_cost_decay(uint64_t refault_bytes, uint64_t npurges, uint64_t dirty_bytes,
                        uint64_t dt_ms);

/* "value:score ..." with the current candidate marked '*', unknown scores
 * '-', values divided by div; scores (ns per second) in at most 4
 * characters: "0", ".004", "2.50", "125", "1.2k", "35M"... */
void hk_lr_format(const hk_lr_knob *k, uint64_t div, char *buf, size_t cap);

#endif
