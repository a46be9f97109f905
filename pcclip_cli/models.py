"""The CLIP model registry: load a model by SPEC (see model_spec), once per process and device, and list them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from .clip.checkpoints import META_FILE, find_checkpoints, load_checkpoint, read_checkpoint_meta
from .clip.loaded import LoadedClip, from_architecture
from .clip.spec import (
    MODEL_CONFIGS_DIR,
    PAPER_MODEL,
    SHAPES_MODEL,
    SHAPES_MODELS,
    ModelSpec,
    SpecKind,
    builtin_architectures,
    create_model,
    download_error,
    open_clip_module,
    parse_spec,
)
from .core.device import resolve_device
from .core.errors import CheckpointError
from .core.paths import models_dir
from .training.shapes_recipe import describe_recipe, ensure_shapes_model, shapes_model_dir

__all__ = ["LoadedClip", "load_clip", "clip_for", "list_models", "parse_spec", "SHAPES_MODEL", "PAPER_MODEL",
           "SpecKind", "shapes_model_dir", "ensure_shapes_model"]


@functools.lru_cache(maxsize=8)
def _load_cached(spec_str: str, device: str) -> LoadedClip:
    return _load_uncached(parse_spec(spec_str), device)


def _load_uncached(spec: ModelSpec, device: str) -> LoadedClip:
    if spec.kind == SpecKind.shapes:
        loaded = load_checkpoint(ensure_shapes_model(spec.raw, device=device), device)
        loaded.spec, loaded.kind = spec.raw, SpecKind.shapes
        return loaded
    if spec.kind == SpecKind.checkpoint:
        return load_checkpoint(spec.path, device)
    if spec.kind in (SpecKind.hf_hub, SpecKind.pretrained):
        arch, tag = (spec.raw, "hf") if spec.kind == SpecKind.hf_hub else (spec.arch, spec.tag)
        try:
            model, preprocess_train, preprocess, tokenizer = create_model(arch, tag, device)
        except Exception as exc:  # hub and network errors come in many types
            raise download_error(spec.raw, exc) from None
        return LoadedClip(spec.raw, spec.kind, arch, model, preprocess, preprocess_train, tokenizer,
                          device, spec.raw, spec.raw)
    return from_architecture(spec.arch, device, spec.raw)


def load_clip(spec: str, device: str | None = None, *, fresh: bool = False) -> LoadedClip:
    """Load a CLIP model by SPEC, once per process and device (None: auto, see core.device). `fresh=True`
    returns a private copy to train."""
    parsed = parse_spec(spec)
    dev = resolve_device(device)
    if fresh:
        return _load_uncached(parsed, dev)
    return _load_cached(parsed.canonical if parsed.kind != SpecKind.checkpoint else str(parsed.path.resolve()), dev)


def clip_for(model, device: str | None = None) -> LoadedClip:
    """A LoadedClip from a SPEC string (loaded now on `device`, after the caller checked its inputs) or an
    already loaded one (which keeps its own device)."""
    return load_clip(model, device) if isinstance(model, str) else model


def pretrained_tags() -> list[str]:
    """open_clip's ARCH:TAG list, cached per open_clip version in PCCLIP_HOME: importing open_clip (and torch)
    takes seconds, and `pcclip models` needs only these names."""
    from importlib.metadata import PackageNotFoundError, version

    from .core.io import write_json_atomic
    from .core.paths import home

    try:
        key = version("open_clip_torch")
    except PackageNotFoundError:
        key = "unknown"
    cache = home() / f"open_clip-pretrained-{key}.json"
    try:
        return list(json.loads(cache.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    tags = [f"{a}:{t}" for a, t in open_clip_module().list_pretrained()]
    try:
        write_json_atomic(cache, tags)
    except OSError:
        pass  # a read-only home only costs the next listing the import again
    return tags


def list_models(search: list[Path] | None = None, all_pretrained: bool = False) -> dict:
    """Everything `--model` accepts: built-ins, the shapes model, pretrained tags and local checkpoints."""
    builtins = []
    for name in builtin_architectures():
        # The shipped JSON itself (it names HF text towers by hub id): model_config would import open_clip.
        cfg = json.loads((MODEL_CONFIGS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        builtins.append({"name": name, "image_size": cfg.get("vision_cfg", {}).get("image_size"),
                         "embed_dim": cfg.get("embed_dim"),
                         "layers": cfg.get("vision_cfg", {}).get("layers"),
                         "text_tower": cfg.get("text_cfg", {}).get("hf_model_name")})
    shapes = []
    for name in SHAPES_MODELS:
        folder = shapes_model_dir(name)
        shapes.append({"name": name, "cached": (folder / META_FILE).exists(), "path": str(folder),
                       "recipe": describe_recipe(name)})
    pretrained = pretrained_tags()
    if not all_pretrained:
        pretrained = [p for p in pretrained if p.startswith(("ViT-L-14:", "ViT-B-32:", "ViT-B-16:"))]
        pretrained.sort(key=lambda p: (p != PAPER_MODEL, p))
    checkpoints = []
    for ckpt in find_checkpoints(list(search or []) + [models_dir()]):
        try:
            meta = read_checkpoint_meta(ckpt)
        except CheckpointError:
            continue
        checkpoints.append({"path": str(ckpt), "arch": meta.get("arch"), "base": meta.get("base"),
                            "scope": meta.get("scope"), "objective": meta.get("training", {}).get("objective")})
    return {
        "default": SHAPES_MODEL,
        "shapes": shapes,
        "builtin": builtins,
        "paper": PAPER_MODEL,
        "pretrained": pretrained,
        "checkpoints": checkpoints,
    }
