"""Run every benchmark in benchmarks/ and print one table of ratios, each ratio measured side by side in one run.

    .venv/bin/python benchmarks/run.py --quick          # small sizes: a few minutes on 2 cores
    .venv/bin/python benchmarks/run.py                  # the scripts' own sizes: much longer
    .venv/bin/python benchmarks/run.py --quick --only rank,probe --json results.json

Each bench_*.py runs in its own process, one after another (never in parallel: they time the same cores), and
the table is printed on stdout as markdown; progress and each script's wall time go to stderr. Both sides of
every ratio come from the same run of the same script, so load from other processes hits them alike; the load
average before and after is printed under the table. A script hands over its ratios as JSON rows, one object
per line on its stdout (jsonrows.py: bench, ratio, value, unit, detail), and prints its own tables on stderr;
a line that is not a row is an error, not a silent gap. Scripts this runner has no entry for are run with
`--quick` when their --help offers it. This file is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jsonrows

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The benchmarks the capability issues asked for; a missing one is a row saying so, not a silent gap.
EXPECTED = ["bench_train.py", "bench_generate.py", "bench_rank.py", "bench_faiss.py", "bench_probe.py"]


@dataclass
class Row:
    bench: str
    ratio: str  # what is divided by what
    value: float
    unit: str = "x"  # x | fraction
    detail: str = ""

    @property
    def shown(self) -> str:
        if self.unit == "fraction":
            return f"{self.value:.2%}"
        return times(self.value)


@dataclass
class Outcome:
    script: str
    args: list[str]
    seconds: float
    rows: list[Row] = field(default_factory=list)
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


def read_rows(out: str) -> list[Row]:
    """Every line a script printed on stdout, as rows; ValueError naming the first line that is not one."""
    rows = []
    for lineno, line in enumerate(out.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = jsonrows.parse(line)
        except ValueError as exc:  # json.JSONDecodeError is one
            raise ValueError(f"stdout line {lineno} is not a JSON row ({exc})") from None
        rows.append(Row(row["bench"], row["ratio"], float(row["value"]), row["unit"], row["detail"]))
    if not rows:
        raise ValueError("it printed no JSON rows on stdout (see benchmarks/jsonrows.py)")
    return rows


# ---- the plan -----------------------------------------------------------------------------------------------


@dataclass
class Bench:
    name: str
    script: str
    quick: list[str]
    full: list[str]
    known: bool = True  # False: a script this runner has no entry for (run with --quick where offered)


def plan(quick: bool) -> list[Bench]:
    benches = [
        Bench("train", "bench_train.py", ["--steps", "5", "--warmup", "1"], []),
        Bench("rank", "bench_rank.py", ["--n", "2000", "--model", "pcclip-tiny", "--all-pairs-n", "500", "--repeats",
                                         "3"], []),
        Bench("faiss", "bench_faiss.py", ["--n", "100000", "--queries", "100", "--blas-compare", "50000"], []),
        Bench("probe", "bench_probe.py", [], []),
        Bench("generate", "bench_generate.py", ["--items", "4", "--max-tokens", "16", "--rounds", "2",
                                                 "--skip-transformers", "--sections", "batched,openai,tokens,rerun"],
              ["--sections", "batched,openai,tokens,rerun"]),
        # Peak RSS of streaming every ordered pair, measured from a fresh, small parent process.
        Bench("generate-rss", "bench_generate.py", ["--sections", "rss"], ["--sections", "rss"]),
    ]
    known = {b.script for b in benches}
    for path in sorted(HERE.glob("bench_*.py")):
        if path.name not in known:
            benches.append(Bench(path.stem.removeprefix("bench_"), path.name, [], [], known=False))
    return benches


def flags_offered(script: Path) -> set[str]:
    try:
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    except subprocess.TimeoutExpired:
        return set()
    return {f for f in ("--quick",) if f in out}


def run_one(bench: Bench, quick: bool, timeout: float) -> Outcome:
    script = HERE / bench.script
    args = bench.quick if quick else bench.full
    if not bench.known:
        args = ["--quick"] if quick and "--quick" in flags_offered(script) else []
    try:
        out, seconds = run_script(script, args, timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return Outcome(bench.script, args, 0.0, error=str(exc))
    try:
        rows = read_rows(out)
    except ValueError as exc:
        return Outcome(bench.script, args, seconds, error=f"could not read its output: {exc}")
    return Outcome(bench.script, args, seconds, rows)


def render(outcomes: list[Outcome], missing: list[str], quick: bool, load: tuple[float, float], wall: float) -> str:
    lines = ["| benchmark | ratio (both sides measured in the same run) | value | detail |", "|---|---|---:|---|"]
    for name in missing:
        lines.append(f"| {name.removeprefix('bench_').removesuffix('.py')} | - | - | `benchmarks/{name}` is not "
                     "there yet |")
    for o in outcomes:
        if o.error:
            lines.append(f"| {o.script} | - | failed | {o.error.replace('|', '/')} |")
        for r in o.rows:
            lines.append(f"| {r.bench} | {r.ratio} | {r.shown} | {r.detail.replace('|', '/')} |")
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
    ap.add_argument("--json", type=Path, default=None, help="also write every row (and any failure) here")
    args = ap.parse_args()
    timeout = args.timeout or (900 if args.quick else 7200)
    only = set(args.only.split(",")) if args.only else None
    everything = plan(args.quick)
    unknown = sorted((only or set()) - {b.name for b in everything})
    if unknown:
        ap.error(f"--only {','.join(unknown)}: no such benchmark; choose from {', '.join(b.name for b in everything)}")
    benches = [b for b in everything if only is None or b.name in only]
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
