"""Embedding throughput of `index --engine ray` (a local Ray Data job) against the single process, same model
and images: images/s of the embedding pass, and their ratio (goal: ray >= 0.8x on one machine).

    python benchmarks/bench_embed_engines.py --images 2000 --model pcclip-tiny --cpus 2 --work /tmp/bench-embed

Both passes write embedding shards (and then the same on-disk index); each runs in a fresh process on a fresh
shard folder, and the embedding cache is not used, so both embed every image. The time is the whole
embedding pass as the summary reports it, model loading and (for Ray) starting Ray included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(engine: str, world: Path, work: Path, model: str, cpus: int, shard_size: int, batch: int) -> dict:
    out, emb = work / f"idx-{engine}", work / f"emb-{engine}"
    for p in (out, emb):
        shutil.rmtree(p, ignore_errors=True)
    env = {**os.environ, "PCCLIP_RAY_CPUS": str(cpus), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO),
           "OMP_NUM_THREADS": str(cpus)}
    cmd = [sys.executable, "-m", "pcclip_cli.cli.main", "index", str(world / "captions.jsonl"), "--out", str(out),
           "--embeddings", str(emb), "--on-disk", "--engine", engine, "--model", model, "--shard-size",
           str(shard_size), "--batch-size", str(batch), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"{engine} failed: {proc.stderr[-2000:]}")
    s = json.loads(proc.stdout)
    return {"engine": engine, "images": s["count"], "seconds": s["seconds"]["embed"],
            "images_per_s": s["count"] / s["seconds"]["embed"]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--model", default="pcclip-tiny")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-embed"))
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from pcclip_cli.data.shapes import WorldConfig, build_world

    world = args.work / f"world-{args.images}"
    build_world(world, WorldConfig(images=args.images, seed=0))
    rows = [run(e, world, args.work, args.model, args.cpus, args.shard_size, args.batch_size) for e in ("local", "ray")]
    for r in rows:
        print(f"{r['engine']:>5}: {r['images']} images in {r['seconds']:.1f} s = {r['images_per_s']:.1f} images/s")
    print(f"ray / single process: {rows[1]['images_per_s'] / rows[0]['images_per_s']:.2f}x "
          f"({args.model}, {args.cpus} CPUs, shards of {args.shard_size})")
    print(json.dumps(rows))
