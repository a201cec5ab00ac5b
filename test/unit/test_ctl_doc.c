/* The control namespace against its listing and its manual page:
 *   - hak_ctl_list names every leaf exactly once;
 *   - every listed leaf reads with exactly its type's size (actions: EPERM),
 *     other sizes fail with EINVAL, read-only leaves refuse writes (EPERM),
 *     MIBs reach the same leaves;
 *   - every read-write leaf accepts its current value back, and actions run;
 *   - the leaf entries of doc/hakmem.3 (section CONTROL NAMESPACE, "Leaves")
 *     and the listing match both ways after mapping the tier / i wildcards,
 *     with the same types and access, and the documented leaf count holds.
 * The manual page is found through HAKMEM_SRCROOT (set by test/run-tests.sh),
 * else relative to the working directory or to this binary. */
#include "harness.h"
#include <hakmem/hakmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------- the listing ---------------- */

struct leaf {
    char *name;
    int type;
    int writable;
    int matched;
};

static struct leaf *leaves;
static size_t nleaves, capleaves;

static size_t type_size(int type) {
    switch (type) {
    case HAK_CTL_BOOL: return sizeof(bool);
    case HAK_CTL_UNSIGNED: return sizeof(unsigned);
    case HAK_CTL_SIZE: return sizeof(size_t);
    case HAK_CTL_U64: return sizeof(uint64_t);
    case HAK_CTL_I64: return sizeof(int64_t);
    case HAK_CTL_STRING: return sizeof(const char *);
    case HAK_CTL_CLASS_STATS: return sizeof(struct hak_class_stats);
    default: return 0;
    }
}

static const char *type_name(int type) {
    switch (type) {
    case HAK_CTL_BOOL: return "bool";
    case HAK_CTL_UNSIGNED: return "unsigned";
    case HAK_CTL_SIZE: return "size_t";
    case HAK_CTL_U64: return "uint64_t";
    case HAK_CTL_I64: return "int64_t";
    case HAK_CTL_STRING: return "string";
    case HAK_CTL_CLASS_STATS: return "struct hak_class_stats";
    case HAK_CTL_VOID: return "action";
    default: return "?";
    }
}

static int collect_leaf(const char *name, int type, int writable, void *arg) {
    (void)arg;
    if (nleaves == capleaves) {
        size_t nc = capleaves ? 2 * capleaves : 1024;
        struct leaf *n = hak_realloc(leaves, nc * sizeof *n);
        if (n == NULL) return 1;
        leaves = n;
        capleaves = nc;
    }
    size_t l = strlen(name);
    char *copy = hak_malloc(l + 1);
    if (copy == NULL) return 1;
    memcpy(copy, name, l + 1);
    leaves[nleaves++] = (struct leaf){copy, type, writable, 0};
    return 0;
}

