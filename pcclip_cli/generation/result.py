"""What a generation run reports (`GenerationResult`): counts, speed and the settings its records carry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class GenerationResult:
    """One run of `pcclip generate` (or a library generation): `to_dict()` is what `--json` prints."""

    out: str | None  # the JSONL appended to; None for a run kept in memory
    kind: str
    llm: str
    backend: str
    prompt: str
    prompt_sha256: str
    source: str  # what the items came from, e.g. "60 images"
    total: int  # items in this shard
    skipped: int  # items already in `out` (resumed)
    generated: int  # items written by this run
    llm_calls: int
    tokens: int
    retries: int
    seconds: float
    tokens_per_s: float | None
    repaired_bytes: int  # bytes of a torn last line cut before appending
    params: dict  # the generation parameters every record carries (its resume identity)
    shard: str | None = None  # "I/N" for a `generate` run
    records: list[dict] | None = field(default=None, repr=False)  # the records, for a run kept in memory

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "records"}
        if d["shard"] is None:
            del d["shard"]
        return d
