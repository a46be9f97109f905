"""The whole paper on an embedded world in one call: world, base model, comparatives, filter, PC-CLIP, evaluation.

    pcclip demo --out runs/demo [--llm smollm2-135m]
    pcclip demo --world produce          # the fine-grained produce world, into runs/demo-produce

Every artifact lands in the output directory, and each step reuses what an earlier run finished: the world and
the index are kept, generation resumes, training resumes from its last checkpoint, evaluations are cached by
the model's fingerprint and settings. The result (`demo.json`) puts the base model against PC-CLIP in the
spirit of the paper's Tables 1, 2, 3 and 6: on the shapes world with attribute retrieval; on the produce world
(where the base model confuses classes) with top-1/3/5, comparative prompting on each model's confused pairs, the
distance on them, class descriptions and the world's difference tasks (evaluation/finegrained.py).
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .core.errors import PcclipError
from .core.io import write_json_atomic

TEMPLATE_PAIRS = 5_000
LLM_PAIRS = 120  # a real LLM on 2 CPU cores writes about one comparative a second
RETRIEVAL_WORDS = ("larger", "smaller", "red", "blue", "yellow")


class DemoWorld(str, enum.Enum):
    """The embedded world the demo runs on."""

    shapes = "shapes"  # shapes and colours: difference tasks, ordering, retrieval (zero-shot is solved)
    produce = "produce"  # 26 fruit and vegetables the base confuses: Tables 2, 3 and 6 and descriptions


# Per world: the output directory and the base model when not given (the base's own world, so its test split is
# held out from both trainings).
WORLD_DEFAULTS = {DemoWorld.shapes: {"out": "runs/demo", "base": "shapes-clip"},
                  DemoWorld.produce: {"out": "runs/demo-produce", "base": "produce-clip"}}


@dataclass
class DemoConfig:
    out: str | None = None  # default runs/demo (shapes) or runs/demo-produce (produce)
    world: DemoWorld = DemoWorld.shapes
    llm: str = "template"  # comparatives for training: template (oracle), smollm2-135m, gemma3-270m, ...
    base: str | None = None  # the model PC-CLIP starts from; default shapes-clip (shapes) or produce-clip (produce)
    world_images: int = 2000  # the base model's own world (same seed), so its test split is held out
    pairs: int | None = None  # comparatives to generate; default 5,000 (template) or 120 (a real LLM)
    epochs: int = 1
    batch_size: int = 128
    lr: float = 2e-5  # a pretrained sentence encoder tunes gently (docs/training.md); the paper's 1e-8 suits ViT-L-14
    weight_average: float | None = None  # WiSE-FT alpha for the final PC-CLIP weights (None: the raw finetune)
    seeds: int = 5  # rank benchmark seeds
    eval_pairs: int = 100  # rank benchmark pairs per seed
    seed: int = 0

    def __post_init__(self):
        try:
            self.world = DemoWorld(self.world)
        except ValueError:
            raise PcclipError(f"--world must be one of {', '.join(w.value for w in DemoWorld)}, got "
                              f"{self.world!r}") from None
        defaults = WORLD_DEFAULTS[self.world]
        self.out = self.out if self.out is not None else defaults["out"]
        self.base = self.base if self.base is not None else defaults["base"]
        if self.world_images < 20:
            raise PcclipError(f"--world-images must be at least 20, got {self.world_images}")
        if self.pairs is not None and self.pairs < 2:
            raise PcclipError(f"--pairs must be at least 2, got {self.pairs}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise PcclipError("--epochs must be >= 1, --batch-size >= 2 and --lr > 0")

    @property
    def resolved_pairs(self) -> int:
        if self.pairs is not None:
            return self.pairs
        return TEMPLATE_PAIRS if self.llm == "template" else LLM_PAIRS


class Steps:
    """Runs the numbered steps, timing each and telling the caller what is happening."""

    def __init__(self, progress, total: int):
        self.progress, self.total, self.done, self.log = progress, total, 0, []

    def start(self, name: str):
        self.name, self.t0 = name, time.perf_counter()
        if self.progress:
            self.progress(self.done, self.total, step=name)

    def sub(self, done, total=None, **fields):
        if self.progress:
            self.progress(self.done, self.total, step=self.name, at=f"{done}/{total or '?'}")

    def finish(self, **info):
        self.done += 1
        self.log.append({"step": self.name, "seconds": round(time.perf_counter() - self.t0, 2), **info})
        if self.progress:
            self.progress(self.done, self.total, step=self.name)


def _cached_eval(path: Path, clip, settings: dict, run):
    """An evaluation is reused when the model's weights and the settings are the same as when it was saved."""
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except json.JSONDecodeError:
            saved = {}
        if saved.get("fingerprint") == clip.fingerprint and saved.get("demo_settings") == settings:
            return saved, True
    result = run()
    result["demo_settings"] = settings
    write_json_atomic(path, result)
    return result, False


