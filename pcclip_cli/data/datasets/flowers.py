"""Oxford Flowers102 as released: jpg/image_NNNNN.jpg, imagelabels.mat (`labels`, 1..102 per image) and setid.mat
(`trnid`, `valid`, `tstid`: the image numbers of each split), all under flowers-102/ as torchvision places them."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import DataError

from .base import Dataset, LabeledImage, missing

SPLIT_KEYS = (("train", "trnid"), ("val", "valid"), ("test", "tstid"))


def class_names() -> list[str]:
    """The 102 class names in label order. The release numbers its classes only; these are the names that
    torchvision's Flowers102 gives them, and the names examples/tasks/flowers102-colour.toml uses."""
    from torchvision.datasets import Flowers102

    return list(Flowers102.classes)


def _loadmat(path: Path, root: Path) -> dict:
    if not path.is_file():
        raise missing("flowers102", root, path)
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError("reading Flowers102's .mat files needs scipy: pip install 'pcclip[eval]'") from None
    try:
        return loadmat(path, squeeze_me=True)
    except Exception as exc:  # scipy raises several types for a file that is not MATLAB v5
        raise DataError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})") from None


def _integers(mat: dict, key: str, path: Path, low: int, high: int) -> list[int]:
    import numpy as np

    if key not in mat:
        raise DataError(f"{path} has no {key!r} variable (it holds {', '.join(k for k in mat if not k.startswith('__'))})")
    values = np.atleast_1d(np.asarray(mat[key]))
    # MATLAB saves numbers as doubles unless told otherwise: accept any numeric type holding whole numbers.
    if values.dtype.kind not in "iuf" or values.ndim != 1 or (values.dtype.kind == "f" and
                                                                 not np.all(values == np.round(values))):
        raise DataError(f"{path}: {key!r} is not a vector of whole numbers")
    out = [int(v) for v in values]
    bad = [v for v in out if not low <= v <= high]
    if bad:
        raise DataError(f"{path}: {key!r} holds {bad[0]}, outside {low}..{high}")
    return out


def load_flowers102(root: Path) -> Dataset:
    base = root / "flowers-102"
    labels_path, setid_path, jpg = base / "imagelabels.mat", base / "setid.mat", base / "jpg"
    classes = class_names()
    labels = _integers(_loadmat(labels_path, root), "labels", labels_path, 1, len(classes))
    setid = _loadmat(setid_path, root)
    if not jpg.is_dir():
        raise missing("flowers102", root, jpg)
    items = []
    for split, key in SPLIT_KEYS:
        for image_no in _integers(setid, key, setid_path, 1, len(labels)):
            path = jpg / f"image_{image_no:05d}.jpg"
            items.append(LabeledImage(path.resolve(), path.stem, classes[labels[image_no - 1] - 1], split))
    return Dataset("flowers102", "flowers102", items, classes)
