#!/bin/sh
# sqlite3 under LD_PRELOAD=libhakmem.so: a few hundred thousand rows inserted
# in transactions, an index, GROUP BY with large strings, DELETE and VACUUM,
# queries whose results are checked against values computed with awk and
# against the same run without hakmem.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

. "$(dirname "$0")/../src/real_common.sh"
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
