"""Where models run: the one resolver of a device choice (auto, cpu, cuda, cuda:N) for CLIP, LLMs and faiss.

Library functions take `device: str | None = None` and hand it here; the CLI passes its global `--device`
explicitly to the one library function each command calls. `None` means "not chosen": it falls back to
$PCCLIP_DEVICE, for library users and scripts that set it once (the CLI reads that variable as its own
`--device` default, so one variable means the same in both), and then to auto. This module is the only place
in the library that reads the variable; tests/test_architecture.py holds every other module to that.
"""

from __future__ import annotations

import os

from .errors import PcclipError

DEVICE_ENV = "PCCLIP_DEVICE"


def device_choice(device: str | None = None) -> str:
    """The choice as given, else $PCCLIP_DEVICE, else auto; lower case, not yet checked against the hardware."""
    return (device or os.environ.get(DEVICE_ENV) or "auto").lower()


def resolve_device(device: str | None = None) -> str:
    """The torch device to use: `auto` (the default) means CUDA when present, else CPU; `cuda` without a GPU is
    an error (one `error:` line at the CLI)."""
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
