/*
 * The heap profiler under load (doc/PROFILING.md).  Profiling is on at a
 * small sample_bytes while threads allocate, free their own blocks and each
 * other's (remote frees), short-lived threads leave blocks behind them that
 * are freed after they exited, a thread dumps the profile and parses every
 * dump, and the main thread flips prof.active, prof.sample_bytes and
 * config.mode and calls prof.reset.  Every block's contents are checked
 * before it is freed; with every block freed, no record of this program's
 * sites is live, and prof.stats.* agree with each other.  Also: a sample
 * table filled by several threads counts its drops and empties again; fork
 * children of a loaded parent start with an empty profile, and a child of a
 * quiet one profiles only itself; a thread's records outlive it; profiling
 * on from the start (HAKMEM_CONF=prof:1) with threads that take their first
 * samples at once.
 *
 * A watchdog thread reports a test that runs past its deadline as a failure
 * (with the closing line the runner reads) instead of hanging.
 */
#include "harness.h"
#include "stress_common.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define SLOTS_MAX 49152 /* prof.c: live records, 3/4 of HK_PROF_SLOTS */
#define STACKS_MAX 7168 /* prof.c: distinct stacks, 7/8 of HK_PROF_STACKS */
#define SLACK 16        /* records of blocks libc allocated meanwhile */

/* ---- the watchdog ---- */

static _Atomic uint64_t wd_deadline; /* ms (hk_test_now_ms), 0: disarmed */
static _Atomic(const char *) wd_name;
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;

static void *watchdog(void *v) {
    for (;;) {
        hk_test_sleep_ms(100);
        uint64_t d = atomic_load(&wd_deadline);
        if (d == 0 || hk_test_now_ms() < d) continue;
        char line[256];
        snprintf(line, sizeof line, "FAIL %s: still running at its deadline (watchdog): a hang\n"
                 "0 passed, 1 failed\n", atomic_load(&wd_name));
        hk_test_out(line);
        _exit(1);
    }
    return v;
}

static void watchdog_start(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
}

/* The deadline: secs at HAKMEM_TEST_SCALE=1 outside the sanitizers. */
static void watchdog_arm(const char *name, unsigned secs) {
    pthread_once(&wd_once, watchdog_start);
    atomic_store(&wd_name, name);
    uint64_t ms = 1000ull * secs * hk_test_scale() * hk_storm_san_div();
    atomic_store(&wd_deadline, hk_test_now_ms() + ms);
}

static void watchdog_disarm(void) { atomic_store(&wd_deadline, 0); }

/* ---- the control names ---- */

static int set_bool(const char *name, bool v) { return hak_ctl(name, NULL, NULL, &v, sizeof v); }
static int set_size(const char *name, size_t v) { return hak_ctl(name, NULL, NULL, &v, sizeof v); }
static int set_str(const char *name, const char *v) { return hak_ctl(name, NULL, NULL, &v, sizeof v); }
static uint64_t rd_u64(const char *name) {
    uint64_t v = UINT64_MAX;
    size_t len = sizeof v;
    hak_ctl(name, &v, &len, NULL, 0);
    return v;
}
static bool rd_bool(const char *name) {
    bool v = false;
    size_t len = sizeof v;
    hak_ctl(name, &v, &len, NULL, 0);
    return v;
}
static void prof_reset(void) { hak_ctl("prof.reset", NULL, NULL, NULL, 0); }

struct prof_stats {
    uint64_t samples, live, stacks, dropped;
};
/* live first: samples only grow until a reset, so samples >= live holds
 * across the two reads while nobody else resets. */
static struct prof_stats stats_read(void) {
    struct prof_stats s;
    s.live = rd_u64("prof.stats.live_samples");
    s.stacks = rd_u64("prof.stats.stacks");
    s.dropped = rd_u64("prof.stats.dropped");
    s.samples = rd_u64("prof.stats.samples");
    return s;
}

/* "" when consistent, else what is wrong. */
static const char *stats_wrong(const struct prof_stats *s) {
    if (s->live > s->samples) return "live_samples > samples";
    if (s->live > SLOTS_MAX) return "live_samples beyond the sample table";
    if (s->stacks > STACKS_MAX) return "stacks beyond the stack table";
    return "";
}

/* ---- dumps ---- */

static size_t load(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return n;
}

/* A heap dump (gperftools' text heap profile, heap_v2 sampling): its
 * header's totals (t) and the sums of its stacks (s): live blocks, live
 * bytes, allocated blocks, allocated bytes. */
struct pprof {
    unsigned long long period, t[4], s[4];
    unsigned stacks;
};

/* "n: bytes [n: bytes] @" at *at; *at moved past the '@'. */
static bool parse_counts(const char **at, unsigned long long c[4]) {
    int used = 0;
    if (sscanf(*at, "%llu: %llu [%llu: %llu] @%n", &c[0], &c[1], &c[2], &c[3], &used) != 4 || used == 0)
        return false;
    *at += used;
    return true;
}

