"""The faiss index types pcclip builds (flat, IVF, HNSW): choosing one, sizing its parameters, building it."""

from __future__ import annotations

import enum
import math

from .backend import choose_backend, import_faiss

# Below this many vectors an exact (flat) index answers a query in a few milliseconds on two cores, and the
# approximate types would only cost recall; above it IVF's build time pays for itself (benchmarks/bench_faiss.py).
FLAT_MAX = 100_000


class IndexType(str, enum.Enum):
    """`--index-type`: auto picks flat up to FLAT_MAX vectors (or for a target recall of 1) and ivf above."""

    auto = "auto"
    flat = "flat"
    ivf = "ivf"
    hnsw = "hnsw"


def auto_index_type(count: int, target_recall: float | None = None) -> IndexType:
    """Exact search while it is fast enough or when nothing less than the exact answer will do; IVF, tuned to
    the target, above. HNSW is never picked: on two cores it builds 1M x 512 far slower than IVF (bench_faiss)."""
    if count <= FLAT_MAX or (target_recall is not None and target_recall >= 1):
        return IndexType.flat
    return IndexType.ivf


def index_params(kind: IndexType, count: int) -> dict:
    """Parameters of the approximate types, sized from the number of vectors at build time."""
    if kind == IndexType.ivf:
        # ~sqrt(n) lists, and at least 39 training points per list (faiss's k-means minimum).
        nlist = max(1, min(int(round(math.sqrt(count))), count // 39))
        return {"nlist": nlist, "nprobe": max(1, min(nlist, int(math.ceil(nlist / 16)))), "trained_on": count,
                "train_sample": min(count, 64 * nlist)}
    if kind == IndexType.hnsw:
        return {"m": 32, "ef_construction": 80, "ef_search": 64}
    return {}


def make_faiss_index(kind: IndexType, dim: int, params: dict, vectors, *, device: str | None = None):
    """A CPU faiss index holding `vectors` and the backend that built it (trains and adds on a GPU if present)."""
    import numpy as np

    faiss = import_faiss()
    kind = IndexType(kind)
    train = vectors
    if kind == IndexType.ivf and len(vectors) > params["train_sample"]:
        # k-means on a seeded sample: 64 points per list place the centroids as well as all of them, much faster.
        pick = np.random.default_rng(0).choice(len(vectors), params["train_sample"], replace=False)
        train = np.ascontiguousarray(vectors[np.sort(pick)])
    metric = faiss.METRIC_INNER_PRODUCT
    if kind == IndexType.flat:
        index = faiss.IndexFlatIP(dim)
    elif kind == IndexType.ivf:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, params["nlist"], metric)
    else:
        index = faiss.IndexHNSWFlat(dim, params["m"], metric)
        index.hnsw.efConstruction = params["ef_construction"]
    if choose_backend(device=device) == "gpu" and kind != IndexType.hnsw:
        res = faiss.StandardGpuResources()
        gpu = faiss.index_cpu_to_gpu(res, 0, index)
        if kind == IndexType.ivf:
            gpu.train(train)
        gpu.add(vectors)
        return faiss.index_gpu_to_cpu(gpu), "gpu"
    if kind == IndexType.ivf:
        index.train(train)
    index.add(vectors)
    return index, "cpu"


def add_to_faiss(index, vectors, *, device: str | None = None):
    faiss = import_faiss()
    if choose_backend(device=device) == "gpu" and not isinstance(index, faiss.IndexHNSW):
        res = faiss.StandardGpuResources()
        gpu = faiss.index_cpu_to_gpu(res, 0, index)
        gpu.add(vectors)
        index = faiss.index_gpu_to_cpu(gpu)
        return index
    index.add(vectors)
    return index



def apply_search_params(index, spec: dict) -> None:
    params = spec.get("params", {})
    faiss = import_faiss()
    if spec["type"] == IndexType.ivf.value:
        faiss.extract_index_ivf(index).nprobe = int(params.get("nprobe", 1))
    elif spec["type"] == IndexType.hnsw.value:
        index.hnsw.efSearch = int(params.get("ef_search", 64))



def all_vectors(index):
    """Every vector an index holds, in id order (IVF needs its direct map built for that, then dropped)."""
    faiss = import_faiss()
    if index.ntotal == 0:
        import numpy as np

        return np.zeros((0, index.d), dtype=np.float32)
    if isinstance(index, faiss.IndexIVF):
        ivf = faiss.extract_index_ivf(index)
        ivf.make_direct_map()
        try:
            return ivf.reconstruct_n(0, ivf.ntotal)
        finally:
            ivf.set_direct_map_type(faiss.DirectMap.NoMap)
    return index.reconstruct_n(0, index.ntotal)
