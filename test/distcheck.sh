#!/bin/sh
# make distcheck: a release tarball builds, passes make check-quick and
# installs, with no autoconf.  Unpacks TARBALL in a fresh temporary
# directory, configures out of tree (an autoconf that fails is first on
# PATH: nothing may regenerate configure), builds, runs make check-quick,
# installs under DESTDIR, runs the installed hakmem and hakctl, checks that
# make uninstall leaves no file, and that make dist from the unpacked
# release packs the same files.  Usage: distcheck.sh TARBALL
# DISTCHECK_KEEP=1 keeps the directory; MAKE_JOBS (default 2).
set -u
tarball=$1
case "$tarball" in /*) ;; *) tarball=$(pwd)/$tarball ;; esac
name=$(basename "$tarball" .tar.gz)
version=${name#hakmem-}
jobs=${MAKE_JOBS:-2}
dc=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-distcheck.XXXXXX") || exit 1
# finish [STATUS]: removes the directory and exits with STATUS (default:
# the status the shell is exiting with).
finish() {
  rc=${1:-$?}
  if [ -n "${DISTCHECK_KEEP:-}" ]; then echo "distcheck: kept $dc"; else rm -rf "$dc"; fi
  exit $rc
}
trap finish EXIT
trap 'exit 1' INT TERM
die() { echo "distcheck: FAIL: $*" >&2; exit 1; }
step() { echo "distcheck: $*"; }

step "unpacking $tarball in $dc"
mkdir "$dc/src" "$dc/build" "$dc/nobin"
(cd "$dc/src" && gzip -dc "$tarball" | tar -xf -) || die "cannot unpack $tarball"
src="$dc/src/$name"
[ -x "$src/configure" ] || die "$name has no executable configure"
[ -f "$src/MANIFEST" ] || die "$name has no MANIFEST"
# Nothing may run autoconf from here on.
printf '#!/bin/sh\necho "distcheck: autoconf run from a release" >&2\nexit 1\n' >"$dc/nobin/autoconf"
cp "$dc/nobin/autoconf" "$dc/nobin/autoreconf"
chmod 755 "$dc/nobin/autoconf" "$dc/nobin/autoreconf"
PATH="$dc/nobin:$PATH"; export PATH
# The source tree stays as unpacked (for a user other than root, read-only).
chmod -R a-w "$src"
# The exit status is read before chmod runs (finish's own $? would be
# chmod's: every failure from here on exited 0).
trap 'st=$?; chmod -R u+w "$dc" 2>/dev/null; finish $st' EXIT

step "configure (out of tree)"
(cd "$dc/build" && "$src/configure" --prefix=/usr/local >configure.log 2>&1) ||
  { tail -n 20 "$dc/build/configure.log"; die "configure failed"; }
grep -q "hakmem $version" "$dc/build/configure.log" || die "configure does not say hakmem $version"

step "make -j$jobs"
(cd "$dc/build" && make -j"$jobs" >make.log 2>&1) || { tail -n 20 "$dc/build/make.log"; die "make failed"; }

step "make check-quick"
(cd "$dc/build" && make check-quick >check.log 2>&1)
rc=$?
grep -E '^FAIL' "$dc/build/check.log"
step "check-quick: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dc/build/check.log" | tail -n 1)"
[ $rc -eq 0 ] || die "make check-quick failed"

step "make install DESTDIR"
dest="$dc/dest"
(cd "$dc/build" && make install DESTDIR="$dest" >install.log 2>&1) || { tail -n 20 "$dc/build/install.log"; die "make install failed"; }
for f in bin/hakctl bin/hakmem lib/libhakmem.so.0 lib/libhakmem.so lib/libhakmem.a include/hakmem/hakmem.h \
         lib/pkgconfig/hakmem.pc share/man/man1/hakctl.1 share/man/man1/hakmem.1 share/man/man3/hakmem.3 \
         share/bash-completion/completions/hakctl share/bash-completion/completions/hakmem; do
  [ -e "$dest/usr/local/$f" ] || die "not installed: /usr/local/$f"
done
v=$("$dest/usr/local/bin/hakctl" -V) || die "installed hakctl -V failed"
case "$v" in "hakctl (hakmem) $version,"*) ;; *) die "installed hakctl -V: $v" ;; esac
[ "$("$dest/usr/local/bin/hakmem" -V)" = "hakmem $version" ] || die "installed hakmem -V disagrees"
out=$("$dest/usr/local/bin/hakmem" sh -c 'echo "$LD_PRELOAD"; exit 3')
[ $? -eq 3 ] || die "installed hakmem: exit status not passed through"
case "$out" in "$dest/usr/local/lib/libhakmem.so.0"*) ;; *) die "installed hakmem preloads '$out'" ;; esac

step "make uninstall DESTDIR"
(cd "$dc/build" && make uninstall DESTDIR="$dest" >uninstall.log 2>&1) || die "make uninstall failed"
left=$(find "$dest" ! -type d | head -n 5)
[ -z "$left" ] || die "left after uninstall: $left"

step "make dist from the release"
(cd "$dc/build" && make dist >dist.log 2>&1) || { tail -n 5 "$dc/build/dist.log"; die "make dist from the release failed"; }
gzip -dc "$tarball" | tar -tf - | LC_ALL=C sort >"$dc/a.list"
gzip -dc "$dc/build/$name.tar.gz" | tar -tf - | LC_ALL=C sort >"$dc/b.list"
cmp -s "$dc/a.list" "$dc/b.list" || { diff "$dc/a.list" "$dc/b.list" | head; die "a release's make dist packs other files"; }

step "ok: $name builds, checks and installs without autoconf"
