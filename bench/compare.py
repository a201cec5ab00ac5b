#!/usr/bin/env python3
"""Runs hakmem's benchmarks against glibc and the distribution's allocators.

    sh bench/compare [OBJROOT] [--quick] [--only NAME,...] [--allocs A,...]
                     [--runs N] [--real | --no-real]

Every benchmark binary (OBJROOT/bench/NAME, built by `make benches`; missing
ones are compiled here with the Makefile's flags) runs under each allocator,
interleaved -- A B C D E, then B C D E A, ... -- BENCH_RUNS times (default
5) at each thread count.  The peers are loaded with LD_PRELOAD:

    glibc     the C library's own malloc (no preload)
    jemalloc  libjemalloc.so.2          (Debian/Ubuntu: libjemalloc2)
    mimalloc  libmimalloc.so.2          (libmimalloc2.0)
    tcmalloc  libtcmalloc_minimal.so.4  (libtcmalloc-minimal4)
    mimalloc3 mimalloc 3.4.3 \  built from the release archives in shared/peers
    snmalloc  snmalloc 0.7.5 /  by its build.sh (cmake), once, into OBJROOT/bench/peers
    hakmem    OBJROOT/lib/libhakmem.so  (copied aside first, so a rebuild
              during the run cannot mix two versions)
    hakmem-MODE  hakmem with HAKMEM_MODE=MODE (e.g. hakmem-fast), on request
    LABEL=LIB    any other build preloaded under its own label, e.g.
              nochecks=/tmp/nochk/lib/libhakmem.so (a --disable-checks build)

A missing peer is installed with apt-get when running as root, else skipped.
A full run ends with real programs under each allocator (bench/real.py:
python3, sqlite3, gcc, redis where installed; at most 3 runs each); --real
adds them to a partial run, --no-real leaves them out.
Time is the benchmark's own measured time (its `secs=`, which leaves out
process start-up and exit); peak RSS is the VmHWM the benchmark reads from
/proc/self/status before exiting (its `peak_rss_kib=`).  Not wait4()'s
ru_maxrss: Linux carries the forking parent's high-water mark over exec into
the child's, which puts a floor of this script's own size (~20 MiB) under
every figure; ru_maxrss is only the fallback.
Medians, min-max spreads, ratios to mimalloc and geometric means are printed
as markdown, with a column "× best peer": hakmem's figure over the lowest of
the peers' (every allocator but hakmem's own builds, glibc included), and a
summary of that ratio (geometric mean, worst rows), and, for a full run, written to doc/PERFORMANCE.md.
Beside the Markdown it saves every run as JSON (doc/perf-results.json; for
--out DIR/NAME.md, DIR/NAME-results.json) and draws two charts from it with
bench/charts.py (doc/perf-time.svg, doc/perf-rss.svg: each allocator's median
over the best peer's, per benchmark), shown above the tables; the charts need
matplotlib (python3-matplotlib), are skipped with a message without it, and
never fail the run.  --from-json FILE rebuilds the Markdown and the charts
from saved results without running anything.  Exit status: 0, or 1 when any
run failed (crash, non-zero exit, verified!=ok, timeout).
Python 3.7+ standard library only (matplotlib for the charts, optional).
"""

import argparse
import datetime
import glob
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRCROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, thread counts, extra figures worth a table: (result key, label)
BENCHES = [
    ("larson", [1, 2, 8], []),
    ("prodcons", [2, 8], []),
    ("mixed", [1, 2, 8], []),
    ("micro", [1], [("ns_pair_%d" % s, "ns/pair, %d B pair loop" % s)
                    for s in (16, 64, 512, 4096, 65536)]
                   + [("ns_batch_%d" % s, "ns/pair, %d B batch of 1000" % s)
                      for s in (16, 64, 512, 4096, 65536)]),
    ("falseshare", [1, 2, 8], []),
    ("huge", [1, 2], [("us_per_iter_2m", "us per 2 MiB iteration"),
                      ("us_per_iter_8m", "us per 8 MiB iteration")]),
    ("realloc", [1, 2], [("doubling_secs", "s doubling to 64 MiB"),
                         ("increment_secs", "s growing by appends")]),
    ("threadchurn", [1, 2, 8], []),
    ("frag", [1, 2], [("after_free_kib", "KiB RSS after freeing 90%"),
                      ("final_kib", "KiB RSS after churn + 1.5 s idle")]),
    ("hotclass", [1, 2], [("ns_pair_512", "ns/pair, 512 B batches of 2048"),
                          ("ns_pair_4k", "ns/pair, 4 KiB batches of 256"),
                          ("ns_pair_48k", "ns/pair, 48 KiB batches of 32")]),
    ("hugeset", [1, 2], [("us_per_block", "us per 8 MiB block, 12 live")]),
    # the shapes where an independent suite found hakmem far behind the best
    # peer (issue 16)
    ("larson_live", [2, 8], []),
    ("threadrounds", [2], []),
    ("prodcons_batch", [2], []),
    ("interp", [1], []),
    ("largerand", [1], []),
    ("xthread32", [32], []),
    ("bigheap", [1], [("ns_op_%dm" % m, "ns/op churn, %s live" % l)
                      for m, l in ((1, "1 MiB"), (16, "16 MiB"), (1024, "1 GiB"))]
                     + [("ns_alloc_1024m", "ns/alloc growing to 1 GiB")]
                     + [("rss_live_%dm" % m, "RSS / live, %s live" % l)
                        for m, l in ((1, "1 MiB"), (16, "16 MiB"), (256, "256 MiB"),
                                     (1024, "1 GiB"))]),
]

