"""The linear probe on frozen image embeddings: which images it fits on and chooses C on (a seeded, stratified
hold-out of a training split, decided before any embedding), and its score on an evaluation split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.datasets.base import Dataset, LabeledImage, load_dataset

from .class_images import ClassNames, embed_items, labelled

PROBE_SOLVER = "multinomial logistic regression, L2 penalty ||W||^2/(2C), full-batch torch L-BFGS"


@dataclass
class ProbePlan:
    """Which images the linear probe fits on, chooses C on, and is tested on (decided before any embedding)."""

    fit: list[LabeledImage]
    val: list[LabeledImage]
    train_split: str
    test_split: str | None
    val_fraction: float
    seed: int


def plan_probe(ds: Dataset, names: ClassNames, test_split: str | None, train_split: str = "train",
               val_fraction: float = 0.25, seed: int = 0) -> ProbePlan:
    """Split `train_split` (seeded, stratified by class) into the probe's fit and validation parts; a dataset
    without that split, or too small to hold out a validation part, is a DataError."""
    from .metrics import holdout_split

    if train_split not in ds.splits:
        have = ", ".join(ds.splits) or "none"
        raise DataError(f"the linear probe learns from a training split, but dataset {ds.source} has no split "
                        f"{train_split!r} (its splits: {have}); pass --probe-split or drop --linear-probe")
    if train_split == test_split:
        raise PcclipError(f"the linear probe's split {train_split!r} is also the evaluation split; choose another")
    train = labelled(ds.in_split(train_split), names)
    fit_idx, val_idx = holdout_split([it.label for it in train], val_fraction, seed)
    fit, val = [train[i] for i in fit_idx], [train[i] for i in val_idx]
    if len({it.label for it in fit}) < 2 or not val:
        raise DataError(f"split {train_split!r} of {ds.source} has {len(train)} labelled images: too few for a "
                        f"linear probe with a {val_fraction:.0%} validation part (it needs two classes and at "
                        "least one class with two or more images)")
    return ProbePlan(fit, val, train_split, test_split, val_fraction, seed)


def run_probe(clip, ds: Dataset, plan: ProbePlan, test_items: list[LabeledImage], test_vectors=None, *,
              progress=None, warn=None) -> dict:
    """Fit the linear probe of `plan` on frozen image embeddings and score it on `test_items`."""
    from .metrics import linear_probe

    if test_vectors is None:
        test_vectors = embed_items(clip, ds, test_items, progress, warn)
    train_vectors = embed_items(clip, ds, plan.fit + plan.val, progress, warn)
    n = len(plan.fit)
    res = linear_probe(train_vectors[:n], [it.label for it in plan.fit], train_vectors[n:],
                       [it.label for it in plan.val], test_vectors, [it.label for it in test_items],
                       seed=plan.seed)
    return {"top1": res.top1, "C": res.C, "val_top1": res.val_top1, "Cs": list(res.Cs), "classes": res.classes,
            "train_split": plan.train_split, "test_split": plan.test_split,
            # C is chosen on the validation part; the final probe is refit on all of train_split.
            "validation": f"seeded stratified {plan.val_fraction:.0%} of split {plan.train_split!r} (seed {plan.seed})",
            "fit_images": res.train_size, "val_images": res.val_size, "test_images": res.test_size,
            "seed": plan.seed, "solver": PROBE_SOLVER}


def linear_probe_dataset(model, dataset: str | Path | Dataset, *, split: str | None = "test",
                         train_split: str = "train", val_fraction: float = 0.25, seed: int = 0,
                         data_root: str | Path | None = None, device: str | None = None, progress=None,
                         warn=None) -> dict:
    """The linear probe alone: fit on `train_split` (C chosen on its seeded validation part), test on `split`."""
    from pcclip_cli.models import clip_for

    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_root)
    names = ClassNames(ds.classes, ds.source)
    test_items = labelled(ds.in_split(split), names)
    if not test_items:
        raise DataError(f"dataset {ds.source} has no labelled images in split {split!r}")
    plan = plan_probe(ds, names, split, train_split, val_fraction, seed)
    return run_probe(clip_for(model, device), ds, plan, test_items, progress=progress, warn=warn)
