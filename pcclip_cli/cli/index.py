"""`pcclip index`: embed images with a CLIP model and write (or extend) a FAISS index directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.data.records import OnError
from pcclip_cli.retrieval import IndexType

from .console import JsonOption, emit_json, err, progress_bar, warn


def command(
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
    json_out: JsonOption = False,
):
    """Embed IMAGES and write a FAISS index (inner product on normalised vectors) with their metadata."""
    from pcclip_cli.retrieval import build_index

    with progress_bar("embedding images", enabled=not json_out) as progress:
        summary = build_index(images, out, model=model, index_type=index_type, add=add, batch_size=batch_size,
                              on_error=on_bad_image, progress=progress, warn=warn, target_recall=target_recall,
                              max_latency_ms=max_latency_ms).to_dict()
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
              f"embed {summary['seconds']['embed']:.1f} s, index {summary['seconds']['index']:.2f} s")
