"""`eval`: every evaluation (rank, classify with comparative prompting and descriptions, distance) in one call.

The world suite (`--suite shapes`) needs nothing but the model: it builds (or reuses) the default shapes world, or
takes the world given with --world (shapes or produce), and generates its comparatives and descriptions with the
deterministic `template` LLM. Its task files and class sets are the world's own: world.json lists them (or its
tasks/*.toml and classes/*.jsonl are taken); a shapes world keeps its fixed SHAPES_TASKS and SHAPES_CLASS_SETS.
The paper suite runs the task files in pcclip_cli/paper_tasks (examples/tasks) and the classification datasets
that are present under --data-root, skipping the others, and sets the paper's own figures beside its numbers
(paper_figures.py).
Both add the embedding metrics of metrics.py: zero-shot top-k, a linear probe, and alignment, uniformity and
CLIPScore over image-caption pairs.
"""

from __future__ import annotations

import dataclasses
import enum
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.paths import PACKAGE_DIR
from pcclip_cli.data.world_contents import SHAPES_CLASS_SETS, SHAPES_TASKS, WorldSuite, world_suite

# Bare attribute words the suite orders the test images by, with each size's rank for that word.
ORDERINGS = (("larger", {"small": 0, "medium": 1, "large": 2}), ("bigger", {"small": 0, "medium": 1, "large": 2}),
             ("smaller", {"small": 2, "medium": 1, "large": 0}))
PAPER_DATASETS = ("cifar100", "flowers102", "cub", "eurosat", "sun397")
# Shipped inside the package so an installed wheel runs the paper suite; examples/tasks links here.
PAPER_TASKS_DIR = PACKAGE_DIR / "paper_tasks"


class Suite(str, enum.Enum):
    shapes = "shapes"
    paper = "paper"


@dataclass
class SuiteOptions:
    suite: Suite = Suite.shapes
    world: str | None = None  # shapes: an existing world directory; default $PCCLIP_HOME/worlds/shapes-default
    data_root: str | None = None  # paper: where the datasets live
    tasks_dir: str | None = None  # paper: task files; default the shipped pcclip_cli/paper_tasks
    seeds: int = 5  # rank benchmark seeds
    pairs: int = 100  # rank benchmark pairs per seed
    seed: int = 0  # first seed: the same seed gives the same numbers
    alpha: float = 0.9  # Eq. 3
    top_k: int = 3  # confused pairs to compare
    llm: str | None = None  # comparatives and descriptions; shapes default "template", paper default none
    descriptions: int = 4  # candidate descriptions generated per class (shapes)
    keep: int = 2  # descriptions kept per class by the EX2-style selection
    linear_probe: bool | None = None  # default: on for shapes (seconds), off for paper (embeds train splits)
    probe_val_fraction: float = 0.25  # share of each class's train images that chooses the probe's C

    def __post_init__(self):
        from pcclip_cli.data.tasks import check_seeds

        self.suite = Suite(self.suite)
        if self.linear_probe is None:
            self.linear_probe = self.suite == Suite.shapes
        if not 0.0 < self.probe_val_fraction < 1.0:
            raise PcclipError(f"--probe-val-fraction must be between 0 and 1, got {self.probe_val_fraction}")
        check_seeds(self.seeds, self.pairs)
        if not 0.0 <= self.alpha <= 1.0:
            raise PcclipError(f"--alpha must be in [0, 1], got {self.alpha}")
        if self.top_k < 1:
            raise PcclipError(f"--top-k must be at least 1, got {self.top_k}")
        if not 1 <= self.keep <= self.descriptions:
            raise PcclipError(f"--keep must be between 1 and --descriptions ({self.descriptions}), got {self.keep}")
        if self.suite == Suite.paper and not self.data_root:
            raise PcclipError("--suite paper reads the datasets from --data-root DIR")
        if self.suite == Suite.shapes and self.data_root:
            raise PcclipError("--data-root is for --suite paper; the shapes suite uses --world")


@dataclass
class SuiteResult:
    """Every number of one `pcclip eval` run; `to_dict()` is the JSON it prints and writes (docs/evaluation.md).

    The parts are the JSON documents of the evaluations they come from; `summary` flattens the headline numbers.
    """

    suite: str
    model: str
    fingerprint: str
    settings: dict
    task_files: dict  # task name -> {"file", "sha256"}
    rank: list[dict]
    classify: dict  # class set -> zero-shot, comparative prompting, descriptions, linear probe
    distance: dict
    geometry: dict  # alignment, uniformity and CLIPScore over image-caption pairs, or why they were skipped
    summary: dict = dataclasses.field(default_factory=dict)
    world: dict | None = None  # world suite: the world evaluated on (path, kind, config, images, splits)
    ordering: list[dict] | None = None  # shapes: concordance of the ordering by each attribute word
    skipped: list[dict] | None = None  # paper: the tasks and datasets that are absent
    paper: dict | None = None  # paper: the paper's figures beside this run's

    _ORDER = ("suite", "model", "fingerprint", "settings", "world", "task_files", "rank", "ordering", "classify",
              "distance", "geometry", "skipped", "summary", "paper")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self._ORDER if getattr(self, k) is not None}


