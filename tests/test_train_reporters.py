"""`train --report-to tensorboard|wandb`: the event file and the W&B run hold metrics.jsonl's scalars."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import assert_clean_error
from pcclip_cli.training.reporters import scalars


def test_scalars_flatten_a_record_at_its_global_step():
    step, values = scalars({"event": "step", "epoch": 1, "step": 7, "loss": 0.5, "parts": {"pc": 0.4, "rank": 0.1},
                            "flag": True, "name": "x"})
    assert step == 7 and values == {"train/loss": 0.5, "train/parts/pc": 0.4, "train/parts/rank": 0.1}
    step, values = scalars({"event": "epoch", "epoch": 2, "steps": 10, "loss": 0.3, "eval": {"acc": 0.9}})
    assert step == 10 and values == {"epoch/loss": 0.3, "epoch/eval/acc": 0.9}


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_train_writes_the_same_scalars_to_tensorboard(cli, world, tmp_path, one_torch_thread):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    res = cli("train", "--model", "pcclip-micro", "--objective", "caption", "--init", "random", "--scope", "both",
              "--captions", world / "captions.jsonl", "--out", out, "--lr", "1e-3", "--epochs", "2",
              "--batch-size", "32", "--log-every", "1", "--report-to", "tensorboard", "--json")
    assert res.code == 0, res.stderr
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    losses = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    want = [(r["step"], r["loss"]) for r in records if r["event"] == "step"]
    assert len(losses) == len(want) == 4
    assert [s for s, _ in losses] == [s for s, _ in want]
    assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(losses, want, strict=True))
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [e.step for e in acc.Scalars("epoch/loss")] == [r["steps"] for r in epochs]
    assert "train/lr" in acc.Tags()["scalars"]


def test_unknown_reporter_is_one_error_line(cli, world, tmp_path):
    res = cli("train", "--model", "pcclip-micro", "--objective", "caption", "--captions", world / "captions.jsonl",
              "--out", tmp_path / "r", "--report-to", "mlflow")
    assert_clean_error(res, "mlflow", "tensorboard")


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_train_writes_the_same_scalars_to_wandb_offline(cli, world, tmp_path, one_torch_thread, monkeypatch):
    """W&B in offline mode (no account, no network): the run file beside metrics.jsonl holds every logged loss."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    res = cli("train", "--model", "pcclip-micro", "--objective", "caption", "--init", "random", "--scope", "both",
              "--captions", world / "captions.jsonl", "--out", out, "--lr", "1e-3", "--epochs", "2",
              "--batch-size", "32", "--log-every", "1", "--report-to", "wandb", "--json")
    assert res.code == 0, res.stderr
    assert res.stdout.lstrip().startswith("{")
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    logged = runs[0].read_bytes()  # protobuf records: keys and JSON-encoded values are stored as plain bytes
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    assert len(steps) == 4
    assert b"train/loss" in logged and b"epoch/loss" in logged and b"train/lr" in logged
    assert all(json.dumps(r["loss"]).encode() in logged for r in steps)
    assert json.dumps(1e9).encode() not in logged  # the check can fail: a number never logged is not found
