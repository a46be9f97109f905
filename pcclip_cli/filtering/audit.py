"""Fidelity audit: how often a comparative's statements about colour, size, shape and count are right.

Each record of a comparatives file (from `generate` with any backend, or from `filter`) names its two images
(`first`, `second`); their known attributes come from the world's captions.jsonl. Every statement the parser
finds (statements.py) is scored:

    correct      true of the image it is about
    swapped      false of that image but true of the other one (first and second reversed)
    wrong        true of neither image
    undecidable  the attributes cannot settle it (a size comparison involving a two-object image, or a
                 statement whose image the text never names)

precision = correct / (correct + swapped + wrong). The differences present in a pair are: count (when the counts
differ); for two one-object images, size, colour and shape where they differ; for two two-object images, colour
and shape where the left or right objects differ. Coverage is the share of those differences that the text states
correctly (a correct statement of that kind about either image).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError

from .statements import Statement, Vocabulary, load_vocabulary, parse

VERDICTS = ("correct", "swapped", "wrong", "undecidable")
SIZE_ORDER = {"small": 0, "medium": 1, "large": 2}
EXAMPLES_PER_KIND = 3


def _values(attrs: dict, kind: str) -> set[str]:
    objects = attrs.get("objects") or []
    if kind == "count":
        return {str(attrs.get("count", len(objects)))}
    return {o.get(kind) for o in objects if o.get(kind)}


def _holds(st: Statement, mine: dict, other: dict) -> bool | None:
    """Whether `st` is true of the image with attributes `mine` (the other image is `other`); None: undecidable."""
    if st.kind == "size_comparison":
        if mine.get("count") != 1 or other.get("count") != 1:
            return None
        a, b = SIZE_ORDER.get(mine["objects"][0]["size"]), SIZE_ORDER.get(other["objects"][0]["size"])
        if a is None or b is None:
            return None
        return a > b if st.value == "bigger" else a < b
    return st.value in _values(mine, st.kind)


def score(st: Statement, first: dict, second: dict) -> str:
    """The verdict on one statement, given both images' attributes."""
    if st.image == "unknown":
        return "undecidable"
    if st.image == "both":
        if st.kind == "size_comparison":
            return "undecidable"
        both = [_holds(st, first, second), _holds(st, second, first)]
        return "undecidable" if None in both else ("correct" if all(both) else "wrong")
    mine, other = (first, second) if st.image == "first" else (second, first)
    here = _holds(st, mine, other)
    if here is None:
        return "undecidable"
    if here:
        return "correct"
    return "swapped" if _holds(st, other, mine) else "wrong"


def differences(first: dict, second: dict) -> list[str]:
    """The kinds of difference between two images that a complete comparative states."""
    if first.get("count") != second.get("count"):
        return ["count"]
    a, b = first.get("objects") or [], second.get("objects") or []
    if first.get("count") == 1:
        return [k for k in ("size", "colour", "shape") if a[0].get(k) != b[0].get(k)]
    return [k for k in ("colour", "shape") if any(x.get(k) != y.get(k) for x, y in zip(a, b, strict=False))]


@dataclass
class AuditReport:
    records: int = 0
    statements: Counter = field(default_factory=Counter)  # verdict -> n
    by_kind: dict = field(default_factory=dict)  # kind -> Counter of verdicts
    present: int = 0
    covered: int = 0
    no_statement: int = 0
    no_text: int = 0
    examples: dict = field(default_factory=lambda: {"wrong": [], "swapped": [], "missed": []})

    def as_dict(self) -> dict:
        decided = self.statements["correct"] + self.statements["swapped"] + self.statements["wrong"]
        return {
            "records": self.records, "statements": sum(self.statements.values()),
            **{v: self.statements[v] for v in VERDICTS},
            "precision": round(self.statements["correct"] / decided, 4) if decided else None,
            "coverage": round(self.covered / self.present, 4) if self.present else None,
            "swap_rate": round(self.statements["swapped"] / decided, 4) if decided else None,
            "differences_present": self.present, "differences_stated": self.covered,
            "records_without_statements": self.no_statement,
            "records_without_text": self.no_text,
            "by_kind": {k: {v: c[v] for v in VERDICTS} for k, c in sorted(self.by_kind.items())},
            "examples": self.examples,
        }


