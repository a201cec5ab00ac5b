#!/bin/sh
# The heap profile hakmem writes is read by Go's pprof (`go tool pprof`,
# Debian's golang-go; .ci/run installs it): test/src/prof_child runs under
# bin/hakmem --profile for a few seconds (site A keeps 64 MiB live in 1 KiB
# blocks, site B 8 MiB in 64 KiB blocks, site C churns), and
# `go tool pprof -top` of the dump written at exit names A first and B.
# Skipped (counted so) where go is missing.
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
TESTS="pprof_go_reads_the_profile pprof_go_names_the_sites"
gate sh $TESTS
command -v go >/dev/null 2>&1 || skip_all "go not installed (golang-go)" $TESTS
hm="${objroot}bin/hakmem"
child="${objroot}test/src/prof_child"
[ -x "$hm" ] || fail_all "$hm not built" $TESTS
[ -x "$child" ] || fail_all "$child not built" $TESTS

$to env -u HAKMEM_CONF -u HAKMEM_MODE "$hm" --profile "$tmp/child.heap" "$child" -d 2 >"$tmp/child.out" 2>&1 ||
  fail_all "prof_child failed under hakmem --profile: $(head -n 2 "$tmp/child.out")" $TESTS
# go's pprof keeps nothing outside $tmp and fetches nothing: local
# symbolization from the binaries the mappings name.
(cd "$tmp" && HOME="$tmp" PPROF_TMPDIR="$tmp" GOCACHE="$tmp/gocache" GOPROXY=off GOTOOLCHAIN=local \
  $to go tool pprof -top -symbolize=local "$child" "$tmp/child.heap") >"$tmp/pprof.out" 2>"$tmp/pprof.err"
rc=$?
sed -n 1,8p "$tmp/pprof.out" | sed 's/^/# /'
if [ "$rc" = 0 ] && grep -q 'flat%' "$tmp/pprof.out"; then
  pass pprof_go_reads_the_profile
else
  fail pprof_go_reads_the_profile "exit $rc: $(head -n 3 "$tmp/pprof.err" | tr '\n' '|')"
fi
# The rows after the column heads, heaviest first: A, then B.
first=$(awk '/flat%/ { rows = 1; next } rows { print $6; exit }' "$tmp/pprof.out")
if [ "$first" = prof_child_site_a ] && grep -q ' prof_child_site_b$' "$tmp/pprof.out"; then
  pass pprof_go_names_the_sites
else
  fail pprof_go_names_the_sites "first row '$first'; $(grep -c prof_child_site_b "$tmp/pprof.out") rows name site B"
fi
finish
