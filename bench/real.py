#!/usr/bin/env python3
"""Real programs under each allocator (LD_PRELOAD), beside bench/compare's
synthetic workloads.

    python3 bench/real.py [OBJROOT] [--runs N] [--only NAME,...] [--allocs A,...]

Programs (each skipped, with a message, when it is not installed):

    python         the distribution's python3 on a pure-Python allocation-heavy
                   script (binary trees, a dict of 150k lists, sorting, word
                   counts), with its own small-object allocator (pymalloc)
    python-malloc  the same with PYTHONMALLOC=malloc: every object from malloc
    sqlite         the sqlite3 shell on an in-memory database: 300k INSERTs in
                   one transaction, two index builds, a GROUP BY
    gcc            gcc -O2 -c on a generated C file of 60 large functions
                   (the driver, cc1 and as all preloaded)
    redis          redis-server on a unix socket under redis-benchmark (SET,
                   GET, LPUSH, LPOP, 200k requests, pipelined 16); only where
                   both are installed -- never installed here

Time is the wall clock of the program (of redis-benchmark for redis); peak
RSS is the program's own (VmHWM of redis-server; for the others ru_maxrss
read by a small launcher, OBJROOT/bench/real-rusage, which forks the
program so that the high-water mark of this script is not carried into
it).  Inputs are generated once into OBJROOT/bench/real-inputs.  Runs are
interleaved across the allocators like bench/compare's.  The allocators are
bench/compare's (glibc, jemalloc, mimalloc, mimalloc3, snmalloc, tcmalloc,
hakmem, hakmem-MODE, LABEL=LIB.so).  Exit status 1 when a run failed.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (allocators, formatting)

PY_SCRIPT = r'''
import random
random.seed(1)
class Node:
    __slots__ = ("left", "right", "val")
    def __init__(self, l, r, v):
        self.left, self.right, self.val = l, r, v
def tree(d):
    return Node(None, None, d) if d == 0 else Node(tree(d - 1), tree(d - 1), d)
def count(n):
    return 1 if n.left is None else 1 + count(n.left) + count(n.right)
total = 0
keep = tree(14)
for it in range(6):
    total += count(tree(16))
d = {}
for i in range(150000):
    d["k%d" % i] = [i, str(i) * 3, (i, i + 1), {"v": i}]
vals = sorted(d.values(), key=lambda v: v[1])
for i in range(0, 150000, 3):
    del d["k%d" % i]
words = " ".join(v[1] for v in vals[:60000]).split()
freq = {}
for w in words:
    freq[w] = freq.get(w, 0) + 1
rows = [tuple(random.random() for _ in range(4)) for _ in range(100000)]
rows.sort()
print(total, len(d), len(freq), count(keep), len(rows))
'''
PY_EXPECT = "786426 100000 60000 32767 100000"

# Forks the program with LD_PRELOAD=$HK_CHILD_PRELOAD, waits, writes
# "rc secs maxrss_kib" to $HK_RUSAGE_OUT.  Started without a preload itself,
# and small, so the child's ru_maxrss is the child's.
LAUNCHER_C = r'''
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    struct timespec a, b;
    struct rusage ru;
    int st;
    const char *pre = getenv("HK_CHILD_PRELOAD"), *out = getenv("HK_RUSAGE_OUT");
    if (argc < 2 || out == NULL)
        return 127;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) {
        if (pre != NULL && *pre)
            setenv("LD_PRELOAD", pre, 1);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    if (pid < 0 || wait4(pid, &st, 0, &ru) < 0)
        return 127;
    clock_gettime(CLOCK_MONOTONIC, &b);
    FILE *f = fopen(out, "w");
    if (f == NULL)
        return 127;
    fprintf(f, "%d %.4f %ld\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
            (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9,
            ru.ru_maxrss);
    fclose(f);
    return 0;
}
'''

PROGRAMS = ["python", "python-malloc", "sqlite", "gcc", "redis"]
DESCRIPTIONS = {
    "python": "python3, pure-Python allocation-heavy script (pymalloc)",
    "python-malloc": "the same, PYTHONMALLOC=malloc",
    "sqlite": "sqlite3 :memory:, 300k INSERTs, 2 index builds",
    "gcc": "gcc -O2 -c, generated file of 60 functions",
    "redis": "redis-server + redis-benchmark, unix socket, 200k requests x 4 tests, -P 16",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs

def python_binary():
    for p in ("/usr/bin/python3", shutil.which("python3") or "", sys.executable):
        # a pyenv shim is a shell script: preload into the interpreter itself
        if p and os.path.exists(p) and not open(p, "rb").read(2) == b"#!":
            return os.path.realpath(p)
    return None


def write_inputs(d):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "pyalloc.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(PY_SCRIPT)
    sql = os.path.join(d, "bulk.sql")
    if not os.path.exists(sql):
        r = random.Random(7)
        with open(sql + ".tmp", "w") as f:
            f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, val REAL, grp INTEGER);\n"
                    "BEGIN;\n")
            for i in range(300000):
                f.write("INSERT INTO t VALUES(%d,'n%08x-%d',%.6f,%d);\n"
                        % (i, r.getrandbits(32), i % 977, r.random() * 1000, r.randrange(500)))
            f.write("COMMIT;\nCREATE INDEX t_name ON t(name);\n"
                    "CREATE INDEX t_grp ON t(grp, val);\n"
                    "SELECT grp, count(*), avg(val) FROM t GROUP BY grp ORDER BY 2 DESC LIMIT 3;\n"
                    "SELECT count(*) FROM t WHERE name LIKE 'n0%';\n")
        os.rename(sql + ".tmp", sql)
    src = os.path.join(d, "big.c")
    if not os.path.exists(src):
        r = random.Random(3)
        L = ["#include <stddef.h>", "struct s { int a, b; double c; struct s *next; };"]
        for i in range(60):
            L.append("int f%d(int *v, int n, struct s *p) {" % i)
            L.append("  int acc = %d; double d = 0;" % i)
            L.append("  for (int i = 0; i < n; i++) {")
            L.append("    switch ((v[i] + %d) & 15) {" % i)
            for c in range(16):
                L.append("    case %d: acc += v[i] * %d - (acc >> %d); d += p ? p->c * %d : %d; break;"
                         % (c, r.randrange(1, 99), r.randrange(1, 7), c + 1, c))
            L.append("    }")
            L.append("    if (acc > %d) { for (int j = 0; j < %d; j++) acc ^= v[(i + j) %% n] << (j & 7); }"
                     % (r.randrange(1000), r.randrange(2, 9)))
            L.append("  }")
            L.append("  while (p) { acc += p->a * p->b; p = p->next; }")
            L.append("  return acc + (int)d + %s;" % ("f%d(v, n / 2, NULL)" % (i - 1) if i else "0"))
            L.append("}")
        with open(src, "w") as f:
            f.write("\n".join(L) + "\n")
    return path, sql, src


def launcher(objroot):
    exe = os.path.join(objroot, "bench", "real-rusage")
    if os.path.exists(exe):
        return exe
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as f:
        f.write(LAUNCHER_C)
    r = subprocess.run([os.environ.get("CC", "cc"), "-O1", "-o", exe, f.name])
    os.unlink(f.name)
    if r.returncode != 0:
        sys.exit("real: could not build %s" % exe)
    return exe


# ---------------------------------------------------------------- running

def run_launched(launch, argv, env_add, stdin_path, workdir, timeout, expect=None):
    """One run of a program through the launcher; a result dict as
    compare.run_one's (ok, secs, wall, rss_kib, why)."""
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "HAKMEM_MODE"):
        env.pop(k, None)
    env.update({k: v for k, v in env_add.items() if k != "LD_PRELOAD"})
    env["HK_CHILD_PRELOAD"] = env_add.get("LD_PRELOAD", "")
    out = os.path.join(workdir, "rusage.out")
    env["HK_RUSAGE_OUT"] = out
    if os.path.exists(out):
        os.unlink(out)
    res = {"ok": False, "why": "", "kv": {}, "rss_kib": 0}
    t0 = time.monotonic()
    with open(stdin_path or os.devnull) as fin, tempfile.TemporaryFile("w+") as fout, \
            tempfile.TemporaryFile("w+") as ferr:
        p = subprocess.Popen([launch] + argv, env=env, stdin=fin, stdout=fout, stderr=ferr,
                             cwd=workdir, start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            res["why"] = "timeout after %.0f s" % timeout
            return res
        fout.seek(0)
        ferr.seek(0)
        stdout, stderr = fout.read(), ferr.read()
    res["wall"] = time.monotonic() - t0
    try:
        with open(out) as f:
            rc, secs, rss = f.read().split()
    except (OSError, ValueError):
        res["why"] = "launcher failed (status %d)" % p.returncode
        return res
    if int(rc) != 0:
        res["why"] = "exit status %s; stderr: %s" % (rc, " | ".join(stderr.strip().splitlines()[-2:]))
    elif expect is not None and expect not in stdout:
        res["why"] = "unexpected output: %s" % stdout.strip()[-80:]
    else:
        res.update(ok=True, secs=float(secs), rss_kib=int(rss))
    return res


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def run_redis(env_add, workdir, timeout):
    """redis-server preloaded, redis-benchmark not; time of the benchmark."""
    res = {"ok": False, "why": "", "kv": {}, "rss_kib": 0}
    sock = os.path.join(workdir, "redis.sock")
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "HAKMEM_MODE"):
        env.pop(k, None)
    env.update(env_add)
    srv = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                            "--save", "", "--appendonly", "no", "--dir", workdir],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(sock)
                    s.close()
                    break
                except OSError:
                    pass
            if srv.poll() is not None:
                break
            time.sleep(0.025)
        else:
            res["why"] = "redis-server did not start"
            return res
        if srv.poll() is not None:
            res["why"] = "redis-server exited with status %d" % srv.returncode
            return res
        t0 = time.monotonic()
        r = subprocess.run(["redis-benchmark", "-s", sock, "-q", "-n", "200000", "-P", "16",
                            "-r", "100000", "-t", "set,get,lpush,lpop"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        secs = time.monotonic() - t0
        rss = vm_hwm_kib(srv.pid)
        if r.returncode != 0 or srv.poll() is not None:
            res["why"] = "redis-benchmark status %d, server %s" % (
                r.returncode, "gone" if srv.poll() is not None else "alive")
        else:
            res.update(ok=True, secs=secs, wall=secs, rss_kib=rss)
    except subprocess.TimeoutExpired:
        res["why"] = "timeout after %.0f s" % timeout
    finally:
        if srv.poll() is None:
            os.killpg(srv.pid, signal.SIGKILL)
        srv.wait()
    return res


def available(only):
    """[(name, why not)] for the programs wanted."""
    out = []
    py = python_binary()
    for name in PROGRAMS:
        if only and name not in only:
            continue
        need = {"python": [py], "python-malloc": [py], "sqlite": ["sqlite3"],
                "gcc": ["gcc"], "redis": ["redis-server", "redis-benchmark"]}[name]
        missing = [n or "python3" for n in need if not n or not shutil.which(n)]
        out.append((name, "%s not installed" % ", ".join(missing) if missing else None))
    return out


def run_suite(objroot, allocs, runs, timeout, only=None):
    """Runs the programs; returns (markdown, number of failed runs)."""
    progs = []
    for name, why in available(only):
        if why:
            log("real: %s skipped: %s" % (name, why))
        else:
            progs.append(name)
    if not progs:
        return "", 0
    inputs = os.path.join(objroot, "bench", "real-inputs")
    script, sql, csrc = write_inputs(inputs)
    launch = launcher(objroot)
    py = python_binary()
    work = tempfile.mkdtemp(prefix="hakmem-real.")
    cmds = {
        "python": ([py, script], {}, None, PY_EXPECT),
        "python-malloc": ([py, script], {"PYTHONMALLOC": "malloc"}, None, PY_EXPECT),
        "sqlite": (["sqlite3", ":memory:"], {}, sql, "447|675|"),
        "gcc": (["gcc", "-O2", "-c", csrc, "-o", os.path.join(work, "big.o")], {}, None, None),
    }
    names = [a for a, _ in allocs]
    cells, failures = {}, 0
    try:
        for prog in progs:
            runs_of = {a: [] for a in names}
            for r in range(runs):
                k = r % len(allocs)
                for (a, env) in allocs[k:] + allocs[:k]:
                    if prog == "redis":
                        res = run_redis(env, work, timeout)
                    else:
                        argv, extra, stdin, expect = cmds[prog]
                        res = run_launched(launch, argv, dict(env, **extra), stdin, work,
                                           timeout, expect)
                    runs_of[a].append(res)
                    if not res["ok"]:
                        failures += 1
                        log("real: FAIL %s under %s: %s" % (prog, a, res["why"]))
            cells[prog] = {a: compare.Cell(runs_of[a]) for a in names}
            log("%-13s  %s" % (prog, "  ".join("%s %s%s" % (a, compare.fmt_secs(c.med), c.mark())
                                                for a, c in cells[prog].items())))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(progs, cells, names, runs), failures


def report(progs, cells, names, runs):
    target = "hakmem" if "hakmem" in names else next(
        (a for a in names if a.startswith("hakmem")), None)
    vs_best = target is not None and any(compare.is_peer(a) for a in names)
    L = ["### Real programs under LD_PRELOAD (%d runs each)" % runs, ""]
    L += ["- `%s`: %s" % (p, DESCRIPTIONS[p]) for p in progs]
    L.append("")
    for title, value, fmt in (
            ("Time: median seconds, wall clock of the program", lambda c: c.med, compare.fmt_secs),
            ("Peak RSS: median MiB", lambda c: c.rss_med / 1024.0 if c.rss_med else None,
             compare.fmt_num)):
        L.append("#### " + title)
        L.append("")
        L.append("| program | " + " | ".join(names) + " |" + (" × best peer |" if vs_best else ""))
        L.append("|---|" + "--:|" * len(names) + ("--:|" if vs_best else ""))
        bests = []
        for p in progs:
            vals = {a: value(cells[p][a]) for a in names}
            row = [(fmt(vals[a]) if vals[a] is not None else
                    ("FAIL" if cells[p][a].failed else "-")) + cells[p][a].mark() for a in names]
            if vs_best:
                pv, who = compare.best_peer(vals)
                r = compare.ratio(vals.get(target), pv)
                if r is not None:
                    bests.append(r)
                row.append(compare.fmt_best(r, who))
            L.append("| %s | %s |" % (p, " | ".join(row)))
        if bests:
            L.append("| **geometric mean** |" + " |" * len(names)
                     + " **×%.2f** |" % compare.geomean(bests))
        L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(prog="real.py", description=__doc__.split("\n")[0])
    ap.add_argument("objroot", nargs="?", default=compare.SRCROOT + "/")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)),
                    help="runs per cell (default $BENCH_RUNS or 3)")
    ap.add_argument("--only", help="comma-separated programs (%s)" % ",".join(PROGRAMS))
    ap.add_argument("--allocs", help="comma-separated allocators (default %s)"
                    % ",".join(compare.DEFAULT_ALLOCS))
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    opts = ap.parse_args()
    objroot = opts.objroot if opts.objroot.endswith("/") else opts.objroot + "/"
    only = opts.only.split(",") if opts.only else None
    for p in only or []:
        if p not in PROGRAMS:
            sys.exit("real: unknown program %r (known: %s)" % (p, ", ".join(PROGRAMS)))
    want = opts.allocs.split(",") if opts.allocs else compare.DEFAULT_ALLOCS
    tmpdir = tempfile.mkdtemp(prefix="hakmem-real-libs.")
    try:
        allocs, notes = compare.resolve_allocators(want, objroot, tmpdir, opts.no_install)
        text, failures = run_suite(objroot, allocs, opts.runs, opts.timeout, only)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