/* NULL when the dump is well formed (every stack has live <= allocated, the
 * stacks add up to the totals), else what is wrong. */
static const char *parse_pprof(const char *text, struct pprof *o) {
    memset(o, 0, sizeof *o);
    static const char head[] = "heap profile: ";
    if (strncmp(text, head, sizeof head - 1) != 0) return "no heap profile header";
    const char *at = text + sizeof head - 1;
    if (!parse_counts(&at, o->t)) return "bad totals";
    if (strncmp(at, " heap_v2/", 9) != 0) return "no heap_v2 sampling in the header";
    char *end;
    o->period = strtoull(at + 9, &end, 10);
    if (o->period == 0 || *end != '\n') return "bad period";
    at = end + 1;
    while (*at >= '0' && *at <= '9') {
        unsigned long long c[4];
        if (!parse_counts(&at, c)) return "bad stack counts";
        const char *nl = strchr(at, '\n');
        if (nl == NULL) return "unterminated stack line";
        for (const char *f = at; f < nl; f++)
            if (*f != ' ' && *f != 'x' && !(*f >= '0' && *f <= '9') && !(*f >= 'a' && *f <= 'f'))
                return "bad frame";
        at = nl + 1;
        if (c[0] > c[2] || c[1] > c[3]) return "a stack holds more live than it allocated";
        for (int i = 0; i < 4; i++) o->s[i] += c[i];
        o->stacks++;
    }
    if (strncmp(at, "\nMAPPED_LIBRARIES:\n", 19) != 0) return "no MAPPED_LIBRARIES section";
    for (int i = 0; i < 4; i++)
        if (o->s[i] != o->t[i]) return "the stacks do not add up to the totals";
    return NULL;
}

/* ---- blocks ---- */

struct blk {
    unsigned char *p;
    size_t n;
    uint64_t tag;
};

static hk_errs errs;

/* The allocation sites, by name in folded dumps (-rdynamic).  The volatile
 * keeps the call from becoming a tail call, which would leave the site's
 * frame out of the stack. */
__attribute__((noinline)) void *prof_stress_site_worker(size_t n) {
    void *volatile p = hak_malloc(n);
    return p;
}
__attribute__((noinline)) void *prof_stress_site_churn(size_t n) {
    void *volatile p = hak_malloc(n);
    return p;
}
__attribute__((noinline)) void *prof_stress_site_exit(size_t n) {
    void *volatile p = hak_malloc(n);
    return p;
}
__attribute__((noinline)) void *prof_stress_site_table(size_t n) {
    void *volatile p = hak_malloc(n);
    return p;
}
__attribute__((noinline)) void *prof_stress_site_child(size_t n) {
    void *volatile p = hak_malloc(n);
    return p;
}

static bool blk_new(struct blk *b, void *(*site)(size_t), size_t n, uint64_t tag) {
    b->p = site(n);
    b->n = n;
    b->tag = tag;
    if (!hk_check_new(&errs, "new block", b->p, n)) {
        hak_free(b->p);
        b->p = NULL;
        return false;
    }
    hk_fill(b->p, n, tag);
    return true;
}

static void blk_free(struct blk *b, const char *where) {
    if (b->p == NULL) return;
    hk_verify(&errs, where, b->p, b->n, b->tag);
    hak_free(b->p);
    b->p = NULL;
}

/* Mostly small, up to 1 MiB; huge (up to 2 MiB) 1 in 64. */
static size_t pick_size(hk_rng *r) {
    if (hk_below(r, 64) == 0) return HK_LARGE_MAX + 1 + hk_below(r, HK_LARGE_MAX);
    return hk_random_size(r, 0);
}

/* ---- prof_under_load: the workers ---- */

enum { NSLOT = 96, MBOX = 64, MAX_WORKERS = 16, CHURN_THREADS = 4, CHURN_BLOCKS = 24 };

struct mailbox {
    pthread_mutex_t mu;
    struct blk b[MBOX];
    unsigned count;
};

static struct mailbox boxes[MAX_WORKERS] = {[0 ... MAX_WORKERS - 1] = {.mu = PTHREAD_MUTEX_INITIALIZER}};
static unsigned nworkers;
static atomic_int stop;
static atomic_ullong nops, nremote, nchurn, ndumps;

/* Hands b to worker `to`, who frees it (a remote free); b is freed here
 * when the mailbox is full. */
static void mbox_send(unsigned to, struct blk *b) {
    struct mailbox *m = &boxes[to];
    pthread_mutex_lock(&m->mu);
    bool room = m->count < MBOX;
    if (room) m->b[m->count++] = *b;
    pthread_mutex_unlock(&m->mu);
    if (room) b->p = NULL;
    else blk_free(b, "own block (mailbox full)");
}

