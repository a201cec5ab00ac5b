#!/bin/sh
# bench/charts.py and bench/compare.py --from-json on a tiny synthetic
# results file: both SVG charts drawn, with the allocators' and the
# benchmarks' names in them, byte for byte the same when drawn again;
# a table of medians without peers; the Markdown rebuilt from the JSON with
# the charts above its tables; and no chart, but no failure either, where
# no interpreter has matplotlib.  Runs no benchmark, needs no build.
#
# Environment (from test/run-tests.sh): HAKMEM_SRCROOT.  The chart tests
# are skipped when neither python3 nor /usr/bin/python3 has matplotlib
# (Debian: python3-matplotlib).  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
srcroot=${HAKMEM_SRCROOT:-./}
TESTS="charts_svg charts_deterministic charts_medians compare_from_json charts_without_matplotlib"
command -v python3 >/dev/null 2>&1 || skip_all "python3 not installed" $TESTS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-charts.XXXXXX") || fail_all "mktemp failed" $TESTS
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM

mpl=""
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import matplotlib' 2>/dev/null; then
    mpl=$py; break
  fi
done
echo "# python3 with matplotlib: ${mpl:-none}"

# Two peers and two hakmem builds; larson at 1 and 8 threads, micro; one
# failed cell; a 50x spread (log scale).
cat >"$tmp/syn-results.json" <<'EOF'
{"schema": "hakmem-bench-results/1",
 "allocs": ["glibc", "mimalloc", "hakmem", "hakmem-fast"],
 "peers": ["glibc", "mimalloc"], "base": "mimalloc", "target": "hakmem",
 "meta": {"base": "mimalloc", "machine": "synthetic", "date": "2000-01-01 00:00 UTC",
          "command": "test", "cwd": "/", "runs": 2, "scale": 1, "timeout": 10,
          "load_before": 0.0, "load_after": 0.0, "elapsed": 1.0,
          "notes": {"glibc": "synthetic"}},
 "configs": [["larson", 1], ["larson", 8], ["micro", 1]],
 "cells": {
  "larson/1": {"glibc": [{"ok": true, "secs": 1.0, "rss_kib": 2048, "wall": 1.1, "kv": {}},
                         {"ok": true, "secs": 1.2, "rss_kib": 2048, "wall": 1.3, "kv": {}}],
               "mimalloc": [{"ok": true, "secs": 0.5, "rss_kib": 4096, "wall": 0.6, "kv": {}}],
               "hakmem": [{"ok": true, "secs": 0.6, "rss_kib": 3072, "wall": 0.7, "kv": {}}],
               "hakmem-fast": [{"ok": true, "secs": 0.55, "rss_kib": 3072, "wall": 0.6, "kv": {}}]},
  "larson/8": {"glibc": [{"ok": true, "secs": 5.0, "rss_kib": 9000, "wall": 5.1, "kv": {}}],
               "mimalloc": [{"ok": false, "why": "exit status 1", "rss_kib": 0, "wall": 0.1, "kv": {}}],
               "hakmem": [{"ok": true, "secs": 0.1, "rss_kib": 8000, "wall": 0.2, "kv": {}}],
               "hakmem-fast": [{"ok": true, "secs": 0.12, "rss_kib": 8100, "wall": 0.2, "kv": {}}]},
  "micro/1": {"glibc": [{"ok": true, "secs": 0.3, "rss_kib": 1500, "wall": 0.3, "kv": {}}],
              "mimalloc": [{"ok": true, "secs": 0.2, "rss_kib": 1400, "wall": 0.2, "kv": {}}],
              "hakmem": [{"ok": true, "secs": 0.25, "rss_kib": 1600, "wall": 0.3, "kv": {}}],
              "hakmem-fast": [{"ok": true, "secs": 0.24, "rss_kib": 1600, "wall": 0.3, "kv": {}}]}},
 "extra_report": ""}
EOF

# has_names FILE NAME...: every NAME in FILE; prints the missing ones.
has_names() {
  f=$1; shift; miss=""
  for n in "$@"; do grep -qF -- "$n" "$f" || miss="$miss $n"; done
  [ -z "$miss" ] || { echo "missing in $f:$miss"; return 1; }
}

if [ -z "$mpl" ]; then
  for t in charts_svg charts_deterministic charts_medians; do
    skip $t "no python3 with matplotlib (apt-get install python3-matplotlib)"
  done
