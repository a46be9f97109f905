"""FAISS retrieval over CLIP image embeddings: build, extend, load and search an index directory.

An index directory holds three files, written together and swapped into place as a whole:
  manifest.json   what made the index: model SPEC and fingerprints, scope, dimension, index type and its
                  parameters, item count, pcclip and faiss versions
  vectors.faiss   the faiss index (inner product on L2-normalised vectors, so scores are cosine similarities)
  items.sqlite    one row per vector: faiss id -> image path (relative to the index directory where possible),
                  the image's id and its metadata (attributes, caption, label) as JSON

    idx = build_index(["world/captions.jsonl"], "out/idx", model="shapes-clip")
    idx = load_index("out/idx")
    hits = search(idx, clip.encode_texts(["a red circle"]), k=10)[0]
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import math
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .data import OnError, collect_images
from .errors import DataError, PcclipError

INDEX_FORMAT = "pcclip-index"
INDEX_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
ITEMS_FILE = "items.sqlite"

# Below this many vectors an exact (flat) index answers a query in a few milliseconds on two cores, and the
# approximate types would only cost recall; above it IVF's build time pays for itself (benchmarks/bench_faiss.py).
FLAT_MAX = 100_000
# This faiss build's default, 128000, keeps query batches off BLAS. At 20 a flat batch of 100 queries over
# 100k x 512 is 3-10x faster with identical results, provided OpenMP threads do not spin (see import_faiss);
# benchmarks/bench_faiss.py measures both.
BLAS_THRESHOLD = 20


class IndexType(str, enum.Enum):
    """`--index-type`: auto picks flat up to FLAT_MAX vectors and ivf above."""

    auto = "auto"
    flat = "flat"
    ivf = "ivf"
    hnsw = "hnsw"


class IndexFileError(PcclipError):
    """An index directory that is missing, torn, corrupt or built with an incompatible model."""


@functools.cache
def import_faiss():
    """faiss, configured: the BLAS threshold above, and OpenMP threads that sleep rather than spin when idle.

    Spinning OpenMP threads make a flat batch search ~10x slower when the cores are shared with other busy
    processes (benchmarks/bench_faiss.py measures it). The wait policy is read once, when the OpenMP runtime
    loads, so it takes effect only if faiss (or torch) has not been imported yet; a user's setting wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    return faiss


def gpu_available(faiss_module=None) -> bool:
    """True when this faiss build has GPU support and sees a GPU; the CPU path is used otherwise."""
    faiss = faiss_module or import_faiss()
    if not hasattr(faiss, "StandardGpuResources") or not hasattr(faiss, "get_num_gpus"):
        return False
    try:
        return faiss.get_num_gpus() > 0
    except Exception:  # a GPU build without a usable driver raises from the C++ side
        return False


def choose_backend(use_gpu: bool | None = None) -> str:
    """'gpu' or 'cpu'. use_gpu=None follows $PCCLIP_DEVICE (cpu forces CPU) and what is present; True insists."""
    if use_gpu is None:
        use_gpu = (os.environ.get("PCCLIP_DEVICE") or "auto").lower() != "cpu"
        return "gpu" if use_gpu and gpu_available() else "cpu"
    if use_gpu and not gpu_available():
        raise PcclipError("a faiss GPU index was asked for but this faiss build has no GPU support or sees no GPU; "
                          "install faiss-gpu-cu12 on a CUDA machine, or use the CPU path (--device cpu)")
    return "gpu" if use_gpu else "cpu"


# --------------------------------------------------------------------------------------------------- types


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
                out[rowid] = (str(_absolute(self.root, path)), item_id, json.loads(meta) if meta else {})
        return out

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# --------------------------------------------------------------------------------------------------- paths


def _stored_path(image: Path, index_dir: Path) -> str:
    """Relative to the index directory when both live under a common folder (so they can move together)."""
    image, index_dir = image.resolve(), index_dir.resolve()
    common = Path(os.path.commonpath([image, index_dir]))
    if common == Path(common.anchor):
        return str(image)
    return os.path.relpath(image, index_dir)


def _absolute(root: Path, stored: str) -> Path:
    p = Path(stored)
    return p if p.is_absolute() else Path(os.path.normpath(root.resolve() / p))


# ------------------------------------------------------------------------------------------------- reading


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


