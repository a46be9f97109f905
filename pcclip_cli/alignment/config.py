"""Settings of an alignment run (`pcclip align`): one dataclass, every default here and nowhere else."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from pcclip_cli.core.errors import PcclipError


@dataclass
class AlignConfig:
    dataset: str = ""  # labelled images (a class manifest .jsonl, or an image folder): the concepts and rewards
    out: str = ""  # run directory: checkpoints/, metrics.jsonl, model/, align.json
    llm: str = "smollm2-135m-hf"  # the policy: a transformers-loadable LLM (name, .gguf, directory or hub id)
    model: str = "shapes-clip"  # the CLIP model whose preferences the LLM is aligned to (the reward)
    prompt: str = "descriptions"  # a descriptions prompt (shipped name or file) with {class_name}
    train_split: str = "train"  # the reward's images
    eval_split: str = "test"  # held-out images for the aligned-vs-unaligned reward check
    # The defaults fit the 30-minute budget of a 2-core CPU with SmolLM2-135M (docs/ex2.md, "Default settings"):
    # a step costs about 8.5 CPU-seconds per sampled description of 32 tokens, so 30 steps of 2 x 4 descriptions of
    # 24 tokens; the learning rate is raised to make up for the fewer updates.
    steps: int = 30  # optimiser steps
    concepts_per_step: int = 2  # prompts (concepts) per step
    generations: int = 4  # descriptions sampled per concept and step: GRPO's group
    max_new_tokens: int = 24  # length of a sampled description
    lr: float = 3e-5  # Adam learning rate of the policy
    beta: float = 0.04  # weight of the KL penalty to the reference (unaligned) LLM
    temperature: float = 1.0  # sampling temperature during training and the held-out check
    save_every: int = 10  # checkpoint every N steps (resume point)
    eval_descriptions: int = 4  # descriptions per concept sampled by each LLM for the held-out check
    seed: int = 0

    def __post_init__(self):
        if not self.dataset:
            raise PcclipError("--dataset is required: a labelled class manifest or image folder")
        if not self.out:
            raise PcclipError("--out DIR is required")
        for name in ("steps", "concepts_per_step", "generations", "max_new_tokens", "save_every"):
            if getattr(self, name) < 1:
                raise PcclipError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.generations < 2:
            raise PcclipError(f"--generations must be at least 2 (GRPO compares a group), got {self.generations}")
        if self.eval_descriptions < 0:
            raise PcclipError(f"--eval-descriptions must be 0 or more, got {self.eval_descriptions}")
        for name in ("lr", "beta", "temperature"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name != "beta" and value == 0):
                raise PcclipError(f"--{name} must be a positive number, got {value}")
        if self.train_split == self.eval_split:
            raise PcclipError(f"--eval-split {self.eval_split} is the reward's split; hold out another split")

    def to_dict(self) -> dict:
        return asdict(self)

    # What changes the trained policy: a rerun with other values needs a new --out.
    IDENTITY = ("dataset", "llm", "model", "prompt", "train_split", "steps", "concepts_per_step", "generations",
                "max_new_tokens", "lr", "beta", "temperature", "seed")

    def identity(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in self.IDENTITY}
