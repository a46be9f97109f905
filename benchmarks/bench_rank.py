"""Benchmark ordering N images by an attribute: one score per image and a sort, against the pairwise rule.

    .venv/bin/python benchmarks/bench_rank.py                       # 10,000 images, 768-d, ViT-L-14 text tower
    .venv/bin/python benchmarks/bench_rank.py --model pcclip-tiny   # a small text tower (its own dim)
    .venv/bin/python benchmarks/bench_rank.py --all-pairs-n 10000   # time every one of the N^2 pairs in full

Image embeddings are random unit vectors of the model's embedding dimension (the images themselves do not change
the cost); the attribute goes through the real path: attributes.expand_attribute, then the model's text encoder.
Measured side by side in one run:
  sort       pcclip's way: s_i = g_i . f(T) for every image (ranking.rank_images / evaluation.attribute_scores),
             then one argsort: N dot products.
  cmp-sort   a comparison sort whose comparator is the paper's pairwise rule (g_i - g_j) . f(T) >= 0:
             O(N log N) pairwise scores.
  all-pairs  every ordered pair's score (g_i - g_j) . f(T), each image ranked by its wins: N^2 pairwise scores.
             By default timed on --all-pairs-n images and scaled by (N / n)^2 (the work is exactly quadratic).
All three orders are checked to agree (up to ties within float32 rounding). The ratios go to stdout as JSON rows
(jsonrows.py), the table to stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jsonrows  # noqa: E402  (benchmarks/ is the script's own directory)


def all_pairs_wins(g, t):
    """Wins per image over all N^2 ordered pairs, computing each pair's difference vector like the rule says."""
    import numpy as np

    wins = np.zeros(len(g), dtype=np.int64)
    for i in range(len(g)):
        wins[i] = int((((g[i] - g) @ t) >= 0).sum()) - 1  # minus the pair (i, i)
    return wins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images to order")
    parser.add_argument("--model", default="ViT-L-14", help="CLIP SPEC whose text tower embeds the attribute")
    parser.add_argument("--attribute", default="larger")
    parser.add_argument("--all-pairs-n", type=int, default=1000, help="images for the timed all-pairs run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print every measurement (on stderr)")
    args = parser.parse_args()
    jsonrows.people_to_stderr()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np

    from pcclip_cli.data.attributes import expand_attribute
    from pcclip_cli.evaluation.formulas import attribute_scores, order_by_scores, rank_score
    from pcclip_cli.models import load_clip

    t0 = time.perf_counter()
    clip = load_clip(args.model, "cpu")
    load_s = time.perf_counter() - t0
    query = expand_attribute(args.attribute)
    t0 = time.perf_counter()
    t = clip.encode_texts([query.text])[0]
    text_s = time.perf_counter() - t0
    dim = t.shape[0]
    rng = np.random.default_rng(0)
    g = rng.standard_normal((args.n, dim)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)

    def best_of(fn):
        times, out = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return min(times), out

    sort_s, order = best_of(lambda: order_by_scores(attribute_scores(g, t)))

    def cmp(i, j):
        return -1 if rank_score(g[i], g[j], t) > 0 else 1 if rank_score(g[i], g[j], t) < 0 else 0

    start = time.perf_counter()
    cmp_order = sorted(range(args.n), key=functools.cmp_to_key(cmp))
    cmp_s = time.perf_counter() - start

    n_pairs = min(args.all_pairs_n, args.n)
    sub = g[:n_pairs]
    start = time.perf_counter()
    wins = all_pairs_wins(sub, t)
    pairs_measured_s = time.perf_counter() - start
    pairs_s = pairs_measured_s * (args.n / n_pairs) ** 2

    # Orders agree when they list the same scores (in float64) in the same sequence: float32 rounding may swap
    # images whose scores differ by less than 1e-6, which is a tie, not a disagreement.
    exact = g.astype(np.float64) @ t.astype(np.float64)
    sub_order = order_by_scores(attribute_scores(sub, t))
    agree = {
        "cmp-sort": bool(np.allclose(exact[np.asarray(cmp_order)], exact[order], atol=1e-6)),
        "all-pairs": bool(np.allclose(exact[:n_pairs][np.argsort(-wins, kind="stable")], exact[:n_pairs][sub_order],
                                      atol=1e-6)),
        "exactly equal orders": bool(np.array_equal(np.asarray(cmp_order), order)),
    }
    result = {
        "n": args.n, "dim": int(dim), "model": args.model, "text": query.text,
        "model_load_s": load_s, "text_embedding_s": text_s,
        "sort_s": sort_s, "cmp_sort_s": cmp_s,
        "all_pairs_s": pairs_s, "all_pairs_measured_n": n_pairs, "all_pairs_measured_s": pairs_measured_s,
        "all_pairs_extrapolated": n_pairs < args.n,
        "speedup_vs_cmp_sort": cmp_s / sort_s, "speedup_vs_all_pairs": pairs_s / sort_s,
        "orders_agree": agree,
    }
    print(f"ordering {args.n} images ({dim}-d) by {query.text!r} with {args.model}'s text tower")
    print(f"  model load {load_s:.2f} s, text embedding {1000 * text_s:.1f} ms (once, shared by every method)")
    print(f"  sort      (N scores + argsort)        {1000 * sort_s:10.2f} ms")
    print(f"  cmp-sort  (pairwise rule, N log N)     {1000 * cmp_s:10.2f} ms   {cmp_s / sort_s:8.0f}x slower")
    how = f"measured on {n_pairs}, scaled by (N/n)^2" if n_pairs < args.n else "measured"
    print(f"  all-pairs (pairwise rule, N^2)         {1000 * pairs_s:10.2f} ms   {pairs_s / sort_s:8.0f}x slower "
          f"({how})")
    print(f"  orders agree: {agree}")
    if args.json:
        print(json.dumps(result, indent=2))
    where = f"N={args.n:,} images, {dim}-d, {args.model} text tower"
    extra = f" (all-pairs timed on {n_pairs:,}, scaled by (N/n)^2)" if n_pairs < args.n else ""
    agreed = "orders agree" if all(agree.values()) else f"ORDERS DIFFER {agree}"
    jsonrows.emit("rank", "pairwise rule over all N^2 pairs / one score per image + sort", pairs_s / sort_s,
                  detail=where + extra + "; " + agreed)
    jsonrows.emit("rank", "comparison sort with the pairwise rule (N log N) / one sort", cmp_s / sort_s, detail=where)

if __name__ == "__main__":
    main()
