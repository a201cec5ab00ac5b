#!/bin/sh
# The heap profiler from outside (hakctl profile): test/src/prof_child runs
# under LD_PRELOAD=libhakmem.so with no HAKMEM_CONF at all; hakctl starts
# profiling in it, profile top names its site A (64 MiB live of its ~72)
# first, profile dump writes the heap_v2 format and folded stacks, profile
# stop stops sampling (the sample count stays put), a dead pid exits 3.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
cpid=
cleanup() {
  [ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
  cpid=
  if [ -n "$tmp" ]; then
    if [ -n "$HAKMEM_REAL_KEEP" ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
  fi
  tmp=
}
TESTS="profile_start_live profile_top_names_site_a profile_dump_pprof profile_dump_folded
profile_stop_stops_sampling profile_dead_pid"
gate sh $TESTS
hakctl="${objroot}bin/hakctl"
child="${objroot}test/src/prof_child"
[ -x "$child" ] || fail_all "$child not built" $TESTS

env -u HAKMEM_CONF -u HAKMEM_MODE LD_PRELOAD="$lib" "$child" -d 60 >"$tmp/child.out" 2>&1 &
cpid=$!
# The page appears after stats_page_delay_ms (1 s by default).
i=0
until "$hakctl" -p "$cpid" get prof.active >"$tmp/get.out" 2>&1 || [ $i -ge 100 ]; do
  sleep 0.1; i=$((i + 1))
done

if "$hakctl" -p "$cpid" profile start >"$tmp/start.out" 2>&1 &&
   [ "$("$hakctl" -p "$cpid" get prof.active)" = true ]; then
  pass profile_start_live
else
  fail profile_start_live "$(cat "$tmp/get.out" "$tmp/start.out" | head -n 3)"
fi

sleep 1.5
"$hakctl" -p "$cpid" profile top -n 5 >"$tmp/top.out" 2>&1
first=$(awk 'NR == 2 { print $3 }' "$tmp/top.out")
if [ "$first" = prof_child_site_a ]; then
  pass profile_top_names_site_a
else
  fail profile_top_names_site_a "first row names '$first': $(head -n 4 "$tmp/top.out" | tr '\n' '|')"
fi
sed 's/^/# /' "$tmp/top.out"

"$hakctl" -p "$cpid" profile dump -o "$tmp/heap.prof" >"$tmp/dump.out" 2>&1
if head -n 1 "$tmp/heap.prof" 2>/dev/null | grep -Eqx 'heap profile: [0-9]+: [0-9]+ \[[0-9]+: [0-9]+\] @ heap_v2/524288' &&
   grep -Eq '^[0-9]+: [0-9]+ \[[0-9]+: [0-9]+\] @ 0x' "$tmp/heap.prof" && grep -qx 'MAPPED_LIBRARIES:' "$tmp/heap.prof" &&
   [ "$(stat -c %a "$tmp/heap.prof")" = 600 ]; then
  pass profile_dump_pprof
else
  fail profile_dump_pprof "$(head -n 3 "$tmp/heap.prof" "$tmp/dump.out" 2>&1 | tr '\n' '|')"
fi

"$hakctl" -p "$cpid" profile dump --format folded >"$tmp/folded.out" 2>&1
if grep -q 'prof_child_site_a [0-9]' "$tmp/folded.out" && grep -q 'prof_child_site_b [0-9]' "$tmp/folded.out"; then
  pass profile_dump_folded
else
  fail profile_dump_folded "$(head -n 3 "$tmp/folded.out" | tr '\n' '|')"
fi

"$hakctl" -p "$cpid" profile stop >"$tmp/stop.out" 2>&1
sleep 0.3
s1=$("$hakctl" -p "$cpid" get prof.stats.samples)
sleep 0.5
s2=$("$hakctl" -p "$cpid" get prof.stats.samples)
if [ -n "$s1" ] && [ "$s1" = "$s2" ] && [ "$("$hakctl" -p "$cpid" get prof.active)" = false ]; then
  pass profile_stop_stops_sampling
else
  fail profile_stop_stops_sampling "samples $s1 then $s2; $(cat "$tmp/stop.out")"
fi

kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null; dead=$cpid; cpid=
"$hakctl" -p "$dead" profile top >/dev/null 2>&1
rc=$?
if [ "$rc" = 3 ]; then pass profile_dead_pid; else fail profile_dead_pid "exit status $rc"; fi
finish