static void mbox_drain(unsigned me) {
    struct blk got[MBOX];
    struct mailbox *m = &boxes[me];
    pthread_mutex_lock(&m->mu);
    unsigned n = m->count;
    memcpy(got, m->b, n * sizeof got[0]);
    m->count = 0;
    pthread_mutex_unlock(&m->mu);
    for (unsigned i = 0; i < n; i++) blk_free(&got[i], "block from another thread");
    atomic_fetch_add_explicit(&nremote, n, memory_order_relaxed);
}

static void worker_step(unsigned me, hk_rng *r, struct blk *slot, uint64_t *seq) {
    struct blk *b = &slot[hk_below(r, NSLOT)];
    unsigned op = (unsigned)hk_below(r, 16);
    if (op < 8) { /* replace */
        blk_free(b, "own block");
        blk_new(b, prof_stress_site_worker, pick_size(r), hk_mix64(((uint64_t)me << 40) ^ (*seq)++));
    } else if (op < 10) {
        blk_free(b, "own block");
    } else if (op < 13) {
        if (b->p != NULL && nworkers > 1) {
            unsigned to = (me + 1 + (unsigned)hk_below(r, nworkers - 1)) % nworkers;
            mbox_send(to, b);
        }
    } else if (op < 15) {
        mbox_drain(me);
    } else if (b->p != NULL) { /* realloc: the prefix that both sizes hold survives */
        size_t n = pick_size(r);
        unsigned char *q = hak_realloc(b->p, n);
        if (n == 0) { /* realloc(p, 0) frees p */
            b->p = NULL;
            return;
        }
        if (q == NULL) {
            HK_ERR(&errs, "realloc(%p, %zu) failed", (void *)b->p, n);
            return;
        }
        size_t keep = hk_min(n, b->n);
        if (hk_check_prefix(q, b->n, keep, b->tag) != keep)
            HK_ERR(&errs, "realloc %zu -> %zu lost the contents", b->n, n);
        b->p = q;
        b->n = n;
        hk_fill(q, n, b->tag);
    }
}

static void *worker(void *v) {
    unsigned me = (unsigned)(uintptr_t)v;
    struct blk slot[NSLOT];
    memset(slot, 0, sizeof slot);
    hk_rng r;
    hk_rng_seed(&r, 0x5A3 + me);
    uint64_t seq = 0, ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        worker_step(me, &r, slot, &seq);
        ops++;
    }
    for (unsigned i = 0; i < NSLOT; i++) blk_free(&slot[i], "own block at the end");
    atomic_fetch_add(&nops, ops);
    return NULL;
}

/* ---- prof_under_load: thread churn ----
 * Thread i of each generation frees what thread i of the previous one left
 * (its owner has exited: its pages are abandoned or adopted), allocates
 * CHURN_BLOCKS, frees a third and leaves the rest. */

static struct blk orphans[CHURN_THREADS][CHURN_BLOCKS];

struct churn_arg {
    unsigned i;
    uint64_t gen;
};

static void *churn_child(void *v) {
    struct churn_arg *a = v;
    struct blk *mine = orphans[a->i];
    hk_rng r;
    hk_rng_seed(&r, (a->gen << 8) + a->i);
    for (unsigned k = 0; k < CHURN_BLOCKS; k++) blk_free(&mine[k], "block of an exited thread");
    for (unsigned k = 0; k < CHURN_BLOCKS; k++) {
        size_t n = hk_below(&r, 8) == 0 ? hk_range(&r, 4 * KiB, 96 * KiB) : hk_range(&r, 1, 1024);
        blk_new(&mine[k], prof_stress_site_churn, n, hk_mix64((a->gen << 20) ^ (a->i << 8) ^ k));
    }
    for (unsigned k = 0; k < CHURN_BLOCKS; k += 3) blk_free(&mine[k], "block of this thread");
    return NULL;
}

static void *churner(void *v) {
    for (uint64_t gen = 1; !atomic_load_explicit(&stop, memory_order_relaxed); gen++) {
        pthread_t t[CHURN_THREADS];
        struct churn_arg a[CHURN_THREADS];
        unsigned started = 0;
        for (unsigned i = 0; i < CHURN_THREADS; i++) {
            a[i] = (struct churn_arg){i, gen};
            if (pthread_create(&t[i], NULL, churn_child, &a[i]) != 0) break;
            started++;
        }
        for (unsigned i = 0; i < started; i++) pthread_join(t[i], NULL);
        atomic_fetch_add(&nchurn, started);
    }
    return v;
}

/* ---- prof_under_load: the dumper ---- */

static const unsigned long long periods[4] = {1024, 4096, 16384, 65536};
static char dumper_text[1 << 20];
static char dump_path[64];

