"""Benchmark pcclip's FAISS indexes, tuned to a recall target, against exact search on 1M x 512 vectors.

    .venv/bin/python benchmarks/bench_faiss.py                     # 1,000,000 x 512, clustered and random
    .venv/bin/python benchmarks/bench_faiss.py --quick             # 100,000 x 512, for development
    .venv/bin/python benchmarks/bench_faiss.py --data clustered --approx hnsw --n 200000

For each data set it builds, in one run, the indexes `pcclip index` builds: flat (exact) and the approximate
type with pcclip's parameters (retrieval.index_params), then tuned to `--target-recall` exactly as
`pcclip index --target-recall` does (retrieval.tuning.tune_index: a leave-one-out sample of the indexed vectors
against exact search). It prints build time (k-means, adding, tuning), p50/p95 latency of single queries, the
time of one batch, and recall@k against flat measured on held-out queries that were never indexed, beside the
untuned default setting and numpy brute force.

Data: `clustered` is a Gaussian mixture like real CLIP embeddings: CENTRES centres drawn from N(0, I) in 512-d,
each vector a centre plus N(0, SPREAD^2 I) noise, then L2-normalised (noise of norm about 0.8 x the centre's:
clusters overlap, as image embeddings of related content do). `random` is i.i.d. Gaussian directions with no
structure, the hardest case for IVF and HNSW: kept so its honest recall and latency are on record.
A last table compares faiss's BLAS threshold and the OpenMP wait policy on a flat batch (see import_faiss).
Tables go to stderr; the ratios go to stdout as JSON rows (jsonrows.py) for benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jsonrows  # benchmarks/ is the script's own directory


def percentile(xs, q):
    import numpy as np

    return float(np.percentile(np.asarray(xs), q))


CENTRES = 2000
SPREAD = 0.8


def make_vectors(rng, n, dim, kind, centres=CENTRES, spread=SPREAD):
    import numpy as np

    if kind == "random":
        x = rng.standard_normal((n, dim), dtype=np.float32)
    else:
        means = np.random.default_rng(1).standard_normal((centres, dim), dtype=np.float32)
        x = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):  # in chunks, so the noise never needs a second n x dim array
            m = min(100_000, n - start)
            x[start : start + m] = means[rng.integers(0, centres, m)]
            x[start : start + m] += spread * rng.standard_normal((m, dim), dtype=np.float32)
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


def measure_row(name, index, queries, k, exact_ids, build_s):
    lat = single_latencies(index, queries, k)
    t = time.perf_counter()
    _, ids = index.search(queries, k)
    batch = time.perf_counter() - t
    rec = None if exact_ids is None else recall(ids, exact_ids)
    return {"index": name, "build_s": build_s, "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
            "batch_s": batch, "recall": rec}, ids


def bench_data(args, kind, faiss):
    import numpy as np

    from pcclip_cli.retrieval import IndexType, index_params, make_faiss_index
    from pcclip_cli.retrieval.index_types import apply_search_params as apply_search_params
    from pcclip_cli.retrieval.tuning import tune_index

    rng = np.random.default_rng(0)
    t = time.perf_counter()
    data = make_vectors(rng, args.n, args.dim, kind, args.centres, args.spread)
    queries = make_vectors(rng, args.queries, args.dim, kind, args.centres, args.spread)  # never indexed
    print(f"\n## {args.n:,} {kind} unit vectors x {args.dim} d"
          + (f" ({args.centres} Gaussian clusters, centres N(0, I), spread {args.spread} per dimension)"
             if kind == "clustered" else "")
          + f"; {args.queries} held-out queries, k={args.k}; data made in {time.perf_counter() - t:.1f} s",
          flush=True)
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
    rows.append({"index": "numpy brute force", "build_s": 0.0, "p50_ms": percentile(np_single, 50),
                 "p95_ms": percentile(np_single, 95), "batch_s": t_np_batch, "recall": None})

    t = time.perf_counter()
    flat, _ = make_faiss_index(IndexType.flat, args.dim, {}, data)
    t_flat = time.perf_counter() - t
    row, exact_ids = measure_row("flat (exact)", flat, queries, args.k, None, t_flat)
    row["recall"] = 1.0
    rows.append(row)
    np_agree = recall(order, exact_ids)
    del flat

    approx = IndexType(args.approx)
    params = index_params(approx, args.n)
    t = time.perf_counter()
    index, _ = make_faiss_index(approx, args.dim, params, data)
    t_build = time.perf_counter() - t
    param = "nprobe" if approx == IndexType.ivf else "ef_search"
    shape = f"nlist={params['nlist']}" if approx == IndexType.ivf else f"M={params['m']}"
    apply_search_params(index, {"type": approx.value, "params": params})  # what load_index sets: faiss's own is 1
    row, _ = measure_row(f"{approx.value} {shape} {param}={params[param]} (untuned default)", index, queries,
                         args.k, exact_ids, t_build)
    rows.append(row)
    t = time.perf_counter()
    tuning = tune_index(index, approx, data, target_recall=args.target_recall, max_latency_ms=args.max_latency_ms,
                        k=args.k, queries=args.tune_queries)
    t_tune = time.perf_counter() - t
    row, _ = measure_row(f"{approx.value} {shape} {param}={tuning.value} (tuned to {args.target_recall:g})", index,
                         queries, args.k, exact_ids, t_build + t_tune)
    rows.append(row)
    print(f"# {approx.value} build {t_build:.1f} s + tuning {t_tune:.1f} s; tuning measured recall@{args.k} "
          f"{tuning.recall:.3f} on {tuning.queries} indexed vectors (leave-one-out), p50 {tuning.p50_ms:.2f} ms; "
          f"trials {[(tr.value, round(tr.recall, 3)) for tr in tuning.trials]}"
          + (f"; warning: {tuning.warning}" if tuning.warning else ""), flush=True)
    del index, data

    print(f"\n| index | build s | p50 ms/query | p95 ms/query | batch of {args.queries} s | "
          f"recall@{args.k} vs flat (held-out queries) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        b = "n/a" if r["build_s"] == 0.0 else f"{r['build_s']:.1f}"
        rec = "-" if r["recall"] is None else f"{r['recall']:.3f}"
        print(f"| {r['index']} | {b} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['batch_s']:.3f} | {rec} |")
    print(f"\nnumpy top-{args.k} agrees with flat on {np_agree:.3f} of ids (ties and float order aside); numpy "
          f"single-query p50/p95 from {len(np_single)} queries. Build of the tuned row = k-means + add + tuning.")
    numpy_row, flat_row, untuned, tuned = rows
    where = f"{args.n:,} {kind} vectors x {args.dim}-d, {args.queries} queries, k={args.k}"
    jsonrows.emit("faiss", f"numpy brute force / faiss flat, batch of {args.queries} queries ({kind})",
                  numpy_row["batch_s"] / flat_row["batch_s"],
                  detail=f"{where}; {numpy_row['batch_s']:.3f} s vs {flat_row['batch_s']:.3f} s")
    for label, row in (("untuned default", untuned), (f"tuned to recall {args.target_recall:g}", tuned)):
        jsonrows.emit("faiss", f"faiss flat / {approx.value} ({label}), batch of {args.queries} queries ({kind})",
                      flat_row["batch_s"] / row["batch_s"],
                      detail=f"{row['index']}; recall@{args.k} vs flat {row['recall']:.3f}; "
                             f"{flat_row['batch_s']:.3f} s vs {row['batch_s']:.3f} s")
        jsonrows.emit("faiss", f"faiss flat / {approx.value} ({label}), single-query p50 ({kind})",
                      flat_row["p50_ms"] / row["p50_ms"],
                      detail=f"{flat_row['p50_ms']:.2f} ms vs {row['p50_ms']:.2f} ms; numpy single query "
                             f"{numpy_row['p50_ms']:.2f} ms")
    return {"data": kind, "rows": rows, "tuning": tuning.to_manifest()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--approx", choices=["ivf", "hnsw"], default="ivf")
    ap.add_argument("--data", choices=["clustered", "random"], nargs="+", default=["clustered", "random"])
    ap.add_argument("--centres", type=int, default=CENTRES, help="clustered: number of Gaussians")
    ap.add_argument("--spread", type=float, default=SPREAD,
                    help="clustered: noise std per dimension (centres are N(0, I)); larger overlaps the clusters")
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--max-latency-ms", type=float, default=None)
    ap.add_argument("--tune-queries", type=int, default=300,
                    help="indexed vectors the tuning loop measures recall on (pcclip index uses 1000); each trial "
                         "searches all of them, which dominates tuning on random data")
    ap.add_argument("--quick", action="store_true", help="100,000 vectors and a smaller BLAS comparison")
    ap.add_argument("--json", type=str, default=None, help="also write the rows to this JSON file")
    ap.add_argument("--blas-compare", type=int, default=100_000,
                    help="vectors for the BLAS-threshold and OpenMP wait-policy comparison (0 to skip)")
    ap.add_argument("--blas-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.blas_child:
        blas_child(args)  # its one JSON line goes to the parent, which reads the child's stdout
        return
    jsonrows.people_to_stderr()
    if args.quick:
        args.n, args.blas_compare = min(args.n, 100_000), min(args.blas_compare, 20_000)

    from pcclip_cli.retrieval import import_faiss

    faiss = import_faiss()  # as pcclip configures it (BLAS threshold, OpenMP wait policy)
    load = os.getloadavg()
    print(f"# faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, {os.cpu_count()} cores, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {load[0]:.2f} {load[1]:.2f} at start",
          flush=True)
    t0 = time.perf_counter()
    results = [bench_data(args, kind, faiss) for kind in args.data]
    print(f"\n# total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": args.n, "dim": args.dim, "centres": args.centres, "spread": args.spread,
                       "results": results}, fh,
                      indent=2)

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
            jsonrows.emit("faiss", f"BLAS threshold 128000 (faiss default) / 20 (pcclip), flat batch, {policy} "
                          "OpenMP", r["default"] / r["pcclip"],
                          detail=f"{m:,} random vectors; {r['default']:.3f} s vs {r['pcclip']:.3f} s"
                                 + ("" if r["same"] else "; IDS DIFFER"))


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
