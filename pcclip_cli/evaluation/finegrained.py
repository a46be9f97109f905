"""The paper's Tables 2, 3 and 6, class descriptions and the difference tasks for one model on the produce world.

What `pcclip demo --world produce` runs for the base model and for PC-CLIP (and examples/produce_tables.sh runs
command by command): zero-shot top-1/3/5 on class names, the model's most confused class pairs, comparative
prompting (Eq. 3) with class comparatives for those pairs (both ways round) at the paper's alpha and a sweep, the
distance on those pairs, descriptions against the template, and the world's difference tasks on held-out
paraphrases. The class texts are written by an LLM (the template oracle by default) and filtered with the world's
filter-classes.toml, so a text that states nothing checkable is counted and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from pcclip_cli.core.errors import PcclipError

CLASS_MANIFEST = "classes/produce.jsonl"
TASKS = ("size", "colour", "pattern")


@dataclass
class FinegrainedOptions:
    world: str  # a produce world directory (`pcclip data produce`)
    texts: str  # folder for the class texts; a later run reuses the descriptions written there
    name: str = "model"  # names this model's comparatives in `texts` (each model has its own confused pairs)
    llm: str = "template"  # writes the class comparatives and descriptions (template: the world's oracle)
    top_k: int = 3  # confused pairs that get comparatives (the paper's 3)
    alphas: tuple[float, ...] = (0.9, 0.8, 0.7, 0.5)  # Eq. 3 weights; the first is the paper's
    descriptions: int = 4  # descriptions per class (CuPL-style)
    seeds: int = 5  # difference tasks: seeds
    pairs: int = 100  # difference tasks: pairs per seed
    seed: int = 0

    def __post_init__(self):
        from pcclip_cli.data.tasks import check_seeds

        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas or any(not 0.0 <= a <= 1.0 for a in self.alphas):
            raise PcclipError(f"alphas must be in [0, 1], got {list(self.alphas)}")
        if self.top_k < 1 or self.descriptions < 1:
            raise PcclipError("top_k and descriptions must be at least 1")
        check_seeds(self.seeds, self.pairs)

    def settings(self) -> dict:
        """The settings that decide the numbers, as JSON would hold them (a cached result is compared with them)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("texts", "name")}
        return {**out, "alphas": list(self.alphas)}


@dataclass
class FinegrainedResult:
    """One model's numbers; `summary` flattens the headline ones (`pcclip report` reads it, `/se` its errors)."""

    model: str
    fingerprint: str
    settings: dict
    zero_shot: dict  # top-1/3/5, images, the confused pairs
    comparative: dict  # the records used and, per alpha, before / after / gain / the paired change
    descriptions: dict  # template vs descriptions accuracy
    distance: dict  # mean ± SE of the comparison and reverse distances on the confused pairs
    tasks: dict  # task name -> accuracy on paraphrases and on the task's sentence (mean ± SE over seeds)
    class_texts: dict  # the files and what the filter kept
    summary: dict

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def alpha_key(alpha: float) -> str:
    return f"a{alpha:g}"


def _filtered(raw: Path, clean: Path, rules: Path) -> dict:
    from pcclip_cli.filtering.rules import FilterConfig, filter_file

    report = filter_file(raw, clean, FilterConfig(rules=rules))
    return {"raw": str(raw), "file": str(clean), "records": report["records"], "kept": report["kept"],
            "dropped": {r["rule"]: r["dropped"] for r in report["rules"] if r["dropped"]}}


def _descriptions(opts: FinegrainedOptions, classes: list[str], device, progress) -> dict:
    """`descriptions` per class from the LLM, appended to a resumable file shared by every model, then filtered."""
    from pcclip_cli.generation.run import generate_descriptions

    texts, world = Path(opts.texts), Path(opts.world)
    raw = texts / f"descriptions-{opts.llm}.jsonl"
    # Four different descriptions from a real LLM need sampling; the oracle's are different by construction.
    temperature = 0.0 if opts.llm == "template" else 0.7
    generate_descriptions(opts.llm, classes, opts.descriptions, out=raw, temperature=temperature, seed=opts.seed,
                          device=device, progress=progress)
    return _filtered(raw, texts / f"descriptions-{opts.llm}.clean.jsonl", world / "filter-classes.toml")


def _class_comparatives(opts: FinegrainedOptions, confused: list[dict], device, progress) -> dict:
    """Comparatives for the confused pairs, both ways round, written whole (a model's own pairs only) and filtered."""
    from pcclip_cli.core.io import write_jsonl_atomic
    from pcclip_cli.data.datasets.base import display_name
    from pcclip_cli.generation.run import generate_class_comparatives

    texts, world = Path(opts.texts), Path(opts.world)
    pairs = []
    for c in confused:
        a, b = display_name(c["first"]), display_name(c["second"])
        pairs += [(a, b), (b, a)]
    records = generate_class_comparatives(opts.llm, pairs, seed=opts.seed, device=device, progress=progress)
    raw = texts / f"classes-{opts.name}-{opts.llm}.jsonl"
    write_jsonl_atomic(raw, records)
    return _filtered(raw, texts / f"classes-{opts.name}-{opts.llm}.clean.jsonl", world / "filter-classes.toml")


def _comparative_block(result: dict) -> dict:
    c = result["comparative"]
    return {"before": c["before"]["accuracy"], "after": c["after"]["accuracy"], "gain": c["gain"],
            "touched_before": c["before"]["touched_accuracy"], "touched_after": c["after"]["touched_accuracy"],
            "touched_gain": c.get("touched_gain"), "paired": c["paired"]}


