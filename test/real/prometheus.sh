#!/bin/sh
# doc/prometheus/ with the real tools of the prometheus package: promtool
# checks the scrape config and the rules and runs the rules' unit tests;
# then Prometheus itself (loopback, a free port, its own storage, a 1 s
# scrape and evaluation interval, the shipped config with only the target
# and intervals changed) scrapes hakctl serve while test/src/hakctl_child
# runs under LD_PRELOAD.  Once the child stops allocating, the resident and
# allocated bytes Prometheus stored for its pid agree with hakctl get of
# the same leaves, and the recording rules have values for it.  Every
# process is stopped at the end, each under a timeout.  Skipped when the
# prometheus package (promtool, prometheus) is not installed.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
srcroot=${HAKMEM_SRCROOT:-./}
pdoc="${srcroot}doc/prometheus"
hakctl="${objroot}bin/hakctl"
child="${objroot}test/src/hakctl_child"
STATIC="prometheus_check_config prometheus_check_rules prometheus_test_rules"
LIVE="prometheus_scrapes_serve prometheus_resident_agrees prometheus_rules_evaluated"

command -v promtool >/dev/null 2>&1 || skip_all "promtool not installed (apt-get install prometheus)" $STATIC $LIVE
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-prom.XXXXXX") || fail_all "mktemp failed" $STATIC $LIVE
# Processes started here (timeout(1) wrappers: a TERM reaches their child).
pids=
stop_all() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  n=0
  for p in $pids; do
    while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$p" 2>/dev/null
  done
  pids=
}
trap 'stop_all; cleanup' EXIT
trap 'stop_all; cleanup; exit 1' INT TERM
pt() { timeout 60 promtool "$@" >"$tmp/pt.out" 2>&1; }

if pt check config "$pdoc/prometheus.yml"; then pass prometheus_check_config
else fail prometheus_check_config "$(tr '\n' '|' <"$tmp/pt.out")"; fi
if pt check rules "$pdoc/hakmem.rules.yml" && grep -q 'SUCCESS: 5 rules found' "$tmp/pt.out"; then pass prometheus_check_rules
else fail prometheus_check_rules "$(tr '\n' '|' <"$tmp/pt.out")"; fi
# promtool resolves rule_files relative to the test file.
if pt test rules "$pdoc/hakmem.rules.test.yml" && grep -q SUCCESS "$tmp/pt.out"; then pass prometheus_test_rules
else fail prometheus_test_rules "$(tr '\n' '|' <"$tmp/pt.out")"; fi

# ---- Prometheus scraping hakctl serve ----

live_skip=""
case "${SANITIZER:-no}" in
  address|thread) live_skip="LD_PRELOAD of a $SANITIZER-sanitized library is not meaningful" ;;
esac
command -v prometheus >/dev/null 2>&1 || live_skip="prometheus not installed"
command -v curl >/dev/null 2>&1 || live_skip="curl not installed"
if [ -z "$live_skip" ]; then
  [ -x "$hakctl" ] || fail_all "$hakctl not built" $LIVE
  [ -x "$child" ] || fail_all "$child not built (make tests)" $LIVE
  [ -f "$lib" ] || fail_all "$lib not built" $LIVE
fi
if [ -n "$live_skip" ]; then
  for t in $LIVE; do skip "$t" "$live_skip"; done
  finish
fi

