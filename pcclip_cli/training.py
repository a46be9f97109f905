"""The PC-CLIP training loop: objectives, scopes, schedule, checkpoints and exact resume, weight averaging, DDP.

    from pcclip_cli.training import TrainConfig, train
    result = train(TrainConfig(model="shapes-clip", comparatives="pairs.jsonl", captions="captions.jsonl",
                               out="runs/pc", lr=1e-5, epochs=5, batch_size=128))

A run directory holds `train_config.json` and `config.toml` (the resolved config), `metrics.jsonl`,
`checkpoints/epoch-NNNN/` (model, optimizer and RNG state, written atomically every `save_every` epochs) and,
when the run finishes, the final checkpoint itself (`model.safetensors` + `pcclip.json`), so `--model OUT` works.
Under `torchrun --nproc_per_node N` the same code runs data-parallel (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .config import from_dict, load_toml, to_dict
from .errors import CheckpointError, DataError, PcclipError
from .io import write_json_atomic, write_text_atomic
from .losses import LossConfig, LossKind, combined_loss
from .models import META_FILE, WEIGHTS_FILE, Scope

CONFIG_JSON = "train_config.json"
CONFIG_TOML = "config.toml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
PAPER_LR = {"pc": 1e-8, "caption": 1e-6}


class Objective(str, enum.Enum):
    """What the run aligns: image differences with comparatives (`pc`), or images with captions."""

    pc = "pc"
    caption = "caption"


class Init(str, enum.Enum):
    """Start from the SPEC's weights, or from a seeded random init of its architecture."""

    pretrained = "pretrained"
    random = "random"


class OptimizerKind(str, enum.Enum):
    adam = "adam"
    adamw = "adamw"


class ScheduleKind(str, enum.Enum):
    exponential = "exponential"  # lr * gamma**epoch, torch's ExponentialLR stepped per epoch (the paper)
    cosine = "cosine"  # per-step cosine decay to 0 after `warmup_steps` of linear warm-up
    constant = "constant"


# Keys that define what a run computes: `--resume` refuses to change them.
IDENTITY_KEYS = ("model", "objective", "comparatives", "captions", "split", "max_pairs", "loss", "temperature",
                 "rank_weights", "base_loss", "mse_raw_difference", "scope", "reference_params", "init",
                 "optimizer", "lr", "weight_decay", "schedule", "gamma", "warmup_steps", "batch_size",
                 "grad_clip", "seed")
PATH_KEYS = ("out", "comparatives", "captions", "eval_task")


