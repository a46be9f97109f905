"""Fidelity audit of class knowledge: how often class descriptions and class comparatives state a class's colour,
size and shape correctly, against what a world's images of that class show.

A class's truth is read from the world's captions.jsonl: every image whose attributes name the class (under
`label`, "produce" in the produce world) contributes its colour, size and shape; a colour any of its images has
counts as right (grapes are purple or green). In a class comparative the two class names are read as "first"
and "second", so the image-pair parser and verdicts of audit.py apply unchanged; a description is about its one
class throughout. A text with no statement is counted (`records_without_statements`).
"""

from __future__ import annotations

import re
from pathlib import Path

from pcclip_cli.core.errors import DataError

from .audit import audit_records
from .statements import load_vocabulary


def class_truths(captions: str | Path, label: str) -> dict[str, dict]:
    """Class name -> audit attributes (count 1, one object per colour the class's images show)."""
    from pcclip_cli.data.records import read_captions

    captions = Path(captions)
    if not captions.exists():
        raise DataError(f"captions file not found: {captions}")
    seen: dict[str, dict] = {}
    for rec in read_captions(captions):
        attrs = rec.attributes or {}
        name, objects = attrs.get(label), attrs.get("objects") or []
        if not isinstance(name, str) or len(objects) != 1:
            continue
        obj = objects[0]
        entry = seen.setdefault(name, {"colours": set(), "size": obj.get("size"), "shape": obj.get("shape")})
        entry["colours"].add(obj.get("colour"))
    if not seen:
        raise DataError(f"{captions}: no record names a class under attributes.{label}; audit class texts with "
                        "a world whose records do (pcclip data produce)")
    return {name: {"count": 1, "objects": [{"colour": c, "size": e["size"], "shape": e["shape"]}
                                           for c in sorted(e["colours"])]} for name, e in seen.items()}


def _as_pair_text(text: str, first: str, second: str | None) -> str:
    # Longer names first, so "red pepper" is read before a class called "pepper" could be.
    names = sorted({first, second} - {None}, key=len, reverse=True)
    for name in names:
        text = re.sub(rf"\b{re.escape(name)}s?\b", "first" if name == first else "second", text, flags=re.I)
    return text if second else "first: " + text


def audit_class_file(texts: str | Path, captions: str | Path, vocabulary: str | Path | None = None,
                     label: str = "produce") -> dict:
    """`pcclip audit --classes`: score class descriptions and class comparatives against the world's classes."""
    from pcclip_cli.data.comparatives import RecordKind, read_comparatives

    texts = Path(texts)
    if not texts.exists():
        raise DataError(f"class texts file not found: {texts}")
    vocab = load_vocabulary(vocabulary)
    truths = class_truths(captions, label)
    records = []
    for c in read_comparatives(texts, kinds=(RecordKind.classes, RecordKind.descriptions), other_kinds="error"):
        rec = c.record
        first, second = rec.get("first"), rec.get("second")
        for name in (first, second):
            if name is not None and name not in truths:
                raise DataError(f"{texts}:{c.line}: class {name!r} is not in {captions} (its classes: "
                                f"{', '.join(sorted(truths)[:8])}, ...)")
        records.append((c.line, {**rec, "text": _as_pair_text(rec["text"], first, second),
                                 "second": second or first}))
    rep = audit_records(records, truths, vocab, str(texts))
    if rep.records == 0:
        raise DataError(f"class texts file {texts} holds no records")
    return {"input": str(texts), "captions": str(captions), "vocabulary": vocab.source, "label": label,
            **rep.as_dict()}
