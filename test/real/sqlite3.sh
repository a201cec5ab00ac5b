#!/bin/sh
# sqlite3 under LD_PRELOAD=libhakmem.so: a few hundred thousand rows inserted
# in transactions, an index, GROUP BY with large strings, DELETE and VACUUM,
# queries whose results are checked against values computed with awk and
# against the same run without hakmem.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

# ---- common preamble (each script in test/real carries its own copy) ----
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

TESTS="sqlite3_loaded sqlite3_bulk_insert sqlite3_queries sqlite3_matches_reference"
gate sqlite3 $TESTS

# ---- hakmem really in the sqlite3 process: .system runs a shell whose
# parent is sqlite3 ----
n=$(pre sqlite3 :memory: '.system grep -c libhakmem /proc/$PPID/maps' 2>"$tmp/loaded.err")
if [ "${n:-0}" -ge 1 ] 2>/dev/null; then
  pass sqlite3_loaded
else
  fail sqlite3_loaded "libhakmem not in sqlite3's maps ('$n'; $(head -n 1 "$tmp/loaded.err"))"
fi

# ---- the workload: 200k INSERT statements in one transaction (parsed one by
# one), 200k more from a recursive CTE, an index, a GROUP BY table with big
# group_concat strings, queries ----
N1=150000
N=300000
awk -v n=$N1 'BEGIN {
  print "PRAGMA cache_size=-65536; PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY;"
  print "CREATE TABLE t(a INTEGER PRIMARY KEY, b INTEGER, c TEXT, d BLOB);"
  print "BEGIN;"
  for (x = 1; x <= n; x++)
    printf "INSERT INTO t VALUES(%d,%d,\047name%d\047,zeroblob(%d));\n", x, (x * 7919) % 1000, x, x % 100
  print "COMMIT;"
}' >"$tmp/load.sql"
cat >"$tmp/query.sql" <<EOF
PRAGMA cache_size=-65536;
PRAGMA synchronous=OFF;
PRAGMA journal_mode=MEMORY;
PRAGMA temp_store=MEMORY;
BEGIN;
WITH RECURSIVE r(x) AS (SELECT $N1 + 1 UNION ALL SELECT x + 1 FROM r WHERE x < $N)
INSERT INTO t SELECT x, (x * 7919) % 1000, 'name' || x, zeroblob(x % 100) FROM r;
COMMIT;
CREATE INDEX tb ON t(b, c);
CREATE TABLE u AS SELECT b, count(*) AS n, group_concat(a) AS g FROM t GROUP BY b;
SELECT 'count', count(*) FROM t;
SELECT 'sum', sum(b) FROM t;
SELECT 'row', a, b, c, length(d) FROM t WHERE a = 123457;
SELECT 'range', count(*) FROM t WHERE b BETWEEN 100 AND 199;
SELECT 'groups', count(*), sum(n), sum(length(g)) FROM u;
SELECT 'like', count(*) FROM t WHERE c LIKE 'name12345%';
SELECT 'top', group_concat(a) FROM (SELECT a FROM t ORDER BY c DESC LIMIT 5);
SELECT 'indexed', count(*), sum(a) FROM t WHERE b = 457;
DELETE FROM t WHERE a % 3 = 0;
VACUUM;
SELECT 'after', count(*), sum(b) FROM t;
PRAGMA integrity_check;
EOF

run_sqlite() { # RUNNER DB OUT
  "$1" sqlite3 "$2" <"$tmp/load.sql" >"$3" 2>"$3.err" &&
    "$1" sqlite3 -separator ' ' "$2" <"$tmp/query.sql" >>"$3" 2>>"$3.err"
}
run_sqlite pre "$tmp/pre.db" "$tmp/pre.out"
prc=$?
run_sqlite base "$tmp/base.db" "$tmp/base.out"
brc=$?

# expected values, computed independently
sum=$(awk -v n=$N 'BEGIN { s = 0; for (x = 1; x <= n; x++) s += (x * 7919) % 1000; printf "%d", s }')
after=$(awk -v n=$N 'BEGIN { c = 0; s = 0; for (x = 1; x <= n; x++) if (x % 3) { c++; s += (x * 7919) % 1000 }; printf "%d %d", c, s }')
b123457=$(( (123457 * 7919) % 1000 ))

complaint=$(preload_complaint "$tmp/pre.out.err")
if [ $prc -ne 0 ]; then
  fail sqlite3_bulk_insert "exit status $prc under hakmem: $(head -n 2 "$tmp/pre.out.err" | tr '\n' ' ')"
elif [ -n "$complaint" ]; then
  fail sqlite3_bulk_insert "$complaint"
elif ! grep -qx "count $N" "$tmp/pre.out"; then
  fail sqlite3_bulk_insert "row count: $(grep '^count' "$tmp/pre.out"), want $N"
else
  pass sqlite3_bulk_insert
fi

bad=
check() { grep -qx "$1" "$tmp/pre.out" || bad="$bad [want '$1', got '$(grep "^${1%% *} " "$tmp/pre.out")']"; }
check "sum $sum"
check "row 123457 $b123457 name123457 $((123457 % 100))"
check "range $((N / 10))"
check "groups 1000 $N $(awk -v n=$N 'BEGIN { s = 0; for (x = 1; x <= n; x++) s += length(x ""); printf "%d", s + n - 1000 }')"
check "like 11"
check "top 99999,99998,99997,99996,99995"
check "after $after"
check "ok"
if [ $prc -ne 0 ]; then
  fail sqlite3_queries "sqlite3 failed under hakmem"
elif [ -n "$bad" ]; then
  fail sqlite3_queries "$bad"
else
  pass sqlite3_queries
fi

if [ $brc -ne 0 ]; then
  fail sqlite3_matches_reference "reference run without hakmem failed: $(head -n 1 "$tmp/base.out.err")"
elif ! cmp -s "$tmp/pre.out" "$tmp/base.out"; then
  fail sqlite3_matches_reference "output differs from the run without hakmem: $(diff "$tmp/base.out" "$tmp/pre.out" | head -n 3 | tr '\n' ' ')"
else
  pass sqlite3_matches_reference
fi

finish
