"""`pcclip report`: turn ablation result JSONs into a markdown table and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, emit_json, err


def command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (searched for result*.json) or result files.")],
    out: Annotated[Path | None, typer.Option(help="Write the markdown table here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG figure here (metrics per arm, error bars).")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        help="Only these metrics (repeatable); default: the headline ones.")] = None,
    all_metrics: Annotated[bool, typer.Option("--all", help="Every metric the results hold.")] = False,
    json_out: JsonOption = False,
):
    """Gather ablation results: one row per arm (seeds merged), columns for varied settings and metrics."""
    from pcclip_cli.evaluation.report import build_report

    report = build_report(runs, out=out, plot=plot, metrics=metric, all_metrics=all_metrics)
    if json_out:
        emit_json(report)
        return
    # The markdown itself: wide ablation tables stay readable (Rich would squeeze them to the terminal width).
    err.print(report["markdown"], markup=False, highlight=False, soft_wrap=True)
    err.print(f"{report['runs']} runs in {len(report['arms'])} arms"
              + (f"; table: {out}" if out else "") + (f"; plot: {plot}" if plot else ""))
