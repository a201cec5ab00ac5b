#!/usr/bin/env python3
"""Bar charts of bench/compare's results: each allocator's median over the
best peer's median, one row per benchmark configuration.

    python3 bench/charts.py RESULTS.json [--prefix PREFIX] [--png]

RESULTS.json is either what bench/compare saves beside its Markdown
(doc/perf-results.json: every run of every cell, schema
"hakmem-bench-results/1") or a table of medians (schema
"hakmem-bench-medians/1", e.g. doc/learning-results.json):

    {"schema": "hakmem-bench-medians/1", "allocs": ["hakmem", ...],
     "peers": [...], "base": "hakmem",
     "rows": [{"bench": "larson", "threads": 1,
               "time": {"hakmem": 0.476, ...}, "rss": {"hakmem": 2.85, ...}}]}

It writes PREFIX-time.svg and PREFIX-rss.svg (PREFIX defaults to the JSON's
name less "-results.json"): one grouped horizontal bar chart per metric, a
bar per allocator, the value being the allocator's median divided by the
lowest median among the peers on that row ("best peer"), or by the base
allocator's when the run has no peer (hakmem against hakmem-learning); a
line at 1.0; a log scale when the values span more than 8x.  The SVGs are
deterministic (fixed svg.hashsalt, no date), so regenerating them from the
same results changes nothing.

Needs matplotlib (Debian: python3-matplotlib).  When the interpreter running
this has none, make_charts() runs this file under the first python3 on PATH
(then /usr/bin/python3) that has it, and says so when none does; it never
raises.  hakmem itself depends on nothing of this.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

METRICS = (
    # key, file suffix, title
    ("time", "time", "Time"),
    ("rss", "rss", "Peak RSS"),
)
NO_MATPLOTLIB = 3       # exit status of the CLI when matplotlib is missing


# ---------------------------------------------------------------- data

def _median(xs):
    return statistics.median(xs) if xs else None


def chart_data(doc):
    """{"allocs", "peers", "base", "rows": [{"label", "time": {a: v},
    "rss": {a: v}, "failed": {a: bool}}], "note"} from either schema."""
    schema = doc.get("schema", "")
    allocs = list(doc["allocs"])
    rows = []
    if schema.startswith("hakmem-bench-results/"):
        for b, t in doc["configs"]:
            cell = doc["cells"].get("%s/%d" % (b, t), {})
            row = {"bench": b, "threads": t, "time": {}, "rss": {}, "failed": {}}
            for a in allocs:
                runs = cell.get(a, [])
                ok = [r for r in runs if r.get("ok")]
                row["time"][a] = _median([r["secs"] for r in ok])
                rss = _median([r["rss_kib"] for r in ok if r.get("rss_kib")])
                row["rss"][a] = rss / 1024.0 if rss else None
                row["failed"][a] = bool(runs) and not ok
            rows.append(row)
        meta = doc.get("meta", {})
        note = "medians of %s runs; %s; %s" % (meta.get("runs", "?"), meta.get("machine", "?"),
                                             meta.get("date", "?"))
    elif schema.startswith("hakmem-bench-medians/"):
        for r in doc["rows"]:
            rows.append({"bench": r["bench"], "threads": int(r["threads"]),
                         "time": dict(r.get("time", {})), "rss": dict(r.get("rss", {})),
                         "failed": {}})
        note = doc.get("note", "")
    else:
        raise ValueError("unknown results schema %r" % schema)
    for r in rows:
        r["label"] = "%s, %d thread%s" % (r["bench"], r["threads"], "s" if r["threads"] != 1 else "")
    peers = [a for a in doc.get("peers", []) if a in allocs]
    base = doc.get("base") or (doc.get("meta") or {}).get("base") or allocs[0]
    return {"allocs": allocs, "peers": peers, "base": base, "rows": rows, "note": note}


def ratios(data, metric):
    """(denominator's name, shown allocators, [(label, {alloc: ratio or None},
    {alloc: failed})]): each value over the best peer's on its row, or over
    the base allocator's when there is no peer (the base is then left out:
    its bars would all be 1)."""
    peers = data["peers"]
    if peers:
        denom, shown = "best peer", list(data["allocs"])
    else:
        denom = data["base"]
        shown = [a for a in data["allocs"] if a != denom] or list(data["allocs"])
    out = []
    for row in data["rows"]:
        vals = row[metric]
        if peers:
            got = [vals.get(p) for p in peers if vals.get(p)]
            d = min(got) if got else None
        else:
            d = vals.get(denom)
        rs = {a: (vals[a] / d if d and vals.get(a) else None) for a in shown}
        out.append((row["label"], rs, {a: row["failed"].get(a, False) for a in shown}))
    return denom, shown, out


# ---------------------------------------------------------------- drawing

def _colors(allocs):
    """A fixed colour per allocator: hakmem's builds in reds, the peers in
    the rest of the tab10 palette, in the order of the run."""
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22",
               "#7f7f7f", "#e377c2", "#aec7e8", "#98df8a"]
    reds = ["#d62728", "#ff7f0e", "#f7b6d2", "#ff9896", "#c49c94"]
    out, i, j = {}, 0, 0
    for a in allocs:
        if a.startswith("hakmem"):
            out[a] = reds[j % len(reds)]
            j += 1
        else:
            out[a] = palette[i % len(palette)]
            i += 1
    return out


def draw(data, metric, title, path, png=False):
    """One chart into PATH (SVG); returns PATH."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    matplotlib.rcParams["svg.hashsalt"] = "hakmem-charts"
    matplotlib.rcParams["svg.fonttype"] = "none"     # text stays text
    matplotlib.rcParams["font.family"] = "DejaVu Sans"

    denom, shown, rows = ratios(data, metric)
    n, k = len(rows), max(1, len(shown))
    bar_in = 0.13                                   # inches per bar
    row_in = k * bar_in + 0.18
    height = max(2.5, n * row_in + 1.82 + 0.22 * math.ceil(k / 5.0))
    fig = Figure(figsize=(10, height))
    top = 1 - (1.12 + 0.22 * math.ceil(k / 5.0)) / height
    fig.subplots_adjust(left=0.2, right=0.93, top=top, bottom=0.6 / height)
    ax = fig.add_subplot(1, 1, 1)

    vals = [r for _, rs, _ in rows for r in rs.values() if r]
    lo, hi = (min(vals), max(vals)) if vals else (0.5, 2.0)
    log = hi / lo > 8
    bh = 0.8 / k
    colors = _colors(shown)
    for j, a in enumerate(shown):
        ys = [i - 0.4 + bh * (j + 0.5) for i in range(n)]
        xs = [rs.get(a) for _, rs, _ in rows]
        pos = [(y, x) for y, x in zip(ys, xs) if x]
        left = lo / 2 if log else 0
        ax.barh([y for y, _ in pos], [x - left for _, x in pos], height=bh * 0.92,
                left=left, color=colors[a], label=a)
        for (y, x) in pos:
            ax.text(x, y, " %.2f" % x if x >= 0.1 else " %.2g" % x, va="center", ha="left", fontsize=6.5, color="#333333")
        for y, x, (_, _, failed) in zip(ys, xs, rows):
            if not x:
                ax.text((lo / 2 if log else 0), y, "  %s: %s" % (a, "failed" if failed.get(a) else "no data"),
                        va="center", ha="left", fontsize=6.5, color="#b00000")
    ax.axvline(1.0, color="black", linewidth=1.0)
    ax.set_yticks(range(n))
    ax.set_yticklabels([lab for lab, _, _ in rows], fontsize=9)
    ax.set_ylim(n - 0.5, -0.5)                      # first configuration on top
    for i in range(1, n):
        ax.axhline(i - 0.5, color="#dddddd", linewidth=0.6)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(lo / 2, hi * 2.2)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xlim(0, max(hi, 1.0) * 1.12)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "×%g" % float("%.3g" % v)))
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=8.5, labeltop=True, top=True)
    what = ("median ÷ the lowest of the peers' medians on each row" if data["peers"]
            else "median ÷ %s's median" % denom)
    ax.set_xlabel("%s: %s; lower is better%s" % (title, what, ", log scale" if log else ""),
                  fontsize=9)
    notes = [x for x in (data.get("note"), "peers: " + ", ".join(data["peers"])
                         if data["peers"] else "") if x]
    fig.suptitle("%s, × %s" % (title, denom), fontsize=12, y=1 - 0.18 / height)
    for i, note in enumerate(notes):
        fig.text(0.5, 1 - (0.52 + 0.16 * i) / height, note, ha="center", fontsize=7.5,
                 color="#555555")
    fig.legend(*ax.get_legend_handles_labels(), loc="upper center", ncol=min(k, 5),
               fontsize=9, frameon=False, bbox_to_anchor=(0.5, 1 - 0.8 / height))
    fig.savefig(path, format="svg", metadata={"Date": None})
    if png:
        fig.savefig(os.path.splitext(path)[0] + ".png", format="png", dpi=110,
                    metadata={"Software": None})
    return path


