"""Gather ablation result JSONs into one table (markdown) and one figure (matplotlib), arms against metrics.

A result JSON is what `pcclip eval --json` prints (an ablation script saves it per run). From each file this
takes the settings (`tags`, and the training config of a checkpoint model when it can be read) and the
metrics (the numeric entries of `summary`, with `<name>_se` standard errors when present). Runs that differ
only in a seed (`seed`, or a tag named `*_seed` such as `train_seed`) are one arm: their metrics are averaged,
with the standard error over seeds as error bar.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError

SE_SUFFIXES = ("_se", "/se")
DEMO_PREFIX = "eval-"  # `pcclip demo` writes eval-base.json and eval-pc.json beside demo.json
# Training settings worth a column when they vary between runs.
TRAINING_SETTINGS = ("objective", "loss", "scope", "rank_weights", "no_base_loss", "lr", "epochs", "seed",
                     "temperature", "batch_size", "llm")


@dataclass
class RunResult:
    path: Path
    settings: dict
    metrics: dict  # name -> value
    errors: dict = field(default_factory=dict)  # name -> standard error, when the run measured one


@dataclass
class Arm:
    settings: dict
    runs: list[RunResult]
    metrics: dict  # name -> mean over runs
    errors: dict  # name -> standard error (over seeds, else the run's own)


def _flatten(prefix: str, obj, out: dict) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, bool):
        return
    elif isinstance(obj, (int, float)) and math.isfinite(obj):
        out[prefix] = float(obj)


def _checkpoint_settings(spec: str | None) -> dict:
    """The training settings a checkpoint model records; nothing for registry names or unreadable checkpoints."""
    from pcclip_cli.clip.checkpoints import read_checkpoint_meta
    from pcclip_cli.core.errors import CheckpointError

    if not spec or not Path(spec).is_dir():
        return {}
    try:
        meta = read_checkpoint_meta(Path(spec))
    except CheckpointError:
        return {}
    training = meta.get("training") or meta.get("config") or {}
    picked = {k: training[k] for k in TRAINING_SETTINGS if k in training}
    if "scope" in meta and "scope" not in picked:
        picked["scope"] = meta["scope"]
    return picked


def read_result(path: Path) -> RunResult:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"result file {path} is not valid JSON ({exc}); re-run the evaluation that wrote it") from None
    if not isinstance(doc, dict):
        raise DataError(f"result file {path} does not hold a JSON object")
    settings = {**_checkpoint_settings(doc.get("model")), **(doc.get("tags") or {})}
    if Path(path).name.startswith(DEMO_PREFIX) and not doc.get("tags"):
        settings["arm"] = Path(path).stem[len(DEMO_PREFIX):]  # pcclip demo's eval-base.json, eval-pc.json
    flat: dict = {}
    _flatten("", doc.get("summary", doc.get("metrics", {})), flat)
    if not flat:
        raise DataError(f"result file {path} has no `summary` metrics; write it with `pcclip eval --json`")
    # A standard error is reported as `<metric>_se` or `<metric>/se` (pcclip eval's summary).
    metrics = {k: v for k, v in flat.items() if not k.endswith(SE_SUFFIXES)}
    errors = {k[:-3]: v for k, v in flat.items() if k.endswith(SE_SUFFIXES)}
    paraphrase_metrics(doc, metrics, errors)
    return RunResult(Path(path), {k: _plain(v) for k, v in settings.items()}, metrics, errors)


def paraphrase_metrics(doc: dict, metrics: dict, errors: dict) -> None:
    """Each held-out paraphrase of a rank task as a metric of its own, `rank/<task>/paraphrase-<k>` (k counts
    from 1 in the task file's order), so one sentence shape can be followed across arms and training seeds."""
    for entry in doc.get("rank") or []:
        name = (entry.get("task") or {}).get("name") if isinstance(entry, dict) else None
        if not name:
            continue
        for k, para in enumerate(entry.get("paraphrases") or [], start=1):
            acc = para.get("accuracy") if isinstance(para, dict) else None
            if isinstance(acc, dict) and isinstance(acc.get("mean"), (int, float)):
                metrics[f"rank/{name}/paraphrase-{k}"] = float(acc["mean"])
                if isinstance(acc.get("se"), (int, float)):
                    errors[f"rank/{name}/paraphrase-{k}"] = float(acc["se"])


def _plain(v):
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return v


def find_results(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        p = Path(p)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += sorted(q for q in p.rglob("*.json") if q.name.startswith(("result", DEMO_PREFIX)))
        else:
            raise DataError(f"runs directory or result file not found: {p}")
    if not files:
        raise DataError(f"no result*.json or eval-*.json files under {', '.join(map(str, inputs))}; "
                        "ablation scripts save them with `pcclip eval --json > DIR/result.json`, "
                        "`pcclip demo` writes eval-base.json and eval-pc.json")
    return files


def is_seed(setting: str) -> bool:
    return setting == "seed" or setting.endswith("_seed")


def group_arms(runs: list[RunResult]) -> tuple[list[Arm], list[str], list[str]]:
    """Merge seeds into arms; return the arms, the settings that vary, and the metric names."""
    keys = sorted({k for r in runs for k in r.settings if not is_seed(k)})
    varied = [k for k in keys if len({json.dumps(r.settings.get(k)) for r in runs}) > 1]
    if not varied:
        varied = keys
    groups: dict[str, list[RunResult]] = {}
    for r in runs:
        key = json.dumps({k: r.settings.get(k) for k in varied}, sort_keys=True)
        groups.setdefault(key, []).append(r)
    metric_names = sorted({m for r in runs for m in r.metrics})
    arms = []
    for members in groups.values():
        means, errs = {}, {}
        for m in metric_names:
            values = [r.metrics[m] for r in members if m in r.metrics]
            if not values:
                continue
            means[m] = sum(values) / len(values)
            if len(values) > 1:
                var = sum((v - means[m]) ** 2 for v in values) / (len(values) - 1)
                errs[m] = math.sqrt(var / len(values))
            elif m in members[0].errors:
                errs[m] = members[0].errors[m]
        arms.append(Arm({k: members[0].settings.get(k) for k in varied}, members, means, errs))
    arms.sort(key=lambda a: json.dumps(a.settings, sort_keys=True))
    return arms, varied, metric_names


def _fmt(value: float | None, err: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} ± {err:.3f}" if err is not None else text


def arm_name(arm: Arm) -> str:
    """The run's directory name (its parent's when seeds were merged): what the ablation script called it; the
    demo's evaluations, which share one directory, add their file's arm."""
    first = arm.runs[0].path
    if first.name.startswith(DEMO_PREFIX):
        return f"{first.parent.name}/{first.stem[len(DEMO_PREFIX):]}"
    if len(arm.runs) == 1:
        return first.parent.name
    names = [r.path.parent.name for r in arm.runs]
    if len(set(names)) == 1:  # RUNS/ARM/seed-N/result.json: the arm is the seeds' parent
        return first.parent.parent.name
    # RUNS/ARM-s0/result.json, RUNS/ARM-s1/...: what the names share, without the seed's suffix.
    common = re.sub(r"[-_](s|seed)?$", "", os.path.commonprefix(names))
    return common or first.parent.parent.name


def _cell(value) -> str:
    return "" if value is None else str(value)


def markdown_table(arms: list[Arm], varied: list[str], metrics: list[str]) -> str:
    header = ["run", *varied, "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm in arms:
        cells = [arm_name(arm), *(_cell(arm.settings.get(k)) for k in varied), str(len(arm.runs))]
        cells += [_fmt(arm.metrics.get(m), arm.errors.get(m)) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_arms(arms: list[Arm], varied: list[str], metrics: list[str], out: Path) -> None:
    """One panel per metric, one bar per arm, error bars where there are seeds or measured SEs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcclip_cli.core.io import atomic_path

    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    # constrained layout keeps the title above the first row of panels, whatever their labels' height.
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows + 0.4), squeeze=False,
                             layout="constrained")
    labels = [arm_name(a) for a in arms]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        values = [a.metrics.get(metric, float("nan")) for a in arms]
        errs = [a.errors.get(metric, 0.0) for a in arms]
        ax.bar(range(len(arms)), values, yerr=errs, capsize=3, color="#4c72b0")
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle("pcclip ablations: " + (", ".join(varied) or "runs"), fontsize=10)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_reward_curve(rows: list[dict], out: Path, title: str = "alignment") -> bool:
    """The reward curve of an alignment run (`pcclip align`'s metrics.jsonl rows): each step's mean reward with its
    spread, the running mean over the last five steps, and the KL to the unaligned LLM on a second axis. False,
    and nothing written, where matplotlib is not installed (it is the optional `report` extra)."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcclip_cli.core.io import atomic_path

    rows = [r for r in rows if r.get("reward") is not None]
    steps = [r["step"] for r in rows]
    reward = [r["reward"] for r in rows]
    spread = [r.get("reward_std") or 0.0 for r in rows]
    running = [sum(reward[max(0, i - 4): i + 1]) / len(reward[max(0, i - 4): i + 1]) for i in range(len(reward))]
    fig, ax = plt.subplots(figsize=(6.0, 3.4), layout="constrained")
    ax.errorbar(steps, reward, yerr=spread, fmt="o", markersize=3, capsize=2, color="#4c72b0", alpha=0.6,
                label="step mean reward (± spread)")
    ax.plot(steps, running, color="#4c72b0", label="running mean (5 steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("reward (mean cosine)")
    kl = [r.get("kl") for r in rows]
    if any(k is not None for k in kl):
        ax2 = ax.twinx()
        ax2.plot(steps, [k if k is not None else float("nan") for k in kl], color="#dd8452", linewidth=1,
                 label="KL to the unaligned LLM")
        ax2.set_ylabel("KL", color="#dd8452")
        ax2.legend(loc="lower right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(title, fontsize=10)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return True


# What a report shows when no metric is named (and --all is not given): the paper's headline numbers.
HEADLINE_METRICS = ("rank/shapes-size", "rank/shapes-colour", "rank/shapes-attributes", "ordering/larger",
                    "zero_shot/colour_shape", "clipscore")


def headline(names: list[str]) -> list[str]:
    """The headline metrics among `names`, in HEADLINE_METRICS' order; the first six names when none is there."""
    chosen = [m for m in HEADLINE_METRICS if m in names]
    return chosen or names[:6]


def build_report(inputs: list[Path], *, out: Path | None = None, plot: Path | None = None,
                 metrics: list[str] | None = None, all_metrics: bool = False) -> dict:
    """Read every result under `inputs`, group seeds into arms, write the markdown and the figure: for the
    named metrics, every metric with `all_metrics`, else the headline ones."""
    from pcclip_cli.core.io import write_text_atomic

    runs = [read_result(p) for p in find_results(inputs)]
    arms, varied, names = group_arms(runs)
    if metrics:
        missing = [m for m in metrics if m not in names]
        if missing:
            raise DataError(f"metric(s) {', '.join(missing)} not in the results; available: {', '.join(names)}")
        names = metrics
    elif not all_metrics:
        names = headline(names)
    table = markdown_table(arms, varied, names)
    if out:
        write_text_atomic(out, table)
    if plot:
        plot_arms(arms, varied, names, plot)
    return {
        "runs": len(runs),
        "arms": [{"settings": a.settings, "seeds": len(a.runs), "metrics": a.metrics, "errors": a.errors,
                  "files": [str(r.path) for r in a.runs]} for a in arms],
        "varied": varied,
        "metrics": names,
        "markdown": table,
        "out": str(out) if out else None,
        "plot": str(plot) if plot else None,
    }


def plot_attribute_frequencies(sources: list[dict], out: Path) -> None:
    """Figure 4 of EX2, side by side: per attribute category, the share of each source's informative
    descriptions that name it (visual categories first), one bar per source."""
    from .description_verdict import CATEGORIES, VISUAL

    try:
        import matplotlib
    except ImportError:
        raise PcclipError("--plot needs matplotlib: pip install 'pcclip[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcclip_cli.core.io import atomic_path

    n = len(sources)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(CATEGORIES) + 0.4 * n), 3.8), layout="constrained")
    for k, src in enumerate(sources):
        shares = [100 * (src["attribute_shares"].get(c) or 0.0) for c in CATEGORIES]
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(CATEGORIES))]
        ax.bar(xs, shares, width=width, label=f"{src['name']} ({src['informative']} informative)")
    ax.axvline(len(VISUAL) - 0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(CATEGORIES)))
    ax.set_xticklabels(CATEGORIES, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("% of informative descriptions")
    ax.set_title("attributes named (visual | non-visual)", fontsize=10)
    ax.legend(fontsize=7)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
