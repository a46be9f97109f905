"""Repair of a generation output in which a key appears twice (two writers at once, or files concatenated)."""

from __future__ import annotations

import json
from pathlib import Path


def _line_key(raw: bytes) -> str | None:
    """A line's `key`, or None for lines the comparatives reader will judge itself (blank, malformed)."""
    if not raw.strip():
        return None
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    key = rec.get("key") if isinstance(rec, dict) else None
    return key if isinstance(key, str) else None


def remove_duplicate_keys(path: Path) -> int:
    """Rewrite `path` (atomically) keeping the first record of each key; returns how many lines were removed.

    The records of one key were made with the same settings (resume checks them), so the first is as good as
    any later one. A file without repeats is only read."""
    from pcclip_cli.core.io import atomic_path

    path = Path(path)
    if not path.exists():
        return 0
    seen: set[str] = set()
    duplicates = 0
    with open(path, "rb") as fh:
        for raw in fh:
            key = _line_key(raw)
            if key is not None:
                duplicates += key in seen
                seen.add(key)
    if not duplicates:
        return 0
    seen.clear()
    with atomic_path(path) as tmp, open(path, "rb") as src, open(tmp, "wb") as dst:
        for raw in src:
            key = _line_key(raw)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            dst.write(raw)
    return duplicates
