"""A training run's settings: `TrainConfig` and its enums, the single home of every default, and the merge of a
TOML file, flags and a resumed run's saved config."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from pcclip_cli.clip.spec import absolute_spec
from pcclip_cli.core.config import from_dict, load_toml, to_dict
from pcclip_cli.core.errors import CheckpointError, PcclipError

from .losses import LossConfig, LossKind, RankNormalise, RankRamp
from .order import HardNegatives
from .reporters import parse_report_to
from .run_dir import CONFIG_JSON, saved_config

PAPER_LR = {"pc": 1e-8, "caption": 1e-6}


class Objective(str, enum.Enum):
    """What the run aligns: image differences with comparatives (`pc`), or images with captions."""

    pc = "pc"
    caption = "caption"


class Init(str, enum.Enum):
    """Start from the SPEC's weights, or from a seeded random init of its architecture."""

    pretrained = "pretrained"
    random = "random"


class Scope(str, enum.Enum):
    """Which tower(s) a finetune updates (`--scope`)."""

    text = "text"
    image = "image"
    both = "both"


class Precision(str, enum.Enum):
    """The step's arithmetic (`--precision`): auto is bf16 autocast on CUDA and fp32 on the CPU."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class OptimizerKind(str, enum.Enum):
    adam = "adam"
    adamw = "adamw"


class ScheduleKind(str, enum.Enum):
    exponential = "exponential"  # lr * gamma**epoch, torch's ExponentialLR stepped per epoch (the paper)
    cosine = "cosine"  # per-step cosine decay to 0 after `warmup_steps` of linear warm-up
    constant = "constant"


# Keys that define what a run computes: `--resume` refuses to change them.
IDENTITY_KEYS = ("model", "objective", "comparatives", "captions", "split", "max_pairs", "loss", "temperature",
                 "rank_weights", "rank_normalise", "rank_ramp", "hard_negatives", "reversal_pairs", "base_loss", "mse_raw_difference", "scope", "reference_params", "init",
                 "optimizer", "lr", "weight_decay", "schedule", "gamma", "warmup_steps", "batch_size",
                 "grad_clip", "seed")
PATH_KEYS = ("out", "comparatives", "captions", "eval_task")


def _opt(default, help: str, **kw):
    """A field with its one-line help: `pcclip train --help` and the docs read it from here."""
    if callable(default) and not isinstance(default, (bool, int, float, str, enum.Enum)):
        return field(default_factory=default, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Every setting of a run. `pcclip train` flags and `--config run.toml` keys use these names (flags with
    dashes). None means "the default for this objective" where noted."""

    model: str = _opt("shapes-clip", "Base model SPEC (see `pcclip models`).")
    out: str | None = _opt(None, "Run directory: checkpoints, metrics.jsonl, the final model.", path=True)
    objective: Objective = _opt(Objective.pc, "pc (image differences with comparatives) or caption (CLIP loss).")
    comparatives: str | None = _opt(None, "Comparatives JSONL from generate/filter (objective pc).", path=True)
    captions: str | None = _opt(None, "captions.jsonl: the images the comparatives name, or the caption pairs.",
                                path=True)
    split: str | None = _opt(None, "Use only images of this split of the captions file (e.g. train).")
    max_pairs: int | None = _opt(None, "Subsample the comparatives to this many (seeded).")
    loss: LossKind = _opt(LossKind.contrastive, "The base alignment loss.")
    temperature: float | None = _opt(None, "Fixed temperature; unset: 1.0 for pc (the paper), the model's "
                                           "learnable logit scale for caption.")
    rank_weights: list[float] = _opt(lambda: [0.0, 0.0], "RankCLIP lambdas L1,L2 (in-modal, cross-modal), "
                                                          "e.g. 1/16,1/16.")
    rank_normalise: RankNormalise = _opt(RankNormalise.reference, "Scale of the ranking terms: reference (RankCLIP's "
                                         "published code: ListMLE on logit-scaled similarities, / 32 / batch), "
                                         "sum (raw cosines, list sums), mean (sum / list length).")
    rank_ramp: RankRamp = _opt(RankRamp.auto, "RankCLIP's epoch ramp clamp(3(e-1)/(E-1), 0, 2) on the ranking "
                                              "terms: auto (on with reference), on, off.")
    hard_negatives: HardNegatives = _opt(HardNegatives.none, "Extra negatives per pair: none, or swap (the text "
                                         "with its image references exchanged, prompts/order_swap.toml, as the "
                                         "positive of the reversed difference in the same batch).")
    reversal_pairs: bool = _opt(False, "Also train on both orders of every pair, the swapped text for the "
                                       "reversed pair (texts naming neither image are left out).")
    base_loss: bool = _opt(True, "Keep the base loss (RankCLIP's ablation drops it).")
    mse_raw_difference: bool = _opt(False, "MSE on the un-normalised difference, as the reference code does.")
    scope: Scope = _opt(Scope.text, "The tower(s) finetuned.")
    reference_params: bool = _opt(False, "Text scope: optimise only the text transformer blocks, as the "
                                         "reference code.")
    init: Init = _opt(Init.pretrained, "Start from the SPEC's weights, or a seeded random init.")
    optimizer: OptimizerKind = _opt(OptimizerKind.adam, "The optimizer (the paper: adam).")
    lr: float | None = _opt(None, "Learning rate; unset: the paper's 1e-8 (pc) / 1e-6 (caption).")
    weight_decay: float = _opt(0.0, "Weight decay.")
    schedule: ScheduleKind = _opt(ScheduleKind.exponential, "Learning-rate schedule.")
    gamma: float = _opt(0.9, "ExponentialLR decay per epoch.")
    warmup_steps: int = _opt(0, "Linear warm-up steps.")
    epochs: int = _opt(20, "Epochs.")
    batch_size: int = _opt(512, "Global batch size (split across processes under torchrun).")
    grad_clip: float | None = _opt(None, "Clip the gradient norm to this; unset: no clipping.")
    seed: int = _opt(0, "Seed for data order, random init and everything random in the run.")
    save_every: int = _opt(1, "Write a resumable checkpoint every N epochs (and after the last).")
    keep_checkpoints: int = _opt(1, "How many epoch checkpoints to keep (the newest).")
    weight_average: float | None = _opt(None, "WiSE-FT: final = ALPHA * finetuned + (1 - ALPHA) * base.")
    eval_task: str | None = _opt(None, "Class manifest (.jsonl) or groups task (.toml) scored every epoch.",
                                 path=True)
    eval_template: str = _opt("a photo of a {label}", "Zero-shot prompt for --eval-task manifests.")
    log_every: int = _opt(10, "Steps between metrics.jsonl step records.")
    precision: Precision = _opt(Precision.auto, "auto (bf16 autocast on CUDA, fp32 on CPU), fp32, or bf16 "
                                                "(CUDA only; a CPU run stays fp32).")
    amp: bool = _opt(False, "The same as --precision bf16 (kept for older scripts).")
    trim_text: bool = _opt(True, "Run the text tower on each batch cut to its longest text (exact: only for "
                                 "causal towers pooling at end-of-text, or padding-masked encoders).")
    compile: bool = _opt(False, "torch.compile the step (CUDA only).")
    report_to: str | None = _opt(None, "Also log metrics.jsonl's scalars to tensorboard (OUT/tensorboard), wandb, "
                                       "or both, comma-separated.")

    def __post_init__(self):
        self.objective, self.loss = Objective(self.objective), LossKind(self.loss)
        self.scope, self.init = Scope(self.scope), Init(self.init)
        self.optimizer, self.schedule = OptimizerKind(self.optimizer), ScheduleKind(self.schedule)
        self.precision = Precision(self.precision)
        parse_report_to(self.report_to)
        self.rank_normalise, self.rank_ramp = RankNormalise(self.rank_normalise), RankRamp(self.rank_ramp)
        self.hard_negatives = HardNegatives(self.hard_negatives)
        self.rank_weights = [float(w) for w in self.rank_weights]
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise PcclipError(f"{f.name} must be a finite number, got {value}")
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
            (self.objective == Objective.pc or (self.hard_negatives == HardNegatives.none and not self.reversal_pairs),
             "hard_negatives and reversal_pairs need objective pc (they reverse image pairs)"),
            (bool(self.captions), "captions is required: the captions.jsonl of the images"),
            (self.objective == Objective.pc or not self.comparatives,
             "comparatives are read by objective pc only; drop them for objective caption"),
            ("{label}" in self.eval_template, "eval_template must contain {label}"),
            (not self.amp or self.precision != Precision.fp32, "amp (bf16) contradicts precision fp32; drop one"),
        ]
        for ok, message in checks:
            if not ok:
                raise PcclipError(message)
        self.loss_config()  # validates temperature and rank weights

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else PAPER_LR[self.objective.value]

    def resolved_precision(self, cuda: bool) -> Precision:
        """fp32 or bf16: what the step runs in on this device (bf16 is CUDA only)."""
        wanted = Precision.bf16 if self.amp else self.precision
        if wanted == Precision.auto:
            return Precision.bf16 if cuda else Precision.fp32
        return wanted if cuda else Precision.fp32

    @property
    def learnable_scale(self) -> bool:
        return self.objective == Objective.caption and self.temperature is None

    def loss_config(self) -> LossConfig:
        temperature = self.temperature
        if temperature is None and self.objective == Objective.pc:
            temperature = 1.0
        return LossConfig(kind=self.loss, temperature=temperature, rank_weights=tuple(self.rank_weights),
                          base_loss=self.base_loss, mse_raw_difference=self.mse_raw_difference,
                          rank_normalise=self.rank_normalise, rank_ramp=self.rank_ramp)


