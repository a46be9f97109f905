"""Embedding metrics against direct computations with known answers on fixed embeddings."""

import math

import numpy as np
import pytest

from pcclip_cli.evaluation.metrics import (
    alignment,
    caption_metrics,
    clip_score,
    holdout_split,
    linear_probe,
    topk_accuracy,
    uniformity,
)


def test_topk_accuracy_known_answer():
    logits = np.array([
        [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],  # label 0: top1 hit
        [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],  # label 2: third -> top3 hit, not top1
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],  # label 1: fifth -> top5 hit only
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],  # label 0: sixth -> miss everywhere
    ])
    acc = topk_accuracy(logits, [0, 2, 1, 0])
    assert acc == {"top1": 0.25, "top3": 0.5, "top5": 0.75}


def test_alignment_known_answer():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0]])  # first pair identical (0), second orthogonal (||.||^2 = 2)
    assert math.isclose(alignment(x, y), 1.0)
    # Unnormalised inputs are normalised first.
    assert math.isclose(alignment(3 * x, 5 * y), 1.0)


def test_uniformity_known_answer():
    # Two antipodal points: ||x1-x2||^2 = 4, so uniformity = log(exp(-8)) = -8.
    assert math.isclose(uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])), -8.0, abs_tol=1e-9)
    # Three points at 120 degrees: every ||.||^2 = 3, uniformity = -6.
    pts = np.array([[math.cos(a), math.sin(a)] for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)])
    assert math.isclose(uniformity(pts), -6.0, abs_tol=1e-9)
    # A collapsed set is the least uniform possible: 0.
    assert math.isclose(uniformity(np.ones((5, 3))), 0.0, abs_tol=1e-12)


def test_uniformity_matches_brute_force_on_random_points():
    x = np.random.default_rng(0).normal(size=(40, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    brute = [math.exp(-2 * np.sum((x[i] - x[j]) ** 2)) for i in range(40) for j in range(i + 1, 40)]
    assert math.isclose(uniformity(x), math.log(sum(brute) / len(brute)), rel_tol=1e-9)


def test_clip_score_known_answer():
    img = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    cap = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # cos = 1, 0, -1 (clipped to 0)
    assert math.isclose(clip_score(img, cap), 2.5 * (1 + 0 + 0) / 3)


def test_linear_probe_separates_separable_classes_and_picks_c_on_validation():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16) * 4

    def split(n):
        y = rng.integers(0, 4, n)
        return centres[y] + rng.normal(0, 0.5, (n, 16)), y

    (tx, ty), (vx, vy), (sx, sy) = split(200), split(80), split(80)
    res = linear_probe(tx, ty, vx, vy, sx, sy)
    assert res.top1 > 0.95 and res.classes == 4 and res.test_size == 80
    # Pure-noise labels cannot be learned: the probe must not report high accuracy.
    noise = linear_probe(tx, rng.integers(0, 4, 200), vx, rng.integers(0, 4, 80), sx, rng.integers(0, 4, 80))
    assert noise.top1 < 0.5


def test_linear_probe_matches_scikit_learn_on_the_same_objective():
    # Same penalty (||W||^2 / 2C, bias unpenalised) and the same data: the test predictions must agree.
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 12))

    def split(n):
        y = rng.integers(0, 5, n)
        x = centres[y] + rng.normal(0, 1.5, (n, 12))
        return x / np.linalg.norm(x, axis=1, keepdims=True), y

    (tx, ty), (vx, vy), (sx, sy) = split(150), split(50), split(100)
    res = linear_probe(tx, ty, vx, vy, sx, sy, max_iter=500)
    ref = LogisticRegression(C=res.C, max_iter=5000, tol=1e-8).fit(np.concatenate([tx, vx]), np.concatenate([ty, vy]))
    assert res.C in res.Cs and res.train_size == 150 and res.val_size == 50
    assert abs(res.top1 - float(np.mean(ref.predict(sx) == sy))) <= 0.02


def test_holdout_split_is_stratified_seeded_and_keeps_a_row_per_class():
    labels = ["a"] * 8 + ["b"] * 4 + ["c"]
    fit, val = holdout_split(labels, 0.25, seed=0)
    assert sorted(fit + val) == list(range(13)) and not set(fit) & set(val)
    # a: 8 * 0.25 = 2 held out; b: 4 * 0.25 = 1; c: its only row stays in fit.
    assert [labels[i] for i in val].count("a") == 2 and [labels[i] for i in val].count("b") == 1
    assert 12 in fit
    assert holdout_split(labels, 0.25, seed=0) == (fit, val)
    assert holdout_split(labels, 0.25, seed=1) != (fit, val)


def test_caption_metrics_are_the_single_metrics_on_matched_rows():
    img = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    cap = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # cos = 1, 0, -1
    m = caption_metrics(img, cap)
    # alignment: (0 + 2 + 4) / 3; texts collapsed: uniformity 0; CLIPScore 2.5 * (1 + 0 + 0) / 3.
    assert math.isclose(m["alignment"], 2.0) and math.isclose(m["uniformity_text"], 0.0, abs_tol=1e-12)
    # images: pair distances^2 are 2, 4, 2 -> log((2 e^-4 + e^-8) / 3)
    assert math.isclose(m["uniformity_image"], math.log((2 * math.exp(-4) + math.exp(-8)) / 3))
    assert math.isclose(m["clipscore"], 2.5 / 3) and m["pairs"] == 3 and m["clipscore_weight"] == 2.5
    with pytest.raises(ValueError):
        caption_metrics(img, cap[:2])
