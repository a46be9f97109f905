"""The image-embedding cache shared by every command: each image is embedded once per image tower.

Vectors live in one SQLite file per image-tower fingerprint under $PCCLIP_HOME/embeddings. The key is the
image's absolute path, size and mtime, so a changed image is re-embedded and a different model never reads
another model's vectors. Each batch is committed as it finishes, so a killed run keeps what it computed.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError
from pcclip_cli.core.paths import embeddings_dir
from pcclip_cli.data.records import OnError, open_image


@dataclass
class EmbeddingResult:
    vectors: object  # float32 numpy array (n_ok, d), rows in input order
    paths: list[Path]  # the images that have a row
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    computed: int = 0  # how many were embedded now (the rest came from the cache)


def _key(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


class EmbeddingCache:
    def __init__(self, fingerprint: str, root: Path | None = None):
        root = root or embeddings_dir()
        root.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", fingerprint)[:120]
        self.path = root / f"{safe}.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")

    def get_many(self, keys: list[str]) -> dict:
        import numpy as np

        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, dim, blob in self.db.execute(f"SELECT key, dim, vec FROM emb WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return found

    def put_many(self, items: list[tuple[str, object]]) -> None:
        import numpy as np

        rows = [(k, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for k, v in items]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO emb (key, dim, vec) VALUES (?, ?, ?)", rows)

    def close(self):
        self.db.close()


def embed_images(clip, paths: list[Path], *, batch_size: int = 64, on_error: OnError = OnError.stop,
                 progress=None, use_cache: bool = True, warn=None) -> EmbeddingResult:
    """Normalised image embeddings for `paths`, from the cache where possible, batched otherwise.

    With on_error=stop a missing or unreadable image raises DataError before anything is returned; with
    skip it is left out and reported in `skipped` (and through `warn`).
    """
    import numpy as np

    paths = [Path(p) for p in paths]
    keys = [_key(p) for p in paths]
    cache = EmbeddingCache(clip.image_fingerprint) if use_cache else None
    try:
        cached = cache.get_many([k for k in keys if k]) if cache else {}
        todo = [i for i, k in enumerate(keys) if k is None or k not in cached]
        vectors: dict[int, object] = {i: cached[k] for i, k in enumerate(keys) if k and k in cached}
        skipped: list[tuple[Path, str]] = []
        done = len(vectors)
        if progress:
            progress(done, len(paths))
        for start in range(0, len(todo), batch_size):
            batch_idx, images = [], []
            for i in todo[start : start + batch_size]:
                try:
                    images.append(open_image(paths[i]))
                    batch_idx.append(i)
                except DataError as exc:
                    if on_error == OnError.stop:
                        raise
                    skipped.append((paths[i], str(exc)))
                    if warn:
                        warn(f"skipping {exc}")
            if images:
                emb = clip.encode_image_batch(images)
                for i, v in zip(batch_idx, emb, strict=True):
                    vectors[i] = v
                if cache:
                    cache.put_many([(keys[i], v) for i, v in zip(batch_idx, emb, strict=True) if keys[i]])
            done += len(todo[start : start + batch_size])
            if progress:
                progress(done, len(paths))
    finally:
        if cache:
            cache.close()
    order = sorted(vectors)
    dim = clip.embed_dim
    mat = np.stack([vectors[i] for i in order]).astype(np.float32) if order else np.zeros((0, dim), np.float32)
    return EmbeddingResult(mat, [paths[i] for i in order], skipped, computed=len(todo) - len(skipped))
