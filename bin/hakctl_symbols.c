/*
 * Symbolizing a heap profile's return addresses (hakctl_symbols.h).
 *
 *   address --(maps line: start, file offset)--> offset in the file
 *           --(PT_LOAD segment holding it)-----> virtual address in the ELF
 *           --(.symtab, else .dynsym)----------> function [lo, lo + size)
 *
 * A file is loaded at the first address that falls in it.  Only 64-bit ELF
 * files of this machine's byte order are read; others get module+offset.
 */
#include "hakctl_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGMENTS 16
#define MAX_TABLE_BYTES ((uint64_t)256 << 20) /* a symbol or string table */

typedef struct elf_sym {
    uint64_t lo, hi;
    const char *name; /* in one of the file's string tables */
} elf_sym;

typedef struct elf_file {
    char *path;
    const char *base_name;
    uint64_t base;          /* load address: lowest start - offset of its mappings */
    bool loaded;            /* tried */
    size_t nseg;
    Elf64_Phdr seg[MAX_SEGMENTS];
    elf_sym *syms;          /* sorted by lo */
    size_t nsyms;
    char *strtab[2];        /* .symtab's and .dynsym's names */
} elf_file;

typedef struct map_area {
    uint64_t start, end, offset;
    size_t file;
} map_area;

struct cli_symbols {
    map_area *areas;
    size_t nareas, capareas;
    elf_file *files;
    size_t nfiles, capfiles;
};

cli_symbols *cli_symbols_new(void) { return calloc(1, sizeof(cli_symbols)); }

/* ---- the maps section ---- */

static bool grow(void **arr, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return true;
    size_t c = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, c * size);
    if (p == NULL) return false;
    *arr = p;
    *cap = c;
    return true;
}

static long file_index(cli_symbols *s, const char *path, uint64_t base) {
    for (size_t i = 0; i < s->nfiles; i++)
        if (!strcmp(s->files[i].path, path)) {
            if (base < s->files[i].base) s->files[i].base = base;
            return (long)i;
        }
    if (!grow((void **)&s->files, &s->capfiles, s->nfiles, sizeof *s->files)) return -1;
    elf_file *f = &s->files[s->nfiles];
    memset(f, 0, sizeof *f);
    if ((f->path = strdup(path)) == NULL) return -1;
    const char *slash = strrchr(f->path, '/');
    f->base_name = slash ? slash + 1 : f->path;
    f->base = base;
    return (long)s->nfiles++;
}

void cli_symbols_add_map(cli_symbols *s, const char *line) {
    uint64_t start, end, offset;
    char perms[8];
    int at = 0;
    if (s == NULL || sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n", &start, &end, perms,
                            &offset, &at) != 4 || at == 0)
        return;
    const char *path = line + at;
    size_t len = strcspn(path, "\r\n");
    char buf[4096];
    if (path[0] != '/' || len >= sizeof buf || strchr(perms, 'x') == NULL || end <= start || start < offset)
        return;
    memcpy(buf, path, len);
    buf[len] = '\0';
    long f = file_index(s, buf, start - offset);
    if (f < 0 || !grow((void **)&s->areas, &s->capareas, s->nareas, sizeof *s->areas)) return;
    s->areas[s->nareas++] = (map_area){start, end, offset, (size_t)f};
}

/* ---- reading an ELF file ---- */

static bool read_at(int fd, uint64_t size, uint64_t off, void *buf, uint64_t len) {
    if (off > size || len > size - off) return false;
    for (uint64_t got = 0; got < len;) {
        ssize_t n = pread(fd, (char *)buf + got, (size_t)(len - got), (off_t)(off + got));
        if (n <= 0) return false;
        got += (uint64_t)n;
    }
    return true;
}

static void *read_alloc(int fd, uint64_t size, uint64_t off, uint64_t len) {
    if (len == 0 || len > MAX_TABLE_BYTES) return NULL;
    char *p = malloc((size_t)len + 1);
    if (p != NULL && !read_at(fd, size, off, p, len)) {
        free(p);
        return NULL;
    }
    if (p != NULL) p[len] = '\0';
    return p;
}

static bool header_ok(const Elf64_Ehdr *h) {
    const int host = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
    return memcmp(h->e_ident, ELFMAG, SELFMAG) == 0 && h->e_ident[EI_CLASS] == ELFCLASS64 &&
           h->e_ident[EI_DATA] == host;
}

static void read_segments(elf_file *f, int fd, uint64_t size, const Elf64_Ehdr *h) {
    if (h->e_phentsize != sizeof(Elf64_Phdr)) return;
    for (size_t i = 0; i < h->e_phnum && f->nseg < MAX_SEGMENTS; i++) {
        Elf64_Phdr ph;
        if (!read_at(fd, size, h->e_phoff + i * sizeof ph, &ph, sizeof ph)) return;
        if (ph.p_type == PT_LOAD) f->seg[f->nseg++] = ph;
    }
}

/* The functions of one symbol table section (sh), names from its linked
 * string table, appended to f->syms. */
