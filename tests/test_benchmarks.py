"""benchmarks/run.py reads each benchmark's ratios as JSON rows: the fastest one runs for real through it."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _runner():
    sys.path.insert(0, str(BENCH))  # run.py imports jsonrows from its own directory, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("bench_runner", BENCH / "run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_runner"] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_run_quick_on_the_probe_benchmark_reads_every_row(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", "--only", "probe", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "FAILED" not in proc.stderr and "1 ratios" in proc.stderr
    doc = json.loads(out.read_text())
    (outcome,) = doc["outcomes"]
    assert outcome["error"] is None and outcome["script"] == "bench_probe.py"
    (row,) = outcome["rows"]
    assert row["bench"] == "probe" and "scikit-learn" in row["ratio"] and row["unit"] == "x"
    assert math.isfinite(row["value"]) and row["value"] > 0
    # The table on stdout shows the row the script emitted.
    assert f"| probe | {row['ratio']} |" in proc.stdout


def test_a_line_that_is_not_a_row_is_a_failure_not_a_gap():
    run = _runner()
    good = json.dumps({"bench": "b", "ratio": "a / b", "value": 2.5, "unit": "x", "detail": ""})
    assert [r.value for r in run.read_rows(good + "\n\n" + good)] == [2.5, 2.5]
    for bad in ("| a table | 3.0x |", json.dumps({"bench": "b", "value": 1.0}),
                json.dumps({"bench": "b", "ratio": "r", "value": "fast", "unit": "x", "detail": ""}), ""):
        with pytest.raises(ValueError):
            run.read_rows(good + "\n" + bad if bad else bad)


def test_every_benchmark_emits_rows_and_only_names_known_benchmarks():
    for script in sorted(BENCH.glob("bench_*.py")):
        text = script.read_text()
        assert "import jsonrows" in text and "jsonrows.emit(" in text and "people_to_stderr()" in text, script.name
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--only", "nope"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "no such benchmark" in proc.stderr and "probe" in proc.stderr
