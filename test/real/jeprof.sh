#!/bin/sh
# The heap profile hakmem writes is read by jeprof (Debian's
# libjemalloc-dev; .ci/run installs it): a program with two known sites
# (one keeps 200000 blocks of 512 B, about 98 MiB; one keeps 50 blocks of
# 1 MiB and churns 100000 of 4 KiB) runs under bin/hakmem --profile, and
# `jeprof --text` names both sites, the first with about 98 MiB.
# Skipped (counted so) where jeprof or a C compiler is missing.
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
TESTS="jeprof_reads_the_profile jeprof_estimates_the_sites"
gate sh $TESTS
command -v jeprof >/dev/null 2>&1 || skip_all "jeprof not installed (libjemalloc-dev)" $TESTS
cc=$(command -v cc || command -v gcc) || skip_all "no C compiler" $TESTS
hm="${objroot}bin/hakmem"
[ -x "$hm" ] || fail_all "$hm not built" $TESTS

cat >"$tmp/sites.c" <<'C'
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) void *site_cache_insert(size_t n) {
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}
__attribute__((noinline)) void *site_session_buffer(size_t n) {
    void *p = malloc(n);
    memset(p, 2, n);
    return p;
}
int main(void) {
    static void *keep[200050];
    for (int i = 0; i < 200000; i++) keep[i] = site_cache_insert(512);
    for (int i = 0; i < 50; i++) keep[200000 + i] = site_session_buffer(1 << 20);
    for (int i = 0; i < 100000; i++) free(site_session_buffer(4096));
    return keep[0] == NULL;
}
C
"$cc" -O1 -g -o "$tmp/sites" "$tmp/sites.c" 2>"$tmp/cc.err" || fail_all "cc failed: $(head -n 3 "$tmp/cc.err")" $TESTS
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 120"
$limit env -u HAKMEM_CONF -u HAKMEM_MODE "$hm" --profile "$tmp/sites.heap" "$tmp/sites" ||
  fail_all "the program failed under hakmem --profile" $TESTS
$limit jeprof --text "$tmp/sites" "$tmp/sites.heap" >"$tmp/jeprof.out" 2>"$tmp/jeprof.err"
sed -n 1,6p "$tmp/jeprof.out" | sed 's/^/# /'
if grep -q 'site_cache_insert' "$tmp/jeprof.out" && grep -q 'site_session_buffer' "$tmp/jeprof.out"; then
  pass jeprof_reads_the_profile
else
  fail jeprof_reads_the_profile "jeprof names neither site: $(head -n 3 "$tmp/jeprof.err")"
fi
# 200000 x 512 B = 97.7 MiB live at the first site; at the default rate
# (512 KiB) that is ~195 samples, one standard deviation about 7%: 25% is
# more than three.  jeprof prints MB of 2^20 bytes.
mb=$(awk '/site_cache_insert$/ { print $1; exit }' "$tmp/jeprof.out")
if [ -n "$mb" ] && awk -v m="$mb" 'BEGIN { exit !(m >= 73.3 && m <= 122.1) }'; then
  pass jeprof_estimates_the_sites
else
  fail jeprof_estimates_the_sites "site_cache_insert: '$mb' MB, expected 97.7 +-25%"
fi
finish
