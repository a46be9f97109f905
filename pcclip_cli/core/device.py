"""Where models run: the one resolver of a device choice (auto, cpu, cuda, cuda:N) for CLIP, LLMs and faiss."""

from __future__ import annotations

import os

from .errors import PcclipError

DEVICE_ENV = "PCCLIP_DEVICE"


def device_choice(device: str | None = None) -> str:
    """The choice as given, else $PCCLIP_DEVICE, else auto; lower case, not yet checked against the hardware."""
    return (device or os.environ.get(DEVICE_ENV) or "auto").lower()


def resolve_device(device: str | None = None) -> str:
    """`auto` (the default, or $PCCLIP_DEVICE) means CUDA when present, else CPU."""
    import torch

    choice = device_choice(device)
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise PcclipError("--device cuda was asked for but no CUDA device is available; use --device cpu")
        return choice
    if choice == "cpu":
        return "cpu"
    raise PcclipError(f"unknown device {device!r}; use auto, cpu or cuda")
