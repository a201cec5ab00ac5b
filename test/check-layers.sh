#!/bin/sh
# Checks the library's layering from its #include lines (src/README.md):
#   base < core < debug < learn < prof < ctl < statspage < src/hakmem.c (the top)
# A file in src/LAYER/ may include only headers of its own layer or of a
# layer below ("LAYER/name.h"); a header named *_internal.h only from its
# own folder; every quoted include names its layer.  Prints each violation
# as FILE:LINE: what, and exits 1 when there is one.
#   sh test/check-layers.sh [SRCDIR]      (default: src next to this script)
src=${1:-$(cd "$(dirname "$0")/../src" && pwd)}
layers="base core debug learn prof ctl statspage"
rank() {
  i=0
  for l in $layers; do
    [ "$l" = "$1" ] && { echo $i; return; }
    i=$((i + 1))
  done
  echo -1
}
bad=0
report() { echo "$1"; bad=$((bad + 1)); }
check_file() { # FILE LAYER (LAYER "top" for src/*.c)
  f=$1; own=$2
  if [ "$own" = top ]; then own_rank=99; else own_rank=$(rank "$own"); fi
  # "N:name" for every quoted include
  grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
    sed -E 's/^([0-9]+):[^"]*"([^"]*)".*/\1:\2/' > "$tmpf"
  while IFS=: read -r line inc; do
    case "$inc" in
      */*) to=${inc%%/*} ;;
      *) report "$f:$line: \"$inc\" names no layer (write \"LAYER/$inc\")"; continue ;;
    esac
    to_rank=$(rank "$to")
    if [ "$to_rank" -lt 0 ]; then
      report "$f:$line: \"$inc\": $to is not a layer ($layers)"
    elif [ "$to_rank" -gt "$own_rank" ]; then
      report "$f:$line: $own includes \"$inc\" of $to, a layer above it"
    fi
    case "$inc" in
      *_internal.h) [ "$to" = "$own" ] || report "$f:$line: \"$inc\" is private to $to/" ;;
    esac
  done < "$tmpf"
}
tmpf=$(mktemp) || exit 2
trap 'rm -f "$tmpf"' EXIT
nfiles=0
for l in $layers; do
  [ -d "$src/$l" ] || { report "$src/$l: layer folder missing"; continue; }
  for f in "$src/$l"/*.c "$src/$l"/*.h; do
    [ -f "$f" ] || continue
    check_file "$f" "$l"
    nfiles=$((nfiles + 1))
  done
done
for f in "$src"/*.c; do
  [ -f "$f" ] || continue
  check_file "$f" top
  nfiles=$((nfiles + 1))
done
for d in "$src"/*/; do
  d=${d%/}; d=${d##*/}
  [ "$(rank "$d")" -ge 0 ] || report "$src/$d/: a folder that is not a layer (add it to $0)"
done
if [ "$bad" -gt 0 ]; then
  echo "check-layers: $bad violation(s) in $nfiles files"
  exit 1
fi
echo "check-layers: $nfiles files, layers $layers: no upward include"