static void *dumper(void *v) {
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int rc = set_str("prof.dump", dump_path);
        if (rc != 0) {
            HK_ERR(&errs, "prof.dump %s: %d", dump_path, rc);
        } else {
            load(dump_path, dumper_text, sizeof dumper_text);
            struct pprof d;
            const char *bad = parse_pprof(dumper_text, &d);
            if (bad != NULL) HK_ERR(&errs, "dump under load: %s", bad);
            bool known = d.period == 512 * KiB;
            for (int i = 0; i < 4; i++) known |= d.period == periods[i];
            if (bad == NULL && !known) HK_ERR(&errs, "dump under load: period %llu", d.period);
            atomic_fetch_add(&ndumps, 1);
        }
        hk_test_sleep_ms(2);
    }
    return v;
}

static void sleep_us(unsigned us) {
    struct timespec ts = {0, (long)us * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* What the main thread does while the others run: flips prof.active,
 * prof.sample_bytes and config.mode, resets, checks the counts.  Returns
 * the samples it saw (summed over resets). */
static uint64_t control(uint64_t ms, unsigned *nflips, unsigned *nbad) {
    static const char *const modes[5] = {"minimal", "fast", "balanced", "learning", "research"};
    hk_rng r;
    hk_rng_seed(&r, 0xC0DE);
    uint64_t seen = 0, t0 = hk_test_now_ms();
    bool on = true;
    while (hk_test_now_ms() - t0 < ms) {
        unsigned k = (unsigned)hk_below(&r, 16);
        int rc = 0;
        if (k < 5) rc = set_bool("prof.active", on = !on);
        else if (k < 9) rc = set_size("prof.sample_bytes", periods[hk_below(&r, 4)]);
        else if (k < 11) rc = set_str("config.mode", modes[hk_below(&r, 5)]);
        else if (k < 13) {
            seen += rd_u64("prof.stats.samples");
            prof_reset();
        } else {
            struct prof_stats s = stats_read();
            const char *bad = stats_wrong(&s);
            if (*bad) HK_ERR(&errs, "prof.stats under load: %s (samples %llu live %llu stacks %llu)",
                             bad, (unsigned long long)s.samples, (unsigned long long)s.live,
                             (unsigned long long)s.stacks);
        }
        if (rc != 0) (*nbad)++;
        (*nflips)++;
        void *p = hak_malloc(hk_below(&r, 4096));
        hak_free(p);
        sleep_us(500);
    }
    return seen + rd_u64("prof.stats.samples");
}

TEST(prof_under_load) {
    watchdog_arm("prof_under_load", 60);
    hk_errs_init(&errs);
    snprintf(dump_path, sizeof dump_path, "/tmp/hk_prof_stress.%d", (int)getpid());
    const char *start_mode = NULL;
    size_t len = sizeof start_mode;
    REQUIRE_EQ_I(hak_ctl("config.mode", &start_mode, &len, NULL, 0), 0, "config.mode");
    REQUIRE_EQ_I(set_size("prof.sample_bytes", 4 * KiB), 0, "prof.sample_bytes");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    prof_reset();
    nworkers = hk_test_threads();
    if (nworkers > MAX_WORKERS) nworkers = MAX_WORKERS;
    atomic_store(&stop, 0);

    pthread_t w[MAX_WORKERS], ch, du;
    unsigned started = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i) != 0) break;
        started++;
    }
    bool churn_ok = pthread_create(&ch, NULL, churner, NULL) == 0;
    bool dump_ok = pthread_create(&du, NULL, dumper, NULL) == 0;
    EXPECT_TRUE(started == nworkers && churn_ok && dump_ok, "threads started");

    unsigned flips = 0, bad_rc = 0;
    uint64_t seen = control(1500ull * hk_test_scale(), &flips, &bad_rc);
    /* The end state: the start mode, profiling on at 4 KiB. */
    EXPECT_EQ_I(set_str("config.mode", start_mode), 0, "restore the mode");
    EXPECT_EQ_I(set_size("prof.sample_bytes", 4 * KiB), 0, "prof.sample_bytes back to 4 KiB");
    EXPECT_EQ_I(set_bool("prof.active", true), 0, "prof.active back on");
    atomic_store(&stop, 1);
    for (unsigned i = 0; i < started; i++) pthread_join(w[i], NULL);
    if (churn_ok) pthread_join(ch, NULL);
    if (dump_ok) pthread_join(du, NULL);
    for (unsigned i = 0; i < nworkers; i++) mbox_drain(i);
    for (unsigned i = 0; i < CHURN_THREADS; i++)
        for (unsigned k = 0; k < CHURN_BLOCKS; k++) blk_free(&orphans[i][k], "block of an exited thread");
    HK_ERRS_REPORT(&errs);
    hk_test_log("%u workers, %llu ops, %llu remote frees, %llu churned threads, %llu dumps, "
                "%u control actions, %llu samples", started, (unsigned long long)nops,
                (unsigned long long)nremote, (unsigned long long)nchurn,
                (unsigned long long)ndumps, flips, (unsigned long long)seen);
    EXPECT_EQ_U(bad_rc, 0, "every control write succeeded");
    EXPECT_GT_U(ndumps, 0, "dumps were written under load");
    EXPECT_GT_U(seen, 100, "samples were taken");

    /* Everything is freed: no record of these sites is live. */
    struct prof_stats s = stats_read();
    EXPECT_STREQ(stats_wrong(&s), "", "prof.stats consistent at the end");
    EXPECT_LE_U(s.live, SLACK, "the live records went with their blocks");
    static char text[1 << 20];
    REQUIRE_EQ_I(set_str("prof.dump_folded", dump_path), 0, "prof.dump_folded");
    load(dump_path, text, sizeof text);
    EXPECT_LACKS_STR(text, "prof_stress_site", "no live stack of this test's sites");
    REQUIRE_EQ_I(set_str("prof.dump", dump_path), 0, "prof.dump");
    load(dump_path, text, sizeof text);
    struct pprof d;
    const char *bad = parse_pprof(text, &d);
    EXPECT_TRUE(bad == NULL, bad ? bad : "");
    EXPECT_LE_U(d.t[0], SLACK, "the dump's live blocks");

    /* Still working after it all: 64 KiB blocks at 4 KiB are sampled, but
     * for those of the class's current page that the fast path hands out
     * before this thread's next slow path notices prof.active (at most a
     * page's worth: 16 here is generous). */
    prof_reset();
    struct blk b[64];
    for (int i = 0; i < 64; i++) blk_new(&b[i], prof_stress_site_worker, 64 * KiB, (uint64_t)i);
    EXPECT_GE_U(rd_u64("prof.stats.live_samples"), 64 - 16, "new blocks are recorded");
    for (int i = 0; i < 64; i++) blk_free(&b[i], "block after the load");
    EXPECT_LE_U(rd_u64("prof.stats.live_samples"), SLACK, "and dropped when freed");
    unlink(dump_path);
    watchdog_disarm();
}

