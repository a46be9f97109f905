"""`pcclip train` under `torchrun --nproc_per_node 2` (gloo on CPU) matches one process on the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from pcclip_cli.finetune import train
from pcclip_cli.models import load_clip
from pcclip_cli.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_two_gloo_processes_match_one(world, tmp_path, micro_clip):
    """The caption objective with both towers and the learnable logit scale: it exercises the gathered batch,
    the image tower under DDP and the scale's gradient share, which a text-scope pc run would not."""
    from safetensors.torch import load_file

    captions = str(world / "captions.jsonl")
    ddp_out, one_out = tmp_path / "ddp", tmp_path / "single"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pcclip_cli.cli.main", "train", "--model", "pcclip-micro", "--objective", "caption",
           "--captions", captions, "--lr", "1e-3", "--epochs", "2", "--batch-size", "20", "--seed", "7",
           "--scope", "both", "--out", str(ddp_out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PCCLIP_DEVICE": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # one JSON document: only rank 0 prints
    assert doc["world_size"] == 2 and doc["steps"] == 6

    single = train(TrainConfig(model="pcclip-micro", objective="caption", captions=captions, lr=1e-3, epochs=2,
                               batch_size=20, seed=7, scope="both", out=str(one_out)))
    assert single.world_size == 1 and single.steps == 6
    got, want = load_file(str(ddp_out / "model.safetensors")), load_file(str(one_out / "model.safetensors"))
    assert set(got) == set(want)
    for name in want:
        a, b = got[name], want[name]
        if name.endswith("attn.in_proj_bias"):
            # The key bias (middle third) has an exactly-zero gradient (softmax ignores a shift shared by all
            # keys), so Adam turns rounding noise into +-lr steps there; every other weight must agree.
            third = a.shape[0] // 3
            a, b = torch.cat([a[:third], a[2 * third :]]), torch.cat([b[:third], b[2 * third :]])
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (name, (a - b).abs().max())
    # Both towers and the logit scale moved, so the comparison covered them.
    base = micro_clip.model.state_dict()
    for name in ("visual.conv1.weight", "text_projection", "logit_scale"):
        assert not torch.allclose(want[name], base[name]), name
    assert load_clip(str(ddp_out), "cpu").info["training"]["world_size"] == 2
    ddp_loss = [json.loads(x) for x in (ddp_out / "metrics.jsonl").read_text().splitlines()][-1]["loss"]
    one_loss = [json.loads(x) for x in (one_out / "metrics.jsonl").read_text().splitlines()][-1]["loss"]
    assert abs(ddp_loss - one_loss) < 1e-4
