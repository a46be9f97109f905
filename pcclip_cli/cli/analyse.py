"""`pcclip analyse-descriptions`: EX2's analysis of class descriptions (spurious / informative, visual /
non-visual, attributes named) per source, the paper's Table 2 and a Figure-4-style plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.evaluation.description_judge import DEFAULT_JUDGE_PROMPT

from .console import JsonOption, emit_json, err, progress_bar
from .tables import pct


def command(
    sources: Annotated[list[str], typer.Argument(
        help="Descriptions JSONL files (from `pcclip generate --kind descriptions`), each PATH or NAME=PATH.")],
    lexicon: Annotated[Path | None, typer.Option(
        help="Attribute-category lexicon TOML (default: the shipped description_lexicon.toml).")] = None,
    vocabulary: Annotated[Path | None, typer.Option(
        help="A world's vocabulary.toml: its colour, size and shape words join the lexicon, and it scores the "
             "visual statements with --captions.")] = None,
    captions: Annotated[Path | None, typer.Option(
        help="A world's captions.jsonl: check visual statements against what each class's images show.")] = None,
    label: Annotated[str, typer.Option(
        help="With --captions: the attribute naming each image's class (produce; colour_shape in the shapes "
             "world).")] = "produce",
    judge: Annotated[str | None, typer.Option(
        help="Judge each description with this LLM (any `pcclip models` name) instead of the rules.")] = None,
    judge_prompt: Annotated[str, typer.Option(
        help="The judge's few-shot rubric: a `judge` prompt (shipped name or file) with {class_name} and "
             "{description}.")] = DEFAULT_JUDGE_PROMPT,
    judge_batch_size: Annotated[int, typer.Option(help="Descriptions judged together (batched backends).")] = 8,
    records: Annotated[Path | None, typer.Option(help="Write each description's verdict here (JSONL).")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Write the attribute frequencies as a PNG, the sources side by side.")] = None,
    json_out: JsonOption = False,
):
    """What class descriptions say: the share informative, non-visual among those, and the attributes named."""
    from pcclip_cli.evaluation.description_analysis import AnalysisOptions, analyse_descriptions
    from pcclip_cli.evaluation.description_judge import Judge

    opts = AnalysisOptions(lexicon=str(lexicon) if lexicon else None,
                           vocabulary=str(vocabulary) if vocabulary else None,
                           captions=str(captions) if captions else None, label=label,
                           judge=Judge(judge, judge_prompt, batch_size=judge_batch_size) if judge else None,
                           records=str(records) if records else None, plot=str(plot) if plot else None)
    with progress_bar("judging descriptions", enabled=bool(judge) and not json_out) as bar:
        result = analyse_descriptions(sources, opts, progress=bar)
    if json_out:
        emit_json(result)
        return
    render(result)


def render(result: dict) -> None:
    from rich.table import Table

    judged = result["method"] == "judge"
    title = "descriptions: " + (f"judged by {result['judge']['llm']}" if judged else "rules")
    table = Table(title=title, title_justify="left")
    cols = ["source", "texts", "informative %", "non-visual % of inf.", "visual prec. %"]
    if judged:
        cols.append("unparseable")
    for col in cols:
        table.add_column(col, justify="left" if col == "source" else "right")
    for s in result["sources"]:
        row = [s["name"], str(s["descriptions"]), pct(s["informative_share"]),
               pct(s["non_visual_share"]), pct(s["visual_precision"])]
        if judged:
            row.append(str(s["unparseable"]))
        table.add_row(*row)
    err.print(table)
    freq = Table(title="attributes named (% of informative descriptions)", title_justify="left")
    freq.add_column("attribute")
    for s in result["sources"]:
        freq.add_column(s["name"], justify="right")
    visual = set(result["categories"]["visual"])
    for c in result["categories"]["visual"] + result["categories"]["non_visual"]:
        freq.add_row(c + (" (visual)" if c in visual else ""),
                     *(pct(s["attribute_shares"][c]) for s in result["sources"]))
    err.print(freq)
    for s in result["sources"]:
        for label in ("spurious", "non-visual"):
            for ex in s["examples"][label][:1]:
                err.print(f"  {s['name']}: {label}: {ex['class']}: {ex['text']!r}")
    for what in ("records", "plot"):
        if result[what]:
            err.print(f"wrote the {what} to {result[what]}")
