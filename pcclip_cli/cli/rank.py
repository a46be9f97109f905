"""`pcclip rank`: which image shows more of an attribute, an ordering of many images, or a task benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.data.records import OnError

from .console import (
    DEFAULT_MODEL,
    JsonOption,
    ModelOption,
    QueryTemplatesOption,
    chosen_device,
    data_lines,
    data_on_terminal,
    emit_json,
    err,
    progress_bar,
    warn,
)
from .tables import render_task


def command(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(
        help="IMAGE... ATTRIBUTE: image files, folders or a JSONL manifest, then an attribute word ('larger') "
             "or a full comparative sentence.", show_default=False, metavar="IMAGE... ATTRIBUTE")] = None,
    model: ModelOption = DEFAULT_MODEL,
    task: Annotated[Path | None, typer.Option(help="Run the difference benchmark in this task TOML instead.")] = None,
    seeds: Annotated[int, typer.Option(help="Benchmark: number of seeds (accuracy is mean ± standard error).")] = 5,
    pairs: Annotated[int, typer.Option(help="Benchmark: image pairs per seed.")] = 100,
    seed: Annotated[int, typer.Option(help="Benchmark: the first seed; the same seed gives the same pairs.")] = 0,
    data_root: Annotated[Path | None, typer.Option(help="Where local copies of named datasets live.")] = None,
    on_bad_image: Annotated[OnError, typer.Option(help="An unreadable image stops the run or is skipped.")]
    = OnError.stop,
    query_templates: QueryTemplatesOption = None,
    json_out: JsonOption = False,
):
    """Rank images by an attribute: (g1 - g2)·f(T) >= 0 means the first shows more of it; N images, one sort."""
    from pcclip_cli.core.errors import PcclipError

    args = list(args or [])
    if task is not None:
        if args:
            raise PcclipError("--task runs the benchmark; give either --task or IMAGES... ATTRIBUTE, not both")
        from pcclip_cli.evaluation.ranking import run_rank_task

        with progress_bar("embedding images", enabled=not json_out) as bar:
            result = run_rank_task(model, task, seeds=seeds, pairs=pairs, seed=seed, data_root=data_root,
                                   device=chosen_device(ctx), progress=bar)
        if json_out:
            emit_json(result)
        else:
            render_task(result)
        return
    if not args:
        raise PcclipError("give IMAGES... ATTRIBUTE (at least two images, then an attribute) or --task TASK.toml")
    from pcclip_cli.evaluation.ranking import rank_images

    *inputs, attribute = args
    with progress_bar("embedding images", enabled=not json_out) as bar:
        result = rank_images(model, inputs, attribute, on_error=on_bad_image, device=chosen_device(ctx),
                             progress=bar, warn=warn, templates=query_templates)
    if json_out:
        emit_json(result)
    else:
        render_images(result)


def render_images(result: dict) -> None:
    from rich.table import Table

    how = "expanded to" if result["expanded"] else "as given"
    more = len(result.get("sentences", [])) - 1
    extra = f" (+{more} more phrasings, averaged; {result['templates']} templates)" if more > 0 else ""
    err.print(f"attribute [bold]{result['attribute']}[/bold] ({how}): {result['text']}{extra}")
    if "answer" in result:
        err.print(f"answer: [bold]{result['answer']}[/bold] (score (g1 - g2)·f(T) = {result['score']:+.4f}; "
                  f"first = {result['first']})")
        # The answer is data: the image that shows more of it, on stdout.
        data_lines([[result["answer"], result[result["answer"]], f"{result['score']:+.4f}"]])
        return
    data_lines([[str(row["rank"]), f"{row['score']:+.4f}", row["image"]] for row in result["order"]])
    if data_on_terminal():
        return  # the lines above are the table
    table = Table(title=f"{result['images']} images ordered by {result['attribute']!r}, highest g·f(T) first", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("g·f(T)", justify="right")
    table.add_column("image")
    for row in result["order"]:
        table.add_row(str(row["rank"]), f"{row['score']:+.4f}", row["image"])
    err.print(table)