def medians_from_markdown(path, peers=None, base=None):
    """A table of medians (schema hakmem-bench-medians/1) read back from a
    Markdown report: the rows of its "### Time: median ..." and "### Peak
    RSS: median ..." tables (figures before any "×ratio"; "a / b / c" cells
    for as many thread counts; "spread" and "× best peer" columns and the
    geometric-mean rows left out).  For reports written before the results
    were saved as JSON (doc/PERFORMANCE.md) and hand-written ones
    (doc/LEARNING.md).  PEERS default to the allocators not named hakmem*."""
    import re
    with open(path) as f:
        lines = f.read().splitlines()
    tables, metric, head = {"time": {}, "rss": {}}, None, None
    allocs = []

    def cells(ln):
        return [c.strip() for c in ln.strip().strip("|").split("|")]

    for ln in lines:
        if ln.startswith("#"):
            metric = ("time" if re.match(r"#+ Time: median", ln) else
                      "rss" if re.match(r"#+ Peak RSS: median", ln) else None)
            head = None
            continue
        if metric is None or not ln.startswith("|"):
            continue
        c = cells(ln)
        if head is None:
            head = [re.sub(r"\s*\(.*\)$", "", h) for h in c]
            for h in head[2:]:
                if h and not h.lower().startswith(("spread", "×", "figure")) and h not in allocs:
                    allocs.append(h)
            continue
        if set(ln) <= set("|-: "):
            continue
        bench = c[0].replace("*", "").strip()
        if not bench or "geometric" in bench:
            continue
        threads = [int(t) for t in re.findall(r"\d+", c[1])]
        for h, v in zip(head[2:], c[2:]):
            if h not in allocs:
                continue
            nums = [re.match(r"\s*\**\s*([0-9.]+)", p) for p in v.split(" / ")]
            for t, m in zip(threads, nums):
                if m:
                    tables[metric].setdefault((bench, t), {})[h] = float(m.group(1))
    order = []
    for metric in ("time", "rss"):
        for k in tables[metric]:
            if k not in order:
                order.append(k)
    if not order:
        raise ValueError("%s: no \"### Time: median\" or \"### Peak RSS: median\" table" % path)
    peers = [a for a in (peers if peers is not None else
                         [a for a in allocs if not a.startswith("hakmem")]) if a in allocs]
    return {"schema": "hakmem-bench-medians/1", "allocs": allocs, "peers": peers,
            "base": base or (allocs[0] if allocs else None),
            "note": "medians from the tables of %s" % os.path.basename(path),
            "rows": [{"bench": b, "threads": t, "time": tables["time"].get((b, t), {}),
                      "rss": tables["rss"].get((b, t), {})} for b, t in order]}