static void read_table(elf_file *f, int fd, uint64_t size, const Elf64_Ehdr *h, const Elf64_Shdr *sh, int slot) {
    Elf64_Shdr str;
    if (sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_link >= h->e_shnum ||
        !read_at(fd, size, h->e_shoff + (uint64_t)sh->sh_link * sizeof str, &str, sizeof str))
        return;
    Elf64_Sym *tab = read_alloc(fd, size, sh->sh_offset, sh->sh_size);
    char *names = read_alloc(fd, size, str.sh_offset, str.sh_size);
    size_t n = sh->sh_size / sizeof *tab;
    elf_sym *syms = tab && names && n > 0 ? realloc(f->syms, (f->nsyms + n) * sizeof *syms) : NULL;
    if (syms == NULL) {
        free(tab);
        free(names);
        return;
    }
    f->syms = syms;
    f->strtab[slot] = names;
    for (size_t i = 0; i < n; i++) {
        int type = ELF64_ST_TYPE(tab[i].st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || tab[i].st_shndx == SHN_UNDEF || tab[i].st_value == 0 ||
            tab[i].st_name == 0 || tab[i].st_name >= str.sh_size)
            continue;
        uint64_t sz = tab[i].st_size ? tab[i].st_size : 1;
        syms[f->nsyms++] = (elf_sym){tab[i].st_value, tab[i].st_value + sz, names + tab[i].st_name};
    }
    free(tab);
}

static int by_lo(const void *a, const void *b) {
    uint64_t x = ((const elf_sym *)a)->lo, y = ((const elf_sym *)b)->lo;
    return x < y ? -1 : x > y;
}

static void load(elf_file *f) {
    f->loaded = true;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    Elf64_Ehdr h;
    if (fd < 0) return;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read_at(fd, (uint64_t)st.st_size, 0, &h, sizeof h) &&
        header_ok(&h)) {
        uint64_t size = (uint64_t)st.st_size;
        read_segments(f, fd, size, &h);
        Elf64_Shdr sh[2];
        bool found[2] = {false, false};
        for (size_t i = 0; h.e_shentsize == sizeof(Elf64_Shdr) && i < h.e_shnum; i++) {
            Elf64_Shdr s;
            if (!read_at(fd, size, h.e_shoff + i * sizeof s, &s, sizeof s)) break;
            int slot = s.sh_type == SHT_SYMTAB ? 0 : s.sh_type == SHT_DYNSYM ? 1 : -1;
            if (slot < 0 || found[slot]) continue;
            sh[slot] = s;
            found[slot] = true;
        }
        /* .symtab holds every function when present; .dynsym the exported ones. */
        if (found[0]) read_table(f, fd, size, &h, &sh[0], 0);
        if (f->nsyms == 0 && found[1]) read_table(f, fd, size, &h, &sh[1], 1);
        if (f->syms != NULL) qsort(f->syms, f->nsyms, sizeof *f->syms, by_lo);
    }
    close(fd);
}

/* ---- lookups ---- */

static const char *function_at(const elf_file *f, uint64_t vaddr) {
    size_t lo = 0, hi = f->nsyms;
    while (lo < hi) { /* the first symbol starting above vaddr */
        size_t mid = lo + (hi - lo) / 2;
        if (f->syms[mid].lo <= vaddr) lo = mid + 1;
        else hi = mid;
    }
    /* Among those starting at or below, the nearest one that spans it. */
    for (size_t i = lo; i-- > 0 && lo - i <= 8;)
        if (vaddr < f->syms[i].hi) return f->syms[i].name;
    return NULL;
}

static bool file_vaddr(const elf_file *f, uint64_t file_off, uint64_t *vaddr) {
    for (size_t i = 0; i < f->nseg; i++) {
        const Elf64_Phdr *p = &f->seg[i];
        if (file_off >= p->p_offset && file_off - p->p_offset < p->p_filesz) {
            *vaddr = p->p_vaddr + (file_off - p->p_offset);
            return true;
        }
    }
    return false;
}

/* A symbol name as a folded frame: no separators, no spaces, no controls. */
static void put_name(const char *name, char *out, size_t cap) {
    size_t o = 0;
    for (; *name && o + 1 < cap; name++) {
        unsigned char ch = (unsigned char)*name;
        out[o++] = ch == ';' || ch <= ' ' || ch == 127 ? '_' : (char)ch;
    }
    out[o] = '\0';
}

void cli_symbols_name(cli_symbols *s, uint64_t ret, char *out, size_t cap) {
    uint64_t at = ret ? ret - 1 : ret; /* the call, not the instruction after it */
    for (size_t i = 0; s != NULL && i < s->nareas; i++) {
        const map_area *a = &s->areas[i];
        if (at < a->start || at >= a->end) continue;
        elf_file *f = &s->files[a->file];
        if (!f->loaded) load(f);
        uint64_t vaddr;
        const char *fn = file_vaddr(f, at - a->start + a->offset, &vaddr) ? function_at(f, vaddr) : NULL;
        char name[512];
        if (fn != NULL) {
            put_name(fn, out, cap);
        } else {
            put_name(f->base_name, name, sizeof name);
            snprintf(out, cap, "%s+0x%" PRIx64, name, ret - f->base);
        }
        return;
    }
    snprintf(out, cap, "0x%" PRIx64, ret);
}

void cli_symbols_free(cli_symbols *s) {
    if (s == NULL) return;
    for (size_t i = 0; i < s->nfiles; i++) {
        free(s->files[i].path);
        free(s->files[i].syms);
        free(s->files[i].strtab[0]);
        free(s->files[i].strtab[1]);
    }
    free(s->files);
    free(s->areas);
    free(s);
}
