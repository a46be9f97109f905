"""The CLIP model registry: one place that parses a model SPEC, loads it once per process, and saves checkpoints.

SPEC grammar (extends open_clip's names):
  shapes-clip                        the offline default, trained by pcclip on the shapes world (cached)
  pcclip-tiny, pcclip-micro          built-in small architectures, randomly initialised
  ViT-L-14:datacomp_xl_s13b_b90k     an open_clip architecture with a pretrained tag (the paper's model)
  ViT-B-32                           any open_clip architecture, randomly initialised
  hf-hub:org/repo                    an open_clip model on the Hugging Face hub
  path/to/ckpt, ckpt:path            a checkpoint directory written by pcclip (model.safetensors + pcclip.json)
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import CheckpointError, PcclipError, UnknownModelError, short_list
from .paths import MODEL_CONFIGS_DIR, models_dir

SHAPES_MODEL = "shapes-clip"
PAPER_MODEL = "ViT-L-14:datacomp_xl_s13b_b90k"
CHECKPOINT_FORMAT = "pcclip-checkpoint"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "pcclip.json"
# An architecture name becomes a file name when a checkpoint registers its config: no path separators.
_ARCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


class SpecKind(str, enum.Enum):
    shapes = "shapes"
    architecture = "architecture"
    pretrained = "pretrained"
    hf_hub = "hf-hub"
    checkpoint = "checkpoint"


class Scope(str, enum.Enum):
    """Which tower(s) a finetune updates (`--scope`)."""

    text = "text"
    image = "image"
    both = "both"


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


@functools.cache
def _open_clip():
    """Import open_clip once and register the built-in configs with it."""
    import open_clip

    for cfg in sorted(MODEL_CONFIGS_DIR.glob("*.json")):
        open_clip.add_model_config(cfg)
    return open_clip


def known_architectures() -> list[str]:
    return list(_open_clip().list_models())


def pretrained_tags(arch: str) -> list[str]:
    return list(_open_clip().list_pretrained_tags_by_model(arch))


def parse_spec(spec: str) -> ModelSpec:
    """Classify a SPEC string without loading anything heavy beyond open_clip's name tables."""
    raw = (spec or "").strip()
    if not raw:
        raise UnknownModelError("empty model SPEC; try `--model shapes-clip` or see `pcclip models`")
    if raw in (SHAPES_MODEL, "shapes"):
        return ModelSpec(SpecKind.shapes, SHAPES_MODEL)
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


def resolve_device(device: str | None = None) -> str:
    """`auto` (the default, or $PCCLIP_DEVICE) means CUDA when present, else CPU."""
    import torch

    choice = (device or os.environ.get("PCCLIP_DEVICE") or "auto").lower()
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PcclipError("--device cuda was asked for but no CUDA device is available; use --device cpu")
        return choice
    if choice == "cpu":
        return "cpu"
    raise PcclipError(f"unknown device {device!r}; use auto, cpu or cuda")


