/* hak_stats_print: the text report has a general part and one section per
 * tier (tiny, mid, large, huge) whose rows agree with the control
 * namespace; "J" gives one line of valid JSON (checked with python3 when it
 * exists) with a "schema" key; the letters g t m l h omit the general, tiny,
 * mid, large and huge parts, in both forms; other letters are ignored; a
 * NULL writer goes to standard error; printing never allocates. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

/* ---------------- collecting the report ---------------- */

static char report[1 << 20];
static size_t report_len, max_piece, npieces;
static bool overflow;

static void collect(void *opaque, const char *text) {
    (void)opaque;
    size_t n = strlen(text);
    npieces++;
    if (n > max_piece) max_piece = n;
    if (report_len + n + 1 > sizeof report) {
        overflow = true;
        return;
    }
    memcpy(report + report_len, text, n + 1);
    report_len += n;
}

static const char *print(const char *opts) {
    report_len = max_piece = npieces = 0;
    overflow = false;
    report[0] = '\0';
    hak_stats_print(collect, report, opts);
    return report;
}

static int rd(const char *name, void *v, size_t len) {
    size_t l = len;
    return hak_ctl(name, v, &l, NULL, 0);
}

/* Blocks in every tier kept live while the tests run. */
static void *live[64];
static int nlive;

static void make_live_blocks(void) {
    if (nlive) return;
    static const size_t sizes[] = {48, 48, 100, 1000, 5120, 5120, 5120, 20000, 40960, 300000,
                                   1 << 20, 3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        live[nlive] = hak_malloc(sizes[i]);
        if (live[nlive]) memset(live[nlive], 1, sizes[i] < 4096 ? sizes[i] : 4096);
        nlive++;
    }
}

/* The row of a text section for the class of `size`: fills nmalloc,
 * ndalloc and live from it; false when there is none. */
static bool text_row(const char *rep, const char *section, unsigned size, unsigned long long *nm,
                     unsigned long long *nd, unsigned long long *lv) {
    const char *s = strstr(rep, section);
    if (s == NULL) return false;
    s = strchr(s, '\n'); /* end of "X classes:" */
    if (s) s = strchr(s + 1, '\n'); /* end of the column header */
    while (s && s[1] == ' ') {
        s++;
        unsigned cls, sz;
        unsigned long long a, b, c;
        if (sscanf(s, "%u %u %llu %llu %llu", &cls, &sz, &a, &b, &c) == 5 && sz == size) {
            *nm = a;
            *nd = b;
            *lv = c;
            return true;
        }
        s = strchr(s, '\n');
    }
    return false;
}

/* The sizes of the rows of a text section, checked against [lo, hi]. */
static bool text_rows_in_range(const char *rep, const char *section, unsigned lo, unsigned hi,
                               unsigned *nrows) {
    const char *s = strstr(rep, section);
    *nrows = 0;
    if (s == NULL) return true;
    s = strchr(s, '\n');
    if (s) s = strchr(s + 1, '\n');
    while (s && s[1] == ' ') {
        s++;
        unsigned cls, sz;
        if (sscanf(s, "%u %u", &cls, &sz) != 2) return false;
        if (sz < lo || sz > hi) return false;
        (*nrows)++;
        s = strchr(s, '\n');
    }
    return true;
}

static unsigned long long json_number_after(const char *from, const char *key) {
    const char *k = strstr(from, key);
    if (k == NULL) return ~0ull;
    return strtoull(k + strlen(key), NULL, 10);
}

/* In JSON: the nmalloc of the class object whose "size" is `size`. */
static bool json_class(const char *rep, unsigned size, unsigned long long *nm) {
    char key[48];
    snprintf(key, sizeof key, "\"size\":%u,", size);
    const char *s = strstr(rep, key);
    if (s == NULL) return false;
    const char *end = strchr(s, '}');
    const char *n = strstr(s, "\"nmalloc\":");
    if (n == NULL || (end && n > end)) {
        /* the key may precede "size" in the object */
        const char *open = s;
        while (open > rep && *open != '{') open--;
        n = strstr(open, "\"nmalloc\":");
        if (n == NULL || (end && n > end)) return false;
    }
    *nm = strtoull(n + 10, NULL, 10);
    return true;
}

