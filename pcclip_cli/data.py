"""Image-caption records and image inputs: reading captions.jsonl, folders and manifests, opening images."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .io import read_jsonl

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class OnError(str, enum.Enum):
    """What to do with an unreadable image: stop the run (default) or skip it with a warning."""

    stop = "stop"
    skip = "skip"


@dataclass
class CaptionRecord:
    id: str
    image: Path  # absolute
    caption: str
    split: str | None = None
    attributes: dict = field(default_factory=dict)


def read_captions(path: str | Path) -> list[CaptionRecord]:
    """Read captions.jsonl: one object per line with `image` (relative to the file) and `caption`.

    `id` defaults to the image path; `split` and `attributes` are optional.
    """
    path = Path(path)
    root = path.parent
    records, seen = [], set()
    for lineno, rec in read_jsonl(path, what="captions file"):
        image, caption = rec.get("image"), rec.get("caption")
        if not isinstance(image, str) or not image:
            raise DataError(f"{path}:{lineno}: missing \"image\" (a path relative to {root})")
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"{path}:{lineno}: missing or empty \"caption\"")
        rid = str(rec.get("id") or image)
        if rid in seen:
            raise DataError(f"{path}:{lineno}: duplicate id {rid!r}; ids must be unique")
        seen.add(rid)
        attrs = rec.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise DataError(f"{path}:{lineno}: \"attributes\" must be an object")
        records.append(CaptionRecord(rid, (root / image).resolve(), caption.strip(), rec.get("split"), attrs))
    if not records:
        raise DataError(f"captions file {path} is empty")
    return records


@dataclass
class ImageItem:
    path: Path
    id: str
    meta: dict = field(default_factory=dict)


def collect_images(inputs: list[str | Path]) -> list[ImageItem]:
    """Expand image files, folders (searched recursively, sorted) and JSONL manifests into image items."""
    items: list[ImageItem] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise DataError(f"image or folder not found: {p}")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in folder {p}")
            items += [ImageItem(q.resolve(), str(q.relative_to(p))) for q in found]
        elif p.suffix.lower() == ".jsonl":
            for lineno, rec in read_jsonl(p, what="manifest"):
                if not isinstance(rec.get("image"), str):
                    raise DataError(f"{p}:{lineno}: missing \"image\"")
                img = (p.parent / rec["image"]).resolve()
                meta = {k: v for k, v in rec.items() if k not in ("image",)}
                items.append(ImageItem(img, str(rec.get("id") or rec["image"]), meta))
            if not items:
                raise DataError(f"manifest {p} lists no images")
        else:
            items.append(ImageItem(p.resolve(), p.name))
    return items


def open_image(path: Path):
    """Open an image as RGB, raising DataError naming the file when it is missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"unreadable image {path} ({type(exc).__name__}); fix or remove it, "
                        "or pass --on-bad-image skip") from None