def evaluate_finegrained(model, options: FinegrainedOptions, *, device: str | None = None, progress=None,
                         warn=None) -> FinegrainedResult:
    """Every number of the produce world's tables for one model (a SPEC, loaded on `device`, or a LoadedClip)."""
    from pcclip_cli.data.comparatives import read_comparatives
    from pcclip_cli.models import clip_for

    from .classification import ClassifyOptions, classify
    from .distance import distance
    from .ranking import run_rank_task

    opts = options
    world = Path(opts.world)
    manifest = world / CLASS_MANIFEST
    if not manifest.exists():
        raise PcclipError(f"{world} is not a produce world (no {CLASS_MANIFEST}); build one with "
                          "`pcclip data produce`")
    Path(opts.texts).mkdir(parents=True, exist_ok=True)
    clip = clip_for(model, device)
    summary: dict = {}

    zs = classify(clip, manifest, ClassifyOptions(top_k=opts.top_k), progress=progress, warn=warn)
    topk = zs["zero_shot"]["topk"]
    confused = zs["zero_shot"]["top_confused"]
    zero_shot = {"images": zs["images"], "split": zs["split"], "template": zs["template"],
                 **{f"top{k}": topk[f"top{k}"] for k in (1, 3, 5)}, "confused": confused}
    summary.update({f"zero_shot/top{k}": topk[f"top{k}"] for k in (1, 3, 5)})

    desc_texts = _descriptions(opts, zs["classes"], device, progress)
    class_texts = {"descriptions": desc_texts}
    if desc_texts["kept"]:
        d = classify(clip, manifest, ClassifyOptions(descriptions=desc_texts["file"]), progress=progress,
                     warn=warn)["descriptions"]
        descriptions = {"per_class": opts.descriptions, "records": d["records"], "classes": d["classes_described"],
                        "template": d["template_accuracy"], "accuracy": d["accuracy"],
                        "gain": d["accuracy"] - d["template_accuracy"]}
        summary.update({"descriptions/template": descriptions["template"],
                        "descriptions/accuracy": descriptions["accuracy"], "descriptions/gain": descriptions["gain"]})
    else:
        descriptions = {"skipped": "the filter kept no description"}

    comparative: dict = {"pairs": [[c["first"], c["second"]] for c in confused], "paper_alpha": opts.alphas[0]}
    dist: dict = {}
    if not confused:
        comparative["skipped"] = dist["skipped"] = "the model confuses no class pair"
    else:
        cmp_texts = class_texts["comparatives"] = _class_comparatives(opts, confused, device, progress)
        if not cmp_texts["kept"]:
            comparative["skipped"] = dist["skipped"] = "the filter kept no class comparative"
    if "skipped" not in comparative:
        cmp_file = cmp_texts["file"]
        comparative["records"] = [{"first": c.first, "second": c.second, "text": c.text}
                                  for c in read_comparatives(cmp_file)]
        comparative["alphas"] = {}
        for alpha in opts.alphas:
            res = classify(clip, manifest, ClassifyOptions(comparative=cmp_file, alpha=alpha), progress=progress,
                           warn=warn)
            block = comparative["alphas"][alpha_key(alpha)] = {"alpha": alpha, **_comparative_block(res)}
            comparative.setdefault("touched", res["comparative"]["touched"])
            comparative.setdefault("touched_images", res["comparative"]["touched_images"])
            key = f"comparative/{alpha_key(alpha)}"
            summary.update({f"{key}/before": block["before"], f"{key}/after": block["after"],
                            f"{key}/gain": block["gain"], f"{key}/gain/se": block["paired"]["all"]["gain_se"],
                            f"{key}/touched_before": block["touched_before"],
                            f"{key}/touched_after": block["touched_after"],
                            f"{key}/touched_gain": block["touched_gain"],
                            f"{key}/touched_gain/se": block["paired"]["touched"]["gain_se"]})
        d = distance(clip, cmp_file, dataset=str(manifest))
        dist = {"n": d["n"], "comparison": d["mean"]["comparison"], "comparison_se": d["se"]["comparison"],
                "reverse": d["mean"]["reverse"], "reverse_se": d["se"]["reverse"]}
        summary.update({"distance/comparison": dist["comparison"], "distance/comparison/se": dist["comparison_se"],
                        "distance/reverse": dist["reverse"], "distance/reverse/se": dist["reverse_se"]})

    tasks = {}
    for name in TASKS:
        r = run_rank_task(clip, world / "tasks" / f"{name}.toml", seeds=opts.seeds, pairs=opts.pairs, seed=opts.seed,
                          progress=progress, warn=warn)
        task = r["task"]["name"]
        tasks[task] = {"paraphrases": r["accuracy"], "sentence": r["sentence_accuracy"], "pairs": r["n_pairs"],
                       "seeds": len(r["seeds"]), "per_paraphrase": [p["accuracy"]["mean"] for p in r["paraphrases"]]}
        summary.update({f"rank/{task}": r["accuracy"]["mean"], f"rank/{task}/se": r["accuracy"]["se"],
                        f"rank/{task}/sentence": r["sentence_accuracy"]["mean"],
                        f"rank/{task}/sentence/se": r["sentence_accuracy"]["se"]})

    return FinegrainedResult(model=clip.spec, fingerprint=clip.fingerprint, settings=opts.settings(),
                             zero_shot=zero_shot, comparative=comparative, descriptions=descriptions, distance=dist,
                             tasks=tasks, class_texts=class_texts, summary=summary)
