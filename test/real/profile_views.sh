#!/bin/sh
# What hakctl draws from a live process's heap profile: test/src/prof_child
# (site A keeps 64 MiB live in 1 KiB blocks, B 8 MiB in 64 KiB blocks, C
# churns 1 MiB a round) runs under LD_PRELOAD=libhakmem.so with no
# HAKMEM_CONF, profiling started by hakctl.
#   dump --format text: a table naming A first, with estimated blocks
#     (about 65536), and A's stack down to main (hakctl names the heap
#     file's addresses from the ELF files itself);
#   dump --format svg: XML (python3's xml.etree) with A's name in a <text>
#     and a <title>, the widest frame under "all" being A's chain;
#   profile top -i 200 -c 2: two tables, each headed and naming A first;
#     under script(1), a terminal, the screen is cleared before each;
#     SIGINT ends it with status 0; the process dying ends it with 3;
#   profile diff of two heap dumps --alloc, 1 s apart: A allocated the most
#     (4 MiB a round, B 512 KiB, C 1 MiB), so it comes first;
#   metrics: the profiler's counters as Prometheus counters
#     (hakmem_prof_stats_samples_total, ..._dropped_total) and gauges,
#     agreeing with hakctl get, and promtool check metrics finds nothing
#     to say about the hakmem_prof_ families (where promtool is installed).
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
cpid=
bgpids=
cleanup() {
  for p in $bgpids $cpid; do kill -9 "$p" 2>/dev/null; done
  cpid= bgpids=
  if [ -n "$tmp" ]; then
    if [ -n "$HAKMEM_REAL_KEEP" ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
  fi
  tmp=
}
TESTS="profile_dump_text profile_dump_svg profile_top_refreshes profile_top_tty_clears
profile_top_sigint profile_diff_live_alloc profile_metrics_counters profile_metrics_promtool
profile_top_dead_pid"
gate sh $TESTS
hakctl="${objroot}bin/hakctl"
child="${objroot}test/src/prof_child"
[ -x "$child" ] || fail_all "$child not built" $TESTS
hk() { $to "$hakctl" "$@"; }

env -u HAKMEM_CONF -u HAKMEM_MODE LD_PRELOAD="$lib" "$child" -d 90 >"$tmp/child.out" 2>&1 &
cpid=$!
i=0
until "$hakctl" -p "$cpid" get prof.active >/dev/null 2>&1 || [ $i -ge 100 ]; do
  sleep 0.1; i=$((i + 1))
done
hk -p "$cpid" profile start >"$tmp/start.out" 2>&1 ||
  fail_all "profile start: $(cat "$tmp/start.out")" $TESTS
sleep 1.5

# ---- dump --format text ----
hk -p "$cpid" profile dump --format text -n 3 >"$tmp/text.out" 2>"$tmp/text.err"
rc=$?
sed -n 1,12p "$tmp/text.out" | sed 's/^/# /'
# The first row: LIVE_BYTES BLOCKS SHARE FUNCTION; its frames follow.
row=$(awk '/^ *[0-9]+ +[0-9]+ +[0-9.]+% +[^ ]+$/ { print; exit }' "$tmp/text.out")
blocks=$(echo "$row" | awk '{ print $2 }')
if [ "$rc" = 0 ] && [ "$(echo "$row" | awk '{ print $4 }')" = prof_child_site_a ] &&
   awk -v b="$blocks" 'BEGIN { exit !(b > 65536 * 0.6 && b < 65536 * 1.4) }' &&
   grep -Eq '^ +#0 +prof_child_site_a$' "$tmp/text.out" && grep -Eq '^ +#1 +main$' "$tmp/text.out" &&
   grep -q '(total)$' "$tmp/text.out"; then
  pass profile_dump_text
else
  fail profile_dump_text "exit $rc, first row '$row': $(head -n 2 "$tmp/text.err" | tr '\n' '|')"
fi

# ---- dump --format svg ----
hk -p "$cpid" profile dump --format svg -o "$tmp/heap.svg" >"$tmp/svg.out" 2>&1
rc=$?
if ! command -v python3 >/dev/null 2>&1; then
  skip profile_dump_svg "python3 not installed"
else
  python3 - "$tmp/heap.svg" >"$tmp/svg.check" 2>&1 <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
frames = root.findall(f"{ns}g")
titles = [g.find(f"{ns}title").text for g in frames]
texts = [t.text for t in root.iter(f"{ns}text")]
assert any(t.startswith("prof_child_site_a (") for t in titles), titles
assert "prof_child_site_a" in texts, texts
rects = {g.find(f"{ns}title").text.split(" (")[0]: float(g.find(f"{ns}rect").get("width")) for g in frames}
assert rects["all"] > 1000, rects
assert rects["prof_child_site_a"] > rects.get("prof_child_site_b", 0), rects
print("ok", len(frames), "frames")
EOF
  if [ "$rc" = 0 ] && grep -q '^ok' "$tmp/svg.check"; then
    pass profile_dump_svg
  else
    fail profile_dump_svg "exit $rc: $(tail -n 2 "$tmp/svg.check" "$tmp/svg.out" | tr '\n' '|')"
  fi
fi

# ---- profile top -i ----
hk -p "$cpid" profile top -i 200 -c 2 -n 3 >"$tmp/top.out" 2>"$tmp/top.err"
rc=$?
sed 's/^/# /' "$tmp/top.out"
heads=$(grep -c "^pid $cpid .* live heap, every 200 ms$" "$tmp/top.out")
firsts=$(awk '/^ *LIVE_BYTES/ { getline; print $3 }' "$tmp/top.out" | sort -u)
if [ "$rc" = 0 ] && [ "$heads" = 2 ] && [ "$firsts" = prof_child_site_a ] && ! grep -q "$(printf '\033')" "$tmp/top.out"; then
  pass profile_top_refreshes
else
  fail profile_top_refreshes "exit $rc, $heads headings, first rows '$firsts': $(tr '\n' '|' <"$tmp/top.err")"
fi

if command -v script >/dev/null 2>&1; then
  $to script -qec "$hakctl -p $cpid profile top -i 200 -c 2" /dev/null >"$tmp/tty.out" 2>&1
  rc=$?
  clears=$(grep -o "$(printf '\033')\[H$(printf '\033')\[2J" "$tmp/tty.out" | wc -l)
  if [ "$rc" = 0 ] && [ "$clears" = 2 ] && grep -q '(^C quits)' "$tmp/tty.out"; then
    pass profile_top_tty_clears
  else
    fail profile_top_tty_clears "exit $rc, $clears screen clears: $(head -c 200 "$tmp/tty.out" | tr '\n\033' '|~')"
  fi
else
  skip profile_top_tty_clears "script(1) not installed (util-linux)"
fi

# wait_for_heading FILE: until a table is out (10 s at most).
wait_for_heading() {
  n=0
  until grep -q '^pid ' "$1" 2>/dev/null || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done
}
"$hakctl" -p "$cpid" profile top -i 200 >"$tmp/int.out" 2>&1 &
tpid=$!
bgpids="$tpid"
wait_for_heading "$tmp/int.out"
kill -INT "$tpid"
n=0
while kill -0 "$tpid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -9 "$tpid" 2>/dev/null
wait "$tpid"
rc=$?
bgpids=
if [ "$rc" = 0 ] && grep -q prof_child_site_a "$tmp/int.out"; then
  pass profile_top_sigint
else
  fail profile_top_sigint "exit $rc: $(tail -n 2 "$tmp/int.out" | tr '\n' '|')"
fi

# ---- diff of two live dumps ----
hk -p "$cpid" profile dump -o "$tmp/one.heap" >"$tmp/d1.out" 2>&1
sleep 1
hk -p "$cpid" profile dump -o "$tmp/two.heap" >"$tmp/d2.out" 2>&1
hk profile diff "$tmp/one.heap" "$tmp/two.heap" --alloc -n 3 >"$tmp/diff.out" 2>"$tmp/diff.err"
rc=$?
sed 's/^/# /' "$tmp/diff.out"
first=$(awk '/^ *GROWTH/ { getline; print $4; exit }' "$tmp/diff.out")
grow=$(awk '/^ *GROWTH/ { getline; print $1; exit }' "$tmp/diff.out")
if [ "$rc" = 0 ] && [ "$first" = prof_child_site_a ] && [ "${grow#+}" != "$grow" ]; then
  pass profile_diff_live_alloc
else
  fail profile_diff_live_alloc "exit $rc, first row '$first' growing '$grow': $(cat "$tmp/d1.out" "$tmp/diff.err" | tr '\n' '|')"
fi

# ---- metrics ----
hk -p "$cpid" metrics >"$tmp/metrics.txt" 2>"$tmp/metrics.err"
rc=$?
samples=$(hk -p "$cpid" get prof.stats.samples)
m_samples=$(awk '$1 == "hakmem_prof_stats_samples_total" { print $2 }' "$tmp/metrics.txt")
bad=""
[ "$rc" = 0 ] || bad="$bad; exit $rc"
for f in samples dropped; do
  grep -qx "# TYPE hakmem_prof_stats_${f}_total counter" "$tmp/metrics.txt" || bad="$bad; no counter hakmem_prof_stats_${f}_total"
done
for f in live_samples stacks; do
  grep -qx "# TYPE hakmem_prof_stats_$f gauge" "$tmp/metrics.txt" || bad="$bad; no gauge hakmem_prof_stats_$f"
done
grep -qx 'hakmem_prof_active 1' "$tmp/metrics.txt" || bad="$bad; hakmem_prof_active is not 1"
# The page is refreshed every 100 ms: the two reads are close, not equal.
awk -v a="$m_samples" -v b="$samples" 'BEGIN { exit !(a > 0 && b >= a && b - a < a) }' ||
  bad="$bad; samples: metrics '$m_samples', get '$samples'"
if [ -z "$bad" ]; then pass profile_metrics_counters; else fail profile_metrics_counters "${bad#; }"; fi
if command -v promtool >/dev/null 2>&1; then
  promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.out" 2>&1
  sed 's/^/# promtool: /' "$tmp/promtool.out"
  if grep -q 'hakmem_prof' "$tmp/promtool.out"; then
    fail profile_metrics_promtool "$(grep hakmem_prof "$tmp/promtool.out" | tr '\n' '|')"
  elif grep -Eqv 'abbreviated units|should not have "_count" suffix|^$' "$tmp/promtool.out"; then
    fail profile_metrics_promtool "$(tr '\n' '|' <"$tmp/promtool.out")"
  else
    pass profile_metrics_promtool
  fi
else
  skip profile_metrics_promtool "promtool not installed (apt-get install prometheus)"
fi

# ---- the process dies under profile top -i ----
"$hakctl" -p "$cpid" profile top -i 200 >"$tmp/dead.out" 2>"$tmp/dead.err" &
tpid=$!
bgpids="$tpid"
wait_for_heading "$tmp/dead.out"
kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null; cpid=
n=0
while kill -0 "$tpid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -9 "$tpid" 2>/dev/null
wait "$tpid"
rc=$?
bgpids=
if [ "$rc" = 3 ] && grep -q 'exited' "$tmp/dead.err"; then
  pass profile_top_dead_pid
else
  fail profile_top_dead_pid "exit $rc: $(tr '\n' '|' <"$tmp/dead.err")"
fi
finish
