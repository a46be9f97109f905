"""The offline default models, `shapes-clip` and `shapes-clip-scratch`: their recipes, and their training on first
use into the model cache."""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pcclip_cli.clip.checkpoints import META_FILE, is_checkpoint, load_checkpoint, update_checkpoint_meta
from pcclip_cli.clip.loaded import from_architecture
from pcclip_cli.clip.spec import PRODUCE_MODEL, SCRATCH_SHAPES_MODEL, SHAPES_MODEL
from pcclip_cli.core.device import resolve_device
from pcclip_cli.core.dirs import build_dir
from pcclip_cli.core.notices import notify
from pcclip_cli.core.paths import models_dir

from .config import Init, Objective, OptimizerKind, ScheduleKind, Scope, TrainConfig
from .run_dir import CHECKPOINTS_DIR
from .sanity import zero_shot_scores
from .trainer import Trainer


@dataclass(frozen=True)
class ShapesRecipe:
    """How `shapes-clip` is made (LiT): the `pcclip-minilm` architecture, whose text tower is the pretrained
    sentence encoder all-MiniLM-L6-v2, locked; its image tower is trained from random init with the CLIP loss on
    the shapes world's captions. The text tower stays locked so the model keeps the encoder's English: the captions
    are embedded once, and only the image tower learns to meet them."""

    images: int = 2000
    arch: str = "pcclip-minilm"
    scope: Scope = Scope.image
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    seed: int = 0
    world: str = "shapes"  # shapes | produce (data/produce.py, at its frozen default settings)

    @classmethod
    def from_scratch(cls) -> ShapesRecipe:
        """`shapes-clip-scratch`, the first default: pcclip-tiny, both towers from random init. Its text tower
        knows only the shapes captions' language."""
        return cls(arch="pcclip-tiny", scope=Scope.both, epochs=20)

    @classmethod
    def produce(cls) -> ShapesRecipe:
        """`produce-clip`: the same LiT recipe on the produce world, whose captions name the item only in part."""
        return cls(world="produce")

    @classmethod
    def for_tests(cls) -> ShapesRecipe:
        """A stand-in that trains in seconds: pcclip-micro on the 60-image test world."""
        return cls(images=60, arch="pcclip-micro", scope=Scope.both, epochs=40, batch_size=16, lr=2e-3,
                   warmup_steps=10)

    def command(self, world: str = "$PCCLIP_HOME/worlds/shapes-n2000-seed0", out: str = "shapes-clip-run") -> str:
        """The shell commands that reproduce this recipe's model (docs/training.md quotes them)."""
        cfg = self.train_config(Path(world) / "captions.jsonl", Path(out))
        flags = []
        for key in ("objective", "init", "model", "scope", "captions", "split", "optimizer", "lr", "weight_decay",
                    "schedule", "warmup_steps", "epochs", "batch_size", "seed", "out"):
            value = getattr(cfg, key)
            flags.append(f"--{key.replace('_', '-')} {getattr(value, 'value', value)}")
        return (f"pcclip data {self.world} {world} --images {self.images} --seed {self.seed}\n"
                "pcclip train " + " \\\n    ".join(flags))

    def train_config(self, captions: Path, out: Path) -> TrainConfig:
        return TrainConfig(model=self.arch, out=str(out), objective=Objective.caption, captions=str(captions),
                           split="train", scope=self.scope, init=Init.random, optimizer=OptimizerKind.adamw,
                           lr=self.lr, weight_decay=self.weight_decay, schedule=ScheduleKind.cosine,
                           warmup_steps=self.warmup_steps, epochs=self.epochs, batch_size=self.batch_size,
                           seed=self.seed, save_every=self.epochs, log_every=25)


RECIPES = {SHAPES_MODEL: ShapesRecipe(), SCRATCH_SHAPES_MODEL: ShapesRecipe.from_scratch(),
           PRODUCE_MODEL: ShapesRecipe.produce()}


def describe_recipe(name: str = SHAPES_MODEL) -> str:
    r = RECIPES[name]
    towers = "image tower trained against the locked sentence encoder" if r.scope == Scope.image else \
        "both towers trained from scratch"
    return f"{r.arch} on the {r.world} world ({r.images} images), {towers}, {r.epochs} epochs"


def shapes_model_dir(name: str = SHAPES_MODEL) -> Path:
    return models_dir() / name


def _shapes_world(images: int, seed: int, world_dir: Path | None, progress=None, world: str = "shapes") -> Path:
    """The world the base model trains on. By default a folder of its own (`worlds/shapes-n2000-seed0`), not
    `worlds/shapes-default`, which other commands build with their own size; being the trainer's own, it is
    rebuilt when the world format changes."""
    from pcclip_cli.core.paths import worlds_dir

    if world == "produce":
        from pcclip_cli.data.produce import WORLD_VERSION as version
        from pcclip_cli.data.produce import ProduceConfig as WorldConfig
        from pcclip_cli.data.produce import build_world
    else:
        from pcclip_cli.data.shapes import WORLD_VERSION as version
        from pcclip_cli.data.shapes import WorldConfig, build_world

    cfg = WorldConfig(images=images, seed=seed)
    path = world_dir or worlds_dir() / (f"shapes-n{images}-seed{seed}" if world == "shapes" else
                                        f"{world}-v{version}-n{images}-seed{seed}")
    draw = (lambda d, t: progress(d, t, stage=f"drawing {world}")) if progress else None
    build_world(path, cfg, force=world_dir is None, progress=draw)
    return path


@contextlib.contextmanager
def _file_lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def train_shapes_base(target_dir: str | Path, progress=None, *, recipe: ShapesRecipe | None = None,
                      world_dir: str | Path | None = None, device: str | None = None) -> Path:
    """Train the shapes base model into `target_dir` (atomically: a temp dir beside it, renamed at the end),
    unless it is already there. Builds or reuses the shapes world; measures zero-shot accuracy on its test
    split and records it, with the wall time, in pcclip.json's metrics. It trains on `device` (None: auto)."""
    recipe = recipe or ShapesRecipe()
    target = Path(target_dir)
    with _file_lock(target.parent / f".{target.name}.lock"):
        if is_checkpoint(target):
            return target
        t0 = time.perf_counter()
        world = _shapes_world(recipe.images, recipe.seed, Path(world_dir) if world_dir else None, progress,
                              recipe.world)
        with build_dir(target) as run:
            cfg = recipe.train_config(world / "captions.jsonl", run)
            result = Trainer(cfg, from_architecture(recipe.arch, resolve_device(device)), progress=progress).fit()
            scores = zero_shot_scores(load_checkpoint(run, "cpu"), world, *(
                (("produce", "colour", "size", "shape", "pattern"),) if recipe.world == "produce" else ()))
            update_checkpoint_meta(run, metrics={"zero_shot_test": scores,
                                                 "wall_seconds": round(time.perf_counter() - t0, 1),
                                                 "train_seconds": result.seconds},
                                   shapes_recipe={**asdict(recipe), "world": str(world)})
            shutil.rmtree(run / CHECKPOINTS_DIR, ignore_errors=True)
    return target


def ensure_shapes_model(name: str = SHAPES_MODEL, progress=None, *, device: str | None = None) -> Path:
    """The cached shapes model `name`, trained on first use (on `device`; None: auto)."""
    target = shapes_model_dir(name)
    if (target / META_FILE).exists():
        return target
    notify(f"training {name} on first use (a few minutes on 2 CPU cores, once; {describe_recipe(name)}); "
           f"it is cached in {target}")
    return train_shapes_base(target, progress=progress, recipe=RECIPES[name], device=device)
