#!/bin/sh
# hakctl against real processes: test/src/hakctl_child runs under
# LD_PRELOAD=libhakmem.so with its stats page on, and bin/hakctl attaches to
# it: ps lists it; get agrees with what the child reads through hak_ctl once
# its counters stop; set config.mode changes the child's mode (the child
# reports it), read-only keys and bad values are refused with exit status 1;
# dump, watch, top and metrics work (a parser checks every metrics line
# against the text exposition format); serve answers curl on loopback;
# another uid cannot open a page; a page is created lazily and unlinked at
# exit, and a killed child's page is removed by hakctl ps; corrupted pages
# give a clear error and exit status 3, never a crash.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

# The shared preamble, then this script's own cleanup (it also stops the
# workloads it started and removes the published copy of a page).
. "$(dirname "$0")/../src/real_common.sh"
# HAKMEM_REAL_KEEP=1 keeps the scratch directory for a look afterwards.
cleanup() {
  kill_children
  if [ -n "$tmp" ]; then
    if [ -n "$HAKMEM_REAL_KEEP" ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
  fi
  [ -n "$pub" ] && rm -rf "$pub"
  tmp=; pub=
}

TESTS="hakctl_usage hakctl_no_process hakctl_lazy_page hakctl_ps_lists_child hakctl_page_mode_0600
hakctl_set_mode hakctl_set_read_only hakctl_set_bad_value hakctl_dump_json_human hakctl_watch_rates
hakctl_snapshots_consistent hakctl_top_plain hakctl_metrics_parse hakctl_metrics_all hakctl_serve_curl
hakctl_other_uid_denied hakctl_get_agrees_with_child hakctl_exit_unlinks hakctl_stale_removed
hakctl_corrupt_pages"
pids=
kill_children() {
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
  pids=
}
gate sh $TESTS
hakctl="${objroot}bin/hakctl"
child="${objroot}test/src/hakctl_child"
[ -x "$hakctl" ] || fail_all "$hakctl not built" $TESTS
[ -x "$child" ] || fail_all "$child not built (make tests)" $TESTS
uid=$(id -u)
limit=${HAKMEM_REAL_TIMEOUT:-60}
hk() { timeout 20 "$hakctl" "$@"; }

# start_child NAME CONF: the child under hakmem; sets $cpid, output in
# $tmp/NAME.out.
start_child() {
  timeout "$limit" env HAKMEM_CONF="$2" LD_PRELOAD="$lib" "$child" -d "$limit" >"$tmp/$1.out" 2>&1 &
  cpid=$!
  pids="$pids $cpid"
  # timeout(1) is the parent: the child is its only child.
  n=0
  while [ $n -lt 100 ]; do
    real=$(grep '^ready ' "$tmp/$1.out" 2>/dev/null | cut -d' ' -f2)
    [ -n "$real" ] && break
    sleep 0.05; n=$((n + 1))
  done
  [ -n "$real" ] && cpid=$real && pids="$pids $cpid"
}
page_of() { echo "/dev/shm/hakmem.$uid.$1"; }
# wait_page PID TENTHS: until the page exists.
wait_page() {
  n=0
  while [ $n -lt "$2" ]; do
    [ -f "$(page_of "$1")" ] && return 0
    sleep 0.1; n=$((n + 1))
  done
  return 1
}
# wait_line FILE PATTERN TENTHS
wait_line() {
  n=0
  while [ $n -lt "$3" ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1; n=$((n + 1))
  done
  return 1
}
# expect_rc NAME WANT CMD...: runs CMD, output in $tmp/rc.out and .err.
run_rc() { "$@" >"$tmp/rc.out" 2>"$tmp/rc.err"; echo $?; }

# The Prometheus text exposition format, line by line (format 0.0.4):
# HELP/TYPE at most once per family and before its samples, samples of a
# family together, names and labels well formed, values numbers, no sample
# twice.  Prints "ok N" or the first offending line.
check_metrics() {
  awk '
  BEGIN {
    name = "[a-zA-Z_:][a-zA-Z0-9_:]*"
    lname = "[a-zA-Z_][a-zA-Z0-9_]*"
    lval = "\"([^\"\\\\]|\\\\.)*\""
    num = "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[+-]Inf)"
    sample = "^" name "(\\{" lname "=" lval "(," lname "=" lval ")*\\})? " num "( -?[0-9]+)?$"
    bad = ""; n = 0; last = ""
  }
  bad != "" { next }
  /^# HELP / {
    if ($3 !~ ("^" name "$") || help[$3]++) { bad = "bad or repeated HELP: " $0; next }
    next
  }
  /^# TYPE / {
    if (NF != 4 || $3 !~ ("^" name "$") || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/ || type[$3] != "") {
      bad = "bad or repeated TYPE: " $0; next
    }
    type[$3] = $4; next
  }
  /^#/ { next }
  /^$/ { next }
  {
    if ($0 !~ sample) { bad = "not a sample: " $0; next }
    match($0, "^" name); m = substr($0, 1, RLENGTH)
    if (type[m] == "") { bad = "sample before its TYPE: " $0; next }
    if (m != last) { if (done[m]) { bad = "family split: " $0; next }; done[last] = 1; last = m }
    key = $0; sub(/ [^ ]*$/, "", key)
    if (seen[key]++) { bad = "sample twice: " $0; next }
    n++
  }
  END { if (bad != "") { print bad; exit 1 } if (n == 0) { print "no samples"; exit 1 } print "ok " n }
  ' "$1"
}