/* Sizes of every "size":N in a JSON report: min and max, count. */
static void json_sizes(const char *rep, unsigned long long *mn, unsigned long long *mx,
                       unsigned *count, unsigned long long lo, unsigned long long hi,
                       unsigned *in_range) {
    *mn = ~0ull;
    *mx = 0;
    *count = 0;
    *in_range = 0;
    for (const char *s = strstr(rep, "\"size\":"); s; s = strstr(s + 1, "\"size\":")) {
        unsigned long long v = strtoull(s + 7, NULL, 10);
        if (v < *mn) *mn = v;
        if (v > *mx) *mx = v;
        (*count)++;
        if (v >= lo && v <= hi) (*in_range)++;
    }
}

static unsigned find_mid_index(unsigned size) {
    for (unsigned i = 0; i < 20; i++) {
        char name[48];
        size_t s = 0;
        snprintf(name, sizeof name, "mid.class.%u.size", i);
        if (rd(name, &s, sizeof s) == 0 && s == size) return i;
    }
    return ~0u;
}

/* ---------------- text ---------------- */

TEST(stats_print_text_has_every_section) {
    make_live_blocks();
    const char *version = NULL, *mode = NULL;
    REQUIRE_EQ_U(rd("version", &version, sizeof version), 0, "version");
    REQUIRE_EQ_U(rd("config.mode", &mode, sizeof mode), 0, "config.mode");
    unsigned mi = find_mid_index(5120);
    REQUIRE_NE_U(mi, ~0u, "a 5120-byte mid class");
    struct hak_class_stats st;
    char name[64];
    snprintf(name, sizeof name, "mid.class.%u.stats", mi);
    REQUIRE_EQ_U(rd(name, &st, sizeof st), 0, "class stats");
    const char *r = print(NULL); /* nothing allocates between the two */
    REQUIRE_TRUE(!overflow, "report fits");
    EXPECT_GT_U(report_len, 0, "something printed");
    EXPECT_LE_U(max_piece, 511, "pieces are at most 511 bytes");
    char head[96];
    snprintf(head, sizeof head, "hakmem %s", version);
    EXPECT_HAS_STR(r, head, "header with the version");
    char ml[64];
    snprintf(ml, sizeof ml, "mode: %s", mode);
    EXPECT_HAS_STR(r, ml, "general line with the mode");
    const char *t = strstr(r, "tiny classes:"), *m = strstr(r, "mid classes:"),
               *l = strstr(r, "large classes:"), *h = strstr(r, "huge:");
    EXPECT_NOT_NULL(t, "tiny header");
    EXPECT_NOT_NULL(m, "mid header");
    EXPECT_NOT_NULL(l, "large header");
    EXPECT_NOT_NULL(h, "huge line");
    EXPECT_TRUE(t && m && l && h && t < m && m < l && l < h, "tiny, mid, large, huge in order");
    unsigned long long nm = 0, nd = 0, lv = 0;
    EXPECT_TRUE(text_row(r, "mid classes:", 5120, &nm, &nd, &lv), "a row for 5120-byte blocks");
    EXPECT_EQ_U(nm, st.nmalloc, "text row nmalloc = mid.class.<i>.stats.nmalloc");
    EXPECT_EQ_U(nd, st.ndalloc, "text row ndalloc = stats.ndalloc");
    EXPECT_EQ_U(lv, st.curblocks, "text row live = stats.curblocks");
    EXPECT_GE_U(lv, 3, "the three live 5120-byte blocks");
    unsigned nr = 0;
    EXPECT_TRUE(text_rows_in_range(r, "tiny classes:", 8, 1024, &nr) && nr > 0,
                "tiny rows are tiny classes");
    EXPECT_TRUE(text_rows_in_range(r, "mid classes:", 1025, 32768, &nr) && nr > 0,
                "mid rows are mid classes");
    EXPECT_TRUE(text_rows_in_range(r, "large classes:", 32769, 1 << 20, &nr) && nr > 0,
                "large rows are large classes");
    unsigned long long hn = json_number_after(r, "huge: nmalloc ");
    uint64_t hm = 0;
    EXPECT_EQ_U(rd("huge.stats.nmalloc", &hm, sizeof hm), 0, "huge.stats.nmalloc");
    EXPECT_EQ_U(hn, hm, "huge line nmalloc = huge.stats.nmalloc");
}