/* Loads the listing once (in listing order). */
static bool load_leaves(void) {
    if (nleaves) return true;
    return hak_ctl_list("", collect_leaf, NULL) == 0 && nleaves > 0;
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t ncomponents(const char *s) {
    size_t n = 1;
    for (; *s; s++) n += *s == '.';
    return n;
}

TEST(ctl_doc_every_leaf_listed_once) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list");
    char **names = hak_malloc(nleaves * sizeof *names);
    REQUIRE_NOT_NULL(names, "array");
    for (size_t i = 0; i < nleaves; i++) names[i] = leaves[i].name;
    qsort(names, nleaves, sizeof *names, str_cmp);
    unsigned dups = 0;
    for (size_t i = 1; i < nleaves; i++)
        if (strcmp(names[i - 1], names[i]) == 0 && dups++ < 10)
            hk_test_fail(__FILE__, __LINE__, "%s is listed twice", names[i]);
    hak_free(names);
    for (size_t i = 0; i < nleaves; i++) {
        const char *n = leaves[i].name;
        bool ok = *n != '\0' && *n != '.' && n[strlen(n) - 1] != '.' && strstr(n, "..") == NULL;
        for (const char *s = n; *s; s++)
            ok &= (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.';
        if (!ok) hk_test_fail(__FILE__, __LINE__, "odd listed name \"%s\"", n);
        if (type_size(leaves[i].type) == 0 && leaves[i].type != HAK_CTL_VOID)
            hk_test_fail(__FILE__, __LINE__, "%s: unknown type %d", n, leaves[i].type);
        if (leaves[i].type == HAK_CTL_VOID && !leaves[i].writable)
            hk_test_fail(__FILE__, __LINE__, "%s: an action listed as not writable", n);
    }
    /* Listing with a prefix gives the same leaves as filtering the full
     * list by whole components. */
    static const char *const prefixes[] = {"tiny", "mid.class.3", "arena.0", "huge", "config",
                                           "opt", "thread.tcache", "stats", "version"};
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        const char *pre = prefixes[p];
        size_t pl = strlen(pre), want = 0;
        for (size_t i = 0; i < nleaves; i++)
            if (strncmp(leaves[i].name, pre, pl) == 0 &&
                (leaves[i].name[pl] == '\0' || leaves[i].name[pl] == '.'))
                want++;
        size_t save = nleaves;
        struct leaf *save_l = leaves;
        size_t save_cap = capleaves;
        leaves = NULL;
        nleaves = capleaves = 0;
        int rc = hak_ctl_list(pre, collect_leaf, NULL);
        size_t got = nleaves;
        for (size_t i = 0; i < nleaves; i++) hak_free(leaves[i].name);
        hak_free(leaves);
        leaves = save_l;
        nleaves = save;
        capleaves = save_cap;
        EXPECT_EQ_U(rc, 0, pre);
        if (got != want || want == 0)
            hk_test_fail(__FILE__, __LINE__, "prefix %s lists %zu leaves, the full list has %zu",
                         pre, got, want);
    }
}

static void check_leaf_access(const struct leaf *lf) {
    union {
        unsigned char b[256];
        uint64_t align;
    } buf, buf2;
    const char *n = lf->name;
    size_t sz = type_size(lf->type), len;
    int rc;
    if (lf->type == HAK_CTL_VOID) {
        len = 8;
        rc = hak_ctl(n, buf.b, &len, NULL, 0);
        if (rc != EPERM) hk_test_fail(__FILE__, __LINE__, "action %s: read gave %d", n, rc);
        uint64_t v = 0;
        rc = hak_ctl(n, NULL, NULL, &v, sizeof v);
        if (rc != EPERM) hk_test_fail(__FILE__, __LINE__, "action %s: write gave %d", n, rc);
        return;
    }
    /* The exact size works and writes exactly that many bytes. */
    memset(buf.b, 0xA5, sizeof buf.b);
    len = sz;
    rc = hak_ctl(n, buf.b, &len, NULL, 0);
    if (rc != 0) {
        hk_test_fail(__FILE__, __LINE__, "%s (%s): read gave %d", n, type_name(lf->type), rc);
        return;
    }
    if (len != sz) hk_test_fail(__FILE__, __LINE__, "%s: *oldlenp became %zu", n, len);
    for (size_t k = sz; k < sizeof buf.b; k++)
        if (buf.b[k] != 0xA5) {
            hk_test_fail(__FILE__, __LINE__, "%s: read wrote past its %zu bytes", n, sz);
            break;
        }
    if (lf->type == HAK_CTL_STRING) {
        const char *s;
        memcpy(&s, buf.b, sizeof s);
        if (s == NULL || strnlen(s, 4096) >= 4096)
            hk_test_fail(__FILE__, __LINE__, "%s: string leaf reads a bad string", n);
    }
    if (lf->type == HAK_CTL_BOOL && buf.b[0] > 1)
        hk_test_fail(__FILE__, __LINE__, "%s: bool reads %u", n, buf.b[0]);
    /* Other sizes fail and leave *oldlenp alone. */
    static const size_t others[] = {0, 1, 2, 4, 8, 16, 72, 73};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        if (others[k] == sz) continue;
        len = others[k];
        rc = hak_ctl(n, buf2.b, &len, NULL, 0);
        if (rc != EINVAL || len != others[k])
            hk_test_fail(__FILE__, __LINE__, "%s (%zu bytes): read with %zu gave %d, len %zu", n,
                         sz, others[k], rc, len);
    }
    /* Read-only: writes are EPERM whatever the size.  Writable: a wrong
     * size is EINVAL. */
    memcpy(buf2.b, buf.b, sizeof buf2.b);
    rc = hak_ctl(n, NULL, NULL, buf2.b, sz);
    if (!lf->writable && rc != EPERM)
        hk_test_fail(__FILE__, __LINE__, "read-only %s: write gave %d", n, rc);
    if (lf->writable && rc == EPERM)
        hk_test_fail(__FILE__, __LINE__, "writable %s: write of its own value gave EPERM", n);
    rc = hak_ctl(n, NULL, NULL, buf2.b, sz + 1);
    if (rc != (lf->writable ? EINVAL : EPERM))
        hk_test_fail(__FILE__, __LINE__, "%s: write of %zu bytes gave %d", n, sz + 1, rc);
    /* The MIB reaches the same leaf. */
    size_t mib[16], miblen = 16;
    rc = hak_ctl_nametomib(n, mib, &miblen);
    if (rc != 0) {
        hk_test_fail(__FILE__, __LINE__, "nametomib(%s) gave %d", n, rc);
        return;
    }
    if (miblen != ncomponents(n))
        hk_test_fail(__FILE__, __LINE__, "nametomib(%s): miblen %zu", n, miblen);
    len = sz;
    rc = hak_ctl_bymib(mib, miblen, buf2.b, &len, NULL, 0);
    if (rc != 0) hk_test_fail(__FILE__, __LINE__, "bymib(%s) gave %d", n, rc);
    /* Values that cannot change between two reads here must agree. */
    bool stable = lf->type == HAK_CTL_BOOL || lf->type == HAK_CTL_UNSIGNED ||
                  lf->type == HAK_CTL_STRING || lf->type == HAK_CTL_I64 ||
                  (lf->type == HAK_CTL_SIZE && strstr(n, ".size") != NULL);
    if (rc == 0 && stable && memcmp(buf.b, buf2.b, sz) != 0)
        hk_test_fail(__FILE__, __LINE__, "%s: hak_ctl and hak_ctl_bymib disagree", n);
}

