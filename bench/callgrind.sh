#!/bin/sh
# Instructions per malloc+free pair, counted by callgrind.
#
#   sh bench/callgrind.sh [OBJROOT] [--batch]
#
# Runs bench/micro --size S --pairs N under `valgrind --tool=callgrind` for
# each size S in 16 64 512 4096 65536 and each allocator (glibc, mimalloc,
# hakmem; LD_PRELOAD for the latter two), twice: with N1 and N2 pairs.
# (Ir(N2) - Ir(N1)) / (N2 - N1) removes the start-up cost; the same loop run
# without calling the allocator (micro --baseline) gives the loop's own cost,
# which is subtracted too.  --batch counts the batch loop (1000 allocations,
# then 1000 frees) instead of the pair loop.
#
# Environment: CALLGRIND_ALLOCS (default "glibc mimalloc hakmem"; jemalloc
# and tcmalloc work too), CALLGRIND_SIZES, CALLGRIND_N1 (default 100000),
# CALLGRIND_N2 (default 600000).  Counts are deterministic: one run each.

srcroot=$(cd "$(dirname "$0")/.." && pwd)/
objroot=$srcroot
mode=
for a in "$@"; do
  case "$a" in
    --batch) mode=--batch ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "callgrind.sh: unknown option $a" >&2; exit 2 ;;
    *) objroot=${a%/}/ ;;
  esac
done
allocs=${CALLGRIND_ALLOCS:-glibc mimalloc hakmem}
sizes=${CALLGRIND_SIZES:-16 64 512 4096 65536}
n1=${CALLGRIND_N1:-100000}
n2=${CALLGRIND_N2:-600000}

if ! command -v valgrind >/dev/null 2>&1; then
  echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
  exit 2
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

micro=${objroot}bench/micro
if [ ! -x "$micro" ]; then
  micro=$tmp/micro
  ${CC:-cc} -std=gnu11 -O2 -g -D_GNU_SOURCE -o "$micro" "${srcroot}bench/micro.c" \
    -lpthread -lm || exit 1
fi

find_lib() {
  for d in /usr/lib/*-linux-gnu /lib/*-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    if [ -e "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  return 1
}

preload_of() {
  case "$1" in
    glibc) echo "" ;;
    jemalloc) find_lib libjemalloc.so.2 ;;
    mimalloc) find_lib libmimalloc.so.2 ;;
    tcmalloc) find_lib libtcmalloc_minimal.so.4 ;;
    hakmem)
      if [ -e "${objroot}lib/libhakmem.so" ]; then
        # a private copy: a rebuild during the run cannot change it
        cp "$(readlink -f "${objroot}lib/libhakmem.so")" "$tmp/libhakmem.so" &&
          echo "$tmp/libhakmem.so"
      else
        return 1
      fi ;;
    *) return 1 ;;
  esac
}

# ir PRELOAD ARGS...: total instructions of one micro run
ir() {
  pre=$1; shift
  out=$tmp/cg.out
  rm -f "$out"
  if ! env ${pre:+LD_PRELOAD=$pre} valgrind --tool=callgrind --callgrind-out-file="$out" \
       "$micro" "$@" >"$tmp/log" 2>&1; then
    echo "callgrind.sh: failed: micro $* (LD_PRELOAD=$pre)" >&2
    tail -n 5 "$tmp/log" >&2
    echo x
    return
  fi
  sed -n 's/^summary: *//p' "$out" | head -n 1
}

# per_pair IR1 IR2: (IR2 - IR1) / (N2 - N1), or "-"
per_pair() {
  awk -v a="$1" -v b="$2" -v n1="$n1" -v n2="$n2" \
    'BEGIN { if (a == "x" || b == "x" || a == "" || b == "") print "-";
             else printf "%.1f", (b - a) / (n2 - n1) }'
}

kind=${mode:+batch}
kind=${kind:-pair}
echo "instructions per malloc+free pair ($kind loop; N1=$n1, N2=$n2; loop overhead subtracted)"
echo

# the loop's own cost per size, without the allocator
for s in $sizes; do
  b1=$(ir "" --size "$s" --pairs "$n1" --baseline)
  b2=$(ir "" --size "$s" --pairs "$n2" --baseline)
  eval "base_$s=\$(per_pair \"\$b1\" \"\$b2\")"
done

header="| size |"
rule="|--:|"
usable=
for a in $allocs; do
  if pre=$(preload_of "$a"); then
    eval "pre_$a=\$pre"
    usable="$usable $a"
    header="$header $a |"
    rule="$rule--:|"
  else
    echo "callgrind.sh: $a not available; skipped" >&2
  fi
done
echo "$header loop |"
echo "$rule--:|"
for s in $sizes; do
  row="| $s |"
  eval "base=\$base_$s"
  for a in $usable; do
    eval "pre=\$pre_$a"
    r1=$(ir "$pre" --size "$s" --pairs "$n1" $mode)
    r2=$(ir "$pre" --size "$s" --pairs "$n2" $mode)
    v=$(per_pair "$r1" "$r2")
    v=$(awk -v v="$v" -v b="$base" 'BEGIN { if (v == "-" || b == "-") print "-";
                                             else printf "%.1f", v - b }')
    row="$row $v |"
  done
  echo "$row $base |"
done
