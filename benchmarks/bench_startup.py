"""How long `pcclip models` and `pcclip --help` take to start, against importing the model code they avoid.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--quick]

Rows (benchmarks/jsonrows.py): the first `pcclip models` in a fresh PCCLIP_HOME (it imports open_clip once to
cache the pretrained-tag list) over a later one; `import open_clip` alone over a later `pcclip models`; and
`pcclip --help` over `python -c pass` (the interpreter's own start). Median wall seconds are in `detail`. The
goal is `pcclip models` <= 1 s on a quiet machine; it is measured here, never asserted by a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jsonrows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def median(cmd: list[str], env: dict, repeats: int) -> float:
    return statistics.median(wall(cmd, env) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    jsonrows.people_to_stderr()
    py = sys.executable
    pcclip = [py, "-m", "pcclip_cli.cli.main"]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PCCLIP_HOME": home, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        first = wall([*pcclip, "models"], env)  # fills the tag cache: the cost every call paid before
        later = median([*pcclip, "models"], env, repeats)
        open_clip = median([py, "-c", "import open_clip"], env, repeats)
        helps = median([*pcclip, "--help"], env, repeats)
        bare = median([py, "-c", "pass"], env, repeats)
    print(f"pcclip models: first {first:.2f} s, later {later:.2f} s; import open_clip {open_clip:.2f} s; "
          f"pcclip --help {helps:.2f} s; python -c pass {bare:.2f} s")
    jsonrows.emit("startup", "first `pcclip models` (imports open_clip) / a later one (cached tags)", first / later,
                  detail=f"{first:.2f} s vs {later:.2f} s")
    jsonrows.emit("startup", "`import open_clip` alone / `pcclip models`", open_clip / later,
                  detail=f"{open_clip:.2f} s vs {later:.2f} s (goal: models <= 1 s)")
    jsonrows.emit("startup", "`pcclip --help` / `python -c pass`", helps / bare, detail=f"{helps:.2f} s vs {bare:.2f} s")


if __name__ == "__main__":
    main()
