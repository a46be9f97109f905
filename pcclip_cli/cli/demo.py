"""`pcclip demo`: the whole paper on an embedded world (shapes or produce), offline, with a base-vs-PC-CLIP table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.demo import WORLD_DEFAULTS, DemoConfig, DemoWorld

from .console import JsonOption, chosen_device, emit_json, err, progress_bar, warn


def _default(name: str) -> str:
    """Help shows DemoConfig's defaults; the options default to None (= not given), so they live there only."""
    return str(getattr(DemoConfig.__dataclass_fields__[name].default, "value",
                       DemoConfig.__dataclass_fields__[name].default))


def _per_world(name: str) -> str:
    return ", ".join(f"{d[name]} ({w.value})" for w, d in WORLD_DEFAULTS.items())


def command(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Directory for every artifact; a re-run reuses what is done.",
                                             show_default=_per_world("out"))] = None,
    world: Annotated[DemoWorld | None, typer.Option(
        help="shapes: difference tasks, ordering and retrieval on shapes and colours; produce: 26 fruit and "
             "vegetables the base confuses, for Tables 2, 3 and 6 and class descriptions.",
        show_default=_default("world"))] = None,
    llm: Annotated[str | None, typer.Option(help="LLM that writes the training comparatives (on produce also the "
                                                 "class comparatives and descriptions): template (the oracle), "
                                                 "smollm2-135m, gemma3-270m, or any `pcclip models` LLM.",
                                            show_default=_default("llm"))] = None,
    base: Annotated[str | None, typer.Option(help="Base CLIP model SPEC that PC-CLIP finetunes.",
                                             show_default=_per_world("base"))] = None,
    world_images: Annotated[int | None, typer.Option(help="Images in the world.", show_default=_default("world_images"))] = None,
    pairs: Annotated[int | None, typer.Option(
        help="Comparatives to generate (default 5000 for template, 120 for a real LLM).")] = None,
    epochs: Annotated[int | None, typer.Option(help="PC-CLIP training epochs.", show_default=_default("epochs"))] = None,
    batch_size: Annotated[int | None, typer.Option(help="PC-CLIP training batch size.", show_default=_default("batch_size"))] = None,
    lr: Annotated[float | None, typer.Option(help="PC-CLIP learning rate (the paper's is 1e-8, for ViT-L-14).",
                                             show_default=_default("lr"))] = None,
    weight_average: Annotated[float | None, typer.Option(
        help="WiSE-FT: PC-CLIP = ALPHA * finetuned + (1 - ALPHA) * base (default: no averaging).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Rank benchmark seeds.", show_default=_default("seeds"))] = None,
    eval_pairs: Annotated[int | None, typer.Option(help="Rank benchmark pairs per seed.", show_default=_default("eval_pairs"))] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the world, sampling and training.", show_default=_default("seed"))] = None,
    json_out: JsonOption = False,
):
    """Build the world, get the base model, generate + filter comparatives, train PC-CLIP, evaluate both."""
    from pcclip_cli.demo import run_demo

    given = {"out": str(out) if out else None, "world": world, "llm": llm, "base": base, "world_images": world_images,
             "pairs": pairs,
             "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_average": weight_average, "seeds": seeds,
             "eval_pairs": eval_pairs, "seed": seed}
    cfg = DemoConfig(**{k: v for k, v in given.items() if v is not None})  # defaults live in DemoConfig only
    with progress_bar("pcclip demo", enabled=not json_out) as bar:
        result = run_demo(cfg, device=chosen_device(ctx), progress=bar, warn=warn)
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
    world = result.get("world", "shapes")
    table = Table(title=f"base ({result['base']}) vs PC-CLIP ({result['pc_clip']}), {world} world test split",
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
    for name, label in (("base", "base"), ("pc", "PC-CLIP")):
        model = result.get("models", {}).get(name)
        if model:
            pairs = ", ".join(f"{c['first']} / {c['second']} ({c['confusions']})"
                              for c in model["zero_shot"]["confused"]) or "none"
            err.print(f"most confused ({label}; its comparatives touch these classes): {pairs}")
    comp = result["comparatives"]
    err.print(f"comparatives: {comp['total']} from {comp['llm']}, {comp['kept']} kept by the filter; "
              f"artifacts in {result['out']} (demo.json has every number); {result['seconds']:.0f} s in all")
