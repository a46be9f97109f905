"""EuroSAT (RGB) and SUN397, whose releases label an image by the folder it is in."""

from __future__ import annotations

from pathlib import Path

from pcclip_cli.core.errors import DataError

from .base import Dataset, LabeledImage, missing

# EuroSAT.zip (torchvision's copy) unpacks to 2750/; the Zenodo EuroSAT_RGB.zip to EuroSAT_RGB/.
EUROSAT_FOLDERS = ("2750", "EuroSAT_RGB")


def load_eurosat(root: Path) -> Dataset:
    candidates = [root / "eurosat" / f for f in EUROSAT_FOLDERS]
    base = next((c for c in candidates if c.is_dir()), None)
    if base is None:
        raise missing("eurosat", root, candidates[0])
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    items = []
    for cls in classes:
        for img in sorted((base / cls).glob("*.jpg")):
            items.append(LabeledImage(img.resolve(), img.stem, cls))
    if not items:
        raise missing("eurosat", root, base / "<class>/*.jpg")
    return Dataset("eurosat", "eurosat", items, classes)


def load_sun397(root: Path) -> Dataset:
    """ClassName.txt lists the 397 classes as /<letter>/<name>[/<sub>]; each class's images are
    <letter>/<name>[/<sub>]/sun_*.jpg. The label is the path after the letter ("apartment_building/outdoor")."""
    base = root / "SUN397"
    names = base / "ClassName.txt"
    if not names.is_file():
        raise missing("sun397", root, names)
    paths = [line.strip() for line in names.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [p for p in paths if not p.startswith("/") or len(p.split("/")) < 3]
    if bad:
        raise DataError(f"{names}: {bad[0]!r} is not a class path like /a/abbey")
    items, classes = [], []
    for p in paths:
        label = p.split("/", 2)[2]
        folder = base / p.lstrip("/")
        if not folder.is_dir():
            raise missing("sun397", root, folder, f"the folder of class {label!r} in ClassName.txt")
        classes.append(label)
        for img in sorted(folder.glob("sun_*.jpg")):
            items.append(LabeledImage(img.resolve(), f"{p.lstrip('/')}/{img.stem}", label))
    if not items:
        raise missing("sun397", root, base / "<letter>/<class>/sun_*.jpg")
    return Dataset("sun397", "sun397", items, classes)
