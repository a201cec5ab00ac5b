/*
 * The control namespace: one table of rows, one row per leaf, mallctl
 * semantics (see hakmem(3)).  A name component "<tier>" matches tiny, mid
 * or large and "<i>" a decimal index bounded by the row's limit.  Handlers are plain functions: get fills a
 * hk_ctl_value, set consumes one, act performs an action leaf.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ctl/ctl.h"

static const char *tier_names[3] = {"tiny", "mid", "large"};

size_t hk_ctl_type_size(int type) {
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

/* Splits off the next dot-separated component of *s into comp/len. */
static bool next_comp(const char **s, const char **comp, size_t *len) {
    if (**s == '\0') return false;
    *comp = *s;
    const char *dot = strchr(*s, '.');
    *len = dot ? (size_t)(dot - *s) : strlen(*s);
    *s = dot ? dot + 1 : *s + *len;
    return true;
}

static bool parse_index(const char *c, size_t len, size_t *out) {
    if (len == 0 || len > 9) return false;
    size_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (c[i] < '0' || c[i] > '9') return false;
        x = x * 10 + (size_t)(c[i] - '0');
    }
    *out = x;
    return true;
}

/* Matches name against a row's pattern; fills the wildcard values. */
static int match_row(const hk_ctl_row *row, const char *name, size_t *vals, size_t *nvals) {
    const char *p = row->name, *n = name, *pc, *nc;
    size_t pl, nl;
    *nvals = 0;
    for (;;) {
        bool hp = next_comp(&p, &pc, &pl), hn = next_comp(&n, &nc, &nl);
        if (!hp || !hn) return (hp == hn && *p == '\0' && *n == '\0') ? 0 : ENOENT;
        if (pl == 6 && strncmp(pc, "<tier>", 6) == 0) {
            size_t t = 0;
            while (t < 3 && !(strlen(tier_names[t]) == nl && strncmp(tier_names[t], nc, nl) == 0)) t++;
            if (t == 3) return ENOENT;
            vals[(*nvals)++] = t;
        } else if (pl == 3 && strncmp(pc, "<i>", 3) == 0) {
            size_t v;
            if (!parse_index(nc, nl, &v)) return ENOENT;
            if (v >= row->limit(vals, *nvals)) return EINVAL;
            vals[(*nvals)++] = v;
        } else if (pl != nl || strncmp(pc, nc, nl) != 0) {
            return ENOENT;
        }
    }
}

/* Finds the row for name; 0, ENOENT (no such name) or EINVAL (index out
 * of range). */
static bool well_formed(const char *name) {
    size_t n = strlen(name);
    return n > 0 && n < HK_CTL_NAME_MAX && name[0] != '.' && name[n - 1] != '.' &&
           strstr(name, "..") == NULL;
}

static int lookup(const char *name, size_t *row_out, size_t *vals, size_t *nvals) {
    if (name == NULL || !well_formed(name)) return ENOENT;
    int best = ENOENT;
    for (size_t r = 0; r < hk_ctl_nrows; r++) {
        int rc = match_row(&hk_ctl_rows[r], name, vals, nvals);
        if (rc == 0) {
            *row_out = r;
            return 0;
        }
        if (rc == EINVAL) best = EINVAL;
    }
    return best;
}

/* The row of a concrete name and its wildcard values: the stats page calls
 * row->get itself, once per leaf and refresh, without the name matching. */
int hk_ctl_resolve(const char *name, const hk_ctl_row **row, size_t vals[HK_CTL_MAXVALS]) {
    size_t r, nvals;
    int rc = lookup(name, &r, vals, &nvals);
    if (rc == 0) *row = &hk_ctl_rows[r];
    return rc;
}

static int do_op(const hk_ctl_row *row, const size_t *vals, void *oldp, size_t *oldlenp,
                 void *newp, size_t newlen) {
    if (row->type == HAK_CTL_VOID) {
        if (oldp != NULL || oldlenp != NULL || newp != NULL || newlen != 0) return EPERM;
        return row->act(row, vals);
    }
    size_t sz = hk_ctl_type_size(row->type);
    if (oldp != NULL || oldlenp != NULL) {
        if (row->get == NULL) return EPERM;
        if (oldp == NULL || oldlenp == NULL || *oldlenp != sz) return EINVAL;
    }
    if (newp != NULL || newlen != 0) {
        if (row->set == NULL) return EPERM;
        if (newp == NULL || newlen != sz) return EINVAL;
    }
    if (oldp != NULL) {
        hk_ctl_value v;
        memset(&v, 0, sizeof v);
        int rc = row->get(row, vals, &v);
        if (rc != 0) return rc;
        memcpy(oldp, &v, sz);
    }
    if (newp != NULL) {
        hk_ctl_value v;
        memset(&v, 0, sizeof v);
        memcpy(&v, newp, sz);
        return row->set(row, vals, &v);
    }
    return 0;
}

HAK_EXPORT int hak_ctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) {
    hk_ensure_init();
    size_t r, vals[HK_CTL_MAXVALS], nvals;
    int rc = lookup(name, &r, vals, &nvals);
    if (rc != 0) return rc;
    return do_op(&hk_ctl_rows[r], vals, oldp, oldlenp, newp, newlen);
}

