#!/bin/sh
# test/distcheck.sh must fail (exit status not 0, a FAIL line) when a
# release is broken at any step, before or after it makes the unpacked tree
# read-only: fake releases whose configure fails, and whose build fails.
# (Every failure after the chmod once exited 0, and CI went on.)
# Closing line "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
npass=0; nfail=0
pass() { echo "PASS $1"; npass=$((npass + 1)); }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# fake NAME CONFIGURE_BODY: hakmem-0.0.0-NAME.tar.gz with that configure.
fake() {
  d="$tmp/$1/hakmem-0.0.0"
  mkdir -p "$d"
  printf '#!/bin/sh\n%s\n' "$2" > "$d/configure"
  chmod 755 "$d/configure"
  echo configure > "$d/MANIFEST"
  (cd "$tmp/$1" && tar -cf - hakmem-0.0.0 | gzip > "$tmp/hakmem-0.0.0.tar.gz")
}

# expect_fail NAME WHAT: distcheck.sh on the last fake exits non-zero and
# says FAIL and WHAT.
expect_fail() {
  out=$(timeout 60 sh "$here/distcheck.sh" "$tmp/hakmem-0.0.0.tar.gz" 2>&1)
  st=$?
  if [ $st -eq 0 ]; then fail "$1" "exit status 0: $out"
  elif ! printf '%s' "$out" | grep -q "distcheck: FAIL: $2"; then fail "$1" "no 'FAIL: $2' in: $out"
  else pass "$1"; fi
}

fake configure_fails 'echo "configure: broken on purpose" >&2; exit 1'
expect_fail distcheck_configure_failure_fails "configure failed"

fake version_missing 'echo "nothing here"; exit 0'
expect_fail distcheck_wrong_version_fails "configure does not say hakmem 0.0.0"

fake make_fails 'echo "hakmem 0.0.0"; printf "all:\n\tfalse\n" > Makefile; exit 0'
expect_fail distcheck_build_failure_fails "make failed"

echo "$npass passed, $nfail failed"
[ $nfail -eq 0 ]
