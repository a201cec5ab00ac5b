/*
 * Fuzz target: hakctl's stats page reader (bin/hakctl_page.c), which must
 * survive any bytes a page file can hold.  The input is written to a file
 * of its own (tmpfs when there is one) and opened, snapshotted, and every
 * entry is read and formatted in the three output styles, as `hakctl dump`
 * does; lookups by name and the header strings too.  Errors are fine;
 * crashes, sanitizer reports and hangs are not.
 *
 * An input whose first 8 bytes are zero is skipped: the reader waits
 * 200 ms for such a page's writer to store its magic, by design.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakctl_page.h"

static char path[128];

static bool write_input(const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/hakmem-fuzz-page.%d", dir, (int)getpid());
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    close(fd);
    return done == size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t magic = 0;
    if (size >= 8) memcpy(&magic, data, 8);
    if (size >= 8 && magic == 0) return 0;
    if (!write_input(data, size)) {
        unlink(path);
        return 0;
    }

    hkp_page p;
    char err[256], out[2048], buf[256];
    int rc = hkp_open_path(&p, path, false, err, sizeof err);
    unlink(path); /* the reader has its descriptor and mapping; leave no file */
    if (rc != HKP_OK) return 0;
    if (hkp_snapshot(&p, 0, err, sizeof err) == HKP_OK) {
        size_t n = p.nent < 100000 ? p.nent : 100000;
        for (size_t i = 0; i < n; i++) {
            hkp_entry e;
            hkp_value v;
            if (!hkp_entry_at(&p, i, &e)) abort(); /* i < nent must work */
            hkp_printable(e.name, e.name_len, buf, sizeof buf);
            hkp_json_string(e.doc, e.doc_len, out, sizeof out);
            (void)hkp_type_name(e.type);
            hkp_value_of(&p, &e, &v);
            hkp_format(&v, HKP_PLAIN, out, sizeof out);
            hkp_format(&v, HKP_HUMAN, out, sizeof out);
            hkp_format(&v, HKP_JSON, out, sizeof out);
        }
        uint64_t x;
        (void)hkp_get_u64(&p, "stats.allocated", &x);
        (void)hkp_get_u64(&p, "epoch", &x);
        hkp_get_str(&p, "config.mode", buf, sizeof buf);
        hkp_get_str(&p, "version", buf, 4); /* a short buffer */
    }
    hkp_command(&p, buf, sizeof buf);
    hkp_command(&p, buf, 2);
    hkp_close(&p);
    return 0;
}