def _retrieval(out: Path, world: Path, base_clip, pc_spec: str, device: str | None, progress) -> dict:
    """Attribute retrieval over the test images: one index (PC-CLIP shares the base image tower)."""
    from .models import load_clip
    from .retrieval import attribute_precision, build_index, load_index, model_for_index

    index_dir = out / "index"
    if not (index_dir / "manifest.json").exists():
        build_index([world / "captions-test.jsonl"], index_dir, model=base_clip.spec, device=device,
                    progress=progress)
    index = load_index(index_dir, device=device)
    result = {"index": str(index_dir), "images": index.count, "words": list(RETRIEVAL_WORDS), "k": 10}
    for name, spec in (("base", base_clip.spec), ("pc", pc_spec)):
        clip = model_for_index(index, spec if name == "pc" else None, device)
        result[name] = attribute_precision(index, clip, list(RETRIEVAL_WORDS), 10)
    # A text-scope finetune reads the base model's index: its image tower is the base's.
    pc_clip = load_clip(pc_spec, device)
    result["shared_image_tower"] = pc_clip.image_fingerprint == base_clip.image_fingerprint
    return result


def _check_out(out: Path, world: DemoWorld) -> None:
    """A demo directory holds one world's demo: another world's is refused before anything is written."""
    saved = out / "world" / "world.json"
    if not saved.exists():
        return
    try:
        kind = json.loads(saved.read_text()).get("world", DemoWorld.shapes.value)
    except (json.JSONDecodeError, AttributeError):
        return  # the world step reports a damaged world
    if kind != world.value:
        raise PcclipError(f"--out {out} holds a {kind} demo; choose another --out for --world {world.value}")


def _build_world(cfg: DemoConfig, world: Path, steps: Steps) -> dict:
    steps.start(f"building the {cfg.world.value} world")
    if cfg.world is DemoWorld.produce:
        from .data.produce import ProduceConfig, build_world

        summary = build_world(world, ProduceConfig(images=cfg.world_images, seed=cfg.seed), progress=steps.sub)
    else:
        from .data.shapes import WorldConfig, build_world

        summary = build_world(world, WorldConfig(images=cfg.world_images, seed=cfg.seed), progress=steps.sub)
    steps.finish(reused=summary["reused"], images=summary["images"])
    return summary


