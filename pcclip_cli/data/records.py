"""Image-caption records and image inputs: reading captions.jsonl, folders and manifests, opening images."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError
from pcclip_cli.core.io import read_jsonl

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class OnError(str, enum.Enum):
    """What to do with an unreadable image: stop the run (default) or skip it with a warning."""

    stop = "stop"
    skip = "skip"


@dataclass
class ImageRecord:
    """One image of a manifest, captions file, folder or dataset: the only image record type pcclip uses."""

    path: Path  # absolute
    id: str
    label: str | None = None
    split: str | None = None
    attributes: dict = field(default_factory=dict)  # `attributes` plus any other keys of the manifest row
    caption: str | None = None
    record: dict = field(default_factory=dict, repr=False, compare=False)  # the manifest row as read

    def value(self, key: str):
        """An attribute for task filters; `label`, `split` and `id` are attributes too."""
        if key in ("label", "split", "id"):
            return getattr(self, key)
        return self.attributes.get(key)

    @property
    def meta(self) -> dict:
        """What the manifest said about the image besides its path (stored with index entries)."""
        return {k: v for k, v in self.record.items() if k != "image"}


_ROW_FIELDS = ("image", "id", "label", "split", "attributes", "caption")

# The path policy for manifests: `pcclip --inside-only` (or PCCLIP_ALLOW_OUTSIDE=0) refuses images outside the
# manifest's folder; the default allows them (see docs/hardening.md for why).
ALLOW_OUTSIDE_ENV = "PCCLIP_ALLOW_OUTSIDE"
_allow_outside: list[bool | None] = [None]  # set for one command by the CLI; None: the environment decides


def set_allow_outside(value: bool | None) -> None:
    """Set the path policy for the running command (None: back to $PCCLIP_ALLOW_OUTSIDE, default allow)."""
    _allow_outside[0] = value


def allow_outside() -> bool:
    """Whether manifests may name images outside their folder (by ../, an absolute path or a symlink)."""
    import os

    if _allow_outside[0] is not None:
        return _allow_outside[0]
    return os.environ.get(ALLOW_OUTSIDE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _check_inside(root: Path, image: str, manifest: Path, lineno: int, rid: str) -> None:
    import os

    base = root.absolute()
    written = Path(os.path.normpath(base / image))
    if written != base and base not in written.parents:
        how = "an absolute path" if Path(image).is_absolute() else "../"
    else:
        resolved, real_base = written.resolve(), base.resolve()
        if resolved == real_base or real_base in resolved.parents:
            return
        how = "a symlink"
    raise DataError(f"{manifest}:{lineno}: record {rid!r} names {image!r}, outside the manifest's folder "
                    f"{base} (through {how}); move it inside, or pass --allow-outside (pcclip --allow-outside "
                    "COMMAND ...)")


def read_manifest(path: str | Path, *, require_caption: bool = False, what: str = "manifest") -> list[ImageRecord]:
    """Read a JSONL manifest: one object per line with `image` (a path relative to the file) and optional `id`
    (default: the image path; unique), `caption`, `label`, `split` and `attributes`; other keys become
    attributes too. captions.jsonl, class manifests and `--images` manifests are all this format."""
    path = Path(path)
    root = path.parent
    records, seen = [], set()
    inside_only = not allow_outside()
    for lineno, rec in read_jsonl(path, what=what):
        image, caption = rec.get("image"), rec.get("caption")
        if not isinstance(image, str) or not image:
            raise DataError(f"{path}:{lineno}: missing \"image\" (a path relative to {root})")
        if require_caption and (not isinstance(caption, str) or not caption.strip()):
            raise DataError(f"{path}:{lineno}: missing or empty \"caption\"")
        if caption is not None and not isinstance(caption, str):
            raise DataError(f"{path}:{lineno}: \"caption\" must be a string")
        rid = str(rec.get("id") or image)
        if rid in seen:
            raise DataError(f"{path}:{lineno}: duplicate id {rid!r}; ids must be unique")
        seen.add(rid)
        attrs = rec.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise DataError(f"{path}:{lineno}: \"attributes\" must be an object")
        extra = {k: v for k, v in rec.items() if k not in _ROW_FIELDS}
        label = rec.get("label")
        if inside_only:
            _check_inside(root, image, path, lineno, rid)
        records.append(ImageRecord((root / image).resolve(), rid, None if label is None else str(label),
                                   rec.get("split"), {**extra, **attrs}, caption.strip() if caption else None, rec))
    if not records:
        raise DataError(f"{what} {path} is empty: it lists no images")
    return records


def read_captions(path: str | Path) -> list[ImageRecord]:
    """A captions.jsonl: a manifest whose every row has a non-empty `caption`."""
    return read_manifest(path, require_caption=True, what="captions file")


def collect_images(inputs: list[str | Path]) -> list[ImageRecord]:
    """Expand image files, folders (searched recursively, sorted) and JSONL manifests into image records."""
    items: list[ImageRecord] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise DataError(f"image or folder not found: {p}")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in folder {p}")
            items += [ImageRecord(q.resolve(), str(q.relative_to(p))) for q in found]
        elif p.suffix.lower() == ".jsonl":
            items += read_manifest(p)
        else:
            items.append(ImageRecord(p.resolve(), p.name))
    return items


def open_image(path: Path):
    """Open an image as RGB, raising DataError naming the file when it is missing, unreadable, or larger than
    the decoder's pixel limit (a decompression bomb: a small file that would decode to gigabytes)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise DataError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            # Between the limit and twice it PIL only warns; pcclip treats it as the bomb it may be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"image {path} is too large to decode safely ({exc.args[0].split('.')[0]}); "
                        "shrink it, or pass --on-bad-image skip") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"unreadable image {path} ({type(exc).__name__}); fix or remove it, "
                        "or pass --on-bad-image skip") from None
