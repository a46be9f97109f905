"""What a user meets at the terminal, through the real CLI: data on stdout uncut, fast listings that import no
model code, typos named, re-runs that do the right thing, compact reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import assert_clean_error

HEAVY = ("torch", "open_clip", "transformers")


def test_models_lists_names_on_stdout_without_importing_model_code(tmp_path):
    code = ("import sys\nfrom pcclip_cli.cli.main import app\n"
            "try:\n    app(['models'], prog_name='pcclip')\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n")
    env = {**os.environ, "PCCLIP_HOME": str(tmp_path / "home"), "COLUMNS": "80"}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]  # the first fills the pretrained-tag cache, the second must not import open_clip
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in runs[1].stderr, runs[1].stderr
    lines = runs[1].stdout.splitlines()
    names = {ln.split("\t")[0] for ln in lines}
    assert {"shapes-clip", "pcclip-micro", "ViT-L-14:datacomp_xl_s13b_b90k", "template"} <= names
    assert all(ln.count("\t") == 2 for ln in lines), lines[:5]
    assert "…" not in runs[1].stdout + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout  # the cache gives the same listing as open_clip itself


def test_help_shows_whole_flag_names_at_80_columns(run_pcclip):
    res = run_pcclip("train", "--help", env={"COLUMNS": "80"})
    assert res.code == 0
    assert "--mse-raw-difference" in res.stdout and "…" not in res.stdout
    assert max(len(ln) for ln in res.stdout.splitlines()) <= 80


def test_an_unknown_attribute_word_is_named_with_the_nearest_known_one(run_pcclip, tmp_path):
    res = run_pcclip("retrieve", "--index", tmp_path / "none", "--attribute", "bleu")
    assert "warning: attribute 'bleu'" in res.stderr and "did you mean 'blue'" in res.stderr
    strict = run_pcclip("retrieve", "--index", tmp_path / "none", "--attribute", "bleu", "--strict")
    assert_clean_error(strict, "'bleu'", "'blue'")
    known = run_pcclip("retrieve", "--index", tmp_path / "none", "--attribute", "bluer")
    assert "warning" not in known.stderr


def test_a_hint_names_the_wrong_value(run_pcclip, world):
    res = run_pcclip("classify", "--dataset", world, "--comparative", "autp", "--llm", "template")
    assert_clean_error(res, "--comparative 'autp'", "did you mean 'auto'")


def test_classify_takes_a_world_directory_and_a_label(cli, world, shapes_clip):
    res = cli("classify", "--dataset", world, "--label", "colour", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert set(doc["classes"]) <= {"red", "orange", "yellow", "green", "blue", "purple"} and len(doc["classes"]) > 2
    res = cli("classify", "--dataset", world / "captions.jsonl", "--label", "shape", "--json")
    assert res.code == 0 and "circle" in res.json()["classes"]
    bad = cli("classify", "--dataset", world, "--label", "flavour")
    assert bad.code == 1 and "flavour" in bad.error_lines()[0] and "colour" in bad.error_lines()[0]


def test_report_is_compact_unless_all(cli, tmp_path):
    many = {f"extra/m{i}": 0.5 for i in range(30)}
    for arm, v in (("a", 0.6), ("b", 0.7)):
        (tmp_path / "r" / arm).mkdir(parents=True)
        (tmp_path / "r" / arm / "result.json").write_text(json.dumps(
            {"model": "x", "tags": {"arm": arm}, "summary": {**many, "rank/shapes-size": v, "ordering/larger": v}}))
    res = cli("report", tmp_path / "r", "--plot", tmp_path / "p.png")
    assert res.code == 0, res.stderr
    header = next(ln for ln in res.stderr.splitlines() if ln.startswith("| run"))
    assert "rank/shapes-size" in header and "ordering/larger" in header and "extra/m0" not in header
    everything = cli("report", tmp_path / "r", "--all", "--json").json()
    assert len(everything["metrics"]) == 32
    named = cli("report", tmp_path / "r", "--metric", "extra/m3", "--json").json()
    assert named["metrics"] == ["extra/m3"]


def test_the_same_train_command_again_is_a_no_op_or_resumes(cli, world, tmp_path):
    from pcclip_cli.training.pair_data import oracle_comparatives

    pairs = tmp_path / "pairs.jsonl"
    oracle_comparatives(world, pairs, pairs=40, split=None, seed=1)
    args = ["train", "--model", "pcclip-micro", "--comparatives", pairs, "--captions", world / "captions.jsonl",
            "--out", tmp_path / "run", "--epochs", "2", "--keep-checkpoints", "2", "--batch-size", "500", "--lr", "1e-3"]
    first = cli(*args, "--json")
    assert first.code == 0, first.stderr
    assert "using batches of 40" in first.stderr
    again = cli(*args, "--json")
    assert again.code == 0 and again.json()["already_done"] is True
    # As a kill after the first epoch leaves it: no final model, no second epoch checkpoint.
    run = tmp_path / "run"
    (run / "model.safetensors").unlink()
    (run / "pcclip.json").unlink()
    shutil.rmtree(run / "checkpoints" / "epoch-0002")
    resumed = cli(*args, "--json")
    assert resumed.code == 0, resumed.stderr
    doc = resumed.json()
    assert doc["resumed_from"].endswith("epoch-0001") and doc["steps"] == first.json()["steps"]
    other = cli(*args[:-2], "--lr", "5e-3")
    assert other.code == 1 and "not empty" in other.error_lines()[0]