# ---- usage, no process, lazy creation ----

bad=""
[ "$(run_rc "$hakctl" bogus)" = 2 ] || bad="$bad; unknown command not 2"
[ "$(run_rc "$hakctl" get version)" = 2 ] || bad="$bad; get without -p not 2"
[ "$(run_rc "$hakctl" -p 1 set)" = 2 ] || bad="$bad; set without a key not 2"
[ "$(run_rc "$hakctl" -p x get version)" = 2 ] || bad="$bad; -p x not 2"
for c in ps get dump list set watch top metrics serve; do
  rc=$(run_rc "$hakctl" "$c" --help)
  { [ "$rc" = 0 ] && grep -q '^usage: hakctl' "$tmp/rc.out"; } || bad="$bad; $c --help: $rc"
done
rc=$(run_rc "$hakctl" --help); [ "$rc" = 0 ] || bad="$bad; --help $rc"
if [ -z "$bad" ]; then pass hakctl_usage; else fail hakctl_usage "${bad#; }"; fi

sh -c 'exit 0' & dead=$!; wait $dead
rc=$(run_rc "$hakctl" -p "$dead" get version)
if [ "$rc" = 3 ] && grep -q "no such process: $dead" "$tmp/rc.err" && grep -q 'HAKMEM_CONF=stats_page:1' "$tmp/rc.err"; then
  pass hakctl_no_process
else
  fail hakctl_no_process "exit $rc: $(head -n 1 "$tmp/rc.err")"
fi

# B: no background thread, a 1.5 s delay: no page at first, one later.
start_child B "stats_page:1,stats_page_delay_ms:1500,stats_page_interval_ms:50"
B=$cpid
sleep 0.4
early=no; [ -f "$(page_of "$B")" ] && early=yes
rc=$(run_rc "$hakctl" -p "$B" get version)
if [ "$early" = yes ]; then
  fail hakctl_lazy_page "page exists 0.4 s after start with a 1.5 s delay"
elif [ "$rc" != 3 ] || ! grep -q 'has no stats page (start it with HAKMEM_CONF=stats_page:1' "$tmp/rc.err"; then
  fail hakctl_lazy_page "before the delay: exit $rc, '$(head -n 1 "$tmp/rc.err")'"
elif ! wait_page "$B" 50; then
  fail hakctl_lazy_page "no page 5 s after start"
else
  pass hakctl_lazy_page
fi

# A: background thread, 50 ms refresh.
start_child A "stats_page:1,stats_page_delay_ms:100,stats_page_interval_ms:50,background_thread:1"
A=$cpid
wait_page "$A" 50 || fail_all "child A made no page in 5 s: $(tail -n 2 "$tmp/A.out")" \
  hakctl_ps_lists_child hakctl_page_mode_0600 hakctl_set_mode hakctl_set_read_only hakctl_set_bad_value \
  hakctl_dump_json_human hakctl_watch_rates hakctl_snapshots_consistent hakctl_top_plain \
  hakctl_metrics_parse hakctl_metrics_all hakctl_serve_curl hakctl_other_uid_denied \
  hakctl_get_agrees_with_child hakctl_exit_unlinks hakctl_stale_removed hakctl_corrupt_pages

# ---- ps, page mode ----

hk ps >"$tmp/ps.out" 2>"$tmp/ps.err"
if awk -v p="$A" '$1 == p && /hakctl_child/ && /balanced/ { ok = 1 } END { exit !ok }' "$tmp/ps.out" &&
   grep -q '^ *PID  *COMMAND  *MODE  *ALLOCATED  *RESIDENT  *AGE' "$tmp/ps.out"; then
  pass hakctl_ps_lists_child
