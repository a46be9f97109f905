"""Labelled image datasets: the item and dataset types, image folders, and the registry of named local datasets."""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError
from pcclip_cli.data.records import ImageRecord, read_manifest

# The one image record type (data.ImageRecord), under the name the dataset code has always used.
LabeledImage = ImageRecord


@dataclass
class Dataset:
    name: str
    source: str  # what the user named, for reports
    items: list[LabeledImage]
    classes: list[str]  # every label, in the dataset's own order
    # Datasets stored as arrays (CIFAR) are written out as PNG files on first use, so the embedding cache,
    # which is keyed by file, works for them too.
    materialise: Callable[[list[LabeledImage]], None] | None = None

    @property
    def splits(self) -> list[str]:
        return sorted({it.split for it in self.items if it.split})

    def in_split(self, split: str | None) -> list[LabeledImage]:
        if split is None:
            return list(self.items)
        if split not in self.splits:
            have = ", ".join(self.splits) or "none (the dataset has no split field)"
            raise DataError(f"dataset {self.source} has no split {split!r}; its splits: {have}")
        return [it for it in self.items if it.split == split]

    def ensure_files(self, items: list[LabeledImage]) -> None:
        if self.materialise:
            self.materialise(items)


def display_name(label: str) -> str:
    """A class label as words for a prompt: "001.Black_footed_Albatross" -> "Black footed Albatross"."""
    name = re.sub(r"^\d+\.", "", str(label))
    return " ".join(name.replace("_", " ").replace("+", " ").split())


# name -> (module in this package, its loader function, what it reads under --data-root). The loaders live one
# module per release format and are imported only when their dataset is asked for.
NAMED: dict[str, tuple[str, str, str]] = {
    "cifar10": ("cifar", "load_cifar10", "{root}/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta "
                                         "(the python version)"),
    "cifar100": ("cifar", "load_cifar100", "{root}/cifar-100-python/train, test, meta (the python version)"),
    "flowers102": ("flowers", "load_flowers102", "{root}/flowers-102/imagelabels.mat, {root}/flowers-102/setid.mat, "
                                                 "{root}/flowers-102/jpg/"),
    "eurosat": ("scenes", "load_eurosat", "{root}/eurosat/2750/<class>/*.jpg (or eurosat/EuroSAT_RGB/)"),
    "sun397": ("scenes", "load_sun397", "{root}/SUN397/ClassName.txt and {root}/SUN397/<letter>/<class>/sun_*.jpg"),
    "awa2": ("awa2", "load_awa2", "{root}/Animals_with_Attributes2/classes.txt, predicates.txt, "
                                  "predicate-matrix-binary.txt, JPEGImages/"),
    "cub": ("cub", "load_cub", "{root}/CUB_200_2011/images.txt, image_class_labels.txt, classes.txt, "
                               "train_test_split.txt, images/"),
}
NAMED_DATASETS = tuple(NAMED)


def expected(name: str, root) -> str:
    return NAMED[name][2].format(root=root)


def missing(name: str, root: Path, what: Path | str | None = None, detail: str = "") -> DataError:
    """The error for a local copy that lacks a file: which file, everything the loader reads, and no download."""
    lacks = f"{what} is missing; " if what else ""
    extra = f" ({detail})" if detail else ""
    return DataError(f"{name} not found under {root}: {lacks}pcclip reads {expected(name, root)}{extra}; "
                     "pcclip never downloads datasets, place a copy there (see docs/datasets.md)")


# The label a world directory is classified by when no --label is given: both attributes of a one-object image.
WORLD_DEFAULT_LABEL = "colour_shape"


