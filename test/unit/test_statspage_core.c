/* The stats page, in-process (through the hak_ API, so it also runs in
 * sanitizer builds): stats_page.refresh creates /dev/shm/hakmem.<uid>.<pid>
 * with mode 0600; the header describes the process; the table holds every
 * readable leaf but the per-thread ones, with its type and access; values
 * agree with hak_ctl; refreshes from slow paths are rate-limited by
 * stats_page.interval_ms; turning the feature off removes the page; a fork
 * child makes its own and removes it at exit; the command ring applies
 * page-settable keys and refuses the rest with ENOENT, EPERM or EINVAL, and
 * garbage in a slot is harmless.  The reader is hakctl's (bin/hakctl_page.c). */
#include "harness.h"
#include "hakctl_page.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ctl_set_bool(const char *n, bool v) { return hak_ctl(n, NULL, NULL, &v, sizeof v); }
static int ctl_set_u(const char *n, unsigned v) { return hak_ctl(n, NULL, NULL, &v, sizeof v); }
static unsigned ctl_u(const char *n) {
    unsigned v = 0;
    size_t len = sizeof v;
    return hak_ctl(n, &v, &len, NULL, 0) == 0 ? v : ~0u;
}
static uint64_t ctl_u64(const char *n) {
    uint64_t v = 0;
    size_t len = sizeof v;
    return hak_ctl(n, &v, &len, NULL, 0) == 0 ? v : ~(uint64_t)0;
}
static const char *ctl_str(const char *n) {
    const char *s = NULL;
    size_t len = sizeof s;
    return hak_ctl(n, &s, &len, NULL, 0) == 0 && s ? s : "(error)";
}
static int refresh(void) { return hak_ctl("stats_page.refresh", NULL, NULL, NULL, 0); }

static bool page_on(void) {
    return ctl_set_bool("stats_page.enabled", true) == 0 && refresh() == 0;
}

static void own_path(char *buf, size_t cap) {
    snprintf(buf, cap, "/dev/shm/hakmem.%u.%d", (unsigned)geteuid(), (int)getpid());
}

/* A huge allocation always passes through a tick. */
static void tick(void) {
    void *p = hak_malloc(3u << 20);
    hak_free(p);
}

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(statspage_refresh_creates_page_0600) {
    REQUIRE_TRUE(page_on(), "stats_page.enabled=1 and stats_page.refresh");
    char want[128];
    own_path(want, sizeof want);
    EXPECT_STREQ(ctl_str("stats_page.path"), want, "stats_page.path is /dev/shm/hakmem.<uid>.<pid>");
    struct stat st;
    REQUIRE_EQ_I(stat(want, &st), 0, "the page exists under /dev/shm");
    EXPECT_TRUE(S_ISREG(st.st_mode), "a regular file");
    EXPECT_EQ_U(st.st_mode & 0777, 0600, "mode 0600");
    EXPECT_EQ_U(st.st_uid, geteuid(), "owned by the process's uid");
    EXPECT_EQ_U(st.st_size % 4096, 0, "whole pages");
}

TEST(statspage_header_describes_process) {
    REQUIRE_TRUE(page_on(), "page on");
    hkp_page p;
    char err[256];
    REQUIRE_EQ_U(hkp_open(&p, getpid(), false, err, sizeof err), HKP_OK, err);
    EXPECT_EQ_U(hkp_snapshot(&p, 1000, err, sizeof err), HKP_OK, err);
    EXPECT_EQ_U(p.hdr.pid, (uint64_t)getpid(), "pid");
    EXPECT_EQ_U(p.hdr.uid, geteuid(), "uid");
    EXPECT_EQ_U(p.hdr.version, HK_SP_VERSION, "layout version");
    EXPECT_EQ_U(p.hdr.compat, 1, "readable by layout-1 readers");
    EXPECT_TRUE(strncmp(p.hdr.lib_version, HAKMEM_VERSION, sizeof p.hdr.lib_version) == 0, "library version");
    EXPECT_HAS_STR(p.hdr.comm, "test_statspage", "comm names the program");
    EXPECT_HAS_STR(p.hdr.cmdline, "test_statspage_core", "command line");
    EXPECT_GT_U(p.nent, 600, "hundreds of leaves");
    EXPECT_EQ_U(p.interval_ms, ctl_u("stats_page.interval_ms"), "refresh interval");
    EXPECT_GT_U(p.hdr.proc_start_ticks, 0, "process start in clock ticks");
    uint64_t now = hkp_now_ms();
    EXPECT_TRUE(p.hdr.start_ms <= p.hdr.created_ms + 1000 && p.hdr.created_ms <= now, "start <= created <= now");
    EXPECT_TRUE(p.updated_ms + 5000 >= now && p.updated_ms <= now + 1000, "refreshed just now");
    EXPECT_EQ_U(p.seq % 2, 0, "sequence even in a snapshot");
    hkp_close(&p);
}

