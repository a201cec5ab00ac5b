/* The learner in the library, through hak_ctl: its learn.* leaves; a hot
 * class that churns through the arena gets a bigger tcache_max (and the
 * conf leaf says how to reproduce it); learn.freeze stops changes while the
 * rounds go on; a setting made by hand is left alone; turning the learner
 * off puts the defaults back; HAKMEM_CONF's tcache_max:CLASS=N sets a class
 * (in a child re-executed with it).
 *
 * The learner runs a round at most every 50 ms from allocation slow paths,
 * so the tests below allocate in a loop until what they wait for happens,
 * with a generous deadline (they assert directions, never timings). */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 30000
#define CLS_48K 42   /* global class of 48 KiB blocks: large.class.1 */
#define CLS_4K 28    /* 4 KiB: mid.class.7 */
#define NCLASSES 61

static uint64_t get_u64(const char *name) {
    uint64_t v = 0;
    size_t len = sizeof v;
    int rc = hak_ctl(name, &v, &len, NULL, 0);
    if (rc != 0) hk_test_fail(__FILE__, __LINE__, "%s: read gave %d", name, rc);
    return v;
}

static unsigned get_unsigned(const char *name) {
    unsigned v = 0;
    size_t len = sizeof v;
    int rc = hak_ctl(name, &v, &len, NULL, 0);
    if (rc != 0) hk_test_fail(__FILE__, __LINE__, "%s: read gave %d", name, rc);
    return v;
}

static const char *get_str(const char *name) {
    const char *s = NULL;
    size_t len = sizeof s;
    int rc = hak_ctl(name, &s, &len, NULL, 0);
    if (rc != 0 || s == NULL) {
        hk_test_fail(__FILE__, __LINE__, "%s: read gave %d", name, rc);
        return "";
    }
    return s;
}

static int set_bool(const char *name, bool v) {
    return hak_ctl(name, NULL, NULL, &v, sizeof v);
}

static unsigned tcache_value(unsigned cls) {
    char name[64];
    snprintf(name, sizeof name, "learn.tcache.%u.value", cls);
    return get_unsigned(name);
}

/* One batch: n blocks of size allocated, stamped, checked, freed. */
static bool batch(size_t size, unsigned n) {
    void *p[256];
    if (n > 256) n = 256;
    for (unsigned i = 0; i < n; i++) {
        p[i] = hak_malloc(size);
        if (p[i] == NULL) return false;
        memset(p[i], (int)i, 64);
    }
    bool ok = true;
    for (unsigned i = 0; i < n; i++) {
        ok &= ((unsigned char *)p[i])[63] == (unsigned char)i;
        hak_free(p[i]);
    }
    return ok;
}

/* Batches until done() or the deadline; false on a bad block. */
static bool churn_until(size_t size, unsigned n, bool (*done)(void *), void *arg) {
    uint64_t end = hk_test_now_ms() + DEADLINE_MS;
    while (hk_test_now_ms() < end) {
        for (int k = 0; k < 64; k++)
            if (!batch(size, n)) return false;
        if (done != NULL && done(arg)) return true;
    }
    return true;
}

static bool rounds_past(void *arg) { return get_u64("learn.nrounds") >= *(uint64_t *)arg; }
static bool tcache_above(void *arg) {
    const unsigned *w = arg;
    return tcache_value(w[0]) > w[1];
}

/* Learner on, and two more rounds run (so it has started).  Rounds come
 * from slow paths: 112 KiB blocks (one a page, a class no test watches)
 * take one each. */
static void learner_on(void) {
    if (set_bool("config.features.learner", true) != 0)
        hk_test_fail(__FILE__, __LINE__, "could not turn the learner on");
    uint64_t want = get_u64("learn.nrounds") + 2;
    churn_until(112 << 10, 8, rounds_past, &want);
}

/* ---------------- the leaves ---------------- */

struct count { unsigned all, tcache, strings; };

static int count_leaf(const char *name, int type, int writable, void *arg) {
    struct count *c = arg;
    c->all++;
    c->tcache += strncmp(name, "learn.tcache.", 13) == 0;
    c->strings += type == HAK_CTL_STRING;
    return 0;
}

