/* A workload for test/real/profile.sh, run under LD_PRELOAD (links no
 * hakmem; -rdynamic so that the profiler names its functions): site A
 * keeps 64 MiB live in 1 KiB blocks, site B 8 MiB in 64 KiB blocks, both
 * replaced a slice at a time, and site C churns, until -d SECONDS pass. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NA 65536
#define NB 128
static void *a[NA], *b[NB];

__attribute__((noinline)) void prof_child_site_a(size_t i) {
    free(a[i]);
    a[i] = malloc(1024);
    memset(a[i], 1, 16);
}
__attribute__((noinline)) void prof_child_site_b(size_t i) {
    free(b[i]);
    b[i] = malloc(64 << 10);
}
__attribute__((noinline)) void prof_child_site_c(void) {
    for (int i = 0; i < 256; i++) {
        void *volatile p = malloc(4096);
        free(p);
    }
}

int main(int argc, char **argv) {
    int secs = argc > 2 && !strcmp(argv[1], "-d") ? atoi(argv[2]) : 30;
    time_t end = time(NULL) + secs;
    size_t ia = 0, ib = 0;
    while (time(NULL) < end) {
        for (int k = 0; k < 4096; k++) prof_child_site_a(ia++ % NA);
        for (int k = 0; k < 8; k++) prof_child_site_b(ib++ % NB);
        prof_child_site_c();
        usleep(2000);
    }
    return 0;
}
