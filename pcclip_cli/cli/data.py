"""`pcclip data`: build datasets, starting with the shapes world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, emit_json, err, progress_bar

app = typer.Typer(help="Build datasets (the shapes world).", no_args_is_help=True)


@app.command("shapes")
def shapes(
    out: Annotated[Path, typer.Argument(help="Directory to write the world into.")],
    images: Annotated[int, typer.Option(help="Number of images.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 0,
    image_size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    two_objects: Annotated[float, typer.Option(help="Fraction of images with two objects.")] = 0.25,
    test_fraction: Annotated[float, typer.Option(help="Fraction of images in the test split.")] = 0.2,
    force: Annotated[bool, typer.Option(help="Replace a different world already in OUT.")] = False,
    json_out: JsonOption = False,
):
    """Write a shapes world: images, captions.jsonl, class manifests and benchmark task files."""
    from ..shapes import WorldConfig, build_world

    cfg = WorldConfig(images=images, seed=seed, image_size=image_size, two_object_fraction=two_objects,
                      test_fraction=test_fraction)
    with progress_bar("drawing shapes", enabled=not json_out) as progress:
        summary = build_world(out, cfg, force=force, progress=progress)
    if json_out:
        emit_json(summary)
        return
    verb = "reused" if summary["reused"] else "wrote"
    err.print(f"{verb} {summary['images']} images in {out} "
              f"(train {summary['splits'].get('train', 0)}, test {summary['splits'].get('test', 0)})")
    err.print(f"captions: {out}/captions.jsonl; classes: {', '.join(summary['class_manifests'])}")
    err.print(f"tasks: {', '.join(summary['tasks'])}")