DESCRIPTIONS = {
    "larson": "server churn: windows of live 8-1000 B objects, random "
              "replacement, 1 in 5 objects handed to another thread to free",
    "prodcons": "half the threads allocate 16-512 B, the other half free "
                "them (lock-free rings): every free is remote",
    "mixed": "random sizes, 85% tiny / 14% mid / 1% large (to 1 MiB), "
             "random live set of 4000 slots, pages touched",
    "micro": "single-thread malloc+free pairs and batches of 1000, "
             "16 B - 64 KiB",
    "falseshare": "cache-scratch: small objects written many times; "
                  "objects passed between threads",
    "huge": "2 MiB and 8 MiB allocate / touch every page / free",
    "realloc": "vectors doubled 16 B -> 64 MiB, strings grown by "
               "1-64 B appends",
    "threadchurn": "thousands of short-lived threads; their objects freed "
                   "after they exit",
    "frag": "200 MiB mixed live set, 90% freed at random, churn with "
            "other sizes, 1.5 s idle: peak and final RSS",
    "hotclass": "batches of one size (512 B x 2048, 4 KiB x 256, 48 KiB x 32) "
                "allocated then freed: a hot class that overflows a small "
                "thread cache",
    "hugeset": "12 live 8 MiB blocks per thread allocated, touched, freed, "
               "repeated: a huge working set beyond a 64 MiB cache",
    "larson_live": "larson with 5000 live 8-1000 B chunks per thread, random "
                   "replacement, each thread's array handed to the next thread "
                   "every round: most frees remote, a live set that never drains",
    "threadrounds": "2 new threads every round, each allocating, touching and "
                    "freeing 20000 blocks of 16-512 B and 100 of 4-64 KiB, "
                    "then exiting",
    "prodcons_batch": "64 B objects from producers to consumers, which free "
                      "them in batches of 1000",
    "interp": "an interpreter's mix: LIFO temporaries of 16-128 B dying young, "
              "1 in 64 allocations kept in a table of 20000 long-lived objects",
    "largerand": "random 64 KiB-1 MiB blocks, up to 64 live, every page written",
    "xthread32": "32 threads (16 a core here) sending every 32-256 B object to a "
                 "random other thread's queue to be freed",
    "bigheap": "live small objects grown x4 a step from 1 MiB to 1 GiB "
               "(`bench/bigheap -m 8192` for 8 GiB), random churn at each step: "
               "time per operation and RSS / live bytes should stay flat",
}

READING_NOTES = (
    "Reading the tables: a ratio is only as good as the spread beside it.  On a "
    "busy or virtualised machine (page faults are expensive under a hypervisor) "
    "rerun with more runs (`BENCH_RUNS=9`) before trusting a difference under "
    "about 1.3×.  The peers are the distribution's builds, not upstream releases "
    "tuned for speed: Debian's mimalloc 2.0.9 spends about 90 instructions in "
    "free() under callgrind.  jemalloc 5.3 with its default options purges a "
    "freed 8 MiB block at once, so its 8 MiB `huge` figure measures page "
    "faults (`MALLOC_CONF=dirty_decay_ms:-1` makes it keep them).")

