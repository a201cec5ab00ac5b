/*
 * Reading stats pages (src/hk_statspage.h gives the layout) and posting
 * commands to them: hakctl's only contact with a process, also linked into
 * the stats page tests.  Nothing here trusts the page: every offset, length
 * and count is checked against the object's size, the mapping is read under
 * a SIGBUS guard (a truncated object cannot crash us), and the parts that do
 * not change are copied once, at open, and validated there.
 */
#ifndef HAKCTL_PAGE_H
#define HAKCTL_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "statspage/hk_statspage.h"

enum hkp_err {
    HKP_OK,
    HKP_ENOPROC,  /* no such process */
    HKP_ENOPAGE,  /* the process has no page */
    HKP_EACCES,   /* the page is another user's */
    HKP_ECORRUPT, /* the page fails a check */
    HKP_EBUSY,    /* the sequence lock stayed odd (writer stuck or dead) */
    HKP_ETIMEOUT, /* a command got no answer */
    HKP_EIO       /* any other system error */
};

typedef struct hkp_page {
    char path[128];
    int pid;
    unsigned uid;
    int fd;
    uint8_t *map;       /* the shared mapping */
    size_t size;
    bool writable;
    uint8_t *img;       /* private copy taken at open: header, entries, names */
    hk_sp_header hdr;   /* the header as this reader knows it (copied) */
    size_t nent;
    uint64_t *vals;     /* the value area of the latest snapshot */
    /* refresh fields of the latest snapshot */
    uint64_t seq, updated_ms, nrefresh, interval_ms, flags;
    uint64_t retries;   /* snapshot attempts that had to retry, so far */
} hkp_page;

typedef struct hkp_entry {
    const char *name, *doc; /* not NUL-terminated: use the lengths */
    size_t name_len, doc_len;
    int type;               /* enum hak_ctl_type; unknown types are shown raw */
    unsigned flags;         /* HK_SP_E_* */
    size_t slot;            /* of the value slot, in 8-byte words into vals */
    size_t slot_words;
} hkp_entry;

#define HKP_MAX_WORDS 32

typedef struct hkp_value {
    int type;
    int rc;                 /* hak_ctl's result when the process read it */
    uint64_t u;             /* scalar payload (int64_t leaves: two's complement) */
    const char *s;          /* string payload, len bytes (in the snapshot) */
    size_t len;
    uint64_t words[HKP_MAX_WORDS]; /* struct and unknown payloads */
    size_t nwords;
} hkp_value;

/* Open the page of pid (own uid first, then any uid's), or of a path. */
int hkp_open(hkp_page *p, int pid, bool writable, char *err, size_t cap);
int hkp_open_path(hkp_page *p, const char *path, bool writable, char *err, size_t cap);
void hkp_close(hkp_page *p);
/* A consistent copy of the values (retries while the writer writes). */
int hkp_snapshot(hkp_page *p, unsigned timeout_ms, char *err, size_t cap);

bool hkp_entry_at(const hkp_page *p, size_t i, hkp_entry *e);
bool hkp_find(const hkp_page *p, const char *name, hkp_entry *e);
bool hkp_name_is(const hkp_entry *e, const char *name);
void hkp_value_of(const hkp_page *p, const hkp_entry *e, hkp_value *v);
/* A leaf's value as an integer (false: missing, failed or not scalar). */
bool hkp_get_u64(const hkp_page *p, const char *name, uint64_t *out);
/* A string leaf's value, NUL-terminated into buf ("" when missing). */
const char *hkp_get_str(const hkp_page *p, const char *name, char *buf, size_t cap);
/* Header strings, NUL-terminated into buf. */
const char *hkp_command(const hkp_page *p, char *buf, size_t cap);

/* Posts key = value through the command ring and waits for the result;
 * *applied_in (may be NULL) gets the refresh whose values show its effect. */
int hkp_post(hkp_page *p, const char *key, const char *value, unsigned timeout_ms,
             int *result, uint64_t *applied_in, char *err, size_t cap);

/* Every page file under /dev/shm of uid (all uids: uid < 0); cb returns
 * non-zero to stop. */
void hkp_list(long uid, int (*cb)(const char *path, unsigned uid, int pid, void *arg),
              void *arg);
/* Is this page left by a process that is gone (or that reused the pid, or
 * exec'd)?  why gets the reason. */
bool hkp_is_stale(const char *path, int pid, char *why, size_t cap);

enum hkp_style { HKP_PLAIN, HKP_HUMAN, HKP_JSON };
void hkp_format(const hkp_value *v, enum hkp_style style, char *out, size_t cap);
void hkp_format_bytes(uint64_t bytes, char *out, size_t cap); /* 1.5 MiB */
void hkp_json_string(const char *s, size_t len, char *out, size_t cap);
void hkp_printable(const char *s, size_t len, char *out, size_t cap); /* '?' for control bytes */
const char *hkp_type_name(int type);
extern const char *const hkp_class_fields[];
extern const size_t hkp_nclass_fields;
extern const bool hkp_class_field_grows[]; /* counters, not gauges */

uint64_t hkp_now_ms(void); /* ms since the Epoch */

#endif