# wait_for TENTHS CMD...: until CMD succeeds.
wait_for() {
  w=$1; shift; n=0
  while [ $n -lt "$w" ]; do "$@" && return 0; sleep 0.1; n=$((n + 1)); done
  return 1
}
# query PROMQL: the first result's value ("" when there is none).
query() {
  curl -s --max-time 5 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" >"$tmp/q.json" 2>/dev/null
  sed -n 's/.*"value":\[[0-9.e+]*,"\([^"]*\)"\].*/\1/p' "$tmp/q.json" | head -n 1
}
has_value() { [ -n "$(query "$1")" ]; }
# within A B PERCENT: |A - B| <= PERCENT% of max(A, B).
within() { awk -v a="$1" -v b="$2" -v p="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a > b ? a : b; exit !(a != "" && b != "" && d <= m * p / 100) }'; }

timeout 120 env HAKMEM_CONF=stats_page:1,stats_page_delay_ms:0,stats_page_interval_ms:50,background_thread:1 \
  LD_PRELOAD="$lib" "$child" -d 110 >"$tmp/child.out" 2>&1 &
pids="$pids $!"
wait_for 100 grep -qs '^ready ' "$tmp/child.out"
C=$(sed -n 's/^ready //p' "$tmp/child.out")
[ -n "$C" ] || fail_all "the child did not start: $(tail -n 2 "$tmp/child.out")" $LIVE

timeout 120 "$hakctl" serve --listen 127.0.0.1:0 >"$tmp/serve.out" 2>&1 &
pids="$pids $!"
wait_for 100 grep -qs 'serving http://' "$tmp/serve.out"
sport=$(sed -n 's|^hakctl: serving http://127\.0\.0\.1:\([0-9]*\)/metrics$|\1|p' "$tmp/serve.out")
[ -n "$sport" ] || fail_all "hakctl serve did not start: $(cat "$tmp/serve.out")" $LIVE

# The shipped config, with the target, the intervals and the rules' path
# changed.
sed -e "s|'127\.0\.0\.1:9464'|'127.0.0.1:$sport'|" \
    -e 's|scrape_interval: 15s|scrape_interval: 1s|' -e 's|evaluation_interval: 15s|evaluation_interval: 1s|' \
    -e "s|- hakmem\.rules\.yml|- $(cd "$pdoc" && pwd)/hakmem.rules.yml|" \
    "$pdoc/prometheus.yml" >"$tmp/prometheus.yml"
grep -q "127.0.0.1:$sport" "$tmp/prometheus.yml" && grep -q 'scrape_interval: 1s' "$tmp/prometheus.yml" ||
  fail_all "could not adapt $pdoc/prometheus.yml" $LIVE

# A free port: a few tries at random ones, as another program may hold one.
pport=
try=0
while [ $try -lt 5 ] && [ -z "$pport" ]; do
  try=$((try + 1))
  p=$(awk -v s="$$$try" 'BEGIN { srand(s); print 20000 + int(rand() * 40000) }')
  rm -rf "$tmp/data"
  timeout 120 prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$p" >"$tmp/prom.log" 2>&1 &
  prom=$!
  pids="$pids $prom"
  n=0
  while [ $n -lt 300 ]; do
    if curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/-/ready" 2>/dev/null | grep -q 200; then
      pport=$p; break
    fi
    kill -0 "$prom" 2>/dev/null || break
    sleep 0.1; n=$((n + 1))
  done
  if [ -z "$pport" ]; then kill -TERM "$prom" 2>/dev/null; wait "$prom" 2>/dev/null; fi
done
[ -n "$pport" ] || fail_all "prometheus did not become ready: $(tail -n 3 "$tmp/prom.log" | tr '\n' '|')" $LIVE

# Scraped: the target up, the child's series there.
if wait_for 300 has_value "hakmem_stats_resident{job=\"hakmem\",pid=\"$C\"}" &&
   [ "$(query 'up{job="hakmem"}')" = 1 ]; then
  pass prometheus_scrapes_serve
else
  fail prometheus_scrapes_serve "no hakmem_stats_resident for pid $C: $(head -c 300 "$tmp/q.json"); $(tail -n 2 "$tmp/prom.log" | tr '\n' '|')"
fi

# The child stops allocating; a few scrapes later both sides read the same
# snapshot, up to the resident set's own drift.
kill -USR1 "$C"
wait_for 50 grep -qs '^frozen ' "$tmp/child.out"
sleep 3
res_prom=$(query "hakmem_stats_resident{pid=\"$C\"}")
alloc_prom=$(query "hakmem_stats_allocated{pid=\"$C\"}")
res_ctl=$(timeout 10 "$hakctl" -p "$C" get stats.resident 2>/dev/null)
alloc_ctl=$(timeout 10 "$hakctl" -p "$C" get stats.allocated 2>/dev/null)
echo "# pid $C: resident prometheus $res_prom, hakctl $res_ctl; allocated prometheus $alloc_prom, hakctl $alloc_ctl"
if within "$res_prom" "$res_ctl" 5 && within "$alloc_prom" "$alloc_ctl" 1; then
  pass prometheus_resident_agrees
else
  fail prometheus_resident_agrees "resident: prometheus '$res_prom', hakctl '$res_ctl' (5%); allocated: '$alloc_prom', '$alloc_ctl' (1%)"
fi

# The rules loaded and healthy; the recording rules have the child's values.
bad=""
curl -s --max-time 5 "http://127.0.0.1:$pport/api/v1/rules" >"$tmp/rules.json" 2>/dev/null
ok=$(grep -o '"health":"ok"' "$tmp/rules.json" | wc -l)
[ "$ok" -eq 5 ] || bad="$bad; $ok of 5 rules healthy: $(head -c 300 "$tmp/rules.json")"
frag=$(query "hakmem:fragmentation:ratio{pid=\"$C\"}")
want=$(awk -v r="$res_prom" -v a="$alloc_prom" 'BEGIN { if (a > 0) print r / a }')
within "$frag" "$want" 10 || bad="$bad; fragmentation ratio '$frag', resident/allocated $want"
hit=$(query "hakmem:tcache_hit:ratio_rate5m{pid=\"$C\"}")
# While it ran the child allocated mostly from its thread caches.
awk -v h="$hit" 'BEGIN { exit !(h != "" && h >= 0 && h <= 1) }' || bad="$bad; tcache hit ratio '$hit'"
if [ -z "$bad" ]; then pass prometheus_rules_evaluated; else fail prometheus_rules_evaluated "${bad#; }"; fi

stop_all
finish
