#!/usr/bin/env python3
"""A/B wall time of two builds of an allocator over the benchmark suite.

    python3 bench/ab.py [OBJROOT] A=LIB.so B=LIB.so [--runs N] [--only ...]
                        [--threads ...] [--scale S] [--seed N]
                        [--conf-a CONF] [--conf-b CONF]

A and B may be the same library run with two HAKMEM_CONF values (what
profiling costs: --conf-b prof:1).

Made to measure a small difference (what the always-on checks cost: A a
--disable-checks build, B the normal one) on a noisy machine.  Every
configuration of bench/compare's suite runs N times as a pair: A then B,
or B then A on every other run, so that both see the same moment of the
machine.  Per configuration the figure is the median of the N paired
ratios B/A; the suite's figure is their geometric mean, with a 95%
bootstrap interval (the pairs of each configuration resampled with
replacement, 2000 times).  Benchmarks and their time (`secs=`) are
bench/compare's.  Prints a markdown table; exit status 1 when a run failed.
"""

import argparse
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the suite, the runner, the binaries)


def parse_lib(spec):
    label, sep, path = spec.partition("=")
    if not sep or not label or not os.path.exists(path):
        sys.exit("ab: expected LABEL=LIB.so with an existing LIB.so, got %r" % spec)
    return label, os.path.abspath(path)


def suite_configs(only, threads):
    configs = []
    for b, ts, _ in compare.BENCHES:
        if only and b not in only:
            continue
        for t in ([1] if b == "micro" else (threads or ts)):
            configs.append((b, t))
    return configs


def run_pairs(exe, args, libs, runs, timeout):
    """runs paired runs; returns the ratios B/A and the failures' reasons.
    libs: (label, library, HAKMEM_CONF or None) for A and B."""
    ratios, failures = [], []
    for r in range(runs):
        order = libs if r % 2 == 0 else libs[::-1]
        secs = {}
        for label, lib, conf in order:
            env = {"LD_PRELOAD": lib}
            if conf is not None:
                env["HAKMEM_CONF"] = conf
            res = compare.run_one(exe, args, env, timeout)
            if res["ok"]:
                secs[label] = res["secs"]
            else:
                failures.append("%s: %s" % (label, res["why"]))
        a, b = libs[0][0], libs[1][0]
        if a in secs and b in secs and secs[a] > 0:
            ratios.append(secs[b] / secs[a])
    return ratios, failures


def bootstrap(per_config, reps, rng):
    """95% interval of the geometric mean of per-configuration medians."""
    stats = []
    for _ in range(reps):
        meds = [statistics.median(rng.choices(rs, k=len(rs))) for rs in per_config]
        stats.append(compare.geomean(meds))
    stats.sort()
    return stats[int(0.025 * reps)], stats[int(0.975 * reps) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("args", nargs="+", help="[OBJROOT] A=LIB.so B=LIB.so")
    ap.add_argument("--runs", type=int, default=11, help="pairs per configuration (11)")
    ap.add_argument("--only", help="comma-separated benchmarks")
    ap.add_argument("--threads", help="comma-separated thread counts")
    ap.add_argument("--scale", type=float, default=1.0, help="work scale (-s)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1, help="bootstrap seed")
    ap.add_argument("--conf-a", help="HAKMEM_CONF for A")
    ap.add_argument("--conf-b", help="HAKMEM_CONF for B")
    opts = ap.parse_args()
    specs = [a for a in opts.args if "=" in a]
    roots = [a for a in opts.args if "=" not in a]
    if len(specs) != 2 or len(roots) > 1:
        sys.exit("ab: give [OBJROOT] and exactly two LABEL=LIB.so")
    objroot = (roots[0] if roots else compare.SRCROOT).rstrip("/") + "/"
    libs = [parse_lib(s) + (c,) for s, c in zip(specs, (opts.conf_a, opts.conf_b))]
    only = opts.only.split(",") if opts.only else None
    threads = [int(t) for t in opts.threads.split(",")] if opts.threads else None
    configs = suite_configs(only, threads)
    if not configs:
        sys.exit("ab: no configuration to run")

    (a, _, _), (b, _, _) = libs
    print("| benchmark | threads | runs | %s / %s, median of paired ratios | min-max |" % (b, a))
    print("|---|--:|--:|--:|--:|")
    per_config, nfail = [], 0
    for bench, t in configs:
        exe = compare.ensure_binary(objroot, bench)
        args = ["-t", str(t), "-s", "%g" % opts.scale]
        ratios, failures = run_pairs(exe, args, libs, opts.runs, opts.timeout)
        for why in failures:
            compare.log("ab: FAIL %s -t %d %s" % (bench, t, why))
        nfail += len(failures)
        if not ratios:
            continue
        per_config.append(ratios)
        print("| %s | %d | %d | ×%.3f | %.3f-%.3f |" % (
            bench, t, len(ratios), statistics.median(ratios), min(ratios), max(ratios)),
            flush=True)
    if per_config:
        g = compare.geomean([statistics.median(rs) for rs in per_config])
        lo, hi = bootstrap(per_config, 2000, random.Random(opts.seed))
        print("| **geometric mean** | | | **×%.4f** | 95%%: %.4f-%.4f |" % (g, lo, hi))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
