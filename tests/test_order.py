"""Order-aware training: the swap rule (data in prompts/order_swap.toml), the reversed rows and partners, the
hard negative's effect on the loss, and `pcclip train --hard-negatives swap --reversal-pairs` on a tiny world."""

import math

import pytest
import torch

from conftest import assert_clean_error
from pcclip_cli.clip.checkpoints import read_checkpoint_meta
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.training.losses import LossConfig, combined_loss
from pcclip_cli.training.order import (
    HardNegatives,
    add_order_rows,
    load_swap_rule,
    swap_references,
    with_partners,
)
from pcclip_cli.training.pair_data import PairData, oracle_comparatives

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("text, swapped", [
    ("The first picture has a larger shape than the second.", "The second picture has a larger shape than the first."),
    ("Going from the first image to the second, the item shrinks.",
     "Going from the second image to the first, the item shrinks."),
    # left/right inside one image stay; only phrases naming an image move.
    ("The left shape is red in the first picture and blue in the second.",
     "The left shape is red in the second picture and blue in the first."),
    ("The image on the left is brighter than the Right image.", "The image on the right is brighter than the Left image."),
    ("The former is round, the latter square; a second-hand look.", "The latter is round, the former square; a second-hand look."),
    ("Image 1 has more dots than image  2.", "Image 2 has more dots than image 1."),
    # a change over time names the images by when, and stacked images by where
    ("The later snapshot shows a larger item than the earlier one.",
     "The earlier snapshot shows a larger item than the later one."),
    ("Before, the item is red; after, it is blue.", "After, the item is red; before, it is blue."),
    ("The top image has more dots than the picture below.", "The bottom image has more dots than the picture above."),
])
def test_swap_rule_exchanges_image_references(text, swapped):
    assert swap_references(text) == swapped
    assert swap_references(swapped) == text.replace("image  2", "image 2")  # swapping twice is the identity


def test_texts_without_a_reference_have_no_swap():
    assert swap_references("One is red and the other is blue.") is None
    assert swap_references("Both show the same kind of shape.") is None