def run_suite(model, options: SuiteOptions, *, device: str | None = None, progress=None, warn=None) -> SuiteResult:
    """Run the whole suite for one model and return every number (see docs/evaluation.md). A SPEC `model` and
    the suite's LLM load on `device` (None: auto)."""
    if options.suite == Suite.shapes:
        return _shapes_suite(model, options, device, progress, warn)
    return _paper_suite(model, options, device, progress, warn)


# ---------------------------------------------------------------------------------------------------------------


def _world(options: SuiteOptions) -> WorldSuite:
    if options.world:
        return world_suite(options.world)
    from pcclip_cli.data.shapes import build_world, default_world_dir

    summary = build_world(default_world_dir())
    return WorldSuite(Path(summary["path"]), summary, "shapes", SHAPES_TASKS, SHAPES_CLASS_SETS)


def _task_hashes(paths: list[Path]) -> dict:
    from pcclip_cli.core.io import sha256_file

    return {p.stem: {"file": str(p), "sha256": sha256_file(p)} for p in paths}


def _shapes_suite(model, options: SuiteOptions, device, progress, warn) -> SuiteResult:
    from pcclip_cli.data.datasets.base import load_dataset
    from pcclip_cli.models import clip_for

    from .ranking import order_concordance, run_rank_task

    ws = _world(options)
    root, world = ws.root, ws.meta
    clip = clip_for(model, device)
    task_paths = [root / "tasks" / f"{t}.toml" for t in ws.tasks]
    rank = [run_rank_task(clip, p, seeds=options.seeds, pairs=options.pairs, seed=options.seed, progress=progress)
            for p in task_paths]
    captions = load_dataset(root / "captions.jsonl")
    singles = [it for it in captions.in_split("test") if it.value("count") == 1]
    # Several words for one attribute: a finetune may learn its comparatives' wording and not the others'.
    sized = [it for it in singles if it.value("size") in ORDERINGS[0][1]]
    ordering = [order_concordance(clip, sized, word, "size", order, progress=progress)
                for word, order in ORDERINGS] if len(sized) >= 2 else []
    classify_results, distances = {}, {}
    llm = options.llm or "template"
    for name in ws.class_sets:
        manifest = root / "classes" / f"{name}.jsonl"
        classify_results[name], distance = _classify_set(clip, manifest, name, llm, options, device, progress,
                                                         warn)
        if distance:
            distances[name] = distance
    geometry = caption_geometry(clip, root / "captions.jsonl", "test", progress=progress, warn=warn)
    out = {
        "suite": "shapes",
        "model": clip.spec,
        "fingerprint": clip.fingerprint,
        "settings": {"seed": options.seed, "seeds": options.seeds, "pairs": options.pairs, "alpha": options.alpha,
                     "top_k": options.top_k, "llm": llm, "descriptions": options.descriptions, "keep": options.keep,
                     "linear_probe": options.linear_probe, "probe_val_fraction": options.probe_val_fraction},
        "world": {"path": str(root), "kind": ws.kind, "config": world.get("config"), "images": world.get("images"),
                  "splits": world.get("splits")},
        "task_files": _task_hashes(task_paths),
        "rank": rank,
        "ordering": ordering,
        "classify": classify_results,
        "distance": distances,
        "geometry": geometry,
    }
    out["summary"] = summarise(out)
    return SuiteResult(**out)


def caption_geometry(clip, captions_path: Path, split: str | None, *, progress=None, warn=None) -> dict:
    """Alignment, uniformity and CLIPScore of the image-caption pairs of a captions file (one split of it)."""
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.data.records import read_captions

    from .metrics import caption_metrics

    records = read_captions(captions_path)
    if split is not None and any(r.split for r in records):
        records = [r for r in records if r.split == split]
    else:
        split = None  # a captions file without splits (CUB's test-image captions) is used whole
    if len(records) < 2:
        return {"captions": str(captions_path), "split": split,
                "skipped": f"{len(records)} image-caption pair(s) in split {split!r}; the metrics need two or more"}
    images = embed_images(clip, [r.path for r in records], progress=progress, warn=warn).vectors
    texts = clip.encode_texts([r.caption for r in records])
    return {"captions": str(captions_path), "split": split, **caption_metrics(images, texts)}