TEST(learn_leaves_are_listed) {
    struct count c = {0, 0, 0};
    EXPECT_EQ_U(hak_ctl_list("learn", count_leaf, &c), 0, "list learn");
    EXPECT_EQ_U(c.tcache, 4 * NCLASSES, "value, nchanges, scores, conf per class");
    EXPECT_EQ_U(c.all, 3 + 4 * NCLASSES + 8, "freeze, nrounds, nchanges, classes, bigcache, decay");
    EXPECT_EQ_U(c.strings, 2 * NCLASSES + 4, "scores and conf are strings");
    /* Candidates are listed before the learner ever ran. */
    const char *s = get_str("learn.tcache.42.scores");
    EXPECT_TRUE(strncmp(s, "1:", 2) == 0 && strchr(s, '*') != NULL, s);
    s = get_str("learn.bigcache.scores");
    EXPECT_TRUE(strncmp(s, "64:", 3) == 0, s);
    s = get_str("learn.decay.scores");
    EXPECT_TRUE(strncmp(s, "100:", 4) == 0, s);
    unsigned v = 0;
    size_t len = sizeof v;
    EXPECT_NE_I(hak_ctl("learn.tcache.61.value", &v, &len, NULL, 0), 0, "61 classes");
    EXPECT_EQ_U(hak_ctl("learn.nrounds", NULL, NULL, &v, sizeof(uint64_t)), EPERM, "read-only");
}

TEST(learn_conf_leaves_empty_at_defaults) {
    char name[64];
    for (unsigned c = 0; c < NCLASSES; c++) {
        snprintf(name, sizeof name, "learn.tcache.%u.conf", c);
        unsigned v = tcache_value(c), def = 0;
        char tier[64];
        unsigned first = c < 21 ? 0 : c < 41 ? 21 : 41;
        snprintf(tier, sizeof tier, "%s.class.%u.tcache_max",
                 c < 21 ? "tiny" : c < 41 ? "mid" : "large", c - first);
        def = get_unsigned(tier);
        EXPECT_EQ_U(v, def, "learn.tcache.<i>.value is the class's tcache_max");
        if (get_u64("learn.nchanges") == 0 && get_str(name)[0] != '\0')
            hk_test_fail(__FILE__, __LINE__, "%s = '%s' before any learning", name, get_str(name));
    }
}

TEST(learn_freeze_is_rw) {
    bool b = true;
    size_t len = sizeof b;
    EXPECT_EQ_U(set_bool("learn.freeze", true), 0, "freeze");
    EXPECT_EQ_U(hak_ctl("learn.freeze", &b, &len, NULL, 0), 0, "read");
    EXPECT_EQ_U(b, 1, "frozen");
    EXPECT_EQ_U(set_bool("learn.freeze", false), 0, "thaw");
    len = sizeof b;
    hak_ctl("learn.freeze", &b, &len, NULL, 0);
    EXPECT_EQ_U(b, 0, "thawed");
    EXPECT_EQ_U(hak_ctl("learn.freeze", NULL, NULL, &b, 4), EINVAL, "wrong size");
}

/* ---------------- learning ---------------- */

TEST(learn_hot_class_gets_more_tcache) {
    unsigned def = tcache_value(CLS_48K);
    set_bool("learn.freeze", false);
    learner_on();
    /* 32 blocks of 48 KiB (one a page): the default keeps one page, so every
     * batch hands 31 pages back to the arena and fetches them again. */
    unsigned want[2] = {CLS_48K, def};
    REQUIRE_TRUE(churn_until(48 << 10, 32, tcache_above, want), "blocks intact");
    unsigned v = tcache_value(CLS_48K);
    EXPECT_GT_U(v, def, "tcache_max of the churning class went up");
    EXPECT_GE_U(v, 32, "enough for the batch");
    EXPECT_EQ_U(get_unsigned("large.class.1.tcache_max"), v, "the class's own leaf agrees");
    EXPECT_GE_U(get_u64("learn.tcache.42.nchanges"), 1, "counted");
    EXPECT_GE_U(get_u64("learn.nchanges"), 1, "counted in all");
    char want_conf[64];
    snprintf(want_conf, sizeof want_conf, "tcache_max:42=%u", v);
    const char *conf = get_str("learn.tcache.42.conf");
    EXPECT_STREQ(conf, want_conf, conf);
    const char *s = get_str("learn.tcache.42.scores");
    EXPECT_TRUE(strchr(s, '*') != NULL && strncmp(s, "1:-", 3) != 0, s);
    hk_test_log("class 42: tcache_max %u -> %u; scores %s", def, v, s);
}

TEST(learn_freeze_stops_changes) {
    learner_on();
    REQUIRE_EQ_U(set_bool("learn.freeze", true), 0, "freeze");
    uint64_t changes = get_u64("learn.nchanges");
    unsigned v42 = tcache_value(CLS_48K), v28 = tcache_value(CLS_4K);
    /* Churn that would move class 28 (4 KiB blocks, 16 a page, 256 a batch)
     * and class 42 again, for at least 12 rounds. */
    uint64_t want = get_u64("learn.nrounds") + 12;
    REQUIRE_TRUE(churn_until(4096, 256, rounds_past, &want), "blocks intact");
    REQUIRE_TRUE(churn_until(48 << 10, 32, rounds_past, &want), "blocks intact");
    EXPECT_GE_U(get_u64("learn.nrounds"), want, "the rounds went on");
    EXPECT_EQ_U(get_u64("learn.nchanges"), changes, "frozen: no change");
    EXPECT_EQ_U(tcache_value(CLS_48K), v42, "class 42 pinned");
    EXPECT_EQ_U(tcache_value(CLS_4K), v28, "class 28 pinned");
    /* Thawed, the 4 KiB class learns. */
    set_bool("learn.freeze", false);
    unsigned w[2] = {CLS_4K, v28};
    REQUIRE_TRUE(churn_until(4096, 256, tcache_above, w), "blocks intact");
    EXPECT_GT_U(tcache_value(CLS_4K), v28, "thawed: class 28 went up");
}

