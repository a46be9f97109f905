"""A loaded CLIP model: the open_clip model, its preprocessing and tokenizer, device and identity, together."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .spec import SpecKind, create_model


@dataclass
class LoadedClip:
    """A CLIP model ready for use: model, preprocessing and tokenizer travel together."""

    spec: str
    kind: SpecKind
    arch: str
    model: Any
    preprocess: Any  # eval transform: PIL image -> tensor
    preprocess_train: Any
    tokenizer: Any
    device: str
    fingerprint: str  # identity of all weights
    image_fingerprint: str  # identity of the image tower and its preprocessing (the embedding cache key)
    info: dict = field(default_factory=dict)  # checkpoint metadata (base, scope, training, metrics)

    @property
    def scope(self) -> str | None:
        return self.info.get("scope")

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") and \
            self.model.text_projection is not None else int(self.model.visual.output_dim)

    def encode_texts(self, texts: list[str], batch_size: int = 256, trim: bool = True):
        """L2-normalised text embeddings as a float32 numpy array (n, d). Each batch runs only as long as its
        longest text where that is exact (`text_trim`); `trim=False` runs the full context."""
        import numpy as np
        import torch

        from .text_trim import encode_text

        out = []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
                emb = encode_text(self.model, tokens, trim=trim, normalize=True)
                out.append(emb.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def encode_image_batch(self, images):
        """L2-normalised embeddings of a list of PIL images (no cache: see embeddings.embed_images)."""
        import torch

        self.model.eval()
        with torch.inference_mode():
            batch = torch.stack([self.preprocess(im) for im in images]).to(self.device)
            return self.model.encode_image(batch, normalize=True).float().cpu().numpy()


def tensor_digest(state_dict) -> str:
    """A content hash of a state dict (names, dtypes, shapes and values)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def image_tower_digest(model, arch: str) -> str:
    return "sha:" + hashlib.sha256(f"{arch}|{tensor_digest(model.visual.state_dict())}".encode()).hexdigest()[:24]


def from_architecture(arch: str, device: str, spec: str | None = None) -> LoadedClip:
    """An architecture with its seeded random init (seed 0), as the SPEC `ARCH` means."""
    model, preprocess_train, preprocess, tokenizer = create_model(arch, None, device)
    return LoadedClip(spec or arch, SpecKind.architecture, arch, model, preprocess, preprocess_train, tokenizer,
                      device, fingerprint=f"{arch}:random0", image_fingerprint=image_tower_digest(model, arch))