@dataclass
class TrainConfig:
    """Every setting of a run. `pcclip train` flags and `--config run.toml` keys use these names (flags with
    dashes). None means "the default for this objective" where noted."""

    model: str = "shapes-clip"  # base model SPEC (see `pcclip models`)
    out: str | None = None  # run directory; the final checkpoint is written here
    objective: Objective = Objective.pc
    comparatives: str | None = None  # comparatives JSONL (objective pc)
    captions: str | None = None  # captions.jsonl: image ids -> images (pc), image-caption pairs (caption)
    split: str | None = None  # keep only images of this split of the captions file (e.g. "train")
    max_pairs: int | None = None  # subsample the comparatives to this many (seeded)
    loss: LossKind = LossKind.contrastive
    temperature: float | None = None  # None: fixed 1.0 for pc (paper); the model's learnable logit_scale for caption
    rank_weights: list[float] = field(default_factory=lambda: [0.0, 0.0])  # RankCLIP lambda1, lambda2
    base_loss: bool = True  # False: RankCLIP's "no base loss" ablation
    mse_raw_difference: bool = False  # MSE on the un-normalised difference, as the reference code does
    scope: Scope = Scope.text  # which tower(s) are finetuned
    reference_params: bool = False  # text scope: optimise only the text transformer blocks, as the reference
    init: Init = Init.pretrained
    optimizer: OptimizerKind = OptimizerKind.adam
    lr: float | None = None  # None: the paper's 1e-8 (pc) / 1e-6 (caption)
    weight_decay: float = 0.0
    schedule: ScheduleKind = ScheduleKind.exponential
    gamma: float = 0.9  # ExponentialLR decay per epoch
    warmup_steps: int = 0
    epochs: int = 20
    batch_size: int = 512  # global batch (split across processes under torchrun)
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    seed: int = 0  # data order, random init, everything random in the run
    save_every: int = 1  # write a resumable checkpoint every N epochs (and after the last)
    keep_checkpoints: int = 1  # how many epoch checkpoints to keep (the newest)
    weight_average: float | None = None  # WiSE-FT: final = a * finetuned + (1 - a) * base
    eval_task: str | None = None  # class manifest JSONL (zero-shot) or groups task TOML, scored every epoch
    eval_template: str = "a photo of a {label}"  # zero-shot prompt for --eval-task manifests
    log_every: int = 10  # steps between metrics.jsonl step records
    amp: bool = False  # bf16 autocast (CUDA only; the CPU path stays fp32)
    compile: bool = False  # torch.compile the step (CUDA only)

    def __post_init__(self):
        self.objective, self.loss = Objective(self.objective), LossKind(self.loss)
        self.scope, self.init = Scope(self.scope), Init(self.init)
        self.optimizer, self.schedule = OptimizerKind(self.optimizer), ScheduleKind(self.schedule)
        self.rank_weights = [float(w) for w in self.rank_weights]
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 2, f"batch_size must be at least 2 (a contrastive batch needs negatives), "
                                   f"got {self.batch_size}"),
            (self.lr is None or self.lr > 0, f"lr must be positive, got {self.lr}"),
            (0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
            (self.weight_decay >= 0, "weight_decay must be non-negative"),
            (self.warmup_steps >= 0, "warmup_steps must be non-negative"),
            (self.save_every >= 1, "save_every must be at least 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be at least 1"),
            (self.log_every >= 1, "log_every must be at least 1"),
            (self.max_pairs is None or self.max_pairs >= 1, "max_pairs must be at least 1"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be positive"),
            (self.weight_average is None or 0.0 <= self.weight_average <= 1.0,
             f"weight_average must be in [0, 1], got {self.weight_average}"),
            (not self.reference_params or self.scope == Scope.text,
             "reference_params (optimise only the text transformer blocks) needs scope text"),
            (self.objective != Objective.pc or self.comparatives,
             "objective pc needs comparatives (a JSONL from `pcclip generate` / `pcclip filter`)"),
            (bool(self.captions), "captions is required: the captions.jsonl of the images"),
            (self.objective == Objective.pc or not self.comparatives,
             "comparatives are read by objective pc only; drop them for objective caption"),
            ("{label}" in self.eval_template, "eval_template must contain {label}"),
        ]
        for ok, message in checks:
            if not ok:
                raise PcclipError(message)
        self.loss_config()  # validates temperature and rank weights

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else PAPER_LR[self.objective.value]

    @property
    def learnable_scale(self) -> bool:
        return self.objective == Objective.caption and self.temperature is None

    def loss_config(self) -> LossConfig:
        temperature = self.temperature
        if temperature is None and self.objective == Objective.pc:
            temperature = 1.0
        return LossConfig(kind=self.loss, temperature=temperature, rank_weights=tuple(self.rank_weights),
                          base_loss=self.base_loss, mse_raw_difference=self.mse_raw_difference)


# --------------------------------------------------------------------------------------------------------------
# Configs: TOML file + flags, resume, the saved copy


def _absolute(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _model_spec_absolute(spec: str, base: Path) -> str:
    """Checkpoint SPECs given as relative paths become absolute; registry names stay as they are."""
    from .models import SpecKind, parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == SpecKind.checkpoint and not parsed.path.is_absolute():
        return str((base / parsed.path).resolve())
    return spec


def read_config_file(path: str | Path) -> dict:
    """A run.toml as a dict of TrainConfig keys (checked), paths made absolute against the file's folder."""
    path = Path(path)
    data = load_toml(path, what="training config")
    if isinstance(data.get("train"), dict) and len(data) == 1:
        data = data["train"]  # a [train] table is accepted too
    valid = [f for f in TrainConfig.__dataclass_fields__]
    unknown = sorted(k for k in data if k not in valid)
    if unknown:
        raise PcclipError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    for key in PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = _absolute(data[key], path.parent)
    if isinstance(data.get("model"), str):
        data["model"] = _model_spec_absolute(data["model"], path.parent)
    return data


def resolve_config(file_values: dict | None = None, overrides: dict | None = None, *,
                   source: str = "config") -> TrainConfig:
    """Merge a config file's values and explicit flags (flags win) into a validated TrainConfig."""
    merged = {**(file_values or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    cwd = Path.cwd()
    for key in PATH_KEYS:
        if isinstance(merged.get(key), str):
            merged[key] = _absolute(merged[key], cwd)
    if isinstance(merged.get("model"), str):
        merged["model"] = _model_spec_absolute(merged["model"], cwd)
    return from_dict(TrainConfig, merged, source=source)


def saved_config(run_dir: Path) -> dict:
    path = Path(run_dir) / CONFIG_JSON
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"--resume {run_dir}: no such run directory")
    if not path.exists():
        raise CheckpointError(f"--resume {run_dir}: not a pcclip training run ({CONFIG_JSON} is missing)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{path} is corrupt; start a new run with another --out") from None


def resume_config(run_dir: str | Path, file_values: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """The config of the run in `run_dir`, with the settings that may change on resume (epochs, saving,
    evaluation) taken from the file/flags. Changing what the run computes (model, data, loss...) is refused."""
    run_dir = Path(run_dir).resolve()
    saved = saved_config(run_dir)
    given = {**(file_values or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    asked = to_dict(resolve_config({**saved, **(file_values or {})}, overrides, source=str(run_dir / CONFIG_JSON)))
    for key in IDENTITY_KEYS:
        if key in given and asked[key] != saved.get(key):
            what = "a different model" if key == "model" else f"a different {key}"
            raise CheckpointError(
                f"--resume {run_dir}: that run was trained with {key} = {saved.get(key)!r}, not {asked[key]!r} "
                f"({what}); resume without changing it, or start a new run with another --out")
    if "out" in given and Path(asked["out"]).resolve() != run_dir:
        raise PcclipError(f"--resume {run_dir} continues that run in place; drop --out {asked['out']}")
    asked["out"] = str(run_dir)
    return from_dict(TrainConfig, asked, source=str(run_dir / CONFIG_JSON))


def config_to_toml(cfg: TrainConfig) -> str:
    """The resolved config as TOML (None values are left out: they mean the default)."""
    lines = ["# The resolved config of this run: `pcclip train --config config.toml` repeats it.", "[train]"]
    for key, value in to_dict(cfg).items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


# --------------------------------------------------------------------------------------------------------------
# Distributed


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def _setup_distributed(device: str) -> tuple[Dist, str]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch
    import torch.distributed as dist

    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, local), device


def _gather_rows(t, dist_info: Dist):
    """All ranks' rows in rank order; this rank's rows keep their gradient, the others are constants."""
    if dist_info.world_size == 1:
        return t
    import torch
    import torch.distributed as dist

    parts = [torch.empty_like(t) for _ in range(dist_info.world_size)]
    dist.all_gather(parts, t.detach().contiguous())
    parts[dist_info.rank] = t
    return torch.cat(parts)


# --------------------------------------------------------------------------------------------------------------
# Towers and parameters

IMAGE_PREFIXES = ("visual.",)
TEXT_PREFIXES = ("text.", "transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection")
SHARED_PARAMS = ("logit_scale", "logit_bias")


def tower_of(name: str) -> str:
    if name.startswith(IMAGE_PREFIXES):
        return "image"
    if name.startswith(TEXT_PREFIXES):
        return "text"
    if name in SHARED_PARAMS:
        return "shared"
    return "other"


def check_towers_separable(model, arch: str, scope: Scope) -> None:
    """Text or image scope locks one tower; refuse models where open_clip cannot do that (e.g. CoCa, whose
    multimodal decoder belongs to neither tower and which has no lock_image_tower/lock_text_tower)."""
    if scope == Scope.both:
        return
    others = sorted({n.split(".")[0] for n, _ in model.named_parameters() if tower_of(n) == "other"})
    lockable = hasattr(model, "lock_image_tower") and hasattr(model, "lock_text_tower")
    if others or not lockable:
        detail = f"parameters in neither tower: {', '.join(others)}" if others else "no lock_image_tower/lock_text_tower"
        raise PcclipError(f"--scope {scope.value} needs a model whose image and text towers can be locked "
                          f"separately; {arch} ({type(model).__name__}) cannot ({detail}); use --scope both")


def select_trainable(model, cfg: TrainConfig) -> list[str]:
    """Set requires_grad by scope; returns the names of the trained parameters."""
    names = []
    for name, p in model.named_parameters():
        tower = tower_of(name)
        if tower == "shared":
            train = name == "logit_scale" and cfg.learnable_scale
        elif cfg.scope == Scope.text:
            train = tower == "text"
            if cfg.reference_params:
                train = name.startswith(("transformer.", "text.transformer."))
        elif cfg.scope == Scope.image:
            train = tower == "image"
        else:
            train = tower in ("image", "text")
        p.requires_grad_(train)
        if train:
            names.append(name)
    return names


# --------------------------------------------------------------------------------------------------------------
# Small evaluations: zero-shot on a class manifest, difference accuracy on a groups task


def _preprocess_all(preprocess, paths: list[Path], progress=None):
    import torch

    from .data import open_image

    out = []
    for i, p in enumerate(paths):
        out.append(preprocess(open_image(p)))
        if progress and (i + 1) % 200 == 0:
            progress(i + 1, len(paths), stage="loading images")
    return torch.stack(out) if out else torch.zeros(0)


def _encode_pixels(model, pixels, device, batch: int = 256):
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(pixels), batch):
            out.append(model.encode_image(pixels[s : s + batch].to(device), normalize=True).float().cpu())
    return torch.cat(out)


def _encode_texts(model, tokenizer, texts: list[str], device, batch: int = 256):
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(texts), batch):
            out.append(model.encode_text(tokenizer(texts[s : s + batch]).to(device), normalize=True).float().cpu())
    return torch.cat(out)


def _matches(attrs: dict, where: dict) -> bool:
    for key, want in where.items():
        have = attrs.get(key)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class SanityEval:
    """A quick score computed after each epoch (`--eval-task`), so a collapse is seen at once.

    A `.jsonl` class manifest (image, label, split) gives zero-shot accuracy on its test split (all rows when
    it has none); a groups task TOML gives difference accuracy: over all (a, b) with a from `first` and b
    from `second`, how often (g(a) - g(b)) . f(text) > 0."""

    def __init__(self, path: str | Path, clip, template: str = "a photo of a {label}", max_images: int = 2000,
                 split: str | None = "task"):
        path = Path(path)
        self.path, self.template = path, template
        if path.suffix == ".toml":
            self.kind = "difference"
            self._load_groups(path, max_images, split)
        elif path.suffix == ".jsonl":
            self.kind = "zero_shot"
            self._load_manifest(path, max_images)
        else:
            raise DataError(f"--eval-task {path}: expected a class manifest (.jsonl) or a groups task (.toml)")
        self.pixels = _preprocess_all(clip.preprocess, self.images)
        self.cached = None

    def _load_manifest(self, path: Path, max_images: int):
        from .io import read_jsonl

        rows = [(ln, r) for ln, r in read_jsonl(path, what="eval manifest")]
        if any(r.get("split") == "test" for _, r in rows):
            rows = [(ln, r) for ln, r in rows if r.get("split") == "test"]
        rows = rows[:max_images]
        for ln, r in rows:
            if not isinstance(r.get("image"), str) or r.get("label") is None:
                raise DataError(f"{path}:{ln}: an eval manifest row needs \"image\" and \"label\"")
        if not rows:
            raise DataError(f"eval manifest {path} has no rows")
        self.images = [(path.parent / r["image"]).resolve() for _, r in rows]
        self.labels = sorted({str(r["label"]) for _, r in rows})
        self.targets = [self.labels.index(str(r["label"])) for _, r in rows]

    def _load_groups(self, path: Path, max_images: int, split: str | None = "task"):
        task = load_toml(path, what="eval task")
        if task.get("kind") != "groups" or not task.get("pairs") or not task.get("groups"):
            raise DataError(f"--eval-task {path}: only kind = \"groups\" task files (with [groups] and [[pairs]]) "
                            "are scored during training")
        from .data import read_captions

        recs = read_captions(path.parent / task.get("manifest", "../captions.jsonl"))
        split = task.get("split") if split == "task" else split
        if split:
            recs = [r for r in recs if r.split == split]
        members = {name: [r for r in recs if _matches(r.attributes, where)][: max_images // 2]
                   for name, where in task["groups"].items()}
        self.images, index = [], {}
        for group in members.values():
            for r in group:
                if r.id not in index:
                    index[r.id] = len(self.images)
                    self.images.append(r.image)
        self.pairs = []
        for pair in task["pairs"]:
            a, b = members.get(pair["first"], []), members.get(pair["second"], [])
            if not a or not b:
                raise DataError(f"--eval-task {path}: group {pair['first']!r} or {pair['second']!r} has no images")
            self.pairs.append(([index[r.id] for r in a], [index[r.id] for r in b], pair["text"]))

    def score(self, model, tokenizer, device, image_tower_frozen: bool = False) -> dict:
        was_training = model.training
        model.eval()
        try:
            if image_tower_frozen and self.cached is not None:
                img = self.cached
            else:
                img = _encode_pixels(model, self.pixels, device)
                if image_tower_frozen:
                    self.cached = img
            if self.kind == "zero_shot":
                import torch

                txt = _encode_texts(model, tokenizer, [self.template.format(label=lb) for lb in self.labels], device)
                pred = (img @ txt.T).argmax(dim=1)
                acc = (pred == torch.tensor(self.targets)).float().mean().item()
                return {"zero_shot_accuracy": acc, "images": len(self.targets), "classes": len(self.labels)}
            correct = total = 0
            for a, b, text in self.pairs:
                f = _encode_texts(model, tokenizer, [text], device)[0]
                sa, sb = img[a] @ f, img[b] @ f
                correct += int((sa[:, None] > sb[None, :]).sum().item())
                total += len(a) * len(b)
            return {"difference_accuracy": correct / total, "pairs": total}
        finally:
            model.train(was_training)


def difference_accuracy(clip, task: str | Path, split: str | None = "task") -> float:
    """How often (g(a) - g(b)) . f(text) > 0 over a groups task's pairs; split "task" is the task file's own,
    None means every image of the manifest."""
    ev = SanityEval(task, clip, split=split)
    return ev.score(clip.model, clip.tokenizer, clip.device)["difference_accuracy"]


def zero_shot_scores(clip, world: str | Path, attributes=("shape", "colour", "colour_shape", "size"),
                     template: str = "a photo of a {label}") -> dict:
    """Zero-shot accuracy of `clip` on a shapes world's class manifests (test split)."""
    out = {}
    for attr in attributes:
        ev = SanityEval(Path(world) / "classes" / f"{attr}.jsonl", clip, template)
        out[attr] = round(ev.score(clip.model, clip.tokenizer, clip.device)["zero_shot_accuracy"], 4)
    return out


# --------------------------------------------------------------------------------------------------------------
# State that makes resume exact: optimizer tensors in safetensors, everything else in JSON


def _save_training_state(directory: Path, optimizer, state: dict) -> None:
    import torch
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(directory / OPTIMIZER_FILE))
    write_json_atomic(directory / STATE_FILE, {**state, "optimizer": {"param_groups": sd["param_groups"],
                                                                        "scalars": scalars}})


def _load_training_state(directory: Path, optimizer) -> dict:
    import torch
    from safetensors.torch import load_file

    try:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / OPTIMIZER_FILE))
    except Exception as exc:  # torn or foreign files: json and safetensors raise different types
        raise CheckpointError(f"{directory}: training state is unreadable ({type(exc).__name__}); "
                              "delete that checkpoint folder to resume from an earlier one") from None
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            # Optimizer.load_state_dict moves each tensor to its parameter's device (and "step" where the
            # fused/capturable kernels want it), so CPU tensors are fine here.
            per_param.setdefault(int(idx), {})[name] = value
    for key, value in state["optimizer"]["scalars"].items():
        idx, name = key.split(".", 1)
        per_param.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer"]["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return state


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("epoch-*") if (p / STATE_FILE).exists() and (p / META_FILE).exists())
    return done[-1] if done else None


