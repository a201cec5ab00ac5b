#!/bin/sh
# Runs every conformance program (test/conform/*.c, built into
# OBJROOT/test/conform/) three ways: under glibc's allocator, the reference
# every test must pass; with hakmem preloaded in its default mode; and in
# research mode.  One PASS/FAIL line per program and mode (its failing
# tests below it), then "N passed, N failed[, N skipped]" summed over the
# tests.  A program that does not finish in time is a FAIL ("hang").
#   HAKMEM_CONFORM_MODES   modes to run (default "glibc default research")
#   HAKMEM_CONFORM_TIMEOUT seconds a program may run (default 240)
#   HAKMEM_TEST_FILTER     only the tests whose name holds this substring
# In a sanitizer build (SANITIZER=address|thread) preloading the library
# is not meaningful: the hakmem runs count as skipped.
objroot=${HAKMEM_OBJROOT:-./}
srcroot=${HAKMEM_SRCROOT:-$(cd "$(dirname "$0")/../.." && pwd)/}
lib="${objroot}lib/libhakmem.so"
modes=${HAKMEM_CONFORM_MODES:-glibc default research}
limit=${HAKMEM_CONFORM_TIMEOUT:-240}
to=
command -v timeout >/dev/null 2>&1 && to="timeout -k 10 $limit"
npass=0; nfail=0; nskip=0
log=$(mktemp "${TMPDIR:-/tmp}/hakmem-conform.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
trap 'rm -f "$log"; exit 1' INT TERM

progs=
for c in "$srcroot"test/conform/*.c; do
  name=$(basename "$c" .c)
  [ "$name" = conform ] && continue   # the harness
  progs="$progs $name"
done

# Why the hakmem modes cannot run, if they cannot ("skip: ..." or
# "fail: ...").
hakmem_gate() {
  case "${SANITIZER:-no}" in
    address|thread) echo "skip: LD_PRELOAD of a $SANITIZER-sanitized library is not meaningful"; return ;;
  esac
  [ -f "$lib" ] || { echo "fail: $lib not built"; return; }
  if command -v nm >/dev/null 2>&1 &&
     ! nm -D --defined-only "$lib" 2>/dev/null | awk '{print $3}' | grep -qx malloc; then
    echo "skip: $lib does not export malloc (built with a malloc prefix)"; return
  fi
  maps=$(LD_PRELOAD="$lib" cat /proc/self/maps 2>&1)
  case "$maps" in
    *libhakmem*) ;;
    *) echo "fail: LD_PRELOAD=$lib did not load it"; return ;;
  esac
}
gate=$(hakmem_gate)

# The tests a program has, for counting skipped runs (1 when unknown).
ntests_of() {
  n=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1.count" 2>/dev/null |
      sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\1 \2 \4/' |
      awk '{ print $1 + $2 + $3 }')
  echo "${n:-1}"
}

# run MODE PROGRAM
run() {
  mode=$1; name=$2; bin="${objroot}test/conform/$name"
  tag="$name [$mode]"
  if [ ! -x "$bin" ]; then
    echo "FAIL $tag: $bin not built"; nfail=$((nfail + 1)); return
  fi
  if [ "$mode" != glibc ] && [ -n "$gate" ]; then
    n=$(ntests_of "$log.$name")
    case "$gate" in
      skip:*) echo "SKIP $tag: ${gate#skip: }"; nskip=$((nskip + n)) ;;
      *) echo "FAIL $tag: ${gate#fail: }"; nfail=$((nfail + n)) ;;
    esac
    return
  fi
  start=$(date +%s)
  case "$mode" in
    glibc) $to env -u LD_PRELOAD -u HAKMEM_MODE "$bin" >"$log" 2>&1 ;;
    default) $to env -u HAKMEM_MODE LD_PRELOAD="$lib" "$bin" >"$log" 2>&1 ;;
    *) $to env HAKMEM_MODE="$mode" LD_PRELOAD="$lib" "$bin" >"$log" 2>&1 ;;
  esac
  rc=$?
  secs=$(( $(date +%s) - start ))
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
  [ "$mode" = glibc ] && [ -n "$last" ] && echo "$last" >"$log.$name.count"
  p=0; f=0; s=0
  if [ -n "$last" ]; then
    p=$(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$last" | sed -nE 's/.*, ([0-9]+) skipped$/\1/p')
    [ -z "$s" ] && s=0
  fi
  if [ -z "$last" ]; then # cut short: count what it reported
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
  fi
  why=
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    why="hang: no end after ${limit}s"; f=$((f + 1))
  elif [ -z "$last" ]; then
    why="no summary line (exit status $rc)"; f=$((f + 1))
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    why="exit status $rc with no failed test"; f=1
  fi
  npass=$((npass + p)); nfail=$((nfail + f)); nskip=$((nskip + s))
  if [ "$f" -eq 0 ]; then
    if [ "$s" -gt 0 ]; then echo "PASS $tag: $p passed, $s skipped (${secs}s)"; else echo "PASS $tag: $p passed (${secs}s)"; fi
  else
    echo "FAIL $tag: $f of $((p + f + s)) failed${why:+, $why} (${secs}s)"
  fi
  # the failures, skips and notes, indented (no stray summary line)
  grep -vE '^PASS |^[0-9]+ passed, ' "$log" | sed 's/^/    /'
}

for mode in $modes; do
  mstart=$(date +%s)
  for name in $progs; do run "$mode" "$name"; done
  echo "# mode $mode: $(( $(date +%s) - mstart ))s"
done
rm -f "$log".*

if [ "$nskip" -gt 0 ]; then
  echo "$npass passed, $nfail failed, $nskip skipped"
else
  echo "$npass passed, $nfail failed"
fi
[ "$nfail" -eq 0 ]
