"""The shapes world: a generated image-caption dataset with known attributes, pcclip's offline default and test bed.

Each image holds one or two coloured shapes on a dark, slightly noisy background. Every image's attributes are
recorded, so difference texts, classification labels and benchmark tasks can be derived exactly.

    pcclip data shapes OUT --images 500 --seed 0

writes OUT/images/*.png, OUT/captions.jsonl (and its splits, captions-train.jsonl and captions-test.jsonl),
OUT/classes/*.jsonl (classification manifests),
OUT/tasks/*.toml (difference benchmark tasks) and OUT/world.json (how it was made).
"""

from __future__ import annotations

import math
import random
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.io import read_jsonl, write_json_atomic

from .world_files import build_world_dir, write_records

WORLD_VERSION = 4  # 4: held-out paraphrases in the task files, and the count task

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (240, 140, 20),
    "yellow": (235, 225, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 230),
    "purple": (150, 50, 200),
}
SHAPES = ["circle", "square", "triangle", "star", "diamond"]
# Radius ranges as fractions of the image side, for one object; two objects are drawn a little smaller.
SIZES: dict[str, tuple[float, float]] = {"small": (0.10, 0.14), "medium": (0.19, 0.23), "large": (0.30, 0.36)}
SIZE_ORDER = {"small": 0, "medium": 1, "large": 2}

# Captions vary their wording; none of these phrasings is used by the benchmark task files.
SIZE_WORDS = {
    "small": ["small", "little", "tiny"],
    "medium": ["medium", "medium-sized", "mid-sized"],
    "large": ["large", "big", "huge"],
}
ONE_OBJECT_TEMPLATES = [
    "a {size} {colour} {shape}",
    "a photo of a {size} {colour} {shape}",
    "an image of a {size} {colour} {shape} on a dark background",
    "a {colour} {shape} that is {size}",
    "there is a {size} {shape} coloured {colour}",
    "a {size} {shape}, {colour}",
    "one {size} {colour} {shape}",
    "a picture showing a {colour} {shape} of {size} size",
]
TWO_OBJECT_TEMPLATES = [
    "a {a} on the left and a {b} on the right",
    "a {a} next to a {b}",
    "two shapes: a {a} and a {b}",
    "a photo of a {a} beside a {b}",
    "a {b} to the right of a {a}",
]

CLASS_ATTRIBUTES = ["shape", "colour", "colour_shape", "size"]


@dataclass(frozen=True)
class WorldConfig:
    images: int = 500
    seed: int = 0
    image_size: int = 64
    two_object_fraction: float = 0.25
    test_fraction: float = 0.2

    def __post_init__(self):
        if self.images < 2:
            raise PcclipError(f"--images must be at least 2, got {self.images}")
        if not 16 <= self.image_size <= 1024:
            raise PcclipError(f"--image-size must be between 16 and 1024, got {self.image_size}")
        if not 0.0 <= self.two_object_fraction <= 1.0:
            raise PcclipError("two-object fraction must be in [0, 1]")
        if not 0.0 < self.test_fraction < 1.0:
            raise PcclipError("test fraction must be in (0, 1)")


def _size_word(rng: random.Random, size: str) -> str:
    return rng.choice(SIZE_WORDS[size])


def _object_phrase(rng: random.Random, obj: dict) -> str:
    return f"{_size_word(rng, obj['size'])} {obj['colour']} {obj['shape']}"


def caption_for(rng: random.Random, objects: list[dict]) -> str:
    if len(objects) == 1:
        o = objects[0]
        return rng.choice(ONE_OBJECT_TEMPLATES).format(size=_size_word(rng, o["size"]), colour=o["colour"],
                                                       shape=o["shape"])
    return rng.choice(TWO_OBJECT_TEMPLATES).format(a=_object_phrase(rng, objects[0]),
                                                   b=_object_phrase(rng, objects[1]))


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def ring(n, radius, offset):
        return [(cx + radius * math.cos(offset + 2 * math.pi * k / n), cy + radius * math.sin(offset + 2 * math.pi * k / n))
                for k in range(n)]

    if shape == "square":
        return ring(4, r * 1.05, math.pi / 4 + angle)
    if shape == "diamond":
        pts = ring(4, r, angle)
        # A diamond is a square stretched along one axis, so it is not just a rotated square.
        return [(cx + (x - cx) * 0.7, cy + (y - cy) * 1.15) for x, y in pts]
    if shape == "triangle":
        return ring(3, r * 1.15, -math.pi / 2 + angle)
    if shape == "star":
        outer = ring(5, r * 1.15, -math.pi / 2 + angle)
        inner = ring(5, r * 0.48, -math.pi / 2 + math.pi / 5 + angle)
        return [p for pair in zip(outer, inner, strict=True) for p in pair]
    raise ValueError(shape)


