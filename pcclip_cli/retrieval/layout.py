"""The index directory's format: file names, the manifest's identity, and the error for a bad directory."""

from __future__ import annotations

from pcclip_cli.core.errors import PcclipError

INDEX_FORMAT = "pcclip-index"
INDEX_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
ITEMS_FILE = "items.sqlite"


class IndexFileError(PcclipError):
    """An index directory that is missing, torn, corrupt or built with an incompatible model."""

