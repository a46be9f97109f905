"""Building or extending an index directory: embed the images, write their metadata, build the faiss index."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli import __version__
from pcclip_cli.core.dirs import build_dir, check_out_dir
from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.io import check_writable
from pcclip_cli.core.locks import holds_output_lock
from pcclip_cli.data.records import OnError, collect_images

from .backend import choose_backend, import_faiss
from .index_types import IndexType, add_to_faiss, all_vectors, auto_index_type, index_params, make_faiss_index
from .layout import (
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    ITEMS_FILE,
    MANIFEST_FILE,
    VECTORS_FILE,
    IndexFileError,
)
from .store import absolute, items_db, load_index, stored_path
from .tuning import DEFAULT_TARGET_RECALL, check_target, tune_index


@dataclass
class IndexResult:
    """What one `pcclip index` run did: `to_dict()` is what `--json` prints."""

    index: str  # the index directory
    added: int  # vectors added by this run
    skipped_present: int  # inputs already in the index (or given twice)
    skipped_bad: list[dict]  # {"path", "reason"} of images that could not be read
    embedded: int  # images embedded now (the others came from the embedding cache)
    count: int  # vectors in the index after this run
    index_type: str
    params: dict  # the faiss index's parameters, as tuned
    model: str  # the SPEC the index was built with
    backend: str  # cpu | gpu
    created: bool  # False: an existing index was extended (--add)
    recall: float | None  # recall@10 measured by the tuning, against exact search
    latency_ms_p50: float | None
    target_met: bool
    seconds: dict  # embed, index, tune

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def model_record(clip) -> dict:
    from pcclip_cli.models import SpecKind

    spec = clip.spec
    if clip.kind == SpecKind.checkpoint:
        spec = str(Path(spec).expanduser().resolve())
    return {"spec": spec, "arch": clip.arch, "fingerprint": clip.fingerprint,
            "image_fingerprint": clip.image_fingerprint, "scope": clip.scope,
            "base": clip.info.get("base") if clip.info else None, "embed_dim": clip.embed_dim}


@holds_output_lock("out")
def build_index(images: list[str | Path], out: str | Path, *, model: str | None = None,
                index_type: IndexType | str = IndexType.auto, add: bool = False, batch_size: int = 64,
                on_error: OnError | str = OnError.stop, device: str | None = None, progress=None,
                warn=None, target_recall: float | None = None, max_latency_ms: float | None = None
                ) -> IndexResult:
    """Embed `images` (files, folders, JSONL manifests) and write (or, with add=True, extend) the index at `out`.

    With add=True the existing index keeps its vectors and model; images already in it are skipped and only
    the new ones are embedded. An approximate index is tuned to `target_recall` (default 0.95; with add=True,
    the target it was built with) and `max_latency_ms` (tuning.tune_index); the measured recall and latency go
    in the manifest. Returns an IndexResult (counts, index type, timings, backend, recall).
    """
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.models import SHAPES_MODEL, load_clip

    out = Path(out)
    kind = IndexType(index_type)
    on_error = OnError(on_error)
    check_target(target_recall, max_latency_ms)
    if batch_size < 1:
        raise PcclipError(f"--batch-size must be at least 1, got {batch_size}")
    check_out_dir(out, holds="a pcclip index", reusable=lambda p: (p / MANIFEST_FILE).exists())
    check_writable(out)  # before minutes of embedding, not after
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
        existing = {str(absolute(old.root, p)) for (p,) in old.db.execute("SELECT path FROM items")}
    # Same image twice in the inputs, or already indexed: embed and add it once.
    seen, fresh = set(existing), []
    for item in items:
        key = str(item.path.resolve())
        if key not in seen:
            seen.add(key)
            fresh.append(item)
    skipped_present = len(items) - len(fresh)
    with build_dir(out) as tmp:
        if old is not None:
            shutil.copy2(old.root / ITEMS_FILE, tmp / ITEMS_FILE)
        db = items_db(tmp / ITEMS_FILE)
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
                    [(start + i, str(p.resolve()), stored_path(p, out), by_path[p].id,
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
            backend = choose_backend(device=device)
            if len(vectors):
                faiss_index = add_to_faiss(faiss_index, vectors, device=device)
            old.close()
        else:
            chosen = auto_index_type(len(vectors), target_recall) if kind == IndexType.auto else kind
            index_spec = {"type": chosen.value, "chosen": "auto" if kind == IndexType.auto else "user",
                          "params": index_params(chosen, len(vectors))}
            faiss_index, backend = make_faiss_index(chosen, clip.embed_dim, index_spec["params"], vectors,
                                                    device=device)
        t_index = time.perf_counter() - t1
        if progress:
            progress(len(fresh), len(fresh), stage="tuning")
        previous = index_spec.get("tuning") or {}
        tuning = tune_index(faiss_index, index_spec["type"], vectors if old is None else all_vectors(faiss_index),
                            target_recall=target_recall or previous.get("target_recall") or DEFAULT_TARGET_RECALL,
                            max_latency_ms=max_latency_ms if max_latency_ms is not None
                            else previous.get("max_latency_ms"))
        if tuning.param:
            index_spec["params"] = {**index_spec["params"], tuning.param: tuning.value}
        index_spec["tuning"] = tuning.to_manifest()
        if tuning.warning and warn:
            warn(tuning.warning + "; the index is built with that setting")
        t_tune = time.perf_counter() - t1 - t_index
        import_faiss().write_index(faiss_index, str(tmp / VECTORS_FILE))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "model": old.model if old is not None else model_record(clip),
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
    return IndexResult(
        index=str(out), added=int(len(vectors)), skipped_present=skipped_present,
        skipped_bad=[{"path": str(p), "reason": r} for p, r in result.skipped], embedded=result.computed,
        count=manifest["count"], index_type=index_spec["type"], params=index_spec["params"],
        model=manifest["model"]["spec"], backend=backend, created=old is None,
        recall=index_spec["tuning"]["measured_recall"], latency_ms_p50=index_spec["tuning"]["latency_ms_p50"],
        target_met=index_spec["tuning"]["met"],
        seconds={"embed": round(t_embed, 3), "index": round(t_index, 3), "tune": round(t_tune, 3)},
    )
