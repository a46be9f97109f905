"""The embedded default index: `retrieve` with no --index searches the shapes world's test images.

It holds the held-out test split of the world the default model (shapes-clip) was trained on, embedded with
that model, and is built on first use and cached beside the model in PCCLIP_HOME's models folder. When the
model's image tower changes (a retrained shapes-clip), the index is rebuilt. `DEFAULT_INDEX` is read at call
time, so a caller (a test) can point it at another model or world.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .layout import MANIFEST_FILE


@dataclass(frozen=True)
class DefaultIndexSpec:
    model: str = "shapes-clip"  # the model `rank` and `retrieve` use by default
    world_images: int = 2000  # the shapes-clip recipe's world (shapes_model.ShapesRecipe): its test split is held out
    world_seed: int = 0
    split: str = "test"

    @property
    def name(self) -> str:
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.model)
        return f"{slug}-{self.split}-index"


DEFAULT_INDEX = DefaultIndexSpec()


def default_index_dir(spec: DefaultIndexSpec | None = None) -> Path:
    from pcclip_cli.core.paths import models_dir

    return models_dir() / (spec or DEFAULT_INDEX).name


def _world_for(spec: DefaultIndexSpec, clip) -> Path:
    """The world the model was trained on when its checkpoint says so, else a world built from the spec."""
    from pcclip_cli.core.paths import worlds_dir
    from pcclip_cli.data.shapes import WorldConfig, build_world

    recipe = (clip.info or {}).get("shapes_recipe") or {}
    recorded = Path(recipe["world"]) if recipe.get("world") else None
    if recorded is not None and (recorded / f"captions-{spec.split}.jsonl").exists():
        return recorded
    world = worlds_dir() / f"shapes-n{spec.world_images}-seed{spec.world_seed}"
    build_world(world, WorldConfig(images=spec.world_images, seed=spec.world_seed), force=True)
    return world


def ensure_default_index(spec: DefaultIndexSpec | None = None, *, device: str | None = None, notify=None,
                         progress=None) -> Path:
    """The default index's directory, built (with a notice) when missing or made with another image tower; the
    model loads on `device` (None: auto)."""
    from pcclip_cli.models import load_clip

    from .build import build_index

    spec = spec or DEFAULT_INDEX
    out = default_index_dir(spec)
    clip = load_clip(spec.model, device)
    manifest = out / MANIFEST_FILE
    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))["model"]["image_fingerprint"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            recorded = None
        if recorded == clip.image_fingerprint:
            return out
        why = "its model has changed"
    else:
        why = "first use"
    world = _world_for(spec, clip)
    if notify:
        notify(f"building the default index ({why}): the {spec.split} images of the shapes world {world} "
               f"under {spec.model}; cached in {out}")
    build_index([world / f"captions-{spec.split}.jsonl"], out, model=spec.model, device=device, progress=progress)
    return out
