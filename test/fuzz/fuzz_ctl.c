/*
 * Fuzz target: the control namespace (hak_ctl, hak_ctl_nametomib,
 * hak_ctl_bymib, hak_ctl_list, hak_stats_print) with arbitrary names,
 * lengths and values.
 *
 * Input: FLAGS OLDLEN NEWLEN NAME [\0 VALUE...]
 *   FLAGS bit 0 read, 1 write, 2 through a MIB, 3 list with NAME as the
 *   prefix, 4 print statistics with NAME as the options, 5 pass oldp
 *   without oldlenp (must be refused, not followed).
 *   OLDLEN/NEWLEN pick a length (the exact sizes of the leaf types, 0,
 *   odd ones, or the byte itself).
 * A write of pointer size passes a pointer to a NUL-terminated copy of
 * VALUE (what a string leaf expects), other writes VALUE's bytes.
 * Return codes must be 0 or one of the documented errors; a string read
 * must be a readable string; listed names must carry the prefix.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem/hakmem.h>

static size_t pick_len(uint8_t b) {
    static const size_t lens[] = {0, 1, 4, 8, sizeof(struct hak_class_stats), 2, 3, 16, 7, 9, 64};
    if (b < 0xC0) return lens[b % (sizeof lens / sizeof lens[0])];
    return (size_t)(b - 0xC0); /* 0..63 */
}

static void check_rc(int rc) {
    if (rc != 0 && rc != ENOENT && rc != EINVAL && rc != EPERM && rc != EAGAIN && rc != ENOMEM &&
        rc != EFAULT)
        abort();
}

struct list_state {
    const char *prefix;
    size_t plen;
    unsigned n;
};

static int list_cb(const char *name, int type, int writable, void *arg) {
    struct list_state *st = arg;
    if (name == NULL || name[0] == '\0') abort();
    if (type < HAK_CTL_BOOL || type > HAK_CTL_VOID) abort();
    if (writable != 0 && writable != 1) abort();
    if (st->plen > 0 && strncmp(name, st->prefix, st->plen) != 0) abort();
    st->n++;
    return st->n > 4096; /* stop a runaway listing */
}

/* The type of the leaf called name, or 0. */
struct type_state {
    const char *name;
    int type;
};
static int type_cb(const char *name, int type, int writable, void *arg) {
    struct type_state *st = arg;
    (void)writable;
    if (strcmp(name, st->name) == 0) st->type = type;
    return 0;
}

static void discard(void *opaque, const char *text) {
    size_t *n = opaque;
    *n += strlen(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    uint8_t flags = data[0], raw_oldlen = data[1];
    size_t oldlen_pick = pick_len(data[1]), newlen = pick_len(data[2]);
    data += 3;
    size -= 3;
    const uint8_t *nul = memchr(data, '\0', size);
    size_t nlen = nul ? (size_t)(nul - data) : size;
    if (nlen > 256) nlen = 256;
    char *name = malloc(nlen + 1);
    if (name == NULL) return 0;
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    const uint8_t *val = nul ? nul + 1 : data + size;
    size_t vlen = (size_t)(data + size - val);

    /* the value: raw bytes, or (pointer size) a pointer to a string */
    char *str = malloc(vlen + 1);
    unsigned char newbuf[80];
    if (str == NULL) {
        free(name);
        return 0;
    }
    memcpy(str, val, vlen);
    str[vlen] = '\0';
    memset(newbuf, 0, sizeof newbuf);
    if (newlen == sizeof(char *)) {
        const char *sp = str;
        memcpy(newbuf, &sp, sizeof sp);
    } else {
        memcpy(newbuf, val, vlen < sizeof newbuf ? vlen : sizeof newbuf);
    }
    if (newlen > sizeof newbuf) newlen = sizeof newbuf;

    union {
        unsigned char bytes[80];
        const char *s;
        struct hak_class_stats cs;
    } old;
    size_t oldlen = oldlen_pick > sizeof old ? sizeof old : oldlen_pick;
    struct type_state ts = {name, 0};

    if (flags & 1) {
        size_t len = oldlen;
        int rc = hak_ctl(name, &old, &len, NULL, 0);
        check_rc(rc);
        if (rc == 0) {
            hak_ctl_list(name, type_cb, &ts);
            if (ts.type == HAK_CTL_STRING && old.s != NULL) (void)strlen(old.s);
        }
    }
    if (flags & 2) {
        size_t len = oldlen;
        int rc = hak_ctl(name, (flags & 0x40) ? &old : NULL, (flags & 0x40) ? &len : NULL,
                         (flags & 0x80) ? NULL : newbuf, newlen);
        check_rc(rc);
    }
    if (flags & 4) {
        size_t mib[16], miblen = (size_t)(raw_oldlen % 17);
        int rc = hak_ctl_nametomib(name, mib, &miblen);
        check_rc(rc);
        if (rc == 0) {
            if (miblen > 16) abort();
            size_t len = oldlen;
            check_rc(hak_ctl_bymib(mib, miblen, &old, &len, NULL, 0));
            /* a MIB made of the input's bytes */
            for (size_t i = 0; i < miblen && i < vlen; i++) mib[i] = val[i];
            len = oldlen;
            check_rc(hak_ctl_bymib(mib, miblen, &old, &len, NULL, 0));
        }
    }
    if (flags & 8) {
        struct list_state st = {name, strlen(name), 0};
        check_rc(hak_ctl_list(name, list_cb, &st));
    }
    if (flags & 16) {
        size_t n = 0;
        char opts[8];
        snprintf(opts, sizeof opts, "%s", name);
        hak_stats_print(discard, &n, opts); /* every part may be omitted: n may be 0 */
    }
    if (flags & 32) {
        int rc = hak_ctl(name, &old, NULL, NULL, 0);
        if (rc == 0) abort(); /* oldp without oldlenp cannot succeed */
        check_rc(rc);
    }
    free(str);
    free(name);
    return 0;
}