def _probe(clip, ds, options: SuiteOptions, progress, warn) -> dict:
    """The linear probe on a class set, or the reason it cannot run there."""
    from .linear_probe import linear_probe_dataset

    try:
        return linear_probe_dataset(clip, ds, split="test", train_split="train",
                                    val_fraction=options.probe_val_fraction, seed=options.seed, progress=progress,
                                    warn=warn)
    except DataError as exc:
        if warn:
            warn(f"linear probe on {ds.source} skipped: {exc}")
        return {"skipped": str(exc)}


def _classify_set(clip, manifest: Path, name: str, llm: str, options: SuiteOptions, device, progress, warn):
    """Zero-shot with the template, comparative prompting on its top-k confused pairs, and distance on those
    comparatives; then descriptions with EX2-style selection (scored on train, evaluated on test)."""
    from pcclip_cli.core.io import write_jsonl_atomic
    from pcclip_cli.data.datasets.base import load_dataset

    from .classification import DEFAULT_TEMPLATE, ClassifyOptions, classify
    from .distance import distances_for

    ds = load_dataset(manifest)
    common = dict(top_k=options.top_k, alpha=options.alpha, split="test")
    with tempfile.TemporaryDirectory(prefix="pcclip-suite-") as tmp:
        result = classify(clip, ds, ClassifyOptions(**common, comparative="auto", llm=llm), device=device,
                          progress=progress, warn=warn)
        desc_file = Path(tmp) / "descriptions.jsonl"
        write_jsonl_atomic(desc_file, _descriptions(llm, ds.classes, options.descriptions, device))
        described = classify(clip, ds, ClassifyOptions(**common, descriptions=str(desc_file),
                                                       select_descriptions=options.keep, score_split="train"),
                             progress=progress, warn=warn)
    result["descriptions"] = described["descriptions"]
    selection = described["selection"]
    # Keep the report short: the chosen texts per class, without every reward.
    selection["selected"] = {c: [d["text"] for d in v] for c, v in selection["selected"].items()}
    result["selection"] = selection
    if options.linear_probe:
        result["linear_probe"] = _probe(clip, ds, options, progress, warn)
    records = result["comparative"]["records"]
    distance = distances_for(clip, records, DEFAULT_TEMPLATE) if records else None
    return result, distance


def _descriptions(llm: str, classes: list[str], n: int, device: str | None) -> list[dict]:
    from pcclip_cli.generation.run import generate_descriptions

    recs = generate_descriptions(llm, classes, n, device=device)
    return [{"kind": "descriptions", "first": r["first"], "text": r["text"]} for r in recs if r.get("text")]


# ---------------------------------------------------------------------------------------------------------------


