"""`pcclip distance`: d(f_A - f_B, f_{A-B}) and its reverse for class comparatives (paper Table 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.evaluation.classification import DEFAULT_TEMPLATE

from .console import DEFAULT_MODEL, JsonOption, ModelOption, chosen_device, emit_json
from .tables import render_distances


def command(
    ctx: typer.Context,
    comparatives: Annotated[Path, typer.Option(
        help="Class comparatives JSONL (kind 'classes': first = A, second = B, text = how A differs from B).")],
    model: ModelOption = DEFAULT_MODEL,
    template: Annotated[str, typer.Option(help="Class prompt giving f_A; {} is the class name.")] = DEFAULT_TEMPLATE,
    dataset: Annotated[str | None, typer.Option(help="Check that every class named is in this dataset.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Where local copies of named datasets live.")] = None,
    json_out: JsonOption = False,
):
    """Cosine distances between class-prompt differences and embedded difference texts, per pair and on average."""
    from pcclip_cli.evaluation.distance import distance

    result = distance(model, comparatives, template=template, dataset=dataset, data_root=data_root,
                      device=chosen_device(ctx))
    if json_out:
        emit_json(result)
    else:
        render_distances(result)
