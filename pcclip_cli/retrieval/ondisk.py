"""An IVF index built from embedding shards on disk, its inverted lists merged into one file on disk.

Peak memory is bounded by one shard, not by the collection: the coarse quantizer is trained on a sample drawn
across the shards, each shard is added to a copy of the trained (empty) index and written out, and faiss's
OnDiskInvertedLists merges the shards' lists into `vectors.ivfdata`, which searching maps instead of loading.
Recall tuning (`--target-recall`) measures the same leave-one-out sample as the in-memory build, with the exact
neighbours found shard by shard. faiss's own on-disk merge is used rather than autofaiss: the index stays the
IVF-Flat that `retrieve` and the tuning already know, and no second index-building stack is pulled in.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pcclip_cli import __version__
from pcclip_cli.core.dirs import build_dir, check_out_dir
from pcclip_cli.core.errors import DataError

from .backend import import_faiss, quiet_faiss_stdout
from .index_types import IndexType, index_params
from .layout import INDEX_FORMAT, INDEX_FORMAT_VERSION, ITEMS_FILE, MANIFEST_FILE, VECTORS_FILE
from .shards import done_shards, read_items, shard_rows
from .store import items_db, stored_path
from .tuning import DEFAULT_TARGET_RECALL, TUNING_QUERIES, tune_index, without_self

IVFDATA_FILE = "vectors.ivfdata"


def _rows_at(shards, counts, ids):
    """The vectors at global ids (sorted), read from the shards' memory maps."""
    import numpy as np

    out, start = [], 0
    for s, c in zip(shards, counts, strict=True):
        local = ids[(ids >= start) & (ids < start + c)] - start
        if len(local):
            out.append(np.asarray(np.load(s.vectors, mmap_mode="r")[local], dtype=np.float32))
        start += c
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _exact_by_shard(shards, counts, queries, k: int):
    """Each query's k nearest vectors over all shards, one shard in memory at a time."""
    import numpy as np

    faiss = import_faiss()
    best_d = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    start = 0
    for s, c in zip(shards, counts, strict=True):
        vec = np.load(s.vectors)
        kk = min(k, c)
        d, i = faiss.knn(queries, vec, kk, metric=faiss.METRIC_INNER_PRODUCT)
        alld = np.concatenate([best_d, d], axis=1)
        alli = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(-alld, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(alld, order, 1), np.take_along_axis(alli, order, 1)
        start += c
        del vec
    return best_i


def build_ondisk_index(embeddings: str | Path, out: str | Path, *, model: dict, target_recall: float | None = None,
                       max_latency_ms: float | None = None, nlist: int | None = None, progress=None,
                       warn=None) -> dict:
    """Build an IVF index directory at `out` from the finished shards in `embeddings` (retrieval.shards)."""
    import numpy as np

    faiss = import_faiss()
    embeddings, out = Path(embeddings), Path(out)
    check_out_dir(out, holds="a pcclip index", reusable=lambda p: (p / MANIFEST_FILE).exists())
    shards = done_shards(embeddings)
    counts = [shard_rows(s.vectors) for s in shards]
    n = sum(counts)
    if n < 2:
        raise DataError(f"{embeddings} holds {n} embedded image(s); an IVF index needs at least 2")
    t0 = time.perf_counter()
    params = index_params(IndexType.ivf, n)
    if nlist:
        params.update(nlist=nlist, nprobe=max(1, nlist // 16), train_sample=min(n, 64 * nlist))
    rng = np.random.default_rng(0)
    train_ids = np.sort(rng.choice(n, params["train_sample"], replace=False))
    train = _rows_at(shards, counts, train_ids)
    dim = train.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    trained = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
    trained.train(train)
    del train
    with build_dir(out) as tmp:
        parts = tmp / "parts"
        parts.mkdir()
        trained_path = parts / "trained.faiss"
        faiss.write_index(trained, str(trained_path))
        db = items_db(tmp / ITEMS_FILE)
        part_files, start = [], 0
        try:
            for j, (s, c) in enumerate(zip(shards, counts, strict=True)):
                index = faiss.read_index(str(trained_path))
                vec = np.load(s.vectors)
                index.add_with_ids(vec, np.arange(start, start + c, dtype=np.int64))
                path = parts / f"part-{j:05d}.faiss"
                faiss.write_index(index, str(path))
                part_files.append(str(path))
                rows = read_items(s)
                with db:
                    db.executemany("INSERT INTO items (rowid, key, path, item_id, meta) VALUES (?, ?, ?, ?, ?)",
                                   [(start + i, r["path"], stored_path(Path(r["path"]), out), r["id"],
                                     json.dumps(r.get("meta") or {}, ensure_ascii=False))
                                    for i, r in enumerate(rows)])
                start += c
                del index, vec
                if progress:
                    progress(j + 1, len(shards), stage="adding shards")
        finally:
            db.close()
        merged = faiss.read_index(str(trained_path))
        # merge_ondisk's own copy of these lines keeps the output path as given; the index must point at the
        # ivfdata by a name relative to its own file, so that the directory can be swapped into place and moved.
        from faiss.contrib.ondisk import merge_ondisk

        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with quiet_faiss_stdout():
                merge_ondisk(merged, part_files, IVFDATA_FILE)
                faiss.write_index(merged, VECTORS_FILE)
        finally:
            os.chdir(cwd)
        del merged
        for f in parts.iterdir():
            f.unlink()
        parts.rmdir()
        t_index = time.perf_counter() - t0
        with quiet_faiss_stdout():
            index = faiss.read_index(str(tmp / VECTORS_FILE), faiss.IO_FLAG_ONDISK_SAME_DIR)
        sample = np.sort(rng.choice(n, min(TUNING_QUERIES, n), replace=False))
        qs = _rows_at(shards, counts, sample)
        kk = min(10, n - 1)
        exact = without_self(_exact_by_shard(shards, counts, qs, kk + 1), sample.tolist(), kk)
        tuning = tune_index(index, IndexType.ivf, None, target_recall=target_recall or DEFAULT_TARGET_RECALL,
                            max_latency_ms=max_latency_ms, sample=sample, sample_vectors=qs, exact=exact)
        if tuning.warning and warn:
            warn(tuning.warning + "; the index is built with that setting")
        params["nprobe"] = tuning.value
        spec = {"type": IndexType.ivf.value, "chosen": "on-disk", "params": params, "storage": "on-disk",
                "ivfdata": IVFDATA_FILE, "tuning": tuning.to_manifest()}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = {"format": INDEX_FORMAT, "format_version": INDEX_FORMAT_VERSION, "model": model, "dim": dim,
                    "metric": "inner_product", "normalized": True, "index": spec, "count": n,
                    "files": {"index": VECTORS_FILE, "items": ITEMS_FILE, "ivfdata": IVFDATA_FILE},
                    "pcclip_version": __version__, "faiss_version": faiss.__version__, "created": now,
                    "updated": now, "embeddings": str(embeddings.resolve())}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        del index
    return {"index": str(out), "count": n, "shards": len(shards), "index_type": "ivf",
            "storage": "on-disk", "params": params, "recall": spec["tuning"]["measured_recall"],
            "latency_ms_p50": spec["tuning"]["latency_ms_p50"], "target_met": spec["tuning"]["met"],
            "seconds": {"index": round(t_index, 3), "tune": round(time.perf_counter() - t0 - t_index, 3)}}