else
  if "$mpl" "${srcroot}bench/charts.py" "$tmp/syn-results.json" >"$tmp/out1" 2>"$tmp/err1" &&
     [ -s "$tmp/syn-time.svg" ] && [ -s "$tmp/syn-rss.svg" ]; then
    why=""
    for s in time rss; do
      r=$(has_names "$tmp/syn-$s.svg" glibc mimalloc hakmem hakmem-fast \
            "larson, 1 thread" "larson, 8 threads" "micro, 1 thread" "best peer" "failed") || why="$why $r"
    done
    grep -q '<dc:date>' "$tmp/syn-time.svg" && why="$why; a date in the SVG"
    if [ -z "$why" ]; then pass charts_svg; else fail charts_svg "$why"; fi
  else
    fail charts_svg "charts.py: $(cat "$tmp/out1" "$tmp/err1" | tail -n 3)"
  fi
  mkdir "$tmp/again"
  cp "$tmp/syn-results.json" "$tmp/again/"
  "$mpl" "${srcroot}bench/charts.py" "$tmp/again/syn-results.json" >/dev/null 2>&1
  if cmp -s "$tmp/syn-time.svg" "$tmp/again/syn-time.svg" &&
     cmp -s "$tmp/syn-rss.svg" "$tmp/again/syn-rss.svg"; then
    pass charts_deterministic
  else
    fail charts_deterministic "the SVGs differ when drawn again from the same results"
  fi

  cat >"$tmp/med.json" <<'EOF'
{"schema": "hakmem-bench-medians/1", "allocs": ["hakmem", "hakmem-learning"],
 "peers": [], "base": "hakmem", "note": "synthetic medians",
 "rows": [{"bench": "hotclass", "threads": 1, "time": {"hakmem": 1.8, "hakmem-learning": 1.4},
           "rss": {"hakmem": 3.2, "hakmem-learning": 4.3}},
          {"bench": "hugeset", "threads": 2, "time": {"hakmem": 1.7, "hakmem-learning": 0.2},
           "rss": {"hakmem": 193.6, "hakmem-learning": 193.9}}]}
EOF
  if "$mpl" "${srcroot}bench/charts.py" "$tmp/med.json" --prefix "$tmp/learning" >"$tmp/out2" 2>&1 &&
     r=$(has_names "$tmp/learning-time.svg" hakmem-learning "hotclass, 1 thread" "hugeset, 2 threads") &&
     r=$(has_names "$tmp/learning-rss.svg" hakmem-learning "synthetic medians"); then
    pass charts_medians
  else
    fail charts_medians "${r:-$(tail -n 3 "$tmp/out2")}"
  fi
fi

# compare.py --from-json under the default python3 (which may lack
# matplotlib: the charts then come from another interpreter, or not at all).
if python3 "${srcroot}bench/compare.py" --from-json "$tmp/syn-results.json" \
     --out "$tmp/md/perf.md" >"$tmp/out3" 2>"$tmp/err3"; then
  why=""
  r=$(has_names "$tmp/md/perf.md" "| larson | 8 |" "| micro | 1 |" hakmem-fast "× best peer") || why="$r"
  [ -s "$tmp/md/perf-results.json" ] || why="$why; no perf-results.json beside it"
  if [ -n "$mpl" ]; then
    [ -s "$tmp/md/perf-time.svg" ] && [ -s "$tmp/md/perf-rss.svg" ] || why="$why; no charts"
    grep -q '^!\[time × best peer, per benchmark\](perf-time.svg)$' "$tmp/md/perf.md" &&
      grep -q '^!\[peak RSS × best peer, per benchmark\](perf-rss.svg)$' "$tmp/md/perf.md" ||
      why="$why; no chart links in the Markdown"
    # the charts come before the first table
    c=$(grep -n 'perf-time.svg' "$tmp/md/perf.md" | head -n 1 | cut -d: -f1)
    t=$(grep -n '^### Time' "$tmp/md/perf.md" | head -n 1 | cut -d: -f1)
    [ -n "$c" ] && [ -n "$t" ] && [ "$c" -lt "$t" ] || why="$why; charts not above the tables"
  fi
  if [ -z "$why" ]; then pass compare_from_json; else fail compare_from_json "$why"; fi
else
  fail compare_from_json "exit status $?: $(tail -n 3 "$tmp/err3")"
fi

# No matplotlib anywhere: make_charts says so and returns nothing.
cat >"$tmp/nompl.py" <<'EOF'
import sys
sys.modules["matplotlib"] = None            # import matplotlib -> ImportError
sys.path.insert(0, sys.argv[1])
import charts
charts.other_pythons = lambda: []
msgs = []
got = charts.make_charts(sys.argv[2], sys.argv[3], log=msgs.append)
print("got=%r msgs=%r" % (got, msgs))
sys.exit(0 if got == [] and msgs and "python3-matplotlib" in msgs[0] else 1)
EOF
if python3 "$tmp/nompl.py" "${srcroot}bench" "$tmp/syn-results.json" "$tmp/nompl" >"$tmp/out4" 2>&1 &&
   [ ! -e "$tmp/nompl-time.svg" ]; then
  pass charts_without_matplotlib
else
  fail charts_without_matplotlib "$(tail -n 2 "$tmp/out4")"
fi
finish
