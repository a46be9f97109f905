"""PC-CLIP's losses: contrastive and MSE alignment of image differences with texts, RankCLIP's ranking terms.

Every loss takes a batch X of image-side vectors (image embeddings, or differences g(I1) - g(I2)) and the batch
Y of text embeddings f(T), row i of X paired with row i of Y. The logits step is separate from the reduction,
as in open_clip's ClipLoss, so the benchmark and the tests can look at either.

    total = w_base * base(X, Y) + lambda1 * in_modal(X, Y) + lambda2 * cross_modal(X, Y)

The lambdas multiply their terms (RankCLIP's published code used them only as on/off switches).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import PcclipError


class LossKind(str, enum.Enum):
    """The base alignment loss (`--loss`)."""

    contrastive = "contrastive"
    mse = "mse"


@dataclass(frozen=True)
class LossConfig:
    kind: LossKind = LossKind.contrastive
    temperature: float | None = 1.0  # logits = X Y^T / temperature; None: the caller passes a logit scale
    rank_weights: tuple[float, float] = (0.0, 0.0)  # lambda1 (in-modal), lambda2 (cross-modal)
    base_loss: bool = True  # False: the "remove the base loss" ablation
    mse_raw_difference: bool = False  # True: the reference's MSE on the un-normalised difference

    def __post_init__(self):
        if self.temperature is not None and not self.temperature > 0:
            raise PcclipError(f"--temperature must be positive, got {self.temperature}")
        if len(self.rank_weights) != 2 or any(w < 0 for w in self.rank_weights):
            raise PcclipError(f"--rank-weights takes two non-negative numbers L1,L2, got {self.rank_weights}")
        if not self.base_loss and not any(self.rank_weights):
            raise PcclipError("--no-base-loss leaves nothing to optimise; give --rank-weights L1,L2 as well")

    @property
    def uses_ranking(self) -> bool:
        return any(self.rank_weights)


def normalise(x):
    import torch.nn.functional as F

    return F.normalize(x, dim=-1)


def contrastive_logits(x, y, scale):
    """Cosine-similarity logits of normalised rows, times `scale` (1/temperature or exp(logit_scale))."""
    return scale * normalise(x) @ normalise(y).T


def symmetric_cross_entropy(logits):
    """CLIP's loss: row i of the logits should pick column i, and column i row i."""
    import torch
    import torch.nn.functional as F

    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def contrastive_loss(x, y, scale):
    return symmetric_cross_entropy(contrastive_logits(x, y, scale))


def mse_loss(x, y, *, raw_difference: bool = False):
    """Mean over the batch of the squared distance between the (normalised) image side and the text side."""
    xs = x if raw_difference else normalise(x)
    return ((xs - normalise(y)) ** 2).sum(dim=-1).mean()


def list_mle(scores, target):
    """ListMLE, row-wise: the negative Plackett-Luce log-likelihood of `target`'s descending order under
    `scores`, averaged over rows. Gradients flow through `scores` only; the order of `target` is a constant."""
    import torch

    order = torch.argsort(target.detach(), dim=-1, descending=True)
    ranked = torch.gather(scores, -1, order)
    # log sum_{k >= j} exp(s_k): a reversed cumulative logsumexp, stable through logcumsumexp.
    tails = torch.logcumsumexp(ranked.flip(-1), dim=-1).flip(-1)
    return (tails - ranked).sum(dim=-1).mean()


def _drop_diagonal(m):
    n = m.shape[0]
    return m.flatten()[1:].view(n - 1, n + 1)[:, :-1].reshape(n, n - 1)


def in_modal_rank_loss(x, y):
    """Each row of X X^T should rank the batch like the same row of Y Y^T, and vice versa (self-pairs left out:
    they always rank first)."""
    xn, yn = normalise(x), normalise(y)
    if xn.shape[0] < 3:
        return (xn.sum() + yn.sum()) * 0.0
    sx, sy = _drop_diagonal(xn @ xn.T), _drop_diagonal(yn @ yn.T)
    return (list_mle(sx, sy) + list_mle(sy, sx)) / 2


def cross_modal_rank_loss(x, y):
    """Row i of X Y^T (image i against every text) should rank like row i of Y X^T (text i against every image)."""
    xn, yn = normalise(x), normalise(y)
    xy = xn @ yn.T
    yx = xy.T
    return (list_mle(xy, yx) + list_mle(yx, xy)) / 2


def combined_loss(x, y, cfg: LossConfig, scale=None) -> tuple:
    """The training loss and its parts (floats, for logging). `scale` overrides 1/temperature (caption CLIP)."""
    import torch

    parts: dict = {}
    total = torch.zeros((), device=x.device, dtype=x.dtype)
    if cfg.base_loss:
        if cfg.kind == LossKind.mse:
            base = mse_loss(x, y, raw_difference=cfg.mse_raw_difference)
        else:
            if scale is None:
                scale = 1.0 / (cfg.temperature if cfg.temperature is not None else 1.0)
            base = contrastive_loss(x, y, scale)
        parts["base"] = base
        total = total + base
    lam1, lam2 = cfg.rank_weights
    if lam1:
        term = in_modal_rank_loss(x, y)
        parts["in_modal"] = term
        total = total + lam1 * term
    if lam2:
        term = cross_modal_rank_loss(x, y)
        parts["cross_modal"] = term
        total = total + lam2 * term
    return total, parts