TEST(ctl_doc_every_leaf_reads_with_its_size) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list");
    for (size_t i = 0; i < nleaves; i++) check_leaf_access(&leaves[i]);
}

TEST(ctl_doc_rw_leaves_accept_their_current_value) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list");
    unsigned nrw = 0, nact = 0;
    for (size_t i = 0; i < nleaves; i++) {
        const struct leaf *lf = &leaves[i];
        const char *n = lf->name;
        if (!lf->writable) continue;
        if (lf->type == HAK_CTL_VOID) {
            /* Actions: arena purges and the thread cache flush are safe to
             * run here; others may have effects outside this test. */
            bool safe = strcmp(n, "thread.tcache.flush") == 0 ||
                        (strncmp(n, "arena.", 6) == 0 && strlen(n) > 12 &&
                         strcmp(n + strlen(n) - 6, ".purge") == 0);
            if (!safe) continue;
            int rc = hak_ctl(n, NULL, NULL, NULL, 0);
            if (rc != 0) hk_test_fail(__FILE__, __LINE__, "action %s gave %d", n, rc);
            nact++;
            continue;
        }
        union {
            unsigned char b[128];
            uint64_t align;
        } v, old, after;
        size_t sz = type_size(lf->type), len = sz;
        int rc = hak_ctl(n, v.b, &len, NULL, 0);
        if (rc != 0) {
            hk_test_fail(__FILE__, __LINE__, "%s: read gave %d", n, rc);
            continue;
        }
        /* Read and write in one call: the old value comes back. */
        len = sz;
        rc = hak_ctl(n, old.b, &len, v.b, sz);
        if (rc != 0) {
            hk_test_fail(__FILE__, __LINE__, "%s: writing its current value gave %d", n, rc);
            continue;
        }
        nrw++;
        len = sz;
        rc = hak_ctl(n, after.b, &len, NULL, 0);
        if (rc != 0) {
            hk_test_fail(__FILE__, __LINE__, "%s: read after write gave %d", n, rc);
            continue;
        }
        if (strcmp(n, "epoch") == 0) {
            uint64_t e0, e1;
            memcpy(&e0, v.b, 8);
            memcpy(&e1, after.b, 8);
            if (e1 != e0 + 1)
                hk_test_fail(__FILE__, __LINE__, "epoch: %llu -> %llu after a write",
                             (unsigned long long)e0, (unsigned long long)e1);
            continue;
        }
        bool same = lf->type == HAK_CTL_STRING
                        ? strcmp(*(const char **)(void *)v.b, *(const char **)(void *)after.b) == 0
                        : memcmp(v.b, after.b, sz) == 0;
        if (!same) hk_test_fail(__FILE__, __LINE__, "%s: value changed by writing it back", n);
        if (memcmp(old.b, v.b, sz) != 0 &&
            !(lf->type == HAK_CTL_STRING &&
              strcmp(*(const char **)(void *)v.b, *(const char **)(void *)old.b) == 0))
            hk_test_fail(__FILE__, __LINE__, "%s: read+write returned another old value", n);
    }
    hk_test_log("%u read-write leaves written back, %u actions run", nrw, nact);
    EXPECT_TRUE(nrw > 0 && nact > 0, "some rw leaves and actions exist");
}

