/*
 * The top of the library: the one file that names every layer.  It fills
 * the tables through which the core runs the layers above it (core/core.h,
 * "hooks"), gives the ctl layer the stats page's getters, and runs the
 * exit work.  Layers, lowest first: base, core, debug, learn, prof, ctl,
 * statspage (src/README.md).
 */
#include "statspage/statspage.h"

static void at_init(void) {
    hk_crash_install();
    hk_prof_at_init(); /* research mode profiles from the start */
}

static void fork_child(void) {
    hk_prof_fork_child();
    hk_statspage_fork_child();
}

static void feature_off(enum hk_feature f) {
    if (f == HK_FEAT_LEARNER) hk_learn_stop(); /* the knobs go back to their defaults */
}

const hk_hooks hk_upper = {
    .at_init = at_init,
    .thread_start = hk_altstack_thread_start,
    .thread_exit = hk_altstack_thread_exit,
    .fork_child = fork_child,
    .feature_off = feature_off,
    .prof_sample = hk_prof_record,
    .prof_unsample = hk_prof_forget,
};

static void statspage_tick(hk_heap *heap) { hk_statspage_tick(); }

const hk_periodic hk_periodic_work[] = {
    {HK_FEAT_COUNT, statspage_tick}, /* it tests its own feature and interval */
    {HK_FEAT_LEARNER, hk_learn_tick},
};
const unsigned hk_periodic_count = sizeof hk_periodic_work / sizeof hk_periodic_work[0];

const hk_statspage_getters hk_statspage_rows = {
    .path = hk_statspage_path,
    .interval = hk_statspage_interval,
    .set_interval = hk_statspage_set_interval,
    .refreshes = hk_statspage_refreshes,
    .commands = hk_statspage_commands,
    .bg_running = hk_statspage_bg_running,
    .refresh_now = hk_statspage_refresh_now,
};

/* prof_dump_at_exit:PATH (the launcher's --profile): the heap profile,
 * live view, in the heap_v2 format. */
static void prof_dump_at_exit(void) {
    const char *path = hk_opt.prof_dump_at_exit;
    if (path[0] == '\0') return;
    int rc = hk_prof_dump(path, HK_PROF_PPROF);
    if (rc != 0) hk_warn("prof_dump_at_exit: cannot write %s: %s", path, strerror(rc));
}

__attribute__((destructor)) static void hk_fini(void) {
    if (!hk_load_acquire(&hk_initialized)) {
        hk_statspage_fini();
        return;
    }
    if (hk_opt.stats_print) hk_stats_print_at_exit();
    prof_dump_at_exit();
    hk_statspage_fini();
}
