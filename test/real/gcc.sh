#!/bin/sh
# gcc under LD_PRELOAD=libhakmem.so: a small C program (sieve, linked list,
# qsort, realloc string) compiled and run with its output checked; a larger
# generated file compiled at -O2, its assembly compared with gcc without
# hakmem, then linked and run.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

. "$(dirname "$0")/../src/real_common.sh"
TESTS="gcc_compile_run gcc_program_uses_hakmem gcc_O2_same_assembly gcc_O2_generated_run"
gate gcc $TESTS

cat >"$tmp/prog.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; unsigned long v; char pad[40]; };

static int cmp(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    /* primes below 200000 with a malloc'd sieve */
    unsigned n = 200000, primes = 0;
    char *sieve = calloc(n, 1);
    if (!sieve) return 2;
    for (unsigned i = 2; i < n; i++) {
        if (sieve[i]) continue;
        primes++;
        for (unsigned long j = (unsigned long)i * i; j < n; j += i) sieve[j] = 1;
    }
    free(sieve);
    printf("primes %u\n", primes);

    /* a linked list of 100000 nodes */
    struct node *head = NULL;
    for (unsigned long i = 0; i < 100000; i++) {
        struct node *nd = malloc(sizeof *nd);
        if (!nd) return 2;
        nd->v = i * i % 1000003;
        nd->next = head;
        head = nd;
    }
    unsigned long sum = 0;
    while (head) {
        struct node *nx = head->next;
        sum += head->v;
        free(head);
        head = nx;
    }
    printf("list %lu\n", sum);

    /* qsort of pseudo-random numbers */
    unsigned m = 100000, *a = malloc(m * sizeof *a), x = 1;
    if (!a) return 2;
    for (unsigned i = 0; i < m; i++) a[i] = x = x * 1103515245u + 12345u;
    qsort(a, m, sizeof *a, cmp);
    unsigned long ck = 0;
    for (unsigned i = 0; i < m; i++) ck = ck * 31 + a[i] % 1000;
    free(a);
    printf("qsort %lu\n", ck);

    /* a string grown with realloc */
    size_t len = 0;
    char *s = NULL;
    for (int i = 0; i < 20000; i++) {
        char buf[32];
        int k = snprintf(buf, sizeof buf, "%d,", i);
        char *t = realloc(s, len + (size_t)k + 1);
        if (!t) return 2;
        s = t;
        memcpy(s + len, buf, (size_t)k + 1);
        len += (size_t)k;
    }
    printf("string %zu %.12s\n", len, s + len - 12);
    free(s);

    if (argc > 1) {
        /* who provides malloc here, and is libhakmem mapped? */
        Dl_info info;
        void *m_addr = dlsym(RTLD_DEFAULT, "malloc");
        if (m_addr && dladdr(m_addr, &info) && info.dli_fname)
            printf("malloc_from %s\n", info.dli_fname);
        FILE *f = fopen("/proc/self/maps", "r");
        char line[512];
        int mapped = 0;
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, "libhakmem")) mapped = 1;
        if (f) fclose(f);
        printf("mapped %d\n", mapped);
    }
    return 0;
}
EOF

# ---- a small program compiled under hakmem, run under hakmem ----
pre gcc -O2 -o "$tmp/prog" "$tmp/prog.c" -ldl >"$tmp/cc.out" 2>&1
crc=$?
if [ $crc -ne 0 ]; then
  fail gcc_compile_run "gcc exit status $crc under hakmem: $(head -n 2 "$tmp/cc.out" | tr '\n' ' ')"
  fail gcc_program_uses_hakmem "not compiled"
