"""A labelled dataset's classes and images as classify and the linear probe both read them: class names
resolved from any spelling, the labelled images of a split, and their embeddings."""

from __future__ import annotations

from pcclip_cli.core.errors import DataError, short_list
from pcclip_cli.data.datasets.base import Dataset, LabeledImage, display_name


class ClassNames:
    """Maps what a file or an LLM calls a class (label, display name, any case) to the dataset's label."""

    def __init__(self, classes: list[str], source: str):
        self.classes, self.source = list(classes), source
        self.index = {c: i for i, c in enumerate(self.classes)}
        self._lookup: dict[str, str] = {}
        for c in self.classes:
            for key in (c, c.lower(), display_name(c).lower()):
                self._lookup.setdefault(key, c)

    def resolve(self, name, where: str) -> str:
        key = " ".join(str(name or "").split())
        found = self._lookup.get(key) or self._lookup.get(key.lower())
        if found is None:
            raise DataError(f"{where}: class {name!r} is not in the dataset {self.source}; its classes: "
                            f"{short_list(self.classes)}")
        return found


def mean_rows(rows):
    from .formulas import normalise

    return normalise(rows.mean(axis=0))


def labelled(items: list[LabeledImage], names: ClassNames) -> list[LabeledImage]:
    return [it for it in items if it.label is not None and it.label in names.index]


def embed_items(clip, dataset: Dataset, items: list[LabeledImage], progress=None, warn=None):
    from pcclip_cli.clip.embeddings import embed_images

    dataset.ensure_files(items)
    emb = embed_images(clip, [it.path for it in items], progress=progress, warn=warn)
    return emb.vectors