def render(objects: list[dict], size: int, rng: random.Random):
    """Draw the objects at 4x resolution and downsample, so edges are smooth at 64 px."""
    import numpy as np
    from PIL import Image, ImageDraw

    scale = 4
    side = size * scale
    base = rng.randint(15, 60)
    tint = [base + rng.randint(-8, 8) for _ in range(3)]
    img = Image.new("RGB", (side, side), tuple(tint))
    draw = ImageDraw.Draw(img)
    for obj in objects:
        cx, cy, r = obj["_cx"] * side, obj["_cy"] * side, obj["_r"] * side
        colour = tuple(max(0, min(255, c + rng.randint(-18, 18))) for c in COLOURS[obj["colour"]])
        if obj["shape"] == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            draw.polygon(_polygon(obj["shape"], cx, cy, r, rng.uniform(-0.15, 0.15)), fill=colour)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 4, (size, size, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def sample_objects(rng: random.Random, two_object_fraction: float) -> list[dict]:
    count = 2 if rng.random() < two_object_fraction else 1
    objects = []
    for k in range(count):
        obj = {"colour": rng.choice(list(COLOURS)), "size": rng.choice(list(SIZES)), "shape": rng.choice(SHAPES)}
        lo, hi = SIZES[obj["size"]]
        r = rng.uniform(lo, hi) * (0.62 if count == 2 else 1.0)
        if count == 1:
            cx, cy = rng.uniform(r + 0.03, 1 - r - 0.03), rng.uniform(r + 0.03, 1 - r - 0.03)
        else:
            # Left object in the left half, right object in the right half.
            half_lo, half_hi = (0.0, 0.5) if k == 0 else (0.5, 1.0)
            cx = rng.uniform(half_lo + r + 0.01, max(half_lo + r + 0.01, half_hi - r - 0.01))
            cy = rng.uniform(r + 0.03, 1 - r - 0.03)
        obj.update(_cx=cx, _cy=cy, _r=r)
        objects.append(obj)
    if count == 2:
        objects[0]["position"], objects[1]["position"] = "left", "right"
    return objects


def make_record(index: int, cfg: WorldConfig) -> tuple[dict, list[dict], random.Random]:
    rng = random.Random(f"shapes-{cfg.seed}-{index}")
    objects = sample_objects(rng, cfg.two_object_fraction)
    caption = caption_for(rng, objects)
    public = [{k: v for k, v in o.items() if not k.startswith("_")} for o in objects]
    attributes: dict = {"count": len(objects), "objects": public}
    if len(objects) == 1:
        attributes.update(public[0])
        attributes["colour_shape"] = f"{public[0]['colour']} {public[0]['shape']}"
    split = "test" if rng.random() < cfg.test_fraction else "train"
    image_id = f"img_{index:06d}"
    rec = {"id": image_id, "image": f"images/{image_id}.png", "caption": caption, "split": split,
           "attributes": attributes}
    return rec, objects, rng


# The benchmark's task files (with their held-out paraphrases) are data: pcclip_cli/world_tasks/*.toml, copied into
# every world.
TASK_FILES_DIR = Path(__file__).resolve().parents[1] / "world_tasks"
TASK_FILES = {p.name: p for p in sorted(TASK_FILES_DIR.glob("*.toml"))}


def _write_world(out: Path, cfg: WorldConfig, progress=None) -> dict:
    (out / "images").mkdir(parents=True)
    (out / "classes").mkdir()
    (out / "tasks").mkdir()
    records = []
    for i in range(cfg.images):
        rec, objects, rng = make_record(i, cfg)
        render(objects, cfg.image_size, rng).save(out / rec["image"], optimize=False, compress_level=1)
        records.append(rec)
        if progress:
            progress(i + 1, cfg.images)
    write_records(out, records, CLASS_ATTRIBUTES)
    for name, source in TASK_FILES.items():
        shutil.copyfile(source, out / "tasks" / name)
    splits = Counter(r["split"] for r in records)
    counts = Counter(r["attributes"]["count"] for r in records)
    summary = {
        "world_version": WORLD_VERSION,
        "config": asdict(cfg),
        "images": len(records),
        "splits": dict(splits),
        "objects_per_image": {str(k): v for k, v in sorted(counts.items())},
        "colours": list(COLOURS),
        "shapes": SHAPES,
        "sizes": list(SIZES),
        "class_manifests": [f"classes/{a}.jsonl" for a in CLASS_ATTRIBUTES],
        "tasks": [f"tasks/{n}" for n in TASK_FILES],
    }
    write_json_atomic(out / "world.json", summary)
    return summary


def build_world(out: str | Path, cfg: WorldConfig | None = None, *, force: bool = False, progress=None) -> dict:
    """Write a shapes world to `out` (atomically: built beside it, then renamed into place).

    An existing world with the same config is reused as is; a different one is replaced only with `force`.
    """
    cfg = cfg or WorldConfig()
    return build_world_dir(out, asdict(cfg), WORLD_VERSION, lambda tmp: _write_world(tmp, cfg, progress),
                           kind="shapes", force=force)


def image_has(attributes: dict, word: str) -> bool:
    """Whether an image shows an attribute value (a colour or a size) on every object it holds."""
    objects = (attributes or {}).get("objects") or []
    field = "size" if word in SIZES else "colour"
    return bool(objects) and all(o.get(field) == word for o in objects)


def load_world(path: str | Path) -> tuple[Path, list[dict]]:
    """Read a world's captions.jsonl (or a captions file directly); returns (root, records)."""
    path = Path(path)
    captions = path / "captions.jsonl" if path.is_dir() else path
    if not captions.exists():
        raise DataError(f"no captions.jsonl in {path}; build a world with `pcclip data shapes {path}`")
    return captions.parent, [rec for _, rec in read_jsonl(captions, what="captions file")]


def default_world_dir() -> Path:
    from pcclip_cli.core.paths import worlds_dir

    return worlds_dir() / "shapes-default"


# Oracle difference texts, written from the known attributes (the `template` LLM backend and training tests use
# them). Like an LLM's answers they vary their words (bigger/larger, object/shape, picture/image) and their
# sentence shapes; none of them is a benchmark task sentence (tests/test_shapes.py checks it).
_PICTURE = ["picture", "image", "photo"]
_THING = ["object", "shape", "figure"]
_BIGGER = ["bigger", "larger", "greater in size"]
_SMALLER = ["smaller", "tinier", "less large"]
_SIZE_DIFF = [
    "the {thing} in the first {pic} is {cmp} than the one in the second {pic}",
    "the first {pic} has a {cmp} {thing} and the second {pic} a {opp} one",
    "compared with the second {pic}, the first {pic}'s {thing} is {cmp}",
    "the first {pic} holds a {cmp} {thing} than the second {pic} does",
    "in the first {pic} the {thing} is {cmp}, in the second {pic} it is {opp}",
    "the {thing} of the second {pic} is {opp} than that of the first {pic}",
]
_COLOUR_DIFF = [
    "the first {thing} is {a} whereas the second {thing} is {b}",
    "in the first {pic} the {thing} is {a}, in the second {pic} it is {b}",
    "the first {pic} shows {a} and the second {pic} shows {b}",
    "the {thing} in the first {pic} is coloured {a} but in the second {pic} it is {b}",
    "a {a} {thing} appears in the first {pic} and a {b} {thing} in the second",
    "the second {pic} is {b} where the first {pic} is {a}",
]
_SHAPE_DIFF = [
    "the first {pic} has a {a} while the second {pic} has a {b}",
    "a {a} appears in the first {pic} and a {b} in the second",
    "the first {thing} is a {a}, the second {thing} is a {b}",
    "the first {pic} shows a {a} instead of the {b} of the second {pic}",
]
_COUNT_DIFF = [
    "the first {pic} holds {a} while the second {pic} holds {b}",
    "the first {pic} has {a} but the second has {b}",
]
_NUMBER = {1: "one shape", 2: "two shapes"}
# Relation comparatives (describe_difference(..., relations=True)): the count as a comparison and the change
# from the first image to the second. Their words stay apart from the benchmark tasks' held-out paraphrases
# (tests/test_shapes.py checks the overlap with these on as well).
_COUNT_RELATION = [
    "the first {pic} holds a {cmp} number of {thing}s than the second {pic}",
    "the second {pic} has a {opp} count of {thing}s than the first {pic}",
    "from the first {pic} to the second {pic} the number of {thing}s is {change}",
]
_NUMBER_CMP = {True: ("greater", "smaller", "reduced"), False: ("smaller", "greater", "raised")}
_SIZE_CHANGE = "from the first {pic} to the second {pic} the {thing} gets {cmp}"
_SIZE_CHANGE_WORD = {True: ["smaller", "reduced in size"], False: ["bigger", "enlarged"]}
_COLOUR_CHANGE = "from the first {pic} to the second {pic} the {thing} changes colour from {a} to {b}"


def _size_comparison(a: str, b: str, rng: random.Random) -> tuple[str, str] | None:
    if SIZE_ORDER[a] == SIZE_ORDER[b]:
        return None
    bigger, smaller = rng.choice(_BIGGER), rng.choice(_SMALLER)
    return (bigger, smaller) if SIZE_ORDER[a] > SIZE_ORDER[b] else (smaller, bigger)


def _relations(a: dict, b: dict, pic: str, thing: str, rng: random.Random) -> list[str]:
    """Relation clauses: the count compared, and the size and colour as a change from the first image to the
    second (single-object pairs)."""
    out = []
    if a.get("count") != b.get("count"):
        cmp, opp, change = _NUMBER_CMP[a["count"] > b["count"]]
        out.append(rng.choice(_COUNT_RELATION).format(cmp=cmp, opp=opp, change=change, pic=pic, thing=thing))
    if a.get("count") == 1 and b.get("count") == 1:
        oa, ob = a["objects"][0], b["objects"][0]
        if SIZE_ORDER[oa["size"]] != SIZE_ORDER[ob["size"]]:
            word = rng.choice(_SIZE_CHANGE_WORD[SIZE_ORDER[oa["size"]] > SIZE_ORDER[ob["size"]]])
            out.append(_SIZE_CHANGE.format(pic=pic, thing=thing, cmp=word))
        if oa["colour"] != ob["colour"]:
            out.append(_COLOUR_CHANGE.format(pic=pic, thing=thing, a=oa["colour"], b=ob["colour"]))
    return out


def describe_difference(a: dict, b: dict, rng: random.Random, relations: bool = False) -> str:
    """One sentence on how the image with attributes `a` differs visually from the one with `b`. With
    `relations`, half the sentences state their differences as relations instead (see _relations)."""
    pic, thing = rng.choice(_PICTURE), rng.choice(_THING)
    if relations and rng.random() < 0.5:
        parts = _relations(a, b, pic, thing, rng)
        if parts:
            rng.shuffle(parts)
            text = "; ".join(parts)
            return text[0].upper() + text[1:] + "."
    parts = []
    if a.get("count") != b.get("count"):
        parts.append(rng.choice(_COUNT_DIFF).format(a=_NUMBER[a["count"]], b=_NUMBER[b["count"]], pic=pic))
    oa, ob = a["objects"][0], b["objects"][0]
    if a.get("count") == 2 and b.get("count") == 2:
        # Compare the left objects, then the right ones.
        for side, (x, y) in zip(("left", "right"), zip(a["objects"], b["objects"], strict=True), strict=True):
            if x["colour"] != y["colour"]:
                parts.append(f"the {side} {thing} is {x['colour']} in the first {pic} and {y['colour']} in the second")
            if x["shape"] != y["shape"]:
                parts.append(f"on the {side} the first {pic} has a {x['shape']} and the second a {y['shape']}")
    else:
        size = _size_comparison(oa["size"], ob["size"], rng)
        if size:
            parts.append(rng.choice(_SIZE_DIFF).format(cmp=size[0], opp=size[1], pic=pic, thing=thing))
        if oa["colour"] != ob["colour"]:
            parts.append(rng.choice(_COLOUR_DIFF).format(a=oa["colour"], b=ob["colour"], pic=pic, thing=thing))
        if oa["shape"] != ob["shape"]:
            parts.append(rng.choice(_SHAPE_DIFF).format(a=oa["shape"], b=ob["shape"], pic=pic, thing=thing))
    if not parts:
        return f"both {pic}s show the same kind of {thing}, with no clear visual difference"
    rng.shuffle(parts)
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
