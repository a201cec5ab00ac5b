/*
 * Fuzz target: the HAKMEM_CONF / HAKMEM_MODE parser (src/conf.c), called
 * directly on a private hk_options (linked from lib/libhakmem.a).
 *
 * Input: MODE '\n' CONF, or just CONF when there is no newline.  After
 * parsing, every option must be in its documented range, and parsing the
 * same string again must change nothing (later keys win, so a string
 * applied twice equals the string applied once).  A violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void check(const hk_options *o) {
    if (o->mode >= HK_MODE_COUNT) abort();
    for (unsigned f = 0; f < HK_FEAT_COUNT; f++) {
        unsigned char b; /* a bool's byte, read without assuming it is 0 or 1 */
        memcpy(&b, &o->features[f], 1);
        if (b > 1) abort();
    }
    if (o->narenas > HK_MAX_ARENAS) abort();
    if (o->bigcache_max_mb > ((size_t)1 << 20)) abort();
    if (o->decay_ms < -1) abort();
    if (o->thp > 1) abort();
    if (memchr(o->stats_print_opts, '\0', sizeof o->stats_print_opts) == NULL) abort();
    if (o->stats_page_interval_ms < 1 || o->stats_page_interval_ms > 3600000) abort();
    if (o->stats_page_delay_ms > 3600000) abort();
    if (o->guard_sample > 1000000) abort();
    if (o->fail_mmap_after > ((uint64_t)1 << 40)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size copies, so an over-read is caught by ASan */
    char *mode = NULL, *conf;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t conf_off = 0;
    if (nl != NULL) {
        size_t mlen = (size_t)(nl - data);
        mode = malloc(mlen + 1);
        if (mode == NULL) return 0;
        memcpy(mode, data, mlen);
        mode[mlen] = '\0';
        conf_off = mlen + 1;
    }
    size_t clen = size - conf_off;
    conf = malloc(clen + 1);
    if (conf == NULL) {
        free(mode);
        return 0;
    }
    memcpy(conf, data + conf_off, clen);
    conf[clen] = '\0';

    hk_options once, twice;
    hk_conf_defaults(&once);
    check(&once);
    hk_conf_mode_env(&once, mode);
    check(&once);
    hk_conf_parse(&once, conf);
    check(&once);
    memcpy(&twice, &once, sizeof twice);
    hk_conf_parse(&twice, conf);
    if (memcmp(&once, &twice, sizeof once) != 0) abort();

    /* the mode names round-trip */
    for (unsigned m = 0; m < HK_MODE_COUNT; m++) {
        const char *name = hk_mode_name(m);
        if (hk_mode_parse(name, strlen(name)) != (int)m) abort();
    }
    if (mode != NULL && hk_mode_parse(mode, strlen(mode)) >= HK_MODE_COUNT) abort();
    free(mode);
    free(conf);
    return 0;
}
