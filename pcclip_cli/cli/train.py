"""`pcclip train`: finetune CLIP with PC-CLIP (or a caption baseline), resume a run, average weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..losses import LossKind
from ..models import Scope
from ..training import Init, Objective, OptimizerKind, ScheduleKind
from .console import JsonOption, emit_json, err, progress_bar, warn

app = typer.Typer(help="Finetune CLIP: PC-CLIP on comparatives, or the caption baselines.", no_args_is_help=False)


def _parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    from ..errors import PcclipError

    parts = [p.strip() for p in text.split(",")]
    try:
        values = []
        for p in parts:
            num, _, den = p.partition("/")
            values.append(float(num) / float(den) if den else float(num))
    except (ValueError, ZeroDivisionError):
        raise PcclipError(f"--rank-weights {text!r}: give two numbers L1,L2 such as 1/16,1/16 or 0.0625,0") from None
    if len(values) != 2:
        raise PcclipError(f"--rank-weights {text!r}: give exactly two numbers L1,L2 (in-modal, cross-modal)")
    return values


@app.callback(invoke_without_command=True)
def command(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Base model SPEC (default shapes-clip; see `pcclip models`).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory: checkpoints, metrics.jsonl, the final model.")] = None,
    config: Annotated[Path | None, typer.Option(help="A run.toml with these settings; flags override it.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this directory from its last checkpoint.")] = None,
    objective: Annotated[Objective | None, typer.Option(help="pc (comparatives, default) or caption (CLIP loss).")] = None,
    comparatives: Annotated[Path | None, typer.Option(help="Comparatives JSONL from generate/filter (pc).")] = None,
    captions: Annotated[Path | None, typer.Option(help="captions.jsonl: the images the comparatives name.")] = None,
    split: Annotated[str | None, typer.Option(help="Use only images of this split (e.g. train).")] = None,
    max_pairs: Annotated[int | None, typer.Option(help="Subsample the comparatives to this many (seeded).")] = None,
    loss: Annotated[LossKind | None, typer.Option(help="contrastive (default) or mse.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Fixed temperature (pc default 1.0, as the paper).")] = None,
    rank_weights: Annotated[str | None, typer.Option(help="RankCLIP lambdas L1,L2 (in-modal, cross-modal), e.g. 1/16,1/16.")] = None,
    base_loss: Annotated[bool | None, typer.Option("--base-loss/--no-base-loss", help="Keep the base loss (ablation: drop it).")] = None,
    mse_raw_difference: Annotated[bool | None, typer.Option("--mse-raw-difference", help="MSE on the un-normalised difference, as the reference.")] = None,
    scope: Annotated[Scope | None, typer.Option(help="text (default), image or both: the tower(s) trained.")] = None,
    reference_params: Annotated[bool | None, typer.Option("--reference-params", help="Train only the text transformer blocks, as the reference code.")] = None,
    init: Annotated[Init | None, typer.Option(help="pretrained (the SPEC's weights, default) or random.")] = None,
    optimizer: Annotated[OptimizerKind | None, typer.Option(help="adam (default, the paper) or adamw.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (paper: 1e-8 pc, 1e-6 caption).")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay (default 0).")] = None,
    schedule: Annotated[ScheduleKind | None, typer.Option(help="exponential (default), cosine or constant.")] = None,
    gamma: Annotated[float | None, typer.Option(help="ExponentialLR decay per epoch (default 0.9).")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Linear warm-up steps (default 0).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 20).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch size (default 512).")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Clip the gradient norm to this.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for data order and random init (default 0).")] = None,
    save_every: Annotated[int | None, typer.Option(help="Checkpoint every N epochs (default 1).")] = None,
    keep_checkpoints: Annotated[int | None, typer.Option(help="Epoch checkpoints to keep (default 1).")] = None,
    weight_average: Annotated[float | None, typer.Option(help="WiSE-FT: final = ALPHA * finetuned + (1 - ALPHA) * base.")] = None,
    eval_task: Annotated[Path | None, typer.Option(help="Class manifest (.jsonl) or groups task (.toml) scored each epoch.")] = None,
    eval_template: Annotated[str | None, typer.Option(help="Zero-shot prompt for --eval-task manifests.")] = None,
    log_every: Annotated[int | None, typer.Option(help="Steps between metrics.jsonl step records.")] = None,
    amp: Annotated[bool | None, typer.Option("--amp", help="bf16 mixed precision (CUDA only).")] = None,
    compile_: Annotated[bool | None, typer.Option("--compile", help="torch.compile the step (CUDA only).")] = None,
    json_out: JsonOption = False,
):
    """Finetune CLIP so that g(I1) - g(I2) aligns with f(T12) (PC-CLIP), or with captions (baselines).

    Examples:
      pcclip train --model shapes-clip --comparatives pairs.jsonl --captions world/captions.jsonl --out runs/pc
      pcclip train --config run.toml --epochs 5
      pcclip train --resume runs/pc
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..training import run_from_options

    overrides = {
        "model": model, "out": str(out) if out else None, "objective": objective,
        "comparatives": str(comparatives) if comparatives else None, "captions": str(captions) if captions else None,
        "split": split, "max_pairs": max_pairs, "loss": loss, "temperature": temperature,
        "rank_weights": _parse_weights(rank_weights), "base_loss": base_loss, "mse_raw_difference": mse_raw_difference,
        "scope": scope, "reference_params": reference_params, "init": init, "optimizer": optimizer, "lr": lr,
        "weight_decay": weight_decay, "schedule": schedule, "gamma": gamma, "warmup_steps": warmup_steps,
        "epochs": epochs, "batch_size": batch_size, "grad_clip": grad_clip, "seed": seed, "save_every": save_every,
        "keep_checkpoints": keep_checkpoints, "weight_average": weight_average,
        "eval_task": str(eval_task) if eval_task else None, "eval_template": eval_template, "log_every": log_every,
        "amp": amp, "compile": compile_,
    }
    main_process = int(os.environ.get("RANK", "0")) == 0
    with progress_bar("training", enabled=main_process and not json_out) as progress:
        result = run_from_options(config, overrides, resume, progress=progress,
                                  warn=warn if main_process else None)
    if not main_process:
        return
    if json_out:
        emit_json(result.to_dict())
        return
    metrics = result.metrics
    err.print(f"trained {result.steps} steps over {result.epochs} epochs on {result.examples} examples "
              f"in {result.seconds:.1f}s (final epoch loss {metrics.get('loss', float('nan')):.4f})")
    if "eval" in metrics:
        err.print(f"eval: {metrics['eval']}")
    if result.resumed_from:
        err.print(f"resumed from {result.resumed_from}")
    err.print(f"checkpoint: {result.checkpoint}  (use it as --model {result.checkpoint})")


@app.command("average")
def average(
    finetuned: Annotated[Path, typer.Argument(help="A checkpoint written by `pcclip train`.")],
    out: Annotated[Path, typer.Option(help="Where to write the averaged checkpoint.")],
    alpha: Annotated[float, typer.Option(help="Weight of the finetuned model: ALPHA * ft + (1 - ALPHA) * base.")] = 0.5,
    base: Annotated[str | None, typer.Option(help="Base model SPEC (default: the one the checkpoint records).")] = None,
    json_out: JsonOption = False,
):
    """WiSE-FT weight ensembling: average a finetuned checkpoint with its base model's weights."""
    from ..training import average_with_base

    result = average_with_base(finetuned, out, alpha, base)
    if json_out:
        emit_json(result)
        return
    err.print(f"wrote {result['checkpoint']} = {alpha} * {finetuned} + {1 - alpha:g} * {result['base']}")