/* ---------------- the manual page ---------------- */

static char *man_text;

static char *read_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = hak_malloc(cap);
    if (buf == NULL) {
        close(fd);
        return NULL;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = hak_realloc(buf, cap * 2);
            if (nb == NULL) break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return buf;
}

static const char *load_man(void) {
    if (man_text) return man_text;
    char path[4096];
    const char *root = getenv("HAKMEM_SRCROOT");
    if (root != NULL) {
        snprintf(path, sizeof path, "%s%sdoc/hakmem.3", *root ? root : ".",
                 *root && root[strlen(root) - 1] == '/' ? "" : "/");
        if ((man_text = read_file(path)) != NULL) return man_text;
    }
    if ((man_text = read_file("../../doc/hakmem.3")) != NULL) return man_text;
    char exe[3500];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el > 0) {
        exe[el] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/../../doc/hakmem.3", exe);
            if ((man_text = read_file(path)) != NULL) return man_text;
        }
    }
    man_text = read_file("doc/hakmem.3");
    return man_text;
}

struct doc_entry {
    char pattern[160];  /* e.g. "<tier>.class.<i>.size" */
    char type[128];     /* "uint64_t", "action", ... */
    char access[128];   /* "r", "rw", "action" */
    int line;
    unsigned matches;
};

static struct doc_entry docs[256];
static size_t ndocs;
static char doc_error[256];

/* Removes troff escapes that can appear in a name token. */
static void strip_escapes(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (const char *s = in; *s && o + 1 < cap; s++) {
        if (s[0] == '\\' && s[1] == 'f' && s[2]) {
            s += 2;
            continue;
        }
        if (s[0] == '\\' && (s[1] == 'c' || s[1] == '&')) {
            s++;
            continue;
        }
        if (s[0] == '\\' && s[1] == '-') {
            out[o++] = '-';
            s++;
            continue;
        }
        out[o++] = *s;
    }
    out[o] = '\0';
}

/* Splits the arguments of a request line (quotes group words). */
static size_t split_args(const char *s, char toks[][200], size_t max) {
    size_t n = 0;
    while (*s && n < max) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        size_t o = 0;
        if (*s == '"') {
            s++;
            while (*s && !(*s == '"' && s[1] != '"')) {
                if (*s == '"') s++; /* "" is a literal quote */
                if (o + 1 < 200) toks[n][o++] = *s;
                s++;
            }
            if (*s == '"') s++;
        } else {
            while (*s && *s != ' ' && *s != '\t') {
                if (o + 1 < 200) toks[n][o++] = *s;
                s++;
            }
        }
        toks[n][o] = '\0';
        n++;
    }
    return n;
}

