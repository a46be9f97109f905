"""`pcclip demo`: the whole paper on the shapes world, offline, with a base-vs-PC-CLIP table at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, emit_json, err, progress_bar, warn


def command(
    out: Annotated[Path, typer.Option(help="Directory for every artifact; a re-run reuses what is done.")]
    = Path("runs/demo"),
    llm: Annotated[str, typer.Option(help="LLM that writes the training comparatives: template (the oracle), "
                                          "smollm2-135m, gemma3-270m, or any `pcclip models` LLM.")] = "template",
    base: Annotated[str, typer.Option(help="Base CLIP model SPEC that PC-CLIP finetunes.")] = "shapes-clip",
    world_images: Annotated[int, typer.Option(help="Images in the shapes world.")] = 2000,
    pairs: Annotated[int | None, typer.Option(
        help="Comparatives to generate (default 20000 for template, 120 for a real LLM).")] = None,
    epochs: Annotated[int, typer.Option(help="PC-CLIP training epochs.")] = 4,
    batch_size: Annotated[int, typer.Option(help="PC-CLIP training batch size.")] = 256,
    lr: Annotated[float, typer.Option(help="PC-CLIP learning rate (shapes setting; the paper's is 1e-8).")] = 1e-4,
    seeds: Annotated[int, typer.Option(help="Rank benchmark seeds.")] = 5,
    eval_pairs: Annotated[int, typer.Option(help="Rank benchmark pairs per seed.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed for the world, sampling and training.")] = 0,
    json_out: JsonOption = False,
):
    """Build the world, get the base model, generate + filter comparatives, train PC-CLIP, evaluate both."""
    from ..demo import DemoConfig, run_demo

    cfg = DemoConfig(out=str(out), llm=llm, base=base, world_images=world_images, pairs=pairs, epochs=epochs,
                     batch_size=batch_size, lr=lr, seeds=seeds, eval_pairs=eval_pairs, seed=seed)
    with progress_bar("pcclip demo", enabled=not json_out) as bar:
        result = run_demo(cfg, progress=bar, warn=warn)
    if json_out:
        emit_json(result)
        return
    render(result)


def _pct(value, se=None) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.1f}"
    return f"{text} ± {100 * se:.1f}" if se is not None else text


def render(result: dict) -> None:
    from rich.table import Table

    for step in result["steps"]:
        note = " (reused)" if step.get("reused") else ""
        err.print(f"  {step['step']}: {step['seconds']:.1f} s{note}")
    table = Table(title=f"base ({result['base']}) vs PC-CLIP ({result['pc_clip']}), shapes world test split",
                  title_justify="left")
    for col in ("paper", "metric", "base", "PC-CLIP", "change"):
        table.add_column(col, justify="left" if col in ("paper", "metric") else "right")
    for row in result["table"]:
        distance = row["key"].startswith("distance/") or row["key"] == "clipscore"
        fmt = (lambda v, se=None: "-" if v is None else f"{v:.3f}") if distance else _pct
        base, pc = fmt(row["base"], row.get("base_se")), fmt(row["pc"], row.get("pc_se"))
        if "base_before" in row:
            base = f"{fmt(row['base_before'])} -> {base}"
            pc = f"{fmt(row['pc_before'])} -> {pc}"
        delta = row["pc"] - row["base"]
        good = (delta > 0) == (row["better"] == "higher")
        shown = f"{delta:+.3f}" if distance else f"{100 * delta:+.1f}"
        table.add_row(row["table"], row["metric"], base, pc,
                      f"[{'green' if good else 'red'}]{shown}[/]" if abs(delta) > 1e-9 else "0")
    err.print(table)
    comp = result["comparatives"]
    err.print(f"comparatives: {comp['generated']} from {comp['llm']}, {comp['kept']} kept by the filter; "
              f"artifacts in {result['out']} (demo.json has every number); {result['seconds']:.0f} s in all")
