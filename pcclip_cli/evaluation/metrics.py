"""Embedding-space metrics the ablation plans ask for: top-k accuracy, linear probe, alignment/uniformity, CLIPScore.

Definitions (all embeddings L2-normalised first):
  top-k accuracy   fraction of rows whose true class is among the k highest logits.
  alignment        mean over matched pairs of ||x_i - y_i||^2           (Wang & Isola 2020; lower = better aligned)
  uniformity       log mean over pairs i<j of exp(-2 ||x_i - x_j||^2)  (lower = more uniform on the sphere)
  CLIPScore        mean of 2.5 * max(cos(image_i, caption_i), 0)        (Hessel et al. 2021)
  linear probe     multinomial logistic regression on frozen image embeddings (a full-batch torch L-BFGS
                   loop; see _fit_softmax for why not scikit-learn); the inverse regularisation C is chosen
                   on a validation split, then the probe is refit on train + validation with that C and
                   scored once on test.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

CLIPSCORE_WEIGHT = 2.5
PROBE_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
# rows * dims * classes below which the probe runs on one torch thread; CIFAR100-sized probes (50k x 512 x 100)
# stay above it, where many idle cores pay off.
SMALL_PROBE_WORK = 1_000_000_000


def _normalise(x):
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def topk_accuracy(logits, labels, ks=(1, 3, 5)) -> dict[str, float]:
    """{"top1": ..., "top3": ..., "top5": ...}; k larger than the number of classes counts every row correct."""
    import numpy as np

    logits = np.asarray(logits)
    labels = np.asarray(labels)
    order = np.argsort(-logits, axis=1, kind="stable")
    out = {}
    for k in ks:
        hits = (order[:, :k] == labels[:, None]).any(axis=1)
        out[f"top{k}"] = float(hits.mean()) if len(labels) else float("nan")
    return out


def alignment(x, y) -> float:
    """Mean squared distance between matched normalised pairs (x_i, y_i)."""
    import numpy as np

    x, y = _normalise(x), _normalise(y)
    return float(np.mean(np.sum((x - y) ** 2, axis=1)))


def uniformity(x, t: float = 2.0, max_points: int = 4096, seed: int = 0) -> float:
    """log of the mean of exp(-t ||x_i - x_j||^2) over pairs i<j (a fixed random subset above max_points)."""
    import numpy as np

    x = _normalise(x)
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    if len(x) < 2:
        return float("nan")
    # For unit vectors ||a-b||^2 = 2 - 2 a.b, which avoids materialising the pair differences.
    sq = np.clip(2.0 - 2.0 * (x @ x.T), 0.0, None)
    iu = np.triu_indices(len(x), k=1)
    vals = -t * sq[iu]
    peak = vals.max()
    return float(peak + np.log(np.mean(np.exp(vals - peak))))


def clip_score(images, captions, weight: float = CLIPSCORE_WEIGHT) -> float:
    """Mean of weight * max(cos(image_i, caption_i), 0) over matched image-caption pairs."""
    import numpy as np

    a, b = _normalise(images), _normalise(captions)
    return float(np.mean(weight * np.clip(np.sum(a * b, axis=1), 0.0, None)))


@dataclass
class ProbeResult:
    top1: float
    C: float
    val_top1: float
    train_size: int
    val_size: int
    test_size: int
    classes: int
    Cs: tuple = PROBE_CS

    def as_dict(self) -> dict:
        return {**self.__dict__, "Cs": list(self.Cs)}


def _fit_softmax(x, y, classes: int, C: float, max_iter: int):
    """Multinomial logistic regression, full batch L-BFGS: sum of cross-entropies + ||W||^2 / (2C).

    The same objective scikit-learn's lbfgs solver minimises (tests/test_metrics.py compares them). On
    benchmarks/bench_probe.py's data this loop took 0.07 s on one thread against scikit-learn's 1.2 s, with
    identical accuracy, so the probe uses it (see _few_threads for the thread count).
    """
    with _few_threads(len(x) * x.shape[1] * classes):
        return _fit_softmax_in(x, y, classes, C, max_iter)


@contextmanager
def _few_threads(work: int):
    """One torch thread below SMALL_PROBE_WORK: L-BFGS takes hundreds of small steps, and on a busy CPU each
    step's thread hand-off costs far more than the arithmetic. Measured on the shared 2-core machine: a
    shapes-sized probe 0.02 s on 1 thread vs 5.9 s on 2; 8000 x 512 x 100 (0.4e9) 2.2 s vs 39.6 s."""
    import torch

    before = torch.get_num_threads()
    small = work < SMALL_PROBE_WORK
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(before)


def _fit_softmax_in(x, y, classes: int, C: float, max_iter: int):
    import torch

    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    w = torch.zeros(xt.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt, reduction="sum") + (w * w).sum() / (2 * C)
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda z: (torch.as_tensor(z, dtype=torch.float32) @ w + b).argmax(1).numpy()


def linear_probe(train_x, train_y, val_x, val_y, test_x, test_y, *, Cs=PROBE_CS, seed: int = 0,
                 max_iter: int = 200) -> ProbeResult:
    """Logistic-regression probe: pick C on validation (fit on train), refit on train + validation with that C,
    report test top-1.

    Labels may be any hashable values; test classes seen in neither train nor validation count as errors.
    """
    import numpy as np
    import torch

    torch.manual_seed(seed)  # L-BFGS from zeros is deterministic; the seed guards future stochastic variants
    names = sorted(set(train_y) | set(val_y), key=str)
    index = {c: i for i, c in enumerate(names)}

    def encode(labels):
        return np.array([index.get(c, -1) for c in labels])

    ty, vy, sy = encode(train_y), encode(val_y), encode(test_y)
    train_x, val_x, test_x = _normalise(train_x), _normalise(val_x), _normalise(test_x)
    scored = []
    for C in Cs:
        predict = _fit_softmax(train_x, ty, len(names), C, max_iter)
        scored.append((float(np.mean(predict(val_x) == vy)), -C, C))
    best_val, _, best_c = max(scored)  # ties go to the stronger regularisation
    # The validation images only chose C; the final probe learns from them too.
    predict = _fit_softmax(np.concatenate([train_x, val_x]), np.concatenate([ty, vy]), len(names), best_c, max_iter)
    top1 = float(np.mean(predict(test_x) == sy))
    return ProbeResult(top1, best_c, best_val, len(train_x), len(val_x), len(test_x), len(names), tuple(Cs))


def holdout_split(labels, fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Seeded stratified split of row indices into (fit, validation): each class gives round(fraction * n) of
    its n rows (rounded half up) to validation, but always keeps at least one for fitting."""
    import random

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    by_class: dict = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    rng = random.Random(f"pcclip-probe|{seed}")
    fit, val = [], []
    for y in sorted(by_class, key=str):
        rows = by_class[y][:]
        rng.shuffle(rows)
        k = min(len(rows) - 1, int(fraction * len(rows) + 0.5))
        val += rows[:k]
        fit += rows[k:]
    return sorted(fit), sorted(val)


def caption_metrics(images, captions, weight: float = CLIPSCORE_WEIGHT) -> dict:
    """Alignment, uniformity (images, texts) and CLIPScore over matched image-caption pairs (row i with row i)."""
    import numpy as np

    a, b = np.asarray(images), np.asarray(captions)
    if a.shape != b.shape:
        raise ValueError(f"images {a.shape} and captions {b.shape} must be matched row for row")
    return {"pairs": len(a), "alignment": alignment(a, b), "uniformity_image": uniformity(a),
            "uniformity_text": uniformity(b), "clipscore": clip_score(a, b, weight), "clipscore_weight": weight}