else
  fail hakctl_ps_lists_child "$(cat "$tmp/ps.out" "$tmp/ps.err" | tr '\n' '|')"
fi

mode=$(stat -c %a "$(page_of "$A")" 2>/dev/null); owner=$(stat -c %u "$(page_of "$A")" 2>/dev/null)
# The path leaf is published from the page's next refresh (50 ms here).
path=; n=0
while [ -z "$path" ] && [ $n -lt 40 ]; do
  path=$(hk -p "$A" get stats_page.path); [ -n "$path" ] || sleep 0.05; n=$((n + 1))
done
if [ "$mode" = 600 ] && [ "$owner" = "$uid" ] && [ "$path" = "$(page_of "$A")" ]; then
  pass hakctl_page_mode_0600
else
  fail hakctl_page_mode_0600 "mode $mode, owner $owner, stats_page.path '$path'"
fi

# ---- set ----

# B has no background thread: its allocation slow paths answer.
rc=$(run_rc hk -p "$B" set config.mode fast)
if [ "$rc" != 0 ] || ! grep -qx 'config.mode = fast' "$tmp/rc.out"; then
  fail hakctl_set_mode "exit $rc: $(cat "$tmp/rc.out" "$tmp/rc.err" | tr '\n' '|')"
elif ! wait_line "$tmp/B.out" '^mode fast$' 30; then
  fail hakctl_set_mode "the child did not report mode fast: $(tr '\n' '|' <"$tmp/B.out")"
elif [ "$(hk -p "$B" get config.mode)" != fast ] || [ "$(hk -p "$B" get stats_page.enabled)" != true ]; then
  fail hakctl_set_mode "get config.mode: $(hk -p "$B" get config.mode stats_page.enabled | tr '\n' ' ')"
else
  rc=$(run_rc hk -p "$A" set config.mode minimal)
  if [ "$rc" = 0 ] && wait_line "$tmp/A.out" '^mode minimal$' 30 &&
     [ "$(run_rc hk -p "$A" set config.mode balanced)" = 0 ] && wait_line "$tmp/A.out" '^mode balanced$' 30; then
    pass hakctl_set_mode
  else
    fail hakctl_set_mode "child A: minimal/balanced: exit $rc: $(tr '\n' '|' <"$tmp/A.out")"
  fi
fi

rc=$(run_rc hk -p "$A" set stats.allocated 1)
if [ "$rc" = 1 ] && grep -q 'stats.allocated is read-only' "$tmp/rc.err"; then
  rc=$(run_rc hk -p "$A" set epoch 1)
  if [ "$rc" = 1 ] && grep -q 'not page-settable' "$tmp/rc.err"; then
    pass hakctl_set_read_only
  else
    fail hakctl_set_read_only "set epoch: exit $rc: $(cat "$tmp/rc.err")"
  fi
else
  fail hakctl_set_read_only "exit $rc: $(cat "$tmp/rc.out" "$tmp/rc.err" | tr '\n' '|')"
fi

bad=""
rc=$(run_rc hk -p "$A" set config.mode bogus); { [ "$rc" = 1 ] && grep -q 'invalid value' "$tmp/rc.err"; } || bad="$bad; bogus mode: $rc $(cat "$tmp/rc.err")"
rc=$(run_rc hk -p "$A" set no.such.key 1); { [ "$rc" = 1 ] && grep -q 'no such key' "$tmp/rc.err"; } || bad="$bad; unknown key: $rc"
rc=$(run_rc hk -p "$A" set arena.0.decay_ms x); [ "$rc" = 1 ] || bad="$bad; decay_ms x: $rc"
rc=$(run_rc hk -p "$A" set arena.0.decay_ms -1); { [ "$rc" = 0 ] && grep -qx 'arena.0.decay_ms = -1' "$tmp/rc.out"; } || bad="$bad; decay_ms -1: $rc $(cat "$tmp/rc.out" "$tmp/rc.err")"
rc=$(run_rc hk -p "$A" set huge.bigcache.max_bytes 32M); grep -qx 'huge.bigcache.max_bytes = 33554432' "$tmp/rc.out" || bad="$bad; 32M: $rc $(cat "$tmp/rc.out")"
rc=$(run_rc hk -p "$A" set arena.0.purge); [ "$rc" = 0 ] || bad="$bad; purge: $rc"
if [ -z "$bad" ]; then pass hakctl_set_bad_value; else fail hakctl_set_bad_value "${bad#; }"; fi

