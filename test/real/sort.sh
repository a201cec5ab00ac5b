#!/bin/sh
# sort under LD_PRELOAD=libhakmem.so: 500k generated lines sorted in memory,
# numerically with parallel threads, through compressed temporary files with
# a 1 MiB buffer, and uniquely; every output compared (cmp) with sort run
# without hakmem.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

# ---- common preamble (each script in test/real carries its own copy) ----
objroot=${HAKMEM_OBJROOT:-./}
lib="${objroot}lib/libhakmem.so"
npass=0; nfail=0; nskip=0
pass() { echo "PASS $1"; npass=$((npass + 1)); }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
skip() { echo "SKIP $1: $2"; nskip=$((nskip + 1)); }
# HAKMEM_REAL_KEEP=1 keeps the scratch directory for a look afterwards.
cleanup() {
  if [ -n "$tmp" ]; then
    if [ -n "$HAKMEM_REAL_KEEP" ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
  fi
  tmp=
}
finish() {
  cleanup
  if [ "$nskip" -gt 0 ]; then
    echo "$npass passed, $nfail failed, $nskip skipped"
  else
    echo "$npass passed, $nfail failed"
  fi
  [ "$nfail" -eq 0 ]
  exit $?
}
# skip_all REASON TEST...: every test of the script skipped, then finish.
skip_all() {
  reason=$1; shift
  for t in "$@"; do skip "$t" "$reason"; done
  finish
}
# fail_all REASON TEST...
fail_all() {
  reason=$1; shift
  for t in "$@"; do fail "$t" "$reason"; done
  finish
}
# Common gate: sanitizer builds, missing library, prefixed build, a preload
# that does not take.  Sets $tmp.  Usage: gate PROGRAM TEST...
tmp=
gate() {
  prog=$1; shift
  case "${SANITIZER:-no}" in
    address|thread) skip_all "LD_PRELOAD of a $SANITIZER-sanitized library is not meaningful" "$@" ;;
  esac
  [ -f "$lib" ] || fail_all "$lib not built" "$@"
  command -v "$prog" >/dev/null 2>&1 || skip_all "$prog not installed" "$@"
  # A library built --with-malloc-prefix does not replace malloc.
  if command -v nm >/dev/null 2>&1 &&
     ! nm -D --defined-only "$lib" 2>/dev/null | awk '{print $3}' | grep -qx malloc; then
    skip_all "$lib does not export malloc (built with a malloc prefix)" "$@"
  fi
  # The preload must take: the library mapped in a preloaded process, and
  # no complaint from the dynamic loader.
  maps=$(LD_PRELOAD="$lib" cat /proc/self/maps 2>&1)
  case "$maps" in
    *libhakmem*) ;;
    *) fail_all "LD_PRELOAD=$lib did not load it: $(echo "$maps" | grep -i preload | head -n 1)" "$@" ;;
  esac
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-real.XXXXXX") || fail_all "mktemp failed" "$@"
  trap cleanup EXIT
  trap 'cleanup; exit 1' INT TERM
}
# pre CMD...: CMD under hakmem (with a time limit: a deadlock must fail, not
# hang the suite).  base CMD...: the same without it.
limit=${HAKMEM_REAL_TIMEOUT:-120}
to=
command -v timeout >/dev/null 2>&1 && to="timeout $limit"
pre() { $to env LD_PRELOAD="$lib" "$@"; }
base() { $to "$@"; }
# preload_complaint FILE: the loader's complaint in a captured stderr, if any.
preload_complaint() { grep -E 'ld\.so|cannot be preloaded' "$1" | head -n 1; }
# ---- end of preamble ----

TESTS="sort_loaded sort_default sort_numeric_parallel sort_external_merge sort_unique"
gate sort $TESTS
export LC_ALL=C

# 500k lines in a deterministic shuffled order: a Park-Miller sequence
# (exact in awk's doubles) picks keys, words and numbers.
lines=500000
awk -v n=$lines 'BEGIN {
  split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu", w, " ")
  x = 42
  for (i = 0; i < n; i++) {
    x = (x * 16807) % 2147483647
    k = x % 100000
    x = (x * 16807) % 2147483647
    printf "%s%d %d %s\n", w[1 + x % 12], k, x % 1000003, substr("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1, x % 31)
  }
}' >"$tmp/in.txt"
[ "$(wc -l <"$tmp/in.txt")" -eq $lines ] || fail_all "generator produced $(wc -l <"$tmp/in.txt") lines" $TESTS

# A --compress-program for sort's temporary files that also records whether
# its parent (sort) has libhakmem mapped.
cat >"$tmp/comp.sh" <<EOF
#!/bin/sh
if [ "\$1" = -d ]; then exec cat; fi
grep -q libhakmem /proc/\$PPID/maps 2>/dev/null && : >"$tmp/sort-had-hakmem"
exec cat
EOF
chmod +x "$tmp/comp.sh"

# sorted_ok NAME OUT REF: compares with the reference, reports.
sorted_ok() {
  if [ ! -s "$2" ]; then
    fail "$1" "no output under hakmem: $(head -n 1 "$2.err")"
  elif [ -n "$(preload_complaint "$2.err")" ]; then
    fail "$1" "$(preload_complaint "$2.err")"
  elif ! cmp -s "$2" "$3"; then
    fail "$1" "output differs from sort without hakmem ($(cmp "$2" "$3" 2>&1 | head -n 1)); $(wc -l <"$2") lines"
  elif [ "$(wc -l <"$2")" -ne "$4" ]; then
    fail "$1" "$(wc -l <"$2") lines, want $4"
  else
    pass "$1"
  fi
}

base sort "$tmp/in.txt" >"$tmp/ref1" 2>/dev/null
base sort -s -n -k2,2 "$tmp/in.txt" >"$tmp/ref2" 2>/dev/null
base sort -u -k1,1 "$tmp/in.txt" >"$tmp/ref3" 2>/dev/null
base sort -c "$tmp/ref1" 2>/dev/null || fail_all "reference sort output is not sorted" $TESTS
nuniq=$(cut -d' ' -f1 "$tmp/in.txt" | base sort -u | wc -l)

pre sort -S 1M -T "$tmp" --compress-program="$tmp/comp.sh" "$tmp/in.txt" \
  >"$tmp/out4" 2>"$tmp/out4.err"
if [ -f "$tmp/sort-had-hakmem" ]; then
  pass sort_loaded
else
  fail sort_loaded "sort's temporary-file compressor did not find libhakmem in sort's maps"
fi

pre sort "$tmp/in.txt" >"$tmp/out1" 2>"$tmp/out1.err"
sorted_ok sort_default "$tmp/out1" "$tmp/ref1" $lines
pre sort -s -n -k2,2 --parallel=4 -S 64M "$tmp/in.txt" >"$tmp/out2" 2>"$tmp/out2.err"
sorted_ok sort_numeric_parallel "$tmp/out2" "$tmp/ref2" $lines
sorted_ok sort_external_merge "$tmp/out4" "$tmp/ref1" $lines
pre sort -u -k1,1 "$tmp/in.txt" >"$tmp/out3" 2>"$tmp/out3.err"
sorted_ok sort_unique "$tmp/out3" "$tmp/ref3" "$nuniq"

finish
