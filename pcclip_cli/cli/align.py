"""`pcclip align`: EX2's alignment: fine-tune an LLM by RL (GRPO) so its class descriptions score high under a CLIP
model (reward: the description's mean cosine with the class's training images), with a KL penalty to the
unaligned LLM. Defaults come from AlignConfig."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.alignment.config import AlignConfig

from .console import JsonOption, chosen_device, emit_json, err, progress_bar, warn

_D = {f.name: f.default for f in dataclasses.fields(AlignConfig)}


def command(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="Labelled images: a class manifest .jsonl (e.g. a world's "
                                              "classes/colour_shape.jsonl) or an image folder.")],
    out: Annotated[Path, typer.Option(help="Run directory (checkpoints, metrics.jsonl, model/, align.json).")],
    llm: Annotated[str, typer.Option(help="The LLM to align (transformers-loadable).")] = _D["llm"],
    model: Annotated[str, typer.Option(help="The CLIP model whose preferences are the reward.")] = _D["model"],
    prompt: Annotated[str, typer.Option(help="Descriptions prompt (name or file) with {class_name}.")]
    = _D["prompt"],
    train_split: Annotated[str, typer.Option(help="Split whose images give the reward.")] = _D["train_split"],
    eval_split: Annotated[str, typer.Option(help="Held-out split for the aligned-vs-unaligned check.")]
    = _D["eval_split"],
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = _D["steps"],
    concepts_per_step: Annotated[int, typer.Option(help="Concepts (prompts) per step.")] = _D["concepts_per_step"],
    generations: Annotated[int, typer.Option(help="Descriptions sampled per concept per step (GRPO group).")]
    = _D["generations"],
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per sampled description.")] = _D["max_new_tokens"],
    lr: Annotated[float, typer.Option(help="Learning rate of the LLM.")] = _D["lr"],
    beta: Annotated[float, typer.Option(help="KL penalty to the unaligned LLM.")] = _D["beta"],
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = _D["temperature"],
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = _D["save_every"],
    eval_descriptions: Annotated[int, typer.Option(help="Descriptions per concept in the held-out check "
                                                        "(0: skip).")] = _D["eval_descriptions"],
    seed: Annotated[int, typer.Option(help="Seed.")] = _D["seed"],
    json_out: JsonOption = False,
):
    """Align an LLM to a CLIP model's preferences (EX2), resumable: re-run the same command after a kill."""
    from pcclip_cli.alignment.run import align

    cfg = AlignConfig(dataset=dataset, out=str(out), llm=llm, model=model, prompt=prompt, train_split=train_split,
                      eval_split=eval_split, steps=steps, concepts_per_step=concepts_per_step,
                      generations=generations, max_new_tokens=max_new_tokens, lr=lr, beta=beta,
                      temperature=temperature, save_every=save_every, eval_descriptions=eval_descriptions, seed=seed)
    with progress_bar("align", enabled=not json_out) as bar:
        result = align(cfg, device=chosen_device(ctx), progress=bar, warn=warn)
    if json_out:
        emit_json(result.to_dict())
        return
    if result.already_done:
        err.print(f"{out} is already aligned with these settings; nothing to do")
    first = "n/a" if result.reward_first is None else f"{result.reward_first:.4f}"
    last = "n/a" if result.reward_last is None else f"{result.reward_last:.4f}"
    err.print(f"mean reward: first step {first}, last step {last}")
    if result.reward_gain_same_concepts is not None:
        err.print(f"same-concept gain (last minus first reward of each concept drawn twice or more): "
                  f"{result.reward_gain_same_concepts:+.4f} over {result.concepts_seen_twice} concepts")
    if result.held_out:
        h = result.held_out
        err.print(f"held-out reward ({h.split}, {h.descriptions_per_concept} per concept): aligned "
                  f"{h.aligned:.4f}, unaligned {h.unaligned:.4f}")
    err.print(f"aligned LLM: {result.model_dir} (use it as --llm {result.model_dir})")