def run_demo(cfg: DemoConfig, *, device: str | None = None, progress=None, warn=None) -> dict:
    """Run (or resume) the demo on `device` (None: auto); returns the comparison and writes OUT/demo.json."""
    from .clip.spec import SHAPES_MODELS
    from .filtering.rules import FilterConfig, filter_file
    from .finetune import train
    from .generation.run import GenerateConfig, prepare
    from .models import ensure_shapes_model, load_clip
    from .training import TrainConfig, run_info

    out = Path(cfg.out)
    _check_out(out, cfg.world)
    out.mkdir(parents=True, exist_ok=True)
    produce = cfg.world is DemoWorld.produce
    steps = Steps(progress, 7 if produce else 8)
    t_start = time.perf_counter()

    world = out / "world"
    _build_world(cfg, world, steps)

    steps.start("getting the base model")
    if cfg.base in SHAPES_MODELS:
        ensure_shapes_model(cfg.base, progress=steps.sub, device=device)
    base = load_clip(cfg.base, device)
    steps.finish(model=base.spec, zero_shot_at_training=base.info.get("metrics", {}).get("zero_shot_test"))

    steps.start(f"generating comparatives ({cfg.llm})")
    comparatives = out / "comparatives.jsonl"
    # A real LLM gets the shapes world's few-shot prompt there, the default (COCO) one on produce.
    prompt = None if cfg.llm == "template" or produce else "shapes"
    job = prepare(GenerateConfig(llm=cfg.llm, out=comparatives, captions=world / "captions-train.jsonl",
                                 pairs=cfg.resolved_pairs, seed=cfg.seed, prompt=prompt), device=device)
    gen = job.run(progress=steps.sub)
    steps.finish(generated=gen.generated, skipped=gen.skipped, llm_calls=gen.llm_calls)

    steps.start("filtering")
    clean = out / "comparatives.clean.jsonl"
    if clean.exists() and clean.stat().st_mtime >= comparatives.stat().st_mtime:
        filtered = json.loads((out / "filter-report.json").read_text())
        steps.finish(reused=True, kept=filtered.get("kept"))
    else:
        # The produce world ships its rules: the defaults, with grounded checks in its own words.
        rules = world / "filter-pairs.toml" if produce else None
        filtered = filter_file(comparatives, clean, FilterConfig(rules=rules))
        write_json_atomic(out / "filter-report.json", filtered)
        steps.finish(reused=False, kept=filtered.get("kept"))

    steps.start("training PC-CLIP (text scope)")
    run_dir = out / "pc-clip"
    tcfg = TrainConfig(model=cfg.base, out=str(run_dir), objective="pc", comparatives=str(clean),
                       captions=str(world / "captions.jsonl"), split="train", scope="text", lr=cfg.lr,
                       epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                       weight_average=cfg.weight_average)
    info = run_info(run_dir) if run_dir.exists() else {"complete": False, "latest_checkpoint": None}
    if info["complete"]:
        steps.finish(reused=True)
    else:
        result = train(tcfg, resume=bool(info["latest_checkpoint"]), device=device, progress=steps.sub,
                       warn=warn)
        steps.finish(reused=False, seconds_training=result.seconds, steps=result.steps)
    pc_spec = str(run_dir)
    pc = load_clip(pc_spec, device)

    evaluate = _evaluate_produce if produce else _evaluate_shapes
    evals = {}
    for name, clip in (("base", base), ("pc", pc)):
        steps.start(f"evaluating {'PC-CLIP' if name == 'pc' else 'the base model'}")
        evals[name], reused = evaluate(cfg, out, world, name, clip, device, steps, warn)
        steps.finish(reused=reused)

    result = {
        "out": str(out),
        "world": cfg.world.value,
        "config": {**asdict(cfg), "world": cfg.world.value},
        "base": base.spec,
        "pc_clip": pc_spec,
        # `total` is every comparative the file holds for this plan; `generated` and `skipped` split it into
        # those this run wrote and those an earlier run had written.
        "comparatives": {"file": str(clean), "total": gen.total, "generated": gen.generated,
                         "skipped": gen.skipped, "kept": filtered.get("kept"), "llm": cfg.llm},
    }
    if produce:
        result["table"] = comparison_table(evals["base"]["summary"], evals["pc"]["summary"], rows=PRODUCE_ROWS)
        result["models"] = {name: produce_headline(e) for name, e in evals.items()}
    else:
        steps.start("attribute retrieval")
        retrieval = _retrieval(out, world, base, pc_spec, device, steps.sub)
        steps.finish()
        result["table"] = comparison_table(evals["base"]["summary"], evals["pc"]["summary"], retrieval)
        result["retrieval"] = retrieval
    result["steps"] = steps.log
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json_atomic(out / "demo.json", result)
    return result


def _evaluate_shapes(cfg: DemoConfig, out: Path, world: Path, name: str, clip, device, steps: Steps, warn):
    from .evaluation.suite import SuiteOptions, run_suite

    settings = {"seeds": cfg.seeds, "pairs": cfg.eval_pairs, "seed": cfg.seed, "world": str(world)}
    opts = SuiteOptions(world=str(world), seeds=cfg.seeds, pairs=cfg.eval_pairs, seed=cfg.seed, llm="template")
    return _cached_eval(out / f"eval-{name}.json", clip, settings,
                        lambda: run_suite(clip, opts, device=device, progress=steps.sub, warn=warn).to_dict())


def _evaluate_produce(cfg: DemoConfig, out: Path, world: Path, name: str, clip, device, steps: Steps, warn):
    """Tables 2, 3 and 6, descriptions and the tasks, with class texts from the demo's LLM (the oracle by
    default), cached like the shapes suite."""
    from .evaluation.finegrained import FinegrainedOptions, evaluate_finegrained

    opts = FinegrainedOptions(world=str(world), texts=str(out / "class-texts"), name=name, llm=cfg.llm,
                              seeds=cfg.seeds, pairs=cfg.eval_pairs, seed=cfg.seed)
    settings = {**opts.settings(), "world": str(world)}
    return _cached_eval(out / f"eval-{name}.json", clip, settings,
                        lambda: evaluate_finegrained(clip, opts, device=device, progress=steps.sub,
                                                             warn=warn).to_dict())


def produce_headline(evaluation: dict) -> dict:
    """One model's numbers for demo.json, without the bulky parts (the full result is in eval-NAME.json)."""
    comparative = {k: v for k, v in evaluation["comparative"].items() if k != "records"}
    comparative["texts"] = [f"{r['first']} vs {r['second']}: {r['text']}"
                            for r in evaluation["comparative"].get("records", [])]
    return {"model": evaluation["model"], "zero_shot": evaluation["zero_shot"], "comparative": comparative,
            "distance": evaluation["distance"], "descriptions": evaluation["descriptions"],
            "tasks": evaluation["tasks"], "class_texts": evaluation["class_texts"]}


