"""Caption datasets as they ship (COCO's annotation JSON, CUB's per-image text files) into pcclip's captions.jsonl.

Each image becomes one record `{"id", "image", "caption", "split"?, "attributes"}` as `data.read_captions` reads
it: `image` is relative to the output file, `caption` is the chosen caption and `attributes.captions` holds all of
the image's captions (`--caption all` instead writes one record per caption).
"""

from __future__ import annotations

import enum
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.io import atomic_path, inside
from pcclip_cli.data.records import OnError

from .cub import cub_base, read_cub
from .json_stream import JsonObjectStream


class CaptionChoice(str, enum.Enum):
    """Which caption an image's record carries."""

    first = "first"  # the first in the dataset's order
    random = "random"  # one drawn per image, seeded by --seed and the image id
    all = "all"  # one record per caption (ids IMAGE-K), e.g. for caption finetuning


@dataclass
class CaptionsOptions:
    caption: CaptionChoice = CaptionChoice.first
    images: int | None = None  # keep a seeded random sample of this many images
    seed: int = 0
    split: str | None = None  # COCO: the split recorded on every record; CUB: keep only this split
    on_bad_image: OnError = OnError.stop

    def __post_init__(self):
        self.caption = CaptionChoice(self.caption)
        self.on_bad_image = OnError(self.on_bad_image)
        if self.images is not None and self.images < 1:
            raise PcclipError(f"--images must be at least 1, got {self.images}")


def captions_path(out: str | Path) -> Path:
    """OUT as given when it names a .jsonl file, else OUT/captions.jsonl."""
    out = Path(out).expanduser()
    return out if out.suffix == ".jsonl" else out / "captions.jsonl"


def _clean(text) -> str:
    return " ".join(str(text).split()) if isinstance(text, str) else ""


def _sample(ids: list, options: CaptionsOptions, source: Path) -> set | None:
    if options.images is None:
        return None
    if options.images > len(ids):
        raise DataError(f"--images {options.images} but {source} has only {len(ids)} images")
    return set(random.Random(f"pcclip-captions|{options.seed}").sample(ids, options.images))


def _records(image_id: str, image_rel: str, captions: list[str], options: CaptionsOptions, split: str | None,
             extra: dict) -> list[dict]:
    def record(rid: str, caption: str, attributes: dict) -> dict:
        rec = {"id": rid, "image": image_rel, "caption": caption}
        if split:
            rec["split"] = split
        rec["attributes"] = attributes
        return rec

    if options.caption == CaptionChoice.all:
        return [record(f"{image_id}-{k}", c, {**extra, "caption_index": k}) for k, c in enumerate(captions)]
    if options.caption == CaptionChoice.random:
        chosen = random.Random(f"pcclip-caption|{options.seed}|{image_id}").choice(captions)
    else:
        chosen = captions[0]
    return [record(image_id, chosen, {**extra, "captions": captions})]


def _check_image(path: Path, what: str, options: CaptionsOptions, missing: list) -> bool:
    if path.is_file():
        return True
    if options.on_bad_image == OnError.stop:
        raise DataError(f"{path}: image file of {what} is missing; place it there, or pass --on-bad-image skip "
                        "to leave such images out")
    missing.append(str(path))
    return False


def _relative(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out.parent.resolve())).as_posix()


def _write(out: Path, entries, options: CaptionsOptions, source: str) -> dict:
    """Stream the records of (id, image path, captions, split, extra) entries into `out` atomically: a failure
    part-way (a missing image under --on-bad-image stop) leaves no file behind."""
    counts = {"images": 0, "records": 0}
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for image_id, path, texts, split, extra in entries:
            for rec in _records(image_id, _relative(path, out), texts, options, split, extra):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                counts["records"] += 1
            counts["images"] += 1
        if not counts["images"]:
            raise DataError(f"no captioned images to write from {source}")
    return counts


