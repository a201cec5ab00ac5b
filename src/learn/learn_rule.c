/*
 * The learner's decision rule and cost model (learn_rule.h says what and
 * why).  Pure functions of their arguments: linked into the library and,
 * alone, into test/unit/test_learn_rule.
 */
#include <stdio.h>
#include <string.h>

#include "learn/learn_rule.h"

void hk_lr_init(hk_lr_knob *k, const uint64_t *values, unsigned n, unsigned home,
                unsigned floor) {
    memset(k, 0, sizeof *k);
    if (n > HK_LR_MAXCAND) n = HK_LR_MAXCAND;
    if (n == 0) n = 1;
    for (unsigned i = 0; i < n; i++) {
        k->value[i] = values[i];
        k->score[i] = -1.0;
    }
    k->ncand = (uint8_t)n;
    k->home = (uint8_t)(home < n ? home : 0);
    k->floor = (uint8_t)(floor <= k->home ? floor : k->home);
    k->cur = k->home;
    k->from = HK_LR_NONE;
    k->skip = true;
    k->backoff[0] = HK_LR_BACKOFF_DOWN;
    k->backoff[1] = HK_LR_BACKOFF_UP;
    k->reach = (uint8_t)(n - 1);
}

int hk_lr_find(const hk_lr_knob *k, uint64_t value) {
    for (unsigned i = 0; i < k->ncand; i++)
        if (k->value[i] == value) return (int)i;
    return -1;
}

static void move_to(hk_lr_knob *k, unsigned i) {
    k->cur = (uint8_t)i;
    k->nsamples = 0;
    k->skip = true;
    k->changes++;
}

static void probe(hk_lr_knob *k, unsigned i) {
    k->from = k->cur;
    move_to(k, i);
}

static bool clearly_better(double a, double than) {
    return a >= 0 && (than < 0 || a < than * (1.0 - HK_LR_MARGIN));
}

/* After HK_LR_DWELL samples on a probed candidate: keep it or go back.  A
 * probe up must be clearly cheaper; a probe down only no dearer, within
 * HK_LR_TIE of noise (on a tie the smaller setting wins). */
static void judge(hk_lr_knob *k) {
    unsigned from = k->from, dir = k->cur > from;
    k->from = HK_LR_NONE;
    double base = k->score[from], s = k->score[k->cur];
    if (base < 0 || (dir ? clearly_better(s, base) : s <= base * (1.0 + HK_LR_TIE))) {
        k->backoff[dir] = dir ? HK_LR_BACKOFF_UP : HK_LR_BACKOFF_DOWN;
        if (dir) k->reach = (uint8_t)(k->ncand - 1u);
        return;
    }
    if (dir && k->cur > from + 1u) {
        /* A long jump up failed: bisect, the next probe goes half as far. */
        k->reach = (uint8_t)(from + (k->cur - from) / 2u);
        k->wait[1] = HK_LR_BACKOFF_UP;
    } else {
        uint32_t b = k->backoff[dir];
        k->wait[dir] = b;
        k->backoff[dir] = b * 2 > HK_LR_BACKOFF_MAX ? HK_LR_BACKOFF_MAX : b * 2;
        if (dir) k->reach = (uint8_t)(k->ncand - 1u); /* the next cycle starts at the top */
    }
    move_to(k, from);
}

static void fold(hk_lr_knob *k, double cost) {
    double *s = &k->score[k->cur];
    k->nsamples++;
    /* The mean of the first samples, then an exponential average. */
    double w = k->nsamples < 4 ? 1.0 / k->nsamples : 0.25;
    *s = k->nsamples == 1 ? cost : *s + w * (cost - *s);
    if (*s < 0) *s = 0;
    k->age[k->cur] = 0;
}

