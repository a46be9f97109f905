"""Benchmark pcclip's FAISS indexes against exact search and numpy brute force, on random unit vectors.

    .venv/bin/python benchmarks/bench_faiss.py                      # 1,000,000 x 512, 100 queries
    .venv/bin/python benchmarks/bench_faiss.py --n 100000 --approx hnsw

Builds the same faiss indexes `pcclip index` builds (retrieval.make_faiss_index with retrieval.index_params),
then measures in one run: build time; p50/p95 latency of single queries; the time of one batch of all queries;
recall@k of the approximate type against flat (exact); numpy brute force on the same queries; and the effect of
faiss's BLAS threshold (this faiss build defaults to 128000, pcclip sets 20) and of the OpenMP wait policy
(pcclip sets PASSIVE unless the user set one) on a flat batch.
Random vectors have no cluster structure, the hardest case for IVF and HNSW; real CLIP embeddings cluster, which
`--data clustered` imitates.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time


def percentile(xs, q):
    import numpy as np

    return float(np.percentile(np.asarray(xs), q))


CENTRES = 2000


def make_vectors(rng, n, dim, kind):
    import numpy as np

    if kind == "random":
        x = rng.standard_normal((n, dim), dtype=np.float32)
    else:
        centres = np.random.default_rng(1).standard_normal((CENTRES, dim), dtype=np.float32)
        x = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):  # in chunks, so the noise never needs a second n x dim array
            m = min(100_000, n - start)
            x[start : start + m] = centres[rng.integers(0, CENTRES, m)]
            x[start : start + m] += 0.8 * rng.standard_normal((m, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def single_latencies(index, queries, k):
    """Milliseconds per query, one query per call (what `pcclip retrieve` does)."""
    out = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], k)
        out.append((time.perf_counter() - t) * 1000)
    return out


def recall(approx_ids, exact_ids):
    k = exact_ids.shape[1]
    return sum(len(set(a) & set(e)) for a, e in zip(approx_ids.tolist(), exact_ids.tolist(), strict=True)) / (
        k * len(exact_ids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--approx", choices=["ivf", "hnsw"], default="ivf")
    ap.add_argument("--data", choices=["random", "clustered"], default="random",
                    help="random: i.i.d. Gaussian directions; clustered: noisy copies of 2,000 random centres, "
                         "with queries drawn the same way (closer to real embeddings)")
    ap.add_argument("--nprobe", type=int, nargs="*", default=None,
                    help="IVF nprobe values to sweep besides pcclip's default")
    ap.add_argument("--blas-compare", type=int, default=100_000,
                    help="vectors for the BLAS-threshold and OpenMP wait-policy comparison (0 to skip)")
    ap.add_argument("--blas-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.blas_child:
        blas_child(args)
        return

    import numpy as np

    from pcclip_cli.retrieval import BLAS_THRESHOLD, IndexType, import_faiss, index_params, make_faiss_index

    faiss = import_faiss()  # as pcclip configures it (BLAS threshold, OpenMP wait policy)

    threads = faiss.omp_get_max_threads()
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    data = make_vectors(rng, args.n, args.dim, args.data)
    queries = make_vectors(rng, args.queries, args.dim, args.data)
    print(f"# {args.n:,} {args.data} unit vectors x {args.dim} d, {args.queries} queries, k={args.k}, "
          f"faiss {faiss.__version__}, {threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; data made in {time.perf_counter() - t:.1f} s", flush=True)

    rows = []

    # numpy brute force: one matrix product and a partial sort.
    t = time.perf_counter()
    scores = queries @ data.T
    top = np.argpartition(-scores, args.k, axis=1)[:, : args.k]
    order = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
    t_np_batch = time.perf_counter() - t
    del scores
    np_single = []
    for q in queries[: min(20, len(queries))]:
        t = time.perf_counter()
        s = data @ q
        part = np.argpartition(-s, args.k)[: args.k]
        part[np.argsort(-s[part])]
        np_single.append((time.perf_counter() - t) * 1000)
    rows.append(("numpy brute force", 0.0, percentile(np_single, 50), percentile(np_single, 95), t_np_batch, None))

    # flat (exact)
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    t = time.perf_counter()
    flat, _ = make_faiss_index(IndexType.flat, args.dim, {}, data)
    t_flat_build = time.perf_counter() - t
    lat = single_latencies(flat, queries, args.k)
    t = time.perf_counter()
    _, exact_ids = flat.search(queries, args.k)
    t_flat_batch = time.perf_counter() - t
    np_agree = recall(order, exact_ids)
    rows.append(("flat (exact)", t_flat_build, percentile(lat, 50), percentile(lat, 95), t_flat_batch, 1.0))
    del flat

    # the approximate type, with pcclip's parameters for this size
    kind = IndexType(args.approx)
    params = index_params(kind, args.n)
    print(f"# {kind.value} params: {params}", flush=True)
    t = time.perf_counter()
    approx, _ = make_faiss_index(kind, args.dim, params, data)
    t_build = time.perf_counter() - t
    settings = []
    if kind == IndexType.ivf:
        ivf = faiss.extract_index_ivf(approx)
        sweep = sorted({params["nprobe"], *(args.nprobe if args.nprobe is not None
                                             else [max(1, params["nprobe"] // 4), params["nprobe"] * 4])})
        for nprobe in sweep:
            settings.append((f"ivf nlist={params['nlist']} nprobe={nprobe}"
                             + (" (default)" if nprobe == params["nprobe"] else ""),
                             lambda v=nprobe: setattr(ivf, "nprobe", v)))
    else:
        for ef in sorted({params["ef_search"], params["ef_search"] * 4}):
            settings.append((f"hnsw M={params['m']} efSearch={ef}" + (" (default)" if ef == params["ef_search"] else ""),
                             lambda v=ef, h=approx.hnsw: setattr(h, "efSearch", v)))
    for i, (name, apply) in enumerate(settings):
        apply()
        lat = single_latencies(approx, queries, args.k)
        t = time.perf_counter()
        _, ids = approx.search(queries, args.k)
        t_batch = time.perf_counter() - t
        rows.append((name, t_build if i == 0 else math.nan, percentile(lat, 50), percentile(lat, 95), t_batch,
                     recall(ids, exact_ids)))
    del approx

    print(f"\n| index | build s | p50 ms/query | p95 ms/query | batch of {args.queries} s | recall@{args.k} vs flat |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, build, p50, p95, batch, rec in rows:
        b = "-" if math.isnan(build) else ("n/a" if build == 0.0 else f"{build:.1f}")
        r = "-" if rec is None else f"{rec:.3f}"
        print(f"| {name} | {b} | {p50:.2f} | {p95:.2f} | {batch:.3f} | {r} |")
    print(f"\nnumpy top-{args.k} agrees with flat on {np_agree:.3f} of ids (ties and float order aside). "
          f"numpy single-query p50/p95 from {len(np_single)} queries.")

    if args.blas_compare:
        # The OpenMP wait policy is fixed when the runtime loads, so each policy runs in its own process.
        m = min(args.blas_compare, args.n)
        print(f"\nflat batch of {args.queries} queries over {m:,} x {args.dim} (best of 3 s, same ids in all: "
              "checked in each child)")
        print("| OMP_WAIT_POLICY | threshold 128000 (faiss default) | threshold 20 (pcclip) | speed-up |")
        print("|---|---:|---:|---:|")
        for policy in ("ACTIVE", "PASSIVE"):
            env = {**os.environ, "OMP_WAIT_POLICY": policy}
            out = subprocess.run([sys.executable, __file__, "--blas-child", policy, "--n", str(m), "--dim",
                                  str(args.dim), "--queries", str(args.queries), "--k", str(args.k)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {policy} | {r['default']:.3f} | {r['pcclip']:.3f} | {r['default'] / r['pcclip']:.1f}x |"
                  + ("" if r["same"] else " ids differ!"))


def blas_child(args):
    import faiss
    import numpy as np

    from pcclip_cli.retrieval import BLAS_THRESHOLD

    rng = np.random.default_rng(0)
    data = make_vectors(rng, args.n, args.dim, "random")
    queries = make_vectors(rng, args.queries, args.dim, "random")
    index = faiss.IndexFlatIP(args.dim)
    index.add(data)
    times: dict[int, list[float]] = {128000: [], BLAS_THRESHOLD: []}
    ids = {}
    for _ in range(3):  # alternate the two settings, so a neighbour's load hits both alike
        for thr in times:
            faiss.cvar.distance_compute_blas_threshold = thr
            t = time.perf_counter()
            _, ids[thr] = index.search(queries, args.k)
            times[thr].append(time.perf_counter() - t)
    print(json.dumps({"default": min(times[128000]), "pcclip": min(times[BLAS_THRESHOLD]),
                      "same": bool(np.array_equal(ids[128000], ids[BLAS_THRESHOLD]))}))


if __name__ == "__main__":
    main()
