"""Run every benchmark in benchmarks/ and print one table of ratios, each ratio measured side by side in one run.

    .venv/bin/python benchmarks/run.py --quick          # small sizes: a few minutes on 2 cores
    .venv/bin/python benchmarks/run.py                  # the scripts' own sizes: much longer
    .venv/bin/python benchmarks/run.py --quick --only rank,probe --json results.json

Each bench_*.py runs in its own process, one after another (never in parallel: they time the same cores), and
the table is printed on stdout as markdown; progress and each script's wall time go to stderr. Both sides of
every ratio come from the same run of the same script, so load from other processes hits them alike; the load
average before and after is printed under the table. Scripts this runner has no adapter for are run with
`--quick --json` when their --help offers those flags, and any `ratios` list (or *ratio*/*speedup*/*overhead*
numbers) in their JSON is shown. This file is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The benchmarks the capability issues asked for; a missing one is a row saying so, not a silent gap.
EXPECTED = ["bench_train.py", "bench_generate.py", "bench_rank.py", "bench_faiss.py", "bench_probe.py"]


@dataclass
class Row:
    bench: str
    measure: str
    value: str  # formatted for the table: "12.3x", "0.13%", "-"
    detail: str = ""
    ratio: float | None = None  # the number behind `value`, for --json


@dataclass
class Outcome:
    script: str
    args: list[str]
    seconds: float
    rows: list[Row] = field(default_factory=list)
    raw: object = None
    error: str | None = None


def times(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def run_script(script: Path, args: list[str], timeout: float) -> tuple[str, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)[-400:]}")
    return proc.stdout, seconds


def last_json(text: str):
    """The JSON document a script printed: the whole output, else its last line that parses."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.strip().splitlines()):
        if line.lstrip().startswith(("{", "[")):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON document in its output")


# ---- adapters: a script's output -> rows ------------------------------------------------------------------------


def train_rows(out: str) -> tuple[list[Row], object]:
    head = re.search(r"model (\S+), batch (\d+) pairs, (\d+) threads, median of (\d+) steps", out)
    over = re.search(r"overhead\s+pcclip / bare text tower\s+=\s+([\d.]+)x \(([\d.]+)x with --reference-params\)",
                     out)
    speed = re.search(r"speed-up\s+reference / pcclip\s+=\s+([\d.]+)x", out)
    ms = dict(re.findall(r"^\s+(\S.*?\S)\s+([\d.]+) ms$", out, flags=re.M))
    if not (head and over and speed):
        raise ValueError("could not find the overhead and speed-up lines in its output")
    model, batch, threads, steps = head.groups()
    where = f"{model}, batch {batch}, {threads} threads, median of {steps} steps"
    bare, ours, ref = (ms.get("bare text tower (fwd+bwd)"), ms.get("pcclip text-scope step"),
                       ms.get("reference-style step"))
    return [
        Row("train", "pcclip text-scope step / bare text-tower forward+backward (overhead)", times(float(over[1])),
            f"{where}; {ours} ms vs {bare} ms; {over[2]}x with --reference-params", float(over[1])),
        Row("train", "reference-style step (images decoded and encoded every step) / pcclip step",
            times(float(speed[1])), f"{where}; {ref} ms vs {ours} ms", float(speed[1])),
    ], {"ms": ms, "overhead": float(over[1]), "overhead_reference_params": float(over[2]),
        "speedup_vs_reference": float(speed[1])}


def rank_rows(out: str) -> tuple[list[Row], object]:
    r = last_json(out)
    where = f"N={r['n']:,} images, {r['dim']}-d, {r['model']} text tower"
    extra = " (all-pairs timed on " + f"{r['all_pairs_measured_n']:,}, scaled by (N/n)^2)" if r[
        "all_pairs_extrapolated"] else ""
    agree = "orders agree" if all(r["orders_agree"].values()) else f"ORDERS DIFFER {r['orders_agree']}"
    return [
        Row("rank", "pairwise rule over all N^2 pairs / one score per image + sort", times(r["speedup_vs_all_pairs"]),
            where + extra + "; " + agree, r["speedup_vs_all_pairs"]),
        Row("rank", "comparison sort with the pairwise rule (N log N) / one sort", times(r["speedup_vs_cmp_sort"]),
            where, r["speedup_vs_cmp_sort"]),
    ], r


