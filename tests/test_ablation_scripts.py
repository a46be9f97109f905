"""The ablation scripts in examples/ run end to end at a tiny size: training seeds become arms with a seed count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PCCLIP = Path(sys.executable).parent / "pcclip"

# A 60-image world (the `world` fixture's, which `shapes_clip` was trained on), few pairs, a one-seed evaluation.
TINY = {"WORLD_IMAGES": "60", "PAIRS": "40", "SEEDS": "1", "BATCH": "16", "LR": "1e-3",
        "EVAL_FLAGS": "--pairs 12 --descriptions 3 --keep 1 --top-k 2", "OMP_NUM_THREADS": "1"}


def run_script(name: str, runs: Path, **env) -> subprocess.CompletedProcess:
    if not PCCLIP.exists():
        pytest.skip(f"no pcclip executable beside {sys.executable}")
    proc = subprocess.run(["bash", str(REPO / "examples" / name)], capture_output=True, text=True, timeout=900,
                          cwd=REPO, env={**os.environ, **TINY, "PCCLIP": str(PCCLIP), "RUNS": str(runs), **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def report_arms(runs: Path) -> list[dict]:
    proc = subprocess.run([str(PCCLIP), "report", str(runs), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["arms"]


def test_scope_script_trains_each_seed_and_reports_them_as_one_arm(shapes_clip, tmp_path):
    runs = tmp_path / "scope"
    first = run_script("ablate_scope.sh", runs, TRAIN_SEEDS="0 1", SCOPES="text")
    assert "done: scope-text-s0" in first.stderr and "done: scope-text-s1" in first.stderr
    assert not (runs / "scope-image-s0").exists()  # SCOPES picked the text arm only
    meta = [json.loads((runs / f"scope-text-s{s}" / "model" / "pcclip.json").read_text()) for s in (0, 1)]
    assert [m["training"]["seed"] for m in meta] == [0, 1]
    assert all(m["training"]["scope"] == "text" for m in meta)
    arms = {a["settings"].get("arm"): a for a in report_arms(runs)}
    assert arms["scope"]["seeds"] == 2 and arms["base"]["seeds"] == 1
    assert arms["scope"]["errors"], "two training seeds give a standard error"
    # A second run trains only what is new (SCOPE@LR: the image tower at its own lr); finished arms are done.
    stamp = (runs / "scope-text-s0" / "train.json").stat().st_mtime_ns
    run_script("ablate_scope.sh", runs, TRAIN_SEEDS="0", SCOPES="text image@5e-4")
    assert (runs / "scope-text-s0" / "train.json").stat().st_mtime_ns == stamp
    image = json.loads((runs / "scope-image-lr5e-4-s0" / "model" / "pcclip.json").read_text())["training"]
    assert image["scope"] == "image" and image["lr"] == 5e-4


def test_loss_script_runs_the_chosen_arms(shapes_clip, tmp_path):
    runs = tmp_path / "loss"
    run_script("ablate_loss.sh", runs, TRAIN_SEEDS="0", ARMS="mse rank-no-base")
    assert sorted(p.name for p in runs.iterdir() if (p / "result.json").exists()) == [
        "base", "loss-mse-s0", "rank-no-base-s0"]
    mse = json.loads((runs / "loss-mse-s0" / "model" / "pcclip.json").read_text())["training"]
    no_base = json.loads((runs / "rank-no-base-s0" / "model" / "pcclip.json").read_text())["training"]
    assert mse["loss"] == "mse" and no_base["base_loss"] is False
    assert (runs / "report.md").read_text().count("\n| ") >= 3  # header, base and both arms
