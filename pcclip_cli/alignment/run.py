"""Run an alignment: GRPO (TRL) on a transformers LLM with the EX2 reward, resumable from its last checkpoint.

GRPO rather than PPO: the reward's scale differs from concept to concept (some concepts' images sit closer to any
text), and GRPO's baseline is the mean reward of the same concept's group of descriptions, which removes exactly
that offset without a learned value model; on 2 CPU cores it also halves the models held and trained.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.io import write_text_atomic

from .config import AlignConfig

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "reward.png"  # the reward curve, drawn from metrics.jsonl at the end of a run
SUMMARY_FILE = "align.json"
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"


@dataclass
class HeldOutReward:
    aligned: float
    unaligned: float
    descriptions_per_concept: int
    split: str


@dataclass
class AlignResult:
    out: str
    model_dir: str
    steps: int
    concepts: list[str]
    reward_first: float | None  # mean training reward of the first logged step
    reward_last: float | None  # mean training reward of the last logged step
    held_out: HeldOutReward | None
    resumed_from: int | None = None
    already_done: bool = False
    config: dict = field(default_factory=dict)
    # The logged mean reward mixes concepts whose rewards differ in level, so it moves with which concepts a step
    # drew; this is the mean over concepts drawn at least twice of (last step's reward - first step's reward).
    reward_gain_same_concepts: float | None = None
    concepts_seen_twice: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _first_line(text: str, stops: tuple[str, ...]) -> str:
    for stop in stops:
        text = text.split(stop, 1)[0]
    return " ".join(text.split("\n", 1)[0].split())


def policy_source(name: str) -> tuple[str, dict]:
    """(from_pretrained location, kwargs) of the LLM to align: any name the LLM registry knows whose weights
    transformers can read (the shipped GGUFs, a .gguf path, a model directory or a hub id)."""
    from pcclip_cli.llm.registry import gemma3_path, resolve, smollm2_path

    display, backend, target = resolve(name)
    if target == "@smollm2":
        target = str(smollm2_path())
    elif target == "@gemma3":
        target = str(gemma3_path())
    if backend not in ("transformers", "llamacpp"):
        raise PcclipError(f"--llm {name}: alignment trains the LLM's weights, which the {backend} backend does not "
                          "expose; name a transformers-loadable LLM (smollm2-135m-hf, a .gguf file, a model "
                          "directory or a hub id)")
    if target.endswith(".gguf"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise DataError(f"--llm {name}: GGUF file not found: {path}")
        return str(path.parent), {"gguf_file": path.name}
    path = Path(target).expanduser()
    if path.exists() and not (path / "config.json").exists():
        raise DataError(f"--llm {name}: {path} is not a transformers model directory (no config.json)")
    return (str(path.resolve()) if path.exists() else target), {}


def reward_model_spec(spec: str) -> str:
    """`spec` unchanged, or the error for a model that only reads text (a transformers LLM or sentence-encoder
    directory given as --model): the reward embeds the concept's images, so it needs a CLIP model."""
    from pcclip_cli.clip.spec import SpecKind, parse_spec

    parsed = parse_spec(spec)
    if (parsed.kind == SpecKind.checkpoint and parsed.path.is_dir() and (parsed.path / "config.json").exists()
            and not (parsed.path / "pcclip.json").exists()):
        raise DataError(f"--model {spec} is a transformers model directory that embeds text only; it cannot embed "
                        "images, and the reward needs a CLIP model with an image tower (a pcclip checkpoint, "
                        "shapes-clip or an open_clip SPEC)")
    return spec


