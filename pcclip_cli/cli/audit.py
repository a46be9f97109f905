"""`pcclip audit`: how often comparatives state colour, size, shape and count correctly, on a known world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, emit_json, err


def command(
    comparatives: Annotated[Path, typer.Argument(help="Comparatives JSONL from `pcclip generate` or `filter`.")],
    captions: Annotated[Path, typer.Option(help="The captions.jsonl the comparatives were generated from; its "
                                                "records must carry attributes (a shapes world's do).")],
    vocabulary: Annotated[Path | None, typer.Option(
        help="Attribute words TOML (default: the shipped vocabulary.toml).")] = None,
    classes: Annotated[bool, typer.Option(
        "--classes", help="The file holds class texts (descriptions, class comparatives): score them against what "
                          "the world's images of each class show.")] = False,
    label: Annotated[str, typer.Option(help="With --classes: the attribute naming each image's class.")]
    = "produce",
    json_out: JsonOption = False,
):
    """Score each comparative's statements against the two images' (or classes') known attributes."""
    if classes:
        from pcclip_cli.filtering.class_audit import audit_class_file

        report = audit_class_file(comparatives, captions, vocabulary, label)
    else:
        from pcclip_cli.filtering.audit import audit_file

        report = audit_file(comparatives, captions, vocabulary)
    if json_out:
        emit_json(report)
        return
    from rich.table import Table

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    table = Table(title=f"audit: {comparatives} ({report['records']} records)", title_justify="left")
    for col in ("kind", "statements", "correct", "swapped", "wrong", "undecidable"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, row in report["by_kind"].items():
        table.add_row(kind, str(sum(row.values())), *(str(row[v]) for v in ("correct", "swapped", "wrong",
                                                                             "undecidable")))
    table.add_section()
    table.add_row("[bold]all[/bold]", str(report["statements"]), *(str(report[v]) for v in ("correct", "swapped",
                                                                                          "wrong", "undecidable")))
    err.print(table)
    err.print(f"precision {pct(report['precision'])}, coverage {pct(report['coverage'])} "
              f"({report['differences_stated']} of {report['differences_present']} differences stated), swaps "
              f"{pct(report['swap_rate'])}; {report['records_without_statements']} records state nothing")
    for kind in ("wrong", "swapped", "missed"):
        for ex in report["examples"][kind]:
            what = ex.get("statement") or f"missed {', '.join(ex['missed'])}"
            err.print(f"  {kind}: {ex['key']}: {what}: {ex['text']!r}")