/* Font of argument k of a font-alternating macro: 'B', 'I' or 'R'. */
static char font_of(const char *macro, size_t k) {
    if (strcmp(macro, "B") == 0) return 'B';
    if (strcmp(macro, "I") == 0) return 'I';
    if (strlen(macro) != 2) return '?';
    return macro[k % 2];
}

/* Parses one tag line of a leaf entry into e; false (with doc_error set)
 * when it does not have the shape "NAME (TYPE, ACCESS)". */
static bool parse_tag(const char *line, int lineno, struct doc_entry *e) {
    char macro[4] = {0};
    size_t ml = 0;
    const char *s = line + 1;
    while (*s && *s != ' ' && ml < 3) macro[ml++] = *s++;
    if (font_of(macro, 0) == '?') {
        snprintf(doc_error, sizeof doc_error, "line %d: unexpected tag macro .%s", lineno, macro);
        return false;
    }
    static char toks[16][200];
    size_t nt = split_args(s, toks, 16);
    if (nt < 2) {
        snprintf(doc_error, sizeof doc_error, "line %d: no type after the name", lineno);
        return false;
    }
    /* The annotation is the last argument: "(type, access)" or "(action)". */
    char ann[200];
    strip_escapes(toks[nt - 1], ann, sizeof ann);
    const char *lp = strchr(ann, '('), *rp = strrchr(ann, ')');
    if (lp == NULL || rp == NULL || rp < lp) {
        snprintf(doc_error, sizeof doc_error, "line %d: no (type, access) annotation", lineno);
        return false;
    }
    char inner[128];
    size_t il = (size_t)(rp - lp - 1);
    if (il >= sizeof inner) il = sizeof inner - 1;
    memcpy(inner, lp + 1, il);
    inner[il] = '\0';
    char *comma = strrchr(inner, ',');
    if (comma) {
        *comma = '\0';
        const char *acc = comma + 1;
        while (*acc == ' ') acc++;
        snprintf(e->access, sizeof e->access, "%s", acc);
        snprintf(e->type, sizeof e->type, "%s", inner);
    } else {
        snprintf(e->access, sizeof e->access, "%s", inner);
        snprintf(e->type, sizeof e->type, "%s", inner);
    }
    /* The name: bold parts literal, italic parts placeholders. */
    size_t o = 0;
    e->pattern[0] = '\0';
    for (size_t k = 0; k + 1 < nt; k++) {
        char tok[200];
        strip_escapes(toks[k], tok, sizeof tok);
        char f = font_of(macro, k);
        char piece[210];
        if (f == 'I') snprintf(piece, sizeof piece, "<%s>", tok);
        else snprintf(piece, sizeof piece, "%s", tok);
        size_t pl = strlen(piece);
        if (o + pl + 1 >= sizeof e->pattern) break;
        memcpy(e->pattern + o, piece, pl + 1);
        o += pl;
    }
    e->line = lineno;
    e->matches = 0;
    return o > 0;
}

/* Parses the leaf entries of the "Leaves" subsection: the tag line after
 * each .TP up to the next .SS or .SH. */
static bool parse_man(const char *text) {
    ndocs = 0;
    doc_error[0] = '\0';
    const char *s = strstr(text, "\n.SS Leaves");
    if (s == NULL) {
        snprintf(doc_error, sizeof doc_error, "no \".SS Leaves\" subsection");
        return false;
    }
    int lineno = 1;
    for (const char *t = text; t < s + 1; t++) lineno += *t == '\n';
    s = strchr(s + 1, '\n');
    bool after_tp = false;
    while (s && *s) {
        s++;
        lineno++;
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char line[512];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, s, len);
        line[len] = '\0';
        if (strncmp(line, ".SS", 3) == 0 || strncmp(line, ".SH", 3) == 0) break;
        if (after_tp && line[0] == '.' && strncmp(line, ".\\\"", 3) != 0) {
            if (ndocs < sizeof docs / sizeof docs[0]) {
                if (!parse_tag(line, lineno, &docs[ndocs])) return false;
                ndocs++;
            }
        }
        if (line[0] == '.' && strncmp(line, ".\\\"", 3) != 0)
            after_tp = strcmp(line, ".TP") == 0;
        else if (line[0] != '\0')
            after_tp = false;
        s = e;
    }
    if (ndocs == 0) snprintf(doc_error, sizeof doc_error, "no leaf entries found");
    return ndocs > 0;
}

