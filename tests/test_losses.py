"""The losses: CLIP contrastive on differences, MSE, ListMLE, and RankCLIP lambdas that really scale."""

import itertools
import math

import pytest
import torch

from pcclip_cli.errors import PcclipError
from pcclip_cli.training.losses import (
    LossConfig,
    LossKind,
    combined_loss,
    contrastive_loss,
    cross_modal_rank_loss,
    in_modal_rank_loss,
    list_mle,
    mse_loss,
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