# --------------------------------------------------------------------------------------------------------------
# The trainer


@dataclass
class TrainResult:
    checkpoint: str
    metrics: dict
    epochs: int
    steps: int
    examples: int
    seconds: float
    resumed_from: str | None = None
    world_size: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


class TrainingError(PcclipError):
    """The run itself went wrong (a NaN/inf loss)."""


def _lr_factor(cfg: TrainConfig, epoch: int, global_step: int, total_steps: int) -> float:
    """A pure function of the position in the run, so resuming needs only the counters."""
    warm = 1.0
    if cfg.warmup_steps and global_step < cfg.warmup_steps:
        warm = (global_step + 1) / cfg.warmup_steps
    if cfg.schedule == ScheduleKind.exponential:
        return warm * cfg.gamma**epoch
    if cfg.schedule == ScheduleKind.cosine:
        span = max(1, total_steps - cfg.warmup_steps)
        done = min(max(0, global_step - cfg.warmup_steps), span)
        return warm * 0.5 * (1 + math.cos(math.pi * done / span))
    return warm


class Trainer:
    """Owns one run: `prepare()` loads the model and data, `fit()` trains, checkpoints and evaluates."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, progress=None, warn=None):
        if not cfg.out:
            raise PcclipError("--out is required: the run directory for checkpoints and metrics")
        self.cfg, self.resume = cfg, resume
        self.out = Path(cfg.out).resolve()
        self.progress = progress or (lambda *a, **k: None)
        self.warn = warn or (lambda message: None)
        self.prepared = False

    # ---- setup ------------------------------------------------------------------------------------------------
    def prepare(self) -> Trainer:
        import torch

        from .models import image_tower_digest, load_clip, resolve_device

        cfg = self.cfg
        self._check_out_dir()
        self.dist, self.device = _setup_distributed(resolve_device(None))
        self.cuda = self.device.startswith("cuda")
        if (cfg.amp or cfg.compile) and not self.cuda:
            self.warn("--amp/--compile apply on CUDA only; this CPU run stays fp32 and uncompiled")
        clip = load_clip(cfg.model, self.device, fresh=True)
        if cfg.init == Init.random:
            self._random_init(clip)
            clip.fingerprint = f"{clip.arch}:random{cfg.seed}"
            clip.image_fingerprint = image_tower_digest(clip.model, clip.arch)
        self.clip, self.model = clip, clip.model
        self.base_fingerprint, self.base_image_fingerprint = clip.fingerprint, clip.image_fingerprint
        check_towers_separable(self.model, clip.arch, cfg.scope)
        self.trainable = select_trainable(self.model, cfg)
        self.image_frozen = cfg.scope == Scope.text
        self.text_frozen = cfg.scope == Scope.image
        self._load_data()
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if cfg.optimizer == OptimizerKind.adamw else torch.optim.Adam
        try:
            # The fused kernel is ~8x faster than the per-tensor loop on CPU, which matters: Adam updates the
            # whole token-embedding table every step.
            self.optimizer = opt_cls(params, lr=cfg.resolved_lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):
            self.optimizer = opt_cls(params, lr=cfg.resolved_lr, weight_decay=cfg.weight_decay)
        self.eval = SanityEval(cfg.eval_task, clip, cfg.eval_template) if cfg.eval_task else None
        self.step_module = _make_step_module(self)
        self.runner = self.step_module
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.dist.local_rank] if self.cuda else None
            self.runner = DistributedDataParallel(self.step_module, device_ids=ids)
        if cfg.compile and self.cuda:
            self.runner = torch.compile(self.runner)
        self.prepared = True
        return self

    def _check_out_dir(self):
        out = self.out
        if self.resume:
            return
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise PcclipError(f"--out {out} is not empty; pass --resume {out} to continue that run, "
                              "or choose a new directory")

    def _random_init(self, clip):
        import torch

        from .models import _open_clip, _quiet_root_logger

        with torch.random.fork_rng(devices=[]), _quiet_root_logger():
            torch.manual_seed(self.cfg.seed)
            fresh = _open_clip().create_model(clip.arch, pretrained=None)
        clip.model.load_state_dict(fresh.state_dict())

    def _load_data(self):
        import torch

        from .embeddings import embed_images
        from .pairs_data import data_file_entry, read_caption_pairs, read_comparative_pairs

        cfg, clip = self.cfg, self.clip
        if cfg.objective == Objective.pc:
            data = read_comparative_pairs(cfg.comparatives, cfg.captions, cfg.split, cfg.max_pairs, cfg.seed)
            self.first, self.second = torch.tensor(data.first), torch.tensor(data.second)
            self.data_files = [data_file_entry(cfg.comparatives, "comparatives"),
                               data_file_entry(cfg.captions, "captions")]
        else:
            data = read_caption_pairs(cfg.captions, cfg.split)
            self.first = torch.arange(len(data.images))
            self.second = None
            self.data_files = [data_file_entry(cfg.captions, "captions")]
        self.data = data
        self.n = len(data)
        self._check_batch()  # before any image is embedded
        # Index tensors and tokens live on the training device, so a step moves nothing but its row indices.
        self.first = self.first.to(self.device)
        self.second = self.second.to(self.device) if self.second is not None else None
        self.tokens = clip.tokenizer(data.texts).to(self.device)
        self.image_emb = self.pixels = self.text_emb = None
        if self.image_frozen:
            # The paper's efficiency trick: the image tower never runs in the loop. Rank 0 fills the shared
            # cache first so the other ranks only read it.
            if self.dist.main:
                emb = embed_images(clip, data.images, progress=lambda d, t: self.progress(d, t, stage="embedding images"))
            self.dist.barrier()
            if not self.dist.main:
                emb = embed_images(clip, data.images)
            self.image_emb = torch.from_numpy(emb.vectors).to(self.device)
        else:
            self.pixels = _preprocess_all(clip.preprocess, data.images, self.progress).to(self.device)
        if self.text_frozen:
            self.text_emb = _encode_texts(self.model, clip.tokenizer, data.texts, self.device).to(self.device)

    def _check_batch(self):
        cfg, ws = self.cfg, self.dist.world_size
        if cfg.batch_size > self.n:
            raise PcclipError(f"--batch-size {cfg.batch_size} is larger than the {self.n} training examples; "
                              f"pass --batch-size {self.n} or less (pcclip refuses rather than clamping, so a run's "
                              "batch size is always the one asked for)")
        if cfg.batch_size % ws:
            raise PcclipError(f"--batch-size {cfg.batch_size} is the global batch and must divide evenly over "
                              f"{ws} processes")

    # ---- the loop ---------------------------------------------------------------------------------------------
    def batches(self, epoch: int) -> list:
        """The epoch's batches of example indices: a seeded permutation, so data order needs no saved state.
        The last short batch is kept (trimmed to a multiple of the process count) when it has 2+ examples."""
        import torch

        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=g)
        bs, ws = self.cfg.batch_size, self.dist.world_size
        out = []
        for s in range(0, self.n, bs):
            chunk = perm[s : s + bs]
            chunk = chunk[: len(chunk) - len(chunk) % ws]
            if len(chunk) >= max(2, ws):
                out.append(chunk)
        return out

    def local_rows(self, batch):
        per = len(batch) // self.dist.world_size
        return batch[self.dist.rank * per : (self.dist.rank + 1) * per]

    def fit(self) -> TrainResult:
        if not self.prepared:
            self.prepare()
        cfg, dist_info = self.cfg, self.dist
        loss_cfg = cfg.loss_config()
        steps_per_epoch = len(self.batches(0))
        total_steps = steps_per_epoch * cfg.epochs
        start_epoch, global_step, resumed_from, last = 0, 0, None, {}
        if self.resume:
            start_epoch, global_step, resumed_from, last = self._restore()
        elif dist_info.main:
            self._write_run_files()
        dist_info.barrier()
        self.model.train()
        if self.image_frozen:
            self.model.visual.eval()
        metrics_fh = open(self.out / METRICS_FILE, "a", encoding="utf-8") if dist_info.main else None  # noqa: SIM115
        t_start = time.perf_counter()
        try:
            for epoch in range(start_epoch, cfg.epochs):
                t_epoch, losses, seen = time.perf_counter(), [], 0
                for step_in_epoch, batch in enumerate(self.batches(epoch)):
                    factor = _lr_factor(cfg, epoch, global_step, total_steps)
                    for group in self.optimizer.param_groups:
                        group["lr"] = cfg.resolved_lr * factor
                    loss, parts = self._step(self.local_rows(batch), loss_cfg, global_step, epoch, step_in_epoch)
                    global_step += 1
                    losses.append(loss)
                    seen += len(batch)
                    rate = seen / max(time.perf_counter() - t_epoch, 1e-9)
                    self.progress(global_step, total_steps, stage="train", epoch=epoch + 1, loss=loss, ex_s=rate)
                    if metrics_fh and global_step % cfg.log_every == 0:
                        self._log(metrics_fh, {"event": "step", "epoch": epoch + 1, "step": global_step, "loss": loss,
                                               "lr": cfg.resolved_lr * factor, "parts": parts,
                                               "examples_per_s": round(rate, 2)})
                last = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "steps": global_step,
                        "seconds": round(time.perf_counter() - t_epoch, 3),
                        "examples_per_s": round(seen / max(time.perf_counter() - t_epoch, 1e-9), 2)}
                if self.eval is not None:
                    last["eval"] = self.eval.score(self.model, self.clip.tokenizer, self.device, self.image_frozen)
                if metrics_fh:
                    self._log(metrics_fh, {"event": "epoch", **last})
                if (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs:
                    if dist_info.main:
                        self._save_epoch(epoch + 1, global_step, last)
                    dist_info.barrier()
        finally:
            if metrics_fh:
                metrics_fh.close()
        seconds = time.perf_counter() - t_start
        if dist_info.main:
            self._save_final(last, global_step, seconds)
        dist_info.barrier()
        return TrainResult(str(self.out), last, cfg.epochs, global_step, self.n, round(seconds, 3),
                           str(resumed_from) if resumed_from else None, dist_info.world_size)

    def _step(self, rows, loss_cfg: LossConfig, global_step: int, epoch: int, step_in_epoch: int):
        import torch

        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.cfg.amp and self.cuda
                    else contextlib.nullcontext())
        with autocast:
            x, y, scale = self.runner(rows.to(self.device))
            ws = self.dist.world_size
            x, y = _gather_rows(x.float(), self.dist), _gather_rows(y.float(), self.dist)
            if scale is not None and ws > 1:
                # Every rank computes the whole batch's loss; only 1/ws of the scale's gradient flows per rank,
                # so after the loss is scaled by ws and DDP averages, the gradient is the single-process one.
                scale = scale / ws + scale.detach() * (1 - 1 / ws)
            loss, parts = combined_loss(x, y, loss_cfg, scale)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(f"the loss became {value} at step {global_step + 1} (epoch {epoch + 1}, batch "
                                f"{step_in_epoch + 1}); lower --lr or check the data; nothing was skipped")
        self.optimizer.zero_grad(set_to_none=True)
        (loss * self.dist.world_size).backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                           self.cfg.grad_clip)
        self.optimizer.step()
        if self.cfg.learnable_scale:
            with torch.no_grad():
                self.model.logit_scale.clamp_(0, math.log(100))
        return value, {k: round(float(v.detach()), 6) for k, v in parts.items()}

    # ---- files ------------------------------------------------------------------------------------------------
    def _log(self, fh, record: dict):
        fh.write(json.dumps(record) + "\n")
        fh.flush()

    def _run_identity(self) -> dict:
        return {"config": to_dict(self.cfg), "base_fingerprint": self.base_fingerprint,
                "base_image_fingerprint": self.base_image_fingerprint, "arch": self.clip.arch,
                "data": self.data_files, "pcclip_version": __version__}

    def _write_run_files(self):
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out / CONFIG_JSON, self._run_identity())
        write_text_atomic(self.out / CONFIG_TOML, config_to_toml(self.cfg))
        (self.out / METRICS_FILE).unlink(missing_ok=True)

    def _meta(self, metrics: dict, *, epoch: int, steps: int, complete: bool, seconds: float | None = None) -> dict:
        cfg = self.cfg
        base = cfg.model if cfg.init == Init.pretrained else f"{self.clip.arch} (random init, seed {cfg.seed})"
        return {
            "base": base,
            "scope": cfg.scope.value,
            "loss": cfg.loss.value,
            "objective": cfg.objective.value,
            "training": {**to_dict(cfg), "lr_resolved": cfg.resolved_lr, "epochs_done": epoch, "steps": steps,
                         "complete": complete, "world_size": self.dist.world_size, "examples": self.n,
                         "data_counts": self.data.counts, "trainable_parameters": len(self.trainable),
                         "base_fingerprint": self.base_fingerprint, "seconds": seconds},
            "data": self.data_files,
            "metrics": metrics,
        }

    def _image_fp(self) -> str | None:
        return self.base_image_fingerprint if self.image_frozen else None

    def _save_epoch(self, epoch: int, steps: int, metrics: dict):
        from .models import save_checkpoint

        root = self.out / CHECKPOINTS_DIR
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"epoch-{epoch:04d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".epoch-{epoch:04d}.", dir=root))
        try:
            save_checkpoint(self.model, tmp, arch=self.clip.arch,
                            meta=self._meta(metrics, epoch=epoch, steps=steps, complete=False),
                            image_fingerprint=self._image_fp())
            _save_training_state(tmp, self.optimizer, {"epoch": epoch, "global_step": steps,
                                                       "base_fingerprint": self.base_fingerprint,
                                                       "world_size": self.dist.world_size, "metrics": metrics})
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)  # a directory rename: the checkpoint appears whole or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        done = sorted(p for p in root.glob("epoch-*") if p.is_dir())
        for old in done[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def _restore(self) -> tuple[int, int, Path | None, dict]:
        from .models import load_state_dict_safely

        saved = saved_config(self.out)
        ident = json.loads((self.out / CONFIG_JSON).read_text(encoding="utf-8"))
        if ident.get("base_fingerprint") != self.base_fingerprint:
            raise CheckpointError(f"--resume {self.out}: the base model {self.cfg.model!r} is not the one that run "
                                  f"started from (fingerprint {ident.get('base_fingerprint')} vs "
                                  f"{self.base_fingerprint}); start a new run with another --out")
        if saved.get("model") != self.cfg.model:
            raise CheckpointError(f"--resume {self.out}: that run was trained from a different model "
                                  f"({saved.get('model')!r}, not {self.cfg.model!r})")
        ckpt = latest_checkpoint(self.out)
        if ckpt is None:
            self.warn(f"{self.out} has no complete epoch checkpoint yet; starting the run from the beginning")
            if self.dist.main:
                (self.out / METRICS_FILE).unlink(missing_ok=True)
            return 0, 0, None, {}
        state = load_state_dict_safely(ckpt)
        self.model.load_state_dict({k: v.to(self.device) for k, v in state.items()})
        train_state = _load_training_state(ckpt, self.optimizer)
        if train_state.get("world_size", 1) != self.dist.world_size:
            self.warn(f"resuming a run started on {train_state.get('world_size')} process(es) on "
                      f"{self.dist.world_size}; the result will differ slightly from an uninterrupted run")
        epoch = int(train_state["epoch"])
        if self.dist.main:
            self._trim_metrics(epoch)
            for stale in (self.out / CHECKPOINTS_DIR).glob(".epoch-*"):  # a save cut short by the kill
                shutil.rmtree(stale, ignore_errors=True)
        return epoch, int(train_state["global_step"]), ckpt, train_state.get("metrics") or {}

    def _trim_metrics(self, epoch: int):
        """Drop the records of the epoch that was cut short, so metrics.jsonl reads like one clean run."""
        path = self.out / METRICS_FILE
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by the kill
            if rec.get("epoch", 0) <= epoch:
                kept.append(line)
        write_text_atomic(path, "".join(k + "\n" for k in kept))

    def _save_final(self, metrics: dict, steps: int, seconds: float):
        from .models import save_checkpoint

        meta = self._meta(metrics, epoch=self.cfg.epochs, steps=steps, complete=True, seconds=round(seconds, 3))
        model = self.model
        if self.cfg.weight_average is not None:
            model = self._averaged_copy(self.cfg.weight_average)
            meta["weight_average"] = {"alpha": self.cfg.weight_average, "base": meta["base"],
                                      "finetuned": str(latest_checkpoint(self.out) or "")}
        save_checkpoint(model, self.out, arch=self.clip.arch, meta=meta, image_fingerprint=self._image_fp())

    def _averaged_copy(self, alpha: float):
        import copy

        from .models import load_clip

        base = load_clip(self.cfg.model, "cpu", fresh=True)
        if self.cfg.init == Init.random:
            self._random_init(base)
        averaged = copy.deepcopy(self.model).cpu()
        averaged.load_state_dict(average_state_dicts(base.model.state_dict(), self.model.state_dict(), alpha))
        return averaged


def _make_step_module(trainer: Trainer):
    """The per-step forward as an nn.Module, so DDP can own it: rows -> (image side X, text side Y, logit
    scale or None). The class is defined here because torch is imported lazily."""
    import torch

    class StepModule(torch.nn.Module):
        def __init__(self, tr: Trainer):
            super().__init__()
            self.model = tr.model
            self.tr = (tr,)  # a tuple keeps the trainer out of the module tree

        def forward(self, rows):
            tr = self.tr[0]
            model = self.model
            first = tr.first[rows]
            if tr.image_frozen:
                g1 = tr.image_emb[first]
                g2 = tr.image_emb[tr.second[rows]] if tr.second is not None else None
            else:
                if tr.second is not None:
                    second = tr.second[rows]
                    both = torch.cat([first, second])
                    uniq, inverse = torch.unique(both, return_inverse=True)
                    g = model.encode_image(tr.pixels[uniq], normalize=True)[inverse]
                    g1, g2 = g[: len(rows)], g[len(rows) :]
                else:
                    g1, g2 = model.encode_image(tr.pixels[first], normalize=True), None
            x = g1 - g2 if g2 is not None else g1
            if tr.text_frozen:
                y = tr.text_emb[rows]
            else:
                y = model.encode_text(tr.tokens[rows])
            scale = model.logit_scale.exp() if tr.cfg.learnable_scale else None
            return x, y, scale

    return StepModule(trainer)


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


def average_checkpoints(base: str, finetuned: str | Path, alpha: float, out: str | Path) -> dict:
    """`pcclip train average`: write alpha * finetuned + (1 - alpha) * base as a new checkpoint."""
    import copy

    from .models import load_clip, read_checkpoint_meta, save_checkpoint

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


def train(cfg: TrainConfig, *, resume: bool = False, progress=None, warn=None) -> TrainResult:
    """Run (or resume) one training run; see the module docstring for what lands in `cfg.out`."""
    return Trainer(cfg, resume=resume, progress=progress, warn=warn).fit()


def run_from_options(config_file: str | Path | None, overrides: dict, resume: str | Path | None = None, *,
                     progress=None, warn=None) -> TrainResult:
    """`pcclip train`: a config file (optional) and flags (None = not given) into one run, new or resumed."""
    file_values = read_config_file(config_file) if config_file else None
    if resume:
        cfg = resume_config(resume, file_values, overrides)
    else:
        cfg = resolve_config(file_values, overrides, source=str(config_file or "flags"))
    return train(cfg, resume=bool(resume), progress=progress, warn=warn)


def average_with_base(finetuned: str | Path, out: str | Path, alpha: float, base: str | None = None) -> dict:
    """`pcclip train average`: the base defaults to the model the finetuned checkpoint records."""
    from .models import read_checkpoint_meta

    meta = read_checkpoint_meta(Path(finetuned))
    if base is None:
        base = (meta.get("training") or {}).get("model")
        if not base or (meta.get("training") or {}).get("init") == Init.random.value:
            raise PcclipError(f"{finetuned} does not record a pretrained base model; pass --base SPEC")
    return average_checkpoints(base, finetuned, alpha, out)


# --------------------------------------------------------------------------------------------------------------
# The shapes base model


@dataclass(frozen=True)
class ShapesRecipe:
    """How `shapes-clip` is made: pcclip-tiny from random init, CLIP loss on the shapes world's captions."""

    images: int = 2000
    arch: str = "pcclip-tiny"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    seed: int = 0

    @classmethod
    def for_tests(cls) -> ShapesRecipe:
        """A stand-in that trains in seconds: pcclip-micro on the 60-image test world."""
        return cls(images=60, arch="pcclip-micro", epochs=40, batch_size=16, lr=2e-3, warmup_steps=10)

    def command(self, world: str = "$PCCLIP_HOME/worlds/shapes-n2000-seed0", out: str = "shapes-clip-run") -> str:
        """The shell commands that reproduce this recipe's model (docs/training.md quotes them)."""
        cfg = self.train_config(Path(world) / "captions.jsonl", Path(out))
        flags = []
        for key in ("objective", "init", "model", "scope", "captions", "split", "optimizer", "lr", "weight_decay",
                    "schedule", "warmup_steps", "epochs", "batch_size", "seed", "out"):
            value = getattr(cfg, key)
            flags.append(f"--{key.replace('_', '-')} {getattr(value, 'value', value)}")
        return (f"pcclip data shapes {world} --images {self.images} --seed {self.seed}\n"
                "pcclip train " + " \\\n    ".join(flags))

    def train_config(self, captions: Path, out: Path) -> TrainConfig:
        return TrainConfig(model=self.arch, out=str(out), objective=Objective.caption, captions=str(captions),
                           split="train", scope=Scope.both, init=Init.random, optimizer=OptimizerKind.adamw,
                           lr=self.lr, weight_decay=self.weight_decay, schedule=ScheduleKind.cosine,
                           warmup_steps=self.warmup_steps, epochs=self.epochs, batch_size=self.batch_size,
                           seed=self.seed, save_every=self.epochs, log_every=25)


