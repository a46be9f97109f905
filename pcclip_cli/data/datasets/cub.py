"""CUB-200-2011 as released: CUB_200_2011/ with images.txt (`<image id> <class>/<file>.jpg`),
image_class_labels.txt (`<image id> <class id>`), classes.txt (`<class id> <name>`), train_test_split.txt
(`<image id> <1 for training, 0 for test>`) and images/. Item ids are CUB's image ids."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import DataError

from .base import Dataset, LabeledImage, missing, read_table

CUB_INDEX_FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt")


def cub_base(root: Path) -> Path:
    """The CUB_200_2011 folder: ROOT itself when it holds images.txt, else ROOT/CUB_200_2011."""
    return root if (root / "images.txt").exists() or not (root / "CUB_200_2011").is_dir() else root / "CUB_200_2011"


def read_cub_index(base: Path, name: str, root: Path | None = None) -> dict[str, str]:
    """One of the index files as id -> value, checked to cover the same image ids as images.txt elsewhere."""
    return {row[0]: row[1] for row in read_table(base / name, "cub", root or base.parent)}


def read_cub(base: Path, root: Path | None = None) -> dict:
    """The four index files, with every image id of images.txt present in the per-image ones."""
    tables = {name: read_cub_index(base, name, root) for name in CUB_INDEX_FILES}
    images = tables["images.txt"]
    for name in ("image_class_labels.txt", "train_test_split.txt"):
        absent = [k for k in images if k not in tables[name]]
        if absent:
            raise DataError(f"{base / name} has no line for image id {absent[0]} of images.txt")
    unknown = [c for c in tables["image_class_labels.txt"].values() if c not in tables["classes.txt"]]
    if unknown:
        raise DataError(f"{base / 'image_class_labels.txt'} names class id {unknown[0]}, which classes.txt lacks")
    if not (base / "images").is_dir():
        raise missing("cub", root or base.parent, base / "images")
    return tables


def load_cub(root: Path) -> Dataset:
    base = root / "CUB_200_2011"
    t = read_cub(base, root)
    classes = t["classes.txt"]
    items = [LabeledImage((base / "images" / rel).resolve(), iid, classes[t["image_class_labels.txt"][iid]],
                          "train" if t["train_test_split.txt"][iid] == "1" else "test")
             for iid, rel in t["images.txt"].items()]
    return Dataset("cub", "cub", items, [classes[k] for k in sorted(classes, key=int)])
