"""Precision@k of `pcclip retrieve --attribute` on the shapes world, for every colour and size word.

    .venv/bin/python benchmarks/retrieval_precision.py --world runs/demo/world --split test \
        --model shapes-clip --model runs/demo/pc-clip
    .venv/bin/python benchmarks/retrieval_precision.py --world W --model pcclip-tiny --templates default --json

An image counts as having an attribute when every object in it has that value (a blue image, a large one), so
two-object images count only when both objects agree. Models that share an image tower (a base model and its
text-scope finetunes) are queried against one index, built once; the others get an index each. The `base rate`
column is the precision a random ranking would get. Each model is queried with each template set (`--templates`,
default: `single-sentence`, the one comparative sentence used before prompt ensembles, and `default`, the
shipped ensemble), so the table shows before and after side by side.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

COLOURS = ["red", "orange", "yellow", "green", "blue", "purple"]
SIZES = ["large", "medium", "small"]
COMPARATIVES = {"larger": "large", "smaller": "small"}  # the words the README's earlier row used
TEMPLATE_SETS = ["single-sentence", "default"]


def has_attribute(meta: dict, word: str) -> bool:
    from pcclip_cli.data.shapes import image_has

    return image_has(meta.get("attributes") or {}, COMPARATIVES.get(word, word))


def attribute_precision(index, clip, words: list[str], k: int = 10, templates=None) -> dict[str, float]:
    from pcclip_cli.retrieval import attribute_precision as precision

    return precision(index, clip, words, k, relevant=has_attribute, templates=templates)


def base_rates(index, words: list[str]) -> dict[str, float]:
    metas = [m for _, _, m in index.items(list(range(index.count))).values()]
    return {w: sum(has_attribute(m, w) for m in metas) / len(metas) for w in words}


def measure(world: Path, models: list[str], k: int = 10, split: str | None = None, workdir: Path | None = None,
            device: str | None = None, template_sets: list[str] | None = None) -> dict:
    from pcclip_cli.models import load_clip
    from pcclip_cli.retrieval import build_index, load_index, model_for_index

    manifest = world / "captions.jsonl"
    workdir = Path(workdir or tempfile.mkdtemp(prefix="pcclip-precision-"))
    if split:
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        manifest = workdir / f"captions-{split}.jsonl"
        manifest.write_text("".join(json.dumps({**r, "image": str(world / r["image"])}) + "\n"
                                    for r in rows if r.get("split") == split))
    words = COLOURS + SIZES + list(COMPARATIVES)
    indexes: dict[str, object] = {}  # image fingerprint -> loaded index
    template_sets = template_sets or TEMPLATE_SETS
    out = {"world": str(world), "split": split or "all", "k": k, "models": {}, "rows": []}
    for spec in models:
        clip = load_clip(spec, device)
        if clip.image_fingerprint not in indexes:
            target = workdir / f"index-{len(indexes)}"
            build_index([manifest], target, model=spec, device=device)
            indexes[clip.image_fingerprint] = load_index(target)
        index = indexes[clip.image_fingerprint]
        clip = model_for_index(index, spec, device)
        out["models"][spec] = {"scope": clip.scope, "index_model": index.model["spec"], "images": index.count}
        for tset in template_sets:
            prec = attribute_precision(index, clip, words, k, templates=tset)
            out["rows"].append({
                "model": spec, "templates": tset, "precision": prec,
                "colour_mean": sum(prec[w] for w in COLOURS) / len(COLOURS),
                "size_mean": sum(prec[w] for w in SIZES) / len(SIZES),
            })
        out.setdefault("base_rate", base_rates(index, words))
    return out


def print_table(result: dict) -> None:
    words = COLOURS + SIZES + list(COMPARATIVES)
    k = result["k"]
    print(f"precision@{k} of retrieve --attribute, {result['world']} ({result['split']} images)")
    print("| model | queries | " + " | ".join(words) + " | colour mean | size mean |")
    print("|---|---|" + "---:|" * (len(words) + 2))
    rates = result["base_rate"]
    print("| base rate | | " + " | ".join(f"{100 * rates[w]:.0f}" for w in words)
          + f" | {100 * sum(rates[w] for w in COLOURS) / len(COLOURS):.0f}"
          + f" | {100 * sum(rates[w] for w in SIZES) / len(SIZES):.0f} |")
    for r in result["rows"]:
        spec = r["model"]
        name = spec if len(spec) < 40 else "..." + spec[-37:]
        print(f"| {name} | {r['templates']} | " + " | ".join(f"{100 * r['precision'][w]:.0f}" for w in words)
              + f" | {100 * r['colour_mean']:.0f} | {100 * r['size_mean']:.0f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, default=None,
                    help="a shapes world (default: the 500-image default world, built if missing)")
    ap.add_argument("--model", action="append", default=None, help="model SPEC; repeat to compare")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--split", default=None, help="only images of this split (train/test)")
    ap.add_argument("--templates", action="append", default=None,
                    help=f"query template set or file; repeat to compare (default: {' and '.join(TEMPLATE_SETS)})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from pcclip_cli.data.shapes import WorldConfig, build_world, default_world_dir

    world = args.world.resolve() if args.world else None
    if world is None:
        world = default_world_dir()
        build_world(world, WorldConfig())
    result = measure(world, args.model or ["shapes-clip"], k=args.k, split=args.split,
                     template_sets=args.templates)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