@dataclass
class LoadedClip:
    """A CLIP model ready for use: model, preprocessing and tokenizer travel together."""

    spec: str
    kind: SpecKind
    arch: str
    model: Any
    preprocess: Any  # eval transform: PIL image -> tensor
    preprocess_train: Any
    tokenizer: Any
    device: str
    fingerprint: str  # identity of all weights
    image_fingerprint: str  # identity of the image tower and its preprocessing (the embedding cache key)
    info: dict = field(default_factory=dict)  # checkpoint metadata (base, scope, training, metrics)

    @property
    def scope(self) -> str | None:
        return self.info.get("scope")

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") and \
            self.model.text_projection is not None else int(self.model.visual.output_dim)

    def encode_texts(self, texts: list[str], batch_size: int = 256):
        """L2-normalised text embeddings as a float32 numpy array (n, d)."""
        import numpy as np
        import torch

        out = []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
                emb = self.model.encode_text(tokens, normalize=True)
                out.append(emb.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def encode_image_batch(self, images):
        """L2-normalised embeddings of a list of PIL images (no cache: see embeddings.embed_images)."""
        import torch

        self.model.eval()
        with torch.inference_mode():
            batch = torch.stack([self.preprocess(im) for im in images]).to(self.device)
            return self.model.encode_image(batch, normalize=True).float().cpu().numpy()


def tensor_digest(state_dict) -> str:
    """A content hash of a state dict (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes())
    return h.hexdigest()


def image_tower_digest(model, arch: str) -> str:
    return "sha:" + hashlib.sha256(f"{arch}|{tensor_digest(model.visual.state_dict())}".encode()).hexdigest()[:24]


@contextlib.contextmanager
def _quiet_root_logger():
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _create(arch: str, pretrained: str | None, device: str):
    open_clip = _open_clip()
    import torch

    if pretrained is None:
        # Random init is seeded so that the same architecture SPEC means the same weights in every process;
        # open_clip's "no pretrained weights" warning is expected here and silenced.
        with torch.random.fork_rng(devices=[]), _quiet_root_logger():
            torch.manual_seed(0)
            model, preprocess_train, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    else:
        model, preprocess_train, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained)
    tokenizer = open_clip.get_tokenizer(arch)
    return model.to(device).eval(), preprocess_train, preprocess, tokenizer


def _download_error(spec: str, exc: Exception) -> PcclipError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = (
        "HF_HUB_OFFLINE=1 is set: unset it on a machine with hub access, or use a local checkpoint"
        if offline
        else "check the network and the name; offline, use shapes-clip or a local checkpoint directory"
    )
    return PcclipError(f"could not fetch weights for {spec} ({type(exc).__name__}); {hint}")


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
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{meta_path} is corrupt ({exc}); re-run the training that wrote it") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or not meta.get("arch"):
        raise CheckpointError(f"{meta_path} is not a pcclip checkpoint description (format/arch missing)")
    if not isinstance(meta["arch"], str) or not _ARCH_NAME.fullmatch(meta["arch"]):
        raise CheckpointError(f"{meta_path}: arch {str(meta['arch'])[:80]!r} is not an architecture name (letters, "
                              "digits, '-', '_', '.', '+'); the checkpoint is damaged or was tampered with")
    return meta


def _register_checkpoint_arch(meta: dict) -> None:
    """A checkpoint of a custom architecture carries its open_clip config; make open_clip know it."""
    open_clip = _open_clip()
    arch = meta["arch"]
    if arch in open_clip.list_models():
        return
    cfg = meta.get("model_config")
    if not cfg:
        raise CheckpointError(f"checkpoint architecture {arch!r} is unknown and the checkpoint carries no model_config")
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="pcclip-arch-")) / f"{arch}.json"
    tmp.write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp)


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


def _load_checkpoint(spec: ModelSpec, device: str) -> LoadedClip:
    path = spec.path
    meta = read_checkpoint_meta(path)
    weights = path / WEIGHTS_FILE
    if weights.exists() and "weights_bytes" in meta and weights.stat().st_size != meta["weights_bytes"]:
        raise CheckpointError(
            f"{weights} has {weights.stat().st_size} bytes but {META_FILE} records {meta['weights_bytes']}: "
            "the checkpoint is torn or its files are mismatched"
        )
    _register_checkpoint_arch(meta)
    state = load_state_dict_safely(path)
    model, preprocess_train, preprocess, tokenizer = _create(meta["arch"], None, "cpu")
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


_notify = None  # where notices for people go; the CLI points it at stderr, library users may too


def set_notifier(fn) -> None:
    """Route one-line notices (such as first-use training of shapes-clip) to `fn(message)`."""
    global _notify
    _notify = fn


def shapes_model_dir() -> Path:
    return models_dir() / SHAPES_MODEL


def ensure_shapes_model(progress=None) -> Path:
    """Return the cached shapes base model, training it on first use (see training.train_shapes_base)."""
    target = shapes_model_dir()
    if (target / META_FILE).exists():
        return target
    try:
        from .training import train_shapes_base
    except ImportError:
        raise PcclipError(
            f"{SHAPES_MODEL} is not trained yet and this build has no trainer; use a built-in architecture "
            "such as pcclip-tiny"
        ) from None
    if _notify:
        _notify(f"training {SHAPES_MODEL} on first use (about 3 minutes on 2 CPU cores, once); "
                f"it is cached in {target}")
    return train_shapes_base(target, progress=progress)


@functools.lru_cache(maxsize=8)
def _load_cached(spec_str: str, device: str) -> LoadedClip:
    return _load_uncached(parse_spec(spec_str), device)


def _load_uncached(spec: ModelSpec, device: str) -> LoadedClip:
    if spec.kind == SpecKind.shapes:
        loaded = _load_checkpoint(ModelSpec(SpecKind.checkpoint, SHAPES_MODEL, path=ensure_shapes_model()), device)
        loaded.spec, loaded.kind = SHAPES_MODEL, SpecKind.shapes
        return loaded
    if spec.kind == SpecKind.checkpoint:
        return _load_checkpoint(spec, device)
    if spec.kind == SpecKind.hf_hub:
        try:
            model, preprocess_train, preprocess, tokenizer = _create(spec.raw, "hf", device)
        except Exception as exc:  # hub and network errors come in many types
            raise _download_error(spec.raw, exc) from None
        return LoadedClip(spec.raw, spec.kind, spec.raw, model, preprocess, preprocess_train, tokenizer,
                          device, spec.raw, spec.raw)
    if spec.kind == SpecKind.pretrained:
        try:
            model, preprocess_train, preprocess, tokenizer = _create(spec.arch, spec.tag, device)
        except Exception as exc:
            raise _download_error(spec.raw, exc) from None
        return LoadedClip(spec.raw, spec.kind, spec.arch, model, preprocess, preprocess_train, tokenizer,
                          device, spec.raw, spec.raw)
    model, preprocess_train, preprocess, tokenizer = _create(spec.arch, None, device)
    digest = image_tower_digest(model, spec.arch)
    return LoadedClip(spec.raw, spec.kind, spec.arch, model, preprocess, preprocess_train, tokenizer, device,
                      fingerprint=f"{spec.arch}:random0", image_fingerprint=digest)


def load_clip(spec: str, device: str | None = None, *, fresh: bool = False) -> LoadedClip:
    """Load a CLIP model by SPEC, once per process and device. `fresh=True` returns a private copy to train."""
    parsed = parse_spec(spec)
    dev = resolve_device(device)
    if fresh:
        return _load_uncached(parsed, dev)
    return _load_cached(parsed.canonical if parsed.kind != SpecKind.checkpoint else str(parsed.path.resolve()), dev)


def model_config(arch: str) -> dict:
    return dict(_open_clip().get_model_config(arch) or {})


def save_checkpoint(model, out_dir: str | os.PathLike, *, arch: str, meta: dict,
                    image_fingerprint: str | None = None) -> Path:
    """Write model.safetensors then pcclip.json, each atomically; the JSON (written last) records the weights'
    size and hash, so a torn pair is detected on load. Loads in plain open_clip too:
    `create_model(arch).load_state_dict(safetensors.torch.load_file(dir/model.safetensors))`."""
    from safetensors.torch import save_file

    from .io import atomic_path, sha256_file, write_json_atomic

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


def list_models(search: list[Path] | None = None, all_pretrained: bool = False) -> dict:
    """Everything `--model` accepts: built-ins, the shapes model, pretrained tags and local checkpoints."""
    open_clip = _open_clip()
    builtins = []
    for name in builtin_architectures():
        cfg = model_config(name)
        builtins.append({"name": name, "image_size": cfg.get("vision_cfg", {}).get("image_size"),
                         "embed_dim": cfg.get("embed_dim"),
                         "layers": cfg.get("vision_cfg", {}).get("layers")})
    shapes_dir = shapes_model_dir()
    pretrained = [f"{a}:{t}" for a, t in open_clip.list_pretrained()]
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
        "shapes": {"name": SHAPES_MODEL, "cached": (shapes_dir / META_FILE).exists(), "path": str(shapes_dir)},
        "builtin": builtins,
        "paper": PAPER_MODEL,
        "pretrained": pretrained,
        "checkpoints": checkpoints,
    }
