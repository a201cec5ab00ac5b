/*
 * The ctl layer offers the control namespace: hak_ctl and its MIB and
 * listing calls (ctl.c), the table of rows (ctl_tree.c) and the types its
 * rows use.  Rows read the core, the debug layer and the learner directly;
 * the stats page sits above this layer, so its rows reach it through
 * hk_statspage_rows, which src/hakmem.c fills in.
 */
#ifndef HK_CTL_H
#define HK_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hakmem/hakmem.h>

#include "debug/debug.h"
#include "learn/learn.h"
#include "prof/prof.h"

#define HK_CTL_MAXVALS 2
#define HK_CTL_NAME_MAX 128

typedef union hk_ctl_value {
    bool b;
    unsigned u;
    size_t z;
    uint64_t u64;
    int64_t i64;
    const char *s;
    struct hak_class_stats cs;
} hk_ctl_value;

typedef struct hk_ctl_row hk_ctl_row;
struct hk_ctl_row {
    const char *name;  /* dotted, with <tier> and <i> wildcards */
    int type;          /* enum hak_ctl_type */
    /* vals: the values of the name's wildcards, in order */
    int (*get)(const hk_ctl_row *row, const size_t *vals, hk_ctl_value *out); /* NULL: write-only */
    int (*set)(const hk_ctl_row *row, const size_t *vals, const hk_ctl_value *in); /* NULL: read-only */
    int (*act)(const hk_ctl_row *row, const size_t *vals); /* HAK_CTL_VOID leaves */
    size_t (*limit)(const size_t *vals, size_t pos);       /* bound of an <i> */
    const char *doc;
    uintptr_t arg;     /* handler's parameter (a feature, a field offset) */
};

extern const hk_ctl_row hk_ctl_rows[];
extern const size_t hk_ctl_nrows;
size_t hk_ctl_type_size(int type);
/* Between these, statistics leaves read one merged snapshot (cheap bulk
 * reads of every leaf); calls on one thread, not nested. */
void hk_ctl_bulk_begin(void);
void hk_ctl_bulk_end(void);
/* The row and wildcard values of a concrete name (0, ENOENT or EINVAL). */
int hk_ctl_resolve(const char *name, const hk_ctl_row **row, size_t vals[HK_CTL_MAXVALS]);

/* What the stats_page.* rows read and do (the stats page layer's getters,
 * wired by src/hakmem.c). */
typedef struct hk_statspage_getters {
    const char *(*path)(void);
    unsigned (*interval)(void);
    int (*set_interval)(unsigned ms);
    uint64_t (*refreshes)(void);
    uint64_t (*commands)(void);
    bool (*bg_running)(void);
    int (*refresh_now)(void);
} hk_statspage_getters;
extern const hk_statspage_getters hk_statspage_rows;

#endif