def load_index(index_dir: str | Path, *, use_gpu: bool | None = None) -> LoadedIndex:
    """Open an index for searching; checks that its three files agree with each other."""
    root = Path(index_dir)
    _recover(root)
    manifest = read_manifest(root)
    for name in (VECTORS_FILE, ITEMS_FILE):
        if not (root / name).is_file():
            raise IndexFileError(f"{root} is incomplete: {name} is missing; rebuild the index with `pcclip index`")
    faiss = import_faiss()
    try:
        index = faiss.read_index(str(root / VECTORS_FILE))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
        raise IndexFileError(f"{root / VECTORS_FILE} is corrupt ({first}); rebuild the index with `pcclip index`") from None
    if index.ntotal != manifest["count"] or index.d != manifest["dim"]:
        raise IndexFileError(f"{root} is inconsistent: {VECTORS_FILE} holds {index.ntotal} x {index.d} but the manifest "
                             f"says {manifest['count']} x {manifest['dim']}; rebuild the index")
    _apply_search_params(index, manifest["index"])
    backend = choose_backend(use_gpu)
    loaded = LoadedIndex(root, manifest, index, "cpu")
    if backend == "gpu" and manifest["index"]["type"] != IndexType.hnsw.value:  # faiss has no GPU HNSW
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


def _apply_search_params(index, spec: dict) -> None:
    params = spec.get("params", {})
    faiss = import_faiss()
    if spec["type"] == IndexType.ivf.value:
        faiss.extract_index_ivf(index).nprobe = int(params.get("nprobe", 1))
    elif spec["type"] == IndexType.hnsw.value:
        index.hnsw.efSearch = int(params.get("ef_search", 64))


# ----------------------------------------------------------------------------------------------- searching


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


# ------------------------------------------------------------------------------------------------ building


def auto_index_type(count: int) -> IndexType:
    return IndexType.flat if count <= FLAT_MAX else IndexType.ivf


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


def make_faiss_index(kind: IndexType, dim: int, params: dict, vectors):
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
    if choose_backend() == "gpu" and kind != IndexType.hnsw:
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


def _add_to_faiss(index, vectors):
    faiss = import_faiss()
    if choose_backend() == "gpu" and not isinstance(index, faiss.IndexHNSW):
        res = faiss.StandardGpuResources()
        gpu = faiss.index_cpu_to_gpu(res, 0, index)
        gpu.add(vectors)
        index = faiss.index_gpu_to_cpu(gpu)
        return index
    index.add(vectors)
    return index


def _items_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS items (rowid INTEGER PRIMARY KEY, key TEXT UNIQUE, path TEXT, "
               "item_id TEXT, meta TEXT)")
    return db


def _model_record(clip) -> dict:
    from .models import SpecKind

    spec = clip.spec
    if clip.kind == SpecKind.checkpoint:
        spec = str(Path(spec).expanduser().resolve())
    return {"spec": spec, "arch": clip.arch, "fingerprint": clip.fingerprint,
            "image_fingerprint": clip.image_fingerprint, "scope": clip.scope,
            "base": clip.info.get("base") if clip.info else None, "embed_dim": clip.embed_dim}


