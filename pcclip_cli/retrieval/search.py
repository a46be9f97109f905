"""Searching a loaded index: top-k hits with their metadata, after score and path filters."""

from __future__ import annotations

from pcclip_cli.core.errors import PcclipError

from .store import Hit, LoadedIndex


def search(index: LoadedIndex, queries, k: int = 10, *, min_score: float | list[float] | None = None,
           exclude: set[str] | None = None) -> list[list[Hit]]:
    """Top-k hits (highest inner product first) for each row of `queries` (n, d) or one vector (d,).

    min_score keeps only hits scoring strictly above it (one value, or one per query); exclude drops hits whose
    absolute path is in the set. Fewer than k hits come back when the index is smaller or filters remove some.
    """
    import numpy as np

    if k < 1:
        raise PcclipError(f"--k must be at least 1, got {k}")
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != index.dim:
        raise PcclipError(f"query vectors have dimension {q.shape[-1]} but the index holds {index.dim}-d vectors")
    q = np.ascontiguousarray(q)
    thresholds = min_score if isinstance(min_score, list | tuple) else [min_score] * len(q)
    exclude = exclude or set()
    # Filters remove hits after the search, so ask faiss for a few more than k.
    fetch = min(index.count, k + len(exclude))
    if fetch == 0:
        return [[] for _ in range(len(q))]
    scores, ids = index.index.search(q, fetch)
    items = index.items(ids.ravel().tolist())
    results = []
    for row in range(len(q)):
        hits: list[Hit] = []
        for score, iid in zip(scores[row], ids[row], strict=True):
            if iid < 0 or int(iid) not in items:
                continue
            if thresholds[row] is not None and not score > thresholds[row]:
                continue
            path, item_id, meta = items[int(iid)]
            if path in exclude:
                continue
            hits.append(Hit(len(hits) + 1, float(score), path, item_id, meta, int(iid)))
            if len(hits) == k:
                break
        results.append(hits)
    return results


