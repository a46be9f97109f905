"""Linear probe on CPU: scikit-learn's lbfgs against a small full-batch torch loop, same data, one run.

    .venv/bin/python benchmarks/bench_probe.py

Why it exists: `pcclip eval --linear-probe` had to choose between the two; this prints the evidence (its ratio
as a JSON row on stdout, see jsonrows.py; the measurements on stderr).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jsonrows  # noqa: E402  (benchmarks/ is the script's own directory)


def make_data(n_train=1600, n_test=400, dim=128, classes=30, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))

    def draw(n):
        y = rng.integers(0, classes, n)
        x = centres[y] + rng.normal(0, 2.0, (n, dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y

    return draw(n_train), draw(n_test)


def sklearn_probe(train, test, C=10.0):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=1000, random_state=0).fit(*train)
    return float(np.mean(model.predict(test[0]) == test[1]))


def torch_probe(train, test, C=10.0, steps=200):
    """The loop `pcclip eval --linear-probe` runs (pcclip_cli.evaluation.metrics), on the same data."""
    from pcclip_cli.evaluation.metrics import _fit_softmax

    predict = _fit_softmax(train[0], train[1], int(train[1].max()) + 1, C, steps)
    return float(np.mean(predict(test[0]) == test[1]))


def main() -> list[dict]:
    train, test = make_data()
    rows = []
    for name, fn in (("scikit-learn lbfgs", sklearn_probe), ("torch LBFGS loop", torch_probe)):
        fn(train, test)  # warm-up (imports, allocator)
        t0 = time.perf_counter()
        acc = fn(train, test)
        rows.append({"benchmark": "linear probe", "variant": name, "seconds": time.perf_counter() - t0,
                     "top1": acc})
    rows.append({"benchmark": "linear probe", "variant": "ratio torch/sklearn",
                 "ratio": rows[1]["seconds"] / rows[0]["seconds"]})
    return rows


if __name__ == "__main__":
    jsonrows.people_to_stderr()
    results = main()
    for r in results:
        print(r)
    sk, th = results[0], results[1]
    jsonrows.emit("probe", "scikit-learn lbfgs / torch LBFGS loop, linear probe", sk["seconds"] / th["seconds"],
                  detail=f"{sk['seconds']:.2f} s vs {th['seconds']:.2f} s; top-1 {sk['top1']:.3f} vs {th['top1']:.3f}")
