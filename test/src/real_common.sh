# Shared by the test/real/*.sh scripts (sourced): LD_PRELOAD plumbing,
# PASS/FAIL/SKIP accounting and the closing "N passed, N failed" line.
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