/* ---- prof_full_table_counts_drops ---- */

enum { TABLE_THREADS = 4, TABLE_BLOCKS = 16384 }; /* 65536 > SLOTS_MAX */

struct table_arg {
    unsigned id;
    struct blk *b;       /* TABLE_BLOCKS */
    struct blk *next_b;  /* the next thread's */
    hk_barrier *bar;
};

static void *table_worker(void *v) {
    struct table_arg *a = v;
    for (unsigned k = 0; k < TABLE_BLOCKS; k++)
        blk_new(&a->b[k], prof_stress_site_table, 48, hk_mix64(((uint64_t)a->id << 32) | k));
    hk_barrier_wait(a->bar); /* all allocated: the main thread reads the counts */
    hk_barrier_wait(a->bar);
    /* The even half of its own blocks (local frees), the odd half of the
     * next thread's (remote frees). */
    for (unsigned k = 0; k < TABLE_BLOCKS; k += 2) blk_free(&a->b[k], "own block (full table)");
    for (unsigned k = 1; k < TABLE_BLOCKS; k += 2) blk_free(&a->next_b[k], "other block (full table)");
    return NULL;
}

enum { TABLE_AGAIN = 256 };

static void *table_again(void *v) {
    struct blk *b = v;
    for (unsigned k = 0; k < TABLE_AGAIN; k++) blk_new(&b[k], prof_stress_site_table, 48, k);
    return NULL;
}

