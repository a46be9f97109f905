"""Markdown tables (mean ± SE over training seeds) from the run folder examples/produce_pcclip.sh writes.

    python examples/produce_report.py runs/produce_pcclip > report.md

Models are grouped by name: `base`, and `pc-<pair LLM>[+<arm>]-s<seed>` (one group per pair LLM and arm). A group of one model has
no SE over seeds; for the comparative-prompting gain its paired SE over test images is shown instead.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from pcclip_cli.evaluation import formulas

ALPHA_PAPER = "0.9"


def mean_se(values: list[float]) -> tuple[float, float | None]:
    """The library's mean and SE; no SE for a single model (printed without ±), NaN for none."""
    values = [v for v in values if v is not None]
    if not values:
        return math.nan, None
    m, se = formulas.mean_se(values)
    return m, se if len(values) > 1 else None


def fmt(values: list[float], scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    m, se = mean_se(values)
    if math.isnan(m):
        return "—"
    sign = "+" if signed else ""
    text = f"{m * scale:{sign}.{digits}f}"
    return text + (f" ± {se * scale:.{digits}f}" if se is not None else "")


def load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def groups(runs: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for d in sorted((runs / "eval").iterdir()):
        if not (d / "zero-shot.json").exists():
            continue
        m = re.fullmatch(r"pc-(.+?)(?:\+(.+))?-s\d+", d.name)
        label = f"PC-CLIP ({m.group(1)} pairs{', ' + m.group(2) if m.group(2) else ''})" if m else d.name
        out.setdefault(label, []).append(d)
    return out


def class_llms(runs: Path) -> list[str]:
    return sorted(p.name for p in (runs / "knowledge").iterdir() if p.is_dir())


def main(runs: Path) -> str:
    g = groups(runs)
    llms = class_llms(runs)
    lines = [f"# Produce world: base vs PC-CLIP ({runs})", ""]
    seeds = {name: len(dirs) for name, dirs in g.items()}
    lines.append("Models: " + ", ".join(f"{n} ({k} training seed{'s' if k > 1 else ''})" for n, k in seeds.items()))
    lines.append("")

    lines += ["## Table 2: zero-shot on class names (test split), %", "",
              "| model | top-1 | top-3 | top-5 | most confused pairs (first seed) |", "|---|---|---|---|---|"]
    for name, dirs in g.items():
        zs = [load(d / "zero-shot.json")["zero_shot"] for d in dirs]
        tk = [z["topk"] for z in zs]
        conf = ", ".join(f"{c['true']} / {c['predicted']}" if "true" in c else
                         " / ".join(str(v) for v in list(c.values())[:2]) for c in zs[0]["top_confused"])
        lines.append(f"| {name} | {fmt([z['accuracy'] for z in zs])} | {fmt([t.get('top3') for t in tk])} | "
                     f"{fmt([t.get('top5') for t in tk])} | {conf} |")
    lines.append("")

    lines += ["## Table 3: comparative prompting (Eq. 3) on each model's 3 most confused pairs, gain in points",
              "", "Gain on all test images / on the touched classes' images. One model: ± is the paired SE over "
              "images; several: the SE over training seeds.", "",
              "| model | class comparatives by | " + " | ".join(f"α {a}" for a in ("0.5", "0.7", "0.8", "0.9"))
              + " | touched classes, α 0.9 |", "|---|---|---|---|---|---|---|"]
    for name, dirs in g.items():
        for llm in llms:
            cells = []
            for a in ("0.5", "0.7", "0.8", ALPHA_PAPER):
                res = [load(d / f"comparative-{llm}-a{a}.json") for d in dirs]
                res = [r["comparative"] for r in res if r]
                if not res:
                    cells.append("—")
                    continue
                cell = fmt([r["gain"] for r in res], signed=True, digits=2)
                if len(res) == 1 and "paired" in res[0] and res[0]["paired"]["all"]["gain_se"] is not None:
                    cell += f" ± {res[0]['paired']['all']['gain_se'] * 100:.2f}"
                cells.append(cell)
            res = [load(d / f"comparative-{llm}-a{ALPHA_PAPER}.json") for d in dirs]
            res = [r["comparative"] for r in res if r]
            touched = "—"
            if res:
                touched = fmt([r.get("touched_gain") for r in res], signed=True)
                if len(res) == 1 and res[0]["paired"]["touched"]["gain_se"] is not None:
                    p = res[0]["paired"]["touched"]
                    touched += f" ± {p['gain_se'] * 100:.1f} ({p['fixed']} fixed, {p['broken']} broken)"
            lines.append(f"| {name} | {llm} | " + " | ".join(cells) + f" | {touched} |")
    lines.append("")

    lines += ["## Table 6: distance on the confused pairs (oracle comparatives)", "",
              "| model | comparison d(f_A − f_B, f_A−B) ↓ | reverse ↑ |", "|---|---|---|"]
    for name, dirs in g.items():
        ds = [load(d / "distance.json") for d in dirs]
        ds = [x for x in ds if x]
        lines.append(f"| {name} | {fmt([x['mean']['comparison'] for x in ds], 1, 3)} | "
                     f"{fmt([x['mean']['reverse'] for x in ds], 1, 3)} |")
    lines.append("")

    lines += ["## Descriptions (4 per class, CuPL-style ensemble) vs the template, top-1 %", "",
              "| model | template | " + " | ".join(f"descriptions by {llm}" for llm in llms) + " |",
              "|---|---|" + "---|" * len(llms)]
    for name, dirs in g.items():
        tmpl = [load(d / "zero-shot.json")["zero_shot"]["accuracy"] for d in dirs]
        cells = []
        for llm in llms:
            res = [load(d / f"descriptions-{llm}.json") for d in dirs]
            cells.append(fmt([r["descriptions"]["accuracy"] for r in res if r]))
        lines.append(f"| {name} | {fmt(tmpl)} | " + " | ".join(cells) + " |")
    lines.append("")

    lines += ["## Difference tasks (held-out paraphrases; the task's own sentence in brackets), accuracy %", "",
              "| model | size | colour | pattern |", "|---|---|---|---|"]
    for name, dirs in g.items():
        cells = []
        for t in ("size", "colour", "pattern"):
            res = [load(d / f"task-{t}.json") for d in dirs]
            res = [r for r in res if r]
            cells.append(f"{fmt([r['accuracy']['mean'] for r in res])} "
                         f"({fmt([r['sentence_accuracy']['mean'] for r in res])})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")

    lines += ["## Class knowledge by writer: audit against the world's images, and what it buys the base model", "",
              "| writer | comparatives kept / written | comparatives precision | coverage | descriptions kept / "
              "written | descriptions precision | base: α 0.9 gain (touched) | base: descriptions − template |",
              "|---|---|---|---|---|---|---|---|"]
    base_dirs = g.get("base", [])
    for llm in llms:
        k = runs / "knowledge" / llm
        fc, fd = load(k / "filter-cmp.json") or {}, load(k / "filter-desc.json") or {}
        ac, ad = load(k / "audit-cmp.json") or {}, load(k / "audit-desc.json") or {}
        gain = desc_gain = "—"
        if base_dirs:
            r = load(base_dirs[0] / f"comparative-{llm}-a{ALPHA_PAPER}.json")
            if r:
                gain = f"{r['comparative'].get('touched_gain', 0) * 100:+.1f}"
            dr = load(base_dirs[0] / f"descriptions-{llm}.json")
            if dr:
                dsc = dr["descriptions"]
                desc_gain = f"{(dsc['accuracy'] - dsc['template_accuracy']) * 100:+.1f}"

        def pct(x):
            return "—" if x is None else f"{x * 100:.1f}%"

        lines.append(f"| {llm} | {fc.get('kept', '—')} / {fc.get('records', '—')} | {pct(ac.get('precision'))} | "
                     f"{pct(ac.get('coverage'))} | {fd.get('kept', '—')} / {fd.get('records', '—')} | "
                     f"{pct(ad.get('precision'))} | {gain} | {desc_gain} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/produce_pcclip")))