def test_swap_rule_file_errors(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text('[[pairs]]\na = ["first", "1st"]\nb = ["second"]\n')
    with pytest.raises(PcclipError, match="one partner each"):
        load_swap_rule(bad)
    bad.write_text('[[pairs]]\na = "first"\nb = "second"\n[[pairs]]\na = "first"\nb = "latter"\n')
    with pytest.raises(PcclipError, match="two partners"):
        load_swap_rule(bad)
    custom = tmp_path / "custom.toml"
    custom.write_text('[[pairs]]\na = "before"\nb = "after"\n')
    assert load_swap_rule(custom).swap("Before it was red, after it is blue") == "After it was red, before it is blue"


def _data():
    texts = ["the first is red, the second blue", "one is red, the other blue", "the second is larger than the first"]
    return PairData(images=[], first=[0, 2, 4], second=[1, 3, 5], texts=texts, counts={"kept": 3})


def test_hard_negatives_add_unsampled_partner_rows():
    d = add_order_rows(_data(), HardNegatives.swap)
    assert d.trainable == 3 and len(d) == 5
    assert d.texts[3:] == ["the second is red, the first blue", "the first is larger than the second"]
    assert (d.first[3:], d.second[3:]) == ([1, 5], [0, 4])  # the reversed pairs
    assert d.partner == [3, -1, 4, -1, -1]
    assert d.counts["swapped"] == 2 and d.counts["no_reference"] == 1
    rows = with_partners(torch.tensor([2, 1, 0]), torch.tensor(d.partner))
    assert rows.tolist() == [2, 1, 0, 4, 3]


def test_reversal_pairs_are_sampled_and_partner_back():
    d = add_order_rows(_data(), HardNegatives.swap, reversal_pairs=True)
    assert d.trainable == 5 and d.partner == [3, -1, 4, 0, 2]
    plain = add_order_rows(_data(), HardNegatives.none, reversal_pairs=True)
    assert plain.trainable == 5 and plain.partner is None
    off = add_order_rows(_data())
    assert off.trainable == 3 and off.partner is None and len(off) == 3


def _loss(x, y):
    return float(combined_loss(x, y, LossConfig())[0])


def test_swapped_text_near_the_difference_raises_the_loss():
    """One pair and its reversal, tau = 1. X = [x, -x], Y = [y, y']: row x sees y' as a negative."""
    x = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[1.0, 0.0]])
    far, near = torch.tensor([[-1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    xs = torch.cat([x, -x])
    loss_far, loss_near = _loss(xs, torch.cat([y, far])), _loss(xs, torch.cat([y, near]))
    # Known answers. far: logits [[1,-1],[-1,1]], each row and column CE = log(1 + e^-2).
    assert math.isclose(loss_far, math.log(1 + math.exp(-2)), rel_tol=1e-6)
    # near: logits [[1,0],[-1,0]]: both rows' CE log(1+e^-1); columns: log(1+e^-2) and log 2.
    expected = math.log(1 + math.exp(-1)) / 2 + (math.log(1 + math.exp(-2)) + math.log(2)) / 4
    assert math.isclose(loss_near, expected, rel_tol=1e-6)
    assert loss_near > loss_far
    # Without the hard negative the loss cannot see y' at all: in-batch it is the plain one-pair loss (0 logit gap).
    assert _loss(x, y) == pytest.approx(0.0)


def test_cli_train_with_hard_negatives_and_reversal_pairs(cli, world, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    oracle_comparatives(world, pairs, pairs=80, split=None, seed=2)
    out = tmp_path / "run"
    res = cli("train", "--model", "pcclip-micro", "--comparatives", pairs, "--captions", world / "captions.jsonl",
              "--out", out, "--lr", "1e-3", "--epochs", "1", "--batch-size", "32", "--hard-negatives", "swap",
              "--reversal-pairs", "--json")
    assert res.code == 0, res.stderr
    meta = read_checkpoint_meta(out)
    counts = meta["training"]["data_counts"]
    assert counts["swapped"] + counts["no_reference"] == 80 and counts["swapped"] > 60
    assert counts["trainable"] == 80 + counts["swapped"]
    # Both orders are sampled: ceil((80 + swapped) / 32) steps in the epoch.
    assert res.json()["steps"] == math.ceil(counts["trainable"] / 32)
    assert meta["training"]["hard_negatives"] == "swap" and meta["training"]["reversal_pairs"] is True
    assert meta["metrics"]["loss"] > 0
    res = cli("train", "--model", "pcclip-micro", "--objective", "caption", "--captions", world / "captions.jsonl",
              "--out", tmp_path / "cap", "--hard-negatives", "swap")
    assert_clean_error(res, "need objective pc")


def test_relation_comparatives_state_the_direction():
    import random

    from pcclip_cli.data.shapes import describe_difference
    from pcclip_cli.llm.registry import get_llm

    big_red = {"count": 1, "objects": [{"size": "large", "colour": "red", "shape": "circle"}]}
    small_blue = {"count": 1, "objects": [{"size": "small", "colour": "blue", "shape": "circle"}]}
    two = {"count": 2, "objects": [{"size": "small", "colour": "blue", "shape": "circle"}] * 2}
    rng = random.Random(0)
    texts = [describe_difference(big_red, small_blue, rng, relations=True) for _ in range(40)]
    changes = [t for t in texts if "to the second" in t]
    assert 5 < len(changes) < 35  # about half the sentences are relations
    assert all("changes colour from red to blue" in t and ("smaller" in t or "reduced" in t) for t in changes)
    counts = [describe_difference(big_red, two, rng, relations=True) for _ in range(40)]
    assert any("smaller number" in t or "greater count" in t or "is raised" in t for t in counts)
    assert not any("greater number" in t for t in counts)  # the first image has fewer shapes
    # The default oracle is unchanged by the option's existence: no relation sentences, same random stream.
    plain = [describe_difference(big_red, small_blue, random.Random(1)) for _ in range(5)]
    assert not any("to the second" in t for t in plain)
    assert get_llm("template", relations=True).options.relations is True
    with pytest.raises(PcclipError):
        get_llm("template", colours=True)
