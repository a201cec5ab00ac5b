#!/bin/sh
# bench/compare.py --load: under "pin" a run may use one CPU only (its
# threads share it), under "none" every CPU this shell may use; under "hog"
# one busy process at nice 19 per CPU runs while the benchmarks do, and none
# is left after.  A fake benchmark (a shell script printing the result line
# compare.py parses) reports the CPUs it was allowed; runs no allocator.
#
# Environment (from test/run-tests.sh): HAKMEM_SRCROOT.  Ends with
# "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
srcroot=${HAKMEM_SRCROOT:-./}
TESTS="load_pin_confines_a_run_to_one_cpu load_none_leaves_every_cpu load_hog_runs_niced_hogs_and_stops_them load_hog_shares_the_scheduling_group_of_the_runs load_is_named_in_the_report"
command -v python3 >/dev/null 2>&1 || skip_all "python3 not installed" $TESTS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-load.XXXXXX") || fail_all "mktemp failed" $TESTS
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM

# The fake benchmark: its allowed CPUs and, under hog, the nice values of
# the processes named in HOGS_FILE (written by the driver below).
cat >"$tmp/fake" <<'EOF'
#!/bin/sh
cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
group=$(cut -d' ' -f1 /proc/self/autogroup 2>/dev/null || echo none)
echo "fake secs=0.01 cpus=$cpus group=${group:-none} verified=ok"
EOF
chmod +x "$tmp/fake"

# driver.py SRCROOT LOAD FAKE: runs FAKE once under LOAD as compare.py does
# and prints "cpus=LIST hogs=N nices=N,N.. alive_after=N".
cat >"$tmp/driver.py" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "bench"))
import compare
load, fake = sys.argv[2], sys.argv[3]
hogs = compare.start_hogs(load)
try:
    nices, groups = [], []
    for h in hogs:
        with open("/proc/%d/stat" % h.pid) as f:
            nices.append(int(f.read().rsplit(")", 1)[1].split()[16]))
        try:
            with open("/proc/%d/autogroup" % h.pid) as f:
                groups.append(f.read().split())  # ["/autogroup-N", "nice", "K"]
        except OSError:
            groups.append(["none", "nice", "0"])
    res = compare.run_one(fake, [], {}, 10, compare.load_cpus(load))
finally:
    compare.stop_hogs(hogs)
alive = sum(1 for h in hogs if os.path.exists("/proc/%d" % h.pid))
# A hog weighs as a nice 19 task beside the run if it shares its
# scheduling group or its group is itself at nice 19.
run_group = res["kv"].get("group", "none")
print("ok=%s cpus=%s hogs=%d nices=%s alive_after=%d heavy_groups=%d" % (
    res["ok"], res["kv"].get("cpus"), len(hogs), ",".join(map(str, nices)), alive,
    sum(1 for g in groups if g[0] != run_group and g[-1] != "19")))
EOF

ncpu=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')
all=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)

out=$(python3 "$tmp/driver.py" "$srcroot" pin "$tmp/fake" 2>&1)
case "$out" in
  "ok=True cpus="*" hogs=0 "*)
    c=$(echo "$out" | sed 's/.*cpus=\([^ ]*\).*/\1/')
    case "$c" in
      *[-,]*|"") fail load_pin_confines_a_run_to_one_cpu "allowed CPUs $c, not one ($out)" ;;
      *) pass load_pin_confines_a_run_to_one_cpu ;;
    esac ;;
  *) fail load_pin_confines_a_run_to_one_cpu "$out" ;;
esac

out=$(python3 "$tmp/driver.py" "$srcroot" none "$tmp/fake" 2>&1)
case "$out" in
  "ok=True cpus=$all hogs=0 "*) pass load_none_leaves_every_cpu ;;
  *) fail load_none_leaves_every_cpu "want cpus=$all: $out" ;;
esac

out=$(python3 "$tmp/driver.py" "$srcroot" hog "$tmp/fake" 2>&1)
n=$(python3 -c 'import os; print(os.cpu_count() or 1)')
want_nices=$(python3 -c "print(','.join(['19'] * $n))")
case "$out" in
  "ok=True cpus=$all hogs=$n nices=$want_nices alive_after=0 "*) pass load_hog_runs_niced_hogs_and_stops_them ;;
  *) fail load_hog_runs_niced_hogs_and_stops_them "want $n hogs at nice 19, none after: $out" ;;
esac
# Nice values weigh tasks only within one scheduling group: where
# autogroups are on, a hog in another session than the run (each run has a
# session of its own) takes a group's full share of each CPU whatever its
# nice value, unless its group is at nice 19 too; the "nice 19" load had
# halved every run's CPU time.
case "$out" in
  *" heavy_groups=0") pass load_hog_shares_the_scheduling_group_of_the_runs ;;
  *) fail load_hog_shares_the_scheduling_group_of_the_runs "hogs in another autogroup than the runs: $out" ;;
esac

# The report names the load (from saved results: runs nothing).
if python3 - "$srcroot" "$tmp" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "bench"))
import compare
meta = {"base": "glibc", "machine": "m", "date": "d", "command": "c", "cwd": "/",
        "runs": 1, "scale": 1, "timeout": 1, "load_before": 0, "load_after": 0,
        "elapsed": 1, "notes": {}, "load": compare.LOADS["pin"]}
path = os.path.join(sys.argv[2], "p.md")
compare.write_doc(path, "", meta)
text = open(path).read()
sys.exit(0 if "- load: pin: every run confined to one CPU" in text else 1)
EOF
then pass load_is_named_in_the_report
else fail load_is_named_in_the_report "no '- load: pin' line in the written report"
fi
echo "# CPUs: $ncpu allowed ($all)"
finish