# ---- dump, watch, top ----

bad=""
hk -p "$A" dump tiny.class.3 >"$tmp/dump.out" 2>&1 || bad="$bad; dump failed"
grep -q '^tiny.class.3.stats.nmalloc = [0-9][0-9]*$' "$tmp/dump.out" || bad="$bad; no nmalloc line"
grep -q '^tiny.class.30' "$tmp/dump.out" && bad="$bad; dump tiny.class.3 shows tiny.class.30"
hk -p "$A" dump --json stats >"$tmp/dump.json" 2>&1 || bad="$bad; dump --json failed"
grep -q '"stats.allocated": [0-9]' "$tmp/dump.json" || bad="$bad; json: $(head -c 200 "$tmp/dump.json")"
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/dump.json" 2>/dev/null || bad="$bad; dump --json does not parse"
  hk -p "$A" get --json version tiny.class.3.stats >"$tmp/get.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tiny.class.3.stats"]["size"] > 0' "$tmp/get.json" 2>/dev/null ||
    bad="$bad; get --json: $(cat "$tmp/get.json")"
fi
h=$(hk -p "$A" get --human stats.mapped); case "$h" in *iB) ;; *) bad="$bad; --human gave '$h'" ;; esac
rc=$(run_rc hk -p "$A" get tiny.class); { [ "$rc" = 1 ] && grep -q 'not a leaf' "$tmp/rc.err"; } || bad="$bad; get of a subtree: $rc"
if [ -z "$bad" ]; then pass hakctl_dump_json_human; else fail hakctl_dump_json_human "${bad#; }"; fi

hk -p "$A" watch tiny.class.2.stats.nmalloc stats.allocated -i 200 -n 5 >"$tmp/watch.out" 2>&1
lines=$(grep -c 'tiny.class.2.stats.nmalloc [0-9]' "$tmp/watch.out")
rates=$(grep -c 'tiny.class.2.stats.nmalloc [0-9]* (+[0-9]*/s)' "$tmp/watch.out")
if [ "$lines" = 5 ] && [ "$rates" -ge 3 ]; then
  pass hakctl_watch_rates
else
  fail hakctl_watch_rates "$lines lines, $rates with rates: $(tr '\n' '|' <"$tmp/watch.out")"
fi

# E refreshes every 1 ms; every snapshot is checked (sequence lock, checksum).
start_child E "stats_page:1,stats_page_delay_ms:0,stats_page_interval_ms:1,background_thread:1"
E=$cpid
if wait_page "$E" 50; then
  rc=$(run_rc hk -p "$E" watch stats.allocated stats_page.refreshes -i 10 -n 200)
  n=$(grep -c 'stats_page.refreshes' "$tmp/rc.out")
  if [ "$rc" = 0 ] && [ "$n" = 200 ]; then
    pass hakctl_snapshots_consistent
  else
    fail hakctl_snapshots_consistent "exit $rc, $n samples: $(head -n 2 "$tmp/rc.err")"
  fi
else
  fail hakctl_snapshots_consistent "child E made no page"
fi
kill -TERM "$E" 2>/dev/null

hk -p "$A" top -i 200 -n 2 >"$tmp/top.out" 2>&1
rc=$?
if [ "$rc" = 0 ] && [ "$(grep -c '^CLASS  *SIZE  *LIVE  *ALLOC/s  *FREE/s  *HIT%  *PAGES' "$tmp/top.out")" = 2 ] &&
   grep -q '^tiny\.[0-9]' "$tmp/top.out" && ! grep -q "$(printf '\033')" "$tmp/top.out"; then
  pass hakctl_top_plain
else
  fail hakctl_top_plain "exit $rc: $(head -n 4 "$tmp/top.out" | tr '\n' '|')"
fi

# ---- metrics, serve ----

hk -p "$A" metrics >"$tmp/m1.txt" 2>"$tmp/m1.err"
rc=$?
res=$(check_metrics "$tmp/m1.txt")
if [ "$rc" = 0 ] && [ "${res%% *}" = ok ] && grep -q '^hakmem_class_stats_nmalloc_total{tier="tiny",class="3"} [0-9]' "$tmp/m1.txt" &&
   grep -q '^hakmem_arena_decay_ms{arena="0"} ' "$tmp/m1.txt"; then
  pass hakctl_metrics_parse
