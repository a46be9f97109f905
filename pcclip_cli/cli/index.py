"""`pcclip index`: embed images with a CLIP model and write (or extend) a FAISS index directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.data.records import OnError
from pcclip_cli.retrieval import IndexType
from pcclip_cli.retrieval.sharded import Engine

from .console import JsonOption, chosen_device, emit_json, err, progress_bar, warn


def _sharded(images, out, model, index_type, target_recall, max_latency_ms, add, batch_size, on_bad_image, engine,
             ray_address, embeddings, shard_size, json_out, device) -> None:
    from pcclip_cli.core.errors import PcclipError
    from pcclip_cli.retrieval.sharded import build_sharded_index

    if add:
        raise PcclipError("--add does not apply to --on-disk; rerun the same command with all images (finished "
                          "embedding shards are reused)")
    if index_type not in (IndexType.auto, IndexType.ivf):
        raise PcclipError(f"--on-disk builds an ivf index, not {index_type.value}")
    with progress_bar("embedding shards", enabled=not json_out) as progress:
        summary = build_sharded_index(images, out, embeddings=embeddings, model=model, engine=engine,
                                      ray_address=ray_address, shard_size=shard_size, batch_size=batch_size,
                                      on_error=on_bad_image, target_recall=target_recall,
                                      max_latency_ms=max_latency_ms, device=device, progress=progress,
                                      warn=warn)
    if json_out:
        emit_json(summary)
        return
    err.print(f"wrote {summary['index']}: {summary['count']} images, on-disk ivf index from {summary['shards']} "
              f"shards ({summary['engine']} engine; {summary['shards_resumed']} shards resumed), model {summary['model']}")
    err.print(f"recall@10 {summary['recall']:.3f} with nlist={summary['params']['nlist']}, "
              f"nprobe={summary['params']['nprobe']}; {summary['latency_ms_p50']:.2f} ms per query (p50)")


def command(
    ctx: typer.Context,
    images: Annotated[list[Path], typer.Argument(help="Image files, folders or JSONL manifests (captions.jsonl).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index directory to write.")],
    model: Annotated[str | None, typer.Option(help="CLIP model SPEC [default: shapes-clip, or the index's with --add].")] = None,
    index_type: Annotated[IndexType, typer.Option(help="flat (exact), ivf or hnsw; auto: flat up to 100k images "
                                                       "(or for --target-recall 1), ivf above.")]
    = IndexType.auto,
    target_recall: Annotated[float | None, typer.Option(
        help="Recall@10 against exact search that ivf/hnsw are tuned to (nprobe/efSearch), measured on a sample "
             "of the indexed images; in (0, 1]. [default: 0.95, or the index's own with --add]")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(
        help="Also keep single-query p50 latency under this; if no setting meets both, the best one is kept "
             "with a warning.")] = None,
    add: Annotated[bool, typer.Option("--add", help="Append new images to the index at --out; skip ones it has.")]
    = False,
    batch_size: Annotated[int, typer.Option(help="Images per embedding batch.")] = 64,
    on_bad_image: Annotated[OnError, typer.Option(help="stop at an unreadable image, or skip it with a warning.")]
    = OnError.stop,
    on_disk: Annotated[bool, typer.Option("--on-disk", help="Embed into shards on disk, then build an IVF index "
                                                           "whose lists stay on disk (memory bounded by a shard).")]
    = False,
    engine: Annotated[Engine, typer.Option(help="Embedding engine for --on-disk: this process, or a Ray Data job "
                                                "(implies --on-disk).")] = Engine.local,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to run --engine ray on (host:port or "
                                                         "ray://host:port) [default: a local Ray].")] = None,
    embeddings: Annotated[Path | None, typer.Option(help="Folder for the embedding shards [default: "
                                                         "OUT.embeddings beside the index]; a rerun resumes it.")]
    = None,
    shard_size: Annotated[int, typer.Option(help="Images per embedding shard (--on-disk).")] = 100_000,
    json_out: JsonOption = False,
):
    """Embed IMAGES and write a FAISS index (inner product on normalised vectors) with their metadata."""
    from pcclip_cli.retrieval import build_index

    if on_disk or engine == Engine.ray or ray_address:
        _sharded(images, out, model, index_type, target_recall, max_latency_ms, add, batch_size, on_bad_image,
                 engine, ray_address, embeddings, shard_size, json_out, chosen_device(ctx))
        return

    with progress_bar("embedding images", enabled=not json_out) as progress:
        summary = build_index(images, out, model=model, index_type=index_type, add=add, batch_size=batch_size,
                              on_error=on_bad_image, device=chosen_device(ctx), progress=progress,
                              warn=warn, target_recall=target_recall, max_latency_ms=max_latency_ms).to_dict()
    if json_out:
        emit_json(summary)
        return
    verb = "wrote" if summary["created"] else "extended"
    err.print(f"{verb} {summary['index']}: {summary['count']} images, {summary['index_type']} index "
              f"({summary['backend']}), model {summary['model']}")
    extra = f", {summary['skipped_present']} already present" if summary["skipped_present"] else ""
    shown = {k: v for k, v in summary["params"].items() if k in ("nlist", "nprobe", "m", "ef_search")}
    tuned = " (exact)" if summary["index_type"] == "flat" else " with " + ", ".join(f"{k}={v}" for k, v in shown.items())
    err.print(f"recall@10 {summary['recall']:.3f}{tuned}; {summary['latency_ms_p50']:.2f} ms per query (p50)")
    err.print(f"added {summary['added']} ({summary['embedded']} newly embedded{extra}); "
              + (f"embed {summary['seconds']['embed']:.1f} s, " if summary["embedded"] else "")
              + f"index {summary['seconds']['index']:.2f} s")
