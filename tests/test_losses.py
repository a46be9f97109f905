"""The losses: CLIP contrastive on differences, MSE, ListMLE, and RankCLIP lambdas that really scale."""

import itertools
import math

import pytest
import torch

from pcclip_cli.core.errors import PcclipError
from pcclip_cli.training.losses import (
    LossConfig,
    LossKind,
    RankNormalise,
    RankRamp,
    combined_loss,
    contrastive_loss,
    cross_modal_rank_loss,
    in_modal_rank_loss,
    list_mle,
    loss_shares,
    mse_loss,
    rank_ramp_weight,
)


def _batch(n=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def test_contrastive_prefers_matched_pairs_and_is_symmetric():
    x, y = _batch()
    aligned = contrastive_loss(x, x.clone(), 10.0)
    shuffled = contrastive_loss(x, y, 10.0)
    assert aligned < shuffled
    # Symmetric: swapping the modalities gives the same loss.
    assert torch.allclose(contrastive_loss(x, y, 1.0), contrastive_loss(y, x, 1.0))
    # At temperature 1 (the paper's), cosine logits are in [-1, 1]: the loss cannot fall far below log(n) - 2.
    assert contrastive_loss(x, x.clone(), 1.0) > math.log(6) - 2


def test_contrastive_normalises_differences():
    x, y = _batch()
    assert torch.allclose(contrastive_loss(x, y, 1.0), contrastive_loss(3.7 * x, y, 1.0), atol=1e-6)


def test_mse_normalised_and_raw():
    x, y = _batch()
    assert mse_loss(x, x * 5) < 1e-10  # both sides normalised: scale does not matter
    assert mse_loss(x * 5, x, raw_difference=True) > 1.0  # the reference's scale mismatch
    assert torch.isclose(mse_loss(x, y), ((x / x.norm(dim=1, keepdim=True) - y / y.norm(dim=1, keepdim=True)) ** 2)
                         .sum(1).mean())


def _plackett_luce_nll(scores, order):
    total = 0.0
    for j in range(len(order)):
        rest = scores[list(order[j:])]
        total += float(torch.logsumexp(rest, 0) - scores[order[j]])
    return total


def test_list_mle_matches_plackett_luce_by_hand():
    scores = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    target = torch.tensor([[4.0, 1.0, 3.0, 2.0]])  # order: 0, 2, 3, 1
    expected = _plackett_luce_nll(scores[0], [0, 2, 3, 1])
    assert math.isclose(float(list_mle(scores, target)), expected, rel_tol=1e-5)
    # Scores that already follow the target order give a lower loss than reversed ones.
    good = torch.tensor([[4.0, 1.0, 3.0, 2.0]])
    assert list_mle(good, target) < list_mle(-good, target)


def test_list_mle_gradient_only_through_scores():
    scores = torch.randn(3, 5, requires_grad=True)
    target = torch.randn(3, 5, requires_grad=True)
    list_mle(scores, target).backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
    assert target.grad is None


def test_rank_terms_are_small_when_rankings_agree():
    x, y = _batch(8, 16)
    same_in = in_modal_rank_loss(x, 2 * x)
    other_in = in_modal_rank_loss(x, y)
    assert same_in < other_in
    assert cross_modal_rank_loss(x, x) < cross_modal_rank_loss(x, y)


@pytest.mark.parametrize("which", [0, 1])
def test_lambdas_really_scale_their_terms(which):
    x, y = _batch(8, 16, seed=3)
    base, _ = combined_loss(x, y, LossConfig())
    totals = []
    for lam in (1 / 32, 1 / 16, 1 / 8):
        weights = [0.0, 0.0]
        weights[which] = lam
        total, parts = combined_loss(x, y, LossConfig(rank_weights=tuple(weights)))
        totals.append(float(total - base))
        assert set(parts) == {"base", "in_modal" if which == 0 else "cross_modal"}
    # Doubling lambda doubles the term's contribution (the published code's lambdas were on/off switches).
    assert totals[0] > 0
    assert math.isclose(totals[1], 2 * totals[0], rel_tol=1e-4)
    assert math.isclose(totals[2], 4 * totals[0], rel_tol=1e-4)


def test_no_base_loss_ablation():
    x, y = _batch()
    total, parts = combined_loss(x, y, LossConfig(base_loss=False, rank_weights=(0.5, 0.0)))
    assert "base" not in parts
    assert torch.isclose(total, 0.5 * parts["in_modal"])
    with pytest.raises(PcclipError, match="nothing to optimise"):
        LossConfig(base_loss=False)


def test_loss_config_validation():
    with pytest.raises(PcclipError, match="temperature"):
        LossConfig(temperature=0.0)
    with pytest.raises(PcclipError, match="rank-weights"):
        LossConfig(rank_weights=(-1.0, 0.0))
    total, parts = combined_loss(*_batch(), LossConfig(kind=LossKind.mse))
    assert set(parts) == {"base"} and total > 0


def test_drop_diagonal_keeps_off_diagonal_entries():
    from pcclip_cli.training.losses import _drop_diagonal

    m = torch.arange(16.0).view(4, 4)
    out = _drop_diagonal(m)
    for i, j in itertools.product(range(4), range(3)):
        col = j if j < i else j + 1
        assert out[i, j] == m[i, col]


def _two_list(pred_top: float, pred_other: float) -> float:
    """ListMLE of a two-item list whose target ranks `top` first: -log P(top first) - log P(other | top gone)
    = log(e^top + e^other) - top + 0 = log(1 + e^(other - top))."""
    return math.log1p(math.exp(pred_other - pred_top))


def test_reference_normalisation_known_answer():
    """Batch of 2 (cross-modal) and 3 (in-modal, self-pairs dropped): every list has two items, so each ListMLE
    is log(1 + e^(s (b - a))) written out by hand from the similarities below."""
    s, lam1, lam2 = 10.0, 0.25, 0.5
    # Unit rows: X = e1, e2 ; Y = e1, (0.6, 0.8). Cosines X Y^T = [[1, 0.6], [0, 0.8]].
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # X Y^T rows under the order of Y X^T rows (= columns of X Y^T), and back; per direction the mean over rows.
    xy_under_yx = (_two_list(s * 1.0, s * 0.6) + _two_list(s * 0.8, s * 0.0)) / 2  # row 2 of Y X^T is (0.6, 0.8)
    yx_under_xy = (_two_list(s * 1.0, s * 0.0) + _two_list(s * 0.8, s * 0.6)) / 2
    cross = (xy_under_yx + yx_under_xy) / (32 * 2)
    cfg = LossConfig(rank_weights=(0.0, lam2), temperature=1 / s)
    total, parts = combined_loss(x, y, cfg)
    assert math.isclose(float(parts["cross_modal"]), cross, rel_tol=1e-5)
    base = float(contrastive_loss(x, y, s))
    assert math.isclose(float(total), base + lam2 * cross, rel_tol=1e-5)
    # The ramp multiplies the ranking terms only.
    ramped, _ = combined_loss(x, y, cfg, ramp=2.0)
    assert math.isclose(float(ramped), base + 2 * lam2 * cross, rel_tol=1e-5)

    # In-modal, batch of 3: X = e1, e2, (0.6, 0.8) ; Y = e1, e2, (0.8, 0.6).
    x3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    # Off-diagonal rows: X X^T -> (0, 0.6), (0, 0.8), (0.6, 0.8); Y Y^T -> (0, 0.8), (0, 0.6), (0.8, 0.6).
    xx = [(0.0, 0.6), (0.0, 0.8), (0.6, 0.8)]
    yy = [(0.0, 0.8), (0.0, 0.6), (0.8, 0.6)]

    def rows_under(pred, target):  # the mean over rows of each two-item list under the target's order
        out = 0.0
        for p, t in zip(pred, target, strict=True):
            top = 0 if t[0] > t[1] else 1
            out += _two_list(s * p[top], s * p[1 - top])
        return out / len(pred)

    in_modal = (rows_under(xx, yy) + rows_under(yy, xx)) / (32 * 3)
    _, parts3 = combined_loss(x3, y3, LossConfig(rank_weights=(lam1, 0.0), temperature=1 / s))
    assert math.isclose(float(parts3["in_modal"]), in_modal, rel_tol=1e-5)


def test_normalisations_relate_as_documented():
    x, y = _batch(10, 16, seed=5)
    n = 10
    ref = float(cross_modal_rank_loss(x, y, RankNormalise.reference, 1.0))
    summed = float(cross_modal_rank_loss(x, y, RankNormalise.sum))
    mean = float(cross_modal_rank_loss(x, y, RankNormalise.mean))
    # reference (scale 1) = both directions summed / (32 n); sum = their average; mean = sum / list length.
    assert math.isclose(ref, 2 * summed / (32 * n), rel_tol=1e-5)
    assert math.isclose(mean, summed / n, rel_tol=1e-5)
    # The logit scale enters the reference form (ListMLE on logits), not the others.
    assert not math.isclose(float(cross_modal_rank_loss(x, y, RankNormalise.reference, 10.0)), ref, rel_tol=1e-3)


def test_rank_ramp_follows_the_published_schedule():
    # w(e) = clamp(3 (e - 1) / (E - 1), 0, 2) for 1-based epoch e of E.
    assert [rank_ramp_weight(e, 4) for e in (1, 2, 3, 4)] == [0.0, 1.0, 2.0, 2.0]
    assert [rank_ramp_weight(e, 7) for e in (1, 2, 3, 4, 7)] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert rank_ramp_weight(1, 1) == 1.0  # one epoch: no ramp (the published formula divides by zero)
    assert LossConfig().ramp_on and LossConfig().ramp(1, 4) == 0.0
    assert not LossConfig(rank_normalise=RankNormalise.sum).ramp_on
    assert LossConfig(rank_normalise=RankNormalise.sum, rank_ramp=RankRamp.on).ramp(3, 4) == 2.0
    assert LossConfig(rank_ramp=RankRamp.off).ramp(1, 4) == 1.0


def test_loss_shares_show_each_weighted_term():
    x, y = _batch(8, 16, seed=3)
    cfg = LossConfig(rank_weights=(0.5, 0.25), rank_normalise=RankNormalise.sum)
    _, parts = combined_loss(x, y, cfg)
    shares = loss_shares(parts, cfg)
    weighted = {"base": float(parts["base"]), "in_modal": 0.5 * float(parts["in_modal"]),
                "cross_modal": 0.25 * float(parts["cross_modal"])}
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-5)
    for k, v in weighted.items():
        assert math.isclose(shares[k], v / sum(weighted.values()), rel_tol=1e-4)
    assert loss_shares({"in_modal": 3.0}, LossConfig(base_loss=False, rank_weights=(1.0, 0.0)), 0.0) == {
        "in_modal": 0.0}