typedef struct listed { hkp_page *p; unsigned n, missing, wrong, thread_found; } listed;

static int check_listed(const char *name, int type, int writable, void *arg) {
    listed *l = arg;
    hkp_entry e;
    bool found = hkp_find(l->p, name, &e);
    if (strncmp(name, "thread.", 7) == 0) {
        l->thread_found += found;
        return 0;
    }
    l->n++;
    if (!found) {
        if (l->missing++ < 5) hk_test_log("missing from the page: %s", name);
        return 0;
    }
    bool w = (e.flags & HK_SP_E_WRITABLE) != 0;
    if (e.type != type || w != (writable != 0)) {
        if (l->wrong++ < 5) hk_test_log("%s: page type %d writable %d, list %d %d", name, e.type, w, type, writable);
    }
    return 0;
}

static unsigned flags_of(hkp_page *p, const char *name) {
    hkp_entry e;
    return hkp_find(p, name, &e) ? e.flags : 0xff00;
}

TEST(statspage_lists_every_readable_leaf) {
    REQUIRE_TRUE(page_on(), "page on");
    hkp_page p;
    char err[256];
    REQUIRE_EQ_U(hkp_open(&p, getpid(), false, err, sizeof err), HKP_OK, err);
    listed l = {.p = &p};
    hak_ctl_list("", check_listed, &l);
    EXPECT_EQ_U(l.missing, 0, "every leaf but thread.* is on the page");
    EXPECT_EQ_U(l.wrong, 0, "with its type and access");
    EXPECT_EQ_U(l.thread_found, 0, "per-thread leaves are not");
    EXPECT_EQ_U(p.nent, l.n, "and nothing else");
    static const char *const settable[] = {
        "config.mode", "config.features.tcache", "config.features.stats_page", "tiny.class.0.tcache_max",
        "large.class.19.tcache_max", "huge.bigcache.max_bytes", "arena.0.decay_ms", "arena.0.purge",
        "stats_page.interval_ms", "stats_page.enabled"};
    for (size_t i = 0; i < sizeof settable / sizeof settable[0]; i++)
        EXPECT_EQ_U(flags_of(&p, settable[i]) & (HK_SP_E_SETTABLE | 0xff00), HK_SP_E_SETTABLE, settable[i]);
    static const char *const not_settable[] = {"epoch", "stats_page.refresh", "version", "stats.allocated"};
    for (size_t i = 0; i < sizeof not_settable / sizeof not_settable[0]; i++)
        EXPECT_EQ_U(flags_of(&p, not_settable[i]) & (HK_SP_E_SETTABLE | 0xff00), 0, not_settable[i]);
    EXPECT_EQ_U(flags_of(&p, "tiny.class.0.stats.nmalloc") & HK_SP_E_COUNTER, HK_SP_E_COUNTER, "nmalloc counts");
    EXPECT_EQ_U(flags_of(&p, "huge.bigcache.hits") & HK_SP_E_COUNTER, HK_SP_E_COUNTER, "hits count");
    EXPECT_EQ_U(flags_of(&p, "tiny.class.0.stats.curblocks") & HK_SP_E_COUNTER, 0, "curblocks is a gauge");
    EXPECT_EQ_U(flags_of(&p, "stats.allocated") & HK_SP_E_COUNTER, 0, "allocated is a gauge");
    EXPECT_EQ_U(flags_of(&p, "prof.stats.samples") & HK_SP_E_COUNTER, HK_SP_E_COUNTER, "prof samples count");
    EXPECT_EQ_U(flags_of(&p, "prof.stats.dropped") & HK_SP_E_COUNTER, HK_SP_E_COUNTER, "prof drops count");
    EXPECT_EQ_U(flags_of(&p, "prof.stats.live_samples") & HK_SP_E_COUNTER, 0, "live samples is a gauge");
    EXPECT_EQ_U(flags_of(&p, "prof.stats.stacks") & HK_SP_E_COUNTER, 0, "stacks is a gauge");
    hkp_entry e;
    EXPECT_TRUE(hkp_find(&p, "tiny.class.0.stats", &e) && e.doc_len > 0, "leaves carry their doc");
    hkp_close(&p);
}