TEST(prof_full_table_counts_drops) {
    watchdog_arm("prof_full_table_counts_drops", 60);
    hk_errs_init(&errs);
    REQUIRE_EQ_I(set_size("prof.sample_bytes", 1), 0, "every allocation sampled");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    prof_reset();
    static struct blk b[TABLE_THREADS][TABLE_BLOCKS];
    struct table_arg a[TABLE_THREADS];
    pthread_t t[TABLE_THREADS];
    hk_barrier bar;
    hk_barrier_init(&bar, TABLE_THREADS + 1);
    unsigned started = 0;
    for (unsigned i = 0; i < TABLE_THREADS; i++) {
        a[i] = (struct table_arg){i, b[i], b[(i + 1) % TABLE_THREADS], &bar};
        if (pthread_create(&t[i], NULL, table_worker, &a[i]) != 0) break;
        started++;
    }
    REQUIRE_EQ_U(started, TABLE_THREADS, "threads started"); /* the barrier needs them all */
    hk_barrier_wait(&bar);
    struct prof_stats full = stats_read();
    hk_barrier_wait(&bar);
    for (unsigned i = 0; i < TABLE_THREADS; i++) pthread_join(t[i], NULL);
    struct prof_stats after = stats_read();
    hk_test_log("full: samples %llu live %llu stacks %llu dropped %llu; freed: live %llu",
                (unsigned long long)full.samples, (unsigned long long)full.live,
                (unsigned long long)full.stacks, (unsigned long long)full.dropped,
                (unsigned long long)after.live);
    HK_ERRS_REPORT(&errs);
    EXPECT_STREQ(stats_wrong(&full), "", "counts consistent while full");
    EXPECT_EQ_U(full.live, SLOTS_MAX, "the sample table is full");
    EXPECT_GE_U(full.dropped + full.live, (uint64_t)TABLE_THREADS * TABLE_BLOCKS,
                "every sample beyond the table counted as dropped");
    EXPECT_GE_U(full.samples, full.live, "samples >= live");
    EXPECT_LE_U(after.live, SLACK, "the records went with their blocks (local and remote frees)");
    /* Not stuck: new blocks are recorded again.  By a new thread: this
     * one's current 48-byte page may still hold blocks cut for the period
     * of an earlier test, which its fast path hands out unsampled. */
    static struct blk again[TABLE_AGAIN];
    pthread_t ta;
    REQUIRE_EQ_I(pthread_create(&ta, NULL, table_again, again), 0, "thread");
    pthread_join(ta, NULL);
    EXPECT_GE_U(rd_u64("prof.stats.live_samples"), after.live + TABLE_AGAIN, "recorded after the drops");
    for (unsigned k = 0; k < TABLE_AGAIN; k++) blk_free(&again[k], "block after the drops");
    EXPECT_LE_U(rd_u64("prof.stats.live_samples"), SLACK, "and dropped when freed");
    hk_barrier_destroy(&bar);
    set_size("prof.sample_bytes", 4 * KiB);
    prof_reset();
    watchdog_disarm();
}

/* ---- prof_records_outlive_their_thread ---- */

enum { EXIT_BLOCKS = 32 };

static void *exit_alloc(void *v) {
    struct blk *b = v;
    for (unsigned k = 0; k < EXIT_BLOCKS; k++) blk_new(&b[k], prof_stress_site_exit, 64 * KiB, 0xE0 + k);
    return NULL;
}

/* Allocates blocks of the same class (it may adopt the exited thread's
 * pages: then its frees of their blocks are local ones), then frees the
 * exited thread's blocks and its own. */
static void *exit_free(void *v) {
    struct blk *b = v, mine[EXIT_BLOCKS];
    for (unsigned k = 0; k < EXIT_BLOCKS; k++) blk_new(&mine[k], prof_stress_site_worker, 64 * KiB, k);
    for (unsigned k = 0; k < EXIT_BLOCKS; k++) blk_free(&b[k], "block of an exited thread");
    for (unsigned k = 0; k < EXIT_BLOCKS; k++) blk_free(&mine[k], "own block");
    return NULL;
}

TEST(prof_records_outlive_their_thread) {
    watchdog_arm("prof_records_outlive_their_thread", 30);
    hk_errs_init(&errs);
    REQUIRE_EQ_I(set_size("prof.sample_bytes", 4 * KiB), 0, "prof.sample_bytes");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    prof_reset();
    struct blk b[EXIT_BLOCKS];
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, exit_alloc, b), 0, "thread");
    pthread_join(t, NULL);
    uint64_t live = rd_u64("prof.stats.live_samples");
    EXPECT_GE_U(live, EXIT_BLOCKS, "the exited thread's blocks are still recorded");
    EXPECT_LE_U(live, EXIT_BLOCKS + SLACK, "and little else");
    static char text[1 << 20];
    char path[64];
    snprintf(path, sizeof path, "/tmp/hk_prof_exit.%d", (int)getpid());
    REQUIRE_EQ_I(set_str("prof.dump_folded", path), 0, "prof.dump_folded");
    load(path, text, sizeof text);
    EXPECT_HAS_STR(text, "prof_stress_site_exit", "its stack is in the live view");
    REQUIRE_EQ_I(pthread_create(&t, NULL, exit_free, b), 0, "thread");
    pthread_join(t, NULL);
    HK_ERRS_REPORT(&errs);
    EXPECT_LE_U(rd_u64("prof.stats.live_samples"), SLACK, "freed by another thread: records gone");
    REQUIRE_EQ_I(set_str("prof.dump_folded", path), 0, "prof.dump_folded");
    load(path, text, sizeof text);
    EXPECT_LACKS_STR(text, "prof_stress_site_exit", "its stack left the live view");
    unlink(path);
    watchdog_disarm();
}

/* ---- fork ---- */

/* Exit codes of the children. */
enum { CH_OK = 0, CH_NOT_EMPTY = 10, CH_STILL_ON, CH_DUMP, CH_DUMP_NOT_EMPTY, CH_CORRUPT,
       CH_NOT_OWN, CH_NOT_DROPPED };

