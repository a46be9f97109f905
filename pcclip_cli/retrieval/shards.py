"""Embedding shards on disk: vectors (npy) plus their items (jsonl), one pair per slice of the input images.

A folder of shards is what an embedding pass writes (in-process or as a Ray Data job) and what the on-disk
index build reads. Shard i holds the images [i*size, (i+1)*size) of the input list, so a rerun knows which
shards are missing; a shard counts as done once its items file exists (written last, by rename), so a killed
pass leaves no half shard that would be read. `plan.json` records the inputs and model the shards belong to.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError

PLAN_FILE = "plan.json"
DEFAULT_SHARD_SIZE = 100_000


@dataclass
class Shard:
    index: int
    vectors: Path
    items: Path

    @property
    def done(self) -> bool:
        return self.items.is_file() and self.vectors.is_file()


def shard(folder: Path, i: int) -> Shard:
    return Shard(i, folder / f"vectors-{i:05d}.npy", folder / f"items-{i:05d}.jsonl")


def inputs_digest(keys: list[str]) -> str:
    h = hashlib.sha256()
    for k in keys:
        h.update(k.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def open_plan(folder: Path, *, count: int, shard_size: int, digest: str, model: dict) -> list[Shard]:
    """Create or check the shard folder's plan; the shards of these inputs, done or not."""
    if shard_size < 1:
        raise PcclipError(f"--shard-size must be at least 1, got {shard_size}")
    folder.mkdir(parents=True, exist_ok=True)
    plan = {"count": count, "shard_size": shard_size, "inputs": digest,
            "image_fingerprint": model["image_fingerprint"], "model": model}
    path = folder / PLAN_FILE
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("count", "shard_size", "inputs", "image_fingerprint"):
            if old.get(key) != plan[key]:
                raise DataError(f"embedding shards in {folder} were written for other inputs or another model "
                                f"({key} differs); pass a new --embeddings folder or remove {folder}")
    else:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return [shard(folder, i) for i in range((count + shard_size - 1) // shard_size)]


def shard_rows_for(items) -> list[dict]:
    """The items-file rows of image records: absolute path, id and the manifest's metadata."""
    return [{"path": str(it.path), "id": it.id, "meta": it.meta} for it in items]


def write_shard(s: Shard, vectors, rows: list[dict]) -> None:
    """Vectors first, items last, each by rename: the items file is the shard's done marker."""
    import numpy as np

    if len(vectors) != len(rows):
        raise ValueError("vectors and items differ in length")
    tmp = s.vectors.with_suffix(f".tmp-{os.getpid()}.npy")
    np.save(tmp, np.ascontiguousarray(vectors, dtype=np.float32))
    os.replace(tmp, s.vectors)
    tmp_items = s.items.with_suffix(f".tmp-{os.getpid()}")
    tmp_items.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp_items, s.items)


def done_shards(folder: Path) -> list[Shard]:
    """The finished shards of a folder, in order; refuses a folder whose plan is not complete."""
    path = folder / PLAN_FILE
    if not path.is_file():
        raise DataError(f"{folder} holds no embedding shards ({PLAN_FILE} missing)")
    plan = json.loads(path.read_text(encoding="utf-8"))
    shards = [shard(folder, i) for i in range((plan["count"] + plan["shard_size"] - 1) // plan["shard_size"])]
    missing = [s.index for s in shards if not s.done]
    if missing:
        raise DataError(f"{folder}: {len(missing)} of {len(shards)} embedding shards are unfinished "
                        f"(first: {missing[0]}); rerun the same command to finish them")
    return shards


def read_items(s: Shard) -> list[dict]:
    return [json.loads(line) for line in s.items.read_text(encoding="utf-8").splitlines() if line]


def shard_rows(vectors_path: Path) -> int:
    import numpy as np

    return int(np.load(vectors_path, mmap_mode="r").shape[0])
