/* The learner's rule (src/learn_rule.c, linked in alone): synthetic rounds
 * with costs from a model workload drive hk_lr_step, deterministically --
 * no clock, no allocator counters.  The knob must move the right way,
 * settle on the cheapest candidate, change a bounded number of times, stay
 * put when frozen or without pressure, and drift home when idle; the cost
 * functions must rise with what they charge for. */
#include "harness.h"
#include "learn/learn_rule.h"

#include <stdio.h>
#include <string.h>

/* A thread cache of one class: the ladder in pages, a workload that frees
 * and reallocates `need` pages a batch, `batches` batches a round of 50 ms.
 * Pages beyond the setting are handed back and fetched again. */
static const uint64_t pages[7] = {1, 2, 4, 8, 16, 32, 64};

typedef struct model {
    uint64_t need, batches, page_bytes;
} model;

static hk_lr_obs observe(const hk_lr_knob *k, const model *m) {
    uint64_t have = k->value[k->cur];
    uint64_t churn = m->need > have ? (m->need - have) * m->batches : 0;
    hk_lr_obs o = {true, 0, 0};
    o.cost = hk_lr_cost_tcache(churn, have * m->page_bytes, 50);
    o.pressure = churn > 0 ? 1 : -1;
    return o;
}

/* Runs n rounds; returns the rounds spent at the candidate `at` (or all). */
static unsigned run(hk_lr_knob *k, const model *m, unsigned n, bool frozen, int at) {
    unsigned there = 0;
    for (unsigned r = 0; r < n; r++) {
        hk_lr_obs o = observe(k, m);
        hk_lr_step(k, &o, frozen);
        if (k->cur < k->floor || k->cur >= k->ncand)
            hk_test_fail(__FILE__, __LINE__, "round %u: cur %u out of [%u, %u)", r, k->cur,
                         k->floor, k->ncand);
        if (at < 0 || k->cur == (unsigned)at) there++;
    }
    return there;
}

TEST(learn_rule_init_starts_at_home) {
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    EXPECT_EQ_U(k.ncand, 7, "candidates");
    EXPECT_EQ_U(k.cur, 0, "starts at home");
    EXPECT_EQ_U(k.changes, 0, "no change yet");
    for (unsigned i = 0; i < 7; i++) EXPECT_TRUE(k.score[i] < 0, "scores unknown");
    EXPECT_EQ_U(hk_lr_find(&k, 16), 4, "find 16");
    EXPECT_LT_I(hk_lr_find(&k, 3), 0, "3 is not a candidate");
    char buf[96];
    hk_lr_format(&k, 1, buf, sizeof buf);
    EXPECT_STREQ(buf, "1:-* 2:- 4:- 8:- 16:- 32:- 64:-", buf);
}

TEST(learn_rule_churn_moves_up_and_settles) {
    /* 20 pages of 64 KiB churn per batch at the default: the knob must end
     * at 32 pages (the smallest that holds the batch), get there early, and
     * stay, changing a bounded number of times. */
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {20, 400, 64 << 10};
    run(&k, &m, 40, false, -1);
    EXPECT_EQ_U(k.value[k.cur], 32, "settled on the batch's size within 40 rounds");
    EXPECT_TRUE(k.score[5] >= 0 && k.score[5] < k.score[0], "32 pages scores below the default");
    uint64_t changes = k.changes;
    unsigned at32 = run(&k, &m, 4000, false, 5);
    EXPECT_EQ_U(k.value[k.cur], 32, "still there after 4000 rounds");
    EXPECT_GE_U(at32, 4000 * 97 / 100, "at least 97% of the rounds on it");
    EXPECT_LE_U(k.changes - changes, 2 * 8, "failed probes back off: O(log rounds) changes");
    EXPECT_TRUE(k.score[0] < 0, "a score unrefreshed for long is forgotten");
}

TEST(learn_rule_no_pressure_stays_home) {
    /* The batch fits the default: nothing to gain, never moves. */
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {1, 400, 64 << 10};
    unsigned home = run(&k, &m, 2000, false, 0);
    EXPECT_EQ_U(home, 2000, "every round at home");
    EXPECT_EQ_U(k.changes, 0, "no change");
}

TEST(learn_rule_walks_back_down_when_the_need_shrinks) {
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {40, 400, 64 << 10};
    run(&k, &m, 100, false, -1);
    EXPECT_EQ_U(k.value[k.cur], 64, "a batch of 40 pages: 64");
    m.need = 6; /* the workload changed: a smaller batch */
    run(&k, &m, 3000, false, -1);
    EXPECT_EQ_U(k.value[k.cur], 8, "walked down to the smallest setting that holds 6 pages");
}