static char child_text[1 << 20];

/* The child's dump of its profile, parsed; CH_OK or what went wrong. */
static int child_dump(struct pprof *d) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hk_prof_child.%d", (int)getpid());
    int rc = set_str("prof.dump", path);
    if (rc == 0) load(path, child_text, sizeof child_text);
    unlink(path);
    if (rc != 0 || parse_pprof(child_text, d) != NULL) return CH_DUMP;
    return CH_OK;
}

/* In a child of a loaded parent: an empty profile, off, and so it stays
 * while the child frees the parent's (sampled) block and allocates. */
static int loaded_child(struct blk *parent) {
    signal(SIGALRM, SIG_DFL);
    alarm(20);
    struct prof_stats s = stats_read();
    if (s.samples || s.live || s.stacks || s.dropped) return CH_NOT_EMPTY;
    if (rd_bool("prof.active")) return CH_STILL_ON;
    if (hk_check(parent->p, parent->n, parent->tag) != parent->n) return CH_CORRUPT;
    hak_free(parent->p);
    for (unsigned k = 0; k < 64; k++) {
        void *p = prof_stress_site_child(64 * KiB);
        hak_free(p);
    }
    s = stats_read();
    if (s.samples || s.live || s.stacks || s.dropped) return CH_NOT_EMPTY;
    struct pprof d;
    if (child_dump(&d) != CH_OK) return CH_DUMP;
    if (d.t[0] || d.t[1] || d.t[2] || d.t[3] || d.stacks) return CH_DUMP_NOT_EMPTY;
    return CH_OK;
}

/* In a child of a quiet parent (no other thread was running, or unwinding,
 * at fork): profiling turned on again records the child's blocks only. */
static int quiet_child(struct blk *parent) {
    signal(SIGALRM, SIG_DFL);
    alarm(20);
    if (rd_u64("prof.stats.samples") != 0) return CH_NOT_EMPTY;
    if (set_size("prof.sample_bytes", 4 * KiB) != 0 || set_bool("prof.active", true) != 0)
        return CH_STILL_ON;
    hak_free(parent->p); /* sampled in the parent: no record here */
    void *mine[16];
    for (unsigned k = 0; k < 16; k++) mine[k] = prof_stress_site_child(64 * KiB);
    struct pprof d;
    if (child_dump(&d) != CH_OK) return CH_DUMP;
    /* Its own blocks only (the parent had thousands): every one of them,
     * but for those the fast path handed out before the slow path noticed
     * prof.active. */
    if (d.t[2] == 0 || d.t[2] > 16 || d.t[0] != d.t[2]) return CH_NOT_OWN;
    for (unsigned k = 0; k < 16; k++) hak_free(mine[k]);
    if (rd_u64("prof.stats.live_samples") != 0) return CH_NOT_DROPPED;
    return CH_OK;
}

static void reap_child(pid_t pid, const char *what) {
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (w != pid) hk_test_fail(__FILE__, __LINE__, "%s: waitpid %d", what, errno);
    else if (WIFSIGNALED(st)) hk_test_fail(__FILE__, __LINE__, "%s: killed by signal %d", what, WTERMSIG(st));
    else if (WEXITSTATUS(st) != 0) hk_test_fail(__FILE__, __LINE__, "%s: exit %d", what, WEXITSTATUS(st));
}

TEST(prof_fork_children_start_empty) {
    watchdog_arm("prof_fork_children_start_empty", 60);
    hk_errs_init(&errs);
    REQUIRE_EQ_I(set_size("prof.sample_bytes", 4 * KiB), 0, "prof.sample_bytes");
    REQUIRE_EQ_I(set_bool("prof.active", true), 0, "prof.active");
    prof_reset();
    nworkers = hk_test_threads() < 4 ? hk_test_threads() : 4;
    atomic_store(&stop, 0);
    pthread_t w[4];
    unsigned started = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i) != 0) break;
        started++;
    }
    unsigned forks = hk_iters(6);
    for (unsigned i = 0; i < forks; i++) {
        struct blk pb;
        blk_new(&pb, prof_stress_site_worker, 64 * KiB, 0xF0 + i);
        EXPECT_GT_U(rd_u64("prof.stats.live_samples"), 0, "the parent holds records");
        hk_test_sleep_ms(5);
        pid_t pid = fork();
        if (pid == 0) _exit(loaded_child(&pb));
        if (pid < 0) hk_test_fail(__FILE__, __LINE__, "fork: %d", errno);
        else reap_child(pid, "child of a loaded parent");
        blk_free(&pb, "parent's block after the fork");
    }
    atomic_store(&stop, 1);
    for (unsigned i = 0; i < started; i++) pthread_join(w[i], NULL);
    for (unsigned i = 0; i < nworkers; i++) mbox_drain(i);
    EXPECT_LE_U(rd_u64("prof.stats.live_samples"), SLACK, "the parent's records went with its blocks");

    struct blk pb;
    blk_new(&pb, prof_stress_site_worker, 64 * KiB, 0xFF);
    pid_t pid = fork();
    if (pid == 0) _exit(quiet_child(&pb));
    if (pid < 0) hk_test_fail(__FILE__, __LINE__, "fork: %d", errno);
    else reap_child(pid, "child of a quiet parent");
    EXPECT_GE_U(rd_u64("prof.stats.live_samples"), 1, "the parent keeps its records");
    blk_free(&pb, "parent's block after the fork");
    HK_ERRS_REPORT(&errs);
    watchdog_disarm();
}