def _shapes_world(images: int, seed: int, world_dir: Path | None, progress=None) -> Path:
    """The world the base model trains on. By default a folder of its own (`worlds/shapes-n2000-seed0`), not
    `worlds/shapes-default`, which other commands build with their own size; being the trainer's own, it is
    rebuilt when the world format changes."""
    from .paths import worlds_dir
    from .shapes import WorldConfig, build_world

    cfg = WorldConfig(images=images, seed=seed)
    path = world_dir or worlds_dir() / f"shapes-n{images}-seed{seed}"
    draw = (lambda d, t: progress(d, t, stage="drawing shapes")) if progress else None
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
                      world_dir: str | Path | None = None) -> Path:
    """Train the shapes base model into `target_dir` (atomically: a temp dir beside it, renamed at the end),
    unless it is already there. Builds or reuses the shapes world; measures zero-shot accuracy on its test
    split and records it, with the wall time, in pcclip.json's metrics."""
    recipe = recipe or ShapesRecipe()
    target = Path(target_dir)
    with _file_lock(target.parent / f".{target.name}.lock"):
        if (target / META_FILE).exists() and (target / WEIGHTS_FILE).exists():
            return target
        t0 = time.perf_counter()
        world = _shapes_world(recipe.images, recipe.seed, Path(world_dir) if world_dir else None, progress)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            run = tmp / "run"
            result = train(recipe.train_config(world / "captions.jsonl", run), progress=progress)
            from .models import load_clip

            scores = zero_shot_scores(load_clip(str(run), "cpu", fresh=True), world)
            meta_path = run / META_FILE
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta["metrics"] = {**meta.get("metrics", {}), "zero_shot_test": scores,
                               "wall_seconds": round(time.perf_counter() - t0, 1),
                               "train_seconds": result.seconds}
            meta["shapes_recipe"] = {**asdict(recipe), "world": str(world)}
            write_json_atomic(meta_path, meta)
            shutil.rmtree(run / CHECKPOINTS_DIR, ignore_errors=True)
            if target.exists():
                shutil.rmtree(target)  # a torn earlier attempt (no pcclip.json): replace it
            os.replace(run, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """What a run directory holds: its config, latest complete checkpoint and whether it finished."""
    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir)
    return {"config": saved_config(run_dir), "latest_checkpoint": str(ckpt) if ckpt else None,
            "complete": (run_dir / META_FILE).exists()}
