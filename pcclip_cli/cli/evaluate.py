"""`pcclip eval`: the whole evaluation suite for one model in one call (shapes world, or the paper's datasets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.evaluation.suite import Suite, SuiteOptions

from .console import DEFAULT_MODEL, JsonOption, ModelOption, chosen_device, emit_json, err, progress_bar, warn
from .tables import pct

# The defaults live on SuiteOptions only; the options below read them from there.
D = {f.name: f.default for f in dataclasses.fields(SuiteOptions)}


def command(
    ctx: typer.Context,
    model: ModelOption = DEFAULT_MODEL,
    suite: Annotated[Suite, typer.Option(help="shapes: the shapes world; paper: the paper's tasks and datasets "
                                              "found under --data-root.")] = D["suite"],
    world: Annotated[Path | None, typer.Option(
        help="Shapes world to evaluate on; default: build or reuse $PCCLIP_HOME/worlds/shapes-default.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Paper suite: where the datasets live.")] = None,
    tasks: Annotated[Path | None, typer.Option(help="Paper suite: folder of task files (default: the shipped paper tasks, examples/tasks).")]
    = None,
    seeds: Annotated[int, typer.Option(help="Rank benchmark: number of seeds.")] = D["seeds"],
    pairs: Annotated[int, typer.Option(help="Rank benchmark: pairs per seed.")] = D["pairs"],
    seed: Annotated[int, typer.Option(help="First seed; the same seed gives the same numbers.")] = D["seed"],
    alpha: Annotated[float, typer.Option(help="Comparative prompting weight (Eq. 3), in [0, 1].")] = D["alpha"],
    top_k: Annotated[int, typer.Option(help="Confused class pairs that get comparatives.")] = D["top_k"],
    llm: Annotated[str | None, typer.Option(
        help="LLM for comparatives and descriptions (shapes default: template; paper default: none, so no "
             "comparative prompting).")] = None,
    descriptions: Annotated[int, typer.Option(help="Shapes: candidate descriptions per class.")] = D["descriptions"],
    keep: Annotated[int, typer.Option(help="Shapes: descriptions kept per class by the selection.")] = D["keep"],
    linear_probe: Annotated[bool | None, typer.Option(
        "--linear-probe/--no-linear-probe",
        help="Fit a logistic-regression probe per class set on frozen train-split image embeddings, report test "
             "top-1 (default: on for shapes, off for paper, where it embeds whole train splits).")] = D["linear_probe"],
    probe_val_fraction: Annotated[float, typer.Option(
        help="Share of each class's train images held out (seeded by --seed) to choose the probe's C.")] = D["probe_val_fraction"],
    out: Annotated[Path | None, typer.Option(help="Also write the JSON document to this file.")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE recorded under `tags` in the result (repeatable); `pcclip report` uses tags as the "
             "settings of an ablation arm.")] = None,
    json_out: JsonOption = False,
):
    """Run rank, classify (zero-shot, comparative, descriptions) and distance for MODEL; one JSON with every number.

    Embedding metrics (all vectors L2-normalised; docs/evaluation.md has the details):

    zero_shot/SET/topK: share of test images whose class is among the K highest image.prompt logits (K = 1, 3, 5).

    linear_probe/SET: test top-1 of a logistic regression on train image embeddings, C chosen on a seeded
    held-out part of train.

    geometry/alignment: mean ||x_i - y_i||^2 over matched test image/caption pairs (lower: better aligned).

    geometry/uniformity_image, geometry/uniformity_text: log mean over pairs i<j of exp(-2 ||x_i - x_j||^2)
    (lower: more uniform).

    clipscore: mean of 2.5 * max(cos(image_i, caption_i), 0) over the same pairs.
    """
    from pcclip_cli.core.io import check_writable, write_json_atomic
    from pcclip_cli.evaluation.suite import run_suite

    opts = SuiteOptions(suite=suite, world=str(world) if world else None, data_root=str(data_root) if data_root
                        else None, tasks_dir=str(tasks) if tasks else None, seeds=seeds, pairs=pairs, seed=seed,
                        alpha=alpha, top_k=top_k, llm=llm, descriptions=descriptions, keep=keep,
                        linear_probe=linear_probe, probe_val_fraction=probe_val_fraction)
    tags = parse_tags(tag or [])
    if out:
        check_writable(out)  # before the evaluation, which may take an hour, not after it
    with progress_bar("evaluating", enabled=not json_out) as bar:
        result = run_suite(model, opts, device=chosen_device(ctx), progress=bar, warn=warn).to_dict()
    if tags:
        result["tags"] = tags
    if out:
        write_json_atomic(out, result)
    if json_out:
        emit_json(result)
    else:
        render(result)
        if out:
            err.print(f"wrote {out}")


def parse_tags(pairs: list[str]) -> dict:
    from pcclip_cli.core.errors import PcclipError

    tags = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PcclipError(f"--tag {item!r} is not KEY=VALUE; e.g. --tag scope=text")
        tags[key.strip()] = value.strip()
    return tags


def render_geometry(g: dict | None) -> None:
    if not g:
        return
    if "skipped" in g:
        err.print(f"alignment, uniformity, CLIPScore skipped: {g['skipped']}")
        return
    where = f"split {g['split']!r} of {g['captions']}" if g.get("split") else g["captions"]
    err.print(f"{g['pairs']} image-caption pairs ({where}): alignment {g['alignment']:.4f}, uniformity images "
              f"{g['uniformity_image']:.4f} / texts {g['uniformity_text']:.4f}, CLIPScore "
              f"(w = {g['clipscore_weight']}) {g['clipscore']:.4f}")


def render(result: dict) -> None:
    from rich.table import Table

    from .tables import render_distances, render_tasks

    where = result.get("world", {}).get("path") or result["settings"].get("data_root")
    err.print(f"[bold]pcclip eval --suite {result['suite']}[/bold], model {result['model']} "
              f"({result['fingerprint']}), data {where}")
    render_tasks(result["rank"] + [s for s in result.get("skipped", []) if "name" in s],
                 title="difference-based classification (accuracy over pairs, mean ± SE over seeds)")
    for o in result.get("ordering", []):
        err.print(f"ordering {o['images']} images by {o['attribute']!r}: {pct(o['concordance'])}% of differently "
                  f"sized pairs in the right order")
    table = Table(title="zero-shot top-k and linear probe (accuracy %)", title_justify="left")
    for col in ("classes", "zero-shot", "top-3", "top-5", "linear probe"):
        table.add_column(col, justify="left" if col == "classes" else "right")
    for name, c in result["classify"].items():
        topk = c["zero_shot"].get("topk", {})
        probe = c.get("linear_probe") or {}
        table.add_row(name, pct(c["zero_shot"]["accuracy"]), pct(topk.get("top3")), pct(topk.get("top5")),
                      pct(probe["top1"]) if "top1" in probe else "-")
    err.print(table)
    table = Table(title="comparative prompting (accuracy %)", title_justify="left")
    for col in ("classes", "before", "after", "touched before", "touched after"):
        table.add_column(col, justify="left" if col == "classes" else "right")
    for name, c in result["classify"].items():
        comp = c.get("comparative")
        comp = None if comp and "skipped" in comp else comp
        table.add_row(name, pct(c["zero_shot"]["accuracy"]),
                      *((pct(comp["after"]["accuracy"]), pct(comp["before"]["touched_accuracy"]),
                         pct(comp["after"]["touched_accuracy"])) if comp else ("-", "-", "-")))
    err.print(table)
    probes = [c["linear_probe"] for c in result["classify"].values() if "top1" in (c.get("linear_probe") or {})]
    if probes:
        p = probes[0]
        err.print(f"linear probe: C chosen on a {p['validation']}, then refit on all of split {p['train_split']!r}; "
                  f"tested on split {p['test_split']!r}")
    for name, c in result["classify"].items():
        if "skipped" in (c.get("linear_probe") or {}):
            err.print(f"linear probe on {name} skipped: {c['linear_probe']['skipped']}")
    render_geometry(result.get("geometry"))
    selections = {n: c["selection"] for n, c in result["classify"].items() if c.get("selection")}
    if selections:
        table = Table(title="class descriptions (accuracy %)", title_justify="left")
        for col in ("classes", "template", "all descriptions", "selected", "gain"):
            table.add_column(col, justify="left" if col == "classes" else "right")
        for name, sel in selections.items():
            table.add_row(name, pct(sel["template_accuracy"]), pct(sel["all_descriptions_accuracy"]),
                          pct(sel["selected_accuracy"]), f"{100 * sel['gain_over_template']:+.2f}")
        err.print(table)
    if any(c.get("selection") for c in result["classify"].values()):
        first = next(c["selection"] for c in result["classify"].values() if c.get("selection"))
        err.print(f"descriptions scored on split {first['scored_split']!r}, evaluated on split "
                  f"{first['evaluated_split']!r}")
    for name, d in result.get("distance", {}).items():
        render_distances(d, title=f"{name}: comparison distances (class prompt {d['template']!r})")
    for s in result.get("skipped", []):
        if "dataset" in s:
            err.print(f"skipped {s['dataset']}: {s['skipped']}")
    if result.get("paper"):
        from .paper_table import render_paper

        render_paper(result["paper"])