else
  fail hakctl_metrics_parse "exit $rc: $res"
fi

hk metrics --all >"$tmp/m2.txt" 2>"$tmp/m2.err"
rc=$?
res=$(check_metrics "$tmp/m2.txt")
if [ "$rc" = 0 ] && [ "${res%% *}" = ok ] && grep -q "^hakmem_stats_allocated{pid=\"$A\",command=\"[^\"]*hakctl_child" "$tmp/m2.txt" &&
   grep -q "pid=\"$B\"" "$tmp/m2.txt"; then
  pass hakctl_metrics_all
else
  fail hakctl_metrics_all "exit $rc: $res"
fi

if ! command -v curl >/dev/null 2>&1; then
  skip hakctl_serve_curl "curl not installed"
else
  bad=""
  rc=$(run_rc "$hakctl" serve --listen 0.0.0.0:0 --max-requests 1)
  { [ "$rc" = 2 ] && grep -q 'loopback' "$tmp/rc.err"; } || bad="$bad; 0.0.0.0 accepted ($rc)"
  timeout 30 "$hakctl" serve --listen 127.0.0.1:0 --max-requests 3 >"$tmp/serve.out" 2>&1 &
  spid=$!; pids="$pids $spid"
  wait_line "$tmp/serve.out" 'serving http://' 50
  url=$(sed -n 's/^hakctl: serving \(http:[^ ]*\)$/\1/p' "$tmp/serve.out")
  if [ -z "$url" ]; then
    bad="$bad; no serving line: $(cat "$tmp/serve.out")"
  else
    curl -s --max-time 10 "$url" >"$tmp/m3.txt" || bad="$bad; curl $url failed"
    res=$(check_metrics "$tmp/m3.txt")
    [ "${res%% *}" = ok ] || bad="$bad; /metrics: $res"
    grep -q "pid=\"$A\"" "$tmp/m3.txt" || bad="$bad; /metrics lacks pid $A"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${url%/metrics}/nope")
    [ "$code" = 404 ] || bad="$bad; /nope gave $code"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$url")
    [ "$code" = 405 ] || bad="$bad; POST gave $code"
    wait "$spid" 2>/dev/null || bad="$bad; serve did not stop after 3 requests"
  fi
  if [ -z "$bad" ]; then pass hakctl_serve_curl; else fail hakctl_serve_curl "${bad#; }"; fi
fi

# ---- another uid ----

drop=""
if [ "$uid" != 0 ]; then
  skip hakctl_other_uid_denied "not root: no other uid to try"
elif command -v setpriv >/dev/null 2>&1; then
  drop="setpriv --reuid=65534 --regid=65534 --clear-groups"
elif command -v runuser >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
  drop="runuser -u nobody --"
else
  skip hakctl_other_uid_denied "neither setpriv nor runuser to drop to nobody"
fi
if [ -n "$drop" ]; then
  pub=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-pub.XXXXXX") && chmod 755 "$pub" && cp "$hakctl" "$pub/hakctl" && chmod 755 "$pub/hakctl"
  $drop "$pub/hakctl" -p "$A" get version >"$tmp/nob.out" 2>"$tmp/nob.err"
  rc=$?
  $drop "$pub/hakctl" -p "$A" set config.mode fast >/dev/null 2>"$tmp/nob2.err"
  rc2=$?
  if [ "$rc" = 3 ] && [ "$rc2" = 3 ] && grep -q 'Permission denied' "$tmp/nob.err" && [ ! -s "$tmp/nob.out" ]; then
    pass hakctl_other_uid_denied
  else
    fail hakctl_other_uid_denied "as nobody: get exit $rc, set exit $rc2: $(cat "$tmp/nob.err" "$tmp/nob.out" | head -n 2 | tr '\n' '|')"
  fi
fi

# ---- get agrees with the child ----

kill -USR1 "$A"
if ! wait_line "$tmp/A.out" '^frozen ' 50; then
  fail hakctl_get_agrees_with_child "the child did not freeze: $(tail -n 2 "$tmp/A.out")"
