"""Training by model name: resolve the base through the registry, then run the Trainer (what `pcclip train` and
`pcclip train average` call).

    from pcclip_cli.finetune import train
    from pcclip_cli.training import TrainConfig
    result = train(TrainConfig(model="shapes-clip", comparatives="pairs.jsonl", captions="captions.jsonl",
                               out="runs/pc", lr=1e-5, epochs=5, batch_size=128))
"""

from __future__ import annotations

import copy
from pathlib import Path

from .clip.checkpoints import read_checkpoint_meta, save_checkpoint
from .core.config import to_dict
from .core.device import resolve_device
from .core.errors import CheckpointError, PcclipError
from .models import load_clip
from .training.averaging import average_state_dicts
from .training.config import (
    IDENTITY_KEYS,
    Init,
    TrainConfig,
    read_config_file,
    resolve_config,
    resume_config,
)
from .training.distributed import setup_distributed
from .training.run_dir import CONFIG_JSON, check_run_dir, saved_config
from .training.trainer import Trainer, TrainResult


def train(cfg: TrainConfig, *, resume: bool = False, device: str | None = None, progress=None,
          warn=None) -> TrainResult:
    """Run (or resume) one training run of the model `cfg.model` names on `device` (None: auto; under torchrun
    a CUDA run takes the local rank's GPU); see training.trainer for the run files."""
    import contextlib

    from .core.io import check_writable
    from .core.locks import main_process, output_lock

    check_run_dir(cfg.out, resume)  # before the model loads: a wrong --out fails at once
    check_writable(cfg.out)
    # One writer per run directory; the ranks of one torchrun job share rank 0's lock.
    with output_lock(cfg.out) if main_process() else contextlib.nullcontext():
        dist, device = setup_distributed(resolve_device(device))
        clip = load_clip(cfg.model, device, fresh=True)
        return Trainer(cfg, clip, dist=dist, resume=resume, progress=progress, warn=warn).fit()


def run_from_options(config_file: str | Path | None, overrides: dict, resume: str | Path | None = None, *,
                     device: str | None = None, progress=None, warn=None) -> TrainResult:
    """`pcclip train`: a config file (optional) and flags (None = not given) into one run, new or resumed."""
    file_values = read_config_file(config_file) if config_file else None
    if resume:
        cfg = resume_config(resume, file_values, overrides)
    else:
        cfg = resolve_config(file_values, overrides, source=str(config_file or "flags"))
        if _same_run(cfg):
            # The same command again: a finished run is a no-op, a killed one continues where it stopped.
            done = finished_result(cfg)
            if done is not None:
                return done
            resume = cfg.out
            cfg = resume_config(resume, file_values, overrides)
    return train(cfg, resume=bool(resume), device=device, progress=progress, warn=warn)


def _same_run(cfg: TrainConfig) -> bool:
    """Whether `cfg.out` holds a run made with the same settings (only epochs, saving and evaluation may differ)."""
    out = Path(cfg.out).resolve() if cfg.out else None
    if out is None or not (out / CONFIG_JSON).is_file():
        return False
    try:
        saved = saved_config(out)
    except CheckpointError:
        return False
    asked = to_dict(cfg)
    return all(asked.get(key) == saved.get(key) for key in IDENTITY_KEYS)


def finished_result(cfg: TrainConfig) -> TrainResult | None:
    """The result of the complete run in `cfg.out` when it already trained `cfg.epochs` epochs, else None."""
    out = Path(cfg.out).resolve()
    try:
        meta = read_checkpoint_meta(out)
    except CheckpointError:
        return None
    training = meta.get("training") or {}
    if not training.get("complete") or training.get("epochs_done") != cfg.epochs:
        return None
    return TrainResult(str(out), meta.get("metrics") or {}, cfg.epochs, int(training.get("steps") or 0),
                       int(training.get("examples") or 0), 0.0, None, int(training.get("world_size") or 1),
                       already_done=True)


def average_checkpoints(base: str, finetuned: str | Path, alpha: float, out: str | Path) -> dict:
    """Write alpha * finetuned + (1 - alpha) * base as a new checkpoint (WiSE-FT)."""
    if not 0.0 <= alpha <= 1.0:
        raise PcclipError(f"--alpha must be in [0, 1], got {alpha}")
    meta = read_checkpoint_meta(Path(finetuned))
    ft = load_clip(str(finetuned), "cpu", fresh=True)
    b = load_clip(base, "cpu", fresh=True)
    if b.arch != ft.arch:
        raise CheckpointError(f"cannot average {base} ({b.arch}) with {finetuned} ({ft.arch}): architectures differ")
    model = copy.deepcopy(ft.model)
    model.load_state_dict(average_state_dicts(b.model.state_dict(), ft.model.state_dict(), alpha))
    keep = {k: meta[k] for k in ("scope", "loss", "objective", "training", "data") if k in meta}
    new_meta = {**keep, "base": base, "metrics": {},
                "weight_average": {"alpha": alpha, "base": base, "finetuned": str(Path(finetuned).resolve())}}
    same_image = b.image_fingerprint == ft.image_fingerprint
    save_checkpoint(model, out, arch=ft.arch, meta=new_meta, image_fingerprint=ft.image_fingerprint if same_image
                    else None)
    return {"checkpoint": str(Path(out).resolve()), "alpha": alpha, "base": base, "finetuned": str(finetuned)}


def average_with_base(finetuned: str | Path, out: str | Path, alpha: float, base: str | None = None) -> dict:
    """`pcclip train average`: the base defaults to the model the finetuned checkpoint records."""
    meta = read_checkpoint_meta(Path(finetuned))
    if base is None:
        base = (meta.get("training") or {}).get("model")
        if not base or (meta.get("training") or {}).get("init") == Init.random.value:
            raise PcclipError(f"{finetuned} does not record a pretrained base model; pass --base SPEC")
    return average_checkpoints(base, finetuned, alpha, out)
