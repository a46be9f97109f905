"""`pcclip train`: finetune CLIP with PC-CLIP (or a caption baseline), resume a run, average weights.

Its options are generated from `TrainConfig`'s fields: names, types, choices, help and defaults live there only.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
import typing
from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.training.config import TrainConfig

from .console import JsonOption, chosen_device, emit_json, err, progress_bar, warn

app = typer.Typer(help="Finetune CLIP: PC-CLIP on comparatives, or the caption baselines.", no_args_is_help=False)

# Python names that cannot be parameter names, and fields whose flag is spelled differently.
_PARAM_NAMES = {"compile": "compile_"}
_LIST_FIELDS = {"rank_weights"}


def _parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    from pcclip_cli.core.errors import PcclipError

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


def _default_text(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING:
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
    else:
        value = f.default
    if value is None or value is False:
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, list):
        value = ",".join(f"{v:g}" for v in value)
    return f" (default: {value})"


def _option(f: dataclasses.Field, hint) -> inspect.Parameter:
    """One `--flag` for one TrainConfig field: every flag defaults to None (= "not given"), so a config file's
    value survives unless the flag is passed."""
    flag = "--" + f.name.replace("_", "-")
    help_text = f.metadata.get("help", "") + _default_text(f)
    base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = base[0]
    decls: list[str] = []
    if f.name in _LIST_FIELDS:
        kind = str
    elif kind is bool:
        decls = [f"{flag}/--no-{flag[2:]}"] if f.default is True else [flag]
    elif f.metadata.get("path"):
        kind = Path
    annotation = Annotated[kind | None, typer.Option(*decls, help=help_text, show_default=False)]
    return inspect.Parameter(_PARAM_NAMES.get(f.name, f.name), inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=annotation)


def _train(ctx: typer.Context, config: Path | None, resume: Path | None, json_out: bool, **options):
    """Finetune CLIP so that g(I1) - g(I2) aligns with f(T12) (PC-CLIP), or with captions (baselines).

    Examples:
      pcclip train --model shapes-clip --comparatives pairs.jsonl --captions world/captions.jsonl --out runs/pc
      pcclip train --config run.toml --epochs 5
      pcclip train --resume runs/pc
    """
    if ctx.invoked_subcommand is not None:
        return
    from pcclip_cli.finetune import run_from_options

    names = {v: k for k, v in _PARAM_NAMES.items()}
    overrides = {names.get(k, k): (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    overrides["rank_weights"] = _parse_weights(overrides.get("rank_weights"))
    main_process = int(os.environ.get("RANK", "0")) == 0
    with progress_bar("training", enabled=main_process and not json_out) as progress:
        result = run_from_options(config, overrides, resume, device=chosen_device(ctx), progress=progress,
                                  warn=warn if main_process else None)
    if not main_process:
        return
    if json_out:
        emit_json(result.to_dict())
        return
    metrics = result.metrics
    if result.already_done:
        err.print(f"{result.checkpoint} already holds this run, trained for {result.epochs} epochs: nothing to do "
                  "(a new --out or other settings train again)")
        err.print(f"checkpoint: {result.checkpoint}  (use it as --model {result.checkpoint})")
        return
    err.print(f"trained {result.steps} steps over {result.epochs} epochs on {result.examples} examples "
              f"in {result.seconds:.1f}s (final epoch loss {metrics.get('loss', float('nan')):.4f})")
    if "eval" in metrics:
        err.print(f"eval: {metrics['eval']}")
    if result.resumed_from:
        err.print(f"resumed from {result.resumed_from}")
    err.print(f"checkpoint: {result.checkpoint}  (use it as --model {result.checkpoint})")


def _build_command():
    hints = typing.get_type_hints(TrainConfig)
    P = inspect.Parameter
    fixed = [
        P("ctx", P.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        P("config", P.KEYWORD_ONLY, default=None, annotation=Annotated[
            Path | None, typer.Option(help="A run.toml with these settings; flags override it.")]),
        P("resume", P.KEYWORD_ONLY, default=None, annotation=Annotated[
            Path | None, typer.Option(help="Continue the run in this directory from its last checkpoint.")]),
        P("json_out", P.KEYWORD_ONLY, default=False, annotation=JsonOption),
    ]
    params = fixed[:1] + [_option(f, hints[f.name]) for f in dataclasses.fields(TrainConfig)] + fixed[1:]

    def command(ctx: typer.Context, **kwargs):
        config, resume, json_out = kwargs.pop("config"), kwargs.pop("resume"), kwargs.pop("json_out")
        return _train(ctx, config, resume, json_out, **kwargs)

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = _train.__doc__
    return command


app.callback(invoke_without_command=True)(_build_command())


@app.command("average")
def average(
    finetuned: Annotated[Path, typer.Argument(help="A checkpoint written by `pcclip train`.")],
    out: Annotated[Path, typer.Option(help="Where to write the averaged checkpoint.")],
    alpha: Annotated[float, typer.Option(help="Weight of the finetuned model: ALPHA * ft + (1 - ALPHA) * base.")] = 0.5,
    base: Annotated[str | None, typer.Option(help="Base model SPEC (default: the one the checkpoint records).")] = None,
    json_out: JsonOption = False,
):
    """WiSE-FT weight ensembling: average a finetuned checkpoint with its base model's weights."""
    from pcclip_cli.finetune import average_with_base

    result = average_with_base(finetuned, out, alpha, base)
    if json_out:
        emit_json(result)
        return
    err.print(f"wrote {result['checkpoint']} = {alpha} * {finetuned} + {1 - alpha:g} * {result['base']}")