static uint64_t page_u64(hkp_page *p, const char *name) {
    uint64_t v = ~(uint64_t)0;
    hkp_get_u64(p, name, &v);
    return v;
}

TEST(statspage_values_agree_with_hak_ctl) {
    REQUIRE_TRUE(page_on(), "page on");
    hkp_page p;
    char err[256], buf[128];
    REQUIRE_EQ_U(hkp_open(&p, getpid(), false, err, sizeof err), HKP_OK, err);
    /* This thread alone allocates: counters move only by what it does. */
    uint64_t before = ctl_u64("tiny.class.2.stats.nmalloc");
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) blocks[i] = hak_malloc(32);
    for (int i = 0; i < 1000; i++) hak_free(blocks[i]);
    REQUIRE_EQ_U(refresh(), 0, "refresh");
    uint64_t after = ctl_u64("tiny.class.2.stats.nmalloc");
    REQUIRE_EQ_U(hkp_snapshot(&p, 1000, err, sizeof err), HKP_OK, err);
    uint64_t seen = page_u64(&p, "tiny.class.2.stats.nmalloc");
    EXPECT_TRUE(seen >= before + 1000 && seen <= after, "class counter between the hak_ctl reads around it");
    hkp_entry e;
    hkp_value v;
    REQUIRE_TRUE(hkp_find(&p, "tiny.class.2.stats", &e), "struct leaf");
    hkp_value_of(&p, &e, &v);
    EXPECT_EQ_U(v.rc, 0, "struct read");
    EXPECT_EQ_U(v.nwords, sizeof(struct hak_class_stats) / 8, "nine words");
    EXPECT_EQ_U(v.words[0], 32, "size word");
    EXPECT_EQ_U(v.words[1], seen, "struct and field leaves from one merge");
    EXPECT_STREQ(hkp_get_str(&p, "version", buf, sizeof buf), HAKMEM_VERSION, "version");
    EXPECT_STREQ(hkp_get_str(&p, "config.mode", buf, sizeof buf), ctl_str("config.mode"), "mode");
    EXPECT_EQ_U(page_u64(&p, "opt.narenas"), ctl_u("opt.narenas"), "opt.narenas");
    EXPECT_EQ_U(page_u64(&p, "tiny.class.5.size"), ctl_u64("tiny.class.5.size"), "tiny.class.5.size");
    EXPECT_EQ_U(page_u64(&p, "stats_page.enabled"), 1, "stats_page.enabled");
    EXPECT_EQ_U(page_u64(&p, "stats_page.refreshes"), p.nrefresh, "header and leaf count the same refreshes");
    EXPECT_EQ_U(page_u64(&p, "arena.0.decay_ms"), (uint64_t)ctl_u64("arena.0.decay_ms"), "int64 leaf");
    hkp_close(&p);
}

TEST(statspage_refresh_is_rate_limited) {
    REQUIRE_TRUE(page_on(), "page on");
    unsigned old = ctl_u("stats_page.interval_ms");
    REQUIRE_EQ_U(ctl_set_u("stats_page.interval_ms", 200), 0, "interval 200 ms");
    EXPECT_EQ_U(ctl_set_u("stats_page.interval_ms", 0), EINVAL, "interval 0 refused");
    EXPECT_EQ_U(ctl_set_u("stats_page.interval_ms", 3600001), EINVAL, "interval over an hour refused");
    tick();
    uint64_t r0 = ctl_u64("stats_page.refreshes"), ticks = 0;
    double t0 = now_sec();
    while (now_sec() - t0 < 0.7) {
        void *p[64];
        for (int i = 0; i < 64; i++) p[i] = hak_malloc((size_t)(i + 1) * 512);
        for (int i = 0; i < 64; i++) hak_free(p[i]);
        tick();
        ticks++;
    }
    uint64_t r1 = ctl_u64("stats_page.refreshes");
    hk_test_log("%llu ticks in 0.7 s gave %llu refreshes", (unsigned long long)ticks, (unsigned long long)(r1 - r0));
    EXPECT_GT_U(ticks, 20, "many slow-path ticks");
    EXPECT_TRUE(r1 - r0 >= 2 && r1 - r0 <= 5, "about one refresh per 200 ms");
    ctl_set_u("stats_page.interval_ms", old);
}