/* MIBs have one entry per name component, as in mallctl: a wildcard
 * component holds its value (patch it to iterate, e.g. mib[1] of
 * "arena.0.purge"); a literal component holds the row, tagged. */
#define HK_MIB_ROW_TAG ((size_t)1 << 30)

static size_t row_ncomps(const hk_ctl_row *row) {
    size_t n = 1;
    for (const char *s = row->name; *s; s++) n += *s == '.';
    return n;
}

static bool comp_is_wild(const hk_ctl_row *row, size_t k, bool *is_tier) {
    const char *s = row->name;
    for (size_t i = 0; i < k; i++) s = strchr(s, '.') + 1;
    *is_tier = strncmp(s, "<tier>", 6) == 0;
    return *s == '<';
}

HAK_EXPORT int hak_ctl_nametomib(const char *name, size_t *mibp, size_t *miblenp) {
    hk_ensure_init();
    if (mibp == NULL || miblenp == NULL) return EINVAL;
    size_t r, vals[HK_CTL_MAXVALS], nvals;
    int rc = lookup(name, &r, vals, &nvals);
    if (rc != 0) return rc;
    const hk_ctl_row *row = &hk_ctl_rows[r];
    size_t n = row_ncomps(row), v = 0;
    if (*miblenp < n) return EINVAL;
    for (size_t k = 0; k < n; k++) {
        bool is_tier;
        mibp[k] = comp_is_wild(row, k, &is_tier) ? vals[v++] : (HK_MIB_ROW_TAG | r);
    }
    *miblenp = n;
    return 0;
}

HAK_EXPORT int hak_ctl_bymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                             void *newp, size_t newlen) {
    hk_ensure_init();
    if (mib == NULL || miblen == 0) return ENOENT;
    size_t r = SIZE_MAX;
    for (size_t k = 0; k < miblen && r == SIZE_MAX; k++)
        if (mib[k] & HK_MIB_ROW_TAG) r = mib[k] & ~HK_MIB_ROW_TAG;
    if (r >= hk_ctl_nrows) return ENOENT;
    const hk_ctl_row *row = &hk_ctl_rows[r];
    if (miblen != row_ncomps(row)) return ENOENT;
    size_t vals[HK_CTL_MAXVALS], nvals = 0;
    for (size_t k = 0; k < miblen; k++) {
        bool is_tier;
        if (!comp_is_wild(row, k, &is_tier)) {
            if (mib[k] != (HK_MIB_ROW_TAG | r)) return ENOENT;
            continue;
        }
        size_t lim = is_tier ? 3 : row->limit(vals, nvals);
        if (mib[k] >= lim) return EINVAL;
        vals[nvals++] = mib[k];
    }
    return do_op(row, vals, oldp, oldlenp, newp, newlen);
}

/* Expands a row's wildcards into concrete names, calling cb for those under
 * prefix.  Stops early when cb returns non-zero. */
static int expand(const hk_ctl_row *row, const char *pat, char *buf, size_t len,
                  size_t *vals, size_t nvals, const char *prefix,
                  int (*cb)(const char *, int, int, void *), void *arg) {
    const char *w = strchr(pat, '<');
    if (w == NULL) {
        hk_fmt(buf + len, HK_CTL_NAME_MAX - len, "%s", pat);
        size_t pl = strlen(prefix);
        if (strncmp(buf, prefix, pl) != 0 || (pl && buf[pl] != '\0' && buf[pl] != '.'))
            return 0;
        return cb(buf, row->type, row->set != NULL || row->type == HAK_CTL_VOID, arg);
    }
    size_t lit = (size_t)(w - pat);
    if (len + lit >= HK_CTL_NAME_MAX) return 0;
    memcpy(buf + len, pat, lit);
    bool is_tier = strncmp(w, "<tier>", 6) == 0;
    const char *rest = w + (is_tier ? 6 : 3);
    size_t lim = is_tier ? 3 : row->limit(vals, nvals);
    for (size_t v = 0; v < lim; v++) {
        vals[nvals] = v;
        int n = is_tier ? snprintf(buf + len + lit, HK_CTL_NAME_MAX - len - lit, "%s", tier_names[v])
                        : snprintf(buf + len + lit, HK_CTL_NAME_MAX - len - lit, "%zu", v);
        int rc = expand(row, rest, buf, len + lit + (size_t)n, vals, nvals + 1, prefix, cb, arg);
        if (rc != 0) return rc;
    }
    return 0;
}

HAK_EXPORT int hak_ctl_list(const char *prefix, int (*cb)(const char *, int, int, void *),
                            void *arg) {
    hk_ensure_init();
    if (cb == NULL) return EINVAL;
    if (prefix == NULL) prefix = "";
    char buf[HK_CTL_NAME_MAX];
    size_t vals[HK_CTL_MAXVALS];
    for (size_t r = 0; r < hk_ctl_nrows; r++) {
        int rc = expand(&hk_ctl_rows[r], hk_ctl_rows[r].name, buf, 0, vals, 0, prefix, cb, arg);
        if (rc != 0) return 0;
    }
    return 0;
}