def _absolute(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _absolute_paths(values: dict, base: Path) -> dict:
    for key in PATH_KEYS:
        if isinstance(values.get(key), str):
            values[key] = _absolute(values[key], base)
    if isinstance(values.get("model"), str):
        values["model"] = absolute_spec(values["model"], base)
    return values


def read_config_file(path: str | Path) -> dict:
    """A run.toml as a dict of TrainConfig keys (checked), paths made absolute against the file's folder."""
    path = Path(path)
    data = load_toml(path, what="training config")
    if isinstance(data.get("train"), dict) and len(data) == 1:
        data = data["train"]  # a [train] table is accepted too
    valid = [f.name for f in fields(TrainConfig)]
    unknown = sorted(k for k in data if k not in valid)
    if unknown:
        raise PcclipError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    return _absolute_paths(data, path.parent)


def resolve_config(file_values: dict | None = None, overrides: dict | None = None, *,
                   source: str = "config") -> TrainConfig:
    """Merge a config file's values and explicit flags (flags win) into a validated TrainConfig."""
    merged = {**(file_values or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return from_dict(TrainConfig, _absolute_paths(merged, Path.cwd()), source=source)


def resume_config(run_dir: str | Path, file_values: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """The config of the run in `run_dir`, with the settings that may change on resume (epochs, saving,
    evaluation) taken from the file/flags. Changing what the run computes (model, data, loss...) is refused."""
    run_dir = Path(run_dir).resolve()
    saved = saved_config(run_dir)
    if "rank_normalise" not in saved:  # a run from before the reference form: it summed, with no ramp
        saved = {**saved, "rank_normalise": RankNormalise.sum.value, "rank_ramp": RankRamp.off.value}
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
