"""The paper's own figures (Tables 1, 2, 3 and 6) beside the same measurements of a `pcclip eval --suite paper` run.

The figures are data, in prompts/paper_figures.toml. Every number here is in the paper's units: accuracies in
percent, distances as they are. A row appears for each task or dataset the paper reports, with `this_run` None
where the run did not measure it (dataset absent, or comparative prompting off).
"""

from __future__ import annotations

import functools

from pcclip_cli.core.paths import PROMPTS_DIR

FIGURES_FILE = PROMPTS_DIR / "paper_figures.toml"


@functools.lru_cache(maxsize=1)
def paper_figures() -> dict:
    from pcclip_cli.core.config import load_toml

    return load_toml(FIGURES_FILE, what="paper figures")


def _pct(x) -> float | None:
    return None if x is None else round(100.0 * x, 2)


def _comparative(c: dict) -> dict | None:
    comp = c.get("comparative")
    return comp if comp and "skipped" not in comp and "before" in comp else None


def compare_with_paper(result: dict) -> dict:
    """For each of the paper's tables: its CLIP and PC-CLIP figures and this run's number, per task or dataset."""
    fig = paper_figures()
    rank = {r["task"]["name"]: r["accuracy"] for r in result.get("rank", [])}
    classify = result.get("classify", {})
    distance = result.get("distance", {})
    model = result.get("model")

    table1 = {}
    for task, (mean, se) in fig["table1"]["clip"].items():
        acc = rank.get(task)
        table1[task] = {"paper_clip": {"mean": mean, "se": se},
                        "paper_pc_clip": dict(zip(("mean", "se"), fig["table1"]["pc_clip"][task], strict=True)),
                        "this_run": {"mean": _pct(acc["mean"]), "se": _pct(acc["se"])} if acc else None}

    table2, table3, table6 = {}, {}, {}
    for name in fig["table2"]["clip"]:
        c = classify.get(name)
        comp = _comparative(c) if c else None
        table2[name] = {"paper_clip": fig["table2"]["clip"][name], "paper_pc_clip": fig["table2"]["pc_clip"][name],
                        "paper_clip_comp": fig["table2"]["clip_comp"][name],
                        "paper_pc_clip_comp": fig["table2"]["pc_clip_comp"][name],
                        "this_run": _pct(c["zero_shot"]["accuracy"]) if c else None,
                        "this_run_comp": _pct(comp["after"]["accuracy"]) if comp else None}
        clip3, pc3 = fig["table3"]["clip"][name], fig["table3"]["pc_clip"][name]
        touched = None
        if comp and comp["before"].get("touched_accuracy") is not None:
            before, after = comp["before"]["touched_accuracy"], comp["after"]["touched_accuracy"]
            touched = {"before": _pct(before), "after": _pct(after), "gain": round(_pct(after) - _pct(before), 2)}
        table3[name] = {"paper_clip": {"accuracy": clip3[0], "gain": clip3[1]},
                        "paper_pc_clip": {"accuracy": pc3[0], "gain": pc3[1]}, "this_run": touched}
        d = distance.get(name)
        clip6, pc6 = fig["table6"]["clip"][name], fig["table6"]["pc_clip"][name]
        table6[name] = {"paper_clip": {"comparison": clip6[0], "reverse": clip6[1]},
                        "paper_pc_clip": {"comparison": pc6[0], "reverse": pc6[1]},
                        "this_run": {"comparison": round(d["mean"]["comparison"], 4),
                                     "reverse": round(d["mean"]["reverse"], 4)} if d else None}
    return {
        "paper_model": "ViT-L-14:datacomp_xl_s13b_b90k (CLIP) and its PC-CLIP finetune",
        "this_run_model": model,
        "titles": {k: fig[k]["title"] for k in ("table1", "table2", "table3", "table6")},
        "table1": table1, "table2": table2, "table3": table3, "table6": table6,
    }
