#!/bin/sh
# make demo: the bundled workload (bench/demo) under LD_PRELOAD=libhakmem.so,
# looked into from outside with hakctl while it runs: ps, a per-class
# statistic, a few seconds of watch, a mode change the workload itself
# reports, the Prometheus metrics; then the workload is stopped (it finishes
# its round, prints its report and hakmem's statistics, and its stats page
# goes with it).
#
# Usage: sh bench/demo.sh [OBJROOT]   (OBJROOT: the build directory, default .)
objroot=${1:-./}
case "$objroot" in */) ;; *) objroot="$objroot/" ;; esac
lib="${objroot}lib/libhakmem.so"
hakctl="${objroot}bin/hakctl"
demo="${objroot}bench/demo"
for f in "$lib" "$hakctl" "$demo"; do
  [ -e "$f" ] || { echo "demo.sh: $f is missing (run make first)" >&2; exit 1; }
done
out=$(mktemp "${TMPDIR:-/tmp}/hakmem-demo.XXXXXX") || exit 1
conf="stats_page_delay_ms:500,background_thread:1"

show() { echo; echo "\$ $*"; "$@"; }
cleanup() { [ -n "$dpid" ] && kill "$dpid" 2>/dev/null; rm -f "$out"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "== bench/demo -d 30 -s 0.25 under LD_PRELOAD=$lib"
echo "   HAKMEM_CONF=$conf (the default mode, balanced, publishes the stats page;"
echo "   the background thread keeps it fresh and answers hakctl set at once)"
HAKMEM_CONF=$conf LD_PRELOAD="$lib" "$demo" -d 30 -s 0.25 >"$out" 2>&1 &
dpid=$!

# The page appears after stats_page_delay_ms.
n=0
until "$hakctl" -p "$dpid" get version >/dev/null 2>&1; do
  n=$((n + 1))
  if [ $n -gt 100 ] || ! kill -0 "$dpid" 2>/dev/null; then
    echo "demo.sh: no stats page from pid $dpid after 10 s" >&2
    cat "$out" >&2
    exit 1
  fi
  sleep 0.1
done

show "$hakctl" ps
show "$hakctl" -p "$dpid" get tiny.class.3.stats
show "$hakctl" -p "$dpid" get --human stats.allocated stats.resident
show "$hakctl" -p "$dpid" watch tiny.class.3.stats.nmalloc stats.allocated -i 500 -n 6
show "$hakctl" -p "$dpid" get config.mode
rounds_before=$(grep -c '^demo: round' "$out")
show "$hakctl" -p "$dpid" set config.mode fast
echo
echo "# the workload's own view (it reads config.mode through hak_ctl after each round):"
n=0
while [ "$(grep -c '^demo: round' "$out")" -le "$rounds_before" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
grep '^demo: round' "$out" | tail -n 3
show "$hakctl" -p "$dpid" get config.mode opt.mode
echo
echo "\$ $hakctl -p $dpid metrics    # a few of its lines:"
"$hakctl" -p "$dpid" metrics >"$out.metrics"
grep -E '^(# (HELP|TYPE) )?hakmem_(stats_allocated|config_mode_info|class_stats_nmalloc_total)( |\{value|\{tier="tiny",class="[0-3]")' \
  "$out.metrics"
echo "... ($(wc -l <"$out.metrics") lines; hakctl metrics --all and hakctl serve cover every process)"
rm -f "$out.metrics"

echo
echo "== stopping the workload (SIGTERM: it finishes its round and reports)"
kill -TERM "$dpid"
wait "$dpid"
rc=$?
dpid=
cat "$out"
show "$hakctl" ps
exit $rc