def _summary(kind: str, out: Path, counts: dict, missing: list, options: CaptionsOptions, warn, **extra) -> dict:
    if missing and warn:
        warn(f"skipped {len(missing)} image(s) with a missing image or caption file, e.g. {missing[0]}")
    return {"dataset": kind, "out": str(out), **extra, **counts, "caption": options.caption.value,
            "sampled": options.images, "seed": options.seed, "split": options.split, "missing_images": len(missing),
            "missing_examples": missing[:5]}


# ---------------------------------------------------------------------------------------------------------------
# COCO


def _coco_key(value, path: Path, field: str):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"{path}: an entry has {field} = {value!r}; COCO ids are integers")
    return value


def convert_coco(annotations: str | Path, images_dir: str | Path, out: str | Path,
                 options: CaptionsOptions | None = None, *, warn=None) -> dict:
    """COCO caption annotations (e.g. annotations/captions_train2017.json) and their image folder (train2017/)
    into captions.jsonl. The JSON is read one element at a time (json_stream), so memory holds the image table and
    the kept images' captions, never the parsed file."""
    options = options or CaptionsOptions()
    annotations, images_dir, out = Path(annotations).expanduser(), Path(images_dir).expanduser(), captions_path(out)
    if not images_dir.is_dir():
        raise DataError(f"image folder not found: {images_dir} (COCO's train2017/ or val2017/)")
    files: dict = {}  # image id -> file_name, in the file's order
    # image id -> its captions joined by newlines (a cleaned caption holds none): one string per image costs about
    # half of a list of five, and this table is what the conversion's memory grows with.
    captions: dict = {}
    chosen: set | None = None
    state = {"images": False, "annotations": False, "annotations_before_images": False}

    def read_images(elements) -> None:
        for el in elements:
            if not isinstance(el, dict) or "id" not in el or not isinstance(el.get("file_name"), str):
                raise DataError(f"{annotations}: an \"images\" entry lacks \"id\" or \"file_name\"; this is not a "
                                "COCO annotations file")
            files[_coco_key(el["id"], annotations, "id")] = el["file_name"]
        state["images"] = True

    def read_annotations(elements) -> None:
        for el in elements:
            if not isinstance(el, dict) or "image_id" not in el:
                raise DataError(f"{annotations}: an \"annotations\" entry lacks \"image_id\"; this is not a COCO "
                                "annotations file")
            if "caption" not in el:
                raise DataError(f"{annotations}: its annotations have no \"caption\"; give a captions file "
                                "(annotations/captions_train2017.json), not instances or keypoints")
            iid = _coco_key(el["image_id"], annotations, "image_id")
            if chosen is not None and iid not in chosen:
                continue
            text = _clean(el["caption"])
            if text:
                captions[iid] = f"{captions[iid]}\n{text}" if iid in captions else text
        state["annotations"] = True

    stream = JsonObjectStream(annotations, what="COCO annotations file")
    for key, value in stream.members():
        if key in ("images", "annotations") and not isinstance(value, Iterator):
            raise DataError(f"{annotations}: \"{key}\" is not an array; this is not a COCO annotations file")
        if key == "images":
            read_images(value)
            chosen = _sample(list(files), options, annotations)
        elif key == "annotations":
            if state["images"]:
                read_annotations(value)
            else:
                # Sampling needs the image table first: read the annotations in a second pass.
                state["annotations_before_images"] = True
                state["annotations"] = True
    missing_keys = [k for k in ("images", "annotations") if not state[k]]
    if missing_keys:
        raise DataError(f"{annotations} is not a COCO annotations file: no {' or '.join(repr(k) for k in missing_keys)}"
                        " array at the top level (expected e.g. annotations/captions_train2017.json)")
    if state["annotations_before_images"]:
        for key, value in JsonObjectStream(annotations, what="COCO annotations file").members():
            if key == "annotations":
                read_annotations(value)
    missing: list = []
    uncaptioned = [0]

    def entries():
        for iid, file_name in files.items():
            if chosen is not None and iid not in chosen:
                continue
            joined = captions.get(iid)
            if not joined:
                uncaptioned[0] += 1
                continue
            path = inside(images_dir, file_name)
            if _check_image(path, f"COCO image id {iid} in {annotations}", options, missing):
                yield str(iid), path, joined.split("\n"), options.split, {"coco_id": iid}

    counts = _write(out, entries(), options, f"{annotations} with images in {images_dir}")
    return _summary("coco", out, counts, missing, options, warn, annotations=str(annotations),
                    images_dir=str(images_dir), images_in_file=len(files), without_captions=uncaptioned[0],
                    captions=sum(v.count("\n") + 1 for v in captions.values()))


