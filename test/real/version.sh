#!/bin/sh
# One version, from configure.ac's AC_INIT: hakctl -V, hakmem -V, the
# library's hak_ctl("version") (read by test/src/hakctl_child under
# LD_PRELOAD) and its statistics report, hakmem.pc (and pkg-config where
# installed), the HAKMEM_VERSION of the generated header, and the .TH line
# of every man page make install writes.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
srcroot=${HAKMEM_SRCROOT:-./}
TESTS="version_hakctl version_launcher version_hak_ctl version_pkgconfig version_header version_man_pages"
want=$(sed -n 's/^AC_INIT(\[hakmem\], \[\([^]]*\)\].*/\1/p' "${srcroot}configure.ac")
[ -n "$want" ] || fail_all "no AC_INIT([hakmem], [VERSION]) in ${srcroot}configure.ac" $TESTS
echo "# configure.ac: $want"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-version.XXXXXX") || fail_all "mktemp failed" $TESTS
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM

got=$(timeout 10 "${objroot}bin/hakctl" -V 2>&1)
case "$got" in
  "hakctl (hakmem) $want, stats page layout "*) pass version_hakctl ;;
  *) fail version_hakctl "hakctl -V: '$got'" ;;
esac

got=$(timeout 10 "${objroot}bin/hakmem" -V 2>&1)
if [ "$got" = "hakmem $want" ]; then pass version_launcher; else fail version_launcher "hakmem -V: '$got'"; fi

child="${objroot}test/src/hakctl_child"
case "${SANITIZER:-no}" in
  address|thread) skip version_hak_ctl "LD_PRELOAD of a $SANITIZER-sanitized library is not meaningful" ;;
  *)
    if [ ! -x "$child" ]; then
      fail version_hak_ctl "$child not built (make tests)"
    else
      timeout 20 env HAKMEM_CONF=stats_print:1 LD_PRELOAD="$lib" "$child" -d 0.1 >"$tmp/child.out" 2>"$tmp/child.err"
      got=$(sed -n 's/^version //p' "$tmp/child.out")
      report=$(sed -n 's/^___ hakmem \(.*\) statistics ___$/\1/p' "$tmp/child.err")
      if [ "$got" = "$want" ] && [ "$report" = "$want" ]; then pass version_hak_ctl
      else fail version_hak_ctl "hak_ctl(\"version\") '$got', statistics report '$report'"; fi
    fi ;;
esac

got=$(sed -n 's/^Version: //p' "${objroot}hakmem.pc")
bad=""
[ "$got" = "$want" ] || bad="hakmem.pc: '$got'"
if command -v pkg-config >/dev/null 2>&1; then
  pc=$(PKG_CONFIG_PATH="${objroot}" pkg-config --modversion hakmem 2>&1)
  [ "$pc" = "$want" ] || bad="$bad; pkg-config --modversion: '$pc'"
fi
if [ -z "$bad" ]; then pass version_pkgconfig; else fail version_pkgconfig "$bad"; fi

got=$(sed -n 's/^#define HAKMEM_VERSION "\(.*\)"$/\1/p' "${objroot}include/hakmem/hakmem.h")
if [ "$got" = "$want" ]; then pass version_header; else fail version_header "HAKMEM_VERSION '$got'"; fi

if ! command -v make >/dev/null 2>&1; then
  skip version_man_pages "make not installed"
elif ! timeout 300 make -s -C "$objroot" install DESTDIR="$tmp/dest" >"$tmp/install.log" 2>&1; then
  fail version_man_pages "make install failed: $(tail -n 3 "$tmp/install.log" | tr '\n' '|')"
else
  bad=""; n=0
  for m in $(find "$tmp/dest" -path '*/man/man*/*' -type f); do
    n=$((n + 1))
    th=$(grep -m 1 '^\.TH ' "$m")
    case "$th" in
      *"\"hakmem $want\""*) ;;
      *) bad="$bad; $(basename "$m"): $th" ;;
    esac
  done
  if [ -z "$bad" ] && [ "$n" -ge 3 ]; then pass version_man_pages
  else fail version_man_pages "$n man pages${bad}"; fi
fi

finish