def _partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(out: Path) -> None:
    """Tidy up after a killed build: drop its temp directory, and put back an old index it had moved aside."""
    if not out.parent.is_dir():
        return
    for d in out.parent.glob(_partial_prefix(out) + "*"):
        if not _pid_alive(d.name[len(_partial_prefix(out)):].split("-")[0]):
            shutil.rmtree(d, ignore_errors=True)
    for d in out.parent.glob(f".{out.name}.old-*"):
        if _pid_alive(d.name.rsplit("-", 1)[-1]):
            continue
        if not out.exists() and (d / MANIFEST_FILE).exists():
            os.replace(d, out)  # killed between the two renames of a swap: the old index is still whole
        else:
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def _building(out: Path):
    """A temp directory beside `out`, swapped into place on success and removed on failure.

    Swapping is two renames (old out aside, new one in); a kill between them leaves no index at `out`, never
    a torn one, and the next build or load puts the old one back.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(out)}{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
        aside = None
        if out.exists():
            aside = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, aside)
        os.replace(tmp, out)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_out_dir(out: Path) -> None:
    if out.is_file():
        raise PcclipError(f"--out {out} is a file; give a directory for the index")
    if out.is_dir() and not (out / MANIFEST_FILE).exists() and any(out.iterdir()):
        raise PcclipError(f"--out {out} exists and is not a pcclip index; choose a new or empty directory")


def build_index(images: list[str | Path], out: str | Path, *, model: str | None = None,
                index_type: IndexType | str = IndexType.auto, add: bool = False, batch_size: int = 64,
                on_error: OnError | str = OnError.stop, device: str | None = None, progress=None,
                warn=None) -> dict:
    """Embed `images` (files, folders, JSONL manifests) and write (or, with add=True, extend) the index at `out`.

    With add=True the existing index keeps its vectors and model; images already in it are skipped and only
    the new ones are embedded. Returns a summary (counts, index type, timings, backend).
    """
    from .embeddings import embed_images
    from .models import SHAPES_MODEL, load_clip

    out = Path(out)
    kind = IndexType(index_type)
    on_error = OnError(on_error)
    if batch_size < 1:
        raise PcclipError(f"--batch-size must be at least 1, got {batch_size}")
    _check_out_dir(out)
    import_faiss()  # before torch loads, so that both share the OpenMP wait policy set there
    old = None
    if add and (out / MANIFEST_FILE).exists():
        old = load_index(out, use_gpu=False)
        if kind not in (IndexType.auto, IndexType(old.index_type)):
            raise PcclipError(f"--add keeps the index type; {out} is {old.index_type}, not {kind.value} "
                              "(rebuild without --add to change it)")
    items = collect_images([Path(p) for p in images])
    if not items:
        raise DataError("no images given; pass image files, folders or JSONL manifests")
    t0 = time.perf_counter()
    clip = load_clip(model or (old.model["spec"] if old else SHAPES_MODEL), device)
    if old is not None and clip.image_fingerprint != old.model["image_fingerprint"]:
        what = f"--model {model} has" if model else f"the model {old.model['spec']} has changed since {out} was built:"
        raise IndexFileError(f"{what} a different image tower than the one {out} was built with "
                             f"({old.model['spec']}); adding would mix embedding spaces; rebuild without --add")
    existing: set[str] = set()
    if old is not None:
        existing = {str(_absolute(old.root, p)) for (p,) in old.db.execute("SELECT path FROM items")}
    # Same image twice in the inputs, or already indexed: embed and add it once.
    seen, fresh = set(existing), []
    for item in items:
        key = str(item.path.resolve())
        if key not in seen:
            seen.add(key)
            fresh.append(item)
    skipped_present = len(items) - len(fresh)
    with _building(out) as tmp:
        if old is not None:
            shutil.copy2(old.root / ITEMS_FILE, tmp / ITEMS_FILE)
        db = _items_db(tmp / ITEMS_FILE)
        try:
            result = embed_images(clip, [it.path for it in fresh], batch_size=batch_size, on_error=on_error,
                                  progress=progress, warn=warn)
            t_embed = time.perf_counter() - t0
            by_path = {it.path: it for it in fresh}
            vectors = result.vectors
            if len(vectors) == 0 and old is None:
                raise DataError("none of the images could be embedded; nothing to index")
            start = old.count if old is not None else 0
            with db:
                db.executemany(
                    "INSERT INTO items (rowid, key, path, item_id, meta) VALUES (?, ?, ?, ?, ?)",
                    [(start + i, str(p.resolve()), _stored_path(p, out), by_path[p].id,
                      json.dumps(by_path[p].meta, ensure_ascii=False))
                     for i, p in enumerate(result.paths)])
        finally:
            db.close()
        t1 = time.perf_counter()
        if progress:
            progress(len(fresh), len(fresh), stage="faiss")
        if old is not None:
            index_spec = dict(old.manifest["index"])
            faiss_index = old.index
            backend = choose_backend()
            if len(vectors):
                faiss_index = _add_to_faiss(faiss_index, vectors)
            old.close()
        else:
            chosen = auto_index_type(len(vectors)) if kind == IndexType.auto else kind
            index_spec = {"type": chosen.value, "chosen": "auto" if kind == IndexType.auto else "user",
                          "params": index_params(chosen, len(vectors))}
            faiss_index, backend = make_faiss_index(chosen, clip.embed_dim, index_spec["params"], vectors)
        t_index = time.perf_counter() - t1
        import_faiss().write_index(faiss_index, str(tmp / VECTORS_FILE))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "model": old.model if old is not None else _model_record(clip),
            "dim": int(faiss_index.d),
            "metric": "inner_product",
            "normalized": True,
            "index": index_spec,
            "count": int(faiss_index.ntotal),
            "files": {"index": VECTORS_FILE, "items": ITEMS_FILE},
            "pcclip_version": __version__,
            "faiss_version": import_faiss().__version__,
            "created": old.manifest.get("created", now) if old is not None else now,
            "updated": now,
        }
        if index_spec["type"] == IndexType.ivf.value and manifest["count"] > 4 * index_spec["params"]["trained_on"]:
            if warn:
                warn(f"the IVF lists were trained on {index_spec['params']['trained_on']} vectors and the index now "
                     f"holds {manifest['count']}; rebuild without --add for the best recall")
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {
        "index": str(out),
        "added": int(len(vectors)),
        "skipped_present": skipped_present,
        "skipped_bad": [{"path": str(p), "reason": r} for p, r in result.skipped],
        "embedded": result.computed,
        "count": manifest["count"],
        "index_type": index_spec["type"],
        "params": index_spec["params"],
        "model": manifest["model"]["spec"],
        "backend": backend,
        "created": old is None,
        "seconds": {"embed": round(t_embed, 3), "index": round(t_index, 3)},
    }


# ------------------------------------------------------------------------------------------------- queries


class QueryKind(str, enum.Enum):
    attribute = "attribute"
    text = "text"
    image = "image"


@dataclass
class Query:
    kind: QueryKind
    value: str  # the attribute word or sentence, the text, or the image path
    than: str | None = None  # --than IMAGE: only images with more of the attribute than this one

    def __post_init__(self):
        self.kind = QueryKind(self.kind)
        if not str(self.value or "").strip():
            raise PcclipError(f"empty --{self.kind.value} query")
        if self.than is not None and self.kind != QueryKind.attribute:
            raise PcclipError("--than compares by an attribute; use it together with --attribute")


def model_for_index(index: LoadedIndex, model: str | None = None, device: str | None = None):
    """The CLIP model to embed queries with: the manifest's, or `model` if it shares the index's image tower."""
    from .models import load_clip

    recorded = index.model
    clip = load_clip(model or recorded["spec"], device)
    if clip.image_fingerprint != recorded["image_fingerprint"]:
        if model:
            raise IndexFileError(
                                 f"--model {model} has a different image tower than the one {index.root} was built with "
                f"({recorded['spec']}): its text embeddings would not match the indexed images; use "
                f"{recorded['spec']} or a text-scope checkpoint finetuned from it, or re-index with --model {model}")
        raise IndexFileError(f"the model {recorded['spec']} has changed since {index.root} was built (its image tower "
                             "differs); re-index the images")
    if clip.embed_dim != index.dim:
        raise IndexFileError(f"--model {model} embeds into {clip.embed_dim} dimensions but {index.root} holds "
                             f"{index.dim}-d vectors")
    return clip


def query_vector(clip, query: Query, *, warn=None) -> tuple[Any, dict]:
    """The query embedding and a description of it (the sentence used, the reference image's threshold)."""
    from .attributes import expand_attribute
    from .embeddings import embed_images

    info: dict = {"kind": query.kind.value, "value": query.value}
    if query.kind == QueryKind.attribute:
        aq = expand_attribute(query.value)
        info["sentence"] = aq.text
        vec = clip.encode_texts([aq.text])[0]
    elif query.kind == QueryKind.text:
        vec = clip.encode_texts([query.value])[0]
    else:
        vec = _embed_one(clip, query.value, "--image", embed_images)
    if query.than is not None:
        ref = _embed_one(clip, query.than, "--than", embed_images)
        # (g - g_ref) . f(T) > 0  <=>  g . f(T) > g_ref . f(T): a score threshold on the same search.
        info["than"] = str(Path(query.than).resolve())
        info["threshold"] = float(ref @ vec)
    return vec, info


def _embed_one(clip, path: str, option: str, embed_images):
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{option} image not found: {p}")
    if p.is_dir():
        raise DataError(f"{option} takes one image file, not a folder: {p}")
    return embed_images(clip, [p]).vectors[0]


def retrieve(index_dir: str | Path, query: Query, *, k: int = 10, model: str | None = None,
             device: str | None = None, warn=None) -> dict:
    """Run one query against an index: what the `retrieve` command prints."""
    if k < 1:
        raise PcclipError(f"--k must be at least 1, got {k}")
    index = load_index(index_dir)
    try:
        clip = model_for_index(index, model, device)
        vec, info = query_vector(clip, query, warn=warn)
        exclude = {info["than"]} if "than" in info else set()
        threshold = info.get("threshold")
        hits = search(index, vec, k, min_score=threshold, exclude=exclude)[0]
        if threshold is not None:
            for h in hits:  # report (g - g_ref) . f(T), the pairwise score of the method
                h.score = h.score - threshold
    finally:
        index.close()
    return {
        "index": str(index_dir),
        "model": _model_record(clip)["spec"],
        "index_model": index.model["spec"],
        "index_type": index.index_type,
        "backend": index.backend,
        "count": index.count,
        "k": k,
        "query": info,
        "results": [h.to_dict() for h in hits],
    }


def attribute_precision(index: LoadedIndex, clip, words: list[str], k: int = 10, relevant=None) -> dict[str, float]:
    """Precision@k of `--attribute WORD` queries, one batched search over a loaded index.

    `relevant(meta, word)` says whether a hit has the attribute; by default a shapes-world image has it when
    every object in it does (comparatives such as "larger" count the base word "large").
    """
    from .attributes import expand_attribute
    from .shapes import image_has

    def default(meta, word):
        base = {"larger": "large", "bigger": "large", "smaller": "small"}.get(word, word)
        return image_has(meta.get("attributes") or {}, base)

    relevant = relevant or default
    queries = clip.encode_texts([expand_attribute(w).text for w in words])
    return {w: sum(bool(relevant(h.meta, w)) for h in hits) / k
            for w, hits in zip(words, search(index, queries, k), strict=True)}