TEST(statspage_off_removes_page) {
    REQUIRE_TRUE(page_on(), "page on");
    char path[128];
    own_path(path, sizeof path);
    struct stat st;
    REQUIRE_EQ_I(stat(path, &st), 0, "page there");
    REQUIRE_EQ_U(ctl_set_bool("stats_page.enabled", false), 0, "stats_page.enabled=0");
    bool feat = true;
    size_t len = sizeof feat;
    hak_ctl("config.features.stats_page", &feat, &len, NULL, 0);
    EXPECT_TRUE(!feat, "config.features.stats_page is the same switch");
    tick();
    EXPECT_TRUE(stat(path, &st) != 0 && errno == ENOENT, "the next tick removes the page");
    EXPECT_STREQ(ctl_str("stats_page.path"), "", "stats_page.path empty");
    EXPECT_EQ_U(refresh(), EPERM, "stats_page.refresh while off");
    REQUIRE_TRUE(page_on(), "on again");
    EXPECT_EQ_I(stat(path, &st), 0, "the page is back");
}

TEST(statspage_fork_child_makes_its_own) {
    REQUIRE_TRUE(page_on(), "page on");
    char mine[128];
    own_path(mine, sizeof mine);
    pid_t pid = fork();
    REQUIRE_GE_I(pid, 0, "fork");
    if (pid == 0) {
        int code = 0;
        char path[128];
        struct stat st;
        own_path(path, sizeof path);
        if (strcmp(ctl_str("stats_page.path"), "") != 0) code |= 1;  /* the parent's is forgotten */
        if (stat(path, &st) == 0) code |= 2;                         /* none of its own yet */
        if (refresh() != 0 || stat(path, &st) != 0) code |= 4;       /* now one */
        if (strcmp(ctl_str("stats_page.path"), path) != 0) code |= 8;
        hkp_page p;
        char err[256];
        if (hkp_open(&p, getpid(), false, err, sizeof err) != HKP_OK || p.hdr.pid != getpid()) code |= 16;
        else hkp_close(&p);
        if (stat(mine, &st) != 0) code |= 32;                        /* the parent's stays */
        exit(code); /* a normal exit: destructors unlink the child's page */
    }
    int status = 0;
    REQUIRE_EQ_I(waitpid(pid, &status, 0), pid, "waitpid");
    EXPECT_TRUE(WIFEXITED(status), "child exited");
    EXPECT_EQ_U(WEXITSTATUS(status), 0, "child checks (bits: 1 path kept, 2 page early, 4 no page, 8 path, 16 open, 32 parent's gone)");
    char theirs[128];
    snprintf(theirs, sizeof theirs, "/dev/shm/hakmem.%u.%d", (unsigned)geteuid(), (int)pid);
    struct stat st;
    EXPECT_NE_I(stat(theirs, &st), 0, "the child's page went with it");
    hkp_page p;
    char err[256];
    REQUIRE_EQ_U(hkp_open(&p, getpid(), false, err, sizeof err), HKP_OK, err);
    EXPECT_EQ_U(p.hdr.pid, (uint64_t)getpid(), "the parent's page is still the parent's");
    EXPECT_EQ_U(hkp_snapshot(&p, 1000, err, sizeof err), HKP_OK, err);
    hkp_close(&p);
}

/* ---- the command ring ---- */

typedef struct post { const char *key, *value; int want; int rc, result; uint64_t applied_in; char err[256]; } post;

typedef struct poster { post *posts; size_t n; _Atomic bool done; } poster;

static void *poster_main(void *arg) {
    poster *ps = arg;
    hkp_page p;
    char err[256];
    if (hkp_open(&p, getpid(), true, err, sizeof err) == HKP_OK) {
        for (size_t i = 0; i < ps->n; i++) {
            post *c = &ps->posts[i];
            c->rc = hkp_post(&p, c->key, c->value, 5000, &c->result, &c->applied_in, c->err, sizeof c->err);
        }
        hkp_close(&p);
    } else {
        for (size_t i = 0; i < ps->n; i++) ps->posts[i].rc = -1;
    }
    atomic_store(&ps->done, true);
    return NULL;
}