/* ---- prof_switches_hold_under_concurrent_writes ----
 * prof.active and prof.sample_bytes written by two threads at once: each
 * reads back what it wrote (a write of one must not put back an old value
 * of the other). */

static atomic_int switch_stop;
static atomic_ullong period_lost;

static void *period_writer(void *v) {
    size_t p = 4 * KiB;
    while (!atomic_load_explicit(&switch_stop, memory_order_relaxed)) {
        p = p == 4 * KiB ? 8 * KiB : 4 * KiB;
        set_size("prof.sample_bytes", p);
        if (rd_u64("prof.sample_bytes") != p) atomic_fetch_add(&period_lost, 1);
    }
    return v;
}

TEST(prof_switches_hold_under_concurrent_writes) {
    watchdog_arm("prof_switches_hold_under_concurrent_writes", 60);
    atomic_store(&switch_stop, 0);
    atomic_store(&period_lost, 0);
    pthread_t t;
    REQUIRE_EQ_I(pthread_create(&t, NULL, period_writer, NULL), 0, "thread");
    unsigned n = hk_storm_scaled(100000), active_lost = 0;
    for (unsigned i = 0; i < n; i++) {
        bool on = i & 1;
        set_bool("prof.active", on);
        if (rd_bool("prof.active") != on) active_lost++;
    }
    atomic_store(&switch_stop, 1);
    pthread_join(t, NULL);
    hk_test_log("%u prof.active writes: %u undone; prof.sample_bytes writes undone: %llu", n,
                active_lost, (unsigned long long)atomic_load(&period_lost));
    EXPECT_EQ_U(active_lost, 0, "prof.active reads back what was written");
    EXPECT_EQ_U(atomic_load(&period_lost), 0, "prof.sample_bytes reads back what was written");
    set_bool("prof.active", false);
    set_size("prof.sample_bytes", 4 * KiB);
    watchdog_disarm();
}

/* ---- prof_on_from_start_threads ----
 * HAKMEM_CONF=prof:1: threads take their first samples (huge blocks, each
 * sampled at once) together, so they warm the unwinder up together. */

enum { START_THREADS = 8 };

static atomic_int start_go;

/* Spins (rather than sleeps) to the start, so that the threads leave
 * together. */
static void *start_thread(void *v) {
    hk_barrier_wait(v);
    while (!atomic_load(&start_go)) {
    }
    void *big = hak_malloc(4 << 20);
    for (int i = 0; i < 256; i++) hak_free(hak_malloc(64 * KiB));
    hak_free(big);
    return NULL;
}

static int child_start(void) {
    hk_barrier bar;
    hk_barrier_init(&bar, START_THREADS + 1);
    pthread_t t[START_THREADS];
    for (int i = 0; i < START_THREADS; i++)
        if (pthread_create(&t[i], NULL, start_thread, &bar) != 0) return 2;
    hk_barrier_wait(&bar);
    atomic_store(&start_go, 1);
    for (int i = 0; i < START_THREADS; i++) pthread_join(t[i], NULL);
    if (!rd_bool("prof.active")) return 3;
    if (rd_u64("prof.stats.samples") < START_THREADS) return 4;
    return rd_u64("prof.stats.live_samples") <= SLACK ? 0 : 5;
}

__attribute__((constructor)) static void child_dispatch(void) {
    const char *role = hk_test_role();
    if (role != NULL && strcmp(role, "--child-start") == 0) exit(child_start());
}

TEST(prof_on_from_start_threads) {
    watchdog_arm("prof_on_from_start_threads", 60);
    for (int run = 0; run < 3; run++) {
        struct hk_test_child c;
        REQUIRE_EQ_I(hk_test_run_self(&c, "--child-start", "HAKMEM_CONF", "prof:1", (char *)NULL), 0,
                     "run the child");
        char why[64];
        hk_test_describe_status(&c, why, sizeof why);
        if (!hk_test_exited_ok(&c)) {
            hk_test_fail(__FILE__, __LINE__, "child with prof:1: %s; stderr: %.600s", why, c.err);
            break;
        }
    }
    watchdog_disarm();
}

TEST_MAIN()