def faiss_rows(out: str) -> tuple[list[Row], object]:
    head = re.search(r"# ([\d,]+) (\w+) unit vectors x (\d+) d, (\d+) queries, k=(\d+)", out)
    n, kind, dim, queries, k = head.groups() if head else ("?", "?", "?", "?", "?")
    table: dict[str, list[str]] = {}
    blas: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or cells[0] in ("index", "OMP_WAIT_POLICY") or set(cells[0]) <= {"-", ":"}:
            continue
        (blas if cells[0] in ("ACTIVE", "PASSIVE") else table)[cells[0]] = cells
    numpy_row, flat = table.get("numpy brute force"), table.get("flat (exact)")
    approx = next((v for name, v in table.items() if "(default)" in name), None)
    if not (numpy_row and flat and approx):
        raise ValueError("could not find the numpy, flat and default approximate rows in its table")
    batch = {name: float(v[4]) for name, v in (("numpy", numpy_row), ("flat", flat), ("approx", approx))}
    p50 = {name: float(v[2]) for name, v in (("numpy", numpy_row), ("flat", flat), ("approx", approx))}
    where = f"{n} {kind} vectors x {dim}-d, {queries} queries, k={k}"
    rows = [
        Row("faiss", f"numpy brute force / faiss flat, batch of {queries} queries", times(batch["numpy"] / batch["flat"]),
            where + f"; {batch['numpy']:.3f} s vs {batch['flat']:.3f} s", batch["numpy"] / batch["flat"]),
        Row("faiss", f"faiss flat / {approx[0]}, batch of {queries} queries", times(batch["flat"] / batch["approx"]),
            f"recall@{k} vs flat {approx[5]}; {batch['flat']:.3f} s vs {batch['approx']:.3f} s",
            batch["flat"] / batch["approx"]),
        Row("faiss", f"faiss flat / {approx[0].split(' (')[0]}, single-query p50", times(p50["flat"] / p50["approx"]),
            f"{p50['flat']:.2f} ms vs {p50['approx']:.2f} ms; numpy single query {p50['numpy']:.2f} ms",
            p50["flat"] / p50["approx"]),
    ]
    for policy, cells in sorted(blas.items()):
        ratio = float(cells[1]) / float(cells[2])
        rows.append(Row("faiss", f"BLAS threshold 128000 (faiss default) / 20 (pcclip), flat batch, {policy} OpenMP",
                        times(ratio), f"{cells[1]} s vs {cells[2]} s", ratio))
    return rows, {"table": table, "blas": blas}


def probe_rows(out: str) -> tuple[list[Row], object]:
    rows = last_json(out)
    sk = next(r for r in rows if r.get("variant", "").startswith("scikit"))
    th = next(r for r in rows if r.get("variant", "").startswith("torch"))
    ratio = sk["seconds"] / th["seconds"]
    return [Row("probe", "scikit-learn lbfgs / torch LBFGS loop, linear probe", times(ratio),
                f"{sk['seconds']:.2f} s vs {th['seconds']:.2f} s; top-1 {sk['top1']:.3f} vs {th['top1']:.3f}",
                ratio)], rows


