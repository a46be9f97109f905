"""The checkpoint format: a directory with model.safetensors and pcclip.json, written and read only here."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pcclip_cli import __version__
from pcclip_cli.core.errors import CheckpointError

from .loaded import LoadedClip, image_tower_digest, tensor_digest
from .spec import SpecKind, create_model, model_config, open_clip_module, register_config

CHECKPOINT_FORMAT = "pcclip-checkpoint"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "pcclip.json"
# An architecture name becomes a file name when a checkpoint registers its config: no path separators.
ARCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


def is_checkpoint(path: Path) -> bool:
    """A complete checkpoint directory: both files present."""
    return (Path(path) / META_FILE).exists() and (Path(path) / WEIGHTS_FILE).exists()


def read_checkpoint_meta(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_file():
        if path.suffix in (".pt", ".pth", ".bin", ".pkl", ".ckpt"):
            raise CheckpointError(
                f"{path} is a bare pickle-style file; pcclip loads checkpoint directories with {WEIGHTS_FILE} "
                f"and {META_FILE} (written by `pcclip train`)"
            )
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory that holds {META_FILE}")
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise CheckpointError(f"{path} is not a pcclip checkpoint: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{meta_path} is corrupt ({exc}); re-run the training that wrote it") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or not meta.get("arch"):
        raise CheckpointError(f"{meta_path} is not a pcclip checkpoint description (format/arch missing)")
    if not isinstance(meta["arch"], str) or not ARCH_NAME.fullmatch(meta["arch"]):
        raise CheckpointError(f"{meta_path}: arch {str(meta['arch'])[:80]!r} is not an architecture name (letters, "
                              "digits, '-', '_', '.', '+'); the checkpoint is damaged or was tampered with")
    return meta


def register_checkpoint_arch(meta: dict) -> None:
    """A checkpoint of a custom architecture carries its open_clip config; make open_clip know it."""
    open_clip = open_clip_module()
    arch = meta["arch"]
    if arch in open_clip.list_models():
        return
    cfg = meta.get("model_config")
    if not cfg:
        raise CheckpointError(f"checkpoint architecture {arch!r} is unknown and the checkpoint carries no model_config")
    register_config(arch, cfg)


def load_state_dict_safely(path: Path) -> dict:
    """Load weights without unpickling arbitrary objects: safetensors, else torch.load(weights_only=True)."""
    import torch

    weights = path / WEIGHTS_FILE
    if weights.exists():
        from safetensors.torch import load_file

        try:
            return load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types for torn or foreign files
            raise CheckpointError(f"{weights} is not a valid safetensors file ({exc}); the checkpoint is damaged") from None
    legacy = path / "model.pt"
    if legacy.exists():
        try:
            state = torch.load(legacy, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"{legacy} was refused: it is not a plain tensor state dict ({type(exc).__name__}); "
                "pcclip never unpickles arbitrary objects"
            ) from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{legacy} does not hold a state dict")
        return state
    raise CheckpointError(f"checkpoint {path} has no {WEIGHTS_FILE}")


def load_checkpoint(path: Path, device: str) -> LoadedClip:
    """A checkpoint directory as a LoadedClip, its sizes and tensor names checked against its architecture."""
    path = Path(path)
    meta = read_checkpoint_meta(path)
    weights = path / WEIGHTS_FILE
    if weights.exists() and "weights_bytes" in meta and weights.stat().st_size != meta["weights_bytes"]:
        raise CheckpointError(
            f"{weights} has {weights.stat().st_size} bytes but {META_FILE} records {meta['weights_bytes']}: "
            "the checkpoint is torn or its files are mismatched"
        )
    register_checkpoint_arch(meta)
    state = load_state_dict_safely(path)
    model, preprocess_train, preprocess, tokenizer = create_model(meta["arch"], None, "cpu")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("size mismatch for ", 2)[1].split(":")[0] if "size mismatch" in str(exc) else "?"
        raise CheckpointError(f"{path} does not match architecture {meta['arch']}: tensor shapes differ "
                              f"(first: {first})") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path} does not match architecture {meta['arch']}: "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:2]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:2]})"
        )
    model = model.to(device).eval()
    fingerprint = "ckpt:" + (meta.get("weights_sha256") or tensor_digest(model.state_dict()))[:24]
    image_fp = meta.get("image_fingerprint") or image_tower_digest(model, meta["arch"])
    return LoadedClip(
        spec=str(path), kind=SpecKind.checkpoint, arch=meta["arch"], model=model, preprocess=preprocess,
        preprocess_train=preprocess_train, tokenizer=tokenizer, device=device, fingerprint=fingerprint,
        image_fingerprint=image_fp, info=meta,
    )


def save_checkpoint(model, out_dir: str | os.PathLike, *, arch: str, meta: dict,
                    image_fingerprint: str | None = None) -> Path:
    """Write model.safetensors then pcclip.json, each atomically; the JSON (written last) records the weights'
    size and hash, so a torn pair is detected on load. Loads in plain open_clip too:
    `create_model(arch).load_state_dict(safetensors.torch.load_file(dir/model.safetensors))`."""
    from safetensors.torch import save_file

    from pcclip_cli.core.io import atomic_path, sha256_file, write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    weights = out / WEIGHTS_FILE
    full = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "arch": arch,
        "model_config": model_config(arch),
        "pcclip_version": __version__,
        **meta,
        "weights_bytes": weights.stat().st_size,
        "weights_sha256": sha256_file(weights),
        "image_fingerprint": image_fingerprint or image_tower_digest(model, arch),
    }
    write_json_atomic(out / META_FILE, full)
    return out


def update_checkpoint_meta(path: str | os.PathLike, *, metrics: dict | None = None, **fields) -> dict:
    """Add measurements to a saved checkpoint's pcclip.json (merged into its metrics) and extra top-level
    fields, atomically; the format, weights and fingerprint fields are this module's and cannot be changed."""
    from pcclip_cli.core.io import write_json_atomic

    owned = {"format", "format_version", "arch", "model_config", "weights_bytes", "weights_sha256",
             "image_fingerprint"}
    if owned & fields.keys():
        raise ValueError(f"update_checkpoint_meta cannot change {sorted(owned & fields.keys())}")
    path = Path(path)
    meta = read_checkpoint_meta(path)
    if metrics:
        meta["metrics"] = {**(meta.get("metrics") or {}), **metrics}
    meta.update(fields)
    write_json_atomic(path / META_FILE, meta)
    return meta


def find_checkpoints(roots: list[Path], max_depth: int = 3) -> list[Path]:
    """Checkpoint directories (holding pcclip.json) under the given roots, shallowly."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
            if depth >= max_depth:
                dirnames[:] = []
            if META_FILE in filenames:
                found.append(Path(dirpath))
    return sorted(set(found))