def load_dataset(spec: str | Path, data_root: str | Path | None = None, label: str | None = None) -> Dataset:
    """A labelled dataset from a JSONL manifest, an image folder (one subfolder per class, optionally under
    train/val/test folders), a world directory (its captions.jsonl, labelled by the attribute `label`), or one of
    NAMED_DATASETS read from `data_root` (never downloaded). `label` names the attribute that is the class, for
    any manifest whose rows carry attributes."""
    raw = str(spec).strip()
    if not raw:
        raise DataError("empty dataset; give a manifest .jsonl, an image folder, or one of " + ", ".join(NAMED_DATASETS))
    name = raw.lower().removeprefix("torchvision:")
    if name in NAMED and not Path(raw).exists():
        if data_root is None:
            raise DataError(f"dataset {name} is read from a local copy: pass --data-root DIR "
                            f"({expected(name, 'DIR')})")
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise DataError(f"--data-root {root} is not a directory")
        return load_named(name, str(root.resolve()))
    path = Path(raw).expanduser()
    if not path.exists():
        raise DataError(f"dataset not found: {path}; give a manifest .jsonl, an image folder with one subfolder "
                        f"per class, or one of {', '.join(NAMED_DATASETS)} with --data-root")
    if path.is_dir():
        if (path / "world.json").exists() and (path / "captions.jsonl").exists():
            return relabel(load_manifest(path / "captions.jsonl"), label or WORLD_DEFAULT_LABEL, path.name,
                           str(path))
        if label is not None:
            raise DataError(f"--label {label}: {path} is an image folder, labelled by its subfolders; --label "
                            "applies to a manifest whose rows carry attributes")
        return load_image_folder(path)
    ds = load_manifest(path)
    return relabel(ds, label, ds.name, ds.source) if label is not None else ds


def relabel(ds: Dataset, key: str, name: str, source: str) -> Dataset:
    """The images of `ds` whose attribute `key` has one value, labelled by it (a two-object image has no single
    colour, so it drops out of a colour classification)."""
    items, known = [], set()
    for it in ds.items:
        known.update(k for k, v in it.attributes.items() if isinstance(v, (str, int)) and not isinstance(v, bool))
        value = it.attributes.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            items.append(ImageRecord(it.path, it.id, str(value), it.split, it.attributes, it.caption, it.record))
    if not items:
        have = ", ".join(sorted(known)) or "none"
        raise DataError(f"--label {key}: no image of {source} has that attribute; its attributes: {have}")
    return Dataset(f"{name} ({key})", f"{source} (label {key})", items, sorted({it.label for it in items}))


@functools.lru_cache(maxsize=4)
def load_named(name: str, root: str) -> Dataset:
    """One of NAMED_DATASETS from its release layout under `root`. A task file is checked and then run, and the
    suite meets the same dataset in several places: the (large) index is read once per process. Callers only
    read the returned Dataset."""
    module, function, _ = NAMED[name]
    loader = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return loader(Path(root))


def load_image_folder(path: Path) -> Dataset:
    from pcclip_cli.data.records import IMAGE_SUFFIXES

    def images(folder: Path) -> list[Path]:
        return sorted(q for q in folder.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)

    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    split_dirs = [d for d in subdirs if d.name in ("train", "val", "valid", "test")]
    layout = [(d.name, d) for d in split_dirs] if split_dirs else [(None, path)]
    items = []
    for split, base in layout:
        for cls_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for img in images(cls_dir):
                items.append(LabeledImage(img.resolve(), str(img.relative_to(path)), cls_dir.name, split))
    if not items:
        raise DataError(f"no labelled images in {path}: expected one subfolder per class holding images "
                        "(optionally under train/ and test/)")
    return Dataset(path.name, str(path), items, sorted({it.label for it in items}))


def read_table(path: Path, name: str, root: Path, columns: int = 2) -> list[list[str]]:
    """A whitespace-separated index file of a release (`<id> <value>` per line), checked for its column count."""
    if not path.is_file():
        raise missing(name, root, path)
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = line.split(maxsplit=columns - 1) if columns else line.split()
        if columns and len(row) != columns:
            raise DataError(f"{path}:{lineno}: expected {columns} fields, got {line.strip()!r}")
        rows.append([c.strip() for c in row])
    if not rows:
        raise DataError(f"{path} is empty")
    return rows


def load_manifest(path: Path) -> Dataset:
    """A JSONL manifest (data.read_manifest) as a dataset: the shapes world's captions.jsonl and classes/*.jsonl
    both read."""
    path = Path(path)
    items = read_manifest(path)
    classes = sorted({it.label for it in items if it.label is not None})
    return Dataset(path.stem, str(path), items, classes)
