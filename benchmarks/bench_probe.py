"""Linear probe on CPU: scikit-learn's lbfgs against a small full-batch torch loop, same data, one run.

    .venv/bin/python benchmarks/bench_probe.py [--json]

Why it exists: `pcclip eval --linear-probe` had to choose between the two; this prints the evidence.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1]))


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
    results = main()
    if "--json" in sys.argv:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(r)