def _paper_suite(model, options: SuiteOptions, device, progress, warn) -> SuiteResult:
    from pcclip_cli.data.datasets.base import load_dataset
    from pcclip_cli.data.tasks import load_task
    from pcclip_cli.models import clip_for

    from .classification import DEFAULT_TEMPLATE, ClassifyOptions, classify
    from .distance import distances_for
    from .ranking import run_rank_task

    tasks_dir = Path(options.tasks_dir).expanduser() if options.tasks_dir else PAPER_TASKS_DIR
    task_paths = sorted(tasks_dir.glob("*.toml"))
    if not task_paths:
        raise DataError(f"no task files (*.toml) in {tasks_dir}; pass --tasks DIR")
    runnable, skipped_tasks = [], []
    for p in task_paths:
        try:
            load_task(p, options.data_root)
            runnable.append(p)
        except DataError as exc:
            skipped_tasks.append({"name": p.stem, "file": str(p), "skipped": str(exc)})
    datasets, skipped_sets = {}, []
    for name in PAPER_DATASETS:
        try:
            datasets[name] = load_dataset(name, options.data_root)
        except DataError as exc:
            skipped_sets.append({"dataset": name, "skipped": str(exc)})
    if not runnable and not datasets:
        names = ", ".join(p.stem for p in task_paths)
        raise DataError(f"none of the paper's datasets was found under {options.data_root}, so none of its tasks "
                        f"({names}) can run: "
                        + "; ".join(s["skipped"] for s in skipped_sets[:2]) + " (see docs/evaluation.md)")
    for s in skipped_tasks + skipped_sets:
        if warn:
            warn(f"skipping {s.get('name') or s.get('dataset')}: {s['skipped']}")
    clip = clip_for(model, device)
    rank = [run_rank_task(clip, p, seeds=options.seeds, pairs=options.pairs, seed=options.seed,
                          data_root=options.data_root, progress=progress) for p in runnable]
    classify_results, distances = {}, {}
    for name, ds in datasets.items():
        opts = ClassifyOptions(top_k=options.top_k, alpha=options.alpha,
                               comparative="auto" if options.llm else None, llm=options.llm)
        classify_results[name] = classify(clip, ds, opts, device=device, progress=progress, warn=warn)
        if options.linear_probe:
            classify_results[name]["linear_probe"] = _probe(clip, ds, options, progress, warn)
        records = (classify_results[name].get("comparative") or {}).get("records")
        if records:
            distances[name] = distances_for(clip, records, DEFAULT_TEMPLATE)
    cub_captions = Path(options.data_root).expanduser() / "cub" / "captions.jsonl"
    if cub_captions.exists():
        geometry = caption_geometry(clip, cub_captions, "test", progress=progress, warn=warn)
    else:
        geometry = {"skipped": f"no image-caption pairs: {cub_captions} (the CUB captions of "
                               "examples/tasks/cub-differences.toml) is absent"}
    out = {
        "suite": "paper",
        "model": clip.spec,
        "fingerprint": clip.fingerprint,
        "settings": {"seed": options.seed, "seeds": options.seeds, "pairs": options.pairs, "alpha": options.alpha,
                     "top_k": options.top_k, "llm": options.llm, "data_root": str(options.data_root),
                     "linear_probe": options.linear_probe, "probe_val_fraction": options.probe_val_fraction},
        "task_files": _task_hashes(runnable),
        "rank": rank,
        "classify": classify_results,
        "distance": distances,
        "geometry": geometry,
        "skipped": skipped_tasks + skipped_sets,
    }
    out["summary"] = summarise(out)
    from .paper_figures import compare_with_paper

    out["paper"] = compare_with_paper(out)  # the paper's Tables 1, 2, 3 and 6 beside this run's numbers
    return SuiteResult(**out)


def summarise(result: dict) -> dict:
    """The headline numbers, flat, for ablation tables (`pcclip report` and friends)."""
    s: dict = {}
    for r in result.get("rank", []):
        s[f"rank/{r['task']['name']}"] = r["accuracy"]["mean"]
        s[f"rank/{r['task']['name']}/se"] = r["accuracy"]["se"]
        if r.get("paraphrases"):  # the headline is the paraphrase mean; the task's own sentence beside it
            s[f"rank/{r['task']['name']}/sentence"] = r["sentence_accuracy"]["mean"]
            s[f"rank/{r['task']['name']}/sentence/se"] = r["sentence_accuracy"]["se"]
    for o in result.get("ordering", []):
        s[f"ordering/{o['attribute']}"] = o["concordance"]
    for name, c in result.get("classify", {}).items():
        s[f"zero_shot/{name}"] = c["zero_shot"]["accuracy"]  # top-1
        for k, v in c["zero_shot"].get("topk", {}).items():
            if k != "top1":
                s[f"zero_shot/{name}/{k}"] = v
        if "top1" in c.get("linear_probe", {}):
            s[f"linear_probe/{name}"] = c["linear_probe"]["top1"]
        if c.get("comparative") and "skipped" not in c["comparative"]:
            comp = c["comparative"]
            s[f"comparative/{name}/before"] = comp["before"]["accuracy"]
            s[f"comparative/{name}/after"] = comp["after"]["accuracy"]
            s[f"comparative/{name}/touched_before"] = comp["before"]["touched_accuracy"]
            s[f"comparative/{name}/touched_after"] = comp["after"]["touched_accuracy"]
        if "selection" in c:
            s[f"descriptions/{name}/all"] = c["selection"]["all_descriptions_accuracy"]
            s[f"descriptions/{name}/selected"] = c["selection"]["selected_accuracy"]
            s[f"descriptions/{name}/gain_over_template"] = c["selection"]["gain_over_template"]
    for name, d in result.get("distance", {}).items():
        s[f"distance/{name}/comparison"] = d["mean"]["comparison"]
        s[f"distance/{name}/reverse"] = d["mean"]["reverse"]
    geometry = result.get("geometry") or {}
    if "skipped" not in geometry and geometry:
        for key in ("alignment", "uniformity_image", "uniformity_text"):
            s[f"geometry/{key}"] = geometry[key]
        s["clipscore"] = geometry["clipscore"]
    return s