PEERS = {
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "mimalloc": ("libmimalloc.so.2", "libmimalloc2.0"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
}
# Built from the release archives in ../shared/peers (build.sh, cmake) into
# OBJROOT/bench/peers, once: label -> library built there.
BUILT_PEERS = {
    "mimalloc3": "libmimalloc3.so",     # mimalloc 3.4.3
    "snmalloc": "libsnmalloc.so",       # snmalloc 0.7.5
}
DEFAULT_ALLOCS = ["glibc", "jemalloc", "mimalloc", "mimalloc3", "snmalloc",
                  "tcmalloc", "hakmem"]
LIB_DIRS = (glob.glob("/usr/lib/*-linux-gnu") + glob.glob("/lib/*-linux-gnu")
            + ["/usr/lib64", "/usr/lib", "/usr/local/lib"])
CFLAGS = ["-std=gnu11", "-O2", "-g", "-D_GNU_SOURCE", "-Wall", "-Wextra",
          "-Wshadow", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- allocators

def find_lib(soname):
    for d in LIB_DIRS:
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    return None


def install_peers(packages):
    """apt-get install, as root only; True when it worked."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + packages
    log("compare: installing %s" % " ".join(packages))
    for attempt in range(2):
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            return True
        if attempt == 0:    # stale package lists: refresh once and retry
            subprocess.run(["apt-get", "update"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log("compare: apt-get failed: %s" % r.stderr.strip().splitlines()[-1:])
    return False


def peer_sources():
    """The directory holding build.sh and the peers' release archives:
    $BENCH_PEERS_SRC, else shared/peers beside or inside the source tree."""
    for d in (os.environ.get("BENCH_PEERS_SRC"),
              os.path.join(os.path.dirname(SRCROOT), "shared", "peers"),
              os.path.join(SRCROOT, "shared", "peers")):
        if d and os.path.exists(os.path.join(d, "build.sh")):
            return d
    return None


def built_peers(objroot, labels):
    """{label: library or None, with why}: the peers built from source,
    built once into OBJROOT/bench/peers (about a minute) and kept there."""
    out_dir = os.path.join(objroot, "bench", "peers")
    libs = {l: os.path.join(out_dir, BUILT_PEERS[l]) for l in labels}
    if all(os.path.exists(p) for p in libs.values()):
        return {l: (p, None) for l, p in libs.items()}
    src = peer_sources()
    if src is None:
        why = "no shared/peers/build.sh found (set BENCH_PEERS_SRC)"
    else:
        log("compare: building %s into %s (once; about a minute)"
            % (", ".join(labels), out_dir))
        r = subprocess.run(["sh", os.path.join(src, "build.sh"), out_dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        why = "build failed: %s" % (" | ".join(r.stderr.strip().splitlines()[-3:])
                                    or "exit status %d" % r.returncode)
    return {l: (p, None) if os.path.exists(p) else (None, why) for l, p in libs.items()}


def resolve_allocators(names, objroot, tmpdir, no_install):
    """Returns [(name, env additions)] for the allocators that can run, and
    a dict of notes (versions, paths, why one was skipped)."""
    notes = {}
    want_peers = [n for n in names if n in PEERS]
    missing = [n for n in want_peers if find_lib(PEERS[n][0]) is None]
    if missing and not no_install:
        install_peers([PEERS[n][1] for n in missing])
    built = built_peers(objroot, [n for n in names if n in BUILT_PEERS]) \
        if any(n in BUILT_PEERS for n in names) else {}
    out = []
    for name in names:
        if name == "glibc":
            out.append((name, {}))
            notes[name] = "glibc %s" % (os.confstr("CS_GNU_LIBC_VERSION") or "?").split()[-1]
        elif name in PEERS:
            lib = find_lib(PEERS[name][0])
            if lib is None:
                log("compare: %s not installed (package %s); skipped" % (name, PEERS[name][1]))
                notes[name] = "not installed, skipped"
                continue
            out.append((name, {"LD_PRELOAD": lib}))
            notes[name] = "%s %s (%s)" % (PEERS[name][1], pkg_version(PEERS[name][1]), lib)
        elif name in BUILT_PEERS:
            lib, why = built[name]
            if lib is None:
                log("compare: %s skipped: %s" % (name, why))
                notes[name] = "skipped: %s" % why
                continue
            copy = os.path.join(tmpdir, BUILT_PEERS[name])
            shutil.copy2(lib, copy)
            out.append((name, {"LD_PRELOAD": copy}))
            notes[name] = "%s, built from %s by build.sh (%s)" % (
                {"mimalloc3": "mimalloc 3.4.3", "snmalloc": "snmalloc 0.7.5"}[name],
                "shared/peers", lib)
        elif name == "hakmem" or name.startswith("hakmem-"):
            lib = os.path.join(objroot, "lib", "libhakmem.so")
            if not os.path.exists(lib):
                log("compare: %s not built; skipped (run make first)" % lib)
                notes[name] = "not built, skipped"
                continue
            copy = os.path.join(tmpdir, "libhakmem.so")
            if not os.path.exists(copy):
                shutil.copy2(os.path.realpath(lib), copy)
            env = {"LD_PRELOAD": copy}
            if name.startswith("hakmem-"):
                env["HAKMEM_MODE"] = name[len("hakmem-"):]
            out.append((name, env))
            notes[name] = hakmem_version(lib) + (
                ", HAKMEM_MODE=%s" % env["HAKMEM_MODE"] if "HAKMEM_MODE" in env else "")
            if os.environ.get("HAKMEM_CONF"):
                notes[name] += ", HAKMEM_CONF=%s" % os.environ["HAKMEM_CONF"]
        elif "=" in name:
            label, lib = name.split("=", 1)
            if not os.path.exists(lib):
                sys.exit("compare: %s: no such library %s" % (label, lib))
            copy = os.path.join(tmpdir, "lib-%s.so" % label)
            shutil.copy2(os.path.realpath(lib), copy)
            out.append((label, {"LD_PRELOAD": copy}))
            notes[label] = hakmem_version(lib) if "hakmem" in os.path.basename(lib) else lib
        else:
            sys.exit("compare: unknown allocator %r (known: %s, hakmem-MODE, LABEL=LIB.so)"
                     % (name, ", ".join(DEFAULT_ALLOCS)))
    return out, notes


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() or "?"
    except OSError:
        return "?"


def hakmem_version(lib):
    real = os.path.realpath(lib)
    with open(real, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(real)).strftime("%Y-%m-%d %H:%M")
    commit = "?"
    try:
        r = subprocess.run(["git", "-C", SRCROOT, "log", "-1", "--format=%h"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if r.returncode == 0 and r.stdout.strip():
            commit = r.stdout.strip()
        r = subprocess.run(["git", "-C", SRCROOT, "status", "--porcelain", "--", "src", "include"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if r.returncode == 0 and r.stdout.strip():
            commit += " + uncommitted changes in src/"
    except OSError:
        pass
    return "%s (built %s, sha256 %s; git %s)" % (real, mtime, digest, commit)


# ---------------------------------------------------------------- binaries

def ensure_binary(objroot, name):
    """OBJROOT/bench/NAME, compiled from bench/NAME.c when missing or older."""
    exe = os.path.join(objroot, "bench", name)
    src = os.path.join(SRCROOT, "bench", name + ".c")
    if os.path.exists(exe) and (not os.path.exists(src)
                                or os.path.getmtime(exe) >= os.path.getmtime(src)):
        return exe
    if not os.path.exists(src):
        sys.exit("compare: no %s and no %s" % (exe, src))
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    cc = os.environ.get("CC", "cc")
    log("compare: building %s" % exe)
    r = subprocess.run([cc] + CFLAGS + ["-o", exe, src, "-lpthread", "-lm"])
    if r.returncode != 0:
        sys.exit("compare: could not build %s" % exe)
    return exe


# ---------------------------------------------------------------- running

def run_one(exe, args, env_add, timeout, cpus=None):
    """Runs one benchmark (on the CPUs of CPUS only, when given); returns a
    dict with ok, secs, wall, rss_kib, kv."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("HAKMEM_MODE", None)
    env.update(env_add)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        p = subprocess.Popen([exe] + args, env=env, stdout=out, stderr=err,
                             start_new_session=True, preexec_fn=pin)
        status, ru, timed_out = None, None, False
        delay = 0.0005
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() - t0 > timeout:
                timed_out = True
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
            else (-(status & 0x7f) if status & 0x7f else status >> 8)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    res = {"rc": p.returncode, "wall": wall, "rss_kib": ru.ru_maxrss, "kv": {},
           "ok": False, "why": ""}
    name = os.path.basename(exe)
    line = None
    for ln in stdout.splitlines():
        if ln.startswith(name + " ") and "verified=" in ln:
            line = ln
    if line is not None:
        for tok in line.split()[1:]:
            if "=" in tok:
                k, v = tok.split("=", 1)
                res["kv"][k] = v
    if timed_out:
        res["why"] = "timeout after %.0f s" % timeout
    elif p.returncode != 0:
        res["why"] = ("killed by signal %d" % -p.returncode if p.returncode < 0
                      else "exit status %d" % p.returncode)
    elif line is None:
        res["why"] = "no result line"
    elif res["kv"].get("verified") != "ok":
        res["why"] = "verified=%s" % res["kv"].get("verified")
    else:
        try:
            res["secs"] = float(res["kv"]["secs"])
            res["ok"] = True
            if int(res["kv"].get("peak_rss_kib", -1)) > 0:
                res["rss_kib"] = int(res["kv"]["peak_rss_kib"])
        except (KeyError, ValueError):
            res["why"] = "no secs= in the result line"
    if not res["ok"]:
        tail = (stderr.strip().splitlines() or [""])[-3:]
        res["why"] += ("; stderr: " + " | ".join(tail)) if tail != [""] else ""
    return res


# ---------------------------------------------------------------- load

LOADS = {
    "none": "none: the benchmark alone on the machine",
    "pin": "pin: every run confined to one CPU (os.sched_setaffinity, as `taskset -c`), "
           "so that its threads share it: two threads a core and more",
    "hog": "hog: one busy loop at nice 19 on each CPU for the whole run, as a "
           "production machine's background work",
}


def load_cpus(load):
    """The CPU set each run is confined to under LOAD, or None."""
    if load != "pin":
        return None
    return {min(os.sched_getaffinity(0))}


def _hog_setup():
    """In a hog, before it execs: nice 19, and the same for the scheduling
    group of its session where autogroups are on (/proc/self/autogroup).
    Each run has a session of its own (run_one), so its group and a hog's
    are never one: a task's nice value weighs it only within its group, and
    a hog's group at nice 0 took half of each CPU from the runs."""
    os.nice(19)
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("19")
    except OSError:
        pass


def start_hogs(load):
    """Under --load hog, one busy process at nice 19 per CPU; [] otherwise."""
    if load != "hog":
        return []
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             start_new_session=True, preexec_fn=_hog_setup)
            for _ in range(os.cpu_count() or 1)]


