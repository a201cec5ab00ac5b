#!/bin/sh
# Runs test programs and scripts, prints their output, and sums their
# closing lines "N passed, N failed[, N skipped]".  A program that crashes,
# exits non-zero without failures, or prints no closing line counts as one
# failure.  Usage: run-tests.sh OBJROOT SRCROOT TEST...
# HAKMEM_TEST_WRAPPER (e.g. "valgrind -q --error-exitcode=9") prefixes every
# binary; scripts get OBJROOT and SRCROOT in their environment.
objroot=$1; srcroot=$2; shift 2
export HAKMEM_OBJROOT="$objroot" HAKMEM_SRCROOT="$srcroot"
# LeakSanitizer's exit-time scan can hang in a child forked from a busy
# multi-threaded parent (its own allocator lock): the tests check hakmem,
# not the harness's leaks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
# A hung program counts as a failure instead of eating the CI budget.
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout ${HAKMEM_TEST_TIMEOUT:-900}"
tp=0; tf=0; ts=0
log=$(mktemp)
for t in "$@"; do
  name=$(basename "$t")
  echo "== $name"
  start=$(date +%s)
  case "$t" in
    *.sh) $limit sh "$t" >"$log" 2>&1 ;;
    *) $limit $HAKMEM_TEST_WRAPPER "$t" >"$log" 2>&1 ;;
  esac
  rc=$?
  cat "$log"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
  if [ -z "$last" ]; then
    echo "FAIL $name: no summary line (exit status $rc)"
    tf=$((tf + 1))
    continue
  fi
  p=$(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  s=$(echo "$last" | sed -nE 's/.*, ([0-9]+) skipped$/\1/p')
  [ -z "$s" ] && s=0
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exit status $rc with no failed test"
    f=1
  fi
  tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
  echo "   ($name: $(( $(date +%s) - start ))s)"
done
rm -f "$log"
echo "== total"
if [ "$ts" -gt 0 ]; then
  echo "$tp passed, $tf failed, $ts skipped"
else
  echo "$tp passed, $tf failed"
fi
[ "$tf" -eq 0 ]