TEST(learn_leaves_a_hand_setting_alone) {
    learner_on();
    unsigned five = 5;
    REQUIRE_EQ_U(hak_ctl("large.class.1.tcache_max", NULL, NULL, &five, sizeof five), 0, "set");
    uint64_t want = get_u64("learn.nrounds") + 10;
    REQUIRE_TRUE(churn_until(48 << 10, 32, rounds_past, &want), "blocks intact");
    EXPECT_EQ_U(tcache_value(CLS_48K), 5, "the learner left it alone");
}

TEST(learn_off_puts_defaults_back) {
    learner_on();
    unsigned w[2] = {CLS_4K, 16};
    REQUIRE_TRUE(churn_until(4096, 256, tcache_above, w), "blocks intact");
    REQUIRE_GT_U(tcache_value(CLS_4K), 16, "learned something for class 28");
    REQUIRE_EQ_U(set_bool("config.features.learner", false), 0, "learner off");
    EXPECT_EQ_U(tcache_value(CLS_4K), 16, "class 28 back to its default");
    EXPECT_STREQ(get_str("learn.tcache.28.conf"), "", "conf empty again");
    uint64_t rounds = get_u64("learn.nrounds");
    for (int k = 0; k < 200; k++) batch(4096, 256);
    EXPECT_EQ_U(get_u64("learn.nrounds"), rounds, "off: no rounds");
}

/* ---------------- HAKMEM_CONF tcache_max:CLASS=N, in a child ---------------- */

__attribute__((constructor)) static void child_role(void) {
    const char *role = getenv("HK_TEST_LEARN_CHILD");
    if (role == NULL) return;
    char line[96];
    unsigned a = 0, b = 0;
    size_t len = sizeof a;
    void *p = hak_malloc(100);
    hak_free(p);
    hak_ctl("mid.class.7.tcache_max", &a, &len, NULL, 0);
    len = sizeof b;
    hak_ctl("tiny.class.3.tcache_max", &b, &len, NULL, 0);
    const char *conf = "";
    len = sizeof conf;
    hak_ctl("learn.tcache.28.conf", &conf, &len, NULL, 0);
    int n = snprintf(line, sizeof line, "c28=%u c3=%u conf=%s\n", a, b, conf);
    if (write(1, line, (size_t)n) < 0) _exit(3);
    _exit(0);
}

/* Runs this binary with HAKMEM_CONF=conf; its stdout into out. */
static bool run_child(const char *conf, char *out, size_t cap, char *err, size_t ecap) {
    int po[2], pe[2];
    if (pipe(po) != 0 || pipe(pe) != 0) return false;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        setenv("HK_TEST_LEARN_CHILD", "1", 1);
        setenv("HAKMEM_CONF", conf, 1);
        execl("/proc/self/exe", "test_learn", (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t n = 0, m = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(po[0], out + n, cap - 1 - n)) > 0) n += (size_t)r;
    while (m + 1 < ecap && (r = read(pe[0], err + m, ecap - 1 - m)) > 0) m += (size_t)r;
    out[n] = err[m] = '\0';
    close(po[0]);
    close(pe[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

TEST(learn_conf_key_sets_a_class) {
    char out[256], err[512];
    REQUIRE_TRUE(run_child("tcache_max:28=512", out, sizeof out, err, sizeof err), err);
    EXPECT_STREQ(out, "c28=512 c3=1365 conf=tcache_max:28=512\n", out);
    EXPECT_STREQ(err, "", err);
    REQUIRE_TRUE(run_child("tcache_max:3=7,tcache_max:28=0", out, sizeof out, err, sizeof err), err);
    EXPECT_STREQ(out, "c28=0 c3=7 conf=tcache_max:28=0\n", out);
    static const char *const bad[] = {"tcache_max:61=5", "tcache_max:28", "tcache_max:=5",
                                      "tcache_max:28=x", "tcache_max:-1=5", "tcache_max:28=-2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE_TRUE(run_child(bad[i], out, sizeof out, err, sizeof err), err);
        EXPECT_STREQ(out, "c28=16 c3=1365 conf=\n", out);
        EXPECT_HAS_STR(err, "HAKMEM_CONF: bad value", bad[i]);
    }
}

TEST_MAIN()