def generate_rows(out: str) -> tuple[list[Row], object]:
    r = last_json(out)
    rows = []
    for rr in r.get("rerun", []):
        if rr["first_llm_calls"] == 0:
            continue
        frac = rr["rerun_fraction"]
        rows.append(Row("generate", f"re-run of a finished run / the first run ({rr['llm']}, {rr['pairs']} pairs)",
                        f"{frac:.2%}", f"{rr['rerun_s']} s and {rr['rerun_llm_calls']} LLM calls vs {rr['first_s']} s "
                        f"and {rr['first_llm_calls']} calls", frac))
    oc = r.get("openai_concurrency")
    if oc:
        rows.append(Row("generate", f"OpenAI backend, concurrency {oc['concurrency']} / sequential (items/s)",
                        times(oc["ratio_concurrent_over_sequential"]),
                        f"local llama.cpp server, SmolLM2, {oc['items']} items x {oc['rounds']} alternating rounds: "
                        f"{oc['concurrent_items_per_s']} vs {oc['sequential_items_per_s']} items/s"
                        + ("" if oc.get("same_tokens") else "; TOKEN COUNTS DIFFER"),
                        oc["ratio_concurrent_over_sequential"]))
    toks = {t["llm"]: t for t in r.get("tokens_per_s", [])}
    if "smollm2-135m" in toks and "openai:smollm2" in toks:
        a, b = toks["smollm2-135m"], toks["openai:smollm2"]
        if a["tokens_per_s"]:
            ratio = b["tokens_per_s"] / a["tokens_per_s"]
            rows.append(Row("generate", "SmolLM2 tok/s: through the OpenAI backend and server / llama.cpp in-process",
                            times(ratio), f"{b['tokens_per_s']} vs {a['tokens_per_s']} tok/s", ratio))
    return rows, r


_RSS_SNIPPET = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, {here!r})
import bench_generate
with tempfile.TemporaryDirectory() as d:
    print(json.dumps(bench_generate.streaming_rss(Path(d), {images})))
