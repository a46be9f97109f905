"""The produce world: fruit and vegetables drawn with their real-world looks, where the base model confuses classes.

Each image holds one item of one of 26 classes (cherry, tomato, apple, lemon, lime, ...), each defined by a colour,
a size, a shape, a skin pattern and parts (stem, leaf, leafy top, green cap), drawn with within-class variation.
Confusable groups differ in one attribute a comparative can state: cherry / tomato / apple by size, lemon / lime and
the three peppers by colour, cucumber / zucchini by pattern, carrot / parsnip by colour. Captions describe the
looks and name the item in only `name_share` of them, so a LiT base model learns the looks from the captions but
only partly what the names mean.

    pcclip data produce OUT --images 2000 --seed 0

writes what `pcclip data shapes` writes (images, captions.jsonl and its splits, classes/*.jsonl with
classes/produce.jsonl the class manifest, tasks/*.toml, world.json), plus vocabulary.toml for `pcclip audit`.
"""

from __future__ import annotations

import math
import random
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from pcclip_cli.core.errors import PcclipError

from .shapes import SIZE_ORDER, SIZES
from .world_files import build_world_dir, write_records

WORLD_VERSION = 1
KIND = "produce"

RGB: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35), "yellow": (240, 215, 50), "green": (70, 165, 50), "orange": (240, 135, 25),
    "blue": (55, 75, 170), "purple": (105, 40, 120), "brown": (135, 90, 50), "white": (235, 225, 195),
    "tan": (205, 170, 110), "pink": (225, 80, 120), "dark green": (25, 90, 30),
}


@dataclass(frozen=True)
class Produce:
    name: str
    kind: str  # fruit | vegetable
    colour: str
    size: str
    shape: str  # round | oval | long | curved | heart | tapered | blocky
    pattern: str = "plain"  # plain | spots | stripes
    parts: tuple[str, ...] = ()  # stem | leaf | leafy top | cap
    pattern_colour: str = "green"
    variant: str | None = None  # another colour some items of the class have


CLASSES: list[Produce] = [
    Produce("cherry", "fruit", "red", "small", "round", parts=("stem",)),
    Produce("tomato", "vegetable", "red", "medium", "round", parts=("cap",)),
    Produce("apple", "fruit", "red", "large", "round", parts=("stem", "leaf")),
    Produce("lemon", "fruit", "yellow", "medium", "oval"),
    Produce("lime", "fruit", "green", "medium", "oval"),
    Produce("orange", "fruit", "orange", "large", "round"),
    Produce("blueberry", "fruit", "blue", "small", "round"),
    Produce("grape", "fruit", "purple", "small", "oval", parts=("stem",), variant="green"),
    Produce("plum", "fruit", "purple", "medium", "round", parts=("stem",)),
    Produce("strawberry", "fruit", "red", "small", "heart", "spots", ("cap",), "yellow"),
    Produce("raspberry", "fruit", "pink", "small", "round", "spots", (), "red"),
    Produce("watermelon", "fruit", "green", "large", "oval", "stripes", (), "dark green"),
    Produce("honeydew", "fruit", "white", "large", "round"),
    Produce("cantaloupe", "fruit", "tan", "large", "round", "spots", (), "white"),
    Produce("banana", "fruit", "yellow", "large", "curved", parts=("stem",)),
    Produce("cucumber", "vegetable", "green", "large", "long", "spots", (), "white"),
    Produce("zucchini", "vegetable", "green", "large", "long", parts=("stem",)),
    Produce("carrot", "vegetable", "orange", "large", "tapered", parts=("leafy top",)),
    Produce("parsnip", "vegetable", "white", "large", "tapered", parts=("leafy top",)),
    Produce("eggplant", "vegetable", "purple", "large", "long", parts=("cap",)),
    Produce("red pepper", "vegetable", "red", "medium", "blocky", parts=("stem",)),
    Produce("green pepper", "vegetable", "green", "medium", "blocky", parts=("stem",)),
    Produce("yellow pepper", "vegetable", "yellow", "medium", "blocky", parts=("stem",)),
    Produce("potato", "vegetable", "brown", "medium", "oval", "spots", (), "tan"),
    Produce("kiwi", "fruit", "brown", "small", "oval", "spots", (), "tan"),
    Produce("pumpkin", "vegetable", "orange", "large", "round", "stripes", ("stem",), "brown"),
]
BY_NAME = {c.name: c for c in CLASSES}
CLASS_ATTRIBUTES = ["produce", "colour", "size", "shape", "pattern"]
# Body outlines: (length / width ratio, width profile exponent); "curved" bends its axis, "heart" and "tapered"
# narrow to a point at the far end.
_OUTLINE = {"round": (1.0, 2.0), "oval": (1.35, 2.0), "long": (2.8, 3.0), "curved": (3.2, 2.2),
            "heart": (1.15, 2.0), "tapered": (3.2, 2.0), "blocky": (1.1, 4.0)}


