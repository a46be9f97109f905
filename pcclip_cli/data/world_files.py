"""What every embedded world shares: its records written as captions, splits and class manifests, and its folder
built beside the target and swapped in."""

from __future__ import annotations

import json
from pathlib import Path

from pcclip_cli.core.dirs import build_dir
from pcclip_cli.core.errors import PcclipError


def write_records(out: Path, records: list[dict], class_attributes) -> None:
    """captions.jsonl, its per-split files (comparatives are generated from training images only) and one class
    manifest per attribute in `class_attributes`, for the records that have it."""
    with open(out / "captions.jsonl", "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    for split in ("train", "test"):
        with open(out / f"captions-{split}.jsonl", "w", encoding="utf-8") as fh:
            for rec in records:
                if rec["split"] == split:
                    fh.write(json.dumps(rec) + "\n")
    for attr in class_attributes:
        with open(out / "classes" / f"{attr}.jsonl", "w", encoding="utf-8") as fh:
            for rec in records:
                if attr in rec["attributes"]:
                    fh.write(json.dumps({"image": f"../{rec['image']}", "label": rec["attributes"][attr],
                                         "split": rec["split"], "id": rec["id"]}) + "\n")


def build_world_dir(out: str | Path, config: dict, version: int, write, *, kind: str, force: bool = False) -> dict:
    """Build a generated world with `write(tmp_dir) -> summary` beside `out`, then rename it into place.

    Shared by every embedded world: one whose world.json records the same `config` and `version` is reused, a
    different one is replaced only with `force`, and a folder holding anything else is refused untouched.
    """
    out = Path(out)
    if out.exists():
        existing = out / "world.json"
        if existing.exists():
            try:
                old = json.loads(existing.read_text())
            except json.JSONDecodeError:
                old = {}
            if old.get("config") == config and old.get("world_version") == version:
                return {**old, "reused": True, "path": str(out)}
            if not force:
                raise PcclipError(f"{out} holds a different {kind} world; pass --force to replace it")
        elif out.is_file() or any(out.iterdir()):
            raise PcclipError(f"{out} exists and is not a {kind} world; choose an empty or new directory")
    with build_dir(out) as tmp:
        summary = write(tmp)
    return {**summary, "reused": False, "path": str(out)}