struct section {
    char letter;
    const char *marker;
};

static const struct section text_sections[] = {
    {'g', "___ hakmem"}, {'g', "mode: "}, {'t', "tiny classes:"}, {'m', "mid classes:"},
    {'l', "large classes:"}, {'h', "huge: "},
};
#define NTEXT (sizeof text_sections / sizeof text_sections[0])

TEST(stats_print_text_omission_letters) {
    make_live_blocks();
    static const char *const opts[] = {"g", "t", "m", "l", "h", "tm", "gh", "lt", "hlmtg"};
    for (size_t o = 0; o < sizeof opts / sizeof opts[0]; o++) {
        const char *r = print(opts[o]);
        for (size_t k = 0; k < NTEXT; k++) {
            bool omitted = strchr(opts[o], text_sections[k].letter) != NULL;
            bool present = strstr(r, text_sections[k].marker) != NULL;
            if (omitted == present)
                hk_test_fail(__FILE__, __LINE__, "opts \"%s\": \"%s\" %s", opts[o],
                             text_sections[k].marker, present ? "still printed" : "missing");
        }
    }
    print("gtmlh");
    EXPECT_EQ_U(report_len, 0, "gtmlh omits everything");
    /* Other letters are ignored. */
    const char *r = print("xyzGTMLH");
    for (size_t k = 0; k < NTEXT; k++)
        if (strstr(r, text_sections[k].marker) == NULL)
            hk_test_fail(__FILE__, __LINE__, "opts \"xyzGTMLH\": \"%s\" missing",
                         text_sections[k].marker);
    print("");
    size_t empty_len = report_len;
    print(NULL);
    EXPECT_TRUE(empty_len > 0 && report_len > 0, "\"\" and NULL print the full report");
}

TEST(stats_print_text_follows_the_mode) {
    const char *m = "minimal";
    REQUIRE_EQ_U(hak_ctl("config.mode", NULL, NULL, &m, sizeof m), 0, "minimal");
    const char *r = print("tmlh");
    bool ok1 = strstr(r, "mode: minimal") != NULL && strstr(r, "tcache: off") != NULL &&
               strstr(r, "bigcache: off") != NULL && strstr(r, "decay: off") != NULL;
    m = "fast";
    REQUIRE_EQ_U(hak_ctl("config.mode", NULL, NULL, &m, sizeof m), 0, "fast");
    r = print("tmlh");
    bool ok2 = strstr(r, "mode: fast") != NULL && strstr(r, "tcache: on") != NULL &&
               strstr(r, "bigcache: on") != NULL && strstr(r, "decay: on") != NULL;
    r = print("J");
    bool ok3 = strstr(r, "\"mode\":\"fast\"") != NULL;
    m = "balanced";
    EXPECT_EQ_U(hak_ctl("config.mode", NULL, NULL, &m, sizeof m), 0, "balanced");
    EXPECT_TRUE(ok1, "minimal: mode and features off in the general line");
    EXPECT_TRUE(ok2, "fast: mode and features on in the general line");
    EXPECT_TRUE(ok3, "JSON mode follows config.mode");
}

/* ---------------- JSON ---------------- */