def stop_hogs(hogs):
    for h in hogs:
        h.kill()
        h.wait()


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ---------------------------------------------------------------- report

def fmt_secs(s):
    if s is None:
        return "-"
    return "%.3f" % s if s < 10 else "%.1f" % s


def fmt_num(v):
    if v is None:
        return "-"
    if v >= 1000:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_ratio(r):
    return "" if r is None else " ×%.2f" % r


class Cell:
    def __init__(self, runs):
        self.runs = runs
        ok = [r for r in runs if r["ok"]]
        self.failed = [r for r in runs if not r["ok"]]
        self.secs = [r["secs"] for r in ok]
        self.rss = [r["rss_kib"] for r in ok]
        self.wall = median([r["wall"] for r in ok])
        self.med = median(self.secs)
        self.rss_med = median(self.rss)

    def extra(self, key):
        vals = []
        for r in self.runs:
            if r["ok"] and key in r["kv"]:
                try:
                    vals.append(float(r["kv"][key]))
                except ValueError:
                    pass
        return median(vals)

    def mark(self):
        return "" if not self.failed else " (%d failed)" % len(self.failed)


def ratio(a, b):
    return a / b if a is not None and b else None


def is_peer(name):
    """The allocators hakmem is measured against: glibc, the distribution's
    packages and the peers built from source (not hakmem builds)."""
    return name == "glibc" or name in PEERS or name in BUILT_PEERS


def best_peer(values):
    """(value, label) of the lowest of {label: value} among the peers."""
    got = [(v, a) for a, v in values.items() if is_peer(a) and v is not None and v > 0]
    return min(got) if got else (None, None)


def fmt_best(r, who):
    return "-" if r is None else "×%.2f (%s)" % (r, who)


