"""`index --on-disk` / `--engine ray`: embed the images into shards on disk, then build the on-disk IVF index."""

from __future__ import annotations

import enum
import time
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.records import OnError, collect_images

from .shards import DEFAULT_SHARD_SIZE, inputs_digest, open_plan, shard_rows_for, write_shard


class Engine(str, enum.Enum):
    """`--engine`: embed in this process, or as a Ray Data job (local, or a cluster at --ray-address)."""

    local = "local"
    ray = "ray"


def embed_local(clip, items, shards, shard_size: int, *, batch_size: int, on_error: OnError, progress=None,
                warn=None) -> dict:
    """Embed each unfinished shard's images in this process; returns counts (embedded now, skipped bad)."""
    from pcclip_cli.clip.embeddings import embed_images

    embedded, bad = 0, []
    for s in shards:
        if s.done:
            continue
        chunk = items[s.index * shard_size:(s.index + 1) * shard_size]
        result = embed_images(clip, [it.path for it in chunk], batch_size=batch_size, on_error=on_error,
                              use_cache=False, warn=warn)
        by_path = {it.path: it for it in chunk}
        write_shard(s, result.vectors.reshape(len(result.paths), clip.embed_dim),
                    shard_rows_for([by_path[p] for p in result.paths]))
        embedded += result.computed
        bad += [{"path": str(p), "reason": r} for p, r in result.skipped]
        if progress:
            progress(sum(x.done for x in shards), len(shards), stage="embedding shards")
    return {"embedded": embedded, "skipped_bad": bad}


def build_sharded_index(images: list[str | Path], out: str | Path, *, embeddings: str | Path | None = None,
                        model: str | None = None, engine: Engine | str = Engine.local,
                        ray_address: str | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
                        batch_size: int = 64, on_error: OnError | str = OnError.stop, target_recall=None,
                        max_latency_ms=None, nlist: int | None = None, device: str | None = None, progress=None,
                        warn=None) -> dict:
    """Embed `images` into shards under `embeddings` (default OUT.embeddings beside the index; finished shards
    are kept, so a rerun after a kill embeds only the rest), then build the on-disk IVF index at `out`. The model
    runs on `device` (None: auto), here or in each Ray worker, which is handed the same choice."""
    from pcclip_cli.models import SHAPES_MODEL, load_clip

    from .build import model_record
    from .ondisk import build_ondisk_index
    from .tuning import check_target

    engine, on_error, out = Engine(engine), OnError(on_error), Path(out)
    check_target(target_recall, max_latency_ms)
    if batch_size < 1:
        raise PcclipError(f"--batch-size must be at least 1, got {batch_size}")
    if ray_address and engine != Engine.ray:
        raise PcclipError("--ray-address needs --engine ray")
    embeddings = Path(embeddings) if embeddings else out.parent / f"{out.name}.embeddings"
    items = collect_images([Path(p) for p in images])
    if not items:
        raise DataError("no images given; pass image files, folders or JSONL manifests")
    seen, unique = set(), []
    for it in items:  # the same image twice in the inputs is embedded and indexed once
        if it.path not in seen:
            seen.add(it.path)
            unique.append(it)
    t0 = time.perf_counter()
    spec = model or SHAPES_MODEL
    if engine == Engine.ray:
        from .ray_engine import connect

        connect(ray_address)  # an unreachable cluster fails before the model is loaded
    clip = load_clip(spec, device)
    record = model_record(clip)
    shards = open_plan(embeddings, count=len(unique), shard_size=shard_size,
                       digest=inputs_digest([str(it.path) for it in unique]), model=record)
    resumed = sum(s.done for s in shards)
    if engine == Engine.ray:
        from .ray_engine import embed_ray

        counts = embed_ray(spec, unique, shards, shard_size, batch_size=batch_size, on_error=on_error,
                           embed_dim=clip.embed_dim, device=device, progress=progress)
    else:
        counts = embed_local(clip, unique, shards, shard_size, batch_size=batch_size, on_error=on_error,
                             progress=progress, warn=warn)
    t_embed = time.perf_counter() - t0
    summary = build_ondisk_index(embeddings, out, model=record, target_recall=target_recall,
                                 max_latency_ms=max_latency_ms, nlist=nlist, progress=progress, warn=warn)
    return {**summary, "engine": engine.value, "embeddings": str(embeddings), "shards_resumed": resumed,
            "embedded": counts["embedded"], "skipped_bad": counts["skipped_bad"], "model": spec,
            "seconds": {**summary["seconds"], "embed": round(t_embed, 3)}}
