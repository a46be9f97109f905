"""A run directory's files: the saved config, metrics, epoch checkpoints with the optimizer and RNG state that
make resume exact, and what a run holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pcclip_cli.clip.checkpoints import META_FILE
from pcclip_cli.core.dirs import check_out_dir
from pcclip_cli.core.errors import CheckpointError
from pcclip_cli.core.io import write_json_atomic, write_text_atomic

CONFIG_JSON = "train_config.json"
CONFIG_TOML = "config.toml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


def saved_config(run_dir: Path) -> dict:
    path = Path(run_dir) / CONFIG_JSON
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run directory")
    if not path.exists():
        raise CheckpointError(f"--resume {run_dir}: not a pcclip training run ({CONFIG_JSON} is missing)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{path} is corrupt; start a new run with another --out") from None


def save_training_state(directory: Path, optimizer, state: dict) -> None:
    """Optimizer tensors and RNG state in safetensors, everything else in JSON: no pickle anywhere."""
    import torch
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(directory / OPTIMIZER_FILE))
    write_json_atomic(directory / STATE_FILE, {**state, "optimizer": {"param_groups": sd["param_groups"],
                                                                        "scalars": scalars}})


def load_training_state(directory: Path, optimizer) -> dict:
    import torch
    from safetensors.torch import load_file

    try:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / OPTIMIZER_FILE))
    except Exception as exc:  # torn or foreign files: json and safetensors raise different types
        raise CheckpointError(f"{directory}: training state is unreadable ({type(exc).__name__}); "
                              "delete that checkpoint folder to resume from an earlier one") from None
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            # Optimizer.load_state_dict moves each tensor to its parameter's device (and "step" where the
            # fused/capturable kernels want it), so CPU tensors are fine here.
            per_param.setdefault(int(idx), {})[name] = value
    for key, value in state["optimizer"]["scalars"].items():
        idx, name = key.split(".", 1)
        per_param.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer"]["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return state


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("epoch-*") if (p / STATE_FILE).exists() and (p / META_FILE).exists())
    return done[-1] if done else None


def trim_metrics(run_dir: Path, epoch: int) -> None:
    """Drop the records of the epoch that was cut short, so metrics.jsonl reads like one clean run."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by the kill
        if rec.get("epoch", 0) <= epoch:
            kept.append(line)
    write_text_atomic(path, "".join(k + "\n" for k in kept))


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """What a run directory holds: its config, latest complete checkpoint and whether it finished."""
    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir)
    return {"config": saved_config(run_dir), "latest_checkpoint": str(ckpt) if ckpt else None,
            "complete": (run_dir / META_FILE).exists()}


def check_run_dir(out: str | Path | None, resume: bool) -> Path:
    """The run directory, refused before anything heavy is loaded when it is missing or holds another run."""
    return check_out_dir(out, holds="the run's checkpoints and metrics", reusable=(lambda _: True) if resume else None,
                         fix=f"pass --resume {out} to continue that run, or choose a new directory")
