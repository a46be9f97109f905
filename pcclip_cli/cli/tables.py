"""Rich tables that several commands print (task accuracies, comparison distances), and number formats."""

from __future__ import annotations

from .console import err


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def render_task(result: dict, title: str | None = None) -> None:
    render_tasks([result], title=title or f"difference-based classification, model {result['model']}")


def render_tasks(results: list[dict], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col, just in (("task", "left"), ("kind", "left"), ("accuracy %", "right"), ("± SE", "right"),
                      ("seeds", "right"), ("pairs", "right"), ("images", "right")):
        table.add_column(col, justify=just)
    for r in results:
        if "skipped" in r and "accuracy" not in r:
            table.add_row(r.get("name", "?"), "", "skipped", "", "", "", r["skipped"][:60])
            continue
        table.add_row(r["task"]["name"], r["task"]["kind"], pct(r["accuracy"]["mean"]), pct(r["accuracy"]["se"]),
                      str(len(r["seeds"])), str(r["n_pairs"]), str(r["images_embedded"]))
    err.print(table)


def render_distances(result: dict, title: str | None = None) -> None:
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