unsigned hk_lr_step(hk_lr_knob *k, const hk_lr_obs *o, bool frozen) {
    for (unsigned i = 0; i < k->ncand; i++)
        if (i != k->cur && k->score[i] >= 0 && ++k->age[i] > HK_LR_AGE_MAX) k->score[i] = -1.0;
    for (unsigned d = 0; d < 2; d++)
        if (k->wait[d] > 0) k->wait[d]--;
    if (!o->active) {
        if (++k->idle > HK_LR_DWELL && k->from != HK_LR_NONE && !frozen) {
            /* A probe the workload left: no data to judge it, go back. */
            unsigned from = k->from;
            k->from = HK_LR_NONE;
            move_to(k, from);
            return k->cur;
        }
        if (k->idle >= HK_LR_IDLE_DRIFT) {
            k->idle = 0;
            if (!frozen && k->from == HK_LR_NONE && k->cur != k->home)
                move_to(k, k->cur > k->home ? k->cur - 1u : k->cur + 1u);
        }
        return k->cur;
    }
    k->idle = 0;
    if (k->skip) { /* the round the move happened in mixes two settings */
        k->skip = false;
        return k->cur;
    }
    fold(k, o->cost);
    if (frozen || k->nsamples < HK_LR_DWELL) return k->cur;
    if (k->from != HK_LR_NONE) {
        judge(k);
        return k->cur;
    }
    unsigned top = o->top && o->top < k->ncand ? o->top : k->ncand - 1u;
    bool grow = !o->no_grow && k->cur < top;
    /* Exploit: a neighbour remembered as clearly cheaper. */
    for (int s = -1; s <= 1; s += 2) {
        int nb = (int)k->cur + s;
        unsigned dir = s > 0;
        if (nb < (int)k->floor || nb >= (int)k->ncand || k->wait[dir] > 0) continue;
        if (dir && !grow) continue;
        if (k->score[nb] >= 0 && clearly_better(k->score[nb], k->score[k->cur])) {
            probe(k, (unsigned)nb);
            return k->cur;
        }
    }
    /* Explore in the direction the counters push: up, optimistically, as far
     * as reach (the largest candidate, then half as far after each failure:
     * a cost curve can be flat until the setting holds a whole working set);
     * down one step at a time. */
    if (o->pressure > 0 && grow && k->wait[1] == 0) {
        unsigned to = k->reach > k->cur ? k->reach : k->cur + 1u;
        probe(k, to < top ? to : top);
    } else if (o->pressure < 0 && k->cur > k->floor && k->wait[0] == 0) {
        probe(k, k->cur - 1u);
    }
    return k->cur;
}

/* ---- costs ---- */

/* Events over dt_ms plus memory held, as ns per second. */
static double rate(double event_ns, uint64_t held_bytes, uint64_t dt_ms) {
    double secs = (double)(dt_ms ? dt_ms : 1) / 1000.0;
    return event_ns / secs + (double)held_bytes / (1024.0 * 1024.0) * HK_LR_NS_MIB_SEC;
}

double hk_lr_cost_tcache(uint64_t nflushes, uint64_t held_bytes, uint64_t dt_ms) {
    return rate((double)nflushes * HK_LR_NS_CHURN, held_bytes, dt_ms);
}

double hk_lr_cost_bigcache(uint64_t misses, uint64_t miss_bytes, uint64_t cached_bytes,
                           uint64_t dt_ms) {
    double faults = (double)miss_bytes / 4096.0 * HK_LR_NS_FAULT;
    return rate((double)misses * HK_LR_NS_MMAP + faults, cached_bytes, dt_ms);
}

double hk_lr_cost_decay(uint64_t refault_bytes, uint64_t npurges, uint64_t dirty_bytes,
                        uint64_t dt_ms) {
    double faults = (double)refault_bytes / 4096.0 * HK_LR_NS_FAULT;
    return rate(faults + (double)npurges * HK_LR_NS_MADVISE, dirty_bytes, dt_ms);
}

/* ---- text ---- */

/* At most 4 characters: "-", "0", ".004", "2.50", "12.5", "125", "1.2k",
 * "125k", "1.2M", "125M", "1.2G"... */
static void fmt_score(double s, char *out, size_t cap) {
    static const char units[] = "kMGT";
    if (s < 0) {
        snprintf(out, cap, "-");
    } else if (s < 0.0005) {
        snprintf(out, cap, "0");
    } else if (s < 0.9995) {
        snprintf(out, cap, ".%03u", (unsigned)(s * 1000.0 + 0.5));
    } else if (s < 9.995) {
        unsigned c = (unsigned)(s * 100.0 + 0.5);
        snprintf(out, cap, "%u.%02u", c / 100, c % 100);
    } else if (s < 99.95) {
        unsigned c = (unsigned)(s * 10.0 + 0.5);
        snprintf(out, cap, "%u.%u", c / 10, c % 10);
    } else if (s < 999.5) {
        snprintf(out, cap, "%u", (unsigned)(s + 0.5));
    } else {
        unsigned u = 0;
        s /= 1000.0;
        while (s >= 999.5 && u < 3) {
            s /= 1000.0;
            u++;
        }
        if (s < 9.95) {
            unsigned c = (unsigned)(s * 10.0 + 0.5);
            snprintf(out, cap, "%u.%u%c", c / 10, c % 10, units[u]);
        } else {
            snprintf(out, cap, "%u%c", (unsigned)(s + 0.5), units[u]);
        }
    }
}

void hk_lr_format(const hk_lr_knob *k, uint64_t div, char *buf, size_t cap) {
    size_t o = 0;
    if (cap == 0) return;
    buf[0] = '\0';
    if (div == 0) div = 1;
    for (unsigned i = 0; i < k->ncand && o + 1 < cap; i++) {
        char sc[16];
        fmt_score(k->score[i], sc, sizeof sc);
        int n = snprintf(buf + o, cap - o, "%s%llu:%s%s", i ? " " : "",
                         (unsigned long long)(k->value[i] / div), sc, i == k->cur ? "*" : "");
        if (n < 0) break;
        o += (size_t)n;
    }
    if (o >= cap) buf[cap - 1] = '\0';
}
