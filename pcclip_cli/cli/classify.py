"""`pcclip classify`: zero-shot accuracy, confused pairs, comparative prompting, descriptions and their selection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.evaluation.classification import DEFAULT_TEMPLATE, DescriptionMode

from .console import DEFAULT_MODEL, JsonOption, ModelOption, chosen_device, emit_json, err, progress_bar, warn
from .tables import pct


def command(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(
        help="A JSONL manifest with labels, a world directory, an image folder (one subfolder per class), or a "
             "named dataset (cifar10, cifar100, flowers102, eurosat, sun397, awa2, cub) under --data-root.")],
    label: Annotated[str | None, typer.Option(
        "--label", metavar="KEY",
        help="The manifest attribute that is the class (colour, shape, size, colour_shape...); a world "
             "directory defaults to colour_shape.")] = None,
    model: ModelOption = DEFAULT_MODEL,
    data_root: Annotated[Path | None, typer.Option(help="Where local copies of named datasets live.")] = None,
    split: Annotated[str | None, typer.Option(
        help="Split to evaluate; default test when the dataset has one, else every image.")] = None,
    template: Annotated[str, typer.Option(help="Class prompt; {} is the class name.")] = DEFAULT_TEMPLATE,
    top_k: Annotated[int, typer.Option(help="How many most-confused class pairs to name.")] = 3,
    confused_out: Annotated[Path | None, typer.Option(
        help="Write the confused pairs as JSONL here (`pcclip generate --kind classes --classes FILE` reads it).")]
    = None,
    comparative: Annotated[str | None, typer.Option(
        help="Comparative prompting (Eq. 3): a class comparatives JSONL, or 'auto' to generate them for the "
             "confused pairs with --llm.")] = None,
    llm: Annotated[str | None, typer.Option(help="LLM for --comparative auto (see `pcclip models`).")] = None,
    alpha: Annotated[float, typer.Option(help="Eq. 3 weight of the original class prompt, in [0, 1].")] = 0.9,
    save_comparatives: Annotated[Path | None, typer.Option(
        help="With --comparative auto: keep the generated comparatives here.")] = None,
    descriptions: Annotated[Path | None, typer.Option(
        help="Class descriptions JSONL (kind 'descriptions': first = class, text = description).")] = None,
    description_mode: Annotated[DescriptionMode, typer.Option(
        help="Descriptions replace the template or are averaged with it.")] = DescriptionMode.replace,
    select_descriptions: Annotated[int | None, typer.Option(
        help="Keep the K descriptions per class with the highest mean cosine to that class's images in "
             "--score-split (EX2-style), and report the gain over the template.")] = None,
    score_split: Annotated[str, typer.Option(
        help="Held-out split that scores descriptions; never the evaluation split.")] = "train",
    linear_probe: Annotated[bool, typer.Option(
        "--linear-probe", help="Also fit a logistic-regression probe on frozen --probe-split image embeddings "
                               "(C chosen on a seeded held-out part of it) and report its top-1 on --split.")]
    = False,
    probe_split: Annotated[str, typer.Option(help="Split the linear probe learns from.")] = "train",
    probe_seed: Annotated[int, typer.Option(help="Seed of the probe's validation hold-out.")] = 0,
    json_out: JsonOption = False,
):
    """Zero-shot classification; optionally comparative prompting (paper Eq. 3) and class descriptions."""
    from pcclip_cli.evaluation.classification import ClassifyOptions, classify

    opts = ClassifyOptions(template=template, split=split, top_k=top_k, comparative=comparative, llm=llm,
                           alpha=alpha, descriptions=str(descriptions) if descriptions else None,
                           description_mode=description_mode, select_descriptions=select_descriptions,
                           score_split=score_split, confused_out=str(confused_out) if confused_out else None,
                           save_comparatives=str(save_comparatives) if save_comparatives else None,
                           linear_probe=linear_probe, probe_split=probe_split, probe_seed=probe_seed,
                           label=label)
    with progress_bar("embedding images", enabled=not json_out) as bar:
        result = classify(model, dataset, opts, data_root=data_root, device=chosen_device(ctx),
                          progress=bar, warn=warn)
    if json_out:
        emit_json(result)
    else:
        render(result)


def render(result: dict, title: str | None = None, per_class: bool = True) -> None:
    from rich.table import Table

    zs = result["zero_shot"]
    head = title or f"{result['dataset']} (split {result['split']}, {result['images']} images), model {result['model']}"
    err.print(f"[bold]{head}[/bold]")
    err.print(f"prompts: {result['prompts']}; template: {result['template']!r}")
    topk = zs.get("topk", {})
    err.print(f"zero-shot accuracy: [bold]{pct(zs['accuracy'])}%[/bold] over {len(result['classes'])} classes"
              + "".join(f", top-{k[3:]} {pct(v)}%" for k, v in topk.items() if k != "top1"))
    if "linear_probe" in result:
        p = result["linear_probe"]
        err.print(f"linear probe: [bold]{pct(p['top1'])}%[/bold] top-1 on split {p['test_split']!r} "
                  f"(C = {p['C']:g} chosen on a {p['validation']}: {pct(p['val_top1'])}%; then refit on all of "
                  f"split {p['train_split']!r})")
    if per_class and len(result["classes"]) <= 40:
        table = Table(title="per class", title_justify="left")
        table.add_column("class")
        table.add_column("accuracy %", justify="right")
        table.add_column("images", justify="right")
        for name, row in zs["per_class"].items():
            table.add_row(name, pct(row["accuracy"]), str(row["images"]))
        err.print(table)
    if per_class and len(result["classes"]) <= 12:
        cm = Table(title="confusion matrix (rows true, columns predicted)", title_justify="left")
        cm.add_column("")
        for name in result["classes"]:
            cm.add_column(name[:10], justify="right")
        for name, row in zip(result["classes"], zs["confusion"], strict=True):
            cm.add_row(name, *(str(v) for v in row))
        err.print(cm)
    if zs["top_confused"]:
        err.print("most confused: " + "; ".join(f"{c['first']} / {c['second']} ({c['confusions']})"
                                                for c in zs["top_confused"]))
    if result.get("confused_file"):
        err.print(f"wrote the confused pairs to {result['confused_file']}")
    if "descriptions" in result:
        d = result["descriptions"]
        err.print(f"descriptions ({d['mode']}, {d['classes_described']} classes): {pct(d['accuracy'])}% "
                  f"vs template {pct(d['template_accuracy'])}%")
    if "selection" in result:
        s = result["selection"]
        err.print(f"description selection: top {s['k']} per class scored on split {s['scored_split']!r} "
                  f"({s['scored_images']} images), evaluated on split {s['evaluated_split']!r}: "
                  f"{pct(s['selected_accuracy'])}% vs template {pct(s['template_accuracy'])}% "
                  f"(gain {100 * s['gain_over_template']:+.2f}), all descriptions {pct(s['all_descriptions_accuracy'])}%")
    if "comparative" in result:
        render_comparative(result["comparative"])


def render_comparative(c: dict) -> None:
    from rich.table import Table

    if "skipped" in c:
        err.print(f"comparative prompting ({c['source']}): {c['skipped']}")
        return
    table = Table(title=f"comparative prompting (alpha {c['alpha']}, {len(c['records'])} comparatives from "
                        f"{c['source']})", title_justify="left")
    for col in ("", "overall %", f"touched classes % ({len(c['touched'])} classes, {c['touched_images']} images)"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row("before", pct(c["before"]["accuracy"]), pct(c["before"]["touched_accuracy"]))
    table.add_row("after", pct(c["after"]["accuracy"]), pct(c["after"]["touched_accuracy"]))
    gain_t = c.get("touched_gain")
    table.add_row("change", f"{100 * c['gain']:+.2f}", "-" if gain_t is None else f"{100 * gain_t:+.2f}")
    err.print(table)