def chart_paths(prefix):
    return [(m, "%s-%s.svg" % (prefix, suffix), title) for m, suffix, title in METRICS]


def default_prefix(json_path):
    p = json_path[:-len(".json")] if json_path.endswith(".json") else json_path
    return p[:-len("-results")] if p.endswith("-results") else p


def write_charts(doc, prefix, png=False):
    """Draws every metric in this interpreter; returns the SVG paths."""
    data = chart_data(doc)
    out = []
    for metric, path, title in chart_paths(prefix):
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        out.append(draw(data, metric, title, path, png))
    return out


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def other_pythons():
    """python3 interpreters other than this one, the first on PATH first."""
    seen, out = {os.path.realpath(sys.executable)}, []
    cands = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cands.append(os.path.join(d, "python3"))
    cands.append("/usr/bin/python3")
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            # a pyenv-style shim is a script: ask the interpreter where it is
            try:
                r = subprocess.run([c, "-c", "import sys; print(sys.executable)"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, timeout=20)
            except (OSError, subprocess.SubprocessError):
                continue
            exe = r.stdout.strip()
            if r.returncode == 0 and exe and os.path.realpath(exe) not in seen:
                seen.add(os.path.realpath(exe))
                out.append(exe)
    return out


def make_charts(json_path, prefix=None, png=False, log=None):
    """Charts of the results in JSON_PATH; returns the SVG paths, or [] with
    a message (through LOG, default stderr) when they cannot be drawn.
    Never raises."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    prefix = prefix or default_prefix(json_path)
    if have_matplotlib():
        try:
            with open(json_path) as f:
                return write_charts(json.load(f), prefix, png)
        except Exception as e:          # a chart is never worth a failed run
            log("charts: not drawn: %s: %s" % (type(e).__name__, e))
            return []
    for py in other_pythons():
        r = subprocess.run([py, "-c", "import matplotlib"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            continue
        cmd = [py, os.path.abspath(__file__), json_path, "--prefix", prefix] + (["--png"] if png else [])
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            return [ln for ln in r.stdout.splitlines() if ln.endswith(".svg")]
        log("charts: %s failed: %s" % (" ".join(cmd[:2]), " | ".join(r.stderr.strip().splitlines()[-3:])))
        return []
    log("charts: no python3 with matplotlib (Debian: apt-get install python3-matplotlib); "
        "charts skipped")
    return []


def main():
    ap = argparse.ArgumentParser(prog="charts.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="results saved by bench/compare, or a table of medians")
    ap.add_argument("--from-markdown", metavar="MD", help="write to JSON the medians read "
                    "back from the Markdown tables of MD (then draw them)")
    ap.add_argument("--peers", help="with --from-markdown: comma-separated peers "
                    "(default: every allocator not named hakmem*; \"\" for none)")
    ap.add_argument("--base", help="with --from-markdown: the allocator the charts divide "
                    "by when there is no peer (default: the first column)")
    ap.add_argument("--prefix", help="write PREFIX-time.svg and PREFIX-rss.svg "
                    "(default: the JSON's path less -results.json)")
    ap.add_argument("--png", action="store_true", help="also write PNGs beside the SVGs")
    opts = ap.parse_args()
    if opts.from_markdown:
        peers = None if opts.peers is None else [p for p in opts.peers.split(",") if p]
        doc = medians_from_markdown(opts.from_markdown, peers, opts.base)
        with open(opts.json, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        print(opts.json)
    if not have_matplotlib():
        print("charts.py: %s has no matplotlib (Debian: apt-get install python3-matplotlib)"
              % sys.executable, file=sys.stderr)
        return NO_MATPLOTLIB
    with open(opts.json) as f:
        doc = json.load(f)
    for p in write_charts(doc, opts.prefix or default_prefix(opts.json), opts.png):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
