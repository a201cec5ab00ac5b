/*
 * Replays fuzz inputs without libFuzzer: `make check` builds every harness
 * (test/fuzz/fuzz_NAME.c) with this main() and the ordinary compiler, and
 * runs it over its corpus (test/fuzz/corpus/NAME: seeds plus the crashers
 * found so far).  One test per input file, each in a child process so that
 * a crash counts as that input's failure; the last line is the harness's
 * usual "N passed, N failed".
 *
 *   replay_NAME                   the built-in corpus directory
 *   replay_NAME FILE|DIR...       those inputs
 * HAKMEM_FUZZ_VERBOSE=1 keeps the harness's stderr (silenced otherwise:
 * the conf parser warns on every bad key, by design).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FUZZ_CORPUS
#define FUZZ_CORPUS "corpus"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int passed, failed;

static void say(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(1, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* The whole file in a buffer of exactly its size (so a sanitizer sees any
 * read past the input). */
static uint8_t *load(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    size_t got = 0;
    while (buf != NULL && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL || got != n) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

static void run_one(const char *path) {
    char line[1200];
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(line, sizeof line, "FAIL %s: fork: %s\n", name, strerror(errno));
        say(line);
        failed++;
        return;
    }
    if (pid == 0) {
        const char *v = getenv("HAKMEM_FUZZ_VERBOSE");
        if (v == NULL || *v == '\0' || *v == '0') {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2);
        }
        alarm(60);
        size_t size = 0;
        uint8_t *data = load(path, &size);
        if (data == NULL) _exit(99);
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        snprintf(line, sizeof line, "PASS %s\n", name);
        passed++;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 99) {
        snprintf(line, sizeof line, "FAIL %s: cannot read %s\n", name, path);
        failed++;
    } else if (WIFSIGNALED(st)) {
        snprintf(line, sizeof line, "FAIL %s: killed by signal %d (replay with HAKMEM_FUZZ_VERBOSE=1 %s)\n",
                 name, WTERMSIG(st), path);
        failed++;
    } else {
        snprintf(line, sizeof line, "FAIL %s: exit status %d (a sanitizer report? replay with HAKMEM_FUZZ_VERBOSE=1)\n",
                 name, WEXITSTATUS(st));
        failed++;
    }
    say(line);
}

static int not_hidden(const struct dirent *d) { return d->d_name[0] != '.'; }

static void run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        char line[1200];
        snprintf(line, sizeof line, "FAIL %s: %s\n", path, strerror(errno));
        say(line);
        failed++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_one(path);
        return;
    }
    struct dirent **list;
    int n = scandir(path, &list, not_hidden, alphasort);
    if (n < 0) {
        char line[1200];
        snprintf(line, sizeof line, "FAIL %s: %s\n", path, strerror(errno));
        say(line);
        failed++;
        return;
    }
    for (int i = 0; i < n; i++) {
        char file[1024];
        snprintf(file, sizeof file, "%s/%s", path, list[i]->d_name);
        run_one(file);
        free(list[i]);
    }
    free(list);
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) run_path(FUZZ_CORPUS);
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    char line[64];
    snprintf(line, sizeof line, "%d passed, %d failed\n", passed, failed);
    say(line);
    return failed ? 1 : 0;
}
