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

The modules, one concern each: layout (file names, manifest identity), backend (faiss setup, CPU or GPU),
index_types (flat/IVF/HNSW and their parameters), store (opening an
index and its item metadata), build (embedding and writing), search (top-k with filters), query (attribute,
text and image queries; `retrieve`; attribute words come from data.attributes), tuning (search parameters
tuned to a recall target), default_index (the shapes world's test images, built on first use).
"""

from pcclip_cli.data.attributes import (
    AttributeEnsemble,
    attribute_ensemble,
    ensemble_vector,
    ensemble_vectors,
    load_query_templates,
)

from .backend import BLAS_THRESHOLD, choose_backend, gpu_available, import_faiss
from .build import build_index
from .default_index import DEFAULT_INDEX, DefaultIndexSpec, default_index_dir, ensure_default_index
from .index_types import FLAT_MAX, IndexType, auto_index_type, index_params, make_faiss_index
from .layout import (
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    ITEMS_FILE,
    MANIFEST_FILE,
    VECTORS_FILE,
    IndexFileError,
)
from .query import Query, QueryKind, attribute_precision, model_for_index, query_vector, retrieve
from .search import search
from .store import Hit, LoadedIndex, load_index, read_manifest
from .tuning import DEFAULT_TARGET_RECALL, Tuning, tune_index

__all__ = [
    "DEFAULT_INDEX", "DEFAULT_TARGET_RECALL", "AttributeEnsemble", "DefaultIndexSpec", "Tuning",
    "attribute_ensemble", "default_index_dir", "ensemble_vector", "ensemble_vectors", "ensure_default_index",
    "load_query_templates", "tune_index",
    "BLAS_THRESHOLD", "FLAT_MAX", "INDEX_FORMAT", "INDEX_FORMAT_VERSION", "ITEMS_FILE", "MANIFEST_FILE",
    "VECTORS_FILE", "Hit", "IndexFileError", "IndexType", "LoadedIndex", "Query", "QueryKind",
    "attribute_precision", "auto_index_type", "build_index", "choose_backend", "gpu_available", "import_faiss",
    "index_params", "load_index", "make_faiss_index", "model_for_index", "query_vector", "read_manifest",
    "retrieve", "search",
]