def _materialise_policy(name: str) -> str:
    """A plain transformers directory of the policy: TRL loads the policy and its frozen reference from one path.
    A GGUF file is dequantised once per machine into pcclip's cache (transformers cannot save a model it read from
    GGUF, so its weights move into a model built from the same config)."""
    import hashlib

    from pcclip_cli.core.paths import home

    source, extra = policy_source(name)
    if not extra:
        return source
    gguf = Path(source) / extra["gguf_file"]
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    where = home() / "llm-hf" / f"{gguf.stem}-{key}"
    if (where / "config.json").exists():
        return str(where)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source, **extra)
    loaded = AutoModelForCausalLM.from_pretrained(source, **extra)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = where.with_name(f"{where.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, where)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(tmp, ignore_errors=True)
    return str(where)


def _latest_checkpoint(root: Path) -> tuple[Path | None, int | None]:
    found = sorted((int(p.name.split("-")[-1]), p) for p in root.glob("checkpoint-*")
                    if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").exists())
    return (found[-1][1], found[-1][0]) if found else (None, None)


def _keep_metrics_until(path: Path, step: int | None) -> None:
    """On resume, drop the rows logged after the checkpoint: they are logged again, once."""
    if not path.exists():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = []
    for line in rows:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a kill
        if step is not None and row.get("step", 0) <= step:
            kept.append(line)
    write_text_atomic(path, "".join(r + "\n" for r in kept))


def _check_out(cfg: AlignConfig, out: Path) -> AlignResult | None:
    """A finished run with the same identity is a no-op; a different one needs another --out."""
    saved = out / "config.json"
    if saved.exists():
        old = json.loads(saved.read_text(encoding="utf-8"))
        if old != cfg.identity():
            changed = sorted(k for k in set(old) | set(cfg.identity()) if old.get(k) != cfg.identity().get(k))
            raise PcclipError(f"{out} holds an alignment run with other settings ({', '.join(changed)}); "
                              "use a new --out")
        summary = out / SUMMARY_FILE
        if summary.exists():
            data = json.loads(summary.read_text(encoding="utf-8"))
            held = data.get("held_out")
            data["held_out"] = HeldOutReward(**held) if held else None
            data["already_done"] = True
            return AlignResult(**data)
    return None


def align(cfg: AlignConfig, *, device: str | None = None, progress=None, warn=None) -> AlignResult:
    """Align `cfg.llm` to `cfg.model`'s preferences on `cfg.dataset`'s concepts; see AlignConfig."""
    from pcclip_cli.data.datasets.base import load_dataset
    from pcclip_cli.generation.prompts import load_prompt

    prompt = load_prompt(cfg.prompt, kind="descriptions")
    dataset = load_dataset(cfg.dataset)
    policy_source(cfg.llm)  # an unknown name fails before any model loads
    out = Path(cfg.out).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a directory")
    done = _check_out(cfg, out)
    if done is not None:
        return done

    from pcclip_cli.models import load_clip

    from .reward import concept_images, description_rewards

    # The reward model is checked before the run directory is made: a wrong --model leaves nothing behind.
    clip = load_clip(reward_model_spec(cfg.model), device)
    if getattr(clip.model, "visual", None) is None or not hasattr(clip.model, "encode_image"):
        raise PcclipError(f"--model {cfg.model} cannot embed images; the reward needs a CLIP model with an image "
                          "tower")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise DataError(f"--out {out} is not writable")
    write_text_atomic(out / "config.json", json.dumps(cfg.identity(), indent=2, sort_keys=True) + "\n")
    train_images = concept_images(clip, dataset, cfg.train_split, warn=warn)
    eval_images = (concept_images(clip, dataset, cfg.eval_split, warn=warn)
                   if cfg.eval_descriptions and cfg.eval_split in dataset.splits else None)
    if cfg.eval_descriptions and eval_images is None and warn:
        warn(f"dataset {dataset.source} has no split {cfg.eval_split!r}: the held-out reward check is skipped")

    policy = _materialise_policy(cfg.llm)
    prompts = {c: prompt.render(class_name=c) for c in train_images.concepts}
    stops = tuple(prompt.stop)

    step_rewards: dict[str, float] = {}  # concept -> mean reward of the last batch (logged with its step)

    def reward(prompts, completions, concept, **_):
        texts = [_first_line(c, stops) for c in completions]
        values = [float(r) for r in description_rewards(clip, texts, list(concept), train_images)]
        step_rewards.clear()
        for c in dict.fromkeys(concept):
            mine = [v for v, k in zip(values, concept, strict=True) if k == c]
            step_rewards[c] = round(sum(mine) / len(mine), 5)
        return values

    reward.__name__ = "ex2_cosine"
    metrics = out / METRICS_FILE
    checkpoint, resumed = _latest_checkpoint(out / CHECKPOINTS_DIR)
    _keep_metrics_until(metrics, resumed)
    _train(cfg, policy, prompts, reward, out, checkpoint, metrics, clip.device, progress, step_rewards)

    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    rewards = [r["reward"] for r in rows if "reward" in r]
    from pcclip_cli.evaluation.report import plot_reward_curve

    plot_reward_curve(rows, out / CURVE_FILE, title=f"{cfg.llm} aligned to {cfg.model}")
    gain, twice = same_concept_gain(rows)
    held = None
    if eval_images is not None:
        held = _held_out(cfg, policy, out / MODEL_DIR, prompts, stops, clip, eval_images, clip.device)
    result = AlignResult(out=str(out), model_dir=str(out / MODEL_DIR), steps=cfg.steps,
                         concepts=train_images.concepts, reward_first=rewards[0] if rewards else None,
                         reward_last=rewards[-1] if rewards else None, held_out=held, resumed_from=resumed,
                         config=cfg.to_dict(), reward_gain_same_concepts=gain, concepts_seen_twice=twice)
    write_text_atomic(out / SUMMARY_FILE, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def same_concept_gain(rows: list[dict]) -> tuple[float | None, int]:
    """(mean over concepts drawn in two or more logged steps of last minus first reward, how many concepts)."""
    seen: dict[str, list[float]] = {}
    for row in rows:
        for c, v in (row.get("concepts") or {}).items():
            seen.setdefault(c, []).append(v)
    gains = [v[-1] - v[0] for v in seen.values() if len(v) >= 2]
    return (round(sum(gains) / len(gains), 5) if gains else None), len(gains)


def _train(cfg, policy, prompts, reward, out, checkpoint, metrics, device, progress, step_rewards):
    import datasets
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    concepts = list(prompts)
    # One row per prompt slot, so the sampler sees every concept about equally often over the run.
    rows = [{"prompt": prompts[concepts[i % len(concepts)]], "concept": concepts[i % len(concepts)]}
            for i in range(cfg.steps * cfg.concepts_per_step)]
    train = datasets.Dataset.from_list(rows)

    started = time.monotonic()

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "reward" not in logs:
                return
            # seconds: wall time since this process began training (a resumed run starts again from 0).
            row = {"step": state.global_step, "reward": logs.get("reward"), "reward_std": logs.get("reward_std"),
                   "kl": logs.get("kl"), "loss": logs.get("loss"), "seconds": round(time.monotonic() - started, 1),
                   "concepts": dict(step_rewards)}
            with metrics.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            if progress:
                progress(state.global_step, cfg.steps, reward=row["reward"])

    with warnings.catch_warnings():  # transformers' deprecation notices about arguments TRL passes
        warnings.simplefilter("ignore", FutureWarning)
        args = GRPOConfig(
            output_dir=str(out / CHECKPOINTS_DIR), max_steps=cfg.steps, learning_rate=cfg.lr, beta=cfg.beta,
            per_device_train_batch_size=cfg.concepts_per_step * cfg.generations, num_generations=cfg.generations,
            max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, logging_steps=1,
            save_steps=cfg.save_every, save_total_limit=2, report_to=[], seed=cfg.seed, data_seed=cfg.seed,
            use_cpu=device == "cpu", bf16=False, disable_tqdm=True, lr_scheduler_type="constant",
            log_completions=False)
    tok = AutoTokenizer.from_pretrained(policy)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    trainer = GRPOTrainer(model=policy, reward_funcs=reward, args=args, train_dataset=train,
                          processing_class=tok, callbacks=[Log()])
    if progress:
        progress(0 if checkpoint is None else int(checkpoint.name.split("-")[-1]), cfg.steps, reward=None)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # it prints log dicts on stdout, which carries data only
    trainer.remove_callback(ProgressCallback)
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # transformers' own deprecation notices about arguments TRL passes: nothing a user can act on.
        warnings.simplefilter("ignore", FutureWarning)
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final = out / MODEL_DIR
    tmp = out / (MODEL_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tok.save_pretrained(str(tmp))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def sample_descriptions(model_dir: str, prompts: dict[str, str], n: int, *, max_new_tokens: int,
                        temperature: float, seed: int, stops: tuple[str, ...], device: str) -> dict[str, list[str]]:
    """n sampled descriptions per concept from a transformers LLM directory (seeded: same seed, same texts)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    out = {}
    torch.manual_seed(seed)
    with torch.inference_mode():
        for concept, text in prompts.items():
            enc = tok([text] * n, return_tensors="pt", padding=True).to(device)
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                                 max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out[concept] = [_first_line(t, stops) for t in texts]
    return out


def _held_out(cfg, base_dir, aligned_dir, prompts, stops, clip, images, device) -> HeldOutReward:
    import numpy as np

    from .reward import description_rewards

    def mean_reward(model_dir):
        texts = sample_descriptions(str(model_dir), prompts, cfg.eval_descriptions,
                                    max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                    seed=cfg.seed + 1, stops=stops, device=device)
        flat = [(c, t) for c, ts in texts.items() for t in ts if c in images.concepts]
        r = description_rewards(clip, [t for _, t in flat], [c for c, _ in flat], images)
        return float(np.mean(r)) if len(r) else float("nan")

    return HeldOutReward(aligned=mean_reward(aligned_dir), unaligned=mean_reward(base_dir),
                         descriptions_per_concept=cfg.eval_descriptions, split=images.split)
