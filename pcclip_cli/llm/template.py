"""The `template` backend: deterministic comparatives from structured attributes, the oracle for tests and ablations.

Pairs of shapes-world images get `shapes.describe_difference` of their attributes, seeded from the item key.
Class pairs whose names parse into shapes attributes ("red circle", "circle", "red", "large") are compared the
same way; produce-world images and class names get that world's oracle (data/produce.py); other items get a
plain sentence built from the captions or names. No prompt is read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pcclip_cli.data import produce, shapes

from .base import LLM, Completion, Params, Request

_DESCRIPTIONS = [
    "A picture of {a}: {detail}, shown on its own against a plain background.",
    "An image whose main subject is {a}; {detail}.",
    "This shows {a}, where {detail}, and nothing else draws attention.",
    "A clear view of {a}, in which {detail}.",
]


def parse_class(name: str) -> dict | None:
    """Shapes attributes named by a class name ("small red circle" -> size, colour, shape), or None."""
    attrs: dict = {}
    for word in name.lower().replace("-", " ").split():
        if word in shapes.COLOURS:
            key = "colour"
        elif word in shapes.SHAPES:
            key = "shape"
        elif word in shapes.SIZES:
            key = "size"
        else:
            return None
        if key in attrs:
            return None
        attrs[key] = word
    return attrs or None


def _as_world_attributes(parsed: dict, other: dict) -> dict:
    # describe_difference compares size, colour and shape; an attribute neither name gives is set equal on both
    # sides so that only what the names say can differ.
    obj = {"size": "medium", "colour": "grey", "shape": "shape"}
    obj.update({k: v for k, v in parsed.items()})
    for k in ("size", "colour", "shape"):
        if k not in parsed and k in other:
            obj[k] = other[k]
    return {"count": 1, "objects": [obj]}


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


@dataclass
class TemplateOptions:
    relations: bool = False  # also state differences as relations (more/fewer, the change from first to second)


class TemplateLLM(LLM):
    """Deterministic comparatives from shapes-world attributes (no model; `--llm-option relations=true`)."""

    backend = "template"
    options_class = TemplateOptions
    text_options = ("relations",)

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        out = []
        for req in requests:
            text = self._one(req)
            out.append(Completion(text, len(text.split()), "stop"))
        return out

    def _one(self, req: Request) -> str:
        rng = random.Random(f"template\0{req.key}")
        if req.kind == "pairs":
            a, b = req.first_attributes or {}, req.second_attributes or {}
            if a.get("world") == produce.KIND and b.get("world") == produce.KIND:
                return produce.describe_difference(a, b, rng)
            if a.get("objects") and b.get("objects"):
                return shapes.describe_difference(a, b, rng, relations=self.options.relations)
            return (f"The first image shows {req.first_caption}, while the second image shows "
                    f"{req.second_caption}.")
        if req.kind == "classes":
            if req.first in produce.BY_NAME and req.second in produce.BY_NAME:
                return produce.class_comparative(req.first, req.second, rng)
            pa, pb = parse_class(req.first), parse_class(req.second or "")
            if pa and pb and set(pa) == set(pb):
                return shapes.describe_difference(_as_world_attributes(pa, pb), _as_world_attributes(pb, pa), rng,
                                                  relations=self.options.relations)
            return (f"An image of {req.first} looks like {_article(req.first)}, while an image of {req.second} "
                    f"looks like {_article(req.second or '')}.")
        # descriptions
        if req.first in produce.BY_NAME:
            return produce.class_description(req.first, req.n)
        parsed = parse_class(req.first)
        if parsed:
            bits = []
            if "size" in parsed:
                bits.append(f"the shape is {parsed['size']}")
            if "colour" in parsed:
                bits.append(f"its colour is {parsed['colour']}")
            if "shape" in parsed:
                bits.append(f"its outline is a {parsed['shape']}")
            detail = " and ".join(bits)
        else:
            detail = f"the visual features typical of {req.first} are visible"
        return _DESCRIPTIONS[req.n % len(_DESCRIPTIONS)].format(a=_article(req.first), detail=detail)
