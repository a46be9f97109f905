"""Peak RSS and recall@10 of the on-disk IVF build from shards against the in-memory build of the same vectors.

    python benchmarks/bench_ondisk.py --sizes 200000 1000000 --shard-size 100000 --work /tmp/bench-ondisk
    python benchmarks/bench_ondisk.py --sizes 200000 1000000 5000000 --memory-up-to 1000000   # on-disk only above 1M

Synthetic 512-d unit vectors drawn around 2,000 random centres (so IVF has structure to find), written as
embedding shards (retrieval.shards). Each build runs in its own process, which reports its peak resident set
(VmHWM). Recall@10 is measured on 1,000 fresh queries from the same distribution, against brute force, with
both indexes at the nprobe the on-disk build was tuned to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DIM = 512


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class AnonPeak:
    """Peak of RssAnon, sampled every 20 ms: VmHWM also counts the mapped index file's pages, which the
    kernel can drop at will, so the memory a build really needs is the anonymous part."""

    def __init__(self):
        import threading

        self.peak, self.stop = 0.0, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, status_mb("RssAnon"))
            time.sleep(0.02)


def centres(seed: int = 0):
    import numpy as np

    c = np.random.default_rng(seed).standard_normal((2000, DIM)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def draw(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    c = centres()
    x = c[rng.integers(0, len(c), n)] + 0.6 / np.sqrt(DIM) * rng.standard_normal((n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_shards(folder: Path, n: int, shard_size: int) -> None:
    from pcclip_cli.retrieval.shards import open_plan, write_shard

    model = {"spec": "synthetic", "image_fingerprint": "synthetic", "embed_dim": DIM}
    shards = open_plan(folder, count=n, shard_size=shard_size, digest=f"synthetic-{n}", model=model)
    for s in shards:
        if s.done:
            continue
        m = min(shard_size, n - s.index * shard_size)
        rows = [{"path": f"/synthetic/{s.index * shard_size + i}.png", "id": str(s.index * shard_size + i)}
                for i in range(m)]
        write_shard(s, draw(m, seed=1000 + s.index), rows)


def child(mode: str, folder: Path, out: Path) -> None:
    import numpy as np

    from pcclip_cli.retrieval.ondisk import build_ondisk_index
    from pcclip_cli.retrieval.shards import done_shards

    model = {"spec": "synthetic", "image_fingerprint": "synthetic", "embed_dim": DIM}
    t = time.perf_counter()
    anon = AnonPeak()
    if mode == "ondisk":
        s = build_ondisk_index(folder, out, model=model)
        nprobe, nlist = s["params"]["nprobe"], s["params"]["nlist"]
    else:
        from pcclip_cli.retrieval.backend import import_faiss
        from pcclip_cli.retrieval.index_types import IndexType, index_params, make_faiss_index
        from pcclip_cli.retrieval.tuning import tune_index

        vectors = np.concatenate([np.load(s.vectors) for s in done_shards(folder)])
        params = index_params(IndexType.ivf, len(vectors))
        index, _ = make_faiss_index(IndexType.ivf, DIM, params, vectors)
        tuning = tune_index(index, IndexType.ivf, vectors)
        out.mkdir(parents=True, exist_ok=True)
        import_faiss().write_index(index, str(out / "vectors.faiss"))
        nprobe, nlist = tuning.value, params["nlist"]
    anon.stop = True
    print(json.dumps({"mode": mode, "peak_rss_mb": round(status_mb("VmHWM"), 1), "peak_anon_mb": round(anon.peak, 1), "seconds": round(time.perf_counter() - t, 1),
                      "nprobe": nprobe, "nlist": nlist}))


def recall_at(index_file: Path, nprobe: int, queries, exact, ondisk: bool) -> float:
    import faiss

    flags = faiss.IO_FLAG_ONDISK_SAME_DIR if ondisk else 0
    index = faiss.read_index(str(index_file), flags)
    faiss.extract_index_ivf(index).nprobe = nprobe
    _, ids = index.search(queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), exact.tolist(), strict=True)]))


def run_size(n: int, shard_size: int, work: Path, with_memory: bool = True) -> dict:
    import faiss

    folder = work / f"emb-{n}"
    t = time.perf_counter()
    write_shards(folder, n, shard_size)
    res = {"write_shards_s": round(time.perf_counter() - t, 1)}
    for mode in ("ondisk", "memory") if with_memory else ("ondisk",):
        out = work / f"idx-{mode}-{n}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        proc = subprocess.run([sys.executable, __file__, "--child", mode, str(folder), str(out)], capture_output=True,
                              text=True, check=True)
        res[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    from pcclip_cli.retrieval.shards import done_shards

    queries = draw(1000, seed=7)
    best_d = np.full((1000, 10), -np.inf, np.float32)
    best_i = np.full((1000, 10), -1, np.int64)
    start = 0
    for s in done_shards(folder):
        v = np.load(s.vectors)
        d, i = faiss.knn(queries, v, 10, metric=faiss.METRIC_INNER_PRODUCT)
        ad, ai = np.concatenate([best_d, d], 1), np.concatenate([best_i, i + start], 1)
        o = np.argsort(-ad, 1, kind="stable")[:, :10]
        best_d, best_i = np.take_along_axis(ad, o, 1), np.take_along_axis(ai, o, 1)
        start += len(v)
    nprobe = res["ondisk"]["nprobe"]
    res["recall_ondisk"] = recall_at(work / f"idx-ondisk-{n}" / "vectors.faiss", nprobe, queries, best_i, True)
    if with_memory:
        res["recall_memory"] = recall_at(work / f"idx-memory-{n}" / "vectors.faiss", nprobe, queries, best_i, False)
    res["n"], res["nprobe"] = n, nprobe
    return res


if __name__ == "__main__":
    import numpy as np

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--shard-size", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-ondisk"))
    ap.add_argument("--memory-up-to", type=int, default=None,
                    help="build in memory only up to this size (the in-memory build of n vectors needs n x 2 KB)")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "OUT"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        sys.exit(0)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import jsonrows

    jsonrows.people_to_stderr()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        r = run_size(n, args.shard_size, args.work, args.memory_up_to is None or n <= args.memory_up_to)
        rows.append(r)
        d = r["ondisk"]
        line = (f"n={n:>9,} shard={args.shard_size:,}  peak RSS on-disk {d['peak_rss_mb']:8.0f} MB "
                f"(anon {d['peak_anon_mb']:.0f} MB, {d['seconds']:.0f} s)")
        if "memory" in r:
            m = r["memory"]
            line += (f"  in-memory {m['peak_rss_mb']:8.0f} MB (anon {m['peak_anon_mb']:.0f} MB, {m['seconds']:.0f} s)  "
                     f"ratio {d['peak_rss_mb'] / m['peak_rss_mb']:.2f}  recall@10 at nprobe={r['nprobe']}: on-disk "
                     f"{r['recall_ondisk']:.4f} in-memory {r['recall_memory']:.4f} "
                     f"(diff {r['recall_ondisk'] - r['recall_memory']:+.4f})")
        else:
            line += f"  in-memory not built  recall@10 at nprobe={r['nprobe']}: on-disk {r['recall_ondisk']:.4f}"
        print(line, flush=True)
    rows_with_memory = [r for r in rows if "memory" in r]
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"peak RSS growth {a['n']:,} -> {b['n']:,} (x{b['n'] / a['n']:.0f} vectors): on-disk "
              f"x{b['ondisk']['peak_rss_mb'] / a['ondisk']['peak_rss_mb']:.2f}, anonymous "
              f"x{b['ondisk']['peak_anon_mb'] / a['ondisk']['peak_anon_mb']:.2f}")
        jsonrows.emit("ondisk", f"peak anonymous memory of the on-disk build, {b['n']:,} / {a['n']:,} vectors",
                      b["ondisk"]["peak_anon_mb"] / a["ondisk"]["peak_anon_mb"])
    if len(rows_with_memory) > 1:
        a, b = rows_with_memory[0], rows_with_memory[-1]
        print(f"in-memory peak RSS growth {a['n']:,} -> {b['n']:,}: x{b['memory']['peak_rss_mb'] / a['memory']['peak_rss_mb']:.2f}, "
              f"anonymous x{b['memory']['peak_anon_mb'] / a['memory']['peak_anon_mb']:.2f}")
    for r in rows_with_memory:
        jsonrows.emit("ondisk", f"peak RSS, on-disk build / in-memory build, {r['n']:,} vectors",
                      r["ondisk"]["peak_rss_mb"] / r["memory"]["peak_rss_mb"])
        jsonrows.emit("ondisk", f"recall@10 at nprobe={r['nprobe']}, on-disk / in-memory, {r['n']:,} vectors",
                      r["recall_ondisk"] / r["recall_memory"])
    print(json.dumps(rows))
