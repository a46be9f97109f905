"""Every evaluation formula against a direct computation on fixed embeddings with known answers."""

import math
import statistics

import numpy as np
import pytest

from pcclip_cli.evaluation import formulas as ev

SQ2 = math.sqrt(2.0)


def test_rank_rule_signs_and_tie():
    g1, g2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert ev.rank_score(g1, g2, [1.0, 0.0]) == pytest.approx(1.0)  # "first"
    assert ev.rank_score(g1, g2, [0.0, 1.0]) == pytest.approx(-1.0)  # "second"
    assert ev.rank_score(g1, g1, [0.3, 0.7]) == 0.0  # a tie answers "first" (s >= 0)
    # (g1 - g2).f = g1.f - g2.f
    t = np.array([0.6, -0.8])
    assert ev.rank_score(g1, g2, t) == pytest.approx(g1 @ t - g2 @ t)


def test_pair_scores_match_one_at_a_time():
    rng = np.random.default_rng(3)
    a, b, t = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    direct = [ev.rank_score(a[i], b[i], t[i]) for i in range(5)]
    assert np.allclose(ev.pair_scores(a, b, t), direct)


def test_one_sort_agrees_with_every_pairwise_decision():
    scores = ev.attribute_scores(np.array([[0.2, 0.0], [0.5, 0.0], [0.5, 0.0], [-1.0, 0.0]]), [1.0, 0.0])
    order = list(ev.order_by_scores(scores))
    assert order == [1, 2, 0, 3]  # stable on the tie
    rng = np.random.default_rng(0)
    g = rng.normal(size=(30, 8))
    t = rng.normal(size=8)
    order = ev.order_by_scores(ev.attribute_scores(g, t))
    for pos, i in enumerate(order):
        for j in order[pos + 1:]:
            assert ev.rank_score(g[i], g[j], t) >= -1e-12


def test_eq3_single_comparative_known_answer():
    f_a, f_b, f_ba = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 1.0, 1.0])
    # 0.6 [1,0,0] + 0.4 ([0,1,0] - [0,1,1]) = [0.6, 0, -0.4], renormalised
    expect = np.array([0.6, 0.0, -0.4]) / math.sqrt(0.52)
    assert np.allclose(ev.comparative_prompt(f_a, [f_b], [f_ba], 0.6), expect)
    assert np.allclose(ev.comparative_prompt(f_a, [f_b], [f_ba], 1.0), f_a)
    assert np.allclose(ev.comparative_prompt(f_a, [f_b], [f_ba], 0.0), [0, 0, -1.0])


def test_eq3_averages_several_comparatives():
    f_a = np.array([1.0, 0, 0])
    bs = [np.array([0, 1.0, 0]), np.array([0, 0, 1.0])]
    bas = [np.array([0, 1.0, 1.0]), np.array([1.0, 0, 1.0])]
    # mean of [0,0,-1] and [-1,0,0] is [-.5,0,-.5]; 0.5 f_A + 0.5 that = [.25, 0, -.25]
    assert np.allclose(ev.comparative_prompt(f_a, bs, bas, 0.5), [1 / SQ2, 0, -1 / SQ2])


def test_eq3_alpha_outside_range_is_refused():
    with pytest.raises(ValueError):
        ev.comparative_prompt([1.0, 0], [[0, 1.0]], [[0, 1.0]], 1.5)


def test_apply_comparatives_uses_the_original_other_class():
    classes = np.eye(3)
    t10 = np.array([0.0, 1.0, 1.0])  # how class 1 differs from class 0: updates class 0
    t01 = np.array([1.0, 0.0, 1.0])  # how class 0 differs from class 1: updates class 1
    out = ev.apply_comparatives(classes, [(0, 1, t10), (1, 0, t01)], 0.5)
    assert np.allclose(out[0], ev.comparative_prompt(classes[0], [classes[1]], [t10], 0.5))
    assert np.allclose(out[1], ev.comparative_prompt(classes[1], [classes[0]], [t01], 0.5))
    assert np.allclose(out[2], classes[2])  # untouched
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)


def test_distances_known_answers():
    f_a, f_b = np.array([1.0, 0]), np.array([0, 1.0])
    assert ev.comparison_distances(f_a, f_b, [1 / SQ2, -1 / SQ2]) == pytest.approx((0.0, 2.0))
    assert ev.comparison_distances(f_a, f_b, [1.0, 1.0]) == pytest.approx((1.0, 1.0))
    assert ev.cosine_distance([2.0, 0], [0, 3.0]) == pytest.approx(1.0)
    assert ev.cosine_distance([0.0, 0], [0, 3.0]) == 1.0  # no direction


def test_distances_match_direct_formula_and_sum_to_two():
    rng = np.random.default_rng(1)
    for _ in range(20):
        f_a, f_b, t = rng.normal(size=(3, 6))
        d = f_a - f_b
        direct = 1 - d @ t / (np.linalg.norm(d) * np.linalg.norm(t))
        cmp_, rev = ev.comparison_distances(f_a, f_b, t)
        assert cmp_ == pytest.approx(direct)
        assert cmp_ + rev == pytest.approx(2.0)


def test_mean_and_standard_error():
    mean, se = ev.mean_se([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6)
    assert se == pytest.approx(0.1 / math.sqrt(3))
    vals = [0.51, 0.48, 0.66, 0.59, 0.55]
    assert ev.mean_se(vals)[1] == pytest.approx(statistics.stdev(vals) / math.sqrt(5))
    assert ev.mean_se([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        ev.mean_se([])


def test_zero_shot_confusion_and_most_confused():
    images = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1.0, 0], [0.6, 0.5, 0], [0, 0, 1.0], [0, 0.7, 0.6]])
    true = np.array([0, 0, 1, 1, 2, 2])
    pred = ev.predict(images, np.eye(3))
    assert list(pred) == [0, 0, 1, 0, 2, 1]
    cm = ev.confusion_matrix(true, pred, 3)
    assert cm.tolist() == [[2, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert ev.accuracy(true, pred) == pytest.approx(4 / 6)
    assert ev.accuracy(true, pred, among={1, 2}) == pytest.approx(2 / 4)
    assert ev.accuracy(true, pred, among={5}) is None
    assert ev.most_confused(cm, 5) == [(0, 1, 1), (1, 2, 1)]
    assert ev.most_confused(cm, 1) == [(0, 1, 1)]


def test_concordance():
    assert ev.concordance([3.0, 2.0, 1.0], [2, 1, 0]) == 1.0
    assert ev.concordance([1.0, 2.0, 3.0], [2, 1, 0]) == 0.0
    assert ev.concordance([1.0, 1.0], [1, 0]) == 0.5
    assert ev.concordance([1.0, 2.0], [0, 0]) is None