TEST(learn_rule_flat_cost_does_not_oscillate) {
    /* Pressure that no candidate relieves (the batch is larger than the
     * ladder and churn costs the same everywhere): a cycle of probes up
     * (the top, then half as far, then one step: 3 probes, 6 changes with
     * the returns) fails, and the wait before the next cycle doubles, so
     * changes grow logarithmically. */
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    unsigned changes_at[3] = {0};
    for (unsigned r = 0; r < 8000; r++) {
        hk_lr_obs o = {true, 1e6 + (double)k.value[k.cur] * 10.0, 1};
        hk_lr_step(&k, &o, false);
        if (r == 999) changes_at[0] = (unsigned)k.changes;
        if (r == 3999) changes_at[1] = (unsigned)k.changes;
    }
    changes_at[2] = (unsigned)k.changes;
    EXPECT_EQ_U(k.cur, 0, "back at home");
    EXPECT_LE_U(changes_at[0], 9 * 6, "at most 9 cycles in 1000 rounds");
    EXPECT_LE_U(changes_at[2] - changes_at[1], 2 * 6, "at most 2 in the last 4000");
}

TEST(learn_rule_bisects_when_the_top_costs_too_much) {
    /* 6 pages of 128 KiB churn per batch, 10 batches a round: holding 64
     * pages costs more than the churn, holding 8 far less.  The probe to the
     * top fails, the next goes half as far (8 pages) and stays. */
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {6, 10, 128 << 10};
    run(&k, &m, 60, false, -1);
    EXPECT_EQ_U(k.value[k.cur], 8, "8 pages");
    EXPECT_TRUE(k.score[6] > k.score[0], "the top was measured dearer than the default");
    unsigned at8 = run(&k, &m, 2000, false, 3);
    EXPECT_GE_U(at8, 2000 * 97 / 100, "and stays");
}

TEST(learn_rule_frozen_never_moves) {
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {20, 400, 64 << 10};
    unsigned home = run(&k, &m, 500, true, 0);
    EXPECT_EQ_U(home, 500, "frozen: every round where it was");
    EXPECT_EQ_U(k.changes, 0, "frozen: no change");
    EXPECT_TRUE(k.score[0] > 0, "frozen: still measured");
    run(&k, &m, 40, false, -1);
    EXPECT_EQ_U(k.value[k.cur], 32, "thawed: learns");
    uint64_t changes = k.changes;
    m.need = 2;
    run(&k, &m, 2000, true, -1);
    EXPECT_EQ_U(k.value[k.cur], 32, "frozen again: the choice is pinned");
    EXPECT_EQ_U(k.changes, changes, "frozen again: no change");
}

TEST(learn_rule_idle_drifts_home) {
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {20, 400, 64 << 10};
    run(&k, &m, 40, false, -1);
    REQUIRE_EQ_U(k.value[k.cur], 32, "learned 32");
    hk_lr_obs idle = {false, 0, 0};
    for (unsigned r = 0; r < HK_LR_IDLE_DRIFT - 1; r++) hk_lr_step(&k, &idle, false);
    EXPECT_EQ_U(k.value[k.cur], 32, "not before the drift period");
    hk_lr_step(&k, &idle, false);
    EXPECT_EQ_U(k.value[k.cur], 16, "one step down after it");
    for (unsigned r = 0; r < 10 * HK_LR_IDLE_DRIFT; r++) hk_lr_step(&k, &idle, false);
    EXPECT_EQ_U(k.cur, k.home, "home at last");
    uint64_t changes = k.changes;
    for (unsigned r = 0; r < 3 * HK_LR_IDLE_DRIFT; r++) hk_lr_step(&k, &idle, false);
    EXPECT_EQ_U(k.changes, changes, "and stays");
}

TEST(learn_rule_probe_left_idle_goes_back) {
    /* A probe up whose workload stops cannot be judged: back after a few
     * idle rounds (so it holds no memory and blocks no other probe). */
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {20, 400, 64 << 10};
    for (unsigned r = 0; r < 10 && k.from == HK_LR_NONE; r++) {
        hk_lr_obs o = observe(&k, &m);
        hk_lr_step(&k, &o, false);
    }
    REQUIRE_TRUE(k.from != HK_LR_NONE && k.cur > k.from, "a probe up started");
    unsigned from = k.from;
    hk_lr_obs idle = {false, 0, 0};
    for (unsigned r = 0; r <= HK_LR_DWELL; r++) hk_lr_step(&k, &idle, false);
    EXPECT_EQ_U(k.cur, from, "back where it came from");
    EXPECT_EQ_U(k.from, HK_LR_NONE, "no probe in flight");
}

TEST(learn_rule_no_grow_and_top_limit_probes) {
    hk_lr_knob k;
    hk_lr_init(&k, pages, 7, 0, 0);
    model m = {20, 400, 64 << 10};
    for (unsigned r = 0; r < 200; r++) {
        hk_lr_obs o = observe(&k, &m);
        o.no_grow = true;
        hk_lr_step(&k, &o, false);
    }
    EXPECT_EQ_U(k.changes, 0, "no_grow: never up");
    for (unsigned r = 0; r < 200; r++) {
        hk_lr_obs o = observe(&k, &m);
        o.top = 3;
        hk_lr_step(&k, &o, false);
        EXPECT_LE_U(k.cur, 3, "never above top");
    }
    EXPECT_EQ_U(k.value[k.cur], 8, "the best it may try");
}

