/*
 * Reports of misuse detected at run time: one line on stderr naming what,
 * the pointer, the size class and the thread, then abort when
 * abort_on_error is set.  Also the per-process key of the encoded free
 * lists.  Nothing here allocates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "core/core_internal.h"

uintptr_t hk_list_key;
_Atomic uint64_t hk_nreports;

/* The key must be set before the first page is carved, and never change:
 * the kernel's AT_RANDOM bytes, mixed with an address (ASLR). */
void hk_list_key_init(void) {
    uintptr_t k = (uintptr_t)&hk_list_key * UINT64_C(0x9E3779B97F4A7C15);
    const uint8_t *r = (const uint8_t *)getauxval(AT_RANDOM);
    if (r != NULL) {
        uintptr_t x;
        memcpy(&x, r + 8, sizeof x);
        k ^= x;
    }
    hk_list_key = k | 1;
}

static void emit(const char *what, const void *p, const hk_page *page, const char *detail) {
    char buf[384];
    unsigned cls = page != NULL ? page->cls : 0;
    if (page != NULL)
        snprintf(buf, sizeof buf, "hakmem: %s: %p (%s class %u, %u bytes) in thread %ld%s%s\n",
                 what, p, hk_class_tier(cls), cls, page->block_size, (long)gettid(),
                 detail ? ": " : "", detail ? detail : "");
    else
        snprintf(buf, sizeof buf, "hakmem: %s: %p in thread %ld%s%s\n", what, p, (long)gettid(),
                 detail ? ": " : "", detail ? detail : "");
    hk_write_stderr(buf);
    hk_fetch_add_relaxed(&hk_nreports, 1);
    hk_debug_event_report(what, p, cls);
    if (hk_opt.abort_on_error) abort();
}

void hk_report(const char *what, const void *p, const hk_page *page, const char *detail) {
    emit(what, p, page, detail);
}

/* A misuse whose operation is dropped: the line says so, or that the
 * program is aborting (abort_on_error; the crash report follows). */
void hk_report_ignored(const char *what, const void *p, const hk_page *page) {
    emit(what, p, page, hk_opt.abort_on_error ? "aborting (abort_on_error)" : "ignored");
}

/* A list head decoded from the last block popped failed its check. */
void hk_report_corrupt_head(hk_page *page, const hk_block *head) {
    char detail[112];
    snprintf(detail, sizeof detail, "a freed block's link points to %p, outside the page (list dropped)",
             (const void *)head);
    emit("corrupted free list", hk_page_start(page), page, detail);
}

void hk_report_corrupt_list(hk_page *page, const hk_block *b, const hk_block *next) {
    char detail[96];
    snprintf(detail, sizeof detail, "the link after it points to %p (list dropped)", (const void *)next);
    emit("corrupted free list", b, page, detail);
}
