"""How much a PC-CLIP text-scope training step costs, on one batch, several ways, side by side:

  bare text tower          the text tower's forward and backward on the same tokens, nothing else (the floor),
                           on the batch trimmed to its longest text, and on the full padded context
  pcclip text-scope step   `Trainer._step` with --scope text: cached image embeddings, text tower forward and
                           backward, loss, NaN check, Adam update; trimmed (the default) and with --no-trim-text
                           (also with --reference-params: fewer parameters to update)
  reference-style step     the step written the way the reference code writes it: decode and preprocess both
                           images of every pair, run the (frozen) image tower on them, normalise, difference, then
                           the text step (full context)
  whole token table        the pcclip step training the whole token-embedding table instead of only the rows
                           the texts use (exact either way: training/vocab.py), trimmed and not
  fp32 step (CUDA only)    the pcclip step in fp32 when the run's precision is bf16, trimmed and not

Prints medians over the timed steps, the ratios pcclip/bare (overhead), untrimmed/trimmed (speed-up of exact
context trimming) and reference/pcclip, pairs/s, and on CUDA the peak GPU memory of each contender.

    .venv/bin/python benchmarks/bench_train.py [--model pcclip-tiny] [--batch 64] [--steps 10]
    .venv/bin/python benchmarks/bench_train.py --device cuda --model ViT-L-14 --batch 512   # bf16 by default
    .venv/bin/python benchmarks/bench_train.py --objective caption    # caption texts (short) instead of pairs

`--objective pc` trains on oracle comparatives of a shapes world; `caption` on the world's captions (text scope,
learnable logit scale), which are much shorter, so trimming has more to cut. The table goes to stderr, the ratios
to stdout as JSON rows (jsonrows.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jsonrows  # noqa: E402  (benchmarks/ is the script's own directory)


def timed_round_robin(fns: dict, warmup: int, steps: int, sync=lambda: None, memory=None) -> tuple[dict, dict]:
    """Median seconds per call, and peak memory per contender (when `memory` reads it); the contenders take
    turns, so load from other processes hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict = {name: [] for name in fns}
    peaks: dict = {}
    for _ in range(steps):
        for name, fn in fns.items():
            if memory:
                memory(reset=True)
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)
            if memory:
                peaks[name] = max(peaks.get(name, 0), memory())
    return {name: statistics.median(ts) for name, ts in times.items()}, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pcclip-tiny", help="SPEC; an architecture name is a seeded random init")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="as `pcclip train --precision`: auto is bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--objective", default="pc", choices=["pc", "caption"])
    parser.add_argument("--images", type=int, default=200, help="images in the shapes world drawn for the texts")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference-style step")
    args = parser.parse_args()
    jsonrows.people_to_stderr()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ.setdefault("PCCLIP_HOME", str(tmp / "home"))

    import torch
    import torch.nn.functional as F

    from pcclip_cli.clip.text_trim import encode_text
    from pcclip_cli.data.records import open_image
    from pcclip_cli.data.shapes import WorldConfig, build_world
    from pcclip_cli.models import load_clip
    from pcclip_cli.training import TrainConfig, Trainer
    from pcclip_cli.training.config import Precision
    from pcclip_cli.training.losses import contrastive_loss
    from pcclip_cli.training.pair_data import oracle_comparatives

    cuda = args.device.startswith("cuda")
    world = tmp / "world"
    build_world(world, WorldConfig(images=max(args.images, args.batch if args.objective == "caption" else 2),
                                   seed=0))
    pairs = tmp / "pairs.jsonl"
    data = {"captions": str(world / "captions.jsonl")}
    if args.objective == "pc":
        oracle_comparatives(world, pairs, pairs=max(args.batch, 256), split=None)
        data["comparatives"] = str(pairs)
    cfg = TrainConfig(model=args.model, objective=args.objective, **data, out=str(tmp / "run"), lr=1e-5,
                      batch_size=args.batch, epochs=1, precision=args.precision)
    trainer = Trainer(cfg, load_clip(cfg.model, args.device, fresh=True)).prepare()
    model, clip = trainer.model, trainer.clip
    model.train()
    model.visual.eval()
    rows = trainer.batches(0)[0]
    loss_cfg = cfg.loss_config()
    tokens = trainer.tokens[rows.to(trainer.device)]
    lengths = trainer.text_lengths
    precision = trainer.precision
    optimizer = trainer.optimizer

    def autocast(p):
        return torch.autocast("cuda", dtype=torch.bfloat16) if p == Precision.bf16 else contextlib.nullcontext()

    def pcclip(trim: bool, p=precision, tr=trainer):
        def step():
            saved = (tr.text_lengths, tr.precision)
            tr.text_lengths, tr.precision = (lengths if trim else None), p
            try:
                tr._step(rows, loss_cfg, 0, 0, 0)
            finally:
                tr.text_lengths, tr.precision = saved
        return step

    def bare(trim: bool):
        context = trainer.text_context(rows) if trim else None

        def step():  # the same trainable weights as the step (the compact token rows where it uses them)
            optimizer.zero_grad(set_to_none=True)
            with autocast(precision):
                if trainer.vocab is not None:
                    y = encode_text(model, tokens, context=context or tokens.shape[1], embedding=trainer.vocab.embed)
                else:
                    y = encode_text(model, tokens, context=context) if context else model.encode_text(tokens)
            y.float().sum().backward()
        return step

    # The same step optimising only the text transformer blocks (--reference-params): a smaller Adam update.
    ref_cfg = TrainConfig(**{**cfg.__dict__, "out": str(tmp / "run2"), "reference_params": True})
    ref_params = Trainer(ref_cfg, load_clip(cfg.model, args.device, fresh=True)).prepare()
    ref_params.model.train()
    ref_params.model.visual.eval()
    # The same step training the whole token-embedding table (what pcclip did before compact rows).
    whole = Trainer(TrainConfig(**{**cfg.__dict__, "out": str(tmp / "run3")}),
                    load_clip(cfg.model, args.device, fresh=True), compact_vocab=False).prepare()
    whole.model.train()
    whole.model.visual.eval()
    fns = {"bare text tower (fwd+bwd)": bare(True), "  same, full context": bare(False),
           "pcclip text-scope step": pcclip(True), "  same, full context (--no-trim-text)": pcclip(False),
           "  same, --reference-params": pcclip(True, tr=ref_params),
           "  same, whole token table": pcclip(True, tr=whole),
           "  same, whole table, full context": pcclip(False, tr=whole)}
    if cuda and precision == Precision.bf16:
        fns["pcclip step, fp32"] = pcclip(True, Precision.fp32)
        fns["  same, fp32, full context"] = pcclip(False, Precision.fp32)
    if args.objective == "pc" and not args.no_reference:
        first_paths = [trainer.data.images[i] for i in trainer.first[rows].tolist()]
        second_paths = [trainer.data.images[i] for i in trainer.second[rows].tolist()]

        def reference_step():
            with torch.no_grad():
                im1 = torch.stack([clip.preprocess(open_image(p)) for p in first_paths]).to(trainer.device)
                im2 = torch.stack([clip.preprocess(open_image(p)) for p in second_paths]).to(trainer.device)
                g1 = F.normalize(model.encode_image(im1), dim=-1)
                g2 = F.normalize(model.encode_image(im2), dim=-1)
            with autocast(precision):
                y = model.encode_text(tokens)
            loss = contrastive_loss(g1 - g2, y.float(), 1.0)
            if torch.isnan(loss):  # the reference skips such a step silently
                return
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        fns["reference-style step"] = reference_step

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    memory = None
    if cuda:
        def memory(reset=False):
            if reset:
                torch.cuda.reset_peak_memory_stats()
                return 0
            return torch.cuda.max_memory_allocated()
    results, peaks = timed_round_robin(fns, args.warmup, args.steps, sync, memory)
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    context = trainer.text_context(rows)
    print(f"model {args.model}, batch {args.batch} pairs, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    print(f"device {args.device} ({where}), precision {precision.value}, objective {args.objective}, "
          f"text context {context or tokens.shape[1]} of {tokens.shape[1]} tokens "
          f"({'trimmed' if context else 'not trimmable for this model'})")
    for name, sec in results.items():
        mem = f"   peak {peaks[name] / 2**30:6.2f} GiB" if name in peaks else ""
        print(f"  {name:38s} {sec * 1000:9.1f} ms{mem}")
    b, ours = results["bare text tower (fwd+bwd)"], results["pcclip text-scope step"]
    print(f"overhead  pcclip / bare text tower   = {ours / b:.2f}x "
          f"({results['  same, --reference-params'] / b:.2f}x with --reference-params)")
    print(f"trimming  full context / trimmed      = {results['  same, full context (--no-trim-text)'] / ours:.2f}x "
          f"(pcclip step), {results['  same, full context'] / b:.2f}x (bare text tower)")
    if "reference-style step" in results:
        print(f"speed-up  reference / pcclip         = {results['reference-style step'] / ours:.2f}x")
    print(f"rows      whole token table / compact  = {results['  same, whole token table'] / ours:.2f}x")
    print(f"before    whole table, full / pcclip   = {results['  same, whole table, full context'] / ours:.2f}x "
          "(the step as it was before trimming and compact rows)")
    print(f"pairs/s   pcclip step                  = {args.batch / ours:,.0f} "
          f"(full context {args.batch / results['  same, full context (--no-trim-text)']:,.0f}; bare text tower "
          f"{args.batch / b:,.0f})")
    if "pcclip step, fp32" in results:
        print(f"precision fp32 / {precision.value} (pcclip step)     = {results['pcclip step, fp32'] / ours:.2f}x")
    head = f"{args.model}, batch {args.batch}, {where}, median of {args.steps} steps"
    full = results["  same, full context (--no-trim-text)"]
    jsonrows.emit("train", "pcclip text-scope step / bare text-tower forward+backward (overhead)", ours / b,
                  detail=f"{head}; {ours * 1000:.1f} ms vs {b * 1000:.1f} ms; "
                         f"{results['  same, --reference-params'] / b:.2f}x with --reference-params")
    jsonrows.emit("train", "full context / trimmed text context, pcclip step", full / ours,
                  detail=f"{head}; {full * 1000:.1f} ms vs {ours * 1000:.1f} ms")
    if "reference-style step" in results:
        ref = results["reference-style step"]
        jsonrows.emit("train", "reference-style step (images decoded and encoded every step) / pcclip step",
                      ref / ours, detail=f"{head}; {ref * 1000:.1f} ms vs {ours * 1000:.1f} ms")


if __name__ == "__main__":
    main()
