"""CIFAR-10 and CIFAR-100, python version: the release's pickles read with pcclip's plain-data unpickler.

Each batch file is a pickled dict (written by Python 2, so read with latin-1 strings) with `data`, a uint8 array of
N x 3072 (1024 red, 1024 green, 1024 blue values per image, rows in order), and the labels as a list of N ints
(`labels` in CIFAR-10; `fine_labels` and `coarse_labels` in CIFAR-100). The meta file names the labels.
Images are written as PNG files on first use (under $PCCLIP_HOME/datasets), so the embedding cache applies.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError

from .base import Dataset, LabeledImage, missing


@dataclass(frozen=True)
class CifarRelease:
    name: str
    folder: str
    splits: dict  # split -> batch files
    meta: str
    label_key: str
    names_key: str
    coarse_key: str | None = None
    coarse_names_key: str | None = None


CIFAR10 = CifarRelease("cifar10", "cifar-10-batches-py",
                       {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                       "batches.meta", "labels", "label_names")
CIFAR100 = CifarRelease("cifar100", "cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta",
                        "fine_labels", "fine_label_names", "coarse_labels", "coarse_label_names")


def _read(path: Path, release: CifarRelease, root: Path) -> dict:
    from pcclip_cli.core.io import load_plain_pickle

    if not path.is_file():
        raise missing(release.name, root, path)
    obj = load_plain_pickle(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not the dict of a CIFAR python-version file")
    return obj


def _names(meta: dict, key: str, path: Path) -> list[str]:
    names = meta.get(key)
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{path} has no {key!r} list; is this the python version of the dataset?")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]


def _batch(path: Path, release: CifarRelease, root: Path):
    import numpy as np

    batch = _read(path, release, root)
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: \"data\" is not an N x 3072 uint8 array (32x32 pixels, three channels)")
    labels = batch.get(release.label_key)
    if not isinstance(labels, list) or len(labels) != len(data):
        raise DataError(f"{path}: {release.label_key!r} is not a list of {len(data)} labels")
    coarse = batch.get(release.coarse_key) if release.coarse_key else None
    if release.coarse_key and (not isinstance(coarse, list) or len(coarse) != len(data)):
        raise DataError(f"{path}: {release.coarse_key!r} is not a list of {len(data)} labels")
    return data, labels, coarse


def _fingerprint(files: list[Path]) -> str:
    # A copy elsewhere, or a changed one, must not reuse another copy's PNG files.
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def load_cifar(release: CifarRelease, root: Path) -> Dataset:
    from pcclip_cli.core.paths import home

    base = root / release.folder
    meta_path = base / release.meta
    files = [base / f for fs in release.splits.values() for f in fs]
    for f in [*files, meta_path]:
        if not f.is_file():
            raise missing(release.name, root, f)
    meta = _read(meta_path, release, root)
    classes = _names(meta, release.names_key, meta_path)
    coarse_names = _names(meta, release.coarse_names_key, meta_path) if release.coarse_names_key else None
    out_dir = home() / "datasets" / f"{release.name}-{_fingerprint([meta_path, *files])}"
    items, arrays = [], {}
    for split, names in release.splits.items():
        i = 0
        for fname in names:
            data, labels, coarse = _batch(base / fname, release, root)
            for row in range(len(data)):
                label = labels[row]
                if not isinstance(label, numbers.Integral) or not 0 <= label < len(classes):
                    raise DataError(f"{base / fname}: label {label!r} of image {row} is outside 0..{len(classes) - 1}")
                attrs = {}
                if coarse is not None:
                    if not isinstance(coarse[row], numbers.Integral) or not 0 <= coarse[row] < len(coarse_names):
                        raise DataError(f"{base / fname}: coarse label {coarse[row]!r} of image {row} is outside "
                                        f"0..{len(coarse_names) - 1}")
                    attrs["coarse_label"] = coarse_names[coarse[row]]
                item = LabeledImage(out_dir / split / f"{i:05d}.png", f"{split}/{i:05d}", classes[label], split, attrs)
                items.append(item)
                arrays[str(item.path)] = (data, row)
                i += 1

    def materialise(wanted: list[LabeledImage]) -> None:
        from PIL import Image

        from pcclip_cli.core.io import atomic_path

        for it in wanted:
            if it.path.exists() or str(it.path) not in arrays:
                continue
            data, row = arrays[str(it.path)]
            pixels = data[row].reshape(3, 32, 32).transpose(1, 2, 0)  # channel planes -> height, width, channel
            with atomic_path(it.path, suffix=".png") as tmp:
                Image.fromarray(pixels).save(tmp, format="PNG")

    return Dataset(release.name, release.name, items, classes, materialise)


def load_cifar10(root: Path) -> Dataset:
    return load_cifar(CIFAR10, root)


def load_cifar100(root: Path) -> Dataset:
    return load_cifar(CIFAR100, root)