static bool have_python(void) {
    static int cached = -1;
    if (cached < 0) {
        int st = system("command -v python3 >/dev/null 2>&1");
        cached = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    return cached == 1;
}

/* Writes the current report to a new temporary file; its path in path. */
static bool write_temp(char *path, size_t cap) {
    snprintf(path, cap, "/tmp/hk_stats_json.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return false;
    size_t off = 0;
    while (off < report_len) {
        ssize_t w = write(fd, report + off, report_len - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return false;
        }
        off += (size_t)w;
    }
    close(fd);
    return true;
}

static int run_shell(const char *cmd) {
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

TEST(stats_print_json_is_valid) {
    make_live_blocks();
    unsigned mi = find_mid_index(5120);
    REQUIRE_NE_U(mi, ~0u, "a 5120-byte mid class");
    struct hak_class_stats st;
    char name[64];
    snprintf(name, sizeof name, "mid.class.%u.stats", mi);
    REQUIRE_EQ_U(rd(name, &st, sizeof st), 0, "class stats");
    const char *r = print("J");
    REQUIRE_TRUE(!overflow && report_len > 2, "JSON printed");
    EXPECT_LE_U(max_piece, 511, "pieces are at most 511 bytes");
    EXPECT_TRUE(r[0] == '{', "starts with {");
    EXPECT_TRUE(report_len >= 2 && strcmp(r + report_len - 2, "}\n") == 0, "ends with }\\n");
    EXPECT_EQ_PTR(strchr(r, '\n'), r + report_len - 1, "one line");
    EXPECT_HAS_STR(r, "\"schema\":", "has a \"schema\" key");
    for (const char *k = r; *k; k++)
        if ((unsigned char)*k < 32 && *k != '\n') {
            hk_test_fail(__FILE__, __LINE__, "control character in JSON at %zu", (size_t)(k - r));
            break;
        }
    unsigned long long nm = 0;
    EXPECT_TRUE(json_class(r, 5120, &nm), "a class object of size 5120");
    EXPECT_EQ_U(nm, st.nmalloc, "JSON nmalloc = mid.class.<i>.stats.nmalloc");

    SKIP_IF(!have_python(), "python3 not available to validate the JSON");
    char path[64], cmd[512];
    REQUIRE_TRUE(write_temp(path, sizeof path), "temporary file");
    snprintf(cmd, sizeof cmd, "python3 -m json.tool %s >/dev/null", path);
    int rc = run_shell(cmd);
    unlink(path);
    SKIP_IF(rc == 127, "python3 could not run");
    EXPECT_EQ_U(rc, 0, "python3 -m json.tool accepts the report");
}

TEST(stats_print_json_omission_letters) {
    make_live_blocks();
    static const char *const opts[] = {"J", "Jg", "Jt", "Jm", "Jl", "Jh", "Jtml", "Jgtmlh",
                                       "gJ", "hJx"};
    enum { NOPTS = sizeof opts / sizeof opts[0] };
    static char paths[NOPTS][64];
    bool py = have_python();
    size_t nfiles = 0;
    for (size_t o = 0; o < NOPTS; o++) {
        const char *op = opts[o];
        const char *r = print(op);
        bool g = strchr(op, 'g'), t = strchr(op, 't'), m = strchr(op, 'm'), l = strchr(op, 'l'),
             h = strchr(op, 'h');
        if (strstr(r, "\"schema\":") == NULL)
            hk_test_fail(__FILE__, __LINE__, "opts %s: no schema", op);
        if ((strstr(r, "\"mapped\":") != NULL) == g)
            hk_test_fail(__FILE__, __LINE__, "opts %s: general part %s", op, g ? "kept" : "missing");
        if ((strstr(r, "\"huge\":") != NULL) == h)
            hk_test_fail(__FILE__, __LINE__, "opts %s: huge part %s", op, h ? "kept" : "missing");
        unsigned long long mn, mx;
        unsigned count, in;
        json_sizes(r, &mn, &mx, &count, 1, 1024, &in);
        if ((in > 0) == t)
            hk_test_fail(__FILE__, __LINE__, "opts %s: %u tiny class objects", op, in);
        json_sizes(r, &mn, &mx, &count, 1025, 32768, &in);
        if ((in > 0) == m)
            hk_test_fail(__FILE__, __LINE__, "opts %s: %u mid class objects", op, in);
        json_sizes(r, &mn, &mx, &count, 32769, 1 << 20, &in);
        if ((in > 0) == l)
            hk_test_fail(__FILE__, __LINE__, "opts %s: %u large class objects", op, in);
        if (py) {
            if (write_temp(paths[nfiles], sizeof paths[nfiles])) nfiles++;
            else hk_test_fail(__FILE__, __LINE__, "temporary file");
        }
    }
    if (!py) {
        hk_test_log("python3 not available: JSON validity of the variants not checked");
        return;
    }
    /* One python3 run checks every variant (and the schema of each): the
     * names of the files that fail come back on its standard output. */
    char cmd[2048];
    size_t o = (size_t)snprintf(cmd, sizeof cmd,
                                "python3 -c 'import json,sys\n"
                                "for f in sys.argv[1:]:\n"
                                " try:\n"
                                "  d=json.load(open(f)); assert d[\"schema\"]==2\n"
                                " except Exception as e: print(f, e)' 2>&1");
    for (size_t i = 0; i < nfiles && o < sizeof cmd; i++)
        o += (size_t)snprintf(cmd + o, sizeof cmd - o, " %s", paths[i]);
    FILE *p = popen(cmd, "r");
    char line[512];
    int bad = 0;
    if (p == NULL) {
        hk_test_fail(__FILE__, __LINE__, "popen python3");
    } else {
        while (fgets(line, sizeof line, p) != NULL) {
            for (size_t i = 0; i < nfiles; i++)
                if (strstr(line, paths[i]) != NULL)
                    hk_test_fail(__FILE__, __LINE__, "opts %s: invalid JSON: %s", opts[i], line);
            if (bad++ < 1) hk_test_log("python3: %s", line);
        }
        int st = pclose(p);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            hk_test_fail(__FILE__, __LINE__, "python3 validation run failed (status %#x)",
                         (unsigned)st);
    }
    for (size_t i = 0; i < nfiles; i++) unlink(paths[i]);
}

/* ---------------- the default writer, allocation ---------------- */

TEST(stats_print_null_writer_goes_to_stderr) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hk_stats_err.XXXXXX");
    int fd = mkstemp(path);
    REQUIRE_GE_I(fd, 0, "temporary file");
    int saved = dup(2);
    REQUIRE_GE_I(saved, 0, "dup stderr");
    dup2(fd, 2);
    hak_stats_print(NULL, NULL, "J");
    hak_stats_print(NULL, NULL, "gml");
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    static char buf[1 << 18];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    unlink(path);
    EXPECT_HAS_STR(buf, "\"schema\":", "the JSON report reached stderr");
    EXPECT_HAS_STR(buf, "tiny classes:", "the text report reached stderr");
    EXPECT_HAS_STR(buf, "huge: ", "the huge line reached stderr");
    EXPECT_LACKS_STR(buf, "mid classes:", "m omitted the mid section on stderr");
}

static uint64_t total_nmalloc(void) {
    static const char *const tiers[3] = {"tiny", "mid", "large"};
    uint64_t sum = 0;
    for (unsigned t = 0; t < 3; t++) {
        unsigned n = 0;
        char name[64];
        snprintf(name, sizeof name, "%s.nclasses", tiers[t]);
        if (rd(name, &n, sizeof n) != 0) return 0;
        for (unsigned i = 0; i < n; i++) {
            uint64_t v = 0;
            snprintf(name, sizeof name, "%s.class.%u.stats.nmalloc", tiers[t], i);
            if (rd(name, &v, sizeof v) != 0) return 0;
            sum += v;
        }
    }
    uint64_t h = 0;
    rd("huge.stats.nmalloc", &h, sizeof h);
    return sum + h;
}

TEST(stats_print_never_allocates) {
    make_live_blocks();
    /* Nothing else may allocate meanwhile: the stats page is kept off. */
    bool off = false, was = true;
    size_t blen = sizeof was;
    hak_ctl("config.features.stats_page", &was, &blen, &off, sizeof off);
    uint64_t before = total_nmalloc();
    print(NULL);
    print("J");
    print("Jgtmlh");
    uint64_t after = total_nmalloc();
    hak_ctl("config.features.stats_page", NULL, NULL, &was, sizeof was);
    EXPECT_GT_U(before, 0, "counters readable");
    EXPECT_EQ_U(after, before, "printing made no allocation");
}

TEST_MAIN()