def build_report(configs, cells, allocs, base, meta, target):
    """Markdown text of the whole report."""
    L = []
    names = [a for a, _ in allocs]
    # "× best peer": target's figure over the lowest of the peers' (is_peer)
    vs_best = target in names and any(is_peer(a) for a in names)
    best_head = " × best peer |" if vs_best else ""
    head = "| benchmark | threads | " + " | ".join(names) + " |" + best_head
    rule = "|---|--:|" + "--:|" * len(names) + ("--:|" if vs_best else "")

    def table(title, value, fmt, ratio_of=True, geo=True, best=True):
        """Returns ({allocator: [ratios to base]}, [(ratio to the best
        peer, benchmark, threads, best peer)])."""
        L.append("### " + title)
        L.append("")
        L.append(head if best or not vs_best else head[:-len(best_head)])
        L.append(rule if best or not vs_best else rule[:-4])
        ratios = {a: [] for a in names}
        bests = []
        for (b, t) in configs:
            row = []
            bv = value(cells[(b, t)].get(base)) if base in cells[(b, t)] else None
            vals = {}
            for a in names:
                c = cells[(b, t)].get(a)
                v = value(c) if c else None
                vals[a] = v
                r = ratio(v, bv) if ratio_of else None
                if r is not None:
                    ratios[a].append(r)
                txt = fmt(v) if v is not None else ("FAIL" if c and c.failed else "-")
                row.append(txt + (fmt_ratio(r) if ratio_of else "") + (c.mark() if c else ""))
            if vs_best and best:
                pv, who = best_peer(vals)
                r = ratio(vals.get(target), pv)
                if r is not None:
                    bests.append((r, b, t, who))
                row.append(fmt_best(r, who))
            L.append("| %s | %d | %s |" % (b, t, " | ".join(row)))
        if geo and ratio_of:
            g = [r for r, _, _, _ in bests]
            L.append("| **geometric mean ×%s** | | %s |%s" % (base, " | ".join(
                ("**%.2f**" % geomean(ratios[a]) if ratios[a] else "-") for a in names),
                (" **×%.2f**%s |" % (geomean(g), "" if len(g) == len(configs) else
                                      " (%d rows)" % len(g)) if g else " - |")
                if vs_best and best else ""))
        L.append("")
        return ratios, bests

    time_ratios, time_best = table("Time: median seconds, ×%s (lower is better)" % base,
                                   lambda c: c.med, fmt_secs)
    table("Spread: min–max seconds over the runs", lambda c: (min(c.secs), max(c.secs)) if c.secs else None,
          lambda v: "%s–%s" % (fmt_secs(v[0]), fmt_secs(v[1])), ratio_of=False, best=False)
    table("Wall clock: median seconds of the whole process, start-up and exit "
          "included, ×%s" % base, lambda c: c.wall, fmt_secs, geo=False)
    rss_ratios, rss_best = table("Peak RSS: median MiB, ×%s (lower is better)" % base,
                                 lambda c: c.rss_med / 1024.0 if c.rss_med else None, fmt_num)

    extra_best = []
    extra_rows = [(b, t, k, label) for (b, t) in configs
                  for (bn, _, extras) in BENCHES if bn == b for (k, label) in extras]
    if extra_rows:
        L.append("### Details: medians of figures the benchmarks print, ×%s" % base)
        L.append("")
        L.append("| benchmark | threads | figure | " + " | ".join(names) + " |" + best_head)
        L.append("|---|--:|---|" + "--:|" * len(names) + ("--:|" if vs_best else ""))
        for (b, t, k, label) in extra_rows:
            bc = cells[(b, t)].get(base)
            bv = bc.extra(k) if bc else None
            row, vals = [], {}
            for a in names:
                c = cells[(b, t)].get(a)
                v = vals[a] = c.extra(k) if c else None
                row.append(fmt_num(v) + fmt_ratio(ratio(v, bv)) if v is not None else "-")
            if vs_best:
                pv, who = best_peer(vals)
                r = ratio(vals.get(target), pv)
                if r is not None:
                    extra_best.append((r, "%s, %d thread%s: %s" % (b, t, "s" if t > 1 else "", label), who))
                row.append(fmt_best(r, who))
            L.append("| %s | %d | %s | %s |" % (b, t, label, " | ".join(row)))
        L.append("")

    if vs_best:
        L.append("### Where %s stands against the best peer" % target)
        L.append("")
        L.append("Peers: %s (every allocator in the run but hakmem's own builds); "
                 "on each row the bar is the fastest (smallest) of them."
                 % ", ".join(a for a in names if is_peer(a)))
        L.append("")

        def worst(rows, n):
            rows = sorted(rows, reverse=True)[:n]
            return "; ".join("%s, %d thread%s ×%.2f (%s)" % (b, t, "s" if t > 1 else "", r, who)
                             for r, b, t, who in rows) or "-"
        for what, rows in (("time", time_best), ("peak RSS", rss_best)):
            g = geomean([r for r, _, _, _ in rows])
            L.append("- %s: geometric mean ×%s over %d rows, %d rows behind by more "
                     "than 20%%; worst: %s" % (
                         what, "%.2f" % g if g else "-", len(rows),
                         sum(1 for r, _, _, _ in rows if r > 1.2), worst(rows, 6)))
        if extra_best:
            L.append("- figures, worst: %s" % ("; ".join(
                "%s ×%.2f (%s)" % (label, r, who)
                for r, label, who in sorted(extra_best, reverse=True)[:6])))
        L.append("")

    if target in names and target != base:
        L.append("### Where %s stands against %s" % (target, base))
        L.append("")
        worse, better = [], []
        for (b, t) in configs:
            c, bc = cells[(b, t)].get(target), cells[(b, t)].get(base)
            if not c or not bc:
                continue
            for what, v, bv in (("time", c.med, bc.med), ("peak RSS", c.rss_med, bc.rss_med)):
                r = ratio(v, bv)
                if r is None:
                    continue
                if r > 1.2:
                    worse.append((r, "%s, %d thread%s: %s ×%.2f" % (b, t, "s" if t > 1 else "", what, r)))
                elif r < 0.83:
                    better.append((r, "%s, %d thread%s: %s ×%.2f" % (b, t, "s" if t > 1 else "", what, r)))
        for (b, t) in configs:
            c, bc = cells[(b, t)].get(target), cells[(b, t)].get(base)
            if not c or not bc:
                continue
            for (bn, _, extras) in BENCHES:
                if bn != b:
                    continue
                for (k, label) in extras:
                    r = ratio(c.extra(k), bc.extra(k))
                    if r is not None and r > 1.2:
                        worse.append((r, "%s, %d thread%s: %s ×%.2f" % (b, t, "s" if t > 1 else "", label, r)))
                    elif r is not None and r < 0.83:
                        better.append((r, "%s, %d thread%s: %s ×%.2f" % (b, t, "s" if t > 1 else "", label, r)))
        fails = [(b, t, r["why"]) for (b, t) in configs
                 for r in (cells[(b, t)][target].failed if target in cells[(b, t)] else [])]
        L.append("- behind by more than 20%%: %s" % (
            "; ".join(s for _, s in sorted(worse, reverse=True)) or "nowhere"))
        L.append("- ahead by more than 20%%: %s" % (
            "; ".join(s for _, s in sorted(better)) or "nowhere"))
        if fails:
            L.append("- failed runs: %s" % "; ".join("%s@%d: %s" % f for f in fails))
        L.append("- geometric mean ×%s: time %s, peak RSS %s" % (
            base,
            "%.2f" % geomean(time_ratios[target]) if time_ratios[target] else "-",
            "%.2f" % geomean(rss_ratios[target]) if rss_ratios[target] else "-"))
        L.append("")
    return "\n".join(L)


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    model = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(ln.split()[1]) / 1048576.0)
                    break
    except OSError:
        pass
    virt = ""
    try:
        r = subprocess.run(["systemd-detect-virt"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if r.returncode == 0 and r.stdout.strip() not in ("", "none"):
            virt = ", virtualised (%s)" % r.stdout.strip()
    except OSError:
        pass
    return "%d CPUs (nproc), %s, %s RAM, Linux %s%s" % (
        os.cpu_count() or 0, model, mem, platform.release(), virt)


def write_doc(path, report, meta, charts=()):
    """CHARTS: [(svg path, alt text)], shown above the tables."""
    text = []
    text.append("# hakmem performance")
    text.append("")
    text.append("Generated by `bench/compare` (`make bench`); do not edit by hand, "
                "run it again.  Each benchmark is a program in `bench/` that links "
                "nothing of hakmem; every allocator is swapped in with `LD_PRELOAD`, "
                "and runs are interleaved (A B C D E, B C D E A, ...).  Time is the "
                "benchmark's own measured time (process start-up and exit left out); "
                "peak RSS is the process's high-water resident set (VmHWM, read by "
                "the benchmark itself at the end).  "
                "Ratios are to %s; below 1 is better.  Every run checks the "
                "contents of what it allocated; a failed run is reported, never "
                "averaged in." % meta["base"])
    text.append("")
    text.append("- machine: %s" % meta["machine"])
    text.append("- date: %s" % meta["date"])
    text.append("- command: `%s` (in `%s`)" % (meta["command"], meta["cwd"]))
    text.append("- runs per cell: %d, scale %g, per-run timeout %g s" % (
        meta["runs"], meta["scale"], meta["timeout"]))
    text.append("- load average (1 min) before / after: %.2f / %.2f%s" % (
        meta["load_before"], meta["load_after"],
        " -- the machine was busy; spreads are wide" if max(meta["load_before"], meta["load_after"])
        > 0.5 * (os.cpu_count() or 1) else ""))
    text.append("- load: %s" % meta.get("load", LOADS["none"]))
    text.append("- total time: %.0f s" % meta["elapsed"])
    for a, note in meta["notes"].items():
        text.append("- %s: %s" % (a, note))
    text.append("")
    text.append("How to run: `make bench` (all of this, 5 runs a cell, about 15 "
                "minutes on 2 cores); `sh bench/compare OBJROOT --quick` (2 runs, "
                "quarter scale); `--only larson,frag`, `--allocs glibc,hakmem,hakmem-fast`, "
                "`--threads 1,4`, `--runs N` or `BENCH_RUNS=N`, `--callgrind`, `--no-real`, "
                "`--load pin` (every run on one CPU) or `--load hog` (a nice 19 busy loop "
                "on each CPU; the loaded tables: [PERFORMANCE-pin.md](PERFORMANCE-pin.md), "
                "[PERFORMANCE-hog.md](PERFORMANCE-hog.md)).  Partial "
                "runs print their tables without touching this file unless given "
                "`--out FILE`.  Every run is saved in `perf-results.json` beside this "
                "file; `sh bench/compare --from-json doc/perf-results.json` rewrites this "
                "file and the charts from it without running anything, and "
                "`python3 bench/charts.py doc/perf-results.json` redraws the charts alone "
                "(they need matplotlib: `apt-get install python3-matplotlib`).  mimalloc3 and snmalloc are built once from the release "
                "archives in `shared/peers` into `OBJROOT/bench/peers` (cmake; skipped "
                "with a message when the build fails).  One benchmark by hand: `LD_PRELOAD=lib/libhakmem.so "
                "bench/larson -t 2 -s 1`.  Instruction counts: `sh bench/callgrind.sh "
                "OBJROOT`.")
    text.append("")
    text.append("Learning mode (`--allocs hakmem,hakmem-learning`) side by side with "
                "balanced, and how the learner works: [LEARNING.md](LEARNING.md).")
    text.append("")
    text.append("Benchmarks (`bench/NAME -h` for the arguments):")
    text.append("")
    for b, _, _ in BENCHES:
        text.append("- `%s`: %s" % (b, DESCRIPTIONS[b]))
    text.append("")
    text.append("The column \"× best peer\" is hakmem's figure divided by the "
                "lowest of the peers' on that row, the peers being every allocator "
                "of the run except hakmem's own builds: glibc, jemalloc, mimalloc "
                "(2.0.9, Debian's), mimalloc3 (3.4.3), snmalloc and tcmalloc.  Each "
                "workload's bar is the best of them there, not one allocator "
                "throughout.")
    text.append("")
    text.append(READING_NOTES)
    text.append("")
    if charts:
        text.append("### Charts")
        text.append("")
        text.append("Each allocator's median over the best peer's median on that row "
                    "(1 = as good as the best of the peers; lower is better); the "
                    "figures are in the tables below.")
        text.append("")
        base_dir = os.path.dirname(os.path.abspath(path))
        for svg, alt in charts:
            text.append("![%s](%s)" % (alt, os.path.relpath(os.path.abspath(svg), base_dir)))
            text.append("")
    text.append(report)
    text.append("")
    with open(path, "w") as f:
        f.write("\n".join(text))


# ---------------------------------------------------------------- saved results

RESULTS_SCHEMA = "hakmem-bench-results/1"


def results_doc(configs, cells, names, base, target, meta, extra):
    """Everything the Markdown and the charts are made of, as JSON: every
    run of every cell (ok, secs, rss_kib, wall, rc, why, kv)."""
    return {
        "schema": RESULTS_SCHEMA,
        "meta": meta,
        "allocs": names,
        "peers": [a for a in names if is_peer(a)],
        "base": base,
        "target": target,
        "configs": [[b, t] for (b, t) in configs],
        "cells": {"%s/%d" % (b, t): {a: c.runs for a, c in cells[(b, t)].items()}
                  for (b, t) in configs},
        "extra_report": extra,      # real programs, callgrind: Markdown as printed
    }


def stem_path(md):
    """doc/PERFORMANCE.md -> doc/perf; DIR/NAME.md -> DIR/NAME."""
    d, name = os.path.split(md)
    if name == "PERFORMANCE.md":
        return os.path.join(d, "perf")
    return os.path.join(d, name[:-3] if name.endswith(".md") else name)


def save_outputs(opts, results, report, meta, out, json_path):
    """Writes the results JSON (to JSON_PATH, else beside OUT), the charts
    (--charts PREFIX, else beside OUT, else beside the JSON) and the Markdown
    OUT with the charts above its tables.  Charts that cannot be drawn are
    reported and left out; they never fail the run."""
    if json_path is None and out is not None:
        json_path = stem_path(out) + "-results.json"
    if json_path:
        if out is not None:
            results["doc"] = os.path.relpath(os.path.abspath(out),
                                             os.path.dirname(os.path.abspath(json_path)))
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        log("compare: wrote %s" % json_path)
    prefix = None if opts.no_charts else (
        opts.charts or (stem_path(out) if out is not None else None)
        or (charts_mod().default_prefix(json_path) if json_path else None))
    drawn = []
    if prefix:
        src, tmp = json_path, None
        if src is None:
            fd, tmp = tempfile.mkstemp(suffix=".json", prefix="hakmem-results.")
            with os.fdopen(fd, "w") as f:
                json.dump(results, f)
            src = tmp
        try:
            drawn = charts_mod().make_charts(src, prefix, log=log)
        except Exception as e:      # never fail a benchmark run on a chart
            log("compare: charts not drawn: %s: %s" % (type(e).__name__, e))
        finally:
            if tmp:
                os.unlink(tmp)
        for p in drawn:
            log("compare: wrote %s" % p)
    if out is not None:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        alts = {"time": "time × best peer, per benchmark", "rss": "peak RSS × best peer, per benchmark"}
        if not results["peers"]:
            alts = {k: v.replace("best peer", results["base"]) for k, v in alts.items()}
        charts = [(p, alts["rss" if p.endswith("-rss.svg") else "time"]) for p in drawn]
        write_doc(out, report, meta, charts)
        log("compare: wrote %s" % out)


def charts_mod():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import charts       # bench/charts.py, beside this file
    return charts


def from_json(opts):
    """--from-json FILE: the Markdown and the charts again, nothing run."""
    with open(opts.from_json) as f:
        results = json.load(f)
    if results.get("schema") != RESULTS_SCHEMA:
        sys.exit("compare: %s: not results saved by bench/compare (schema %r)"
                 % (opts.from_json, results.get("schema")))
    names = results["allocs"]
    configs = [(b, t) for b, t in results["configs"]]
    cells = {(b, t): {a: Cell(runs) for a, runs in results["cells"]["%s/%d" % (b, t)].items()}
             for (b, t) in configs}
    meta = results["meta"]
    report = build_report(configs, cells, [(a, {}) for a in names], results["base"],
                          meta, results.get("target"))
    report += results.get("extra_report", "")
    print(report)
    out = opts.out
    if out is None and results.get("doc"):
        out = os.path.join(os.path.dirname(os.path.abspath(opts.from_json)), results["doc"])
    if opts.no_doc:
        out = None
    if out is None and opts.charts is None and not opts.no_charts:
        opts.charts = charts_mod().default_prefix(opts.from_json)
    # the results are saved beside OUT again (--json FILE: there): the same
    # file, unchanged, when OUT is the Markdown they were saved beside
    save_outputs(opts, results, report, meta, out, opts.json)
    if out is None and not opts.charts and not opts.json:
        log("compare: no Markdown written (--out FILE to write one)")
    return 0


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        prog=os.environ.get("BENCH_COMPARE_NAME", "compare.py"),
        description="Runs the bench/ programs under glibc, jemalloc, mimalloc, "
                    "tcmalloc and hakmem and tabulates them.")
    ap.add_argument("objroot", nargs="?", default=SRCROOT + "/",
                    help="build directory (binaries in OBJROOT/bench, hakmem in "
                         "OBJROOT/lib); default: the source tree")
    ap.add_argument("--quick", action="store_true",
                    help="2 runs, scale 0.25 (unless --runs/--scale say otherwise)")
    ap.add_argument("--only", help="comma-separated benchmarks (%s)"
                    % ",".join(b for b, _, _ in BENCHES))
    ap.add_argument("--allocs", help="comma-separated allocators (default %s; "
                    "also hakmem-MODE, LABEL=LIB.so)" % ",".join(DEFAULT_ALLOCS))
    ap.add_argument("--runs", type=int, help="runs per cell (default $BENCH_RUNS or 5)")
    ap.add_argument("--scale", type=float, help="work scale passed as -s (default 1)")
    ap.add_argument("--threads", help="comma-separated thread counts, replacing "
                    "each benchmark's own (micro stays at 1)")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("BENCH_TIMEOUT", 120)),
                    help="seconds before a run is killed (default 120)")
    ap.add_argument("--out", help="markdown file to write (default doc/PERFORMANCE.md "
                    "for a full run, nothing for a partial one)")
    ap.add_argument("--no-doc", action="store_true", help="write no file")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--baseline", default="mimalloc", help="allocator the ratios are to")
    ap.add_argument("--load", choices=sorted(LOADS), default="none",
                    help="run under load: pin (each run on one CPU) or hog (a nice 19 "
                         "busy loop on every CPU); default none")
    ap.add_argument("--real", action="store_true",
                    help="also run real programs (bench/real.py) in a partial run")
    ap.add_argument("--no-real", action="store_true",
                    help="no real programs, even in a full run")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions per malloc+free pair with "
                         "bench/callgrind.sh (needs valgrind; about a minute)")
    ap.add_argument("--json", metavar="FILE",
                    help="save every run here (default: NAME-results.json beside the "
                         "Markdown, doc/perf-results.json for doc/PERFORMANCE.md)")
    ap.add_argument("--charts", metavar="PREFIX",
                    help="draw PREFIX-time.svg and PREFIX-rss.svg (default: beside the "
                         "Markdown, doc/perf-*.svg for doc/PERFORMANCE.md)")
    ap.add_argument("--no-charts", action="store_true", help="draw no chart")
    ap.add_argument("--from-json", metavar="FILE",
                    help="run nothing: rebuild the Markdown (--out, default the file the "
                         "results were saved beside) and the charts from saved results")
    opts = ap.parse_args()
    if opts.from_json:
        return from_json(opts)

    objroot = opts.objroot if opts.objroot.endswith("/") else opts.objroot + "/"
    runs = opts.runs or int(os.environ.get("BENCH_RUNS", 2 if opts.quick else 5))
    scale = opts.scale or (0.25 if opts.quick else 1.0)
    only = opts.only.split(",") if opts.only else None
    known = [b for b, _, _ in BENCHES]
    for b in only or []:
        if b not in known:
            sys.exit("compare: unknown benchmark %r (known: %s)" % (b, ", ".join(known)))
    want = opts.allocs.split(",") if opts.allocs else DEFAULT_ALLOCS
    override = [int(t) for t in opts.threads.split(",")] if opts.threads else None

    partial = bool(only or opts.allocs or opts.threads or opts.quick or opts.runs
                   or opts.scale or opts.load != "none")
    with_real = (opts.real or not partial) and not opts.no_real
    configs, exes = [], {}
    for b, threads, _ in BENCHES:
        if only and b not in only:
            continue
        exes[b] = ensure_binary(objroot, b)
        for t in ([1] if b == "micro" else (override or threads)):
            configs.append((b, t))

    tmpdir = tempfile.mkdtemp(prefix="hakmem-compare.")
    cpus, hogs = load_cpus(opts.load), []
    try:
        allocs, notes = resolve_allocators(want, objroot, tmpdir, opts.no_install)
        if not allocs:
            sys.exit("compare: no allocator to run")
        names = [a for a, _ in allocs]
        base = opts.baseline if opts.baseline in names else names[0]
        target = "hakmem" if "hakmem" in names else next(
            (a for a in names if a.startswith("hakmem")), None)
        load_before = os.getloadavg()[0]
        hogs = start_hogs(opts.load)
        started = time.monotonic()
        log("compare: %d configurations x %d allocators x %d runs, scale %g"
            % (len(configs), len(allocs), runs, scale))
        cells, failures = {}, 0
        for (b, t) in configs:
            runs_of = {a: [] for a in names}
            args = ["-t", str(t), "-s", "%g" % scale]
            for r in range(runs):
                k = r % len(allocs)
                for (a, env) in allocs[k:] + allocs[:k]:
                    prev = runs_of[a]
                    if prev and "timeout" in prev[-1]["why"]:
                        continue      # one timeout per cell is enough
                    res = run_one(exes[b], args, env, opts.timeout, cpus)
                    prev.append(res)
                    if not res["ok"]:
                        failures += 1
                        log("compare: FAIL %s -t %d under %s: %s" % (b, t, a, res["why"]))
            cells[(b, t)] = {a: Cell(runs_of[a]) for a in names}
            line = "  ".join("%s %s%s" % (a, fmt_secs(cells[(b, t)][a].med), cells[(b, t)][a].mark())
                             for a in names)
            log("%-12s t=%d  %s" % (b, t, line))
        real_report = ""
        if with_real:
            import real     # bench/real.py, beside this file
            real_report, real_failures = real.run_suite(
                objroot, allocs, min(runs, 3), opts.timeout)
            failures += real_failures
        elapsed = time.monotonic() - started
    finally:
        stop_hogs(hogs)
        shutil.rmtree(tmpdir, ignore_errors=True)

    meta = {
        "base": base, "machine": machine_info(),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join([os.environ.get("BENCH_COMPARE_NAME", "python3 " + sys.argv[0])]
                            + [shlex.quote(a) for a in sys.argv[1:]]),
        "cwd": os.getcwd(), "runs": runs, "scale": scale, "timeout": opts.timeout,
        "load_before": load_before, "load_after": os.getloadavg()[0],
        "elapsed": elapsed, "notes": notes, "load": LOADS[opts.load],
    }
    report = build_report(configs, cells, allocs, base, meta, target)
    extra = ""
    if real_report:
        extra += "\n" + real_report + "\n"
    if opts.callgrind:
        log("compare: running bench/callgrind.sh")
        r = subprocess.run(["sh", os.path.join(SRCROOT, "bench", "callgrind.sh"), objroot],
                           stdout=subprocess.PIPE, text=True)
        if r.returncode == 0:
            lines = r.stdout.strip().splitlines()
            extra += "\n### Instructions per malloc+free pair (callgrind)\n\n"
            extra += lines[0] + ".\n\n" + "\n".join(l for l in lines[1:] if l.startswith("|"))
            extra += "\n"
    report += extra
    print()
    print("machine: %s; %s; runs %d, scale %g; load %.2f -> %.2f" % (
        meta["machine"], meta["date"], runs, scale, meta["load_before"], meta["load_after"]))
    print()
    print(report)

    out = opts.out
    if out is None and not partial:
        out = os.path.join(SRCROOT, "doc", "PERFORMANCE.md")
    if opts.no_doc or out is None:
        if partial and not opts.no_doc and not (opts.json or opts.charts):
            log("compare: partial run, no file written (--out FILE to write one)")
        out = None
    results = results_doc(configs, cells, names, base, target, meta, extra)
    save_outputs(opts, results, report, meta, out, opts.json)
    if failures:
        log("compare: %d run(s) failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