TEST(statspage_commands_apply_and_refuse) {
    REQUIRE_TRUE(page_on(), "page on");
    post posts[] = {
        {"stats_page.interval_ms", "250", 0},
        {"stats.allocated", "1", EPERM},
        {"no.such.key", "1", ENOENT},
        {"", "1", ENOENT},
        {"config.mode", "bogus", EINVAL},
        {"epoch", "1", EPERM},
        {"thread.arena", "0", EPERM},
        {"stats_page.refresh", "", EPERM},
        {"arena.0.decay_ms", "-5", EINVAL},
        {"arena.0.decay_ms", "12x", EINVAL},
        {"tiny.class.0.tcache_max", "99999999999", EINVAL},
        {"stats_page.interval_ms", "0", EINVAL},
        {"huge.bigcache.max_bytes", "67108864", 0},
        {"arena.0.purge", "", 0},
        {"config.mode", "fast", 0},
    };
    size_t n = sizeof posts / sizeof posts[0];
    uint64_t c0 = ctl_u64("stats_page.commands");
    poster ps = {posts, n};
    pthread_t t;
    REQUIRE_EQ_U(pthread_create(&t, NULL, poster_main, &ps), 0, "poster thread");
    double t0 = now_sec();
    while (!atomic_load(&ps.done) && now_sec() - t0 < 30) {
        refresh();
        usleep(500);
    }
    pthread_join(t, NULL);
    for (size_t i = 0; i < n; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s = '%s': %s", posts[i].key, posts[i].value, posts[i].err);
        EXPECT_EQ_U(posts[i].rc, HKP_OK, what);
        EXPECT_EQ_U(posts[i].result, posts[i].want, what);
    }
    EXPECT_EQ_U(ctl_u64("stats_page.commands") - c0, n, "stats_page.commands counts them");
    for (size_t i = 1; i < n; i++)
        EXPECT_GT_U(posts[i].applied_in, posts[i - 1].applied_in, "each applied by a later refresh");
    EXPECT_LE_U(posts[n - 1].applied_in, ctl_u64("stats_page.refreshes"), "by a refresh that happened");
    EXPECT_EQ_U(ctl_u("stats_page.interval_ms"), 250, "interval applied");
    EXPECT_STREQ(ctl_str("config.mode"), "fast", "mode applied");
    bool on = false;
    size_t len = sizeof on;
    hak_ctl("stats_page.enabled", &on, &len, NULL, 0);
    EXPECT_TRUE(on, "a mode set through the page keeps the page on");
    const char *balanced = "balanced";
    hak_ctl("config.mode", NULL, NULL, &balanced, sizeof balanced);
    ctl_set_bool("stats_page.enabled", true);
    ctl_set_u("stats_page.interval_ms", 100);
}

TEST(statspage_command_slot_garbage_is_harmless) {
    REQUIRE_TRUE(page_on(), "page on");
    char path[128];
    own_path(path, sizeof path);
    hkp_page p;
    char err[256];
    REQUIRE_EQ_U(hkp_open(&p, getpid(), true, err, sizeof err), HKP_OK, err);
    REQUIRE_GE_U(p.hdr.ncmds, 3, "slots");
    hk_sp_cmd *ring = (hk_sp_cmd *)(void *)(p.map + p.hdr.cmd_off);
    /* A key with no terminator, a value with none, a state no one uses. */
    memset(ring[0].key, 'A', sizeof ring[0].key);
    memset(ring[0].value, '9', sizeof ring[0].value);
    atomic_store(&ring[0].state, HK_SP_CMD_POSTED);
    memcpy(ring[1].key, "config.mode", 12);
    memset(ring[1].value, 'x', sizeof ring[1].value);
    atomic_store(&ring[1].state, HK_SP_CMD_POSTED);
    atomic_store(&ring[2].state, 77);
    EXPECT_EQ_U(refresh(), 0, "refresh survives");
    EXPECT_EQ_U(atomic_load(&ring[0].state), HK_SP_CMD_DONE, "unterminated key answered");
    EXPECT_EQ_U(atomic_load(&ring[0].result), ENOENT, "as an unknown key");
    EXPECT_EQ_U(atomic_load(&ring[1].state), HK_SP_CMD_DONE, "unterminated value answered");
    EXPECT_EQ_U(atomic_load(&ring[1].result), EINVAL, "as a bad value");
    EXPECT_EQ_U(atomic_load(&ring[2].state), 77, "unknown states are left alone");
    EXPECT_STREQ(ctl_str("config.mode"), "balanced", "mode untouched");
    for (int i = 0; i < 3; i++) atomic_store(&ring[i].state, HK_SP_CMD_FREE);
    hkp_close(&p);
}

TEST_MAIN()
