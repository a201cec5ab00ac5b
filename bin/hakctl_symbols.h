/*
 * Names for the return addresses of a heap profile (hakctl_symbols.c), from
 * its MAPPED_LIBRARIES section (the process's /proc/PID/maps) and the ELF
 * symbol tables of the files that section names: the function, else
 * module+0xoffset from the module's load address (as the library's folded
 * dump writes a frame without a symbol), else the address.  Files are read
 * with pread into private buffers, every offset checked against the file:
 * a missing, replaced, truncated or foreign file gives the fallback names,
 * never a crash.
 */
#ifndef HAKCTL_SYMBOLS_H
#define HAKCTL_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_symbols cli_symbols;

cli_symbols *cli_symbols_new(void); /* NULL when out of memory */
/* One line of /proc/PID/maps; lines that are not an executable file
 * mapping are ignored. */
void cli_symbols_add_map(cli_symbols *s, const char *line);
/* The name of the code that called, for return address ret: "main",
 * "libc.so.6+0x2724a" or "0x7f00deadbeef". */
void cli_symbols_name(cli_symbols *s, uint64_t ret, char *out, size_t cap);
void cli_symbols_free(cli_symbols *s);

#endif