else
  sleep 0.3 # six refresh intervals (the background thread refreshes)
  bad=""; n=0
  for kv in $(grep '^frozen ' "$tmp/A.out" | head -n 1 | cut -d' ' -f2-); do
    k=${kv%%=*}; want=${kv#*=}
    got=$(hk -p "$A" get "$k")
    [ "$got" = "$want" ] || bad="$bad; $k: page $got, hak_ctl $want"
    n=$((n + 1))
  done
  if [ -z "$bad" ] && [ "$n" -ge 16 ]; then pass hakctl_get_agrees_with_child
  else fail hakctl_get_agrees_with_child "$n keys${bad}"; fi
fi

# ---- exit, stale pages ----

kill -TERM "$A"
n=0; while kill -0 "$A" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
if [ -f "$(page_of "$A")" ]; then
  fail hakctl_exit_unlinks "$(page_of "$A") still there after a normal exit"
elif kill -0 "$A" 2>/dev/null; then
  fail hakctl_exit_unlinks "child A did not exit on SIGTERM"
else
  pass hakctl_exit_unlinks
fi

start_child D "stats_page:1,stats_page_delay_ms:0,stats_page_interval_ms:50"
D=$cpid
if ! wait_page "$D" 50; then
  fail hakctl_stale_removed "child D made no page"
else
  kill -9 "$D"
  n=0; while kill -0 "$D" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  there=no; [ -f "$(page_of "$D")" ] && there=yes
  hk ps >"$tmp/ps2.out" 2>"$tmp/ps2.err"
  if [ "$there" = yes ] && [ ! -f "$(page_of "$D")" ] && grep -q "removed stale page $(page_of "$D"): process $D is gone" "$tmp/ps2.err" &&
     ! awk -v p="$D" '$1 == p { f = 1 } END { exit !f }' "$tmp/ps2.out"; then
    pass hakctl_stale_removed
  else
    fail hakctl_stale_removed "left after kill -9: $there; after ps: $(ls "$(page_of "$D")" 2>&1); $(cat "$tmp/ps2.err")"
  fi
fi

# ---- corrupted pages ----

# le64 N: N as 8 little-endian bytes.
le64() {
  v=$1; i=0; out=""
  while [ $i -lt 8 ]; do out="$out$(printf '\\%03o' $((v & 255)))"; v=$((v >> 8)); i=$((i + 1)); done
  printf "$out"
}
patch() { dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
sleep 30 & V=$!; pids="$pids $V"
F=$(page_of "$V")
real=$(page_of "$B")
bad=""
try_corrupt() {
  rc=$(run_rc hk -p "$V" get version)
  if [ "$rc" != 3 ] || ! grep -q "$2" "$tmp/rc.err" || [ "$(wc -l <"$tmp/rc.err")" -ne 1 ]; then
    bad="$bad; $1: exit $rc: $(head -n 2 "$tmp/rc.err" | tr '\n' '|')"
  fi
  for sub in "ps" "-p $V dump" "-p $V metrics" "metrics --all" "-p $V top -n 1 -i 10" "-p $V set config.mode fast"; do
    # shellcheck disable=SC2086
    timeout 20 "$hakctl" $sub >/dev/null 2>&1
    rc=$?
    [ "$rc" -ge 124 ] && bad="$bad; $1: hakctl $sub died or hung (exit $rc)"
  done
  rm -f "$F"
}
head -c 8192 /dev/urandom >"$F"; try_corrupt random 'corrupt page: bad magic'
: >"$F"; try_corrupt empty 'corrupt page: size 0'
head -c 1000 "$real" >"$F"; try_corrupt truncated 'corrupt page: its size disagrees with its header'
cp "$real" "$F"; try_corrupt other_pid 'corrupt page: it names another process'
cp "$real" "$F"; le64 "$V" | patch "$F" 40; printf '\377\377\377\377' | patch "$F" 372
try_corrupt nentries 'corrupt page: the entry table lies outside'
cp "$real" "$F"; le64 "$V" | patch "$F" 40; printf '\377\377\377\377' | patch "$F" 384
try_corrupt vals_off 'corrupt page: the value area lies outside'
cp "$real" "$F"; le64 "$V" | patch "$F" 40; printf '\143' | patch "$F" 12
try_corrupt compat 'its layout needs a newer hakctl'
cp "$real" "$F"; le64 "$V" | patch "$F" 40; le64 12345 | patch "$F" 472
try_corrupt checksum 'corrupt page: checksum mismatch'
cp "$real" "$F"; le64 "$V" | patch "$F" 40; printf '\001' | patch "$F" 432
try_corrupt seq_odd 'stayed locked'
ln -s /etc/hostname "$F"; try_corrupt symlink 'a symbolic link'
kill "$V" 2>/dev/null
if [ -z "$bad" ]; then pass hakctl_corrupt_pages; else fail hakctl_corrupt_pages "${bad#; }"; fi

kill -TERM "$B" 2>/dev/null
finish
