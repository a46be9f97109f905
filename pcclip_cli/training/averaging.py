"""WiSE-FT weight ensembling: average a finetuned state dict with its base."""

from __future__ import annotations

from pcclip_cli.core.errors import CheckpointError


def average_state_dicts(base: dict, finetuned: dict, alpha: float) -> dict:
    """WiSE-FT: alpha * finetuned + (1 - alpha) * base for floating tensors; others from the finetuned model."""
    if set(base) != set(finetuned):
        raise CheckpointError("cannot average weights of different architectures (their tensor names differ)")
    out = {}
    for name, ft in finetuned.items():
        b = base[name].to(ft.device)
        if b.shape != ft.shape:
            raise CheckpointError(f"cannot average weights: {name} has shape {tuple(b.shape)} vs {tuple(ft.shape)}")
        out[name] = (alpha * ft + (1 - alpha) * b).to(ft.dtype) if ft.is_floating_point() else ft.clone()
    return out
