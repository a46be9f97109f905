"""PC-CLIP's losses: contrastive and MSE alignment of image differences with texts, RankCLIP's ranking terms.

Every loss takes a batch X of image-side vectors (image embeddings, or differences g(I1) - g(I2)) and the batch
Y of text embeddings f(T), row i of X paired with row i of Y. The logits step is separate from the reduction,
as in open_clip's ClipLoss, so the benchmark and the tests can look at either.

    total = w_base * base(X, Y) + w(e) * (lambda1 * in_modal(X, Y) + lambda2 * cross_modal(X, Y))

The ranking terms are normalised as `RankNormalise` says (default: as RankCLIP's published code), and w(e) is
that code's epoch ramp when enabled (else 1). The lambdas multiply their terms: the published code used them only
as on/off switches, and with lambda2 = 0 its total loss was never assigned; here they are true weights.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pcclip_cli.core.errors import PcclipError


class LossKind(str, enum.Enum):
    """The base alignment loss (`--loss`)."""

    contrastive = "contrastive"
    mse = "mse"


class RankNormalise(str, enum.Enum):
    """How a ranking term is scaled (`--rank-normalise`); docs/training.md gives the formulas.

    reference: ListMLE on the logits (similarities times the logit scale), both directions summed, divided by
               32 and by the batch size, as RankCLIP's published code.
    sum:       ListMLE on raw cosines, each list's terms summed, the two directions averaged (pcclip before the
               reference form; grows with the batch, and swamps the base loss at batch 256).
    mean:      `sum` divided by the list length (a per-position average, O(1) whatever the batch)."""

    reference = "reference"
    sum = "sum"
    mean = "mean"


class RankRamp(str, enum.Enum):
    """The epoch ramp w(e) = clamp(3(e-1)/(E-1), 0, 2) on the ranking terms (`--rank-ramp`): auto is on with
    the reference normalisation and off with the others."""

    auto = "auto"
    on = "on"
    off = "off"


def rank_ramp_weight(epoch: int, epochs: int) -> float:
    """RankCLIP's ramp for 1-based `epoch` of `epochs`: 0 in the first epoch, rising to 2 and held there. A
    one-epoch run has no ramp (w = 1): the published formula divides by zero there."""
    if epochs <= 1:
        return 1.0
    return min(2.0, max(0.0, 3.0 * (epoch - 1) / (epochs - 1)))


@dataclass(frozen=True)
class LossConfig:
    kind: LossKind = LossKind.contrastive
    temperature: float | None = 1.0  # logits = X Y^T / temperature; None: the caller passes a logit scale
    rank_weights: tuple[float, float] = (0.0, 0.0)  # lambda1 (in-modal), lambda2 (cross-modal)
    base_loss: bool = True  # False: the "remove the base loss" ablation
    mse_raw_difference: bool = False  # True: the reference's MSE on the un-normalised difference
    rank_normalise: RankNormalise = RankNormalise.reference
    rank_ramp: RankRamp = RankRamp.auto

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

    @property
    def ramp_on(self) -> bool:
        if self.rank_ramp == RankRamp.auto:
            return self.rank_normalise == RankNormalise.reference
        return self.rank_ramp == RankRamp.on

    def ramp(self, epoch: int, epochs: int) -> float:
        """The ranking terms' weight in 1-based `epoch` of `epochs`."""
        return rank_ramp_weight(epoch, epochs) if self.ramp_on else 1.0


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


def _rank_pair(a, b, norm: RankNormalise, scale):
    """ListMLE of `a`'s rows under `b`'s order and back, normalised as `norm` says."""
    if norm == RankNormalise.reference:
        a, b = scale * a, scale * b
        return (list_mle(a, b) + list_mle(b, a)) / (32 * a.shape[0])
    both = (list_mle(a, b) + list_mle(b, a)) / 2
    return both / a.shape[1] if norm == RankNormalise.mean else both


def in_modal_rank_loss(x, y, norm: RankNormalise = RankNormalise.sum, scale=1.0):
    """Each row of X X^T should rank the batch like the same row of Y Y^T, and vice versa (self-pairs left out:
    they always rank first)."""
    xn, yn = normalise(x), normalise(y)
    if xn.shape[0] < 3:
        return (xn.sum() + yn.sum()) * 0.0
    return _rank_pair(_drop_diagonal(xn @ xn.T), _drop_diagonal(yn @ yn.T), norm, scale)


def cross_modal_rank_loss(x, y, norm: RankNormalise = RankNormalise.sum, scale=1.0):
    """Row i of X Y^T (image i against every text) should rank like row i of Y X^T (text i against every image)."""
    xn, yn = normalise(x), normalise(y)
    xy = xn @ yn.T
    return _rank_pair(xy, xy.T, norm, scale)


def combined_loss(x, y, cfg: LossConfig, scale=None, ramp: float = 1.0) -> tuple:
    """The training loss and its parts (tensors, unweighted). `scale` overrides 1/temperature (caption CLIP);
    `ramp` multiplies the ranking terms (see LossConfig.ramp)."""
    import torch

    parts: dict = {}
    total = torch.zeros((), device=x.device, dtype=x.dtype)
    if scale is None:
        scale = 1.0 / (cfg.temperature if cfg.temperature is not None else 1.0)
    if cfg.base_loss:
        if cfg.kind == LossKind.mse:
            base = mse_loss(x, y, raw_difference=cfg.mse_raw_difference)
        else:
            base = contrastive_loss(x, y, scale)
        parts["base"] = base
        total = total + base
    lam1, lam2 = cfg.rank_weights
    if lam1:
        term = in_modal_rank_loss(x, y, cfg.rank_normalise, scale)
        parts["in_modal"] = term
        total = total + ramp * lam1 * term
    if lam2:
        term = cross_modal_rank_loss(x, y, cfg.rank_normalise, scale)
        parts["cross_modal"] = term
        total = total + ramp * lam2 * term
    return total, parts


def loss_shares(parts: dict, cfg: LossConfig, ramp: float = 1.0) -> dict:
    """Each term's weighted contribution as a share of their sum (floats): a swamping term shows as a share
    near 1. All zeros when every contribution is (e.g. the ramp's first epoch without the base loss)."""
    weights = {"base": 1.0, "in_modal": ramp * cfg.rank_weights[0], "cross_modal": ramp * cfg.rank_weights[1]}
    contrib = {k: abs(weights[k] * float(v)) for k, v in parts.items()}
    total = sum(contrib.values())
    return {k: round(c / total, 6) if total > 0 else 0.0 for k, c in contrib.items()}
