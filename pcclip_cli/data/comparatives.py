"""The comparatives JSONL format (what `generate` writes, `filter` keeps, `train`, tasks and `classify` read): one
reader and validator for every command.

Each line is an object with `kind` ("pairs" by default: two image ids; "classes": two class names;
"descriptions": one class), `first`, `second` (not for descriptions) and `text`; writers add provenance
(`key`, `llm`, `prompt`, captions...), which readers keep in `record`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError
from pcclip_cli.core.io import read_jsonl


class RecordKind(str, enum.Enum):
    pairs = "pairs"  # first/second are image ids of a captions file
    classes = "classes"  # first/second are class names
    descriptions = "descriptions"  # first is a class name; no second


@dataclass(frozen=True)
class Comparative:
    kind: RecordKind
    first: str
    second: str | None
    text: str  # whitespace-normalised; may be empty (callers decide what an empty text means)
    line: int
    record: dict = field(repr=False, compare=False)  # the whole object as read

    @property
    def where(self) -> str:
        return f"line {self.line}"


def read_comparatives(path: str | os.PathLike, *, kinds: tuple[RecordKind, ...] | None = None,
                      other_kinds: str = "skip", what: str = "comparatives file",
                      require_key: str | None = None) -> Iterator[Comparative]:
    """Yield the file's records, checked: a known kind; `first` (and `second` except for descriptions) non-empty
    strings; `text` a string. A record of a kind outside `kinds` is skipped (`other_kinds="skip"`) or an error
    (`"error"`). A malformed record is an error naming the file and line. `require_key` names the action to
    suggest when a line lacks the `key` that `generate` writes (so another JSONL is not mistaken for one)."""
    path = Path(path)
    for lineno, rec in read_jsonl(path, what=what):
        where = f"{path}:{lineno}"
        if require_key is not None and "key" not in rec:
            raise DataError(f"{where}: not a comparatives record (no \"key\"); {require_key}")
        raw_kind = rec.get("kind", RecordKind.pairs.value)
        try:
            kind = RecordKind(raw_kind)
        except ValueError:
            raise DataError(f"{where}: unknown record kind {raw_kind!r}; valid kinds: "
                            f"{', '.join(k.value for k in RecordKind)}") from None
        if kinds is not None and kind not in kinds:
            if other_kinds == "error":
                raise DataError(f"{where}: record of kind {kind.value!r}; expected kind "
                                f"{' or '.join(repr(k.value) for k in kinds)}")
            continue
        names = "image ids" if kind == RecordKind.pairs else "class names"
        first, second = rec.get("first"), rec.get("second")
        if not isinstance(first, str) or not first.strip():
            raise DataError(f"{where}: a {kind.value} record needs \"first\" ({names[:-1]})")
        if kind != RecordKind.descriptions and (not isinstance(second, str) or not second.strip()):
            raise DataError(f"{where}: a {kind.value} record needs string \"first\" and \"second\" ({names})")
        text = rec.get("text")
        if text is not None and not isinstance(text, str):
            raise DataError(f"{where}: \"text\" must be a string")
        yield Comparative(kind, first, None if kind == RecordKind.descriptions
                          else second, " ".join((text or "").split()), lineno, rec)
