"""An opened index directory: reading and checking its manifest, faiss vectors and item metadata."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcclip_cli.core.dirs import recover

from .backend import choose_backend, import_faiss, quiet_faiss_stdout
from .index_types import IndexType, apply_search_params
from .layout import (
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    ITEMS_FILE,
    MANIFEST_FILE,
    VECTORS_FILE,
    IndexFileError,
)


@dataclass
class Hit:
    rank: int
    score: float
    path: str  # absolute
    id: str
    meta: dict = field(default_factory=dict)
    index_id: int = -1

    def to_dict(self) -> dict:
        return {"rank": self.rank, "score": self.score, "path": self.path, "id": self.id, "meta": self.meta}


@dataclass
class LoadedIndex:
    """An opened index: the faiss object, its manifest and a read-only view of its items."""

    root: Path
    manifest: dict
    index: Any  # faiss index (on the GPU when backend == "gpu")
    backend: str
    _db: sqlite3.Connection | None = None
    _gpu_resources: Any = None

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def index_type(self) -> str:
        return self.manifest["index"]["type"]

    @property
    def model(self) -> dict:
        return self.manifest["model"]

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            uri = (self.root / ITEMS_FILE).resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return self._db

    def items(self, ids: list[int]) -> dict[int, tuple[str, str, dict]]:
        """faiss id -> (absolute path, image id, metadata), fetched in chunks so any index size works."""
        out = {}
        wanted = sorted({int(i) for i in ids if i >= 0})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT rowid, path, item_id, meta FROM items WHERE rowid IN ({marks})", chunk)
            for rowid, path, item_id, meta in rows:
                out[rowid] = (str(absolute(self.root, path)), item_id, json.loads(meta) if meta else {})
        return out

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def stored_path(image: Path, index_dir: Path) -> str:
    """Relative to the index directory when both live under a common folder (so they can move together)."""
    image, index_dir = image.resolve(), index_dir.resolve()
    common = Path(os.path.commonpath([image, index_dir]))
    if common == Path(common.anchor):
        return str(image)
    return os.path.relpath(image, index_dir)


def absolute(root: Path, stored: str) -> Path:
    p = Path(stored)
    return p if p.is_absolute() else Path(os.path.normpath(root.resolve() / p))


def read_manifest(index_dir: str | Path) -> dict:
    root = Path(index_dir)
    if not root.exists():
        raise IndexFileError(f"index not found: {root}; build one with `pcclip index IMAGES --out {root}`")
    if not root.is_dir():
        raise IndexFileError(f"{root} is a file; --index takes the directory written by `pcclip index`")
    path = root / MANIFEST_FILE
    if not path.exists():
        raise IndexFileError(f"{root} is not a pcclip index: {MANIFEST_FILE} is missing; rebuild it with `pcclip index`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"{path} is corrupt ({exc}); rebuild the index with `pcclip index`") from None
    ok = (isinstance(manifest, dict) and manifest.get("format") == INDEX_FORMAT
          and isinstance(manifest.get("model"), dict) and isinstance(manifest.get("index"), dict)
          and isinstance(manifest.get("dim"), int) and isinstance(manifest.get("count"), int))
    if not ok:
        raise IndexFileError(f"{path} is not a pcclip index manifest (format/model/index/dim/count missing); "
                             "rebuild the index with `pcclip index`")
    if manifest.get("format_version", 0) > INDEX_FORMAT_VERSION:
        raise IndexFileError(f"{root} was written by a newer pcclip (format {manifest['format_version']}); upgrade pcclip")
    return manifest


def load_index(index_dir: str | Path, *, use_gpu: bool | None = None, device: str | None = None) -> LoadedIndex:
    """Open an index for searching, on faiss's GPU path when `device` allows it and this build has one (see
    backend.choose_backend); checks that its three files agree with each other."""
    root = Path(index_dir)
    recover(root)
    manifest = read_manifest(root)
    for name in (VECTORS_FILE, ITEMS_FILE):
        if not (root / name).is_file():
            raise IndexFileError(f"{root} is incomplete: {name} is missing; rebuild the index with `pcclip index`")
    faiss = import_faiss()
    try:
        # An on-disk IVF (retrieval.ondisk) names its vectors.ivfdata relative to this file's folder.
        with quiet_faiss_stdout():
            index = faiss.read_index(str(root / VECTORS_FILE), faiss.IO_FLAG_ONDISK_SAME_DIR)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
        raise IndexFileError(f"{root / VECTORS_FILE} is corrupt ({first}); rebuild the index with `pcclip index`") from None
    if index.ntotal != manifest["count"] or index.d != manifest["dim"]:
        raise IndexFileError(f"{root} is inconsistent: {VECTORS_FILE} holds {index.ntotal} x {index.d} but the manifest "
                             f"says {manifest['count']} x {manifest['dim']}; rebuild the index")
    apply_search_params(index, manifest["index"])
    backend = choose_backend(use_gpu, device=device)
    loaded = LoadedIndex(root, manifest, index, "cpu")
    on_disk = manifest["index"].get("storage") == "on-disk"  # mapped lists stay on the CPU
    if backend == "gpu" and manifest["index"]["type"] != IndexType.hnsw.value and not on_disk:  # no GPU HNSW
        loaded._gpu_resources = faiss.StandardGpuResources()
        loaded.index = faiss.index_cpu_to_gpu(loaded._gpu_resources, 0, index)
        loaded.backend = "gpu"
    try:
        rows = loaded.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise IndexFileError(f"{root / ITEMS_FILE} is corrupt ({exc}); rebuild the index with `pcclip index`") from None
    if rows != manifest["count"]:
        raise IndexFileError(f"{root} is inconsistent: {ITEMS_FILE} has {rows} rows but the index {manifest['count']} "
                             "vectors; rebuild the index")
    return loaded




def items_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS items (rowid INTEGER PRIMARY KEY, key TEXT UNIQUE, path TEXT, "
               "item_id TEXT, meta TEXT)")
    return db

