"""Queries against an index: attribute words, texts and images turned into vectors, and `retrieve` itself."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.attributes import attribute_ensemble, ensemble_vector, ensemble_vectors

from .build import model_record
from .layout import IndexFileError
from .search import search
from .store import LoadedIndex, load_index


class QueryKind(str, enum.Enum):
    attribute = "attribute"
    text = "text"
    image = "image"


@dataclass
class Query:
    kind: QueryKind
    value: str  # the attribute word or sentence, the text, or the image path
    than: str | None = None  # --than IMAGE: only images with more of the attribute than this one
    templates: str | None = None  # --query-templates: a shipped set's name or a file (attribute queries)

    def __post_init__(self):
        self.kind = QueryKind(self.kind)
        if not str(self.value or "").strip():
            raise PcclipError(f"empty --{self.kind.value} query")
        if self.than is not None and self.kind != QueryKind.attribute:
            raise PcclipError("--than compares by an attribute; use it together with --attribute")
        if self.templates is not None and self.kind != QueryKind.attribute:
            raise PcclipError("--query-templates phrase an attribute; use it together with --attribute")
        if self.kind == QueryKind.attribute:
            attribute_ensemble(self.value, self.templates)  # a bad template file fails before any model loads


def model_for_index(index: LoadedIndex, model: str | None = None, device: str | None = None):
    """The CLIP model to embed queries with: the manifest's, or `model` if it shares the index's image tower."""
    from pcclip_cli.models import load_clip

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
    """The query embedding and a description of it (the sentences used, the reference image's threshold)."""
    from pcclip_cli.clip.embeddings import embed_images

    info: dict = {"kind": query.kind.value, "value": query.value}
    if query.kind == QueryKind.attribute:
        ens = attribute_ensemble(query.value, query.templates)
        info.update(sentence=ens.text, sentences=list(ens.sentences), expanded=ens.expanded,
                    templates=ens.templates)
        vec = ensemble_vector(clip, ens)
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


def retrieve(index_dir: str | Path | None, query: Query, *, k: int = 10, model: str | None = None,
             device: str | None = None, warn=None, notify=None) -> dict:
    """Run one query against an index: what the `retrieve` command prints. With index_dir=None it searches the
    default index (default_index.py), building it first if needed and telling `notify`."""
    if k < 1:
        raise PcclipError(f"--k must be at least 1, got {k}")
    if index_dir is None:
        from .default_index import ensure_default_index

        index_dir = ensure_default_index(notify=notify, device=device)
    index = load_index(index_dir, device=device)
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
        "model": model_record(clip)["spec"],
        "index_model": index.model["spec"],
        "index_type": index.index_type,
        "backend": index.backend,
        "count": index.count,
        "recall": _tuning_summary(index.manifest["index"]),
        "k": k,
        "query": info,
        "results": [h.to_dict() for h in hits],
    }


def _tuning_summary(spec: dict) -> dict | None:
    """What the index manifest says about its measured recall and latency (None for indexes built before)."""
    t = spec.get("tuning")
    if not t:
        return None
    keys = ("target_recall", "measured_recall", "k", "latency_ms_p50", "latency_ms_p95", "max_latency_ms",
            "param", "value", "met", "measured")
    return {key: t.get(key) for key in keys}


def attribute_precision(index: LoadedIndex, clip, words: list[str], k: int = 10, relevant=None,
                        templates=None) -> dict[str, float]:
    """Precision@k of `--attribute WORD` queries, one batched search over a loaded index.

    `relevant(meta, word)` says whether a hit has the attribute; by default a shapes-world image has it when
    every object in it does (comparatives such as "larger" count the base word "large"). `templates` is the
    query template set (a name, a file or a QueryTemplates; default: the shipped ensemble).
    """
    from pcclip_cli.data.shapes import image_has

    def default(meta, word):
        base = {"larger": "large", "bigger": "large", "smaller": "small"}.get(word, word)
        return image_has(meta.get("attributes") or {}, base)

    relevant = relevant or default
    queries = ensemble_vectors(clip, [attribute_ensemble(w, templates) for w in words])
    return {w: sum(bool(relevant(h.meta, w)) for h in hits) / k
            for w, hits in zip(words, search(index, queries, k), strict=True)}
