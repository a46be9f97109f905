"""The key experiment on the shapes world: does PC-CLIP finetuning with oracle comparatives move the
difference-benchmark accuracy of the shapes base model?

Writes oracle comparatives for random ordered pairs of the world's train images (texts from the known
attributes, shapes.describe_difference), finetunes the base model's text tower on them (`--scope text`, image
embeddings from the shared cache), and prints, before and after, on the test split:
  difference accuracy  P[(g(a) - g(b)) . f(T) > 0] over all (a, b) of each groups task (size, colour), and
                       of the size task reworded with "bigger" (see size_variant)
  zero-shot accuracy   of the class manifests (shape, colour, size), to show nothing collapsed

    .venv/bin/python benchmarks/exp_pc_shapes.py [--base shapes-clip] [--pairs 20000] [--epochs 5] ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


BIGGER = "The first image contains a bigger object, while the second contains a smaller object."


def size_variant(world: Path, tmp: Path) -> Path:
    """tasks/size.toml with "bigger" for "larger": a model trained from scratch on the shapes captions has never
    seen the token "larger" (the captions say large/big/huge, the oracle texts bigger/smaller)."""
    text = (world / "tasks" / "size.toml").read_text(encoding="utf-8")
    text = text.replace('manifest = "../captions.jsonl"', f'manifest = "{world / "captions.jsonl"}"')
    text = text.replace("a larger object", "a bigger object")
    path = tmp / "size_bigger.toml"
    path.write_text(text, encoding="utf-8")
    return path


def scores(clip, world: Path, tmp: Path) -> dict:
    from pcclip_cli.training import difference_accuracy, zero_shot_scores

    out = {f"diff/{t}": round(difference_accuracy(clip, world / "tasks" / f"{t}.toml"), 4) for t in ("size", "colour")}
    out["diff/size (bigger)"] = round(difference_accuracy(clip, size_variant(world, tmp)), 4)
    out.update({f"zero_shot/{k}": v for k, v in zero_shot_scores(clip, world, ("shape", "colour", "size")).items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="shapes-clip")
    parser.add_argument("--world", default=None, help="default: the world the base model was trained on")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--scope", default="text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PCCLIP_DEVICE", "cpu")

    from pcclip_cli.finetune import train
    from pcclip_cli.models import load_clip
    from pcclip_cli.training import TrainConfig
    from pcclip_cli.training.pair_data import oracle_comparatives

    base = load_clip(args.base, "cpu")
    world = Path(args.world or base.info.get("shapes_recipe", {}).get("world", ""))
    if not (world / "captions.jsonl").exists():
        sys.exit("pass --world: the base model does not record the shapes world it was trained on")
    tmp = Path(args.out or tempfile.mkdtemp(prefix="exp-pc-shapes-"))
    pairs = tmp / "oracle_pairs.jsonl"
    oracle_comparatives(world, pairs, pairs=args.pairs, split="train", seed=args.seed)
    before = scores(base, world, tmp)
    t0 = time.perf_counter()
    result = train(TrainConfig(model=args.base, comparatives=str(pairs), captions=str(world / "captions.jsonl"),
                               split="train", out=str(tmp / "pc"), scope=args.scope, lr=args.lr,
                               temperature=args.temperature, epochs=args.epochs, batch_size=args.batch_size,
                               seed=args.seed, save_every=args.epochs))
    seconds = time.perf_counter() - t0
    after = scores(load_clip(str(tmp / "pc"), "cpu"), world, tmp)
    report = {"base": args.base, "world": str(world), "settings": vars(args), "train_seconds": round(seconds, 1),
              "final_loss": result.metrics.get("loss"), "before": before, "after": after,
              "checkpoint": str(tmp / "pc")}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"base {args.base}; {args.pairs} oracle pairs; scope {args.scope}, lr {args.lr}, "
          f"temperature {args.temperature}, {args.epochs} epochs, batch {args.batch_size}; {seconds:.0f}s")
    print(f"{'metric':22s} {'before':>8s} {'after':>8s}")
    for key in before:
        print(f"{key:22s} {before[key]:8.3f} {after[key]:8.3f}")
    print(f"checkpoint: {tmp / 'pc'}")


if __name__ == "__main__":
    main()
