"""Training data for `pcclip train`: comparatives JSONL -> (first image, second image, text) pairs, captions
-> (image, caption) pairs, and an oracle comparatives writer for the shapes world.

A comparatives record names its two images by the `id` of the captions file (see docs/architecture.md). Only
`kind = "pairs"` records train PC-CLIP (class-level comparatives carry no images).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError
from pcclip_cli.core.io import sha256_file, write_jsonl_atomic
from pcclip_cli.data.comparatives import RecordKind, read_comparatives
from pcclip_cli.data.records import ImageRecord, read_captions


@dataclass
class PairData:
    """Image pairs and their difference texts, with the images listed once each."""

    images: list[Path]  # unique images, absolute paths
    first: list[int]  # index into images
    second: list[int]
    texts: list[str]
    counts: dict = field(default_factory=dict)  # records read / kept / dropped and why
    trainable: int | None = None  # rows [0, trainable) are sampled (None: all); see training/order.py
    partner: list[int] | None = None  # the row that joins row i in its batch, -1 none (hard negatives)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class CaptionData:
    images: list[Path]
    texts: list[str]
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


def data_file_entry(path: str | Path, role: str) -> dict:
    path = Path(path)
    return {"role": role, "path": str(path.resolve()), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _split_filter(records: list[ImageRecord], split: str | None) -> list[ImageRecord]:
    if split is None:
        return records
    return [r for r in records if r.split == split]


def read_caption_pairs(captions: str | Path, split: str | None = None) -> CaptionData:
    records = read_captions(captions)
    kept = _split_filter(records, split)
    if not kept:
        splits = sorted({str(r.split) for r in records})
        raise DataError(f"no captions left after filtering {captions} by split {split!r} "
                        f"(its splits: {', '.join(splits)}); pass another --split or none")
    counts = {"read": len(records), "kept": len(kept), "other_split": len(records) - len(kept)}
    return CaptionData([r.path for r in kept], [r.caption for r in kept], counts)


def read_comparative_pairs(comparatives: str | Path, captions: str | Path, split: str | None = None,
                           max_pairs: int | None = None, seed: int = 0) -> PairData:
    """Join comparatives to the captions file's images. Unknown ids are an error (naming the first and how many);
    records of another kind, with empty text, or with an image outside `split` are dropped and counted."""
    if captions is None:
        raise DataError("--objective pc needs --captions: the captions.jsonl whose ids the comparatives name")
    records = read_captions(captions)
    by_id = {r.id: r for r in records}
    allowed = {r.id for r in _split_filter(records, split)}
    counts = {"read": 0, "kept": 0, "not_pairs": 0, "empty_text": 0, "other_split": 0, "same_image": 0}
    missing: list[tuple[int, str]] = []
    rows: list[tuple[str, str, str]] = []
    for comp in read_comparatives(comparatives):
        counts["read"] += 1
        if comp.kind != RecordKind.pairs:
            counts["not_pairs"] += 1
            continue
        first, second, text = comp.first, comp.second, comp.text
        for rid in (first, second):
            if rid not in by_id:
                missing.append((comp.line, rid))
        if not text:
            counts["empty_text"] += 1
            continue
        if first == second:
            counts["same_image"] += 1
            continue
        if first not in allowed or second not in allowed:
            counts["other_split"] += 1
            continue
        rows.append((first, second, text))
    if missing:
        lineno, rid = missing[0]
        raise DataError(f"{comparatives}:{lineno}: image id {rid!r} is not in the captions file {captions} "
                        f"({len(missing)} reference(s) to unknown ids); pass the captions file the comparatives "
                        "were generated from")
    if max_pairs is not None and len(rows) > max_pairs:
        rows = random.Random(seed).sample(rows, max_pairs)
    if not rows:
        dropped = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("read", "kept") and v)
        raise DataError(f"no training pairs left in {comparatives} after filtering ({counts['read']} read; "
                        f"dropped: {dropped or 'none'}); check --split and that the file holds kind=pairs records")
    counts["kept"] = len(rows)
    index: dict[str, int] = {}
    images: list[Path] = []
    for first, second, _ in rows:
        for rid in (first, second):
            if rid not in index:
                index[rid] = len(images)
                images.append(by_id[rid].path)
    return PairData(images, [index[f] for f, _, _ in rows], [index[s] for _, s, _ in rows],
                    [t for _, _, t in rows], counts)


def oracle_comparatives(world: str | Path, out: str | Path, *, pairs: int = 1000, split: str | None = "train",
                        seed: int = 0, where: dict | None = None, relations: bool = False) -> int:
    """Write `pairs` comparatives records for random ordered pairs of a shapes world's images, their texts
    written from the known attributes (shapes.describe_difference). `where` keeps images whose attributes
    match (e.g. {"count": 1}); `relations` lets the texts state relations (more/fewer, the change from the
    first image to the second). Returns the number of records written."""
    from pcclip_cli.data.shapes import describe_difference, load_world

    root, recs = load_world(world)
    pool = [r for r in recs if (split is None or r.get("split") == split)
            and all(r["attributes"].get(k) == v for k, v in (where or {}).items())]
    if len(pool) < 2:
        raise DataError(f"the world {root} has fewer than 2 images in split {split!r}; build a bigger one")
    rng = random.Random(seed)

    def records():
        for k in range(pairs):
            a, b = rng.sample(pool, 2)
            text = describe_difference(a["attributes"], b["attributes"], rng, relations=relations)
            yield {"key": f"oracle-{seed}-{k}", "kind": "pairs", "first": a["id"], "second": b["id"],
                   "first_caption": a["caption"], "second_caption": b["caption"], "text": text,
                   "llm": "oracle", "backend": "oracle", "prompt": None, "prompt_sha256": None, "params": {}}

    return write_jsonl_atomic(out, records())
