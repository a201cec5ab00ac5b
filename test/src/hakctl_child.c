/* hakctl_child: the workload test/real/hakctl.sh attaches to with hakctl.
 *
 * Run under LD_PRELOAD=libhakmem.so (it links nothing of hakmem and finds
 * hak_ctl with dlsym).  It allocates and frees in batches across the tiny
 * and mid classes, so its threads take malloc's slow path (where the stats
 * page is refreshed), and reports on stdout, line by line:
 *   ready PID                 at start
 *   version STRING            hak_ctl("version"), at start
 *   mode NAME                 config.mode, at start and whenever it changes
 *   frozen KEY=VALUE...       after SIGUSR1: it stops allocating, frees what
 *                             it holds, and prints the per-class counters
 *                             it reads through hak_ctl (they no longer move)
 * SIGTERM or the end of -d SECONDS: a normal exit (the page is unlinked).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*ctl_fn)(const char *, void *, size_t *, void *, size_t);

static volatile sig_atomic_t freeze_req, stop_req;
static void on_usr1(int sig) { freeze_req = 1; }
static void on_term(int sig) { stop_req = 1; }

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report_mode(ctl_fn ctl, char *last, size_t cap) {
    const char *mode = NULL;
    size_t len = sizeof mode;
    if (ctl("config.mode", &mode, &len, NULL, 0) != 0 || mode == NULL) return;
    if (strcmp(mode, last) != 0) {
        snprintf(last, cap, "%s", mode);
        printf("mode %s\n", mode);
    }
}

/* The counters the test compares with the page. */
static void report_frozen(ctl_fn ctl) {
    static const char *const fields[] = {"nmalloc", "ndalloc", "curblocks"};
    char line[4096];
    size_t o = (size_t)snprintf(line, sizeof line, "frozen");
    for (int c = 0; c < 8; c++)
        for (int f = 0; f < 3; f++) {
            char key[64];
            uint64_t v = 0;
            size_t len = sizeof v;
            snprintf(key, sizeof key, "tiny.class.%d.stats.%s", c, fields[f]);
            if (ctl(key, &v, &len, NULL, 0) == 0 && o < sizeof line)
                o += (size_t)snprintf(line + o, sizeof line - o, " %s=%llu", key, (unsigned long long)v);
        }
    printf("%s\n", line);
}

int main(int argc, char **argv) {
    double duration = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-d") && i + 1 < argc) duration = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: hakctl_child [-d SECONDS]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ctl_fn ctl = (ctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "hak_ctl");
    if (ctl == NULL) {
        fprintf(stderr, "hakctl_child: hak_ctl not found (run it under LD_PRELOAD=libhakmem.so)\n");
        return 1;
    }
    signal(SIGUSR1, on_usr1);
    signal(SIGTERM, on_term);
    char mode[32] = "";
    printf("ready %d\n", (int)getpid());
    const char *version = NULL;
    size_t vlen = sizeof version;
    if (ctl("version", &version, &vlen, NULL, 0) == 0 && version != NULL) printf("version %s\n", version);
    report_mode(ctl, mode, sizeof mode);

    enum { BATCH = 4000 };
    static void *held[BATCH];
    double end = now_sec() + duration, next_mode = 0;
    unsigned long round = 0;
    while (!stop_req && now_sec() < end) {
        if (freeze_req) {
            if (freeze_req == 1) {
                freeze_req = 2;
                report_frozen(ctl);
            }
            usleep(10000);
            report_mode(ctl, mode, sizeof mode);
            continue;
        }
        for (int i = 0; i < BATCH; i++) held[i] = malloc(8 + (size_t)((i * 37 + round) % 120) * 8);
        for (int i = 0; i < BATCH; i += 97) {
            void *p = malloc(2048 + (size_t)i);
            free(p);
        }
        for (int i = 0; i < BATCH; i++) free(held[i]);
        round++;
        if (now_sec() >= next_mode) {
            report_mode(ctl, mode, sizeof mode);
            next_mode = now_sec() + 0.01;
        }
        usleep(1000);
    }
    return 0;
}