/* Does a concrete name match a documented pattern, component by component? */
static bool pattern_matches(const char *pat, const char *name) {
    for (;;) {
        const char *pd = strchr(pat, '.'), *nd = strchr(name, '.');
        size_t pl = pd ? (size_t)(pd - pat) : strlen(pat);
        size_t nl = nd ? (size_t)(nd - name) : strlen(name);
        if (pl == 6 && strncmp(pat, "<tier>", 6) == 0) {
            if (!((nl == 4 && strncmp(name, "tiny", 4) == 0) ||
                  (nl == 3 && strncmp(name, "mid", 3) == 0) ||
                  (nl == 5 && strncmp(name, "large", 5) == 0)))
                return false;
        } else if (pl == 3 && strncmp(pat, "<i>", 3) == 0) {
            if (nl == 0) return false;
            for (size_t i = 0; i < nl; i++)
                if (name[i] < '0' || name[i] > '9') return false;
        } else if (pl != nl || strncmp(pat, name, nl) != 0) {
            return false;
        }
        if ((pd == NULL) != (nd == NULL)) return false;
        if (pd == NULL) return true;
        pat = pd + 1;
        name = nd + 1;
    }
}

/* The row pattern a concrete name would be documented under. */
static void generalize(const char *name, char *out, size_t cap) {
    size_t o = 0;
    bool first = true;
    const char *s = name;
    for (;;) {
        const char *d = strchr(s, '.');
        size_t l = d ? (size_t)(d - s) : strlen(s);
        bool digits = l > 0;
        for (size_t i = 0; i < l; i++) digits &= s[i] >= '0' && s[i] <= '9';
        const char *piece = NULL;
        if (first && ((l == 4 && !strncmp(s, "tiny", 4)) || (l == 3 && !strncmp(s, "mid", 3)) ||
                      (l == 5 && !strncmp(s, "large", 5))))
            piece = "<tier>";
        else if (digits)
            piece = "<i>";
        size_t pl = piece ? strlen(piece) : l;
        if (o + pl + 2 >= cap) break;
        memcpy(out + o, piece ? piece : s, pl);
        o += pl;
        first = false;
        if (!d) break;
        out[o++] = '.';
        s = d + 1;
    }
    out[o] = '\0';
}

static bool load_docs(void) {
    const char *text = load_man();
    if (text == NULL) return false;
    if (ndocs == 0 && !parse_man(text)) {
        hk_test_fail(__FILE__, __LINE__, "doc/hakmem.3: %s", doc_error);
        return false;
    }
    return true;
}

TEST(ctl_doc_man_page_names_match_listing) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list");
    bool have = load_man() != NULL;
    SKIP_IF(!have, "doc/hakmem.3 not found (set HAKMEM_SRCROOT)");
    if (!load_docs()) return;
    hk_test_log("%zu leaf entries in doc/hakmem.3, %zu listed leaves", ndocs, nleaves);
    for (size_t d = 0; d < ndocs; d++) docs[d].matches = 0;
    /* Every listed leaf is documented. */
    char missing[40][160];
    size_t nmissing = 0;
    for (size_t i = 0; i < nleaves; i++) {
        leaves[i].matched = 0;
        for (size_t d = 0; d < ndocs; d++)
            if (pattern_matches(docs[d].pattern, leaves[i].name)) {
                docs[d].matches++;
                leaves[i].matched++;
            }
        if (leaves[i].matched == 0) {
            char g[160];
            generalize(leaves[i].name, g, sizeof g);
            bool seen = false;
            for (size_t k = 0; k < nmissing; k++) seen |= strcmp(missing[k], g) == 0;
            if (!seen && nmissing < 40) strcpy(missing[nmissing++], g);
        }
        if (leaves[i].matched > 1)
            hk_test_fail(__FILE__, __LINE__, "%s matches %d documented entries", leaves[i].name,
                         leaves[i].matched);
    }
    for (size_t k = 0; k < nmissing; k++)
        hk_test_fail(__FILE__, __LINE__, "listed but not documented in doc/hakmem.3: %s",
                     missing[k]);
    /* Every documented entry names at least one listed leaf. */
    for (size_t d = 0; d < ndocs; d++)
        if (docs[d].matches == 0)
            hk_test_fail(__FILE__, __LINE__,
                         "doc/hakmem.3:%d documents %s, which hak_ctl_list does not list",
                         docs[d].line, docs[d].pattern);
    /* Each entry once. */
    for (size_t d = 0; d < ndocs; d++)
        for (size_t e = d + 1; e < ndocs; e++)
            if (strcmp(docs[d].pattern, docs[e].pattern) == 0)
                hk_test_fail(__FILE__, __LINE__, "doc/hakmem.3 documents %s twice (lines %d, %d)",
                             docs[d].pattern, docs[d].line, docs[e].line);
}

