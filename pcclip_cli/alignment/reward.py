"""The EX2 reward: the mean cosine similarity between a description's text embedding and the embeddings of its
concept's images (one split's), computed as the dot product with the mean of the unit image embeddings."""

from __future__ import annotations

from dataclasses import dataclass

from pcclip_cli.core.errors import DataError


@dataclass
class ConceptImages:
    """Each concept's images of one split, as the mean of their unit embeddings under one CLIP model.

    mean_i cos(t, v_i) = t_hat . mean_i v_hat_i, so one centroid per concept gives the exact mean cosine
    (the centroid is deliberately *not* renormalised)."""

    concepts: list[str]
    centroids: object  # float32 (n_concepts, d)
    counts: list[int]
    split: str | None

    def index(self, concept: str) -> int:
        try:
            return self.concepts.index(concept)
        except ValueError:
            raise DataError(f"concept {concept!r} has no images in split {self.split!r}") from None


def concept_images(clip, dataset, split: str | None, *, progress=None, warn=None) -> ConceptImages:
    """Embed the labelled images of `split` and average them per class."""
    import numpy as np

    from pcclip_cli.evaluation.class_images import ClassNames, embed_items, labelled

    names = ClassNames(dataset.classes, dataset.source)
    items = labelled(dataset.in_split(split), names)
    if not items:
        raise DataError(f"dataset {dataset.source} has no labelled images in split {split!r}")
    vectors = embed_items(clip, dataset, items, progress, warn)
    concepts = [c for c in names.classes if any(it.label == c for it in items)]
    labels = np.array([concepts.index(it.label) for it in items])
    centroids = np.stack([vectors[labels == i].mean(axis=0) for i in range(len(concepts))]).astype(np.float32)
    counts = [int((labels == i).sum()) for i in range(len(concepts))]
    return ConceptImages(concepts, centroids, counts, split)


def description_rewards(clip, texts: list[str], concepts: list[str], images: ConceptImages):
    """The reward of each (description, concept): mean cosine with that concept's images. Empty texts score 0."""
    import numpy as np

    out = np.zeros(len(texts), dtype=np.float32)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if keep:
        emb = clip.encode_texts([texts[i] for i in keep])
        rows = np.array([images.index(concepts[i]) for i in keep])
        out[keep] = np.einsum("nd,nd->n", emb, images.centroids[rows])
    return out
