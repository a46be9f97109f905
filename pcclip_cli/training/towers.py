"""Which parameters a run trains: the image tower, the text tower, or both (`--scope`)."""

from __future__ import annotations

from pcclip_cli.core.errors import PcclipError

from .config import Scope, TrainConfig

IMAGE_PREFIXES = ("visual.",)
TEXT_PREFIXES = ("text.", "transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection")
SHARED_PARAMS = ("logit_scale", "logit_bias")


def tower_of(name: str) -> str:
    if name.startswith(IMAGE_PREFIXES):
        return "image"
    if name.startswith(TEXT_PREFIXES):
        return "text"
    if name in SHARED_PARAMS:
        return "shared"
    return "other"


def check_towers_separable(model, arch: str, scope: Scope) -> None:
    """Text or image scope locks one tower; refuse models where open_clip cannot do that (e.g. CoCa, whose
    multimodal decoder belongs to neither tower and which has no lock_image_tower/lock_text_tower)."""
    if scope == Scope.both:
        return
    others = sorted({n.split(".")[0] for n, _ in model.named_parameters() if tower_of(n) == "other"})
    lockable = hasattr(model, "lock_image_tower") and hasattr(model, "lock_text_tower")
    if others or not lockable:
        detail = f"parameters in neither tower: {', '.join(others)}" if others else "no lock_image_tower/lock_text_tower"
        raise PcclipError(f"--scope {scope.value} needs a model whose image and text towers can be locked "
                          f"separately; {arch} ({type(model).__name__}) cannot ({detail}); use --scope both")


def select_trainable(model, cfg: TrainConfig) -> list[str]:
    """Set requires_grad by scope; returns the names of the trained parameters."""
    names = []
    for name, p in model.named_parameters():
        tower = tower_of(name)
        if tower == "shared":
            train = name == "logit_scale" and cfg.learnable_scale
        elif cfg.scope == Scope.text:
            train = tower == "text"
            if cfg.reference_params:
                train = name.startswith(("transformer.", "text.transformer."))
        elif cfg.scope == Scope.image:
            train = tower == "image"
        else:
            train = tower in ("image", "text")
        p.requires_grad_(train)
        if train:
            names.append(name)
    return names