# ---------------------------------------------------------------------------------------------------------------
# CUB


CUB_TEXT_FOLDERS = ("text_c10", "text")


def _cub_text_folder(text_root: Path, first_rel: str) -> Path:
    candidates = [text_root] + [text_root / name for name in CUB_TEXT_FOLDERS]
    for folder in candidates:
        if (folder / Path(first_rel).with_suffix(".txt")).is_file():
            return folder
    looked = ", ".join(str(c / Path(first_rel).with_suffix(".txt")) for c in candidates)
    raise DataError(f"no CUB caption file for the first image of images.txt: looked for {looked} "
                    "(Reed et al.'s text_c10/<class>/<image>.txt)")


def _read_caption_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8 text") from None
    return [c for c in (_clean(line) for line in text.splitlines()) if c]


def convert_cub(cub_root: str | Path, text_root: str | Path, out: str | Path, options: CaptionsOptions | None = None,
                *, warn=None) -> dict:
    """CUB-200-2011 (images.txt, train_test_split.txt, image_class_labels.txt, classes.txt, images/) and the
    per-image caption files of Reed et al. (text_c10/<class>/<image>.txt, ten lines each) into captions.jsonl.
    Record ids are CUB's image ids, the ids `load_dataset("cub")` gives the same images."""
    options = options or CaptionsOptions()
    if options.split not in (None, "train", "test"):
        raise PcclipError(f"--split for CUB is train or test (train_test_split.txt), got {options.split!r}")
    cub_root, text_root, out = Path(cub_root).expanduser(), Path(text_root).expanduser(), captions_path(out)
    if not cub_root.is_dir():
        raise DataError(f"CUB folder not found: {cub_root} (the CUB_200_2011 folder of CUB_200_2011.tgz)")
    if not text_root.is_dir():
        raise DataError(f"caption folder not found: {text_root} (the folder holding text_c10/)")
    base = cub_base(cub_root)
    tables = read_cub(base)
    images, labels, classes = tables["images.txt"], tables["image_class_labels.txt"], tables["classes.txt"]
    splits = {k: "train" if v == "1" else "test" for k, v in tables["train_test_split.txt"].items()}
    ids = [k for k in images if options.split is None or splits[k] == options.split]
    chosen = _sample(ids, options, base / "images.txt")
    text_folder = _cub_text_folder(text_root, images[ids[0]]) if ids else text_root
    missing: list = []

    def entries():
        for iid in ids:
            if chosen is not None and iid not in chosen:
                continue
            rel = images[iid]
            caption_file = text_folder / Path(rel).with_suffix(".txt")
            if not caption_file.is_file():
                if options.on_bad_image == OnError.stop:
                    raise DataError(f"{caption_file}: the caption file of CUB image {iid} ({rel}) is missing; "
                                    "restore it, or pass --on-bad-image skip to leave such images out")
                missing.append(str(caption_file))
                continue
            texts = _read_caption_file(caption_file)
            if not texts:
                raise DataError(f"{caption_file} holds no caption")
            path = inside(base / "images", rel)
            if _check_image(path, f"CUB image {iid} in {base / 'images.txt'}", options, missing):
                yield iid, path, texts, splits[iid], {"class": classes.get(labels[iid])}

    counts = _write(out, entries(), options, f"{base} (split {options.split!r})")
    return _summary("cub", out, counts, missing, options, warn, cub=str(base), text=str(text_folder))
