"""The evaluation formulas on plain arrays: the rank rule, Eq. 3, the comparison distances, mean ± SE, confusion.

Every function takes numpy arrays (image embeddings g, text embeddings f, rows L2-normalised where the paper
normalises) and returns numbers; the commands in ranking.py, classification.py and geometry.py feed them.
"""

from __future__ import annotations

import math


def rank_score(g1, g2, t) -> float:
    """(g1 - g2) . f(T): "T holds for (I1, I2)" iff this is >= 0 (paper §3.3)."""
    import numpy as np

    return float(np.dot(np.asarray(g1, dtype=np.float64) - np.asarray(g2, dtype=np.float64),
                        np.asarray(t, dtype=np.float64)))


def pair_scores(g_first, g_second, texts):
    """Row-wise rank scores for batches of trials: ((G1 - G2) * T).sum(1)."""
    import numpy as np

    return np.einsum("ij,ij->i", np.asarray(g_first, np.float64) - np.asarray(g_second, np.float64),
                     np.asarray(texts, np.float64))


def attribute_scores(images, t):
    """g(I) . f(T) per image: since (g1 - g2).f = g1.f - g2.f, these order any number of images at once.

    Computed in the embeddings' own float precision (float32 from the cache): one matrix-vector product."""
    import numpy as np

    images = np.asarray(images)
    if images.dtype not in (np.float32, np.float64):
        images = images.astype(np.float64)
    return images @ np.asarray(t, images.dtype)


def order_by_scores(scores):
    """Indices from most to least of the attribute; a tie keeps input order, so two images agree with
    rank_score's `>= 0` rule (a tie answers "first")."""
    import numpy as np

    return np.argsort(-np.asarray(scores, np.float64), kind="stable")


def normalise(x, axis: int = -1):
    import numpy as np

    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


def comparative_prompt(f_a, f_bs, f_b_minus_as, alpha: float):
    """Eq. 3: f'_A = alpha f_A + (1 - alpha) mean_k (f_{B_k} - f_{B_k - A}), renormalised.

    f_bs[k] is the class embedding of the k-th class B compared with A; f_b_minus_as[k] embeds the text saying
    how B_k differs from A.
    """
    import numpy as np

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    f_bs = np.atleast_2d(np.asarray(f_bs, np.float64))
    f_ba = np.atleast_2d(np.asarray(f_b_minus_as, np.float64))
    prior = (f_bs - f_ba).mean(axis=0)
    return normalise(alpha * np.asarray(f_a, np.float64) + (1.0 - alpha) * prior)


def apply_comparatives(class_emb, updates: list[tuple[int, int, object]], alpha: float):
    """Eq. 3 for a whole classifier. `updates` holds (a, b, f_{B-A}) with class indices a (updated) and b;
    every f_B is taken from the original classifier, so the order of updates does not matter."""
    import numpy as np

    base = np.asarray(class_emb, np.float64)
    out = base.copy()
    by_class: dict[int, list[tuple[int, object]]] = {}
    for a, b, text_emb in updates:
        by_class.setdefault(a, []).append((b, text_emb))
    for a, items in by_class.items():
        out[a] = comparative_prompt(base[a], [base[b] for b, _ in items], [t for _, t in items], alpha)
    return out


def cosine_distance(x, y) -> float:
    """1 - cos(x, y); 1.0 when either vector is zero (no direction to compare)."""
    import numpy as np

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 1.0
    return float(1.0 - np.dot(x, y) / (nx * ny))


def comparison_distances(f_a, f_b, f_a_minus_b) -> tuple[float, float]:
    """(comparison, reverse) = (d(f_A - f_B, f_{A-B}), d(f_B - f_A, f_{A-B})); paper Table 6.

    With cosine distance the two always sum to 2: the reverse is reported because the paper does.
    """
    import numpy as np

    diff = np.asarray(f_a, np.float64) - np.asarray(f_b, np.float64)
    return cosine_distance(diff, f_a_minus_b), cosine_distance(-diff, f_a_minus_b)


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n)); the error of a single value is 0."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_se of no values")
    n = len(vals)
    mean = sum(vals) / n
    if n == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in vals) / (n - 1)
    return mean, math.sqrt(var / n)


def predict(images, class_emb):
    """Zero-shot prediction: the class of highest cosine similarity (rows are normalised)."""
    import numpy as np

    return np.argmax(np.asarray(images, np.float64) @ np.asarray(class_emb, np.float64).T, axis=1)


def confusion_matrix(true, pred, n_classes: int):
    """Rows are true classes, columns predicted classes."""
    import numpy as np

    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def accuracy(true, pred, among=None) -> float | None:
    """Fraction correct, optionally only over images whose true class is in `among`; None when none are."""
    import numpy as np

    true, pred = np.asarray(true), np.asarray(pred)
    if among is not None:
        mask = np.isin(true, np.asarray(sorted(among), dtype=true.dtype if true.size else np.int64))
        true, pred = true[mask], pred[mask]
    if true.size == 0:
        return None
    return float((true == pred).mean())


def most_confused(cm, k: int) -> list[tuple[int, int, int]]:
    """The k unordered class pairs (a, b), a < b, with the most confusions cm[a, b] + cm[b, a] (> 0), most first;
    ties go to the lower class indices so the choice is deterministic."""
    n = len(cm)
    pairs = [(int(cm[a][b] + cm[b][a]), a, b) for a in range(n) for b in range(a + 1, n)]
    pairs = [p for p in pairs if p[0] > 0]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(a, b, c) for c, a, b in pairs[:k]]


def concordance(scores, truth) -> float | None:
    """Fraction of image pairs with different true values that the scores order the same way (ties in the
    scores count as half): how well one sort by g.f(T) orders a set of images."""
    good, total = 0.0, 0
    n = len(scores)
    for i in range(n):
        for j in range(i + 1, n):
            if truth[i] == truth[j]:
                continue
            total += 1
            s = (scores[i] - scores[j]) * (truth[i] - truth[j])
            good += 1.0 if s > 0 else 0.5 if s == 0 else 0.0
    return good / total if total else None
