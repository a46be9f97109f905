"""Linear probe on CPU: scikit-learn's lbfgs against a small full-batch torch loop, same data, one run.

    .venv/bin/python benchmarks/bench_probe.py [--json]

Why it exists: `pcclip eval --linear-probe` had to choose between the two; this prints the evidence.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


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
    import torch

    torch.manual_seed(0)
    # One thread, as pcclip_cli.metrics does for problems this small: thread start-up dominates otherwise.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x, y = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    classes = int(y.max()) + 1
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        # The same objective as scikit-learn: sum of cross-entropies + ||w||^2 / (2C).
        loss = torch.nn.functional.cross_entropy(x @ w + b, y, reduction="sum") + (w * w).sum() / (2 * C)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (torch.from_numpy(test[0]) @ w + b).argmax(1).numpy()
    torch.set_num_threads(threads)
    return float(np.mean(pred == test[1]))


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