@dataclass(frozen=True)
class ProduceConfig:
    images: int = 2000
    seed: int = 0
    image_size: int = 64
    test_fraction: float = 0.2
    name_share: float = 0.5  # share of captions that name the item
    variation: float = 0.5  # within-class variation: colour, size, proportions, pose, parts left out, variants

    def __post_init__(self):
        if self.images < 2:
            raise PcclipError(f"--images must be at least 2, got {self.images}")
        if not 16 <= self.image_size <= 1024:
            raise PcclipError(f"--image-size must be between 16 and 1024, got {self.image_size}")
        if not 0.0 < self.test_fraction < 1.0:
            raise PcclipError(f"--test-fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 <= self.name_share <= 1.0:
            raise PcclipError(f"--name-share must be in [0, 1], got {self.name_share}")
        if not 0.0 <= self.variation <= 1.0:
            raise PcclipError(f"--variation must be in [0, 1], got {self.variation}")


def sample_item(rng: random.Random, cls: Produce, variation: float) -> dict:
    colour = cls.variant if cls.variant and rng.random() < 0.5 * variation else cls.colour
    lo, hi = SIZES[cls.size]
    spread = 0.03 * variation
    r = rng.uniform(lo - spread, hi + spread)
    ratio, _ = _OUTLINE[cls.shape]
    half_len = r if ratio <= 1.4 else min(0.42, r * 1.25)
    tilt = (0.25 if ratio <= 1.4 else 1.0) * variation
    parts = [p for p in cls.parts if rng.random() >= 0.3 * variation]
    margin = half_len + 0.04
    return {"produce": cls.name, "colour": colour, "size": cls.size, "shape": cls.shape, "pattern": cls.pattern,
            "parts": parts, "_r": r, "_len": half_len, "_ratio": ratio * (1 + rng.uniform(-0.15, 0.15) * variation),
            "_angle": math.pi / 2 + rng.uniform(-1, 1) * tilt,
            "_cx": rng.uniform(min(margin, 0.5), max(1 - margin, 0.5)),
            "_cy": rng.uniform(min(margin, 0.5), max(1 - margin, 0.5))}


def _frame(item: dict, side: float):
    """A function (u, v) -> pixel, u along the item's axis (-1 top, 1 bottom), v across it, and the width profile."""
    length = item["_len"] * side
    width = length / item["_ratio"]
    a = item["_angle"]
    d, n = (math.cos(a), math.sin(a)), (-math.sin(a), math.cos(a))
    cx, cy = item["_cx"] * side, item["_cy"] * side
    shape = item["shape"]
    exponent = _OUTLINE[shape][1]
    bend = 0.55 if shape == "curved" else 0.0

    def profile(u: float) -> float:
        w = max(0.0, 1 - abs(u) ** exponent) ** (1 / exponent)
        if shape in ("heart", "tapered"):
            w *= ((1 - u) / 2) ** (0.5 if shape == "heart" else 0.8) * (1.5 if shape == "heart" else 1.6)
        if shape == "curved":
            w *= 0.45 + 0.25 * (1 - u * u)
        return w

    def at(u: float, v: float) -> tuple[float, float]:
        along, across = u * length, v * width + bend * length * (0.5 - u * u)
        return cx + along * d[0] + across * n[0], cy + along * d[1] + across * n[1]

    return at, profile, width


def _jitter(rgb, rng: random.Random, amount: float) -> tuple[int, ...]:
    return tuple(max(0, min(255, int(c + rng.uniform(-amount, amount)))) for c in rgb)


def render(item: dict, size: int, rng: random.Random, variation: float):
    """Draw one item at 4x resolution and downsample: body, skin pattern, highlight, then its parts."""
    import numpy as np
    from PIL import Image, ImageDraw

    side = size * 4
    table = rng.choice([(rng.randint(200, 240),) * 3, (rng.randint(35, 70),) * 3])
    img = Image.new("RGB", (side, side), _jitter(table, rng, 10))
    draw = ImageDraw.Draw(img)
    at, profile, width = _frame(item, side)
    us = [-1 + 2 * k / 60 for k in range(61)]
    outline = [at(u, profile(u)) for u in us] + [at(u, -profile(u)) for u in reversed(us)]
    body = _jitter(RGB[item["colour"]], rng, 35 * variation)
    draw.polygon(outline, fill=body)
    mark = _jitter(RGB[BY_NAME[item["produce"]].pattern_colour], rng, 20 * variation)
    if item["pattern"] == "stripes":
        for v0 in (-0.6, -0.2, 0.2, 0.6):
            draw.line([at(u, v0 * profile(u)) for u in us[3:-3]], fill=mark, width=max(2, int(width * 0.14)))
    elif item["pattern"] == "spots":
        for _ in range(rng.randint(10, 18)):
            u = rng.uniform(-0.85, 0.85)
            x, y = at(u, rng.uniform(-0.8, 0.8) * profile(u))
            s = width * rng.uniform(0.05, 0.09)
            draw.ellipse([x - s, y - s, x + s, y + s], fill=mark)
    hx, hy = at(-0.35, 0.35 * profile(-0.35))
    hs = width * 0.18
    draw.ellipse([hx - hs, hy - hs, hx + hs, hy + hs], fill=_jitter(tuple(min(255, c + 45) for c in body), rng, 5))
    top = at(-1, 0)
    beyond = at(-1.35, 0)
    green = _jitter(RGB["green"], rng, 20 * variation)
    for part in item["parts"]:
        if part == "stem":
            draw.line([top, beyond], fill=_jitter(RGB["brown"], rng, 15), width=max(2, int(width * 0.12)))
        elif part == "leaf":
            lx, ly = at(-1.2, 0.45)
            draw.ellipse([lx - width * 0.3, ly - width * 0.14, lx + width * 0.3, ly + width * 0.14], fill=green)
        elif part == "leafy top":
            for v in (-0.5, -0.15, 0.15, 0.5):
                draw.polygon([at(-0.95, v - 0.15), at(-0.95, v + 0.15), at(-1.6, v * 1.8)], fill=green)
        elif part == "cap":
            pts = []
            for k in range(10):
                rad = width * (0.45 if k % 2 == 0 else 0.2)
                ang = 2 * math.pi * k / 10
                pts.append((top[0] + rad * math.cos(ang), top[1] + rad * math.sin(ang)))
            draw.polygon(pts, fill=green)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 4, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


# Caption words. None of these phrasings is used by the world's task files (tests/test_produce.py checks it).
_SIZE_WORDS = {"small": ["small", "little", "tiny"], "medium": ["medium-sized", "mid-sized", "medium"],
               "large": ["large", "big", "sizeable"]}
_SHAPE_WORDS = {"round": ["round", "spherical"], "oval": ["oval", "egg-shaped"], "long": ["long", "elongated"],
                "curved": ["curved", "crescent-shaped"], "heart": ["heart-shaped", "cone-shaped"],
                "tapered": ["tapered", "pointed"], "blocky": ["blocky", "boxy"]}
_PATTERN_WORDS = {"plain": ["", " with smooth skin", " with plain skin"],
                  "spots": [" with {pc} spots", " speckled with {pc} dots", " covered in {pc} flecks"],
                  "stripes": [" with {pc} stripes", " striped in {pc}", " with {pc} bands along it"]}
_PART_WORDS = {"stem": ["a stem", "a short stalk"], "leaf": ["a leaf", "a small leaf"],
               "leafy top": ["a leafy top", "green fronds on top"], "cap": ["a leafy cap", "a green cap"]}
# The oracle names parts without their colour: "a green cap" on a red tomato would read as a colour statement.
_LOOKS = [
    "a {size} {colour} {shape} {noun}{pattern}{parts}",
    "a photo of a {colour} {noun} that is {size} and {shape}{pattern}{parts}",
    "a {shape} {colour} {noun}{parts}, {size} in size",
    "an image of a {size} {shape} {noun}, {colour}{pattern}",
    "there is a {colour} {noun} here, {shape} and {size}{parts}",
    "a picture of something {size}, {colour} and {shape}{pattern}",
]
_NAMED = [
    "a {name}: {size}, {colour} and {shape}{pattern}{parts}",
    "a photo of a {size} {colour} {name}{parts}",
    "a {colour} {name}{pattern}",
    "an image of a {name}, a {shape} {noun}",
    "a {name} on a table",
]


def caption_for(rng: random.Random, item: dict, named: bool) -> str:
    cls = BY_NAME[item["produce"]]
    parts = item["parts"]
    part_text = (" with " + " and ".join(rng.choice(_PART_WORDS[p]) for p in parts)) if parts else ""
    pattern = rng.choice(_PATTERN_WORDS[item["pattern"]]).format(pc=cls.pattern_colour)
    slots = {"size": rng.choice(_SIZE_WORDS[item["size"]]), "colour": item["colour"],
             "shape": rng.choice(_SHAPE_WORDS[item["shape"]]), "noun": rng.choice([cls.kind, cls.kind, "item"]),
             "pattern": pattern, "parts": part_text, "name": cls.name}
    return rng.choice(_NAMED if named else _LOOKS).format(**slots).replace("  ", " ")


def make_record(index: int, cfg: ProduceConfig) -> tuple[dict, dict, random.Random]:
    rng = random.Random(f"produce-{cfg.seed}-{index}")
    cls = CLASSES[index % len(CLASSES)] if index < len(CLASSES) else rng.choice(CLASSES)
    item = sample_item(rng, cls, cfg.variation)
    split = "test" if rng.random() < cfg.test_fraction else "train"
    caption = caption_for(rng, item, rng.random() < cfg.name_share)
    public = {k: v for k, v in item.items() if not k.startswith("_")}
    # `objects` holds what the audit and the grounded filter score (colour, size, shape), as in the shapes world.
    attributes = {**public, "count": 1, "kind": cls.kind, "world": KIND,
                  "objects": [{"colour": item["colour"], "size": item["size"], "shape": item["shape"]}]}
    image_id = f"img_{index:06d}"
    rec = {"id": image_id, "image": f"images/{image_id}.png", "caption": caption, "split": split,
           "attributes": attributes}
    return rec, item, rng


TASK_FILES_DIR = Path(__file__).resolve().parents[1] / "world_tasks" / KIND
TASK_FILES = {p.name: p for p in sorted(TASK_FILES_DIR.glob("*.toml"))}
_WORLD_FILES = ("vocabulary.toml", "filter-classes.toml")  # copied beside the world's captions, not into tasks/


def _write_world(out: Path, cfg: ProduceConfig, progress=None) -> dict:
    for sub in ("images", "classes", "tasks"):
        (out / sub).mkdir(parents=True)
    records = []
    for i in range(cfg.images):
        rec, item, rng = make_record(i, cfg)
        render(item, cfg.image_size, rng, cfg.variation).save(out / rec["image"], optimize=False, compress_level=1)
        records.append(rec)
        if progress:
            progress(i + 1, cfg.images)
    write_records(out, records, CLASS_ATTRIBUTES)
    for name, source in TASK_FILES.items():
        if name not in _WORLD_FILES:
            shutil.copyfile(source, out / "tasks" / name)
    for name in _WORLD_FILES:
        shutil.copyfile(TASK_FILES_DIR / name, out / name)
    # Filter rules for image-pair comparatives: pcclip's defaults, with the grounded checks in this world's words.
    from pcclip_cli.core.paths import PROMPTS_DIR

    rules = (PROMPTS_DIR / "filter_rules.toml").read_text(encoding="utf-8")
    for check in ('check = "grounded"', 'check = "swap"'):
        rules = rules.replace(check, check + '\nvocabulary = "vocabulary.toml"')
    (out / "filter-pairs.toml").write_text(rules, encoding="utf-8")
    summary = {
        "world": KIND, "world_version": WORLD_VERSION, "config": asdict(cfg), "images": len(records),
        "splits": dict(Counter(r["split"] for r in records)),
        "classes": [c.name for c in CLASSES],
        "class_manifests": [f"classes/{a}.jsonl" for a in CLASS_ATTRIBUTES],
        "tasks": [f"tasks/{n}" for n in TASK_FILES if n not in _WORLD_FILES],
        "vocabulary": "vocabulary.toml", "class_filter_rules": "filter-classes.toml",
    }
    from pcclip_cli.core.io import write_json_atomic

    write_json_atomic(out / "world.json", summary)
    return summary


def build_world(out: str | Path, cfg: ProduceConfig | None = None, *, force: bool = False, progress=None) -> dict:
    """Write a produce world to `out` atomically; an identical one is reused, a different one needs `force`."""
    cfg = cfg or ProduceConfig()
    return build_world_dir(out, asdict(cfg), WORLD_VERSION, lambda tmp: _write_world(tmp, cfg, progress),
                           kind=KIND, force=force)


# The oracle: difference texts from known attributes (image pairs), and class knowledge from the class
# definitions (comparatives and CuPL-style descriptions). Their words are the training side; the task files'
# paraphrases avoid them (tests/test_produce.py).
_PIC = ["photo", "image", "picture"]
_BIG = {True: ["bigger", "larger"], False: ["smaller", "tinier"]}
_SHAPE_PLAIN = {"round": "round", "oval": "oval", "long": "long", "curved": "curved", "heart": "heart-shaped",
                "tapered": "tapered", "blocky": "blocky"}


def _clauses(a: dict, b: dict, first: str, second: str, rng: random.Random) -> list[str]:
    out = []
    if a["size"] != b["size"]:
        bigger = SIZE_ORDER[a["size"]] > SIZE_ORDER[b["size"]]
        out.append(f"{first} is {rng.choice(_BIG[bigger])} than {second}")
    if a["colour"] != b["colour"]:
        out.append(rng.choice([f"{first} is {a['colour']} whereas {second} is {b['colour']}",
                               f"{first} has {a['colour']} skin and {second} {b['colour']} skin"]))
    if a["shape"] != b["shape"]:
        out.append(f"{first} looks {_SHAPE_PLAIN[a['shape']]} and {second} looks {_SHAPE_PLAIN[b['shape']]}")
    if a["pattern"] != b["pattern"]:
        words = {"plain": "plain", "spots": "spotted", "stripes": "striped"}
        out.append(f"{first} has {words[a['pattern']]} skin while {second} has {words[b['pattern']]} skin")
    for part in sorted(set(a.get("parts", ())) ^ set(b.get("parts", ()))):
        has, lacks = (first, second) if part in a.get("parts", ()) else (second, first)
        out.append(f"{has} shows {_PART_WORDS[part][0]}, {lacks} does not")
    return out


_REFS = [("the first", "the second"), ("the first one", "the second one"), ("the former", "the latter")]


def describe_difference(a: dict, b: dict, rng: random.Random) -> str:
    """One sentence on how the item of the image with attributes `a` differs from the one with `b`."""
    pic = rng.choice(_PIC)
    parts = _clauses(a, b, f"the item in the first {pic}", f"the one in the second {pic}", rng)
    if not parts:
        return f"Both {pic}s show the same kind of item, with no clear visual difference."
    rng.shuffle(parts)
    # Later clauses refer back briefly, as people do (and so the filter's repetition rule keeps them).
    for k in range(1, len(parts)):
        one, two = rng.choice(_REFS)
        parts[k] = parts[k].replace(f"the item in the first {pic}", one).replace(f"the one in the second {pic}", two)
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def class_comparative(first: str, second: str, rng: random.Random) -> str:
    """How an image of class `first` differs from one of class `second`, from the world's definitions."""
    a, b = asdict(BY_NAME[first]), asdict(BY_NAME[second])
    parts = _clauses(a, b, _article(first), _article(second), rng)
    if not parts:
        return f"{_article(first).capitalize()} and {_article(second)} look alike."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


_DESCRIBE = [
    "{A} is a {size} {colour} {shape} {kind}{pattern}{parts}.",
    "A photo of {a}: a {colour}, {shape} {kind} of {size} size{pattern}{parts}.",
    "{A} looks {shape} and {colour}, and it is {size}{pattern}{parts}.",
    "You can spot {a} by its {colour} colour and {shape} form; it is {size}{parts}.",
]


def class_description(name: str, n: int) -> str:
    """The n-th CuPL-style description of a class's looks."""
    cls = BY_NAME[name]
    rng = random.Random(f"describe-{name}-{n}")
    parts = (" with " + " and ".join(_PART_WORDS[p][0] for p in cls.parts)) if cls.parts else ""
    pattern = {"plain": "", "spots": " with spotted skin", "stripes": " with striped skin"}[cls.pattern]
    text = _DESCRIBE[n % len(_DESCRIBE)].format(A=_article(name).capitalize(), a=_article(name),
                                                 size=rng.choice(_SIZE_WORDS[cls.size][:1] + ["small" if cls.size ==
                                                                                              "small" else cls.size]),
                                                 colour=cls.colour, shape=_SHAPE_PLAIN[cls.shape], kind=cls.kind,
                                                 pattern=pattern, parts=parts)
    return text
