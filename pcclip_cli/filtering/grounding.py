"""Grounded filter checks: a comparative must not name attributes its captions lack, nor reverse first and second.

Both read the statements of statements.py and compare them with the words of the two captions (any captions:
COCO's too), by kind of attribute, through the vocabulary's canonical values ("tiny" and "small" are one size).
"""

from __future__ import annotations

from .audit import SIZE_ORDER
from .statements import Vocabulary, caption_values, parse


def _captions(record: dict) -> tuple[str | None, str | None]:
    """The two texts a record compares: its captions (image pairs) or its names (class pairs)."""
    return (record.get("first_caption") or record.get("first"),
            record.get("second_caption") or record.get("second"))


def ungrounded(text: str, record: dict, vocab: Vocabulary, kinds: tuple[str, ...]) -> bool:
    """Whether `text` names a value of one of `kinds` that neither caption names (a hallucinated attribute)."""
    a, b = _captions(record)
    if not a or not b:
        return False
    va, vb = caption_values(a, vocab), caption_values(b, vocab)
    return any(st.kind in kinds and st.value not in va[st.kind] | vb[st.kind] for st in parse(text, vocab))


def _level(values: set[str]) -> int | None:
    levels = {SIZE_ORDER[v] for v in values if v in SIZE_ORDER}
    return levels.pop() if len(levels) == 1 else None


def swapped(text: str, record: dict, vocab: Vocabulary) -> bool:
    """Whether `text` says of one image what only the other image's caption says (first and second reversed).

    Decidable only where the captions settle it: a colour, size or shape word found in exactly one caption, or a
    size comparison between captions that each name one size.
    """
    a, b = _captions(record)
    if not a or not b:
        return False
    values = {"first": caption_values(a, vocab), "second": caption_values(b, vocab)}
    other = {"first": "second", "second": "first"}
    for st in parse(text, vocab):
        if st.image not in other:
            continue
        mine, theirs = values[st.image], values[other[st.image]]
        if st.kind in ("colour", "size", "shape"):
            if st.value not in mine[st.kind] and st.value in theirs[st.kind]:
                return True
        elif st.kind == "size_comparison":
            la, lb = _level(mine["size"]), _level(theirs["size"])
            if la is not None and lb is not None and la != lb and (la > lb) != (st.value == "bigger"):
                return True
    return False