"""


def rss_rows(out: str) -> tuple[list[Row], object]:
    r = last_json(out)
    base, stream, lst = r["baseline"], r["stream"], r["list"]
    ratio = stream["peak_rss_mb"] / base["peak_rss_mb"]
    return [Row("generate", f"peak RSS streaming all {stream['items']:,} ordered pairs / reading the captions only",
                times(ratio), f"{stream['peak_rss_mb']:.0f} MB vs {base['peak_rss_mb']:.0f} MB "
                f"(a materialised list: {lst['peak_rss_mb']:.0f} MB, {lst['peak_rss_mb'] / base['peak_rss_mb']:.1f}x); "
                f"streamed in {stream['seconds']} s", ratio)], r


def generic_rows(name: str, out: str) -> tuple[list[Row], object]:
    """A script without an adapter: its `ratios` list, else every number whose key names a ratio."""
    doc = last_json(out)
    rows = []
    if isinstance(doc, dict) and isinstance(doc.get("ratios"), list):
        for item in doc["ratios"]:
            value = float(item["value"])
            rows.append(Row(name, str(item.get("name", "?")), times(value), str(item.get("what", "")), value))
        return rows, doc

    def walk(obj, path):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and re.search(
                r"ratio|speedup|overhead|_x$", path.rsplit(".", 1)[-1]):
            rows.append(Row(name, path, times(float(obj)), "", float(obj)))

    walk(doc, "")
    if not rows:
        raise ValueError("its JSON names no ratios (see benchmarks/run.py's docstring for the interface)")
    return rows, doc


# ---- the plan -----------------------------------------------------------------------------------------------


@dataclass
class Bench:
    name: str
    script: str
    quick: list[str]
    full: list[str]
    parse: Callable[[str], tuple[list[Row], object]]
    code: str | None = None  # run this Python snippet instead of the script (calls into the script's functions)


def plan(quick: bool) -> list[Bench]:
    benches = [
        Bench("train", "bench_train.py", ["--steps", "5", "--warmup", "1"], [], train_rows),
        Bench("rank", "bench_rank.py", ["--n", "2000", "--model", "pcclip-tiny", "--all-pairs-n", "500", "--repeats",
                                         "3", "--json"], ["--json"], rank_rows),
        Bench("faiss", "bench_faiss.py", ["--n", "100000", "--queries", "100", "--blas-compare", "50000"], [],
              faiss_rows),
        Bench("probe", "bench_probe.py", ["--json"], ["--json"], probe_rows),
        # Its own RSS case runs after models are loaded in the same process, whose peak RSS the measuring child
        # inherits (ru_maxrss survives fork+exec); the RSS row below measures from a fresh, small parent instead.
        Bench("generate", "bench_generate.py", ["--items", "4", "--max-tokens", "16", "--rounds", "2",
                                                 "--skip-transformers", "--rss-images", "2"],
              ["--rss-images", "2"], generate_rows),
        Bench("generate-rss", "bench_generate.py", [], [], rss_rows,
              code=_RSS_SNIPPET.format(here=str(HERE), images=1000)),
    ]
    known = {b.script for b in benches}
    for path in sorted(HERE.glob("bench_*.py")):
        if path.name not in known:
            benches.append(Bench(path.stem.removeprefix("bench_"), path.name, [], [], None))
    return benches


def flags_offered(script: Path) -> set[str]:
    try:
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    except subprocess.TimeoutExpired:
        return set()
    return {f for f in ("--quick", "--json") if f in out}


def run_one(bench: Bench, quick: bool, timeout: float) -> Outcome:
    script = HERE / bench.script
    if bench.code is not None:
        args = ["-c", bench.code]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            return Outcome(bench.script, ["(its functions)"], seconds, error=proc.stderr.strip()[-400:])
        rows, raw = bench.parse(proc.stdout)
        return Outcome(bench.script + " (streaming_rss, fresh process)", [], seconds, rows, raw)
    parse = bench.parse
    args = bench.quick if quick else bench.full
    if parse is None:
        offered = flags_offered(script)
        args = [f for f in ("--quick", "--json") if f in offered and (f == "--json" or quick)]
        parse = lambda out: generic_rows(bench.name, out)  # noqa: E731
    try:
        out, seconds = run_script(script, args, timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return Outcome(bench.script, args, 0.0, error=str(exc))
    try:
        rows, raw = parse(out)
    except (ValueError, KeyError, StopIteration, TypeError) as exc:
        return Outcome(bench.script, args, seconds, error=f"could not read its output ({type(exc).__name__}: {exc})")
    return Outcome(bench.script, args, seconds, rows, raw)


def render(outcomes: list[Outcome], missing: list[str], quick: bool, load: tuple[float, float], wall: float) -> str:
    lines = ["| benchmark | ratio (both sides measured in the same run) | value | detail |", "|---|---|---:|---|"]
    for name in missing:
        lines.append(f"| {name.removeprefix('bench_').removesuffix('.py')} | - | - | `benchmarks/{name}` is not "
                     "there yet |")
    for o in outcomes:
        if o.error:
            lines.append(f"| {o.script} | - | failed | {o.error.replace('|', '/')} |")
        for r in o.rows:
            lines.append(f"| {r.bench} | {r.measure} | {r.value} | {r.detail.replace('|', '/')} |")
    mode = "--quick" if quick else "full sizes"
    lines.append("")
    lines.append(f"{mode}; {os.cpu_count()} cores; load average {load[0]:.1f} before, {load[1]:.1f} after; "
                 f"{wall / 60:.1f} min in all (" + ", ".join(f"{o.script.split()[0]} {o.seconds:.0f} s"
                                                                for o in outcomes) + ")")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, so the whole run takes a few minutes")
    ap.add_argument("--only", default=None, help="comma-separated benchmark names (rank, faiss, probe, generate, "
                                                 "generate-rss, train, ...)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per script (default 900 quick, 7200 full)")
    ap.add_argument("--json", type=Path, default=None, help="also write every script's raw results here")
    args = ap.parse_args()
    timeout = args.timeout or (900 if args.quick else 7200)
    only = set(args.only.split(",")) if args.only else None
    benches = [b for b in plan(args.quick) if only is None or b.name in only]
    present = {p.name for p in HERE.glob("bench_*.py")}
    missing = [m for m in EXPECTED if m not in present and (only is None or m.removeprefix("bench_")
                                                             .removesuffix(".py") in only)]
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    outcomes = []
    for b in benches:
        print(f"running {b.name} ({b.script}) ...", file=sys.stderr, flush=True)
        o = run_one(b, args.quick, timeout)
        print(f"  {o.seconds:.0f} s" + (f", FAILED: {o.error}" if o.error else f", {len(o.rows)} ratios"),
              file=sys.stderr, flush=True)
        outcomes.append(o)
    table = render(outcomes, missing, args.quick, (load0, os.getloadavg()[0]), time.perf_counter() - t0)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "table": table, "missing": missing,
                                         "outcomes": [asdict(o) for o in outcomes]}, indent=2, default=str))


if __name__ == "__main__":
    main()