else
  pre "$tmp/prog" check >"$tmp/prog.out" 2>"$tmp/prog.err"
  prc=$?
  base "$tmp/prog" >"$tmp/prog.ref" 2>/dev/null
  if [ $prc -ne 0 ]; then
    fail gcc_compile_run "program exit status $prc under hakmem: $(head -n 1 "$tmp/prog.err")"
  elif [ -n "$(preload_complaint "$tmp/cc.out")$(preload_complaint "$tmp/prog.err")" ]; then
    fail gcc_compile_run "$(preload_complaint "$tmp/cc.out")$(preload_complaint "$tmp/prog.err")"
  elif ! grep -qx 'primes 17984' "$tmp/prog.out"; then
    fail gcc_compile_run "wrong output: $(head -n 1 "$tmp/prog.out")"
  elif [ "$(grep -v -e '^malloc_from' -e '^mapped' "$tmp/prog.out")" != "$(cat "$tmp/prog.ref")" ]; then
    fail gcc_compile_run "output differs from the run without hakmem: $(diff "$tmp/prog.ref" "$tmp/prog.out" | head -n 3 | tr '\n' ' ')"
  elif [ "$(wc -l <"$tmp/prog.ref")" -ne 4 ]; then
    fail gcc_compile_run "reference output incomplete: $(cat "$tmp/prog.ref" | tr '\n' ' ')"
  else
    pass gcc_compile_run
  fi
  if ! grep -qx 'mapped 1' "$tmp/prog.out"; then
    fail gcc_program_uses_hakmem "libhakmem not mapped in the compiled program"
  elif ! grep '^malloc_from ' "$tmp/prog.out" | grep -q libhakmem; then
    fail gcc_program_uses_hakmem "malloc comes from '$(grep '^malloc_from' "$tmp/prog.out" | cut -d' ' -f2)'"
  else
    pass gcc_program_uses_hakmem
  fi
fi

# ---- a larger generated file: cc1 does a lot of allocation at -O2; the
# assembly must be byte-identical to what gcc without hakmem produces ----
awk 'BEGIN {
  print "#include <stdio.h>"
  nf = 100
  for (f = 0; f < nf; f++) {
    printf "static unsigned long f%d(unsigned long x) {\n", f
    printf "  unsigned long a[%d]; unsigned long s = %d;\n", 8 + f % 24, f
    printf "  for (int i = 0; i < %d; i++) a[i] = x * %d + i;\n", 8 + f % 24, 2 * f + 1
    printf "  switch (x %% 7) {\n"
    for (c = 0; c < 7; c++)
      printf "  case %d: s += a[%d] ^ (x >> %d); break;\n", c, (c * 5 + f) % (8 + f % 24), c + 1
    printf "  }\n"
    printf "  for (int i = 0; i < %d; i++) s = s * 131 + a[i] %% %d;\n", 8 + f % 24, 97 + f
    printf "  return s;\n}\n"
  }
  print "int main(void) {"
  print "  unsigned long t = 0;"
  for (f = 0; f < nf; f++) printf "  t = t * 3 + f%d(t + %d);\n", f, f
  print "  printf(\"total %lu\\n\", t);"
  print "  return 0;"
  print "}"
}' >"$tmp/gen.c"

pre gcc -O2 -S -o "$tmp/gen.pre.s" "$tmp/gen.c" >"$tmp/gen.pre.err" 2>&1
grc=$?
base gcc -O2 -S -o "$tmp/gen.base.s" "$tmp/gen.c" >/dev/null 2>&1
if [ $grc -ne 0 ]; then
  fail gcc_O2_same_assembly "gcc -O2 -S exit status $grc under hakmem: $(head -n 2 "$tmp/gen.pre.err" | tr '\n' ' ')"
elif [ ! -s "$tmp/gen.base.s" ]; then
  fail gcc_O2_same_assembly "gcc without hakmem produced no assembly"
elif ! cmp -s "$tmp/gen.pre.s" "$tmp/gen.base.s"; then
  fail gcc_O2_same_assembly "assembly differs from gcc without hakmem: $(cmp "$tmp/gen.pre.s" "$tmp/gen.base.s" 2>&1)"
else
  pass gcc_O2_same_assembly
fi

if pre gcc -o "$tmp/gen" "$tmp/gen.pre.s" >"$tmp/gen.ld.err" 2>&1 &&
   base gcc -o "$tmp/gen.base" "$tmp/gen.base.s" >/dev/null 2>&1; then
  got=$(pre "$tmp/gen" 2>&1)
  want=$(base "$tmp/gen.base" 2>&1)
  case "$got" in
    "total "[0-9]*)
      if [ "$got" = "$want" ]; then pass gcc_O2_generated_run
      else fail gcc_O2_generated_run "printed '$got', without hakmem '$want'"; fi ;;
    *) fail gcc_O2_generated_run "printed '$got'" ;;
  esac
else
  fail gcc_O2_generated_run "assembling/linking failed: $(head -n 2 "$tmp/gen.ld.err" | tr '\n' ' ')"
fi

finish
