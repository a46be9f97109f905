"""RankCLIP as a pretraining objective: `--objective caption --init random --rank-weights L1,L2 [--no-base-loss]`,
with the published code's ramp and each term's share of the loss in metrics.jsonl."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pcclip_cli.clip.checkpoints import load_state_dict_safely
from pcclip_cli.clip.spec import create_random_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _records(out, event):
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["event"] == event]


@pytest.mark.parametrize("base_loss", [False, True])
def test_rankclip_pretraining_from_random_init(cli, world, tmp_path, base_loss):
    out = tmp_path / "run"
    args = ["train", "--model", "pcclip-micro", "--objective", "caption", "--init", "random", "--scope", "both",
            "--captions", world / "captions.jsonl", "--rank-weights", "1/16,1/8", "--epochs", "3",
            "--batch-size", "30", "--lr", "1e-3", "--log-every", "1", "--keep-checkpoints", "3", "--out", out,
            "--json"]
    result = cli(*args, *([] if base_loss else ["--no-base-loss"]))
    assert result.code == 0, result.stderr
    epochs = _records(out, "epoch")
    # The published ramp over 3 epochs: clamp(3 (e - 1) / 2, 0, 2) = 0, 1.5, 2.
    assert [e["rank_ramp"] for e in epochs] == [0.0, 1.5, 2.0]
    terms = {"in_modal", "cross_modal"} | ({"base"} if base_loss else set())
    for e in epochs:
        assert set(e["shares"]) == terms and all(math.isfinite(e["loss"]) for e in epochs)
    for step in _records(out, "step"):
        assert set(step["parts"]) == terms
        if step["rank_ramp"] > 0:
            assert math.isclose(sum(step["shares"].values()), 1.0, abs_tol=1e-4)
    init = create_random_model("pcclip-micro", 0).state_dict()
    first = load_state_dict_safely(out / "checkpoints" / "epoch-0001")
    last = load_state_dict_safely(out / "checkpoints" / "epoch-0003")
    moved_first = [k for k in init if not torch.equal(init[k], first[k])]
    if base_loss:
        assert moved_first  # the CLIP loss trains from the first step; the ranking terms join later
        assert epochs[0]["shares"]["base"] == 1.0
    else:
        # Without the base loss the first epoch's weight is 0: nothing moves until the ramp rises.
        assert moved_first == [] and all(v == 0.0 for v in epochs[0]["shares"].values())
        assert epochs[0]["loss"] == 0.0 and epochs[2]["loss"] > 0
    assert any(not torch.equal(first[k], last[k]) for k in first)
    config = json.loads((out / "train_config.json").read_text())["config"]
    assert config["rank_normalise"] == "reference" and config["rank_ramp"] == "auto"


def test_runs_from_before_the_reference_form_resume_as_they_were(cli, world, tmp_path):
    from pcclip_cli.training import resume_config

    out = tmp_path / "run"
    result = cli("train", "--model", "pcclip-micro", "--objective", "caption", "--init", "random", "--captions",
                 world / "captions.jsonl", "--rank-weights", "1/16,1/16", "--epochs", "1", "--batch-size", "30",
                 "--out", out, "--json")
    assert result.code == 0, result.stderr
    ident = json.loads((out / "train_config.json").read_text())
    for key in ("rank_normalise", "rank_ramp"):
        del ident["config"][key]
    (out / "train_config.json").write_text(json.dumps(ident))
    cfg = resume_config(out, overrides={"epochs": 2})
    assert cfg.rank_normalise.value == "sum" and cfg.rank_ramp.value == "off"