def audit_records(records, attributes: dict[str, dict], vocab: Vocabulary, source: str = "input") -> AuditReport:
    """Score (line, record) pairs of comparatives against `attributes` (image id -> attributes)."""
    rep = AuditReport()
    for lineno, rec in records:
        text, a_id, b_id = rec.get("text"), rec.get("first"), rec.get("second")
        if not isinstance(text, str) or not text.strip():
            rep.no_text += 1  # the one rule of every command: dropped and counted
            continue
        if a_id not in attributes or b_id not in attributes:
            missing = a_id if a_id not in attributes else b_id
            raise DataError(f"{source}:{lineno}: image {missing!r} is not in the captions file; audit the "
                            "comparatives with the captions.jsonl they were generated from")
        first, second = attributes[a_id], attributes[b_id]
        rep.records += 1
        stated = parse(text, vocab)
        if not stated:
            rep.no_statement += 1
        right_kinds = set()
        for st in stated:
            verdict = score(st, first, second)
            rep.statements[verdict] += 1
            rep.by_kind.setdefault(st.kind, Counter())[verdict] += 1
            if verdict == "correct":
                right_kinds.add("size" if st.kind == "size_comparison" else st.kind)
            elif verdict in ("wrong", "swapped") and len(rep.examples[verdict]) < EXAMPLES_PER_KIND:
                rep.examples[verdict].append({"key": rec.get("key"), "text": text, "statement":
                                              f"{st.image} image: {st.kind} {st.value} ({st.phrase!r})"})
        diffs = differences(first, second)
        rep.present += len(diffs)
        missed = [d for d in diffs if d not in right_kinds]
        rep.covered += len(diffs) - len(missed)
        if missed and len(rep.examples["missed"]) < EXAMPLES_PER_KIND:
            rep.examples["missed"].append({"key": rec.get("key"), "text": text, "missed": missed})
    return rep


def read_attributes(captions: str | Path) -> dict[str, dict]:
    """Image id -> attributes from a captions.jsonl whose records carry `attributes` with `count` and `objects`."""
    from pcclip_cli.data.records import read_captions

    captions = Path(captions)
    if not captions.exists():
        raise DataError(f"captions file not found: {captions}")
    records = read_captions(captions)
    out = {}
    for rec in records:
        attrs = rec.attributes or {}
        objects = attrs.get("objects")
        if not (isinstance(objects, list) and objects and all(isinstance(o, dict) for o in objects)):
            raise DataError(f"{captions}: image {rec.id!r} has no attributes; the audit needs captions whose "
                            "records carry \"attributes\": {\"count\": N, \"objects\": [{\"colour\", \"size\", "
                            "\"shape\"}, ...]}, as a shapes world's captions.jsonl does (pcclip data shapes)")
        out[rec.id] = {"count": attrs.get("count", len(objects)), "objects": objects}
    return out


def audit_file(comparatives: str | Path, captions: str | Path, vocabulary: str | Path | None = None) -> dict:
    """`pcclip audit`: score every record of a comparatives file against the captions' known attributes."""
    from pcclip_cli.data.comparatives import RecordKind, read_comparatives

    comparatives = Path(comparatives)
    if not comparatives.exists():
        raise DataError(f"comparatives file not found: {comparatives}")
    vocab = load_vocabulary(vocabulary)
    attributes = read_attributes(captions)
    records = ((c.line, c.record) for c in read_comparatives(comparatives, kinds=(RecordKind.pairs,),
                                                             other_kinds="error"))
    rep = audit_records(records, attributes, vocab, str(comparatives))
    if rep.records == 0:
        raise DataError(f"comparatives file {comparatives} holds no records" + (
            f" with a \"text\" string ({rep.no_text} without one); is this a comparatives file?" if rep.no_text
            else ""))
    return {"input": str(comparatives), "captions": str(captions), "vocabulary": vocab.source, **rep.as_dict()}