TEST(ctl_doc_man_page_types_match_listing) {
    REQUIRE_TRUE(load_leaves(), "hak_ctl_list");
    bool have = load_man() != NULL;
    SKIP_IF(!have, "doc/hakmem.3 not found (set HAKMEM_SRCROOT)");
    if (!load_docs()) return;
    for (size_t d = 0; d < ndocs; d++) {
        const struct doc_entry *e = &docs[d];
        const char *want_access = NULL;
        bool reported = false;
        for (size_t i = 0; i < nleaves && !reported; i++) {
            if (!pattern_matches(e->pattern, leaves[i].name)) continue;
            const struct leaf *lf = &leaves[i];
            want_access = lf->type == HAK_CTL_VOID ? "action" : lf->writable ? "rw" : "r";
            if (strcmp(e->type, type_name(lf->type)) != 0) {
                hk_test_fail(__FILE__, __LINE__, "doc/hakmem.3:%d: %s documented as %s, is %s",
                             e->line, e->pattern, e->type, type_name(lf->type));
                reported = true;
            }
            if (strcmp(e->access, want_access) != 0) {
                hk_test_fail(__FILE__, __LINE__,
                             "doc/hakmem.3:%d: %s documented as %s, listed as %s", e->line,
                             e->pattern, e->access, want_access);
                reported = true;
            }
        }
    }
}

static int count_cb(const char *name, int type, int writable, void *arg) {
    (void)name;
    (void)type;
    (void)writable;
    (*(size_t *)arg)++;
    return 0;
}

TEST(ctl_doc_man_page_leaf_count) {
    const char *text = load_man();
    SKIP_IF(text == NULL, "doc/hakmem.3 not found (set HAKMEM_SRCROOT)");
    /* "lists every leaf (N, plus K per arena)" */
    const char *s = strstr(text, "lists every leaf (");
    SKIP_IF(s == NULL, "the manual page states no leaf count");
    unsigned long n = 0, k = 0;
    REQUIRE_EQ_I(sscanf(s, "lists every leaf (%lu, plus %lu per arena)", &n, &k), 2,
                 "the leaf count sentence parses");
    unsigned na = 0;
    size_t len = sizeof na, count = 0;
    REQUIRE_EQ_U(hak_ctl("arenas.narenas", &na, &len, NULL, 0), 0, "arenas.narenas");
    REQUIRE_EQ_U(hak_ctl_list(NULL, count_cb, &count), 0, "hak_ctl_list");
    size_t per_arena = 0;
    REQUIRE_EQ_U(hak_ctl_list("arena.0", count_cb, &per_arena), 0, "list arena.0");
    hk_test_log("listed %zu leaves with %u arenas (%zu per arena); the manual says %lu + %lu "
                "per arena", count, na, per_arena, n, k);
    EXPECT_EQ_U(per_arena, k, "leaves per arena as documented");
    EXPECT_EQ_U(count, n + k * na, "leaf count as documented in hak_ctl_list's Listing");
}

TEST_MAIN()
