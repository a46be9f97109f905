"""Tuning an approximate index to a recall target: nprobe (IVF) or efSearch (HNSW), measured against exact search.

The measurement, as autofaiss does it, uses the indexed vectors themselves: a seeded sample of them is searched
in the approximate index and by brute force over all vectors. Each sample vector's own entry is left out of
both answers (it would always be found first and inflate the recall), so recall@k is measured on its k
nearest *other* vectors: the sample is held out as queries, not as data. The search parameter is then the
smallest that reaches the target, found by doubling and then bisecting (since recall and latency both grow
with it) down to a step of 1/16 of the value: a search that probes 6% more than the least would is not worth
the extra trials, each of which searches the whole sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pcclip_cli.core.errors import PcclipError

from .backend import import_faiss
from .index_types import IndexType

DEFAULT_TARGET_RECALL = 0.95
TUNING_QUERIES = 1000  # sample size: recall@10 to about +-0.005 at 0.95
LATENCY_QUERIES = 200  # single queries timed for p50/p95 at the chosen setting
HNSW_EF_MAX = 4096
BISECT_STEP = 16  # stop bisecting once the bracket is narrower than value / BISECT_STEP


def check_target(target_recall: float | None, max_latency_ms: float | None = None) -> None:
    if target_recall is not None and not 0 < target_recall <= 1:
        raise PcclipError(f"--target-recall must be in (0, 1], got {target_recall}; e.g. 0.95 for 95% of the "
                          "exact top-k")
    if max_latency_ms is not None and not max_latency_ms > 0:
        raise PcclipError(f"--max-latency-ms must be positive, got {max_latency_ms}")


@dataclass
class Trial:
    value: int
    recall: float
    p50_ms: float | None = None


@dataclass
class Tuning:
    """What tuning found; `to_manifest()` is what the index manifest records under index.tuning."""

    param: str | None  # "nprobe", "ef_search", or None for an exact index
    value: int | None
    recall: float
    p50_ms: float
    p95_ms: float
    target_recall: float
    max_latency_ms: float | None
    k: int
    queries: int
    met: bool
    trials: list[Trial] = field(default_factory=list)
    warning: str | None = None

    def to_manifest(self) -> dict:
        return {"target_recall": self.target_recall, "max_latency_ms": self.max_latency_ms,
                "measured_recall": round(self.recall, 4), "latency_ms_p50": round(self.p50_ms, 3),
                "latency_ms_p95": round(self.p95_ms, 3), "k": self.k, "sample_queries": self.queries,
                "param": self.param, "value": self.value, "met": self.met,
                "method": "leave-one-out sample of the indexed vectors vs exact search",
                "trials": [{"value": t.value, "recall": round(t.recall, 4),
                            "p50_ms": None if t.p50_ms is None else round(t.p50_ms, 3)} for t in self.trials],
                "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _set_param(index, kind: IndexType, value: int) -> None:
    faiss = import_faiss()
    if kind == IndexType.ivf:
        faiss.extract_index_ivf(index).nprobe = int(value)
    elif kind == IndexType.hnsw:
        index.hnsw.efSearch = int(value)


def without_self(ids, self_ids, k: int):
    """Each row's ids minus the query's own id, cut to k."""
    return [[i for i in row if i != s and i >= 0][:k] for row, s in zip(ids.tolist(), self_ids, strict=True)]


def _recall(found: list[list[int]], exact: list[list[int]], k: int) -> float:
    return sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True)) / (k * len(exact))


def latency_ms(index, queries, k: int) -> tuple[float, float]:
    """p50 and p95 of single-query searches (one query per call, as `retrieve` runs them)."""
    import numpy as np

    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def exact_neighbours(vectors, sample_ids, k: int) -> list[list[int]]:
    """The k nearest other vectors of each sampled vector, by brute force (without copying the vectors)."""
    faiss = import_faiss()
    _, ids = faiss.knn(vectors[sample_ids], vectors, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    return without_self(ids, sample_ids.tolist(), k)


def _candidates(kind: IndexType, index, k: int) -> tuple[str, list[int], int]:
    if kind == IndexType.ivf:
        nlist = import_faiss().extract_index_ivf(index).nlist
        return "nprobe", [1], nlist
    return "ef_search", [max(16, k)], HNSW_EF_MAX


def tune_index(index, kind: IndexType | str, vectors, *, target_recall: float = DEFAULT_TARGET_RECALL,
               max_latency_ms: float | None = None, k: int = 10, queries: int = TUNING_QUERIES,
               seed: int = 0, sample=None, sample_vectors=None, exact=None) -> Tuning:
    """Set `index`'s search parameter to the smallest value reaching `target_recall` (and `max_latency_ms`).

    `vectors` are all the vectors the index holds, in id order. A flat index is exact: its recall is 1 and only
    its latency is measured. When no setting meets both bounds, the index keeps the best one found (the most
    recall within the latency bound; the fastest if none is within it) and `warning` says what was reached.
    An index too large to hold its vectors in memory (retrieval.ondisk) passes vectors=None with the sampled
    ids, their vectors and their exact neighbours (as exact_neighbours returns them) computed shard by shard.
    """
    import numpy as np

    check_target(target_recall, max_latency_ms)
    kind = IndexType(kind)
    n = int(index.ntotal) if vectors is None else len(vectors)
    if sample is None:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, min(queries, n), replace=False)) if n else np.zeros(0, np.int64)
    qs = vectors[sample] if sample_vectors is None else sample_vectors
    timed = qs[:LATENCY_QUERIES]
    if kind == IndexType.flat or n <= 1:
        p50, p95 = latency_ms(index, timed, k) if n else (0.0, 0.0)
        met = max_latency_ms is None or p50 <= max_latency_ms
        warning = None if met else (f"no setting meets --max-latency-ms {max_latency_ms:g}: the exact index "
                                    f"answers in {p50:.2f} ms (p50)")
        return Tuning(None, None, 1.0, p50, p95, target_recall, max_latency_ms, k, len(sample), met,
                      warning=warning)
    kk = min(k, n - 1)
    exact = exact if exact is not None else exact_neighbours(vectors, sample, kk)
    param, start, top = _candidates(kind, index, kk)
    trials: dict[int, Trial] = {}

    def measure(value: int) -> Trial:
        if value not in trials:
            _set_param(index, kind, value)
            _, ids = index.search(qs, kk + 1)
            trial = Trial(value, _recall(without_self(ids, sample.tolist(), kk), exact, kk))
            if max_latency_ms is not None:
                trial.p50_ms = latency_ms(index, timed, kk)[0]
            trials[value] = trial
        return trials[value]

    def ok(t: Trial) -> bool:
        return t.recall >= target_recall

    # Double until the target is reached (or the parameter's ceiling), then bisect between the last two.
    lo, value = 0, start[0]
    while True:
        t = measure(value)
        if ok(t) or value >= top:
            break
        lo, value = value, min(top, value * 2)
    if ok(t):
        hi = value
        while hi - lo > max(1, hi // BISECT_STEP):
            mid = (lo + hi) // 2
            if ok(measure(mid)):
                hi = mid
            else:
                lo = mid
        best = trials[hi]
    else:
        best = t  # the ceiling: the most recall this index can give
    warning = None
    if not ok(best):
        warning = (f"--target-recall {target_recall:g} is out of reach: {param}={best.value} (the most) gives "
                   f"recall@{kk} {best.recall:.3f}")
    if max_latency_ms is not None and best.p50_ms is not None and best.p50_ms > max_latency_ms:
        within = [t for t in trials.values() if t.p50_ms is not None and t.p50_ms <= max_latency_ms]
        fallback = max(within, key=lambda t: (t.recall, -t.value)) if within else \
            min(trials.values(), key=lambda t: t.value)
        warning = (f"no setting meets both --target-recall {target_recall:g} and --max-latency-ms "
                   f"{max_latency_ms:g}: {param}={best.value} reaches recall {best.recall:.3f} at "
                   f"{best.p50_ms:.2f} ms; kept {param}={fallback.value}: recall {fallback.recall:.3f} at "
                   f"{fallback.p50_ms:.2f} ms (p50)")
        best = fallback
    _set_param(index, kind, best.value)
    p50, p95 = latency_ms(index, timed, kk)
    met = ok(best) and (max_latency_ms is None or p50 <= max_latency_ms)
    if warning is None and not met:  # the final timing, on more queries, came out above the bound
        warning = (f"--max-latency-ms {max_latency_ms:g} not met: {param}={best.value} answers in {p50:.2f} ms "
                   f"(p50) at recall {best.recall:.3f}")
    return Tuning(param, best.value, best.recall, p50, p95, target_recall, max_latency_ms, k, len(sample), met,
                  sorted(trials.values(), key=lambda t: t.value), warning)
