"""`pcclip filter`: clean generated comparatives with data-driven rules, and report what each rule did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, emit_json, err


def command(
    comparatives: Annotated[Path, typer.Argument(help="Comparatives JSONL written by `pcclip generate`.")],
    out: Annotated[Path, typer.Option(help="Where to write the kept records (atomically); never the input.")],
    rules: Annotated[Path | None, typer.Option(help="Rules TOML (default: the shipped filter_rules.toml).")] = None,
    min_chars: Annotated[int | None, typer.Option(help="Drop texts shorter than this after cleaning (60).")] = None,
    semantic: Annotated[bool, typer.Option(
        "--semantic", help="Also drop unrelated texts and near-duplicates (all-MiniLM-L6-v2, offline).")] = False,
    min_relevance: Annotated[float, typer.Option(
        help="--semantic: drop when the mean cosine with the two captions is below this.")] = 0.2,
    max_similarity: Annotated[float, typer.Option(
        help="--semantic: drop when the cosine with a kept text of the same item is at least this.")] = 0.95,
    duplicate_scope: Annotated[str, typer.Option(
        help="--semantic: near-duplicates among records of the same item, or across all records.")] = "item",
    json_out: JsonOption = False,
):
    """Drop and clean low-quality comparatives; prints how many records each rule dropped or changed."""
    from pcclip_cli.filtering.rules import FilterConfig, SemanticOptions, filter_file

    cfg = FilterConfig(rules=rules, min_chars=min_chars, semantic=semantic,
                       semantic_options=SemanticOptions(min_relevance=min_relevance, max_similarity=max_similarity,
                                                        scope=duplicate_scope))
    summary = filter_file(comparatives, out, cfg)
    if json_out:
        emit_json(summary)
        return
    from rich.table import Table

    table = Table(title=f"filter: {comparatives} -> {out}", title_justify="left")
    table.add_column("rule")
    table.add_column("action")
    table.add_column("dropped", justify="right")
    table.add_column("changed", justify="right")
    for row in summary["rules"]:
        table.add_row(row["rule"], row["action"], str(row["dropped"]), str(row["changed"]))
    table.add_section()
    table.add_row("[bold]kept[/bold]", "", f"[bold]{summary['kept']}[/bold] of {summary['records']}",
                  str(summary["changed"]))
    err.print(table)
