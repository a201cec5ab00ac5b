/*
 * The stats page's layout, shared by its writer (src/statspage.c) and its
 * readers (bin/hakctl*.c).  Nothing else: no allocator type appears here, so
 * hakctl needs no knowledge of the library beyond this file and the public
 * header's enum hak_ctl_type and struct hak_class_stats.
 *
 * One POSIX shared-memory object per process, "/hakmem.<uid>.<pid>"
 * (/dev/shm/hakmem.<uid>.<pid>), mode 0600:
 *
 *   0           +-------------------------+
 *               | hk_sp_header            |  identity (fixed at creation),
 *               |                         |  then the refresh fields (seq...)
 *   entry_off   +-------------------------+
 *               | hk_sp_entry[nentries]   |  name, doc, type, flags, value
 *               |                         |  slot: fixed at creation
 *   names_off   +-------------------------+
 *               | names and doc strings   |  bytes, addressed by (off, len)
 *   vals_off    +-------------------------+
 *               | value slots             |  8-byte words rewritten at every
 *               |                         |  refresh, under the sequence lock
 *   cmd_off     +-------------------------+
 *               | hk_sp_cmd[ncmds]        |  command ring (hakctl set)
 *   total_size  +-------------------------+
 *
 * A value slot is a status word, (payload bytes) | (hak_ctl result << 32),
 * then the payload: one word for bool, unsigned, size_t, uint64_t and
 * int64_t leaves (zero- or sign-extended), the bytes of a string, the nine
 * words of a struct hak_class_stats, nothing for an action.
 *
 * Consistency: the writer makes seq odd, fences (release), rewrites the
 * value area and the refresh fields, then stores seq + 2 (release).  A reader
 * loads seq (acquire), copies, fences (acquire), reloads seq, and keeps the
 * copy only when both loads are equal and even.  Every shared word that
 * changes after creation is read and written as a relaxed atomic, so the
 * protocol is race-free in C11 terms.  checksum (hk_sp_hash over the value
 * area) is written under the same lock: a reader that finds it wrong holds a
 * corrupted page, not a torn copy.
 *
 * Compatibility: fields are only ever appended.  A writer stores its layout
 * version and the oldest reader version able to read it (compat); readers
 * refuse a page whose compat exceeds their version and otherwise use the
 * sizes stored here (header_size, entry_size, cmd_size) to step over what
 * they do not know.  Readers bound every length, offset and count by the
 * object's size: the page is input, not trusted.
 */
#ifndef HK_STATSPAGE_H
#define HK_STATSPAGE_H

#include <stdatomic.h>
#include <stdint.h>

#define HK_SP_MAGIC UINT64_C(0x50534d454d4b4148) /* "HAKMEMSP" */
#define HK_SP_VERSION 1
#define HK_SP_NAME_FMT "/hakmem.%u.%d"      /* shm_open name: uid, pid */
#define HK_SP_DIR "/dev/shm"
#define HK_SP_PREFIX "hakmem."              /* file names under HK_SP_DIR */
#define HK_SP_MAX_SIZE ((uint64_t)64 << 20) /* readers refuse larger objects */

/* Header flags (refresh field) */
#define HK_SP_F_BGTHREAD 1u /* a background thread keeps the page fresh */

/* Entry flags */
#define HK_SP_E_WRITABLE 1u /* hak_ctl can write it (or it is an action) */
#define HK_SP_E_SETTABLE 2u /* and the command ring accepts it */
#define HK_SP_E_COUNTER 4u  /* a monotonic counter (rates make sense) */

typedef struct hk_sp_header {
    _Atomic uint64_t magic;     /* HK_SP_MAGIC, stored last at creation (release) */
    uint32_t version;           /* layout version of the writer */
    uint32_t compat;            /* oldest reader version that can read it */
    uint32_t header_size;       /* sizeof(hk_sp_header) of the writer */
    uint32_t entry_size;        /* sizeof(hk_sp_entry) of the writer */
    uint32_t cmd_size;          /* sizeof(hk_sp_cmd) of the writer */
    uint32_t ncmds;             /* command slots */
    uint64_t total_size;        /* bytes of the object */
    int64_t pid;
    uint64_t uid;
    uint64_t proc_start_ticks;  /* /proc/<pid>/stat field 22: tells a reused pid */
    uint64_t start_ms;          /* process start, ms since the Epoch */
    uint64_t created_ms;        /* page creation, ms since the Epoch */
    char lib_version[16];       /* NUL-terminated when it fits */
    char comm[16];
    char cmdline[256];          /* arguments joined by spaces */
    uint32_t entry_off, nentries;
    uint32_t names_off, names_size;
    uint32_t vals_off, vals_size;   /* both multiples of 8 */
    uint32_t cmd_off, reserved0;
    uint64_t reserved1[4];
    /* Refresh fields: written under the sequence lock. */
    _Atomic uint64_t seq;           /* odd while the writer writes */
    _Atomic uint64_t updated_ms;    /* last refresh, ms since the Epoch */
    _Atomic uint64_t nrefresh;      /* refreshes so far (== stats_page.refreshes) */
    _Atomic uint64_t interval_ms;   /* refresh interval in force */
    _Atomic uint64_t flags;         /* HK_SP_F_* */
    _Atomic uint64_t checksum;      /* hk_sp_hash of the value area */
} hk_sp_header;

typedef struct hk_sp_entry {
    uint32_t name_off;  /* from the start of the object */
    uint16_t name_len;
    uint8_t type;       /* enum hak_ctl_type */
    uint8_t flags;      /* HK_SP_E_* */
    uint32_t doc_off;
    uint16_t doc_len;
    uint16_t reserved;
    uint32_t val_off;   /* the value slot: 8-aligned, inside the value area */
    uint32_t val_size;  /* bytes of the slot, status word included */
} hk_sp_entry;

/* Command slot states */
enum hk_sp_cmd_state {
    HK_SP_CMD_FREE,    /* a client may claim it (CAS) */
    HK_SP_CMD_CLAIMED, /* a client is writing key and value */
    HK_SP_CMD_POSTED,  /* ready for the process (release) */
    HK_SP_CMD_BUSY,    /* the process is applying it */
    HK_SP_CMD_DONE     /* result is set (release); the client frees it */
};

#define HK_SP_KEY_MAX 128
#define HK_SP_VALUE_MAX 96

typedef struct hk_sp_cmd {
    _Atomic uint32_t state;       /* enum hk_sp_cmd_state */
    _Atomic int32_t result;       /* 0, ENOENT, EPERM or EINVAL */
    _Atomic uint64_t ticket;      /* the client's nonce, echoed with the result */
    _Atomic uint64_t claimed_ms;  /* ms since the Epoch: stale claims are reclaimed */
    _Atomic uint64_t applied_in;  /* nrefresh of the refresh that applied it: its
                                     values show the effect */
    char key[HK_SP_KEY_MAX];      /* NUL-terminated */
    char value[HK_SP_VALUE_MAX];  /* NUL-terminated decimal, boolean word or string */
} hk_sp_cmd;

/* A claim or result older than this may be taken over by another client. */
#define HK_SP_CMD_STALE_MS 10000

static inline uint64_t hk_sp_hash(uint64_t h, uint64_t word) {
    h ^= word;
    h *= UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}
#define HK_SP_HASH_SEED UINT64_C(0xcbf29ce484222325)

#endif
