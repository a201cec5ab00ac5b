#!/bin/sh
# test/check-layers.sh on the real tree (must pass) and on copies of it with
# one violation planted each (must fail and name the file).  Closing line
# "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../src" && pwd)
check="$here/check-layers.sh"
npass=0; nfail=0
pass() { echo "PASS $1"; npass=$((npass + 1)); }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

if out=$(sh "$check" "$src" 2>&1); then pass layers_real_tree_passes
else fail layers_real_tree_passes "$out"; fi

# plant NAME FILE LINE EXPECT: a copy of src with LINE added to FILE must
# fail, and the report must contain EXPECT.
plant() {
  rm -rf "$tmp/src"
  mkdir -p "$tmp/src"
  for d in "$src"/*/; do
    d=${d%/}; mkdir -p "$tmp/src/${d##*/}"
    cp "$d"/*.c "$d"/*.h "$tmp/src/${d##*/}/" 2>/dev/null
  done
  cp "$src"/*.c "$tmp/src/"
  printf '%s\n' "$3" >> "$tmp/src/$2"
  if out=$(sh "$check" "$tmp/src" 2>&1); then
    fail "$1" "a planted $3 in $2 passed"
  else
    case "$out" in
      *"$4"*) pass "$1" ;;
      *) fail "$1" "report lacks '$4': $out" ;;
    esac
  fi
}
plant layers_core_including_ctl_fails core/heap.c '#include "ctl/ctl.h"' "core/heap.c:"
plant layers_base_including_core_fails base/os.c '#include "core/core.h"' "a layer above it"
plant layers_learn_including_statspage_fails learn/learn.c '#include "statspage/statspage.h"' "learn/learn.c:"
plant layers_unnamed_include_fails core/api.c '#include "heap.h"' "names no layer"
plant layers_private_header_fails ctl/ctl.c '#include "core/core_internal.h"' "private to core/"
plant layers_header_upward_fails core/core.h '#include "debug/debug.h"' "core/core.h:"

if [ "$nfail" -gt 0 ]; then echo "$npass passed, $nfail failed"; exit 1; fi
echo "$npass passed, $nfail failed"