# Rows of the final table: (paper table, label, summary key, better).
ROWS = [
    ("Table 1", "difference: size (held-out paraphrases)", "rank/shapes-size", "higher"),
    ("Table 1", "difference: size (the task's sentence)", "rank/shapes-size/sentence", "higher"),
    ("Table 1", "difference: colour (held-out paraphrases)", "rank/shapes-colour", "higher"),
    ("Table 1", "difference: colour (the task's sentence)", "rank/shapes-colour/sentence", "higher"),
    ("Table 1", "difference: attributes (held-out paraphrases)", "rank/shapes-attributes", "higher"),
    ("Table 1", "difference: count, 'more'/'fewer' (held-out paraphrases)", "rank/shapes-count", "higher"),
    ("Table 1", "ordering by 'larger'", "ordering/larger", "higher"),
    ("Table 2", "zero-shot: shape", "zero_shot/shape", "higher"),
    ("Table 2", "zero-shot: colour", "zero_shot/colour", "higher"),
    ("Table 2", "zero-shot: colour+shape", "zero_shot/colour_shape", "higher"),
    ("Table 3", "comparative prompting, touched classes: shape", "comparative/shape/touched_after", "higher"),
    ("Table 3", "comparative prompting, touched classes: colour+shape",
     "comparative/colour_shape/touched_after", "higher"),
    ("Table 6", "distance d(fA-fB, fA-B): shape", "distance/shape/comparison", "lower"),
    ("Table 6", "reverse d(fB-fA, fA-B): shape", "distance/shape/reverse", "higher"),
    ("extra", "linear probe: colour+shape", "linear_probe/colour_shape", "higher"),
    ("extra", "CLIPScore (test captions)", "clipscore", "higher"),
]


def _produce_rows() -> list[tuple[str, str, str, str]]:
    from .evaluation.finegrained import FinegrainedOptions, alpha_key

    rows = [("Table 2", f"zero-shot top-{k}", f"zero_shot/top{k}", "higher") for k in (1, 3, 5)]
    alphas = FinegrainedOptions.__dataclass_fields__["alphas"].default
    for i, alpha in enumerate(alphas):
        key = f"comparative/{alpha_key(alpha)}"
        paper = " (the paper's)" if i == 0 else ""
        rows += [("Table 3", f"comparative prompting gain, alpha {alpha:g}{paper}: all images", f"{key}/gain",
                  "higher"),
                 ("Table 3", f"comparative prompting gain, alpha {alpha:g}: touched classes", f"{key}/touched_gain",
                  "higher")]
    rows += [("Table 6", "distance d(fA-fB, fA-B), confused pairs", "distance/comparison", "lower"),
             ("Table 6", "reverse d(fB-fA, fA-B), confused pairs", "distance/reverse", "higher"),
             ("descr.", "zero-shot top-1, descriptions (template: top-1 above)", "descriptions/accuracy", "higher"),
             ("descr.", "descriptions' gain over the template", "descriptions/gain", "higher")]
    for task in ("size", "colour", "pattern"):
        rows += [("Table 1", f"difference: {task} (held-out paraphrases)", f"rank/produce-{task}", "higher"),
                 ("Table 1", f"difference: {task} (the task's sentence)", f"rank/produce-{task}/sentence", "higher")]
    return rows


PRODUCE_ROWS = _produce_rows()


def comparison_table(base: dict, pc: dict, retrieval: dict | None = None, rows: list | None = None) -> list[dict]:
    """Rows of base vs PC-CLIP for every headline metric both evaluations have (`rows`: the shapes ROWS)."""
    out = []
    for table, label, key, better in ROWS if rows is None else rows:
        if base.get(key) is None or pc.get(key) is None:
            continue
        row = {"table": table, "metric": label, "key": key, "better": better, "base": base[key], "pc": pc[key],
               "base_se": base.get(f"{key}/se"), "pc_se": pc.get(f"{key}/se")}
        if key.endswith("touched_after"):
            before = key.replace("touched_after", "touched_before")
            row["base_before"], row["pc_before"] = base.get(before), pc.get(before)
        out.append(row)
    if retrieval:
        for word in retrieval["words"]:
            out.append({"table": "retrieval", "metric": f"precision@10 '{word}'", "key": f"retrieval/{word}",
                         "better": "higher", "base": retrieval["base"][word], "pc": retrieval["pc"][word],
                         "base_se": None, "pc_se": None})
    return out
