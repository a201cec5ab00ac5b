#!/bin/sh
# sort under LD_PRELOAD=libhakmem.so: 500k generated lines sorted in memory,
# numerically with parallel threads, through compressed temporary files with
# a 1 MiB buffer, and uniquely; every output compared (cmp) with sort run
# without hakmem.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

. "$(dirname "$0")/../src/real_common.sh"
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
