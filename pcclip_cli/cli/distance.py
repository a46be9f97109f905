"""`pcclip distance`: d(f_A - f_B, f_{A-B}) and its reverse for class comparatives (paper Table 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..classification import DEFAULT_TEMPLATE
from .console import JsonOption, emit_json, err
from .rank import DEFAULT_MODEL


def command(
    comparatives: Annotated[Path, typer.Option(
        help="Class comparatives JSONL (kind 'classes': first = A, second = B, text = how A differs from B).")],
    model: Annotated[str, typer.Option("--model", "-m", help="CLIP model SPEC (see `pcclip models`).")] = DEFAULT_MODEL,
    template: Annotated[str, typer.Option(help="Class prompt giving f_A; {} is the class name.")] = DEFAULT_TEMPLATE,
    dataset: Annotated[str | None, typer.Option(help="Check that every class named is in this dataset.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Where local copies of named datasets live.")] = None,
    json_out: JsonOption = False,
):
    """Cosine distances between class-prompt differences and embedded difference texts, per pair and on average."""
    from ..geometry import distance

    result = distance(model, comparatives, template=template, dataset=dataset, data_root=data_root)
    if json_out:
        emit_json(result)
    else:
        render(result)


def render(result: dict, title: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=title or f"comparison distances, model {result['model']}, class prompt "
                                 f"{result['template']!r}", title_justify="left")
    table.add_column("A")
    table.add_column("B")
    table.add_column("d(fA - fB, fA-B) ↓", justify="right")
    table.add_column("d(fB - fA, fA-B) ↑", justify="right")
    for p in result["pairs"]:
        table.add_row(p["first"], p["second"], f"{p['comparison']:.4f}", f"{p['reverse']:.4f}")
    table.add_row("[bold]mean[/bold]", f"{result['n']} pairs", f"{result['mean']['comparison']:.4f}",
                  f"{result['mean']['reverse']:.4f}")
    err.print(table)
