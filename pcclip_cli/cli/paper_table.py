"""Tables on stderr: the paper's Tables 1, 2, 3 and 6 beside this run's numbers (`pcclip eval --suite paper`)."""

from __future__ import annotations

from .console import err


def _num(x, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pm(d: dict | None) -> str:
    return "-" if not d or d.get("mean") is None else f"{d['mean']:.2f} ± {d['se']:.2f}"


def _gain(x) -> str:
    return "-" if x is None else f"{x:+.2f}"


def render_paper(paper: dict) -> None:
    from rich.table import Table

    def table(key: str, columns: list[str]) -> Table:
        t = Table(title=paper["titles"][key], title_justify="left")
        for i, col in enumerate(columns):
            t.add_column(col, justify="left" if i == 0 else "right")
        return t

    run = f"this run ({paper['this_run_model']})"
    err.print(f"paper: {paper['paper_model']}; '-': not measured in this run")
    t = table("table1", ["task", "paper CLIP", "paper PC-CLIP", run])
    for task, row in paper["table1"].items():
        t.add_row(task, _pm(row["paper_clip"]), _pm(row["paper_pc_clip"]), _pm(row["this_run"]))
    err.print(t)
    t = table("table2", ["dataset", "paper CLIP", "paper PC-CLIP", run, "paper CLIP +comp", "paper PC-CLIP +comp",
                         "this run +comp"])
    for name, row in paper["table2"].items():
        t.add_row(name, _num(row["paper_clip"]), _num(row["paper_pc_clip"]), _num(row["this_run"]),
                  _num(row["paper_clip_comp"]), _num(row["paper_pc_clip_comp"]), _num(row["this_run_comp"]))
    err.print(t)
    t = table("table3", ["dataset", "paper CLIP", "gain", "paper PC-CLIP", "gain", "this run before → after",
                         "gain"])
    for name, row in paper["table3"].items():
        mine = row["this_run"]
        t.add_row(name, _num(row["paper_clip"]["accuracy"]), _gain(row["paper_clip"]["gain"]),
                  _num(row["paper_pc_clip"]["accuracy"]), _gain(row["paper_pc_clip"]["gain"]),
                  f"{mine['before']:.2f} → {mine['after']:.2f}" if mine else "-", _gain(mine and mine["gain"]))
    err.print(t)
    t = table("table6", ["dataset", "paper CLIP", "paper PC-CLIP", run, "reverse: paper CLIP", "paper PC-CLIP",
                         "this run"])
    for name, row in paper["table6"].items():
        mine = row["this_run"] or {}
        t.add_row(name, _num(row["paper_clip"]["comparison"]), _num(row["paper_pc_clip"]["comparison"]),
                  _num(mine.get("comparison"), 3), _num(row["paper_clip"]["reverse"]),
                  _num(row["paper_pc_clip"]["reverse"]), _num(mine.get("reverse"), 3))
    err.print(t)