TEST(learn_rule_floor_is_respected) {
    /* Slack at home never probes below the floor. */
    static const uint64_t ladder[4] = {10, 20, 40, 80};
    hk_lr_knob k;
    hk_lr_init(&k, ladder, 4, 1, 1);
    EXPECT_EQ_U(k.cur, 1, "starts at home 1");
    for (unsigned r = 0; r < 1000; r++) {
        hk_lr_obs o = {true, 100.0, -1};
        hk_lr_step(&k, &o, false);
        EXPECT_GE_U(k.cur, 1, "never below the floor");
    }
    EXPECT_EQ_U(k.changes, 0, "slack at the floor: no move");
}

TEST(learn_rule_costs_rise_with_what_they_charge) {
    EXPECT_TRUE(hk_lr_cost_tcache(10, 0, 50) > hk_lr_cost_tcache(1, 0, 50), "churn");
    EXPECT_TRUE(hk_lr_cost_tcache(0, 8 << 20, 50) > hk_lr_cost_tcache(0, 1 << 20, 50), "memory");
    EXPECT_TRUE(hk_lr_cost_tcache(0, 0, 50) == 0, "nothing costs nothing");
    EXPECT_TRUE(hk_lr_cost_tcache(10, 0, 100) < hk_lr_cost_tcache(10, 0, 50), "a rate");
    EXPECT_TRUE(hk_lr_cost_bigcache(2, 16 << 20, 0, 50) > hk_lr_cost_bigcache(1, 8 << 20, 0, 50),
                "misses");
    EXPECT_TRUE(hk_lr_cost_bigcache(0, 0, 256u << 20, 50) > hk_lr_cost_bigcache(0, 0, 64u << 20, 50),
                "bytes cached");
    EXPECT_TRUE(hk_lr_cost_decay(64 << 10, 0, 0, 50) > 0, "refaults");
    EXPECT_TRUE(hk_lr_cost_decay(0, 2, 0, 50) > hk_lr_cost_decay(0, 1, 0, 50), "purge calls");
    EXPECT_TRUE(hk_lr_cost_decay(0, 0, 100 << 20, 50) > hk_lr_cost_decay(0, 0, 10 << 20, 50),
                "dirty bytes");
    /* A missed 8 MiB block outweighs holding it for a round. */
    EXPECT_TRUE(hk_lr_cost_bigcache(1, 8 << 20, 0, 50) > hk_lr_cost_bigcache(0, 0, 8 << 20, 50),
                "a miss costs more than a round of holding");
}

TEST(learn_rule_bigcache_grows_to_the_working_set) {
    /* A working set of 12 x 10 MiB mappings churned 20 times a round: the
     * cache misses what it cannot hold; it must end at 128 MiB (the
     * smallest candidate that holds 120 MiB). */
    static const uint64_t mib[5] = {64, 128, 256, 512, 1024};
    hk_lr_knob k;
    hk_lr_init(&k, mib, 5, 0, 0);
    for (unsigned r = 0; r < 3000; r++) {
        uint64_t cap = k.value[k.cur], fit = cap / 10 < 12 ? cap / 10 : 12;
        uint64_t misses = (12 - fit) * 20;
        hk_lr_obs o = {true, 0, misses ? 1 : -1};
        o.cost = hk_lr_cost_bigcache(misses, misses * (10 << 20), fit * (10 << 20), 50);
        hk_lr_step(&k, &o, false);
    }
    EXPECT_EQ_U(k.value[k.cur], 128, "128 MiB");
    EXPECT_LE_U(k.changes, 40, "bounded changes");
}

TEST(learn_rule_format_marks_and_scales) {
    static const uint64_t v[3] = {64u << 20, 128u << 20, 256u << 20};
    hk_lr_knob k;
    hk_lr_init(&k, v, 3, 0, 0);
    k.score[0] = 1234567.0;
    k.score[1] = 2.5;
    k.cur = 1;
    char buf[96];
    hk_lr_format(&k, 1u << 20, buf, sizeof buf);
    EXPECT_STREQ(buf, "64:1.2M 128:2.50* 256:-", buf);
    k.score[0] = 0.004;
    k.score[2] = 512.0;
    hk_lr_format(&k, 1u << 20, buf, sizeof buf);
    EXPECT_STREQ(buf, "64:.004 128:2.50* 256:512", buf);
    char tiny[8];
    hk_lr_format(&k, 1u << 20, tiny, sizeof tiny);
    EXPECT_LT_U(strlen(tiny), sizeof tiny, "truncated, terminated");
}

TEST_MAIN()
