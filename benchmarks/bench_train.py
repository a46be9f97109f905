"""How much a PC-CLIP text-scope training step costs, on one batch, three ways, side by side:

  pcclip step     `Trainer._step` with --scope text: cached image embeddings, text tower forward and backward,
                  loss, NaN check, Adam update (also with --reference-params: fewer parameters to update)
  bare text tower the text tower's forward and backward on the same tokens, nothing else (the floor)
  reference loop  the step written the way the reference code writes it: decode and preprocess both images of
                  every pair, run the (frozen) image tower on them, normalise, difference, then the text step

Prints medians over the timed steps and the ratios pcclip/bare (overhead) and reference/pcclip (speed-up).

    .venv/bin/python benchmarks/bench_train.py [--model pcclip-tiny] [--batch 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed_round_robin(fns: dict, warmup: int, steps: int) -> dict:
    """Median seconds per call; the contenders take turns, so load from other processes hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict = {name: [] for name in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pcclip-tiny")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PCCLIP_DEVICE", "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ.setdefault("PCCLIP_HOME", str(tmp / "home"))

    import torch
    import torch.nn.functional as F

    from pcclip_cli.data import open_image
    from pcclip_cli.models import load_clip
    from pcclip_cli.shapes import WorldConfig, build_world
    from pcclip_cli.training import TrainConfig, Trainer
    from pcclip_cli.training.losses import LossConfig, contrastive_loss
    from pcclip_cli.training.pair_data import oracle_comparatives

    world = tmp / "world"
    build_world(world, WorldConfig(images=200, seed=0))
    pairs = tmp / "pairs.jsonl"
    oracle_comparatives(world, pairs, pairs=max(args.batch, 256), split=None)
    cfg = TrainConfig(model=args.model, comparatives=str(pairs), captions=str(world / "captions.jsonl"),
                      out=str(tmp / "run"), lr=1e-5, batch_size=args.batch, epochs=1)
    trainer = Trainer(cfg, load_clip(cfg.model, fresh=True)).prepare()
    model, clip = trainer.model, trainer.clip
    model.train()
    model.visual.eval()
    rows = trainer.batches(0)[0]
    loss_cfg = LossConfig()
    tokens = trainer.tokens[rows]
    first_paths = [trainer.data.images[i] for i in trainer.first[rows].tolist()]
    second_paths = [trainer.data.images[i] for i in trainer.second[rows].tolist()]
    optimizer = trainer.optimizer

    def pcclip_step():
        trainer._step(rows, loss_cfg, 0, 0, 0)

    # The same step optimising only the text transformer blocks (--reference-params): a smaller Adam update.
    ref_cfg = TrainConfig(**{**cfg.__dict__, "out": str(tmp / "run2"), "reference_params": True})
    ref_params = Trainer(ref_cfg, load_clip(cfg.model, fresh=True)).prepare()
    ref_params.model.train()
    ref_params.model.visual.eval()

    def pcclip_step_reference_params():
        ref_params._step(rows, loss_cfg, 0, 0, 0)

    def bare_text_tower():
        optimizer.zero_grad(set_to_none=True)
        model.encode_text(tokens).sum().backward()

    def reference_step():
        with torch.no_grad():
            im1 = torch.stack([clip.preprocess(open_image(p)) for p in first_paths])
            im2 = torch.stack([clip.preprocess(open_image(p)) for p in second_paths])
            g1 = F.normalize(model.encode_image(im1), dim=-1)
            g2 = F.normalize(model.encode_image(im2), dim=-1)
        loss = contrastive_loss(g1 - g2, model.encode_text(tokens), 1.0)
        if torch.isnan(loss):  # the reference skips such a step silently
            return
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    results = timed_round_robin({"bare text tower (fwd+bwd)": bare_text_tower,
                                 "pcclip text-scope step": pcclip_step,
                                 "  same, --reference-params": pcclip_step_reference_params,
                                 "reference-style step": reference_step}, args.warmup, args.steps)
    print(f"model {args.model}, batch {args.batch} pairs, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    for name, sec in results.items():
        print(f"  {name:28s} {sec * 1000:9.1f} ms")
    bare, ours, ref = (results["bare text tower (fwd+bwd)"], results["pcclip text-scope step"],
                       results["reference-style step"])
    print(f"overhead  pcclip / bare text tower   = {ours / bare:.2f}x "
          f"({results['  same, --reference-params'] / bare:.2f}x with --reference-params)")
    print(f"speed-up  reference / pcclip         = {ref / ours:.2f}x")


if __name__ == "__main__":
    main()
