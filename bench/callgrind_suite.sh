#!/bin/sh
# Instructions a whole benchmark executes, counted by callgrind, for several
# builds of hakmem side by side: the repeatable way to see what a change on
# the fast paths costs (wall time on a small noisy machine cannot show 1%).
#
#   sh bench/callgrind_suite.sh [-s SCALE] LABEL=LIB.so[@CONF] [LABEL=LIB.so[@CONF] ...]
#
# (@CONF: that library runs with HAKMEM_CONF=CONF, e.g. what profiling costs:
#   on=lib/libhakmem.so@prof:1 off=lib/libhakmem.so)
#
# e.g. build a --disable-checks copy in /tmp/nochk, then
#   sh bench/callgrind_suite.sh hakmem=lib/libhakmem.so nochecks=/tmp/nochk/lib/libhakmem.so
# Runs the single-thread configurations of micro, larson, mixed, realloc,
# frag, hotclass and falseshare (OBJROOT/bench, made by `make benches`; the
# benchmarks seed their generators, so the counts repeat) under each library
# and prints total instructions (millions) and each one's ratio to the LAST
# library given, then the geometric mean.  Environment: OBJROOT (default the
# source tree), CALLGRIND_BENCHES to choose the benchmarks.

srcroot=$(cd "$(dirname "$0")/.." && pwd)/
objroot=${OBJROOT:-$srcroot}
scale=0.2
if [ "$1" = "-s" ]; then scale=$2; shift 2; fi
if [ $# -lt 1 ]; then sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
command -v valgrind >/dev/null 2>&1 || { echo "callgrind_suite.sh: valgrind is not installed" >&2; exit 2; }
benches=${CALLGRIND_BENCHES:-micro larson mixed realloc frag hotclass falseshare}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

labels=
i=0
for spec in "$@"; do
  label=${spec%%=*}; lib=${spec#*=}; conf=
  case $lib in *@*) conf=${lib#*@}; lib=${lib%%@*} ;; esac
  [ -e "$lib" ] || { echo "callgrind_suite.sh: no such library: $lib" >&2; exit 2; }
  i=$((i + 1))
  printf '%s' "$conf" >"$tmp/conf$i"
  cp "$(readlink -f "$lib")" "$tmp/lib$i.so" || exit 1   # a rebuild cannot change it
  labels="$labels $label"
done
n=$i

printf '| benchmark (1 thread, -s %s) |' "$scale"
for l in $labels; do printf ' %s |' "$l"; done
printf '\n|---|'
for l in $labels; do printf -- '--:|'; done
printf '\n'
: >"$tmp/ratios"
for b in $benches; do
  exe=${objroot}bench/$b
  [ -x "$exe" ] || { echo "callgrind_suite.sh: $exe not built (make benches)" >&2; exit 2; }
  i=0
  while [ $i -lt $n ]; do
    i=$((i + 1))
    if ! HAKMEM_CONF=$(cat "$tmp/conf$i") LD_PRELOAD=$tmp/lib$i.so valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" \
         "$exe" -t 1 -s "$scale" >"$tmp/log" 2>&1; then
      echo "callgrind_suite.sh: $b failed under library $i" >&2; tail -n 5 "$tmp/log" >&2; exit 1
    fi
    sed -n 's/^summary: *//p' "$tmp/cg" | head -n 1 >"$tmp/ir$i"
  done
  last=$(cat "$tmp/ir$n")
  printf '| %s |' "$b"
  i=0
  while [ $i -lt $n ]; do
    i=$((i + 1))
    awk -v a="$(cat "$tmp/ir$i")" -v b="$last" 'BEGIN { printf " %.1f M ×%.3f |", a / 1e6, a / b }'
    printf '%s ' "$(awk -v a="$(cat "$tmp/ir$i")" -v b="$last" 'BEGIN { print log(a / b) }')" >>"$tmp/ratios"
  done
  printf '\n'
  printf '\n' >>"$tmp/ratios"
done
printf '| **geometric mean** |'
awk -v n="$n" '{ for (i = 1; i <= n; i++) s[i] += $i; rows++ }
  END { for (i = 1; i <= n; i++) printf " **×%.3f** |", exp(s[i] / rows); printf "\n" }' "$tmp/ratios"
